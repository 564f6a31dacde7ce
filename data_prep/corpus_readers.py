"""Reading each corpus format into `Document`s: MediaWiki XML dumps, book text files, OpenWebText archives and
BERT/ELECTRA builder text (data_prep.sources says which spec reads which, and cuts the inputs into parts).

A dump is parsed page by page with a pull parser and finished pages are dropped, so memory stays flat
however large the input is. Bad input is reported by file name in one line (`SourceError`); inside an
archive, a bad member can instead be skipped and named through a list the caller passes.
"""
import bz2
import dataclasses
import io
import lzma
import os
import tarfile
import xml.etree.ElementTree as ElementTree
from typing import Callable, Iterator, List, Optional, Tuple

from data_prep import wikitext
from tpu_electra import fileio

ARTICLE_NAMESPACE = "0"
READ_BLOCK = 1 << 20


class SourceError(ValueError):
  """A corpus spec that names nothing usable, or an input file that cannot be read to the end."""


@dataclasses.dataclass(frozen=True)
class Document:
  id: str
  title: str
  paragraphs: Tuple[str, ...]


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
    with fileio.open_file(path, "rb") as f:
      last = end is None or end >= fileio.size(path)
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
        f"{path} is truncated or corrupt ({type(e).__name__}: {first_line(e)}); fetch it again or pass --skip_bad_files") from None


def _then(chunks: Iterator[bytes], *finishers: Callable[[], None]) -> Iterator[Optional[bytes]]:
  """The chunks, then a None after each finisher has run (so the caller drains the last events)."""
  yield from chunks
  for finish in finishers:
    finish()
    yield None


def first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def decode(data: bytes, name: str) -> str:
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise SourceError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start}); fix it or pass --skip_bad_files") from None


def _lines_to_document(text: str, doc_id: str) -> Optional[Document]:
  paragraphs = tuple(line.strip() for line in text.splitlines() if line.strip())
  return Document(id=doc_id, title="", paragraphs=paragraphs) if paragraphs else None


def read_bytes(path: str) -> bytes:
  try:
    with fileio.open_file(path, "rb") as f:
      return f.read()
  except fileio.errors() as e:
    raise SourceError(f"{path} cannot be read ({first_line(e)})") from None


def read_book(path: str) -> Iterator[Document]:
  """A book file as one document; each non-blank line is a paragraph."""
  document = _lines_to_document(decode(read_bytes(path), path), os.path.basename(path))
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
      text = decode(data, member_name)
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
      raise SourceError(f"{name} is truncated or corrupt ({type(e).__name__}: {first_line(e)}); "
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
    with fileio.open_file(path, "rb") as f, tarfile.open(fileobj=f, mode=mode) as archive:
      yield from _archive_documents(archive, os.path.basename(path), bad)
  except (lzma.LZMAError, EOFError, tarfile.TarError, *fileio.errors()) as e:
    raise SourceError(
        f"{path} is truncated or corrupt ({type(e).__name__}: {first_line(e)}); fetch it again or pass --skip_bad_files") from None


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
    with fileio.open_file(path, "rb") as f:
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
    raise SourceError(f"{path} cannot be read ({first_line(e)})") from None
  if paragraphs:
    yield Document(id=f"{name}:{index}", title="", paragraphs=tuple(paragraphs))
