"""BERT WordPiece in plain Python and numpy: the ids of tensorflow_text's FastBertTokenizer, without TensorFlow.

data_prep.build tokenizes a corpus with a WordPiece vocab through this module, so that its
processes never import TensorFlow (about 3-5 s of CPU per process on a 2-core box, as long as all
the rest of a 40 MB build). The ids are exactly those of `tpu_electra.data.tokenization`'s
WordpieceTokenizer (tensorflow_text.FastBertTokenizer, max_bytes_per_word=100, "##" suffixes):
tests/data_prep/test_wordpiece.py checks the Unicode tables below against tensorflow_text for every
codepoint, and the ids against it on codepoints inside words, random text and real Wikipedia text.

What FastBertTokenizer does (tensorflow_text 2.20: fast_bert_normalizer, fast_wordpiece_tokenizer):
1. Every codepoint is normalized on its own. Uncased (do_lower_case): ICU's NFKC_Casefold, then NFD,
   then nonspacing marks (Mn) dropped. Both: control and format characters (Cc, Cf) become a space.
2. The text is split at whitespace (ICU White_Space) and around punctuation (ASCII symbols, Unicode
   P*, CJK ideographs): each punctuation character is a word of its own.
3. A word over 100 UTF-8 bytes is [UNK]; otherwise it becomes the longest vocab piece that starts it,
   then the longest "##" piece that continues it, and so on; [UNK] when some rest has no piece.
   Vocab pieces that hold punctuation (other than a lone punctuation character) never match.

Why it is fast: a corpus repeats its tokens. Text is cut into tokens at every byte up to 32 (ASCII
whitespace and control characters, which step 1 turns into spaces), with numpy over the UTF-8 bytes
of a whole work unit. A token of up to 16 bytes is its bytes read as two uint64 words, looked up, for
all tokens at once, in a hash table of numpy arrays of the tokens seen so far (longer tokens in a
dict); the ids of all tokens are then gathered with numpy. Only a token seen for the first time goes
through steps 1-3 in Python (its words through a second table), a few microseconds each. A byte up to
32 is whitespace to the tokenizer whatever its neighbours, and step 1 works on each character on
its own, so tokenizing token by token gives exactly what tokenizing the whole text gives.

Unicode data: ICU inside tensorflow_text knows a newer Unicode than Python 3.11's unicodedata (14.0).
Step 1 is derived from unicodedata, except for the codepoints listed in data_prep.bert_unicode_tables;
the whitespace and punctuation sets of step 2 are listed there whole. That module is generated from
tensorflow_text itself: `python -m data_prep.wordpiece` prints it.
"""
import bisect
import itertools
import re
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_prep import bert_unicode_tables as tables
from tpu_electra.data import vocabulary

SPECIAL_TOKENS = vocabulary.SPECIAL_TOKENS
UNKNOWN_TOKEN = "[UNK]"
SUFFIX = "##"
MAX_BYTES_PER_WORD = 100  # tpu_electra.data.tokenization.MAX_BYTES_PER_WORD
# Tokens (and words) kept in the lookup dicts: beyond it they are dropped and relearned, so that a
# worker's memory stays bounded on any corpus (a few hundred MB at most). The ids never depend on it.
MAX_CACHED_TOKENS = 1_000_000


class WordpieceError(ValueError):
  """A vocab that cannot be used (the message is what tpu_electra.data.tokenization says)."""


def _range_class(ranges: Sequence[Tuple[int, int]]) -> str:
  return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_PUNCTUATION = _range_class(tables.PUNCTUATION)
_WHITESPACE = _range_class(tables.WHITESPACE)


def _derived_normalization(char: str, lower_case: bool) -> str:
  """Step 1 as Python's unicodedata gives it (see the exceptions in bert_unicode_tables)."""
  text = char
  if lower_case:
    # NFKC_Casefold, as closure of NFKC and case folding, then NFD without nonspacing marks.
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = unicodedata.normalize("NFKC", text.casefold())
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
  return "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def _exception(codepoint: int, lower_case: bool) -> Optional[str]:
  runs = tables.LOWER_CASE_EXCEPTIONS if lower_case else tables.CASED_EXCEPTIONS
  index = bisect.bisect_right(runs, (codepoint, float("inf"))) - 1
  if index >= 0 and runs[index][0] <= codepoint <= runs[index][1]:
    return runs[index][2]
  return None


