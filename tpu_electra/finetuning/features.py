"""The tokenizer protocol the task modules convert text against, and shared padding helpers.

Feature conversion only needs token ids, so any tokenizer with `tokenize(text) -> List[int]` and a
`special_token_ids` mapping that names `[CLS]`, `[SEP]` and `[PAD]` will do: the WordPiece and
SentencePiece tokenizers of `tpu_electra.data.tokenization`, or a tiny fake in a test.
"""
import dataclasses
from typing import List, Mapping, Protocol, Sequence

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


def pad(values: Sequence[int], length: int, value: int) -> List[int]:
  """Right-pads to exactly `length`; longer input is a bug in the caller's truncation."""
  if len(values) > length:
    raise ValueError(f"sequence of length {len(values)} does not fit in {length}")
  return list(values) + [value] * (length - len(values))


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
