"""Task heads: what position they read, padding masks, per-option reshaping, float32 logits."""
import numpy as np

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import task_heads


def _sequence(batch=2, length=5, width=8, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=(batch, length, width)), tf.float32)


def test_classification_head_reads_only_the_first_position():
  head = task_heads.ClassificationHead(3, hidden_size=8, dropout_rate=0.0)
  sequence = _sequence()
  changed = tf.concat([sequence[:, :1], sequence[:, 1:] + 5.0], axis=1)
  logits = head(sequence)
  assert logits.shape == (2, 3) and logits.dtype == tf.float32
  np.testing.assert_allclose(head(changed).numpy(), logits.numpy())
  moved_cls = tf.concat([sequence[:, :1] + 1.0, sequence[:, 1:]], axis=1)
  assert not np.allclose(head(moved_cls).numpy(), logits.numpy())


def test_classification_head_is_dense_activation_dense():
  head = task_heads.ClassificationHead(2, hidden_size=4, activation="gelu", dropout_rate=0.5)
  sequence = _sequence(width=6)
  logits = head(sequence, training=False).numpy()
  first = sequence[:, 0].numpy()
  hidden = tf.keras.activations.gelu(first @ head.dense.kernel.numpy() + head.dense.bias.numpy()).numpy()
  expected = hidden @ head.out_proj.kernel.numpy() + head.out_proj.bias.numpy()
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_span_head_masks_padding_but_not_cls():
  head = task_heads.SpanHead()
  mask = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
  start, end = head(_sequence(), mask)
  assert start.shape == (2, 5) and end.dtype == tf.float32
  assert (start.numpy()[0, 3:] < -9000).all() and (end.numpy()[0, 3:] < -9000).all()
  assert (np.abs(start.numpy()[:, 0]) < 100).all()
  assert (np.abs(end.numpy()[1]) < 100).all()


def test_tagging_head_gives_logits_at_every_position():
  head = task_heads.TaggingHead(7, dropout_rate=0.0)
  logits = head(_sequence(length=6))
  assert logits.shape == (2, 6, 7)


def test_multiple_choice_head_groups_consecutive_sequences_into_one_question():
  head = task_heads.MultipleChoiceHead(num_choices=3, hidden_size=8, dropout_rate=0.0)
  sequence = _sequence(batch=6)
  scores = head(sequence)
  assert scores.shape == (2, 3)
  per_sequence = head.scorer(sequence).numpy()[:, 0]
  np.testing.assert_allclose(scores.numpy(), per_sequence.reshape(2, 3), rtol=1e-6)
