"""ELECTRA-style pretraining examples: consecutive sentences of one document packed to a length.

Sentences of a document accumulate into a chunk until it reaches a target length; the chunk is
then cut at a random sentence boundary into segments A and B and written as
`[CLS] A [SEP] B [SEP]`. Unlike BERT's next-sentence data, B always follows A in the document, and
some examples keep a single segment (`[CLS] A [SEP]`), as in ELECTRA's builder, so the encoder also
sees single-text inputs. A few examples get a random shorter target so the model sees short
sequences too. No token is ever cut off: a sentence that would overflow the sequence starts the
next chunk, and a sentence longer than a whole sequence is split into sequence-sized pieces first.

BERT's next-sentence pairs (`pack_next_sentence`) always have two segments; half of them take B
from another document (label 1) instead of the text that follows A (label 0). A random B is
filled to the remaining length and its tail cut; the sentences of the chunk it displaced are not
lost, they start the next example, so here too no token of a document is dropped.

Two implementations of ELECTRA-style packing give the same examples from the same random draws:
`pack_document` (one document's token lists to `Example`s, the readable definition) and
`pack_documents` (the builder's path: the token ids of many documents in one flat array, packed
into an `ExampleBatch` of [N, max_seq_length] arrays). The latter walks only sentence lengths in
Python, one step per sentence, and gathers the ids of all examples with one numpy indexing
operation; tests/data_prep/test_examples.py pins it to the former.
"""
import dataclasses
import random
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from tpu_electra.data import manifest as manifest_lib

NUM_SPECIAL = 3  # [CLS], [SEP], [SEP]
DEFAULT_SHORT_SEQ_PROB = 0.05
DEFAULT_SINGLE_SEGMENT_PROB = 0.1
MIN_SHORT_TARGET = 5


@dataclasses.dataclass(frozen=True)
class PackingConfig:
  max_seq_length: int
  cls_id: int
  sep_id: int
  short_seq_prob: float = DEFAULT_SHORT_SEQ_PROB
  single_segment_prob: float = DEFAULT_SINGLE_SEGMENT_PROB

  @property
  def budget(self) -> int:
    """Room for text tokens once [CLS] and two [SEP] are in."""
    return self.max_seq_length - NUM_SPECIAL


NEXT_SENTENCE_LABEL = "next_sentence_labels"
# Written by static masking (see tpu_electra.data.masking for their meaning); the weights are
# floats, the rest int64.
MASKED_LM_FEATURES = ("masked_input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
FLOAT_FEATURES = frozenset({"masked_lm_weights"})


@dataclasses.dataclass(frozen=True)
class Example:
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]
  next_sentence_label: Optional[int] = None  # Set by next-sentence packing: 1 when B is random.

  @property
  def num_tokens(self) -> int:
    return sum(self.input_mask)

  def features(self) -> Dict[str, Union[List[int], int]]:
    features = {name: getattr(self, name) for name in manifest_lib.EXAMPLE_FEATURES}
    if self.next_sentence_label is not None:
      features[NEXT_SENTENCE_LABEL] = self.next_sentence_label
    return features

  def serialize(self, extra: Optional[Dict[str, Sequence]] = None) -> bytes:
    return serialize_features({**self.features(), **(extra or {})})


