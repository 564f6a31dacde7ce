"""Optimizers: warmup from 0 to the peak, linear decay to 0, weight decay exclusions, clipping."""
import logging

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.training import optimization


@pytest.mark.parametrize("name", ["lamb", "adamw", "adam"])
def test_schedule_warms_up_linearly_from_zero_then_decays_linearly_to_zero(name):
  optimizer = optimization.create_optimizer(name=name, learning_rate=1e-3, train_steps=110, warmup_steps=10)
  schedule = optimizer.learning_rate
  lr = np.array([float(schedule(step)) for step in range(0, 111)])
  assert lr[0] == 0.0
  np.testing.assert_allclose(lr[:11], np.linspace(0, 1e-3, 11), rtol=1e-5, atol=1e-10)
  np.testing.assert_allclose(lr[10:], np.linspace(1e-3, 0, 101), rtol=1e-4, atol=1e-9)
  assert float(schedule(500)) == 0.0


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_weight_decay_spares_layer_norm_and_bias(name):
  optimizer = optimization.create_optimizer(name=name, learning_rate=0.1, train_steps=1000, warmup_steps=0,
                                            weight_decay=0.5)
  kernel = tf.Variable(np.ones(3, np.float32), name="dense/kernel")
  bias = tf.Variable(np.ones(3, np.float32), name="dense/bias")
  gamma = tf.Variable(np.ones(3, np.float32), name="output_layer_norm/gamma")
  beta = tf.Variable(np.ones(3, np.float32), name="encoder/LayerNorm/beta")
  zero = tf.zeros(3)
  optimizer.apply_gradients([(zero, kernel), (zero, bias), (zero, gamma), (zero, beta)])
  assert np.all(kernel.numpy() < 1.0)
  np.testing.assert_allclose(bias.numpy(), 1.0)
  np.testing.assert_allclose(gamma.numpy(), 1.0)
  np.testing.assert_allclose(beta.numpy(), 1.0)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_weight_decay_spares_exactly_the_encoders_layer_norms_and_biases(name):
  # Found by what the variables are (a LayerNormalization's weights, a layer's `bias`), not by
  # their names: a layer whose variable names the exclusion patterns missed would show here.
  encoder = TransformerEncoder(EncoderConfig(vocab_size=20, hidden_size=8, num_layers=1, num_heads=2,
                                             intermediate_size=16, max_position_embeddings=8, embedding_size=4))
  encoder(encoder.dummy_inputs(batch_size=1, seq_length=4))
  rng = np.random.default_rng(0)
  for v in encoder.trainable_variables:  # Biases start at 0, which decay would leave at 0.
    v.assign(rng.uniform(0.5, 1.5, size=v.shape))
  spared = set()
  for layer in encoder.submodules:
    if isinstance(layer, tf.keras.layers.LayerNormalization):
      spared.update(id(w) for w in layer.weights)
    elif isinstance(getattr(layer, "bias", None), tf.Variable):
      spared.add(id(layer.bias))
  before = {id(v): v.numpy() for v in encoder.trainable_variables}
  optimizer = optimization.create_optimizer(name=name, learning_rate=0.1, train_steps=1000, warmup_steps=0,
                                            weight_decay=0.5)
  optimizer.apply_gradients([(tf.zeros_like(v), v) for v in encoder.trainable_variables])
  changed = {id(v) for v in encoder.trainable_variables if not np.array_equal(v.numpy(), before[id(v)])}
  assert 0 < len(spared) < len(encoder.trainable_variables)
  assert changed == {id(v) for v in encoder.trainable_variables} - spared


# Three variables, gradients of very different sizes (global norm ~1e3). With epsilon = 1 the
# first Adam/LAMB step, g / (|g| + eps) per entry, depends on the gradients' scale (with the
# default 1e-6 it would be ~sign(g) whatever the scale, and clipping could not be seen).
_VALUES = [("dense/kernel", np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]], np.float32)),
           ("dense/bias", np.array([0.1, -0.2], np.float32)),
           ("other/kernel", np.array([1.0, -2.0, 0.5, 3.0], np.float32))]
