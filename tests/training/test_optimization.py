"""Optimizers: warmup from 0 to the peak, linear decay to 0, weight decay exclusions, clipping."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

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


def test_weight_decay_spares_layer_norm_and_bias():
  optimizer = optimization.create_optimizer(name="adamw", learning_rate=0.1, train_steps=1000, warmup_steps=0,
                                            weight_decay=0.5)
  kernel = tf.Variable(np.ones(3, np.float32), name="dense/kernel")
  bias = tf.Variable(np.ones(3, np.float32), name="dense/bias")
  gamma = tf.Variable(np.ones(3, np.float32), name="output_layer_norm/gamma")
  zero = tf.zeros(3)
  optimizer.apply_gradients([(zero, kernel), (zero, bias), (zero, gamma)])
  assert np.all(kernel.numpy() < 1.0)
  np.testing.assert_allclose(bias.numpy(), 1.0)
  np.testing.assert_allclose(gamma.numpy(), 1.0)


def test_gradients_are_clipped_to_global_norm_one():
  optimizer = optimization.create_optimizer(name="lamb", learning_rate=0.1, train_steps=100, warmup_steps=0)
  assert optimizer.global_clipnorm == 1.0


def test_warmup_longer_than_training_is_refused():
  with pytest.raises(ValueError, match="WARMUP_STEPS"):
    optimization.create_optimizer(learning_rate=1e-3, train_steps=10, warmup_steps=10)
  with pytest.raises(ValueError, match="unknown optimizer"):
    optimization.create_optimizer(name="sgd", learning_rate=1e-3, train_steps=10)
