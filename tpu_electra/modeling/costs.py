"""FLOPs of the modeling code's parts, counted the way the ELECTRA paper counts them.

Conventions (the ELECTRA paper's FLOPs appendix and its authors' flops_computation.py, so that a
budget here means what the papers' tables mean): a matrix multiply of [1, m] by [m, n] is 2mn
FLOPs; every elementwise operation is one FLOP per element, with fixed per-element costs for
dropout, layer norm, GELU and softmax below; word, position and type embedding lookups count as
dense one-hot matrix multiplies. Each objective lists its parts with these primitives in its
`training_costs` (tpu_electra.objectives); `train_flops_per_sequence` adds them up with the
backward pass.
"""
import dataclasses
import math
from typing import Sequence

from tpu_electra.modeling.config import EncoderConfig

# Per element: draw a random number, compare with the rate, apply the mask, rescale.
DROPOUT_FLOPS = 4
# Per element: mean (sum), variance (square, sum), scale, shift.
LAYER_NORM_FLOPS = 5
# Per element: GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
ACTIVATION_FLOPS = 8
# Per element: max, subtract, exp, sum, divide (or log for a log-sum-exp).
SOFTMAX_FLOPS = 5
# Per vocabulary entry: uniform draw, two logs, two epsilon adds, negation, 1/temperature, add the
# noise, compare for the argmax. No gradient flows through a sample, so it has no backward pass.
GUMBEL_SAMPLE_FLOPS = 9


@dataclasses.dataclass(frozen=True)
class Cost:
  """The forward FLOPs of one part of an objective, for one sequence.

  `trained` parts are differentiated, so the backward pass goes through them too. `lookups` is
  the part of `forward` that is embedding lookups counted as one-hot matmuls: hardware runs them
  as gathers (and their backward as a scatter-add), so an executed-FLOPs count leaves them out.
  """
  name: str
  forward: float
  trained: bool = True
  lookups: float = 0.0


def dense_flops(inputs: int, outputs: int) -> float:
  """A dense layer on one token: the matmul and the bias."""
  return 2.0 * inputs * outputs + outputs


def lookup_flops(config: EncoderConfig, seq_length: int) -> float:
  """Word, position and type lookups counted as dense one-hot products; per sequence."""
  return 2.0 * config.embedding_width * (config.vocab_size + seq_length + config.type_vocab_size) * seq_length


def embedding_flops(config: EncoderConfig, seq_length: int) -> float:
  """Word, position and type lookups (dense one-hot products), sum, layer norm, dropout, and the
  E -> H projection when E != H; per sequence."""
  e, h = config.embedding_width, config.hidden_size
  per_token = 2.0 * e + (LAYER_NORM_FLOPS + DROPOUT_FLOPS) * e  # add the three, layer norm, dropout
  if e != h:
    per_token += dense_flops(e, h)
  return lookup_flops(config, seq_length) + per_token * seq_length


def transformer_layer_flops(config: EncoderConfig, seq_length: int) -> float:
  """One post-LN transformer layer (self-attention + GELU feed-forward) on a whole sequence."""
  h, i, s, heads = config.hidden_size, config.intermediate_size, seq_length, config.num_heads
  attention = (3 * dense_flops(h, h)                      # query, key, value projections
               + 2.0 * h * s                              # scores: every query against every key
               + (1 + SOFTMAX_FLOPS + DROPOUT_FLOPS) * s * heads  # scale, softmax, dropout
               + 2.0 * h * s                              # probabilities times values
               + dense_flops(h, h)                        # output projection
               + (DROPOUT_FLOPS + 1 + LAYER_NORM_FLOPS) * h)  # dropout, residual, layer norm
  feed_forward = (dense_flops(h, i) + ACTIVATION_FLOPS * i + dense_flops(i, h)
                  + (DROPOUT_FLOPS + 1 + LAYER_NORM_FLOPS) * h)
  return (attention + feed_forward) * s


def encoder_flops(config: EncoderConfig, seq_length: int) -> float:
  """Embeddings plus every layer; a shared layer applied L times costs L layers."""
  return embedding_flops(config, seq_length) + config.num_layers * transformer_layer_flops(config, seq_length)


def encoder_cost(name: str, config: EncoderConfig, seq_length: int) -> Cost:
  """A whole encoder (embeddings and layers) on one sequence, its lookups marked."""
  return Cost(name, encoder_flops(config, seq_length), lookups=lookup_flops(config, seq_length))


def masked_lm_head_flops(config: EncoderConfig, num_positions: int, with_targets: bool = True) -> float:
  """The tied MLM head on `num_positions` tokens: dense H -> E, GELU, layer norm, logits over the
  vocabulary and their softmax; `with_targets` adds picking each target's log-probability."""
  e, v = config.embedding_width, config.vocab_size
  per_position = (dense_flops(config.hidden_size, e) + (ACTIVATION_FLOPS + LAYER_NORM_FLOPS) * e
                  + dense_flops(e, v) + SOFTMAX_FLOPS * v)
  if with_targets:
    per_position += 2.0 * v
  return per_position * num_positions


def token_classifier_flops(config: EncoderConfig, num_positions: int, num_classes: int = 1) -> float:
  """Dense H -> H, GELU, dense H -> classes on `num_positions` tokens (ELECTRA's RTD head)."""
  h = config.hidden_size
  return (dense_flops(h, h) + ACTIVATION_FLOPS * h + dense_flops(h, num_classes)) * num_positions


def candidate_selection_flops(config: EncoderConfig, num_positions: int, num_candidates: int) -> float:
  """TEAMS' multi-word selection head: dense H -> E, GELU, layer norm, a dot product with each
  candidate's embedding and a softmax over the candidates, at `num_positions` tokens."""
  e = config.embedding_width
  return (dense_flops(config.hidden_size, e) + (ACTIVATION_FLOPS + LAYER_NORM_FLOPS) * e
          + 2.0 * e * num_candidates + SOFTMAX_FLOPS * num_candidates) * num_positions


def next_sentence_flops(config: EncoderConfig) -> float:
  """BERT's pooler (dense + tanh on [CLS]) and 2-way classifier with its softmax; per sequence."""
  h = config.hidden_size
  return dense_flops(h, h) + ACTIVATION_FLOPS * h + dense_flops(h, 2) + SOFTMAX_FLOPS * 2


def sampling_flops(config: EncoderConfig, num_positions: int) -> float:
  """One Gumbel-max draw over the vocabulary at `num_positions` tokens (no backward pass)."""
  return GUMBEL_SAMPLE_FLOPS * config.vocab_size * num_positions


def train_flops_per_sequence(costs: Sequence[Cost], backward_factor: float = 1.0,
                             lookups_as_matmuls: bool = True) -> float:
  """Forward of every part plus `backward_factor` times the forward of the parts that train.

  `lookups_as_matmuls=False` leaves embedding lookups out: the FLOPs hardware executes, the
  numerator of a model-FLOPs utilization.
  """
  total = 0.0
  for c in costs:
    forward = c.forward if lookups_as_matmuls else c.forward - c.lookups
    total += forward * (1.0 + (backward_factor if c.trained else 0.0))
  return total


def steps_within(flops_budget: float, flops_per_step: float) -> int:
  """The most steps of `flops_per_step` whose total stays within `flops_budget` (at least one)."""
  steps = int(math.floor(flops_budget / flops_per_step))
  if steps < 1:
    raise ValueError(f"TRAIN_FLOPS={flops_budget:.3g} is less than one training step ({flops_per_step:.3g} FLOPs)")
  return steps
