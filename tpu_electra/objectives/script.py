"""SCRIPT: self-critic pretraining. One encoder and one MLM head recover masked tokens, propose
replacements and detect them, with no parameter beyond BERT's (Nijkamp et al., equations 1-7).

A step runs two forward passes and one backward pass:
  1. MLM pass on the masked input x^: the MLM loss over the masked positions (Eq. 1-2).
  2. At each masked position a token is drawn from the MLM distribution with the Gumbel-max trick
     (Eq. 3), in float32 and outside the gradient; x- is x with those draws at the masked positions.
  3. Critic pass on x-, same encoder, same head: with s_t the V logits of token t, the classifier
     over V + 1 classes whose extra logit is fixed at 0 gives p(t+) = sum_v exp(s_tv) /
     (sum_v exp(s_tv) + 1) = sigmoid(logsumexp(s_t)) and p(t-) = sigmoid(-logsumexp(s_t)) (Eq. 4-5).
     A token is positive when it equals the original (x-_t = x_t, which every unmasked token does
     and a draw may), negative otherwise; Disc is their cross-entropy over every real token (Eq. 6).
  loss = MLM + alpha * Disc, alpha = 50 (Appendix).

Eq. 3 writes the relaxed Gumbel-softmax over (log pi + g) / tau. No gradient flows through the
draw, so only its hard sample matters, argmax(log pi + g), which is a draw from pi for any tau. As
in the ELECTRA code the paper modified, `temperature` divides the logits before the noise is added
so that it still sharpens (< 1) or flattens (> 1) the proposals; 1.0 (the paper names no value) is
exactly Eq. 3's hard sample.
"""
from typing import Dict, Optional

import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, TransformerEncoder, encoder_inputs, masked_lm_head
from tpu_electra.modeling import costs
from tpu_electra.objectives import losses, sampling
from tpu_electra.objectives.base import MaskedLanguageModel, OnePassScorer, PretrainingObjective, register


def critic_logits(token_logits):
  """log p(t+) - log p(t-) = logsumexp_v s_tv: the log-odds that a token is the original (Eq. 4-5).

  `token_logits` [..., V] are the MLM head's logits s_t; the result [...] is float32.
  """
  return tf.reduce_logsumexp(tf.cast(token_logits, tf.float32), axis=-1)


def critic_probabilities(token_logits):
  """(p(t+), p(t-)) of Eq. 5 and Eq. 4: the extra zero logit normalizes against sum_v exp(s_tv)."""
  odds = critic_logits(token_logits)
  return tf.sigmoid(odds), tf.sigmoid(-odds)


def self_critic_loss(token_logits, is_original, weights):
  """Eq. 6: mean binary cross-entropy of p(t+) against "token is the original", over weighted tokens."""
  per_token = tf.nn.sigmoid_cross_entropy_with_logits(
      labels=tf.cast(is_original, tf.float32), logits=critic_logits(token_logits))
  return losses.weighted_mean(per_token, weights)


def all_positions(input_ids):
  """[B, L] positions 0..L-1 for every row: the MLM head's logits at every token."""
  shape = tf.shape(input_ids)
  return tf.broadcast_to(tf.range(shape[1], dtype=tf.int32)[None, :], shape)


def pseudo_log_likelihood(encoder: TransformerEncoder, mlm_head, batch, token_weights=None, training: bool = False):
  """Eq. 7: PLL(x) = sum_t log p(t+ | x), from one forward pass on the unmasked sequence.

  `batch` holds `input_ids`, `input_mask` and `segment_ids` ([B, L]); tokens count where
  `token_weights` > 0 (default: `input_mask`; zero [CLS]/[SEP] there to score words only).
  Returns [B] float32 scores, higher = more plausible.
  """
  output = encoder(encoder_inputs(batch), training=training)
  logits = mlm_head(output["sequence_output"], masked_positions=all_positions(batch["input_ids"]))
  log_p_original = tf.math.log_sigmoid(critic_logits(logits))
  weights = batch["input_mask"] if token_weights is None else token_weights
  return tf.reduce_sum(log_p_original * tf.cast(weights, tf.float32), axis=-1)


@register("script")
class Script(PretrainingObjective, MaskedLanguageModel, OnePassScorer):
  """One encoder + tied MLM head trained as masked LM and as its own critic."""

  def __init__(self, encoder_config: EncoderConfig, mlm_weight: float = 1.0, disc_weight: float = 50.0,
               temperature: float = 1.0, name: str = "script"):
    super().__init__(encoder_config, name=name)
    # One network and one head serve the MLM pass and the critic pass.
    self.script_encoder = TransformerEncoder(encoder_config, name="encoder")
    self.mlm_head = masked_lm_head(self.script_encoder.embeddings, activation=encoder_config.activation)
    self.mlm_weight = mlm_weight
    self.disc_weight = disc_weight
    self.temperature = temperature

  @classmethod
  def training_costs(cls, encoder_config, seq_length, num_predictions, arguments):
    del arguments  # Weights and temperature change no FLOPs.
    # The critic pass needs the log-sum-exp of the logits of every token (Eq. 4-5), not a target's.
    return [costs.encoder_cost("mlm_pass", encoder_config, seq_length),
            costs.Cost("mlm_head", costs.masked_lm_head_flops(encoder_config, num_predictions)),
            costs.Cost("sampling", costs.sampling_flops(encoder_config, num_predictions), trained=False),
            costs.encoder_cost("critic_pass", encoder_config, seq_length),
            costs.Cost("critic_head", costs.masked_lm_head_flops(encoder_config, seq_length, with_targets=False))]

  @property
  def encoder(self) -> TransformerEncoder:
    return self.script_encoder

  def masked_lm(self):
    return self.script_encoder, self.mlm_head

  def pseudo_log_likelihood(self, batch, token_weights=None):
    return pseudo_log_likelihood(self.script_encoder, self.mlm_head, batch, token_weights)

  def call(self, batch, training: Optional[bool] = None, seed: Optional[int] = None,
           with_detection: bool = False) -> Dict[str, tf.Tensor]:
    seed = sampling.noise_seed(batch, seed)
    mlm_logits, mlm_loss, mlm_accuracy = losses.masked_lm_pass(self.script_encoder, self.mlm_head, batch, training)
    # sample_from_logits stops the gradient: the draw is data for the critic pass.
    sampled_input_ids, replaced = losses.sample_and_corrupt(mlm_logits, batch, self.temperature, seed)
    critic_output = self.script_encoder(encoder_inputs(batch, sampled_input_ids), training=training)
    token_logits = self.mlm_head(critic_output["sequence_output"], masked_positions=all_positions(sampled_input_ids))
    disc_loss = self_critic_loss(token_logits, 1 - replaced, batch["input_mask"])
    outputs = {
        "loss": self.mlm_weight * mlm_loss + self.disc_weight * disc_loss,
        "mlm_loss": mlm_loss,
        "disc_loss": disc_loss,
        "mlm_accuracy": mlm_accuracy,
    }
    # The shared metrics score "replaced": its log-odds are log p(t-) - log p(t+).
    outputs.update(losses.detection_report(-critic_logits(token_logits), replaced, batch, with_detection))
    return outputs
