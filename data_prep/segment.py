"""English sentence splitting: a regex for candidate boundaries, then rules that veto the false ones.

A boundary is terminal punctuation (. ! ?, possibly repeated, possibly followed by closing quotes or
brackets), whitespace, then something that can start a sentence (an upper-case letter or a digit,
possibly after an opening quote or bracket). A full stop is no boundary after a known abbreviation
(Mr., e.g., Fig.), after a single capital (an initial: J. R. R. Tolkien) or after a word with
inner full stops (U.S., Ph.D.). Decimals never match, as no whitespace follows their point. This
is what BERT-style pretraining needs from a splitter (sentence-ish units to pack), at tens of MB/s
in pure Python; it is not a linguistic parser.

`split_document` runs the candidate regex once over a whole document (its paragraphs joined by a
NUL, which no candidate can span) and applies the rules only to paragraphs that hold a candidate:
most lines of builder-format text are one sentence each and have none, and then a paragraph is
just itself, stripped. The result is exactly that of `split_sentences` on every paragraph.
"""
import bisect
import re
from typing import Iterable, List

ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "rev", "hon", "gen", "col", "lt",
    "maj", "capt", "cpt", "sgt", "cmdr", "adm", "gov", "sen", "rep", "pres", "supt", "fr", "br", "messrs",
    "inc", "ltd", "co", "corp", "bros", "no", "nos", "vol", "vols", "pp", "p", "fig", "figs", "eq",
    "ch", "sec", "art", "ed", "eds", "op", "cf", "vs", "v", "approx", "ca", "c", "est", "al", "ibid",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "ave", "blvd", "rd", "dept", "univ", "assn", "min", "max", "viz", "resp",
})
_CLOSERS = "\"')\\]\u201d\u2019\u00bb"
_CANDIDATE = re.compile(f"([.!?]+)[{_CLOSERS}]*\\s+")
# Matches exactly where _CANDIDATE does (a run of stops and closers, then whitespace), without the
# group and the repeats that make _CANDIDATE four times slower to scan with: for finding the
# paragraphs that need the rules.
_ANY_CANDIDATE = re.compile(f"[.!?][.!?{_CLOSERS}]*\\s")
_OPENERS = "\"'([\u201c\u2018\u00ab"
_LEADING_PUNCT = "\"'([{\u201c\u2018\u00ab"


def _starts_sentence(text: str, position: int) -> bool:
  while position < len(text) and text[position] in _OPENERS:
    position += 1
  return position < len(text) and (text[position].isupper() or text[position].isdigit())


def _word_before(text: str, end: int) -> str:
  start = text.rfind(" ", 0, end) + 1
  return text[start:end].lstrip(_LEADING_PUNCT)


def _is_false_stop(word: str) -> bool:
  if not word:
    return False
  if word.lower() in ABBREVIATIONS:
    return True
  if len(word) == 1 and word.isupper():
    return True
  return "." in word and any(c.isalpha() for c in word)


def split_sentences(paragraph: str) -> List[str]:
  """Sentences of one paragraph, stripped, in order; never empty strings."""
  sentences = []
  start = 0
  for match in _CANDIDATE.finditer(paragraph):
    if not _starts_sentence(paragraph, match.end()):
      continue
    # Only a lone full stop can be an abbreviation's; "!", "?" and "..." always end a sentence.
    if match.group(1) == "." and _is_false_stop(_word_before(paragraph, match.start())):
      continue
    sentence = paragraph[start:match.end()].strip()
    if sentence:
      sentences.append(sentence)
    start = match.end()
  tail = paragraph[start:].strip()
  if tail:
    sentences.append(tail)
  return sentences


_JOIN = "\0"  # Neither terminal punctuation, a closer nor whitespace: no candidate match crosses it.


def split_document(paragraphs: Iterable[str]) -> List[str]:
  """Sentences of a whole document; paragraph breaks end a sentence too."""
  paragraphs = list(paragraphs)
  starts = []  # Offset of each paragraph in the joined text.
  offset = 0
  for paragraph in paragraphs:
    starts.append(offset)
    offset += len(paragraph) + len(_JOIN)
  joined = _JOIN.join(paragraphs)
  with_candidates = {bisect.bisect_right(starts, m.start()) - 1 for m in _ANY_CANDIDATE.finditer(joined)}
  sentences: List[str] = []
  for index, paragraph in enumerate(paragraphs):
    if index in with_candidates:
      sentences.extend(split_sentences(paragraph))
      continue
    stripped = paragraph.strip()  # What split_sentences gives for a paragraph without a candidate.
    if stripped:
      sentences.append(stripped)
  return sentences
