"""BERT-style masking: one implementation, used on the fly by the input pipeline and ahead of time
by data_prep (static masking with a dupe factor).

For each sequence, round(mask_rate × maskable tokens) positions (at least 1, at most
`max_predictions_per_seq`) are chosen uniformly without replacement among the tokens that are not
[PAD]/[CLS]/[SEP]. Of the chosen positions, `mask_token_fraction` become [MASK],
`random_token_fraction` become a uniformly drawn non-special token, and the rest keep their token.
"""
import dataclasses
from typing import Mapping, Optional

import gin
import tpu_electra  # noqa: F401
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
                vocab_size: int, seed: Optional[int] = None):
  """Masks a batch [B, L] of token ids.

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

  # Uniform sampling without replacement: the highest i.i.d. uniform scores over maskable tokens;
  # top_k sorts by score, so its first `num_to_mask` entries are a uniform subset of that size.
  seeds = _split_seed(seed, 3)
  scores = tf.random.uniform(tf.shape(input_ids), seed=seeds[0])
  scores = tf.where(maskable, scores, -1.0)
  k = min(num_predictions, seq_length)
  top_scores, positions = tf.math.top_k(scores, k=k)
  weights = tf.cast(tf.range(k)[None, :] < num_to_mask[:, None], tf.float32)
  weights *= tf.cast(top_scores >= 0.0, tf.float32)
  positions *= tf.cast(weights, tf.int32)
  if k < num_predictions:
    pad = [[0, 0], [0, num_predictions - k]]
    positions, weights = tf.pad(positions, pad), tf.pad(weights, pad)

  original = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(weights, tf.int32)
  choice = tf.random.uniform(tf.shape(positions), seed=seeds[1])
  use_mask = choice < config.mask_token_fraction
  use_random = (~use_mask) & (choice < config.mask_token_fraction + config.random_token_fraction)
  random_ids = _random_non_special_ids(tf.shape(positions), special_token_ids, vocab_size, seeds[2])
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


def _random_non_special_ids(shape, special_token_ids, vocab_size, seed):
  special = sorted(set(int(i) for i in special_token_ids.values() if 0 <= int(i) < vocab_size))
  allowed = tf.constant(sorted(set(range(vocab_size)) - set(special)), tf.int32)
  index = tf.random.uniform(shape, maxval=tf.shape(allowed)[0], dtype=tf.int32, seed=seed)
  return tf.gather(allowed, index)


def _split_seed(seed, n):
  if seed is None:
    return [None] * n
  return [seed * 7919 + i for i in range(n)]
