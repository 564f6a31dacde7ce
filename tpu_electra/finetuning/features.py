"""The tokenizer protocol the task modules convert text against, and shared padding helpers.

Feature conversion only needs token ids, so any tokenizer with `tokenize(text) -> List[int]` and a
`special_token_ids` mapping that names `[CLS]`, `[SEP]` and `[PAD]` will do: the WordPiece and
SentencePiece tokenizers of `tpu_electra.data.tokenization`, or a tiny fake in a test.
"""
import dataclasses
from typing import Dict, Iterable, List, Mapping, Protocol, Sequence, Tuple

import numpy as np

CLS = "[CLS]"
SEP = "[SEP]"
PAD = "[PAD]"

# Positions that carry no label: the value Keras-side losses are told to ignore.
IGNORE_LABEL = -1


class Tokenizer(Protocol):
  """What feature conversion needs from a tokenizer."""

  special_token_ids: Mapping[str, int]

  def tokenize(self, text: str) -> List[int]:
    """Token ids of `text`, without any special tokens."""


@dataclasses.dataclass(frozen=True)
class SpecialIds:
  cls: int
  sep: int
  pad: int


def special_ids(tokenizer: Tokenizer) -> SpecialIds:
  """Looks the three special ids up once, with an error that says which one is missing."""
  ids = tokenizer.special_token_ids
  missing = [name for name in (CLS, SEP, PAD) if name not in ids]
  if missing:
    raise ValueError(f"tokenizer.special_token_ids lacks {missing}; it has {sorted(ids)}")
  return SpecialIds(cls=ids[CLS], sep=ids[SEP], pad=ids[PAD])


def tokenize_each(tokenizer: Tokenizer, texts: Sequence[str]) -> List[List[int]]:
  """Token ids of each text, in one call when the tokenizer offers `tokenize_batch`.

  Word-by-word tokenization (SQuAD, tagging) would otherwise be one op call per word with the
  tensorflow_text tokenizers, which dominates conversion time on a full dataset.
  """
  if not texts:
    return []
  tokenize_batch = getattr(tokenizer, "tokenize_batch", None)
  if tokenize_batch is not None:
    return [list(ids) for ids in tokenize_batch(list(texts))]
  return [tokenizer.tokenize(text) for text in texts]


# Texts per tokenizer op call in batched preparation: large enough that the per-call cost vanishes,
# small enough that one call's strings and ragged ids stay a few MB.
TOKENIZE_BATCH = 8192


def tokenize_ragged(tokenizer: Tokenizer, texts: Sequence[str],
                    batch_size: int = TOKENIZE_BATCH) -> Tuple[np.ndarray, np.ndarray]:
  """Token ids of every text as one ragged array: (flat int64 ids, row splits of len(texts) + 1).

  Tokenizers with `tokenize_tensor` (the tensorflow_text ones) run one op call per `batch_size`
  texts and never build Python lists; others fall back to `tokenize_each`.
  """
  tokenize_tensor = getattr(tokenizer, "tokenize_tensor", None)
  values: List[np.ndarray] = []
  lengths: List[np.ndarray] = []
  if tokenize_tensor is not None and texts:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (readers and metrics stay TF-free)
    for start in range(0, len(texts), batch_size):
      ragged = tokenize_tensor(tf.constant(list(texts[start:start + batch_size]), dtype=tf.string))
      values.append(ragged.flat_values.numpy().astype(np.int64, copy=False))
      lengths.append(np.diff(ragged.row_splits.numpy()))
  else:
    for ids in tokenize_each(tokenizer, texts):
      values.append(np.asarray(ids, np.int64))
      lengths.append(np.asarray([len(ids)], np.int64))
  flat = np.concatenate(values) if values else np.zeros([0], np.int64)
  splits = np.zeros([len(texts) + 1], np.int64)
  if lengths:
    np.cumsum(np.concatenate(lengths), out=splits[1:])
  return flat, splits


class MemoTokenizer:
  """A tokenizer over a known set of texts, tokenized up front in batches; lookups afterwards.

  Feature conversion written one example at a time (SQuAD windows, tagging, RACE) keeps its exact
  logic but no longer pays one op call per text or word: collect a chunk's texts, tokenize them
  in a few batched calls, and convert the chunk against this. A text outside the set is
  tokenized on demand.
  """

  def __init__(self, tokenizer: Tokenizer, texts: Iterable[str]):
    self.tokenizer = tokenizer
    self.special_token_ids = tokenizer.special_token_ids
    unique = list(dict.fromkeys(texts))
    flat, splits = tokenize_ragged(tokenizer, unique)
    ids = flat.tolist()
    bounds = splits.tolist()
    self._ids: Dict[str, List[int]] = {text: ids[bounds[i]:bounds[i + 1]] for i, text in enumerate(unique)}

  def tokenize(self, text: str) -> List[int]:
    found = self._ids.get(text)
    if found is None:
      found = self._ids[text] = list(self.tokenizer.tokenize(text))
    return list(found)

  def tokenize_batch(self, texts: Sequence[str]) -> List[List[int]]:
    return [self.tokenize(text) for text in texts]


