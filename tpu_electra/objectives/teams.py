"""TEAMS: ELECTRA augmented with multi-word selection (Shen et al. 2021, "Training ELECTRA Augmented with
Multi-word Selection").

The generator (masked LM, Eq. 1-2) corrupts the masked positions with one sample each, as in
ELECTRA, and also proposes, for every masked position, K non-original candidate tokens. The
discriminator reads the corrupted sequence and learns two tasks with attention-based heads:

- multi-word selection (MWS, Eq. 7-8): pick the original token among the K + 1 candidates, scored
  by the dot product of the candidates' (tied) word embeddings with the last layer's output;
- replaced-token detection (RTD, Eq. 4 and 6): from the output of layer L - 1 passed through a
  transformer layer of its own (the RTD branch), as the paper and tensorflow/models do.

The loss is MLM + λ1·RTD + λ2·MWS (Eq. 9), λ1 = 5 and λ2 = 2 as in the paper. The network kept for
fine-tuning is the MWS path (paper footnote 3): the embeddings and all L discriminator layers.

Partial layer sharing: the generator has the discriminator's width and half its depth, and the
bottom half of the generator's layers are the discriminator's bottom layers themselves (paper §3.2,
§4.3 "we tie the bottom half of generator with the discriminator"; tying every generator layer is
the "Full Tie" ablation of Table 4, which trains worse). Embeddings and the E -> H projection are
shared too, so the shared layers see inputs from the same space in both networks.
"""
import dataclasses
import math
from typing import Dict, Optional

import tensorflow as tf
from official.nlp.modeling import layers

from tpu_electra.modeling import (EncoderConfig, MultiWordSelectionHead, ReplacedTokenDetectionHead, TransformerEncoder,
                                  encoder_inputs, masked_lm_head)
from tpu_electra.modeling import costs
from tpu_electra.modeling.encoder import Embeddings, transformer_block
from tpu_electra.objectives import losses, sampling
from tpu_electra.objectives.base import GeneratorDiscriminator, register

CANDIDATE_STRATEGIES = ("sampled", "hardest")


def candidate_sets(mlm_logits, original_ids, num_candidates, strategy="sampled", temperature=1.0, seed=None):
  """[B, P, K + 1] candidate ids per masked position: the original first, then K non-originals.

  "sampled" draws the K from the generator without replacement (the paper's choice); "hardest"
  takes the K most likely non-original tokens (the paper's Figure 5 alternative).
  """
  original_ids = tf.cast(original_ids, tf.int32)
  if strategy == "sampled":
    negatives = sampling.sample_without_replacement(mlm_logits, num_candidates, original_ids, temperature, seed=seed)
  elif strategy == "hardest":
    negatives = sampling.top_k_excluding(mlm_logits, num_candidates, original_ids)
  else:
    raise ValueError(f"unknown candidate_strategy {strategy!r}; choose one of {', '.join(CANDIDATE_STRATEGIES)}")
  return tf.concat([original_ids[..., None], negatives], axis=-1)


def multi_word_selection_loss_and_accuracy(logits, weights):
  """Eq. 8 as a mean: cross-entropy of candidate 0 (the original) over the weighted positions.

  Accuracy counts a position as right only when the original scores strictly above every other
  candidate, so ties (e.g. an untrained head) never look like success.
  """
  logits = tf.cast(logits, tf.float32)
  per_position = -tf.nn.log_softmax(logits, axis=-1)[..., 0]
  correct = tf.cast(logits[..., 0] > tf.reduce_max(logits[..., 1:], axis=-1), tf.float32)
  return losses.weighted_mean(per_position, weights), losses.weighted_mean(correct, weights)


def _round_half_up(x: float) -> int:
  # Python's round() sends 0.5 to 0: a one-layer generator at fraction 1/2 would share nothing.
  return int(math.floor(x + 0.5))


def generator_depth(num_layers: int, generator_layer_fraction: float) -> int:
  """The generator's number of layers: the fraction of the discriminator's, rounded half up, >= 1."""
  return max(1, _round_half_up(num_layers * generator_layer_fraction))


