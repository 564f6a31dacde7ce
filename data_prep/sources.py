"""Corpus sources: a `--corpus` spec names files, and each file streams `Document`s.

Specs:
  wikipedia:PATH      a MediaWiki XML dump (`*.xml.bz2`, `*.bz2` or `*.xml`), a directory of them
                      or a glob; `wikipedia:embedded` is the fragment of `data_prep.embedded`.
  text:PATH           BERT/ELECTRA builder text: one sentence or paragraph per line, a blank line
                      between documents; a file, a directory of files or a glob.

Every reader streams: a dump is parsed page by page with `iterparse` over a bz2 stream and each
page element is cleared once read, so memory stays flat however large the dump is.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import bz2
import contextlib
import dataclasses
import os
import xml.etree.ElementTree as ElementTree
from typing import Iterator, List, Tuple

import tensorflow as tf

from data_prep import embedded
from data_prep import wikitext

WIKIPEDIA = "wikipedia"
TEXT = "text"
KINDS = (WIKIPEDIA, TEXT)
EMBEDDED = "embedded"
WIKI_SUFFIXES = (".xml.bz2", ".bz2", ".xml")
ARTICLE_NAMESPACE = "0"


class SourceError(ValueError):
  """A corpus spec that names nothing usable, or an input file that cannot be read to the end."""


@dataclasses.dataclass(frozen=True)
class Document:
  id: str
  title: str
  paragraphs: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  kind: str
  location: str

  def __str__(self) -> str:
    return f"{self.kind}:{self.location}"


def parse_corpus_spec(spec: str) -> CorpusSpec:
  kind, sep, location = spec.partition(":")
  if not sep or kind not in KINDS or not location:
    raise SourceError(f"--corpus={spec!r} is not KIND:PATH with KIND one of {list(KINDS)} (e.g. wikipedia:embedded, text:/data/books)")
  return CorpusSpec(kind, location)


def _expand(location: str, suffixes: Tuple[str, ...]) -> List[str]:
  if tf.io.gfile.isdir(location):
    names = sorted(tf.io.gfile.listdir(location))
    files = [os.path.join(location, n) for n in names if not n.startswith(".")]
    files = [f for f in files if not tf.io.gfile.isdir(f)]
    return [f for f in files if f.endswith(suffixes)] if suffixes else files
  return sorted(tf.io.gfile.glob(location))


def resolve_files(spec: CorpusSpec) -> List[str]:
  """Input files of a spec, sorted so that a build is deterministic."""
  if spec.kind == WIKIPEDIA and spec.location == EMBEDDED:
    return [embedded.fetch()]
  files = _expand(spec.location, WIKI_SUFFIXES if spec.kind == WIKIPEDIA else ())
  if not files:
    raise SourceError(f"--corpus={spec} matches no files")
  return files


def read_documents(kind: str, path: str) -> Iterator[Document]:
  if kind == WIKIPEDIA:
    return read_wikipedia_dump(path)
  return read_text_documents(path)


def _local_name(tag: str) -> str:
  return tag.rsplit("}", 1)[-1]


def _page_fields(page: ElementTree.Element) -> Tuple[str, str, str, bool, str]:
  title = page_id = namespace = text = ""
  redirect = False
  for child in page:
    name = _local_name(child.tag)
    if name == "title":
      title = child.text or ""
    elif name == "ns":
      namespace = (child.text or "").strip()
    elif name == "id":
      page_id = (child.text or "").strip()
    elif name == "redirect":
      redirect = True
    elif name == "revision":
      for field in child:
        if _local_name(field.tag) == "text":
          text = field.text or ""
  return title, page_id, namespace, redirect, text


def _is_article(namespace: str, redirect: bool, text: str) -> bool:
  # Old dumps mark redirects only in the text, newer ones also with a <redirect> element.
  if namespace != ARTICLE_NAMESPACE or redirect:
    return False
  return text.lstrip()[:9].upper() != "#REDIRECT"


@contextlib.contextmanager
def _open_dump(path: str):
  with tf.io.gfile.GFile(path, "rb") as raw:
    if path.endswith(".bz2"):
      with bz2.BZ2File(raw) as stream:
        yield stream
    else:
      yield raw


def read_wikipedia_dump(path: str) -> Iterator[Document]:
  """Articles of a dump as prose; redirects, other namespaces and disambiguation pages are skipped."""
  try:
    with _open_dump(path) as stream:
      root = None
      for event, element in ElementTree.iterparse(stream, events=("start", "end")):
        if root is None:
          root = element
        if event != "end" or _local_name(element.tag) != "page":
          continue
        title, page_id, namespace, redirect, text = _page_fields(element)
        # Dropping finished pages from the root keeps memory flat on a multi-GB dump.
        root.clear()
        if not _is_article(namespace, redirect, text) or wikitext.is_disambiguation(title, text):
          continue
        paragraphs = wikitext.to_paragraphs(text)
        if paragraphs:
          yield Document(id=page_id, title=title, paragraphs=tuple(paragraphs))
  except (OSError, EOFError, ElementTree.ParseError) as e:
    raise SourceError(
        f"{path} is truncated or corrupt ({type(e).__name__}: {e}); fetch it again or pass --skip_bad_files") from None


def read_text_documents(path: str) -> Iterator[Document]:
  """Documents of a builder-format text file; each non-blank line is one paragraph."""
  name = os.path.basename(path)
  paragraphs: List[str] = []
  index = 0
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      for line in f:
        line = line.strip()
        if line:
          paragraphs.append(line)
          continue
        if paragraphs:
          yield Document(id=f"{name}:{index}", title="", paragraphs=tuple(paragraphs))
          index += 1
          paragraphs = []
  except (UnicodeDecodeError, tf.errors.OpError) as e:
    raise SourceError(f"{path} cannot be read as UTF-8 text ({type(e).__name__}: {e}); fix it or pass --skip_bad_files") from None
  if paragraphs:
    yield Document(id=f"{name}:{index}", title="", paragraphs=tuple(paragraphs))