def serialize_features(features: Dict[str, Union[Sequence[int], Sequence[float], int]]) -> bytes:
  """A tf.train.Example; a plain int becomes a one-value (scalar) feature (the reference for data_prep.tfexample)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (the builder serializes with data_prep.tfexample)
  proto = {}
  for name, value in features.items():
    values = [value] if isinstance(value, int) else value
    if name in FLOAT_FEATURES:
      proto[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      proto[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  # Deterministic: map order otherwise differs between processes, and so would the bytes.
  return tf.train.Example(features=tf.train.Features(feature=proto)).SerializeToString(deterministic=True)


@dataclasses.dataclass(frozen=True)
class ExampleBatch:
  """Examples as arrays: [N, max_seq_length] int64 ids, mask and segments, [N] labels of next-sentence pairs."""
  input_ids: np.ndarray
  input_mask: np.ndarray
  segment_ids: np.ndarray
  next_sentence_labels: Optional[np.ndarray] = None

  def __len__(self) -> int:
    return len(self.input_ids)

  @property
  def num_tokens(self) -> int:
    return int(self.input_mask.sum())

  def features(self) -> Dict[str, np.ndarray]:
    features = {name: getattr(self, name) for name in manifest_lib.EXAMPLE_FEATURES}
    if self.next_sentence_labels is not None:
      features[NEXT_SENTENCE_LABEL] = self.next_sentence_labels
    return features

  def rows(self, start: int, end: int) -> "ExampleBatch":
    labels = None if self.next_sentence_labels is None else self.next_sentence_labels[start:end]
    return ExampleBatch(self.input_ids[start:end], self.input_mask[start:end], self.segment_ids[start:end], labels)

  @classmethod
  def from_examples(cls, examples: Sequence[Example], max_seq_length: int,
                    next_sentence: bool = False) -> "ExampleBatch":
    def column(name):
      return np.array([getattr(e, name) for e in examples], np.int64).reshape(len(examples), max_seq_length)
    labels = np.array([e.next_sentence_label for e in examples], np.int64) if next_sentence else None
    return cls(column("input_ids"), column("input_mask"), column("segment_ids"), labels)


def split_long(sentences: Sequence[Sequence[int]], budget: int) -> List[List[int]]:
  pieces = []
  for sentence in sentences:
    for start in range(0, len(sentence), budget):
      pieces.append(list(sentence[start:start + budget]))
  return pieces


def make_example(first: Sequence[int], second: Sequence[int], config: PackingConfig,
                 next_sentence_label: Optional[int] = None) -> Example:
  """`[CLS] first [SEP] second [SEP]` (no second part when `second` is empty), zero-padded."""
  ids = [config.cls_id, *first, config.sep_id]
  segments = [0] * len(ids)
  if second:
    ids += [*second, config.sep_id]
    segments += [1] * (len(second) + 1)
  if len(ids) > config.max_seq_length:
    raise ValueError(f"example of {len(ids)} tokens exceeds max_seq_length={config.max_seq_length}")
  padding = [0] * (config.max_seq_length - len(ids))
  return Example(input_ids=ids + padding, input_mask=[1] * len(ids) + padding, segment_ids=segments + padding,
                 next_sentence_label=next_sentence_label)


def _chunk_to_example(chunk: List[List[int]], config: PackingConfig, rng: random.Random) -> Example:
  if len(chunk) == 1 or rng.random() < config.single_segment_prob:
    return make_example([t for s in chunk for t in s], [], config)
  cut = rng.randint(1, len(chunk) - 1)
  first = [t for s in chunk[:cut] for t in s]
  second = [t for s in chunk[cut:] for t in s]
  return make_example(first, second, config)


def _target_length(config: PackingConfig, rng: random.Random) -> int:
  if config.budget > MIN_SHORT_TARGET and rng.random() < config.short_seq_prob:
    return rng.randint(MIN_SHORT_TARGET, config.budget)
  return config.budget


def pack_document(sentences: Sequence[Sequence[int]], config: PackingConfig, rng: random.Random) -> Iterator[Example]:
  """Examples of one document's tokenized sentences, in document order."""
  if config.budget < 1:
    raise ValueError(f"max_seq_length={config.max_seq_length} leaves no room for text next to [CLS] and two [SEP]")
  chunk: List[List[int]] = []
  length = 0
  target = _target_length(config, rng)
  for sentence in split_long([s for s in sentences if s], config.budget):
    if chunk and length + len(sentence) > config.budget:
      yield _chunk_to_example(chunk, config, rng)
      chunk, length, target = [], 0, _target_length(config, rng)
    chunk.append(sentence)
    length += len(sentence)
    if length >= target:
      yield _chunk_to_example(chunk, config, rng)
      chunk, length, target = [], 0, _target_length(config, rng)
  if chunk:
    yield _chunk_to_example(chunk, config, rng)


def plan_documents(sentence_lengths: Sequence[int], document_sizes: Sequence[int], config: PackingConfig,
                   rng: random.Random) -> np.ndarray:
  """Where `pack_document` would cut each document, as [N, 3] (start, cut, end) token offsets.

  The documents' sentences are `sentence_lengths` (token counts), `document_sizes[d]` sentences
  for document d, their tokens back to back in one array; an example is `[CLS] tokens[start:cut]
  [SEP]`, followed by `tokens[cut:end] [SEP]` when cut < end. The random draws are exactly those
  of `pack_document` on each document in turn (its _target_length and _chunk_to_example are
  inlined here: this loop runs once per sentence of the corpus).
  """
  if config.budget < 1:
    raise ValueError(f"max_seq_length={config.max_seq_length} leaves no room for text next to [CLS] and two [SEP]")
  budget = config.budget
  may_shorten = budget > MIN_SHORT_TARGET
  short_seq_prob, single_segment_prob = config.short_seq_prob, config.single_segment_prob
  uniform, randint = rng.random, rng.randint

  def target_length():
    if may_shorten and uniform() < short_seq_prob:
      return randint(MIN_SHORT_TARGET, budget)
    return budget

  spans: List[Tuple[int, int, int]] = []

  def close(chunk: List[int], end: int) -> None:
    if len(chunk) == 1 or uniform() < single_segment_prob:
      spans.append((chunk[0], end, end))
    else:
      spans.append((chunk[0], chunk[randint(1, len(chunk) - 1)], end))

  position = first = 0
  for size in document_sizes:
    chunk: List[int] = []  # Offsets at which the pieces of the chunk start.
    length = 0
    target = target_length()
    for remaining in sentence_lengths[first:first + size]:
      while remaining:  # An empty sentence has no piece; a long one is cut into budget-sized pieces.
        piece = remaining if remaining < budget else budget
        remaining -= piece
        if chunk and length + piece > budget:
          close(chunk, position)
          chunk, length, target = [], 0, target_length()
        chunk.append(position)
        length += piece
        position += piece
        if length >= target:
          close(chunk, position)
          chunk, length, target = [], 0, target_length()
    first += size
    if chunk:
      close(chunk, position)
  return np.array(spans, np.int64).reshape(len(spans), 3)


