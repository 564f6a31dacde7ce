"""Corpus sources: dump parsing with page filtering, text files, specs and one-line errors."""
import bz2

import pytest

from data_prep import sources

NS = "http://www.mediawiki.org/xml/export-0.10/"


def _page(title, ns, page_id, text, redirect=False):
  redirect_tag = f'<redirect title="{title} target" />' if redirect else ""
  return (f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_tag}"
          f"<revision><id>9{page_id}</id><text xml:space=\"preserve\">{text}</text></revision></page>")


def _dump(*pages):
  return f'<mediawiki xmlns="{NS}"><siteinfo><sitename>Wikipedia</sitename></siteinfo>{"".join(pages)}</mediawiki>'


TINY_DUMP = _dump(
    _page("Apple", 0, 1, "An '''apple''' is a fruit of the [[apple tree]]. It is sweet."),
    _page("Apples", 0, 2, "#REDIRECT [[Apple]]", redirect=True),
    _page("Pear", 0, 3, "#redirect [[Pear tree]]"),
    _page("Talk:Apple", 1, 4, "Discussion about the apple article here."),
    _page("Template:Fruit", 10, 5, "A template page with some words."),
    _page("Mercury", 0, 6, "'''Mercury''' may refer to: &lt;ref&gt;x&lt;/ref&gt;\n{{disambiguation}}"),
    _page("Banana", 0, 7, "A '''banana''' is an elongated fruit.&lt;ref&gt;{{cite web|url=x}}&lt;/ref&gt;\n\n"
          "Bananas grow in large hanging clusters."),
)


@pytest.fixture
def tiny_dump_bz2(tmp_path):
  path = tmp_path / "enwiki-tiny.xml.bz2"
  path.write_bytes(bz2.compress(TINY_DUMP.encode("utf-8")))
  return str(path)


def test_dump_yields_only_articles_skipping_redirects_other_namespaces_and_disambiguation(tiny_dump_bz2):
  documents = list(sources.read_wikipedia_dump(tiny_dump_bz2))
  assert [d.title for d in documents] == ["Apple", "Banana"]
  assert [d.id for d in documents] == ["1", "7"]
  assert documents[0].paragraphs == ("An apple is a fruit of the apple tree. It is sweet.",)
  assert documents[1].paragraphs == ("A banana is an elongated fruit.", "Bananas grow in large hanging clusters.")


def test_uncompressed_dump_reads_the_same(tmp_path, tiny_dump_bz2):
  path = tmp_path / "enwiki-tiny.xml"
  path.write_text(TINY_DUMP, encoding="utf-8")
  assert list(sources.read_wikipedia_dump(str(path))) == list(sources.read_wikipedia_dump(tiny_dump_bz2))


def test_truncated_bz2_is_an_error_naming_the_file(tmp_path):
  data = bz2.compress(TINY_DUMP.encode("utf-8"))
  path = tmp_path / "truncated.xml.bz2"
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(sources.SourceError, match="truncated.xml.bz2 is truncated or corrupt") as raised:
    list(sources.read_wikipedia_dump(str(path)))
  assert "\n" not in str(raised.value)


def test_invalid_xml_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / "broken.xml.bz2"
  path.write_bytes(bz2.compress(TINY_DUMP.replace("</title>", "", 1).encode("utf-8")))
  with pytest.raises(sources.SourceError, match="broken.xml.bz2 is truncated or corrupt"):
    list(sources.read_wikipedia_dump(str(path)))


def test_text_file_documents_are_separated_by_blank_lines(tmp_path):
  path = tmp_path / "books.txt"
  path.write_text("First sentence.\nSecond sentence.\n\n\n  \nOther book.\n", encoding="utf-8")
  documents = list(sources.read_text_documents(str(path)))
  assert [d.paragraphs for d in documents] == [("First sentence.", "Second sentence."), ("Other book.",)]
  assert [d.id for d in documents] == ["books.txt:0", "books.txt:1"]


def test_non_utf8_text_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / "latin1.txt"
  path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
  with pytest.raises(sources.SourceError, match="latin1.txt cannot be read as UTF-8"):
    list(sources.read_text_documents(str(path)))


def test_spec_resolves_directories_to_sorted_files_of_the_right_kind(tmp_path):
  for name in ("b.xml.bz2", "a.xml", "notes.md"):
    (tmp_path / name).write_text("x")
  spec = sources.parse_corpus_spec(f"wikipedia:{tmp_path}")
  assert [p.rsplit("/", 1)[-1] for p in sources.resolve_files(spec)] == ["a.xml", "b.xml.bz2"]
  text_spec = sources.parse_corpus_spec(f"text:{tmp_path}")
  assert len(sources.resolve_files(text_spec)) == 3


@pytest.mark.parametrize("spec", ["wikipedia", "books:/data", "text:", "/data/wiki.xml"])
def test_malformed_spec_is_refused(spec):
  with pytest.raises(sources.SourceError, match="is not KIND:PATH"):
    sources.parse_corpus_spec(spec)


def test_spec_matching_nothing_is_refused(tmp_path):
  with pytest.raises(sources.SourceError, match="matches no files"):
    sources.resolve_files(sources.parse_corpus_spec(f"text:{tmp_path}/missing-*.txt"))


def test_embedded_fragment_parses_to_clean_articles(embedded_dump):
  documents = list(sources.read_wikipedia_dump(embedded_dump))
  # 206 pages: 100 redirects, 1 project page, 8 disambiguation pages and 1 list without prose.
  assert len(documents) == 97
  assert documents[0].title == "Anarchism"
  text = "\n".join(p for d in documents for p in d.paragraphs)
  assert len(text) > 2_000_000
  for markup in ("{{", "}}", "[[", "]]", "<ref", "</ref", "&lt;", "&amp;", "[[Category:", "thumb|"):
    assert markup not in text, markup
