"""Sampling and tensor helpers: temperature sampling, gather/scatter, AUC."""
import numpy as np

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.objectives import losses, sampling


def _softmax(x):
  e = np.exp(x - x.max())
  return e / e.sum()


def test_temperature_sampling_matches_softmax_of_scaled_logits():
  logits = np.array([2.0, 1.0, 0.0, -1.0], np.float32)
  draws = 40000
  for temperature in (1.0, 0.5, 2.0):
    ids = sampling.sample_from_logits(tf.tile(logits[None], [draws, 1]), temperature, seed=7).numpy()
    frequencies = np.bincount(ids, minlength=4) / draws
    expected = _softmax(logits / temperature)
    assert np.max(np.abs(frequencies - expected)) < 4 * np.sqrt(0.25 / draws) + 1e-3, (temperature, frequencies)


def test_sampling_from_bfloat16_logits_happens_in_float32():
  # With a huge gap the argmax must win every time; bf16 noise arithmetic would make ties common.
  logits = tf.cast(tf.constant([[0.0, 20.0, 0.0]] * 1000), tf.bfloat16)
  ids = sampling.sample_from_logits(logits, 1.0).numpy()
  assert np.all(ids == 1)


def test_gather_and_scatter_positions_round_trip():
  sequence = tf.constant([[10, 11, 12, 13], [20, 21, 22, 23]])
  positions = tf.constant([[1, 3, 0], [2, 0, 0]])
  weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
  np.testing.assert_array_equal(sampling.gather_positions(sequence, positions).numpy(), [[11, 13, 10], [22, 20, 20]])
  updated = sampling.scatter_positions(sequence, positions, tf.constant([[7, 8, 9], [5, 6, 4]]), weights)
  # The padded third prediction (weight 0) must not overwrite position 0.
  np.testing.assert_array_equal(updated.numpy(), [[10, 7, 12, 8], [6, 21, 5, 23]])


def _pairwise_auc(scores, labels, weights):
  """Mann-Whitney by brute force over all (positive, negative) pairs: win 1, tie 1/2."""
  pos = scores[(labels == 1) & (weights > 0)]
  neg = scores[(labels == 0) & (weights > 0)]
  if not len(pos) or not len(neg):
    return 0.5
  diff = pos[:, None].astype(np.float64) - neg[None, :]
  return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def _auc(scores, labels, weights=None):
  scores = np.asarray(scores, np.float32)
  weights = np.ones_like(scores) if weights is None else np.asarray(weights, np.float32)
  return float(losses.binary_auc(tf.constant(scores), tf.constant(np.asarray(labels, np.int32)),
                                   tf.constant(weights)).numpy())


def test_binary_auc_matches_pairwise_definition():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=200).astype(np.float32)
  labels = (rng.random(200) < 0.3).astype(np.float32)
  weights = (rng.random(200) < 0.8).astype(np.float32)
  auc = losses.binary_auc(tf.constant(scores), tf.constant(labels), tf.constant(weights)).numpy()
  assert abs(auc - _pairwise_auc(scores, labels, weights)) < 1e-5
  assert losses.binary_auc(tf.constant(scores), tf.zeros(200), tf.ones(200)).numpy() == 0.5


def test_binary_auc_of_a_constant_scorer_is_one_half():
  # Positives at the end of the sequence: ranking ties by position would give 1.0 here.
  labels = [0, 0, 0, 0, 0, 1, 1, 1]
  assert _auc(np.zeros(8), labels) == 0.5
  assert _auc(np.full(8, 3.25), labels[::-1]) == 0.5
  # Weight-0 entries with other scores do not break the tie among the valid ones.
  assert _auc([1.0, 1.0, 1.0, 1.0, 9.0, -9.0], [1, 0, 1, 0, 0, 1], [1, 1, 1, 1, 0, 0]) == 0.5


def test_binary_auc_counts_tied_pairs_as_half():
  # Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs: 0.9 beats both (2); each 0.5 positive
  # ties the 0.5 negative (1/2) and beats 0.1 (1): 2 + 2 * 1.5 = 5 of 3 * 2 = 6 pairs.
  # (The U statistic is an exact count; only the final division rounds, to float32.)
  assert _auc([0.5, 0.9, 0.1, 0.5, 0.5], [1, 1, 0, 0, 1]) == np.float32(5 / 6)
  # A tie group of two positives and two negatives between a lower negative and a higher
  # positive. Positives {1.0, 0.2, 0.2}, negatives {0.2, 0.2, 0.0}: 1.0 beats all three (3);
  # each 0.2 positive beats 0.0 (1) and ties two (2 * 1/2): 3 + 2 * 2 = 7 of 9 pairs.
  assert _auc([0.2, 1.0, 0.2, 0.0, 0.2, 0.2], [1, 1, 0, 0, 1, 0]) == np.float32(7 / 9)


def test_binary_auc_with_one_class_absent_is_one_half():
  assert _auc([0.1, 0.7, 0.3], [1, 1, 1]) == 0.5
  assert _auc([0.1, 0.7, 0.3], [0, 0, 0]) == 0.5
  # Present, but only with weight 0.
  assert _auc([0.1, 0.7, 0.3], [1, 0, 0], [0, 1, 1]) == 0.5
  assert _auc([], []) == 0.5


def test_binary_auc_agrees_with_pairwise_mann_whitney_on_heavily_tied_scores():
  for seed in range(8):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # Few distinct values (down to one), so most pairs tie; weights of either sign and zero.
    scores = rng.integers(0, int(rng.integers(1, 6)), size=n).astype(np.float32) / 4 - 0.5
    labels = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.int32)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0, -1.0], size=n).astype(np.float32)
    expected = _pairwise_auc(scores, labels, weights)
    assert abs(_auc(scores, labels, weights) - expected) < 1e-6, (seed, n)


def test_binary_auc_runs_under_xla_on_a_batch_shaped_input():
  rng = np.random.default_rng(3)
  scores = np.round(rng.normal(size=(4, 32)), 1).astype(np.float32)
  labels = (rng.random((4, 32)) < 0.2).astype(np.int32)
  weights = (rng.random((4, 32)) < 0.9).astype(np.float32)
  auc = tf.function(losses.binary_auc, jit_compile=True)(
      tf.constant(scores), tf.constant(labels), tf.constant(weights))
  assert abs(float(auc) - _pairwise_auc(scores.ravel(), labels.ravel(), weights.ravel())) < 1e-6