def assemble(tokens: np.ndarray, spans: np.ndarray, config: PackingConfig) -> ExampleBatch:
  """The examples of `plan_documents` spans over `tokens`, all at once (what make_example does to each)."""
  rows = np.arange(len(spans))
  position = np.arange(config.max_seq_length)[None, :]
  start, cut, end = spans[:, 0], spans[:, 1], spans[:, 2]
  len_a = cut - start
  length = len_a + 2 + np.where(end > cut, end - cut + 1, 0)  # [CLS] A [SEP], and B [SEP] when there is a B.
  if length.size and length.max() > config.max_seq_length:
    raise ValueError(f"example of {length.max()} tokens exceeds max_seq_length={config.max_seq_length}")
  first_sep, last = len_a[:, None] + 1, length[:, None] - 1
  in_b = position > first_sep
  # Text sits between [CLS] and the last [SEP], except at the first [SEP] (no B: the first is the last).
  text = (position >= 1) & (position < last) & (position != first_sep)
  # A and B are consecutive in `tokens`, so B's source is A's shifted by the [SEP] between them.
  source = np.where(text, start[:, None] + position - 1 - in_b, 0)
  ids = np.where(text, tokens[source] if tokens.size else 0, 0)
  ids[:, 0] = config.cls_id
  ids[rows, first_sep[:, 0]] = config.sep_id
  ids[rows, last[:, 0]] = config.sep_id
  mask = position <= last
  return ExampleBatch(ids.astype(np.int64, copy=False), mask.astype(np.int64), (in_b & mask).astype(np.int64))


def pack_documents(tokens: np.ndarray, sentence_lengths: Sequence[int], document_sizes: Sequence[int],
                   config: PackingConfig, rng: random.Random) -> ExampleBatch:
  """pack_document over each document in turn, as one batch (see plan_documents for the layout)."""
  return assemble(np.asarray(tokens, np.int64), plan_documents(sentence_lengths, document_sizes, config, rng), config)


def _flatten(sentences: Sequence[Sequence[int]]) -> List[int]:
  return [t for s in sentences for t in s]


def pack_next_sentence(documents: Sequence[Sequence[Sequence[int]]], index: int, config: PackingConfig,
                       rng: random.Random, random_next_prob: float = 0.5) -> Iterator[Example]:
  """BERT next-sentence examples of `documents[index]`; random B segments come from other documents.

  A is the first 1..n-1 sentences of a chunk and B the rest (label 0), or, with probability
  `random_next_prob`, B is text from a random point of another document (label 1). A chunk of
  one sentence is cut in two for an actual-next pair, so labels stay balanced even when long
  sentences make many one-sentence chunks.
  """
  if config.budget < 2:
    raise ValueError(f"max_seq_length={config.max_seq_length} leaves no room for two segments next to [CLS] and two [SEP]")
  sentences = split_long([s for s in documents[index] if s], config.budget)
  others = [i for i in range(len(documents)) if i != index and any(documents[i])]
  position = 0
  while position < len(sentences):
    target = _target_length(config, rng)
    chunk: List[List[int]] = []
    length = 0
    # Like pack_document: a sentence that would overflow the sequence waits for the next chunk.
    while position < len(sentences) and length < target:
      if chunk and length + len(sentences[position]) > config.budget:
        break
      chunk.append(sentences[position])
      length += len(sentences[position])
      position += 1
    cut = rng.randint(1, len(chunk) - 1) if len(chunk) > 1 else 1
    first, rest = _flatten(chunk[:cut]), chunk[cut:]
    if others and rng.random() < random_next_prob and len(first) < config.budget:
      room = config.budget - len(first)
      second = _random_segment(documents[rng.choice(others)], max(1, target - len(first)), rng)[:room]
      label = 1
      position -= len(rest)  # The displaced sentences start the next example.
    elif rest:
      second, label = _flatten(rest), 0
    else:
      # A one-sentence chunk: its second half is what follows its first.
      half = max(1, len(first) // 2)
      first, second, label = first[:half], first[half:], 0
    if first and second:
      yield make_example(first, second, config, next_sentence_label=label)


def _random_segment(document: Sequence[Sequence[int]], length: int, rng: random.Random) -> List[int]:
  """At least `length` tokens (when the document has them) from a random sentence on."""
  sentences = [s for s in document if s]
  start = rng.randint(0, len(sentences) - 1)
  segment: List[int] = []
  for sentence in sentences[start:]:
    segment.extend(sentence)
    if len(segment) >= length:
      break
  return segment