@register("teams")
class Teams(GeneratorDiscriminator):
  """Generator (MLM) + discriminator (RTD + MWS) with partial layer sharing.

  Args:
    encoder_config: the discriminator's shape (L layers).
    generator_layer_fraction: generator depth / discriminator depth, same width (paper: 1/2).
    shared_layer_fraction: fraction of the generator's layers, counted from the bottom, that are
      the discriminator's bottom layers (paper: 1/2; 1.0 is "Full Tie", 0.0 "No Tie").
    num_rtd_layers: transformer layers of the RTD branch; it reads the output of discriminator layer
      L - num_rtd_layers (paper: 1, i.e. layer L - 1). 0 puts the RTD head on the last layer beside
      the MWS head (the paper's "FFN task heads" ablation).
    num_candidates: K, the non-original candidates per masked position (paper: 5).
    candidate_strategy: "sampled" (paper) or "hardest".
    mlm_weight, rtd_weight, mws_weight: the weights of Eq. 9 (paper: 1, λ1 = 5, λ2 = 2).
    temperature: of the generator's softmax for the corrupting sample and the sampled candidates.
  """

  def __init__(self, encoder_config: EncoderConfig, generator_layer_fraction: float = 0.5,
               shared_layer_fraction: float = 0.5, num_rtd_layers: int = 1, num_candidates: int = 5,
               candidate_strategy: str = "sampled", mlm_weight: float = 1.0, rtd_weight: float = 5.0,
               mws_weight: float = 2.0, temperature: float = 1.0, name: str = "teams"):
    # No **kwargs: gin would then accept any parameter name, and a typo in a binding must fail.
    super().__init__(encoder_config, name=name)
    num_layers = encoder_config.num_layers
    if encoder_config.share_layers:
      raise ValueError("TEAMS shares layers between generator and discriminator; EncoderConfig.share_layers "
                       "(ALBERT cross-layer sharing) cannot be combined with it")
    if not 0.0 < generator_layer_fraction <= 1.0:
      raise ValueError(f"generator_layer_fraction must be in (0, 1], got {generator_layer_fraction}")
    if not 0.0 <= shared_layer_fraction <= 1.0:
      raise ValueError(f"shared_layer_fraction must be in [0, 1], got {shared_layer_fraction}")
    if not 0 <= num_rtd_layers < num_layers:
      raise ValueError(f"num_rtd_layers must be in [0, {num_layers - 1}] for {num_layers} layers, got {num_rtd_layers}")
    if candidate_strategy not in CANDIDATE_STRATEGIES:
      raise ValueError(f"unknown candidate_strategy {candidate_strategy!r}; "
                       f"choose one of {', '.join(CANDIDATE_STRATEGIES)}")
    if not 0 < num_candidates < encoder_config.vocab_size:
      raise ValueError(f"num_candidates must be in [1, vocab_size - 1], got {num_candidates}")
    if temperature <= 0:
      raise ValueError(f"sampling temperature must be > 0, got {temperature}")

    self.num_generator_layers = generator_depth(num_layers, generator_layer_fraction)
    self.num_shared_layers = _round_half_up(self.num_generator_layers * shared_layer_fraction)
    self.generator_config = dataclasses.replace(encoder_config, num_layers=self.num_generator_layers)
    self.num_rtd_layers = num_rtd_layers
    self.num_candidates = num_candidates
    self.candidate_strategy = candidate_strategy
    self.mlm_weight = mlm_weight
    self.rtd_weight = rtd_weight
    self.mws_weight = mws_weight
    self.temperature = temperature

    self.embeddings = Embeddings(encoder_config)
    self.embeddings.build()
    self.discriminator = TransformerEncoder(encoder_config, embeddings=self.embeddings, name="discriminator")
    # The generator runs the discriminator's projection and bottom layers themselves. It runs
    # first, so the shared variables are created under its name scope
    # ("teams/generator/transformer/layer_0/..."); checkpoints and export go by object, not name.
    self.generator = TransformerEncoder(
        self.generator_config, embeddings=self.embeddings,
        embedding_projection=self.discriminator.embedding_projection,
        bottom_layers=self.discriminator.transformer_layers[:self.num_shared_layers], name="generator")

    self.mlm_head = masked_lm_head(self.embeddings, activation=encoder_config.activation)
    self.rtd_attention_mask = layers.SelfAttentionMask()
    self.rtd_layers = [transformer_block(encoder_config, f"rtd/layer_{num_layers - num_rtd_layers + i}")
                       for i in range(num_rtd_layers)]
    self.rtd_head = ReplacedTokenDetectionHead(
        encoder_config.hidden_size, activation=encoder_config.activation,
        initializer_range=encoder_config.initializer_range)
    self.mws_head = MultiWordSelectionHead(self.embeddings, activation=encoder_config.activation)

  @classmethod
  def training_costs(cls, encoder_config, seq_length, num_predictions, arguments):
    # A shared bottom layer still runs once in each network, so sharing changes no FLOPs.
    generator = dataclasses.replace(
        encoder_config, num_layers=generator_depth(encoder_config.num_layers, arguments["generator_layer_fraction"]))
    num_candidates = int(arguments["num_candidates"]) + 1  # K non-originals and the original
    return [costs.encoder_cost("generator", generator, seq_length),
            costs.Cost("generator_mlm_head", costs.masked_lm_head_flops(generator, num_predictions)),
            # One draw corrupts the input, a second picks the K candidates.
            costs.Cost("sampling", 2 * costs.sampling_flops(encoder_config, num_predictions), trained=False),
            costs.encoder_cost("discriminator", encoder_config, seq_length),
            costs.Cost("rtd_layers",
                       int(arguments["num_rtd_layers"]) * costs.transformer_layer_flops(encoder_config, seq_length)),
            costs.Cost("rtd_head", costs.token_classifier_flops(encoder_config, seq_length)),
            costs.Cost("mws_head", costs.candidate_selection_flops(encoder_config, num_predictions, num_candidates))]

  def detector_logits(self, encoder_output, input_mask, training: Optional[bool] = None) -> tf.Tensor:
    """Replaced-token logits of the RTD branch: discriminator layer L - num_rtd_layers, then the
    branch's own layers and head (export serves these as `rtd_logits`)."""
    hidden = encoder_output["encoder_outputs"][self.encoder_config.num_layers - 1 - self.num_rtd_layers]
    if self.rtd_layers:
      attention_mask = self.rtd_attention_mask(hidden, input_mask)
      for layer in self.rtd_layers:
        hidden = layer([hidden, attention_mask], training=training)
    return self.rtd_head(hidden)

  def detector_layers(self):
    return list(self.rtd_layers) + [self.rtd_head]

  def call(self, batch, training: Optional[bool] = None, seed: Optional[int] = None,
           with_detection: bool = False) -> Dict[str, tf.Tensor]:
    seed = sampling.noise_seed(batch, seed)
    input_mask = batch["input_mask"]
    weights = batch["masked_lm_weights"]
    mlm_logits, mlm_loss, generator_accuracy = losses.masked_lm_pass(self.generator, self.mlm_head, batch, training)
    # Two independent draws, as in the paper: one replacement token (which may be the original,
    # as in ELECTRA) and K candidates that never are. Neither passes gradient to the generator.
    fake_ids, rtd_labels = losses.sample_and_corrupt(mlm_logits, batch, self.temperature, seed)
    candidates = candidate_sets(mlm_logits, batch["masked_lm_ids"], self.num_candidates, self.candidate_strategy,
                                self.temperature, seed=sampling.derive_seed(seed, 1))

    discriminator_output = self.discriminator(encoder_inputs(batch, fake_ids), training=training)
    rtd_logits = self.detector_logits(discriminator_output, input_mask, training=training)
    rtd_loss = losses.replaced_token_detection_loss(rtd_logits, rtd_labels, input_mask)

    mws_logits = self.mws_head(discriminator_output["sequence_output"], batch["masked_lm_positions"], candidates)
    mws_loss, mws_accuracy = multi_word_selection_loss_and_accuracy(mws_logits, weights)

    outputs = {
        "loss": self.mlm_weight * mlm_loss + self.rtd_weight * rtd_loss + self.mws_weight * mws_loss,
        "mlm_loss": mlm_loss,
        "rtd_loss": rtd_loss,
        "mws_loss": mws_loss,
        "generator_accuracy": generator_accuracy,
        "mws_accuracy": mws_accuracy,
    }
    outputs.update(losses.detection_report(rtd_logits, rtd_labels, batch, with_detection))
    return outputs