_HUGE_GRADIENTS = [np.array([[300.0, -0.5], [2.0, 400.0], [-1.0, 0.1]], np.float32),
                   np.array([500.0, -0.2], np.float32),
                   np.array([0.3, -600.0, 1.0, 0.05], np.float32)]


def _after_one_update(name, gradients, clip_norm):
  optimizer = optimization.create_optimizer(name=name, learning_rate=0.1, train_steps=100, warmup_steps=0,
                                            weight_decay=0.01, epsilon=1.0, clip_norm=clip_norm)
  variables = [tf.Variable(value, name=var_name) for var_name, value in _VALUES]
  optimizer.apply_gradients(zip([tf.constant(g, tf.float32) for g in gradients], variables))
  return [v.numpy() for v in variables]


def _close(a, b):
  return all(np.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["lamb", "adamw", "adam"])
def test_huge_gradients_are_clipped_to_global_norm_one_before_the_update(name):
  norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in _HUGE_GRADIENTS))
  globally_clipped = [g / norm for g in _HUGE_GRADIENTS]
  each_clipped = [g / np.linalg.norm(g) for g in _HUGE_GRADIENTS]

  clipped = _after_one_update(name, _HUGE_GRADIENTS, clip_norm=1.0)

  # The update the optimizer makes from gradients already scaled to global norm 1, unclipped.
  assert _close(clipped, _after_one_update(name, globally_clipped, clip_norm=0.0))
  # Not the update of the raw gradients, nor of each tensor clipped to norm 1 on its own.
  assert not _close(clipped, _after_one_update(name, _HUGE_GRADIENTS, clip_norm=0.0))
  assert not _close(clipped, _after_one_update(name, each_clipped, clip_norm=0.0))


def test_clipped_adam_step_matches_the_adam_formula():
  # Keras' Adam, first step: m = (1 - b1) g, v = (1 - b2) g^2,
  # w -= lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps), with g the clipped gradient.
  lr, b2, eps = 0.1, 0.999, 1.0
  norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in _HUGE_GRADIENTS))
  expected = [w - lr * np.sqrt(1 - b2) * (g / norm) / (np.sqrt(1 - b2) * np.abs(g / norm) + eps)
              for (_, w), g in zip(_VALUES, _HUGE_GRADIENTS)]
  for got, want in zip(_after_one_update("adam", _HUGE_GRADIENTS, clip_norm=1.0), expected):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_small_gradient_is_left_as_it_is():
  small = [g / 1e4 for g in _HUGE_GRADIENTS]  # global norm ~0.08
  assert _close(_after_one_update("lamb", small, clip_norm=1.0), _after_one_update("lamb", small, clip_norm=0.0))


def test_warmup_longer_than_training_is_refused():
  with pytest.raises(ValueError, match="WARMUP_STEPS"):
    optimization.create_optimizer(learning_rate=1e-3, train_steps=10, warmup_steps=10)
  with pytest.raises(ValueError, match="unknown optimizer"):
    optimization.create_optimizer(name="sgd", learning_rate=1e-3, train_steps=10)


def test_no_log_line_says_the_clipping_is_off(caplog):
  from official.modeling.optimization import legacy_adamw  # pylint: disable=g-import-not-at-top
  # absl's own logger level: earlier tests that parse absl flags may have set it above INFO.
  with caplog.at_level(logging.INFO, logger="absl"):
    optimization.create_optimizer(name="adamw", learning_rate=0.1, train_steps=10, clip_norm=1.0)
    assert not [r for r in caplog.records if "gradient_clip_norm" in r.getMessage()]
    legacy_adamw.AdamWeightDecay(gradient_clip_norm=0.5)  # a real legacy clip norm is still logged
    assert [r.getMessage() for r in caplog.records if "gradient_clip_norm" in r.getMessage()] == [
        "AdamWeightDecay gradient_clip_norm=0.500000"]