def pad(values: Sequence[int], length: int, value: int) -> List[int]:
  """Right-pads to exactly `length`; longer input is a bug in the caller's truncation."""
  if len(values) > length:
    raise ValueError(f"sequence of length {len(values)} does not fit in {length}")
  return list(values) + [value] * (length - len(values))


def truncate_pair_lengths(len_a: np.ndarray, len_b: np.ndarray,
                          max_length: int) -> Tuple[np.ndarray, np.ndarray]:
  """Vectorized `glue.truncate_pair`: the longer side gives way one token at a time (b on a tie).

  The loop's result in closed form: a keeps min(len_a, max(ceil(max/2), max - len_b)) tokens (all of
  them when b is short, else half the budget with the odd token), and b the rest of the budget.
  """
  len_a = np.asarray(len_a, np.int64)
  len_b = np.asarray(len_b, np.int64)
  new_a = np.minimum(len_a, np.maximum((max_length + 1) // 2, max_length - len_b))
  new_b = np.minimum(len_b, max_length - new_a)
  return new_a, new_b


def pack_ragged(segments: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], max_seq_length: int,
                ids: SpecialIds) -> Dict[str, np.ndarray]:
  """Vectorized `pack_segments` for many rows: `[CLS] s0 [SEP] s1 [SEP] ...`, each cut to its kept length.

  Args:
    segments: per segment (flat ids, row splits, kept length per row); a row whose kept length
      is negative has no such segment (no tokens and no [SEP]), e.g. a missing second sentence.
      Segment i (and its [SEP]) gets type id min(i, 1), [CLS] type 0, as `pack_segments` with
      types [0, 1, 1, ...].
    max_seq_length: length of every row.
    ids: the special ids.

  Returns:
    `input_word_ids`, `input_mask`, `input_type_ids`, int32 [rows, max_seq_length].
  """
  num_rows = len(segments[0][2])
  word_ids = np.full([num_rows, max_seq_length], ids.pad, np.int32)
  type_ids = np.zeros([num_rows, max_seq_length], np.int32)
  if max_seq_length:
    word_ids[:, 0] = ids.cls
  row_base = np.arange(num_rows, dtype=np.int64) * max_seq_length
  start = np.ones([num_rows], np.int64)  # Where the current segment's tokens begin.
  for number, (flat, splits, kept) in enumerate(segments):
    kept = np.asarray(kept, np.int64)
    present = kept >= 0
    kept = np.maximum(kept, 0)
    if (start + kept + present > max_seq_length).any():
      raise ValueError(f"packed rows need more than {max_seq_length} positions")
    # Every kept token: its row, its offset in the segment, where it comes from and goes to.
    rows = np.repeat(np.arange(num_rows), kept)
    offsets = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(kept) - kept, kept)
    destination = row_base[rows] + start[rows] + offsets
    word_ids.flat[destination] = np.asarray(flat)[np.asarray(splits[:-1], np.int64)[rows] + offsets]
    separators = (row_base + start + kept)[present]
    word_ids.flat[separators] = ids.sep
    if number > 0:
      type_ids.flat[destination] = 1
      type_ids.flat[separators] = 1
    start = start + np.where(present, kept + 1, 0)
  input_mask = (np.arange(max_seq_length)[None, :] < start[:, None]).astype(np.int32)
  return {"input_word_ids": word_ids, "input_mask": input_mask, "input_type_ids": type_ids}


@dataclasses.dataclass
class PackedSequence:
  """One padded model input: ids, attention mask and segment (token type) ids."""
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]


def pack_segments(segments: Sequence[Sequence[int]], segment_types: Sequence[int],
                  max_seq_length: int, ids: SpecialIds) -> PackedSequence:
  """Builds `[CLS] s0 [SEP] s1 [SEP] ...`, padded to `max_seq_length`.

  `segment_types[i]` is the segment id given to segment i and to the [SEP] that closes it; [CLS]
  always gets segment 0, as in BERT.
  """
  if len(segments) != len(segment_types):
    raise ValueError("need one segment type per segment")
  input_ids = [ids.cls]
  segment_ids = [0]
  for tokens, segment_type in zip(segments, segment_types):
    input_ids.extend(tokens)
    input_ids.append(ids.sep)
    segment_ids.extend([segment_type] * (len(tokens) + 1))
  input_mask = [1] * len(input_ids)
  return PackedSequence(
      input_ids=pad(input_ids, max_seq_length, ids.pad),
      input_mask=pad(input_mask, max_seq_length, 0),
      segment_ids=pad(segment_ids, max_seq_length, 0))
