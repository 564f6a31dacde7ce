"""Packing invariants of ELECTRA-style examples."""
import random

import numpy as np
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


def _nsp_examples(seed=0, num_documents=40, config=CONFIG, prob=0.5):
  rng = random.Random(seed)
  documents = [_document(rng, num_sentences=rng.randint(1, 30)) for _ in range(num_documents)]
  packed = [e for i in range(len(documents)) for e in examples.pack_next_sentence(documents, i, config, rng, prob)]
  return documents, packed


def _segments(example):
  n = example.num_tokens
  seps = [i for i, t in enumerate(example.input_ids[:n]) if t == SEP]
  return example.input_ids[1:seps[0]], example.input_ids[seps[0] + 1:n - 1]


def test_next_sentence_pairs_always_have_two_segments_and_about_half_are_random():
  _, packed = _nsp_examples()
  labels = [e.next_sentence_label for e in packed]
  assert set(labels) == {0, 1}
  assert 0.35 < sum(labels) / len(labels) < 0.65
  for example in packed:
    first, second = _segments(example)
    assert first and second and example.num_tokens <= CONFIG.max_seq_length
    assert example.segment_ids[:len(first) + 2] == [0] * (len(first) + 2)
    assert example.segment_ids[len(first) + 2:example.num_tokens] == [1] * (len(second) + 1)


def test_actual_next_pairs_are_consecutive_text_of_one_document():
  documents, packed = _nsp_examples(prob=0.0)
  texts = [[t for s in d for t in s] for d in documents]
  for example in (e for e in packed if e.next_sentence_label == 0):
    first, second = _segments(example)
    joined = first + second
    assert any(_contains(text, joined) for text in texts)


def _contains(text, part):
  return any(text[i:i + len(part)] == part for i in range(len(text) - len(part) + 1))


def test_next_sentence_text_of_a_document_is_not_lost_when_b_is_random():
  # Long enough sentences that no pair needs trimming: every token of the document shows up in some A or actual B.
  config = examples.PackingConfig(max_seq_length=64, cls_id=CLS, sep_id=SEP, short_seq_prob=0.0)
  rng = random.Random(3)
  documents = [[[rng.randint(5, 99) for _ in range(9)] for _ in range(12)] for _ in range(6)]
  packed = list(examples.pack_next_sentence(documents, 0, config, rng, random_next_prob=1.0))
  firsts = [t for e in packed for t in _segments(e)[0]]
  assert firsts == [t for s in documents[0] for t in s]
  assert all(e.next_sentence_label == 1 for e in packed)


def test_a_lone_document_gives_actual_next_pairs_only():
  rng = random.Random(0)
  packed = list(examples.pack_next_sentence([_document(rng)], 0, CONFIG, rng))
  assert packed and {e.next_sentence_label for e in packed} == {0}


def test_extra_features_serialize_with_their_types():
  example = examples.make_example([10, 11], [12], CONFIG, next_sentence_label=1)
  record = example.serialize({"masked_lm_positions": [1, 4], "masked_lm_weights": [1.0, 0.0]})
  parsed = tf.io.parse_single_example(record, {
      "next_sentence_labels": tf.io.FixedLenFeature([], tf.int64),
      "masked_lm_positions": tf.io.FixedLenFeature([2], tf.int64),
      "masked_lm_weights": tf.io.FixedLenFeature([2], tf.float32),
  })
  assert int(parsed["next_sentence_labels"]) == 1
  assert parsed["masked_lm_positions"].numpy().tolist() == [1, 4]
  assert parsed["masked_lm_weights"].numpy().tolist() == [1.0, 0.0]
  assert record == examples.make_example([10, 11], [12], CONFIG, next_sentence_label=1).serialize(
      {"masked_lm_weights": [1.0, 0.0], "masked_lm_positions": [1, 4]})


# The builder's vectorised packer (pack_documents) against the per-example definition (pack_document).


def _pack_both(documents, config, seed=0):
  """(pack_document over each document, pack_documents over all, as Examples); asserts equal random draws."""
  reference_rng, batch_rng = random.Random(seed), random.Random(seed)
  reference = [e for document in documents for e in examples.pack_document(document, config, reference_rng)]
  tokens = np.array([t for document in documents for sentence in document for t in sentence], np.int64)
  lengths = [len(sentence) for document in documents for sentence in document]
  batch = examples.pack_documents(tokens, lengths, [len(d) for d in documents], config, batch_rng)
  assert reference_rng.getstate() == batch_rng.getstate()  # The same draws, so later documents pack alike too.
  return reference, batch


def _batch_examples(batch):
  return [examples.Example(input_ids=ids.tolist(), input_mask=mask.tolist(), segment_ids=segments.tolist())
          for ids, mask, segments in zip(batch.input_ids, batch.input_mask, batch.segment_ids)]


@pytest.mark.parametrize("documents", [
    [],  # No document at all.
    [[]],  # A document without sentences still draws its first target length.
    [[[], [], []]],  # Only empty sentences (a line that tokenized to nothing).
    [[[7]]],  # One token: far shorter than a sequence.
    [[[7, 8]], [[9]], [[10, 11, 12]]],  # Several documents, each shorter than a sequence.
    [[list(range(5, 5 + 29))]],  # Exactly one budget (32 - 3 special tokens) long.
    [[list(range(5, 5 + 58))], [list(range(5, 5 + 59))]],  # Exact multiples of the budget, and one over.
    [[list(range(5, 305)), [], [9, 9], list(range(5, 100))]],  # Very long sentences between short and empty ones.
    [[[5] * 28, [6], [7] * 3, [8] * 29, [], [9]]],  # Sentences that land exactly on and just over the budget.
])
def test_pack_documents_equals_pack_document_on_tricky_inputs(documents):
  for config in (CONFIG, examples.PackingConfig(32, CLS, SEP, short_seq_prob=1.0, single_segment_prob=0.0),
                 examples.PackingConfig(32, CLS, SEP, short_seq_prob=0.0, single_segment_prob=1.0)):
    reference, batch = _pack_both(documents, config)
    assert _batch_examples(batch) == reference


@pytest.mark.parametrize("max_seq_length", [4, 5, 6, 8, 9, 128, 512])
def test_pack_documents_equals_pack_document_on_random_corpora_at_any_length(max_seq_length):
  rng = random.Random(max_seq_length)
  config = examples.PackingConfig(max_seq_length, CLS, SEP, short_seq_prob=0.3, single_segment_prob=0.2)
  lengths = [0, 1, 3, rng.randint(1, max_seq_length), rng.randint(max_seq_length, 4 * max_seq_length)]  # Some too long.
  documents = [[[rng.randint(5, 30000) for _ in range(rng.choice(lengths))] for _ in range(rng.randint(0, 15))]
               for _ in range(30)]
  reference, batch = _pack_both(documents, config, seed=max_seq_length)
  assert _batch_examples(batch) == reference
  assert batch.num_tokens == sum(e.num_tokens for e in reference)


def test_example_batch_rows_and_features_follow_the_examples():
  _, batch = _pack_both([[[5, 6, 7]] * 30], CONFIG)
  part = batch.rows(1, 3)
  assert len(part) == 2 and (part.input_ids == batch.input_ids[1:3]).all()
  assert list(part.features()) == list(manifest_lib.EXAMPLE_FEATURES)
  assert part.next_sentence_labels is None
