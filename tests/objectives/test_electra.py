"""ELECTRA objective: RTD labels, the loss against a hand computation, where gradients go."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import electra, losses

CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def test_rtd_labels_mark_only_tokens_that_actually_changed():
  masked = tf.constant([[2, 4, 9, 4, 3]])
  original = tf.constant([[2, 7, 9, 8, 3]])
  positions = tf.constant([[1, 3, 0]])
  weights = tf.constant([[1.0, 1.0, 0.0]])
  # The sample at position 1 restores the original token; position 3 gets a different one.
  fake, labels = losses.corrupt_with_samples(masked, original, positions, weights, tf.constant([[7, 5, 6]]))
  np.testing.assert_array_equal(fake.numpy(), [[2, 7, 9, 5, 3]])
  np.testing.assert_array_equal(labels.numpy(), [[0, 0, 0, 1, 0]])


def _argmax_sample(logits, temperature=1.0, seed=None):
  del temperature, seed
  return tf.argmax(logits, axis=-1, output_type=tf.int32)


def test_loss_matches_a_hand_computation(monkeypatch, make_batch):
  # Sampling is tested on its own (test_sampling.py); here a deterministic draw makes the
  # discriminator's input reproducible.
  monkeypatch.setattr(electra.sampling, "sample_from_logits", _argmax_sample)
  model = electra.Electra(CONFIG, generator_fraction=0.5, rtd_weight=50.0, temperature=1.0)
  batch = make_batch()
  outputs = model(batch, training=False)

  # Recompute every piece with numpy from the model's own sub-networks.
  generator = model.generator({"input_word_ids": batch["masked_input_ids"], "input_mask": batch["input_mask"],
                               "input_type_ids": batch["segment_ids"]}, training=False)
  logits = model.mlm_head(generator["sequence_output"], masked_positions=batch["masked_lm_positions"]).numpy()
  targets = batch["masked_lm_ids"].numpy()
  weights = batch["masked_lm_weights"].numpy()
  log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
  nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
  mlm = (nll * weights).sum() / weights.sum()

  sampled = _argmax_sample(tf.constant(logits))
  fake, labels = losses.corrupt_with_samples(batch["masked_input_ids"], batch["input_ids"],
                                              batch["masked_lm_positions"], batch["masked_lm_weights"], sampled)
  disc = model.discriminator({"input_word_ids": fake, "input_mask": batch["input_mask"],
                              "input_type_ids": batch["segment_ids"]}, training=False)
  z = model.rtd_head(disc["sequence_output"]).numpy()
  y = labels.numpy()
  m = batch["input_mask"].numpy()
  bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
  rtd = (bce * m).sum() / m.sum()

  assert outputs["mlm_loss"].numpy() == pytest.approx(mlm, rel=1e-5)
  assert outputs["rtd_loss"].numpy() == pytest.approx(rtd, rel=1e-5)
  assert outputs["loss"].numpy() == pytest.approx(mlm + 50.0 * rtd, rel=1e-5)
  predicted = (z > 0).astype(np.float32)
  assert outputs["discriminator_accuracy"].numpy() == pytest.approx(((predicted == y) * m).sum() / m.sum(), rel=1e-6)


def test_generator_learns_only_from_mlm_and_discriminator_only_from_rtd(make_batch):
  model = electra.Electra(CONFIG, generator_fraction=0.5)
  batch = make_batch(seed=1)
  with tf.GradientTape(persistent=True) as tape:
    outputs = model(batch, training=True, seed=1)
  generator_layers = [v for layer in model.generator.transformer_layers for v in layer.trainable_variables]
  discriminator_layers = [v for layer in model.discriminator.transformer_layers for v in layer.trainable_variables]
  shared = {id(model.embeddings.embedding_table)}
  mlm_head_own = [v for v in model.mlm_head.trainable_variables if id(v) not in shared]
  rtd_grads = tape.gradient(outputs["rtd_loss"], generator_layers + mlm_head_own)
  assert all(g is None for g in rtd_grads), "RTD loss must not reach the generator through the sample"
  mlm_grads = tape.gradient(outputs["mlm_loss"], discriminator_layers + model.rtd_head.trainable_variables)
  assert all(g is None for g in mlm_grads)
  # The shared embeddings learn from both losses, as in ELECTRA.
  assert tape.gradient(outputs["rtd_loss"], model.embeddings.embedding_table) is not None
  assert tape.gradient(outputs["mlm_loss"], model.embeddings.embedding_table) is not None


def test_generator_is_a_narrower_encoder_of_the_same_depth_sharing_embeddings():
  small = EncoderConfig(vocab_size=100, hidden_size=256, num_layers=12, num_heads=4, intermediate_size=1024, embedding_size=128)
  model = electra.Electra(small, generator_fraction=0.25)
  assert (model.generator_config.hidden_size, model.generator_config.num_heads,
          model.generator_config.intermediate_size, model.generator_config.num_layers) == (64, 1, 256, 12)
  assert model.generator.embeddings is model.discriminator.embeddings
  assert model.encoder is model.discriminator


def test_mixed_bfloat16_keeps_losses_and_metrics_in_float32(make_batch, outputs_under_mixed_bfloat16):
  outputs_under_mixed_bfloat16(lambda: electra.Electra(CONFIG, generator_fraction=0.5), make_batch(seed=2))
