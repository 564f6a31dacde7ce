"""Masking: rate, 80/10/10 split, specials untouched, positions distinct (statistical checks)."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.data import masking

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
VOCAB = 1000


def _batch(batch_size=512, seq_length=128, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, VOCAB, size=(batch_size, seq_length))
  lengths = rng.integers(seq_length // 2, seq_length + 1, size=batch_size)
  mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype(np.int32)
  ids[:, 0] = SPECIAL["[CLS]"]
  ids[np.arange(batch_size), lengths - 1] = SPECIAL["[SEP]"]
  ids[np.arange(batch_size), lengths // 2] = SPECIAL["[SEP]"]
  ids = ids * mask
  return tf.constant(ids, tf.int32), tf.constant(mask, tf.int32), lengths


def test_masks_the_configured_rate_of_maskable_tokens():
  ids, mask, lengths = _batch()
  out = masking.mask_tokens(ids, mask, masking.MaskingConfig(mask_rate=0.15), SPECIAL, VOCAB, seed=1)
  num_masked = out["masked_lm_weights"].numpy().sum(axis=1)
  maskable = lengths - 3  # [CLS] and two [SEP]
  np.testing.assert_array_equal(num_masked, np.clip(np.round(maskable * 0.15), 1, 19))
  assert out["masked_lm_positions"].shape == (512, 19)


def test_split_between_mask_random_and_kept_follows_the_config():
  ids, mask, _ = _batch(batch_size=2048)
  config = masking.MaskingConfig(mask_token_fraction=0.8, random_token_fraction=0.1)
  out = masking.mask_tokens(ids, mask, config, SPECIAL, VOCAB, seed=2)
  weights = out["masked_lm_weights"].numpy() > 0
  at_positions = tf.gather(out["masked_input_ids"], out["masked_lm_positions"], batch_dims=1).numpy()[weights]
  original = out["masked_lm_ids"].numpy()[weights]
  n = len(original)
  became_mask = np.mean(at_positions == SPECIAL["[MASK]"])
  kept = np.mean(at_positions == original)
  random = 1.0 - became_mask - kept
  # n is about 28k: three standard errors of a proportion near 0.1 are about 0.005.
  assert abs(became_mask - 0.8) < 0.01, became_mask
  assert abs(kept - (0.1 + 0.1 / VOCAB)) < 0.01, kept
  assert abs(random - 0.1) < 0.01, random
  assert n > 25000


def test_random_replacements_are_never_special_tokens():
  ids, mask, _ = _batch(batch_size=256)
  config = masking.MaskingConfig(mask_token_fraction=0.0, random_token_fraction=1.0)
  out = masking.mask_tokens(ids, mask, config, SPECIAL, VOCAB, seed=3)
  weights = out["masked_lm_weights"].numpy() > 0
  replaced = tf.gather(out["masked_input_ids"], out["masked_lm_positions"], batch_dims=1).numpy()[weights]
  assert replaced.min() >= 5


def test_special_and_padding_tokens_are_never_masked_and_positions_are_distinct():
  ids, mask, _ = _batch(batch_size=256)
  out = masking.mask_tokens(ids, mask, masking.MaskingConfig(), SPECIAL, VOCAB, seed=4)
  weights = out["masked_lm_weights"].numpy() > 0
  chosen = tf.gather(ids, out["masked_lm_positions"], batch_dims=1).numpy()
  assert np.all(chosen[weights] >= 5)
  np.testing.assert_array_equal(out["masked_lm_ids"].numpy()[weights], chosen[weights])
  for row, w in zip(out["masked_lm_positions"].numpy(), weights):
    assert len(set(row[w])) == w.sum()
  unchanged = ids.numpy() == out["masked_input_ids"].numpy()
  touched = np.zeros_like(unchanged)
  for b, (row, w) in enumerate(zip(out["masked_lm_positions"].numpy(), weights)):
    touched[b, row[w]] = True
  assert np.all(unchanged[~touched])


def test_every_maskable_position_is_chosen_about_equally_often():
  ids = tf.constant([[2] + list(range(10, 40)) + [3]] * 4000, tf.int32)
  mask = tf.ones_like(ids)
  out = masking.mask_tokens(ids, mask, masking.MaskingConfig(mask_rate=0.1), SPECIAL, VOCAB, seed=5)
  positions = out["masked_lm_positions"].numpy()[out["masked_lm_weights"].numpy() > 0]
  counts = np.bincount(positions, minlength=32)
  assert counts[0] == 0 and counts[31] == 0
  expected = 4000 * 3 / 30
  assert np.all(np.abs(counts[1:31] - expected) < 5 * np.sqrt(expected))


@pytest.mark.parametrize("kwargs", [dict(mask_rate=0.0), dict(mask_token_fraction=0.8, random_token_fraction=0.3)])
def test_invalid_config_is_refused(kwargs):
  with pytest.raises(ValueError):
    masking.MaskingConfig(**kwargs)


def _word_batch(batch_size=256, seq_length=64, seed=0):
  """Ids 5..49 start words, ids 50..99 continue them; [CLS] first and [SEP] last."""
  ids, mask, lengths = _batch(batch_size, seq_length, seed)
  ids = np.where(ids.numpy() >= 5, ids.numpy() % 95 + 5, ids.numpy())
  continuation = np.zeros(VOCAB, bool)
  continuation[50:100] = True
  return tf.constant(ids, tf.int32), mask, lengths, continuation


def _masked(out, batch_size, seq_length):
  masked = np.zeros((batch_size, seq_length), bool)
  for b, (row, w) in enumerate(zip(out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy() > 0)):
    masked[b, row[w]] = True
  return masked


def test_whole_word_masking_masks_every_piece_of_a_chosen_word_and_nothing_special():
  ids, mask, _, continuation = _word_batch()
  config = masking.MaskingConfig(max_predictions_per_seq=12)
  out = masking.mask_tokens(ids, mask, config, SPECIAL, VOCAB, seed=7, word_continuation=continuation)
  masked = _masked(out, 256, 64)
  ids = ids.numpy()
  maskable = (mask.numpy() > 0) & ~np.isin(ids, [0, 2, 3])
  assert not (masked & ~maskable).any()
  follows = maskable & np.roll(maskable, 1, axis=1) & continuation[ids]
  follows[:, 0] = False
  # A continuing piece is masked exactly when the piece before it is.
  np.testing.assert_array_equal(masked[follows], np.roll(masked, 1, axis=1)[follows])
  assert (out["masked_lm_weights"].numpy().sum(axis=1) <= 12).all()
  assert (masked.sum(axis=1) >= 1).all()


def test_whole_word_masking_reaches_the_rate_with_at_most_a_word_of_overshoot():
  ids, mask, lengths, continuation = _word_batch(batch_size=512, seq_length=128)
  config = masking.MaskingConfig(mask_rate=0.15, max_predictions_per_seq=40)
  out = masking.mask_tokens(ids, mask, config, SPECIAL, VOCAB, seed=8, word_continuation=continuation)
  counts = out["masked_lm_weights"].numpy().sum(axis=1)
  target = np.maximum(1, np.round((lengths - 3) * 0.15))
  assert (counts >= target).all()
  assert abs(counts.sum() / target.sum() - 1.0) < 0.15


def test_stateless_seed_gives_the_same_masks_every_call_and_other_seeds_differ():
  ids, mask, _, continuation = _word_batch(batch_size=64)
  for table in (None, continuation):
    first = masking.mask_tokens(ids, mask, masking.MaskingConfig(), SPECIAL, VOCAB, stateless_seed=[3, 4],
                                word_continuation=table)
    again = masking.mask_tokens(ids, mask, masking.MaskingConfig(), SPECIAL, VOCAB, stateless_seed=[3, 4],
                                word_continuation=table)
    other = masking.mask_tokens(ids, mask, masking.MaskingConfig(), SPECIAL, VOCAB, stateless_seed=[3, 5],
                                word_continuation=table)
    for name in first:
      np.testing.assert_array_equal(first[name].numpy(), again[name].numpy())
    assert not np.array_equal(first["masked_lm_positions"].numpy(), other["masked_lm_positions"].numpy())


def test_whole_word_masking_works_inside_tf_data():
  ids, mask, _, continuation = _word_batch(batch_size=32, seq_length=32)
  dataset = tf.data.Dataset.from_tensor_slices((ids, mask)).batch(16).map(
      lambda i, m: masking.mask_tokens(i, m, masking.MaskingConfig(), SPECIAL, VOCAB, seed=1,
                                       word_continuation=continuation))
  batches = list(dataset)
  assert len(batches) == 2 and batches[0]["masked_lm_positions"].shape == (16, 4)
