"""BERT-style masking: one implementation, used on the fly by the input pipeline and ahead of time
by data_prep (static masking with a dupe factor).

For each sequence, round(mask_rate × maskable tokens) positions (at least 1, at most
`max_predictions_per_seq`) are chosen uniformly without replacement among the tokens that are not
[PAD]/[CLS]/[SEP]. Of the chosen positions, `mask_token_fraction` become [MASK],
`random_token_fraction` become a uniformly drawn non-special token, and the rest keep their token.

Whole-word masking (`word_continuation` given) chooses words instead of tokens: all pieces of a
word are masked together. Words are drawn uniformly without replacement and taken until the
sequence has at least its quota of masked tokens; a word is never split, so the last one may
overshoot the quota by a few pieces, but never past `max_predictions_per_seq` (a word longer than
that is never chosen). The [MASK] / random / keep choice stays per token, as in BERT.

Randomness is stateful by default (`seed`: every call, e.g. every batch of a dataset, draws new
masks) or stateless (`stateless_seed`: the same seed always gives the same masks, in any process,
which is what static masking ahead of time needs for reproducible data).
"""
import dataclasses
from typing import Mapping, Optional

import gin
import tensorflow as tf


@gin.configurable
@dataclasses.dataclass(frozen=True)
class MaskingConfig:
  mask_rate: float = 0.15
  mask_token_fraction: float = 0.8
  random_token_fraction: float = 0.1
  # None: derived from the sequence length as (mask_rate + 0.005) × seq_length, as ELECTRA does.
  max_predictions_per_seq: Optional[int] = None

  def __post_init__(self):
    if not 0.0 < self.mask_rate < 1.0:
      raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate}")
    if self.mask_token_fraction < 0 or self.random_token_fraction < 0 or (
        self.mask_token_fraction + self.random_token_fraction > 1.0 + 1e-9):
      raise ValueError(
          f"mask_token_fraction ({self.mask_token_fraction}) + random_token_fraction "
          f"({self.random_token_fraction}) must be fractions summing to at most 1")

  def num_predictions(self, seq_length: int) -> int:
    if self.max_predictions_per_seq is not None:
      return self.max_predictions_per_seq
    return max(1, int((self.mask_rate + 0.005) * seq_length))


def mask_tokens(input_ids, input_mask, config: MaskingConfig, special_token_ids: Mapping[str, int],
                vocab_size: int, seed: Optional[int] = None, *, stateless_seed=None, word_continuation=None):
  """Masks a batch [B, L] of token ids.

  Args:
    input_ids, input_mask: [B, L] integer tensors.
    config: rates and the number of prediction slots.
    special_token_ids: ids of [PAD], [CLS], [SEP] (never masked) and [MASK].
    vocab_size: random replacements are drawn from the non-special ids below it.
    seed: op seed of the stateful random ops (None: unseeded).
    stateless_seed: a [2] integer seed; when given, the masks are a pure function of it and the
      inputs (`seed` is then ignored).
    word_continuation: None for token-level masking, or a [vocab_size] boolean vector that is
      True for pieces continuing the word of the piece before them (WordPiece '##x'; SentencePiece
      pieces without the '▁' word-start mark), which turns on whole-word masking.

  Returns a dict with `masked_input_ids` [B, L], and `masked_lm_positions`, `masked_lm_ids`,
  `masked_lm_weights` of shape [B, P] (P = config.num_predictions(L)), padded with position 0,
  id 0 and weight 0.
  """
  input_ids = tf.convert_to_tensor(input_ids)
  ids_dtype = input_ids.dtype
  input_ids = tf.cast(input_ids, tf.int32)
  batch_size = tf.shape(input_ids)[0]
  seq_length = input_ids.shape[1]
  num_predictions = config.num_predictions(seq_length)

  unmaskable = [special_token_ids["[PAD]"], special_token_ids["[CLS]"], special_token_ids["[SEP]"]]
  maskable = tf.cast(input_mask, tf.bool)
  for token_id in unmaskable:
    maskable &= tf.not_equal(input_ids, token_id)
  num_maskable = tf.reduce_sum(tf.cast(maskable, tf.float32), axis=1)
  num_to_mask = tf.cast(tf.round(num_maskable * config.mask_rate), tf.int32)
  num_to_mask = tf.minimum(tf.maximum(num_to_mask, 1), num_predictions)
  num_to_mask = tf.minimum(num_to_mask, tf.cast(num_maskable, tf.int32))

  random = _RandomSource(seed, stateless_seed)
  if word_continuation is None:
    # Uniform sampling without replacement: the highest i.i.d. uniform scores over maskable tokens;
    # top_k sorts by score, so its first `num_to_mask` entries are a uniform subset of that size.
    scores = random.uniform(tf.shape(input_ids), 0)
    scores = tf.where(maskable, scores, -1.0)
  else:
    scores, num_to_mask = _whole_word_scores(
        input_ids, maskable, word_continuation, num_to_mask, num_predictions, random)
  k = min(num_predictions, seq_length)
  top_scores, positions = tf.math.top_k(scores, k=k)
  weights = tf.cast(tf.range(k)[None, :] < num_to_mask[:, None], tf.float32)
  weights *= tf.cast(top_scores >= 0.0, tf.float32)
  positions *= tf.cast(weights, tf.int32)
  if k < num_predictions:
    pad = [[0, 0], [0, num_predictions - k]]
    positions, weights = tf.pad(positions, pad), tf.pad(weights, pad)

  original = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(weights, tf.int32)
  choice = random.uniform(tf.shape(positions), 1)
  use_mask = choice < config.mask_token_fraction
  use_random = (~use_mask) & (choice < config.mask_token_fraction + config.random_token_fraction)
  random_ids = _random_non_special_ids(tf.shape(positions), special_token_ids, vocab_size, random)
  replacement = tf.where(use_mask, special_token_ids["[MASK]"], tf.where(use_random, random_ids, original))

  one_hot = tf.one_hot(positions, seq_length, dtype=tf.int32) * tf.cast(weights, tf.int32)[..., None]
  touched = tf.reduce_max(one_hot, axis=1)
  written = tf.einsum("bpl,bp->bl", one_hot, replacement)
  masked_input_ids = tf.where(touched > 0, written, input_ids)
  del batch_size
  return {
      "masked_input_ids": tf.cast(masked_input_ids, ids_dtype),
      "masked_lm_positions": positions,
      "masked_lm_ids": tf.cast(original, ids_dtype),
      "masked_lm_weights": weights,
  }


