"""English sentence splitting: a regex for candidate boundaries, then rules that veto the false ones.

A boundary is terminal punctuation (. ! ?, possibly repeated, possibly followed by closing quotes or
brackets), whitespace, then something that can start a sentence (an upper-case letter or a digit,
possibly after an opening quote or bracket). A full stop is no boundary after a known abbreviation
(Mr., e.g., Fig.), after a single capital (an initial: J. R. R. Tolkien) or after a word with
inner full stops (U.S., Ph.D.). Decimals never match, as no whitespace follows their point. This
is what BERT-style pretraining needs from a splitter (sentence-ish units to pack), at a few MB/s
in pure Python; it is not a linguistic parser.
"""
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
_CANDIDATE = re.compile(r"([.!?]+)[\"')\]\u201d\u2019\u00bb]*\s+")
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


def split_document(paragraphs: Iterable[str]) -> List[str]:
  """Sentences of a whole document; paragraph breaks end a sentence too."""
  sentences: List[str] = []
  for paragraph in paragraphs:
    sentences.extend(split_sentences(paragraph))
  return sentences
