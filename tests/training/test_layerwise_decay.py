"""Layer-wise LR decay: the factor of every variable, and that one step moves each by that factor."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.training import layerwise_decay

CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


class _Classifier(tf.keras.Model):

  def __init__(self, config):
    super().__init__()
    self.encoder = TransformerEncoder(config)
    self.head = tf.keras.layers.Dense(3, name="head")

  def call(self, inputs):
    return self.head(self.encoder(inputs)["sequence_output"][:, 0])


def _inputs():
  ids = tf.constant([[2, 7, 9, 11, 3, 0], [2, 5, 6, 3, 0, 0]])
  return {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}


def _model(config=CONFIG, seed=0):
  tf.keras.utils.set_random_seed(seed)
  model = _Classifier(config)
  model(_inputs())
  return model


def _expected_factor(model, variable, decay, num_layers):
  encoder = model.encoder
  embedding_vars = encoder.embeddings.trainable_variables + encoder.embedding_projection.trainable_variables
  if any(variable is v for v in embedding_vars):
    return decay ** (num_layers + 1)
  for index, layer in enumerate(encoder.transformer_layers):
    if any(variable is v for v in layer.trainable_variables):
      return decay ** (num_layers - index)
  return 1.0


def test_top_layer_gets_one_factor_and_embeddings_get_num_layers_plus_one():
  factors = layerwise_decay.group_multipliers(12, 0.8)
  assert factors["layer_11"] == pytest.approx(0.8)
  assert factors["layer_10"] == pytest.approx(0.8 ** 2)
  assert factors["layer_0"] == pytest.approx(0.8 ** 12)
  assert factors["embeddings"] == pytest.approx(0.8 ** 13)
  assert factors["head"] == 1.0


def test_every_variable_gets_the_factor_of_its_depth():
  model = _model()
  multipliers = layerwise_decay.learning_rate_multipliers(model, model.encoder, 0.5)
  assert len(multipliers) == len(model.trainable_variables)
  seen = set()
  for variable in model.trainable_variables:
    expected = _expected_factor(model, variable, 0.5, 2)
    assert multipliers[variable.ref()] == pytest.approx(expected), variable.name
    seen.add(expected)
  # Embeddings (and projection) 1/8, layer 0 1/4, layer 1 (top) 1/2, head 1.
  assert seen == {0.125, 0.25, 0.5, 1.0}
  assert multipliers[model.encoder.embeddings.embedding_table.ref()] == pytest.approx(0.125)
  assert multipliers[model.head.kernel.ref()] == 1.0


def test_a_shared_layer_stack_counts_as_one_layer():
  config = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                         max_position_embeddings=16, share_layers=True)
  model = _model(config)
  multipliers = layerwise_decay.learning_rate_multipliers(model, model.encoder, 0.5)
  layer = model.encoder.transformer_layers[0]
  assert {multipliers[v.ref()] for v in layer.trainable_variables} == {0.5}
  assert multipliers[model.encoder.embeddings.embedding_table.ref()] == pytest.approx(0.25)


def _one_step(decay, weight_decay):
  model = _model(seed=3)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(model(_inputs())))
  grads = tape.gradient(loss, model.trainable_variables)
  optimizer = layerwise_decay.LayerwiseAdamWeightDecay(
      multipliers=layerwise_decay.learning_rate_multipliers(model, model.encoder, decay),
      learning_rate=1.0, epsilon=1e-6, weight_decay_rate=weight_decay,
      exclude_from_weight_decay=["layer_norm", "bias"], gradient_clip_norm=0.0)
  before = [v.numpy().copy() for v in model.trainable_variables]
  optimizer.apply_gradients(zip(grads, model.trainable_variables))
  deltas = [v.numpy() - b for v, b in zip(model.trainable_variables, before)]
  return model, grads, deltas


def test_one_step_moves_each_variable_by_its_factor_times_the_undecayed_step():
  model, grads, decayed = _one_step(decay=0.5, weight_decay=0.01)
  _, _, undecayed = _one_step(decay=1.0, weight_decay=0.01)
  # The word embeddings receive a sparse gradient: both Adam paths are exercised.
  assert any(isinstance(g, tf.IndexedSlices) for g in grads)
  checked = set()
  for variable, d, u in zip(model.trainable_variables, decayed, undecayed):
    factor = _expected_factor(model, variable, 0.5, 2)
    # Some variables get no gradient at all (a key bias cannot change the attention softmax).
    moved = np.abs(u) > 1e-4
    if moved.any():
      np.testing.assert_allclose(d[moved] / u[moved], factor, rtol=1e-4, err_msg=variable.name)
      checked.add(factor)
  assert checked == {0.125, 0.25, 0.5, 1.0}


def test_a_variable_without_a_multiplier_is_an_error():
  model = _model()
  optimizer = layerwise_decay.LayerwiseAdamWeightDecay(multipliers={}, learning_rate=1e-3)
  with pytest.raises(ValueError, match="no learning-rate multiplier"):
    optimizer.apply_gradients([(tf.ones_like(model.head.bias), model.head.bias)])


def test_schedule_warms_up_linearly_from_zero_then_decays_linearly_to_zero():
  schedule = layerwise_decay.warmup_linear_decay(1.0, train_steps=100, warmup_steps=10)
  values = {step: float(schedule(step)) for step in (0, 5, 10, 55, 100)}
  assert values[0] == pytest.approx(0.0)
  assert values[5] == pytest.approx(0.5)
  assert values[10] == pytest.approx(1.0)
  assert values[55] == pytest.approx(0.5)
  assert values[100] == pytest.approx(0.0)


def test_finetuning_optimizer_warms_up_over_a_tenth_of_the_steps():
  model = _model()
  optimizer = layerwise_decay.create_finetuning_optimizer(model, model.encoder, train_steps=50, learning_rate=2.0)
  schedule = optimizer.learning_rate
  assert float(schedule(5)) == pytest.approx(2.0)
  assert float(schedule(4)) == pytest.approx(1.6)
  assert optimizer.multiplier(model.encoder.transformer_layers[1].trainable_variables[0]) == pytest.approx(0.8)