def normalize_char(char: str, lower_case: bool) -> str:
  """Step 1 for one character: what tensorflow_text's FastBertNormalizer maps it to."""
  exception = _exception(ord(char), lower_case)
  return _derived_normalization(char, lower_case) if exception is None else exception


class _CharNormalizer(dict):
  """normalize_char, memoized per character."""

  def __init__(self, lower_case: bool):
    super().__init__()
    self._lower_case = lower_case

  def __missing__(self, char: str) -> str:
    value = self[char] = normalize_char(char, self._lower_case)
    return value


class _WordIds(dict):
  """Word -> the ids of its pieces, made on first sight; "\n" (between tokens) -> no ids."""

  def __init__(self, wordpiece):
    super().__init__({"\n": ()})
    self._wordpiece = wordpiece

  def __missing__(self, word: str) -> Tuple[int, ...]:
    ids = self[word] = self._wordpiece(word)
    return ids


class _TokenTable:
  """Short token -> row: an open-addressing hash table in numpy arrays, for whole arrays of tokens at once.

  A token of up to 16 bytes is its bytes as two little-endian uint64 words, the bytes past its end
  zeroed (`words0`, `words1`); no token holds a byte 0, so the words are the token exactly and
  words0 is never 0, which marks an empty slot. The hash only picks the first slot to probe.
  """

  def __init__(self, bits: int = 16):
    self._bits = bits
    self._words0 = np.zeros(1 << bits, np.uint64)
    self._words1 = np.zeros(1 << bits, np.uint64)
    self.rows = np.full(1 << bits, -1, np.int64)
    self._owner = np.zeros(1 << bits, np.int64)  # Scratch of add().
    self.size = 0

  def _slots(self, words0: np.ndarray, words1: np.ndarray) -> np.ndarray:
    mixed = words0 * _HASH_A + words1 * _HASH_B
    return (mixed >> np.uint64(64 - self._bits)).view(np.int64)

  def lookup(self, words0: np.ndarray, words1: np.ndarray) -> np.ndarray:
    """The row of each token, -1 for tokens not in the table (and for words0 of 0)."""
    slots = self._slots(words0, words1)
    found0 = self._words0[slots]
    hit = found0 == words0
    hit &= self._words1[slots] == words1
    rows = np.where(hit, self.rows[slots], -1)
    # Most tokens sit in the slot their hash picks; the others probe on (linear probing).
    pending = np.flatnonzero(~hit & (found0 != 0))
    slots = slots[pending]
    mask = (1 << self._bits) - 1
    while pending.size:
      slots = (slots + 1) & mask
      found0 = self._words0[slots]
      hit = (found0 == words0[pending]) & (self._words1[slots] == words1[pending])
      rows[pending[hit]] = self.rows[slots[hit]]
      probe_on = ~hit & (found0 != 0)
      pending, slots = pending[probe_on], slots[probe_on]
    return rows

  def add(self, words0: np.ndarray, words1: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Puts tokens that are not in the table into it, repeats allowed: (the slot of each, which took a slot).

    The rows of the new slots are left for the caller to set (-1 until then).
    """
    if 4 * (self.size + len(words0)) > len(self._words0):  # At most a quarter full: short probes.
      used = np.flatnonzero(self._words0)
      old0, old1, old_rows = self._words0[used], self._words1[used], self.rows[used]
      bits = self._bits
      while 4 * (self.size + len(words0)) > (1 << bits):
        bits += 1
      self.__init__(bits)
      slots, _ = self.add(old0, old1)
      self.rows[slots] = old_rows
    mask = (1 << self._bits) - 1
    result = np.empty(len(words0), np.int64)
    firsts = []
    pending = np.arange(len(words0))
    slots = self._slots(words0, words1)
    while pending.size:
      found0 = self._words0[slots]
      same = (found0 == words0[pending]) & (self._words1[slots] == words1[pending])
      free = np.flatnonzero(found0 == 0)
      # Of the tokens that reach the same free slot, the last written takes it; the others look
      # at it again next round (where a repeat of the token that took it finds itself).
      self._owner[slots[free]] = pending[free]
      won = free[self._owner[slots[free]] == pending[free]]
      self._words0[slots[won]] = words0[pending[won]]
      self._words1[slots[won]] = words1[pending[won]]
      firsts.append(pending[won])
      done = same.copy()
      done[won] = True
      result[pending[done]] = slots[done]
      occupied = found0 != 0
      slots = np.where(occupied & ~same, (slots + 1) & mask, slots)
      pending, slots = pending[~done], slots[~done]
    firsts = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
    self.size += len(firsts)
    return result, firsts


_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)
_SHORT = 16  # Tokens of up to this many bytes are keyed by their bytes (two uint64 words); longer ones by a dict.
_HASH_A = np.uint64(0x9E3779B97F4A7C15)
_HASH_B = np.uint64(0xC2B2AE3D27D4EB4F)
# The characters text normalization can change besides A-Z: all but "\n" and printable ASCII.
_SPECIAL_CHARS = re.compile("[^\n -~]+")
# The parts of normalized tokens joined by "\n": the "\n" between tokens, a punctuation character
# (a word of its own), or a run of anything but whitespace and punctuation (a word).
_TOKEN_PARTS = re.compile(f"\n|[{_PUNCTUATION}]|[^{_PUNCTUATION}{_WHITESPACE}]+")
# The same for ASCII text, which normalizes to ASCII: a regex of small classes is several times faster.
_ASCII_TOKEN_PARTS = re.compile("\n|[0-9A-Za-z]+|[!-/:-@\\[-`{-~]")


class WordpieceTokenizer(vocabulary.Vocabulary):
  """BERT WordPiece of a vocab list (ids = positions), cased or uncased, as FastBertTokenizer gives it."""

  vocab_type = "wordpiece"
  vocab_error = WordpieceError  # (defined above)

  def __init__(self, vocab: Sequence[str], do_lower_case: bool, origin: str = "<memory>"):
    super().__init__(vocab, do_lower_case, origin)
    duplicates = len(self._vocab) - len(self._ids)
    if duplicates:
      raise WordpieceError(f"vocab {origin} lists {duplicates} token(s) twice; a WordPiece vocab needs unique lines")
    self._unknown = (self._ids[UNKNOWN_TOKEN],)
    # A suffix piece "##" + s matches the rest s of a word (the bare "##" never does).
    self._suffix_ids: Dict[str, int] = {t[len(SUFFIX):]: i for t, i in self._ids.items()
                                        if t.startswith(SUFFIX) and len(t) > len(SUFFIX)}
    self._longest = max([len(t) for t in self._ids] + [1])
    self._normalized_chars = _CharNormalizer(do_lower_case)
    self._reset()

  def word_continuation(self) -> List[bool]:
    """Per id: True when the piece continues the word of the piece before it (whole-word masking)."""
    special = set(SPECIAL_TOKENS)
    return [token not in special and token.startswith(SUFFIX) for token in self._vocab]

  # Steps 1-3, for whitespace-free tokens of raw text seen for the first time (Python, once per token).

  def _normalize(self, text: str) -> str:
    if self.do_lower_case:
      text = text.encode("utf-8").lower().decode("utf-8")  # A-Z only, as NFKC_Casefold maps them.
    if text.isascii() and text.isprintable():
      return text
    return _SPECIAL_CHARS.sub(lambda m: "".join([self._normalized_chars[c] for c in m.group()]), text)

  def _wordpiece(self, word: str) -> Tuple[int, ...]:
    if len(word) > MAX_BYTES_PER_WORD // 4 and len(word.encode("utf-8")) > MAX_BYTES_PER_WORD:
      return self._unknown
    whole = self._ids.get(word)
    if whole is not None:
      return (whole,)
    if len(word) == 1:
      return self._unknown  # A lone character (punctuation included) is its own piece or nothing.
    pieces = []
    start, length, lookup = 0, len(word), self._ids
    while start < length:
      end = min(length, start + self._longest)
      while end > start:
        piece = lookup.get(word[start:end])
        if piece is not None:
          break
        end -= 1
      else:
        return self._unknown
      pieces.append(piece)
      start, lookup = end, self._suffix_ids
    return tuple(pieces)

  def tokens_ids(self, tokens: Sequence[str]) -> List[Tuple[int, ...]]:
    """The ids of each token (raw text without whitespace)."""
    pieces, counts = self._tokens_pieces(tokens)
    ends = np.cumsum(counts).tolist()
    pieces = pieces.tolist()
    return [tuple(pieces[a:b]) for a, b in zip([0] + ends[:-1], ends)]

  def _tokens_pieces(self, tokens: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 for many tokens at once: the ids of all back to back, and how many each has."""
    is_ascii = [t.isascii() for t in tokens]
    if all(is_ascii):
      return self._tokens_pieces_with(tokens, _ASCII_TOKEN_PARTS)
    order = [i for i, a in enumerate(is_ascii) if a] + [i for i, a in enumerate(is_ascii) if not a]
    ascii_count = sum(is_ascii)
    found = [self._tokens_pieces_with([tokens[i] for i in order[:ascii_count]], _ASCII_TOKEN_PARTS),
             self._tokens_pieces_with([tokens[i] for i in order[ascii_count:]], _TOKEN_PARTS)]
    pieces, counts = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
    # Back to the order of `tokens`.
    starts = np.cumsum(counts) - counts
    back = np.argsort(np.array(order, np.int64), kind="stable")
    counts = counts[back]
    take = np.repeat(starts[back] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    return pieces[take], counts

  def _tokens_pieces_with(self, tokens: Sequence[str], parts: re.Pattern) -> Tuple[np.ndarray, np.ndarray]:
    if not tokens:
      return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # The words of all tokens, the ids of each ("\n", between tokens, maps to no ids).
    ids = list(map(self._words.__getitem__, parts.findall(self._normalize("\n".join(tokens)))))
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    token_of_word = np.cumsum(lengths == 0)  # Every word has ids: only the "\n" have none.
    counts = np.bincount(token_of_word, weights=lengths, minlength=len(tokens)).astype(np.int64)
    return np.fromiter(itertools.chain.from_iterable(ids), np.int64, int(lengths.sum())), counts

  # Tokens seen so far: row k holds the ids _pieces[_starts[k]:_starts[k] + _counts[k]]. Tokens of
  # up to _SHORT bytes are found by their bytes in a _TokenTable, longer ones in a dict.

  def _reset(self) -> None:
    self._words = _WordIds(self._wordpiece)
    self._table = _TokenTable()
    self._long: Dict[bytes, int] = {}
    self._pieces = np.zeros(0, np.int64)
    self._starts = np.zeros(0, np.int64)
    self._counts = np.zeros(0, np.int64)

  def _add_rows(self, tokens: Sequence[bytes]) -> np.ndarray:
    """New rows for these tokens (distinct, not seen before); their rows."""
    pieces, counts = self._tokens_pieces([t.decode("utf-8") for t in tokens])
    first = len(self._counts)
    self._starts = np.concatenate([self._starts, len(self._pieces) + np.cumsum(counts) - counts])
    self._pieces = np.concatenate([self._pieces, pieces])
    self._counts = np.concatenate([self._counts, counts])
    return np.arange(first, first + len(tokens))

  def _token_rows(self, data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The row of every token data[starts[i]:ends[i]]; rows are made for tokens seen for the first time."""
    if len(self._counts) > MAX_CACHED_TOKENS or len(self._words) > MAX_CACHED_TOKENS:
      self._reset()
    lengths = ends - starts
    padded = np.zeros(len(data) + 2 * 8, np.uint8)
    padded[:len(data)] = np.frombuffer(data, np.uint8)
    windows = np.lib.stride_tricks.as_strided(padded, (len(data) + 8, 8), (1, 1), writeable=False)
    words0 = windows[starts].view("<u8")[:, 0]
    words0 &= _BYTE_MASKS[np.minimum(lengths, 8)]
    words1 = np.zeros(len(starts), np.uint64)
    over8 = np.flatnonzero(lengths > 8)
    words1[over8] = windows[starts[over8] + 8].view("<u8")[:, 0] & _BYTE_MASKS[np.minimum(lengths[over8] - 8, 8)]
    long = lengths > _SHORT
    words0[long] = 0  # Never found in the table.
    rows = self._table.lookup(words0, words1)
    new = np.flatnonzero((rows < 0) & ~long)
    while new.size:
      # One occurrence of each new token, found by a hash of its words; tokens whose hashes collide
      # with another's take another round.
      _, first, which = np.unique(words0[new] * _HASH_A + words1[new] * _HASH_B, return_index=True,
                                  return_inverse=True)
      first = new[first]
      slots, firsts = self._table.add(words0[first], words1[first])
      tokens = [data[a:b] for a, b in zip(starts[first[firsts]].tolist(), ends[first[firsts]].tolist())]
      self._table.rows[slots[firsts]] = self._add_rows(tokens)
      found = self._table.rows[slots][which]
      same = (words0[first][which] == words0[new]) & (words1[first][which] == words1[new])
      rows[new[same]] = found[same]
      new = new[~same]
    long = np.flatnonzero(long)
    if long.size:
      tokens = [data[a:b] for a, b in zip(starts[long].tolist(), ends[long].tolist())]
      unseen = [t for t in dict.fromkeys(tokens) if t not in self._long]
      self._long.update(zip(unseen, self._add_rows(unseen).tolist()))
      rows[long] = [self._long[t] for t in tokens]
    return rows

  def tokenize_text(self, data: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """The ids of every line of UTF-8 `data`, back to back (int64), and how many each line has.

    Lines are what data.split(b"\\n") gives. Tokens are cut at every byte up to 32 (ASCII
    whitespace and control characters, all whitespace to the tokenizer); whatever else a token
    holds (other whitespace, punctuation) is dealt with when the token is first seen.
    """
    text = np.frombuffer(data, np.uint8)
    edges = np.diff((text > 32).view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    rows = self._token_rows(data, starts, ends)
    counts = self._counts[rows]
    total = np.cumsum(counts)
    ids = self._pieces[np.repeat(self._starts[rows] - (total - counts), counts) + np.arange(total[-1] if len(total) else 0)]
    # The ids of a line: those of the tokens before its newline, less those of earlier lines.
    line_ends = np.append(np.searchsorted(starts, np.flatnonzero(text == 10)), len(starts))
    return ids, np.diff(np.concatenate([[0], total])[line_ends], prepend=0)

  def tokenize_sentences(self, sentences: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """All ids of `sentences` back to back (int64), and the number of ids of each sentence."""
    text = "\n".join(sentences)
    if text.count("\n") != len(sentences) - 1 and sentences:
      # A newline inside a sentence is whitespace like a space (both only separate words).
      text = "\n".join(s.replace("\n", " ") for s in sentences)
    if not sentences:
      return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return self.tokenize_text(text.encode("utf-8"))

  def tokenize(self, text: str) -> List[int]:
    return self.tokenize_sentences([text])[0].tolist()

  def tokenize_batch(self, texts: Sequence[str]) -> List[List[int]]:
    if not texts:
      return []
    ids, lengths = self.tokenize_sentences(texts)
    return [part.tolist() for part in np.split(ids, np.cumsum(lengths)[:-1])]


def read_vocab(text: str) -> List[str]:
  """The tokens of a vocab.txt's text, as tokenization.read_wordpiece_vocab reads the file."""
  lines = text.split("\n")
  return [line.rstrip("\r") for line in lines if line.strip()]


def load_tokenizer(vocab_path: str, do_lower_case: bool = True) -> WordpieceTokenizer:
  """The tokenizer of a vocab.txt (local or gs://), as tokenization.load_tokenizer(path, "wordpiece") loads it."""
  from tpu_electra import fileio  # pylint: disable=g-import-not-at-top
  if not fileio.exists(vocab_path):
    raise WordpieceError(f"vocab file {vocab_path!r} does not exist")
  with fileio.open_file(vocab_path, "rb") as f:
    text = f.read().decode("utf-8")
  return WordpieceTokenizer(read_vocab(text), do_lower_case, origin=vocab_path)


# Generating bert_unicode_tables (needs TensorFlow; only when tensorflow_text changes).


def _runs(codepoints: Sequence[int]) -> List[Tuple[int, int]]:
  runs: List[List[int]] = []
  for codepoint in sorted(codepoints):
    if runs and runs[-1][1] == codepoint - 1:
      runs[-1][1] = codepoint
    else:
      runs.append([codepoint, codepoint])
  return [(a, b) for a, b in runs]


def _value_runs(values: Dict[int, str]) -> List[Tuple[int, int, str]]:
  runs: List[List] = []
  for codepoint in sorted(values):
    if runs and runs[-1][1] == codepoint - 1 and runs[-1][2] == values[codepoint]:
      runs[-1][1] = codepoint
    else:
      runs.append([codepoint, codepoint, values[codepoint]])
  return [tuple(r) for r in runs]


def all_codepoints() -> List[int]:
  """Every codepoint a Python string decoded from UTF-8 can hold (no surrogates)."""
  return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def reference_tables() -> Dict[str, list]:
  """The tables of bert_unicode_tables, as tensorflow_text's own ops give them for every codepoint."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text as tf_text  # pylint: disable=g-import-not-at-top

  codepoints = all_codepoints()
  texts = [chr(c).encode("utf-8") for c in codepoints]
  batch = 1 << 18
  result: Dict[str, list] = {}
  for name, lower_case in (("LOWER_CASE_EXCEPTIONS", True), ("CASED_EXCEPTIONS", False)):
    normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=lower_case)
    exceptions = {}
    for start in range(0, len(texts), batch):
      normalized = normalizer.normalize(tf.constant(texts[start:start + batch])).numpy()
      for codepoint, value in zip(codepoints[start:start + batch], normalized):
        value = value.decode("utf-8")
        if value != _derived_normalization(chr(codepoint), lower_case):
          exceptions[codepoint] = value
    result[name] = _value_runs(exceptions)
  # "a" + c + "a" with a vocab of "a" and "##a": whitespace gives [a, a], punctuation [a, UNK, a],
  # anything else one word that no piece covers, [UNK].
  probe = tf_text.FastWordpieceTokenizer(vocab=["[UNK]", "a", "##a"], token_out_type=tf.int64, unknown_token="[UNK]")
  whitespace, punctuation = [], []
  for start in range(0, len(texts), batch):
    ids = probe.tokenize(tf.constant([b"a" + t + b"a" for t in texts[start:start + batch]])).to_list()
    for codepoint, row in zip(codepoints[start:start + batch], ids):
      if row == [1, 1]:
        whitespace.append(codepoint)
      elif row == [1, 0, 1]:
        punctuation.append(codepoint)
  result["WHITESPACE"] = _runs(whitespace)
  result["PUNCTUATION"] = _runs(punctuation)
  return result


def tables_module(reference: Dict[str, list]) -> str:
  import tensorflow_text as tf_text  # pylint: disable=g-import-not-at-top
  lines = [
      '"""Unicode data of tensorflow_text\'s FastBertTokenizer that Python\'s unicodedata lacks (see data_prep.wordpiece).',
      "",
      f"Generated by `python -m data_prep.wordpiece` from tensorflow-text {tf_text.__version__} "
      f"(Python unicodedata {unicodedata.unidata_version}); do not edit.",
      "*_EXCEPTIONS: (first, last, normalized) runs of codepoints whose normalization differs from the one",
      "derived from unicodedata; WHITESPACE, PUNCTUATION: (first, last) runs, complete.",
      '"""',
  ]
  for name in ("WHITESPACE", "PUNCTUATION", "LOWER_CASE_EXCEPTIONS", "CASED_EXCEPTIONS"):
    lines.append(f"{name} = (")
    lines.extend(f"    {tuple(run)!r}," for run in reference[name])
    lines.append(")")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  print(tables_module(reference_tables()), end="")
