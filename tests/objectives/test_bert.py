"""BERT objective: MLM and NSP losses against a hand computation, what is built and trained, a short run."""
import math

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import bert

CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _with_nsp_labels(batch):
  return dict(batch, next_sentence_labels=tf.constant([0, 1, 1, 0], tf.int32))


def _cross_entropy(logits, targets):
  shifted = logits - logits.max(-1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  return -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]


def test_mlm_and_nsp_losses_match_a_hand_computation(make_batch):
  model = bert.Bert(CONFIG, next_sentence_prediction=True, nsp_weight=0.5)
  batch = _with_nsp_labels(make_batch())
  outputs = model(batch, training=False)

  sequence = model.encoder({"input_word_ids": batch["masked_input_ids"], "input_mask": batch["input_mask"],
                            "input_type_ids": batch["segment_ids"]}, training=False)["sequence_output"]
  mlm_logits = model.mlm_head(sequence, masked_positions=batch["masked_lm_positions"]).numpy()
  targets, weights = batch["masked_lm_ids"].numpy(), batch["masked_lm_weights"].numpy()
  mlm = (_cross_entropy(mlm_logits, targets) * weights).sum() / weights.sum()
  mlm_accuracy = ((mlm_logits.argmax(-1) == targets) * weights).sum() / weights.sum()

  # NSP by hand from the [CLS] vector: tanh pooler, then the 2-way classifier.
  cls = sequence.numpy()[:, 0]
  pooler, classifier = model.nsp_head.pooler, model.nsp_head.classifier
  pooled = np.tanh(cls @ pooler.kernel.numpy() + pooler.bias.numpy())
  nsp_logits = pooled @ classifier.kernel.numpy() + classifier.bias.numpy()
  labels = batch["next_sentence_labels"].numpy()
  nsp = _cross_entropy(nsp_logits, labels).mean()

  assert outputs["mlm_loss"].numpy() == pytest.approx(mlm, rel=1e-5)
  assert outputs["mlm_accuracy"].numpy() == pytest.approx(mlm_accuracy, abs=1e-6)
  assert outputs["nsp_loss"].numpy() == pytest.approx(nsp, rel=1e-5)
  assert outputs["nsp_accuracy"].numpy() == pytest.approx((nsp_logits.argmax(-1) == labels).mean(), abs=1e-6)
  assert outputs["loss"].numpy() == pytest.approx(mlm + 0.5 * nsp, rel=1e-5)


def test_without_nsp_no_pooler_is_built_and_every_variable_learns_from_mlm(make_batch):
  model = bert.Bert(CONFIG)
  batch = _with_nsp_labels(make_batch(seed=1))  # next_sentence_labels present but unused: MLM-only training on NSP data works.
  with tf.GradientTape() as tape:
    outputs = model(batch, training=True)
  assert set(outputs) == {"loss", "mlm_loss", "mlm_accuracy"}
  assert model.nsp_head is None
  assert not [v.name for v in model.trainable_variables if "pooler" in v.name or "nsp" in v.name]
  grads = tape.gradient(outputs["loss"], model.trainable_variables)
  assert all(g is not None for g in grads), [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
  assert model.encoder is model.bert_encoder


def test_nsp_head_is_trained_only_by_the_nsp_loss(make_batch):
  model = bert.Bert(CONFIG, next_sentence_prediction=True)
  with tf.GradientTape(persistent=True) as tape:
    outputs = model(_with_nsp_labels(make_batch(seed=2)), training=True)
  nsp_variables = model.nsp_head.trainable_variables
  assert len(nsp_variables) == 4  # pooler and classifier, kernel and bias each
  assert all(g is not None for g in tape.gradient(outputs["nsp_loss"], nsp_variables))
  assert all(g is None for g in tape.gradient(outputs["mlm_loss"], nsp_variables))


def test_nsp_without_labels_in_the_batch_is_a_one_line_error(make_batch):
  model = bert.Bert(CONFIG, next_sentence_prediction=True)
  with pytest.raises(ValueError, match="no next_sentence_labels"):
    model(make_batch(), training=False)


def test_smoke_config_trains_a_few_steps_with_finite_loss(pretrain_smoke_config):
  metrics = pretrain_smoke_config("bert")
  assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
  assert 0.0 <= metrics["mlm_accuracy"] <= 1.0
