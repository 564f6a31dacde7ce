"""Losses, metrics and the generator -> sample -> corrupt steps that the pretraining objectives share.

Everything is float32 whatever the compute dtype, and works on dense, statically shaped tensors.
"""
from typing import Dict, Optional, Tuple

import tensorflow as tf

from tpu_electra.modeling import encoder_inputs
from tpu_electra.objectives import sampling
from tpu_electra.objectives.base import DETECTION


def weighted_mean(values, weights):
  values = tf.cast(values, tf.float32)
  weights = tf.cast(weights, tf.float32)
  return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def masked_lm_loss_and_accuracy(logits, target_ids, weights):
  """Mean cross-entropy and accuracy over the weighted (real) masked positions; float32."""
  logits = tf.cast(logits, tf.float32)
  per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(target_ids, tf.int32), logits=logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(target_ids, tf.int32)), tf.float32)
  return weighted_mean(per_position, weights), weighted_mean(correct, weights)


def replaced_token_detection_loss(logits, labels, weights):
  """Mean sigmoid cross-entropy over the weighted (non-padding) tokens; float32."""
  per_token = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=tf.cast(logits, tf.float32))
  return weighted_mean(per_token, weights)


def discriminator_metrics(logits, labels, weights) -> Dict[str, tf.Tensor]:
  """Accuracy, precision and recall of replaced-token detection (positive = replaced).

  Cheap enough for every training step; the exact AUC, which sorts every token, is computed by
  held-out evaluation (tpu_electra.evaluate) from `detection_outputs` instead.
  """
  logits = tf.cast(logits, tf.float32)
  labels = tf.cast(labels, tf.float32)
  weights = tf.cast(weights, tf.float32)
  predicted = tf.cast(logits > 0.0, tf.float32)
  true_positives = tf.reduce_sum(predicted * labels * weights)
  return {
      "discriminator_accuracy": weighted_mean(tf.cast(tf.equal(predicted, labels), tf.float32), weights),
      "discriminator_precision": tf.math.divide_no_nan(true_positives, tf.reduce_sum(predicted * weights)),
      "discriminator_recall": tf.math.divide_no_nan(true_positives, tf.reduce_sum(labels * weights)),
  }


def detection_outputs(logits, labels, weights) -> Dict[str, tf.Tensor]:
  """Per-token replaced-token scores, labels and weights, for metrics over a whole evaluation set."""
  return {"scores": tf.cast(logits, tf.float32), "labels": tf.cast(labels, tf.int32),
          "weights": tf.cast(weights, tf.float32)}


def replaced_fraction(labels, positions, weights):
  """The fraction of the real masked positions whose sample differs from the original token."""
  return weighted_mean(sampling.gather_positions(tf.cast(labels, tf.float32), positions), weights)


def detection_report(scores, labels, batch, with_detection: bool) -> Dict[str, tf.Tensor]:
  """What every objective that detects replaced tokens logs: the replaced fraction, accuracy,
  precision and recall of `scores` (log-odds of "replaced") over the real tokens, and with
  `with_detection` the per-token DETECTION entry for the held-out AUC."""
  input_mask = batch["input_mask"]
  outputs = {"replaced_fraction": replaced_fraction(labels, batch["masked_lm_positions"],
                                                    batch["masked_lm_weights"])}
  outputs.update(discriminator_metrics(scores, labels, input_mask))
  if with_detection:
    outputs[DETECTION] = detection_outputs(scores, labels, input_mask)
  return outputs


# ------------------------------------------------------------------------------------------------
# Generator -> sample -> corrupt -> second pass


def masked_lm_pass(network, mlm_head, batch, training: Optional[bool] = None):
  """The network and its tied MLM head on the masked input: (logits at the masked positions, mean
  MLM loss, MLM accuracy)."""
  output = network(encoder_inputs(batch, batch["masked_input_ids"]), training=training)
  logits = mlm_head(output["sequence_output"], masked_positions=batch["masked_lm_positions"])
  loss, accuracy = masked_lm_loss_and_accuracy(logits, batch["masked_lm_ids"], batch["masked_lm_weights"])
  return logits, loss, accuracy


def corrupt_with_samples(masked_input_ids, original_ids, positions, weights, sampled_ids):
  """Puts the generator's samples at the masked positions; labels mark tokens that now differ."""
  fake_ids = sampling.scatter_positions(masked_input_ids, positions, sampled_ids, weights)
  labels = tf.cast(tf.not_equal(fake_ids, tf.cast(original_ids, fake_ids.dtype)), tf.int32)
  return fake_ids, labels


def sample_and_corrupt(mlm_logits, batch, temperature: float, seed=None) -> Tuple[tf.Tensor, tf.Tensor]:
  """One draw per masked position from the MLM distribution (no gradient), put into the masked input:
  (corrupted ids [B, L], labels [B, L] with 1 where a token now differs from the original)."""
  sampled_ids = sampling.sample_from_logits(mlm_logits, temperature, seed=seed)
  return corrupt_with_samples(batch["masked_input_ids"], batch["input_ids"], batch["masked_lm_positions"],
                              batch["masked_lm_weights"], sampled_ids)
