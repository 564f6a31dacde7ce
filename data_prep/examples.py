"""ELECTRA-style pretraining examples: consecutive sentences of one document packed to a length.

Sentences of a document accumulate into a chunk until it reaches a target length; the chunk is
then cut at a random sentence boundary into segments A and B and written as
`[CLS] A [SEP] B [SEP]`. Unlike BERT's next-sentence data, B always follows A in the document, and
some examples keep a single segment (`[CLS] A [SEP]`), as in ELECTRA's builder, so the encoder also
sees single-text inputs. A few examples get a random shorter target so the model sees short
sequences too. No token is ever cut off: a sentence that would overflow the sequence starts the
next chunk, and a sentence longer than a whole sequence is split into sequence-sized pieces first.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import dataclasses
import random
from typing import Iterator, List, Sequence

import tensorflow as tf

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


@dataclasses.dataclass(frozen=True)
class Example:
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]

  @property
  def num_tokens(self) -> int:
    return sum(self.input_mask)

  def serialize(self) -> bytes:
    features = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=getattr(self, name)))
                for name in manifest_lib.EXAMPLE_FEATURES}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def split_long(sentences: Sequence[Sequence[int]], budget: int) -> List[List[int]]:
  pieces = []
  for sentence in sentences:
    for start in range(0, len(sentence), budget):
      pieces.append(list(sentence[start:start + budget]))
  return pieces


def make_example(first: Sequence[int], second: Sequence[int], config: PackingConfig) -> Example:
  """`[CLS] first [SEP] second [SEP]` (no second part when `second` is empty), zero-padded."""
  ids = [config.cls_id, *first, config.sep_id]
  segments = [0] * len(ids)
  if second:
    ids += [*second, config.sep_id]
    segments += [1] * (len(second) + 1)
  if len(ids) > config.max_seq_length:
    raise ValueError(f"example of {len(ids)} tokens exceeds max_seq_length={config.max_seq_length}")
  padding = [0] * (config.max_seq_length - len(ids))
  return Example(input_ids=ids + padding, input_mask=[1] * len(ids) + padding, segment_ids=segments + padding)


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
