"""Sampling and tensor helpers: temperature sampling, gather/scatter."""
import numpy as np

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.objectives import sampling


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
