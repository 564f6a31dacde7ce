"""Task models: each loss against a hand computation, and unlabelled entries weighing nothing."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.finetuning import models
from tpu_electra.modeling import EncoderConfig, TransformerEncoder

CONFIG = EncoderConfig(vocab_size=30, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                       max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _encoder():
  tf.keras.utils.set_random_seed(0)
  return TransformerEncoder(CONFIG)


def _inputs(batch=3, length=6, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, 30, size=(batch, length)).astype(np.int32)
  mask = np.ones_like(ids)
  mask[0, 4:] = 0
  ids[0, 4:] = 0
  return {"input_word_ids": tf.constant(ids), "input_mask": tf.constant(mask),
          "input_type_ids": tf.zeros_like(ids)}


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_classification_loss_is_cross_entropy_over_labelled_examples_only():
  model = models.ClassificationModel(_encoder(), num_labels=3, dropout_rate=0.0)
  batch = dict(_inputs(), label_ids=tf.constant([2, -1, 0]))
  out = model(batch, training=False)
  logits = model.task_outputs(batch)["logits"].numpy()
  nll = -_log_softmax(logits)[[0, 2], [2, 0]]
  assert out["loss"].numpy() == pytest.approx(nll.mean(), rel=1e-5)
  assert out["accuracy"].numpy() == pytest.approx(np.mean(logits.argmax(-1)[[0, 2]] == [2, 0]))


def test_regression_loss_is_mean_squared_error():
  model = models.RegressionModel(_encoder(), dropout_rate=0.0)
  batch = dict(_inputs(), label_ids=tf.constant([0.5, 3.0, 4.5]))
  scores = model.task_outputs(batch)["scores"].numpy()
  assert scores.shape == (3,)
  assert model(batch)["loss"].numpy() == pytest.approx(np.mean((scores - [0.5, 3.0, 4.5]) ** 2), rel=1e-5)


def test_span_loss_averages_start_and_end_cross_entropy():
  model = models.SpanModel(_encoder())
  batch = dict(_inputs(), start_positions=tf.constant([1, 0, 2]), end_positions=tf.constant([3, 0, 5]))
  outputs = model.task_outputs(batch)
  start = _log_softmax(outputs["start_logits"].numpy())
  end = _log_softmax(outputs["end_logits"].numpy())
  expected = (-start[[0, 1, 2], [1, 0, 2]].mean() - end[[0, 1, 2], [3, 0, 5]].mean()) / 2
  assert model(batch)["loss"].numpy() == pytest.approx(expected, rel=1e-5)
  # Padding positions of the first row can never be predicted.
  assert (outputs["start_logits"].numpy()[0, 4:] < -9000).all()


def test_tagging_loss_ignores_positions_labelled_minus_one():
  model = models.TaggingModel(_encoder(), num_labels=4, dropout_rate=0.0)
  labels = -np.ones((3, 6), np.int32)
  labels[0, 1], labels[1, 2], labels[2, 4] = 3, 0, 1
  batch = dict(_inputs(), label_ids=tf.constant(labels))
  logits = model.task_outputs(batch)["logits"].numpy()
  nll = -_log_softmax(logits)[[0, 1, 2], [1, 2, 4], [3, 0, 1]]
  assert model(batch)["loss"].numpy() == pytest.approx(nll.mean(), rel=1e-5)


def test_multiple_choice_scores_each_option_and_softmaxes_over_options():
  model = models.MultipleChoiceModel(_encoder(), num_choices=3, dropout_rate=0.0)
  flat = _inputs(batch=6)
  batch = {name: tf.reshape(value, [2, 3, 6]) for name, value in flat.items()}
  batch["label_ids"] = tf.constant([2, 0])
  logits = model.task_outputs(batch)["logits"].numpy()
  assert logits.shape == (2, 3)
  # Option j of question b is flat sequence 3b + j, encoded on its own.
  sequence = model.encoder(flat)["sequence_output"]
  np.testing.assert_allclose(logits.reshape(-1), model.head.scorer(sequence).numpy()[:, 0], rtol=1e-5, atol=1e-6)
  nll = -_log_softmax(logits)[[0, 1], [2, 0]]
  assert model(batch)["loss"].numpy() == pytest.approx(nll.mean(), rel=1e-5)