def _whole_word_scores(input_ids, maskable, word_continuation, num_to_mask, num_predictions, random):
  """Scores >= 0 on the tokens of the chosen words, -1 elsewhere; and how many tokens that is."""
  batch_size = tf.shape(input_ids)[0]
  seq_length = input_ids.shape[1]
  continues = tf.gather(tf.cast(tf.convert_to_tensor(word_continuation), tf.bool), input_ids)
  follows_maskable = tf.pad(maskable[:, :-1], [[0, 0], [1, 0]])
  # A continuation piece right after [CLS]/[SEP] (a sentence split inside a word) starts a word.
  starts = maskable & (~continues | ~follows_maskable)
  num_words = tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)
  # Word number of every token; non-maskable tokens go to an extra bucket (seq_length) that is
  # never chosen.
  word_index = tf.where(maskable, tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, seq_length)
  row_offset = tf.range(batch_size)[:, None] * (seq_length + 1)
  lengths = tf.math.unsorted_segment_sum(
      tf.cast(maskable, tf.int32), word_index + row_offset, batch_size * (seq_length + 1))
  lengths = tf.reshape(lengths, [batch_size, seq_length + 1])[:, :seq_length]

  # Words in a uniformly random order; the chosen ones are the longest prefix of that order that
  # starts below the quota and fits in the prediction slots. Every condition only turns False
  # further along the order, so the choice is a prefix and no word is split.
  candidate = (tf.range(seq_length)[None, :] < num_words[:, None]) & (lengths <= num_predictions)
  word_scores = tf.where(candidate, random.uniform([batch_size, seq_length], 3), -1.0)
  order_scores, order = tf.math.top_k(word_scores, k=seq_length)
  ordered_lengths = tf.gather(lengths, order, batch_dims=1) * tf.cast(order_scores >= 0.0, tf.int32)
  through = tf.cumsum(ordered_lengths, axis=1)
  before = through - ordered_lengths
  chosen = (order_scores >= 0.0) & (before < num_to_mask[:, None]) & (through <= num_predictions)
  chosen_words = tf.math.unsorted_segment_max(
      tf.cast(chosen, tf.int32), order + tf.range(batch_size)[:, None] * seq_length, batch_size * seq_length)
  chosen_words = tf.pad(tf.reshape(chosen_words, [batch_size, seq_length]), [[0, 0], [0, 1]])
  chosen_tokens = maskable & (tf.gather(chosen_words, word_index, batch_dims=1) > 0)
  scores = tf.where(chosen_tokens, random.uniform(tf.shape(input_ids), 4), -1.0)
  return scores, tf.reduce_sum(tf.cast(chosen_tokens, tf.int32), axis=1)


def _random_non_special_ids(shape, special_token_ids, vocab_size, random):
  special = sorted(set(int(i) for i in special_token_ids.values() if 0 <= int(i) < vocab_size))
  allowed = tf.constant(sorted(set(range(vocab_size)) - set(special)), tf.int32)
  index = random.uniform(shape, 2, maxval=tf.shape(allowed)[0], dtype=tf.int32)
  return tf.gather(allowed, index)


class _RandomSource:
  """Uniform draws numbered by use, from stateful op seeds or from one stateless seed."""

  def __init__(self, seed: Optional[int], stateless_seed):
    self._seed = seed
    self._stateless_seed = None
    if stateless_seed is not None:
      self._stateless_seed = tf.cast(tf.convert_to_tensor(stateless_seed), tf.int64)

  def uniform(self, shape, use: int, maxval=None, dtype=tf.float32):
    if self._stateless_seed is not None:
      seed = tf.random.experimental.stateless_fold_in(self._stateless_seed, use)
      return tf.random.stateless_uniform(shape, seed=seed, maxval=maxval, dtype=dtype)
    op_seed = None if self._seed is None else self._seed * 7919 + use
    return tf.random.uniform(shape, maxval=maxval, dtype=dtype, seed=op_seed)
