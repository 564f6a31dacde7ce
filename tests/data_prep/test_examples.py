"""Packing invariants of ELECTRA-style examples."""
import random

import pytest
import tensorflow as tf

from data_prep import examples
from tpu_electra.data import manifest as manifest_lib

CLS, SEP = 2, 3
CONFIG = examples.PackingConfig(max_seq_length=32, cls_id=CLS, sep_id=SEP)


def _document(rng, num_sentences=40):
  return [[rng.randint(5, 99) for _ in range(rng.randint(1, 20))] for _ in range(num_sentences)]


def _pack_many(config=CONFIG, seed=0, num_documents=50):
  rng = random.Random(seed)
  documents = [_document(rng) for _ in range(num_documents)]
  packed = [list(examples.pack_document(d, config, rng)) for d in documents]
  return documents, packed


def test_every_example_is_cls_a_sep_optional_b_sep_with_matching_segments_and_padding():
  _, packed = _pack_many()
  for example in (e for document in packed for e in document):
    n = example.num_tokens
    assert len(example.input_ids) == len(example.input_mask) == len(example.segment_ids) == CONFIG.max_seq_length
    assert example.input_mask == [1] * n + [0] * (CONFIG.max_seq_length - n)
    assert example.input_ids[0] == CLS and example.input_ids[n - 1] == SEP
    assert example.input_ids[n:] == [0] * (CONFIG.max_seq_length - n)
    seps = [i for i, t in enumerate(example.input_ids[:n]) if t == SEP]
    has_b = 1 in example.segment_ids
    assert len(seps) == (2 if has_b else 1)
    first_sep = seps[0]
    assert example.segment_ids[:first_sep + 1] == [0] * (first_sep + 1)
    assert example.segment_ids[first_sep + 1:n] == [1] * (n - first_sep - 1)
    assert example.segment_ids[n:] == [0] * (CONFIG.max_seq_length - n)
    if has_b:
      assert first_sep > 1 and seps[1] == n - 1 > first_sep + 1  # A and B both non-empty.


def test_no_token_is_lost_and_order_is_kept():
  documents, packed = _pack_many()
  for document, document_examples in zip(documents, packed):
    text = [t for e in document_examples for t in e.input_ids[:e.num_tokens] if t not in (CLS, SEP)]
    assert text == [t for sentence in document for t in sentence]


def test_examples_are_mostly_full_some_short_some_single_segment():
  _, packed = _pack_many(num_documents=200)
  flat = [e for document in packed for e in document]
  lengths = [e.num_tokens for e in flat]
  assert sum(n >= CONFIG.max_seq_length - 20 for n in lengths) > 0.6 * len(flat)
  single = sum(1 not in e.segment_ids for e in flat)
  assert 0.05 * len(flat) < single < 0.4 * len(flat)


def test_packing_is_deterministic_given_the_seed():
  assert _pack_many(seed=5)[1] == _pack_many(seed=5)[1]
  assert _pack_many(seed=5)[1] != _pack_many(seed=6)[1]


def test_sentence_longer_than_a_sequence_is_split_not_truncated():
  long_sentence = list(range(5, 5 + 70))
  packed = list(examples.pack_document([long_sentence], CONFIG, random.Random(0)))
  assert len(packed) == 3
  assert [t for e in packed for t in e.input_ids[1:e.num_tokens - 1]] == long_sentence


def test_short_targets_make_shorter_examples():
  config = examples.PackingConfig(max_seq_length=64, cls_id=CLS, sep_id=SEP, short_seq_prob=1.0)
  document = [[7, 8, 9]] * 200
  lengths = [e.num_tokens for e in examples.pack_document(document, config, random.Random(1))]
  assert min(lengths) < 30 and max(lengths) <= 64


def test_serialized_example_parses_with_the_manifest_features():
  example = examples.make_example([10, 11], [12], CONFIG)
  spec = {name: tf.io.FixedLenFeature([CONFIG.max_seq_length], tf.int64) for name in manifest_lib.EXAMPLE_FEATURES}
  parsed = tf.io.parse_single_example(example.serialize(), spec)
  assert parsed["input_ids"].numpy().tolist()[:6] == [CLS, 10, 11, SEP, 12, SEP]
  assert parsed["segment_ids"].numpy().tolist()[:6] == [0, 0, 0, 0, 1, 1]


def test_sequence_too_short_for_special_tokens_is_refused():
  with pytest.raises(ValueError, match="leaves no room"):
    list(examples.pack_document([[5]], examples.PackingConfig(3, CLS, SEP), random.Random(0)))
