"""ELECTRA: a small masked-LM generator corrupts the input, a discriminator detects replaced tokens.

Clark et al. 2020, "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators";
sizes and defaults as in the paper (generator 1/4 of the discriminator's
width, same depth, shared token/position/type embeddings; loss = MLM + 50 * RTD).
"""
from typing import Dict, Optional

import tensorflow as tf

from tpu_electra.modeling import (EncoderConfig, ReplacedTokenDetectionHead, TransformerEncoder, encoder_inputs,
                                  masked_lm_head)
from tpu_electra.modeling import costs
from tpu_electra.modeling.encoder import Embeddings
from tpu_electra.objectives import losses, sampling
from tpu_electra.objectives.base import GeneratorDiscriminator, register


@register("electra")
class Electra(GeneratorDiscriminator):
  """Generator + discriminator, trained jointly; the discriminator is the encoder that is kept."""

  def __init__(self, encoder_config: EncoderConfig, generator_fraction: float = 0.25,
               mlm_weight: float = 1.0, rtd_weight: float = 50.0, temperature: float = 1.0,
               name: str = "electra"):
    # No **kwargs: gin accepts any parameter name for a function with **kwargs, and a typo in a
    # binding must be an error.
    super().__init__(encoder_config, name=name)
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

  @classmethod
  def training_costs(cls, encoder_config, seq_length, num_predictions, arguments):
    generator = encoder_config.scaled(float(arguments["generator_fraction"]))
    return [costs.encoder_cost("generator", generator, seq_length),
            costs.Cost("generator_mlm_head", costs.masked_lm_head_flops(generator, num_predictions)),
            costs.Cost("sampling", costs.sampling_flops(encoder_config, num_predictions), trained=False),
            costs.encoder_cost("discriminator", encoder_config, seq_length),
            costs.Cost("rtd_head", costs.token_classifier_flops(encoder_config, seq_length))]

  def detector_logits(self, encoder_output, input_mask, training: Optional[bool] = None) -> tf.Tensor:
    """Replaced-token logits [batch, length] from the discriminator's outputs (export uses it too)."""
    del input_mask, training  # The head reads the last layer as it is.
    return self.rtd_head(encoder_output["sequence_output"])

  def detector_layers(self):
    return [self.rtd_head]

  def electra_discriminator_head(self):
    return self.rtd_head

  def call(self, batch, training: Optional[bool] = None, seed: Optional[int] = None,
           with_detection: bool = False) -> Dict[str, tf.Tensor]:
    seed = sampling.noise_seed(batch, seed)
    mlm_logits, mlm_loss, generator_accuracy = losses.masked_lm_pass(self.generator, self.mlm_head, batch, training)
    fake_ids, rtd_labels = losses.sample_and_corrupt(mlm_logits, batch, self.temperature, seed)
    discriminator_output = self.discriminator(encoder_inputs(batch, fake_ids), training=training)
    rtd_logits = self.detector_logits(discriminator_output, batch["input_mask"], training=training)
    rtd_loss = losses.replaced_token_detection_loss(rtd_logits, rtd_labels, batch["input_mask"])
    outputs = {
        "loss": self.mlm_weight * mlm_loss + self.rtd_weight * rtd_loss,
        "mlm_loss": mlm_loss,
        "rtd_loss": rtd_loss,
        "generator_accuracy": generator_accuracy,
    }
    outputs.update(losses.detection_report(rtd_logits, rtd_labels, batch, with_detection))
    return outputs
