"""SCRIPT: the critic of Eq. 4-5, the loss of Eq. 1-6 by hand, no gradient through the sample, the PLL of Eq. 7."""
import math

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import script

CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _log_sum_exp(logits):
  top = logits.max(-1, keepdims=True)
  return (top + np.log(np.exp(logits - top).sum(-1, keepdims=True)))[..., 0]


def test_critic_probabilities_are_eq_4_and_5_and_sum_to_one():
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=3.0, size=(3, 5, 7)).astype(np.float32)
  p_plus, p_minus = (p.numpy() for p in script.critic_probabilities(tf.constant(logits)))
  total = np.exp(logits.astype(np.float64)).sum(-1)
  np.testing.assert_allclose(p_plus, total / (total + 1.0), rtol=1e-5)   # Eq. 5
  np.testing.assert_allclose(p_minus, 1.0 / (total + 1.0), rtol=1e-5)    # Eq. 4
  np.testing.assert_allclose(p_plus + p_minus, 1.0, rtol=1e-6)
  # Large logits (bf16-trained heads reach them) stay finite: computed as sigmoid(logsumexp), in float32.
  big = tf.constant([[90.0, 89.0], [-90.0, -95.0]], tf.bfloat16)
  p_plus, p_minus = script.critic_probabilities(big)
  assert p_plus.dtype == tf.float32
  np.testing.assert_allclose(p_plus.numpy(), [1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose((p_plus + p_minus).numpy(), 1.0, rtol=1e-6)


def _argmax_sample(logits, temperature=1.0, seed=None):
  del temperature, seed
  return tf.argmax(logits, axis=-1, output_type=tf.int32)


def test_loss_matches_a_hand_computation_of_eq_1_to_6(monkeypatch, make_batch):
  # A deterministic draw makes the critic's input reproducible; sampling is tested in test_sampling.
  monkeypatch.setattr(script.sampling, "sample_from_logits", _argmax_sample)
  model = script.Script(CONFIG, disc_weight=50.0)
  batch = make_batch()
  outputs = model(batch, training=False)

  def logits_at(input_ids, positions):
    sequence = model.encoder({"input_word_ids": input_ids, "input_mask": batch["input_mask"],
                              "input_type_ids": batch["segment_ids"]})["sequence_output"]
    return model.mlm_head(sequence, masked_positions=positions).numpy()

  positions = batch["masked_lm_positions"].numpy()
  weights = batch["masked_lm_weights"].numpy()
  targets = batch["masked_lm_ids"].numpy()
  mlm_logits = logits_at(batch["masked_input_ids"], batch["masked_lm_positions"])
  log_probs = mlm_logits - _log_sum_exp(mlm_logits)[..., None]
  mlm = -(np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * weights).sum() / weights.sum()

  # x-: the masked input with each real masked position replaced by the draw.
  sampled = batch["masked_input_ids"].numpy().copy()
  draws = mlm_logits.argmax(-1)
  for b, p in zip(*np.nonzero(weights)):
    sampled[b, positions[b, p]] = draws[b, p]
  original = (sampled == batch["input_ids"].numpy()).astype(np.float64)
  length = sampled.shape[1]
  critic = logits_at(tf.constant(sampled), tf.constant(np.tile(np.arange(length), (4, 1)), tf.int32))
  total = np.exp(critic.astype(np.float64)).sum(-1)
  p_plus, p_minus = total / (total + 1.0), 1.0 / (total + 1.0)
  real = batch["input_mask"].numpy()
  disc = -((original * np.log(p_plus) + (1 - original) * np.log(p_minus)) * real).sum() / real.sum()

  assert outputs["mlm_loss"].numpy() == pytest.approx(mlm, rel=1e-5)
  assert outputs["disc_loss"].numpy() == pytest.approx(disc, rel=1e-5)
  assert outputs["loss"].numpy() == pytest.approx(mlm + 50.0 * disc, rel=1e-5)
  masked_real = weights > 0
  replaced_at_masked = 1 - original[np.nonzero(masked_real)[0], positions[masked_real]]
  assert outputs["replaced_fraction"].numpy() == pytest.approx(replaced_at_masked.mean(), abs=1e-6)
  # The discriminator metrics call "replaced" positive: predicted where p(t-) > p(t+).
  predicted_replaced = p_minus > p_plus
  accuracy = ((predicted_replaced == (original == 0)) * real).sum() / real.sum()
  assert outputs["discriminator_accuracy"].numpy() == pytest.approx(accuracy, abs=1e-6)


def test_one_backward_no_gradient_through_the_sample_and_no_parameters_beyond_bert(monkeypatch, make_batch):
  seen = {}
  draw = script.sampling.sample_from_logits

  def recording_draw(logits, temperature=1.0, seed=None):
    seen["mlm_logits"] = logits
    return draw(logits, temperature, seed=seed)

  monkeypatch.setattr(script.sampling, "sample_from_logits", recording_draw)
  model = script.Script(CONFIG)
  with tf.GradientTape(persistent=True) as tape:
    outputs = model(make_batch(seed=3), training=True, seed=3)
  # The critic's loss does not see the MLM pass's logits: the draw is data, not a function of them.
  assert tape.gradient(outputs["disc_loss"], seen["mlm_logits"]) is None
  assert tape.gradient(outputs["mlm_loss"], seen["mlm_logits"]) is not None
  # One encoder and one MLM head, both trained by both losses; nothing else exists.
  variables = model.trainable_variables
  owned = {id(v) for v in model.encoder.trainable_variables + model.mlm_head.trainable_variables}
  assert {id(v) for v in variables} == owned
  for loss in ("mlm_loss", "disc_loss"):
    grads = tape.gradient(outputs[loss], variables)
    assert all(g is not None for g in grads), [v.name for v, g in zip(variables, grads) if g is None]


def test_pseudo_log_likelihood_is_eq_7_in_one_pass(make_batch):
  model = script.Script(CONFIG)
  batch = make_batch(seed=4)
  scores = model.pseudo_log_likelihood(batch).numpy()
  assert scores.shape == (4,)

  length = batch["input_ids"].shape[1]
  sequence = model.encoder({"input_word_ids": batch["input_ids"], "input_mask": batch["input_mask"],
                            "input_type_ids": batch["segment_ids"]})["sequence_output"]
  logits = model.mlm_head(sequence, masked_positions=tf.constant(np.tile(np.arange(length), (4, 1)), tf.int32)).numpy()
  total = np.exp(logits.astype(np.float64)).sum(-1)
  log_p_plus = np.log(total / (total + 1.0))
  real = batch["input_mask"].numpy()
  np.testing.assert_allclose(scores, (log_p_plus * real).sum(-1), rtol=1e-5)
  # Token weights choose what is scored, e.g. words without [CLS]/[SEP].
  words = real * np.isin(batch["input_ids"].numpy(), [2, 3], invert=True)
  only_words = script.pseudo_log_likelihood(model.encoder, model.mlm_head, batch, token_weights=tf.constant(words))
  np.testing.assert_allclose(only_words.numpy(), (log_p_plus * words).sum(-1), rtol=1e-5)
  assert np.all(scores <= 0.0)


def test_smoke_config_trains_a_few_steps_with_finite_loss(pretrain_smoke_config):
  metrics = pretrain_smoke_config("script")
  assert math.isfinite(metrics["loss"])
  assert metrics["loss"] == pytest.approx(metrics["mlm_loss"] + 50.0 * metrics["disc_loss"], rel=1e-4)
  assert 0.0 <= metrics["replaced_fraction"] <= 1.0
