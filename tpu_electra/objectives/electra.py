"""ELECTRA: a small masked-LM generator corrupts the input, a discriminator detects replaced tokens.

Clark et al. 2020; sizes and defaults as in ../shared/papers (generator 1/4 of the discriminator's
width, same depth, shared token/position/type embeddings; loss = MLM + 50 * RTD).
"""
from typing import Dict, Optional

import gin
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, ReplacedTokenDetectionHead, TransformerEncoder, masked_lm_head
from tpu_electra.modeling.encoder import Embeddings
from tpu_electra.objectives import sampling
from tpu_electra.objectives.base import DETECTION, PretrainingObjective


def masked_lm_loss_and_accuracy(logits, target_ids, weights):
  """Mean cross-entropy and accuracy over the weighted (real) masked positions; float32."""
  logits = tf.cast(logits, tf.float32)
  per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(target_ids, tf.int32), logits=logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(target_ids, tf.int32)), tf.float32)
  return sampling.weighted_mean(per_position, weights), sampling.weighted_mean(correct, weights)


def replaced_token_detection_loss(logits, labels, weights):
  """Mean sigmoid cross-entropy over the weighted (non-padding) tokens; float32."""
  per_token = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=tf.cast(logits, tf.float32))
  return sampling.weighted_mean(per_token, weights)


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
      "discriminator_accuracy": sampling.weighted_mean(tf.cast(tf.equal(predicted, labels), tf.float32), weights),
      "discriminator_precision": tf.math.divide_no_nan(true_positives, tf.reduce_sum(predicted * weights)),
      "discriminator_recall": tf.math.divide_no_nan(true_positives, tf.reduce_sum(labels * weights)),
  }


def detection_outputs(logits, labels, weights) -> Dict[str, tf.Tensor]:
  """Per-token replaced-token scores, labels and weights, for metrics over a whole evaluation set."""
  return {"scores": tf.cast(logits, tf.float32), "labels": tf.cast(labels, tf.int32),
          "weights": tf.cast(weights, tf.float32)}


def corrupt_with_samples(masked_input_ids, original_ids, positions, weights, sampled_ids):
  """Puts the generator's samples at the masked positions; labels mark tokens that now differ."""
  fake_ids = sampling.scatter_positions(masked_input_ids, positions, sampled_ids, weights)
  labels = tf.cast(tf.not_equal(fake_ids, tf.cast(original_ids, fake_ids.dtype)), tf.int32)
  return fake_ids, labels


@gin.configurable
class Electra(PretrainingObjective):
  """Generator + discriminator, trained jointly; the discriminator is the encoder that is kept."""

  def __init__(self, encoder_config: EncoderConfig, generator_fraction: float = 0.25,
               mlm_weight: float = 1.0, rtd_weight: float = 50.0, temperature: float = 1.0,
               name: str = "electra"):
    # No **kwargs: gin accepts any parameter name for a function with **kwargs, and a typo in a
    # binding must be an error.
    super().__init__(name=name)
    self.encoder_config = encoder_config
    self.generator_config = encoder_config.scaled(generator_fraction)
    self.mlm_weight = mlm_weight
    self.rtd_weight = rtd_weight
    self.temperature = temperature
    self.embeddings = Embeddings(encoder_config)
    self.embeddings.build()
    self.generator = TransformerEncoder(self.generator_config, embeddings=self.embeddings, name="generator")
    self.discriminator = TransformerEncoder(encoder_config, embeddings=self.embeddings, name="discriminator")
    self.mlm_head = masked_lm_head(self.embeddings, activation=encoder_config.activation)
    self.rtd_head = ReplacedTokenDetectionHead(
        encoder_config.hidden_size, activation=encoder_config.activation,
        initializer_range=encoder_config.initializer_range)

  @property
  def encoder(self) -> TransformerEncoder:
    """The network that fine-tuning and export load."""
    return self.discriminator

  def detector_logits(self, discriminator_output, input_mask, training: Optional[bool] = None) -> tf.Tensor:
    """Replaced-token logits [batch, length] from the discriminator's outputs (export uses it too)."""
    del input_mask, training  # The head reads the last layer as it is.
    return self.rtd_head(discriminator_output["sequence_output"])

  def call(self, batch, training: Optional[bool] = None, seed: Optional[int] = None,
           with_detection: bool = False) -> Dict[str, tf.Tensor]:
    seed = sampling.noise_seed(batch, seed)
    input_mask = batch["input_mask"]
    positions = batch["masked_lm_positions"]
    weights = batch["masked_lm_weights"]

    generator_output = self.generator({
        "input_word_ids": batch["masked_input_ids"],
        "input_mask": input_mask,
        "input_type_ids": batch["segment_ids"]}, training=training)
    mlm_logits = self.mlm_head(generator_output["sequence_output"], masked_positions=positions)
    mlm_loss, generator_accuracy = masked_lm_loss_and_accuracy(mlm_logits, batch["masked_lm_ids"], weights)

    sampled_ids = sampling.sample_from_logits(mlm_logits, self.temperature, seed=seed)
    fake_ids, rtd_labels = corrupt_with_samples(
        batch["masked_input_ids"], batch["input_ids"], positions, weights, sampled_ids)
    discriminator_output = self.discriminator({
        "input_word_ids": fake_ids,
        "input_mask": input_mask,
        "input_type_ids": batch["segment_ids"]}, training=training)
    rtd_logits = self.detector_logits(discriminator_output, input_mask, training=training)
    rtd_loss = replaced_token_detection_loss(rtd_logits, rtd_labels, input_mask)

    outputs = {
        "loss": self.mlm_weight * mlm_loss + self.rtd_weight * rtd_loss,
        "mlm_loss": mlm_loss,
        "rtd_loss": rtd_loss,
        "generator_accuracy": generator_accuracy,
        "replaced_fraction": tf.math.divide_no_nan(
            tf.reduce_sum(sampling.gather_positions(tf.cast(rtd_labels, tf.float32), positions) * weights),
            tf.reduce_sum(weights)),
    }
    outputs.update(discriminator_metrics(rtd_logits, rtd_labels, input_mask))
    if with_detection:
      outputs[DETECTION] = detection_outputs(rtd_logits, rtd_labels, input_mask)
    return outputs
