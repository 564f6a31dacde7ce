"""Small pure-tensor helpers shared by the pretraining objectives.

Everything here works on dense, statically shaped tensors (one-hot products instead of scatters)
so it compiles the same way on TPU, GPU and CPU. Sampling always happens in float32: Gumbel noise
added to bfloat16 logits rounds away most of the distribution's tail.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf


def gather_positions(sequence, positions):
  """Picks `sequence[b, positions[b, p]]`: [B, L] or [B, L, D] with [B, P] -> [B, P] or [B, P, D]."""
  return tf.gather(sequence, positions, batch_dims=1, axis=1)


def scatter_positions(sequence, positions, updates, weights):
  """Writes `updates[b, p]` into `sequence[b, positions[b, p]]` wherever `weights[b, p] > 0`.

  Positions with weight 0 are padding (they usually point at position 0) and leave the sequence
  unchanged. The non-padding positions of a row must be distinct.
  """
  length = tf.shape(sequence)[1]
  one_hot = tf.one_hot(positions, length, dtype=tf.int32) * tf.cast(weights > 0, tf.int32)[..., None]
  touched = tf.reduce_max(one_hot, axis=1)  # [B, L]
  written = tf.einsum("bpl,bp->bl", one_hot, tf.cast(updates, tf.int32))
  return tf.where(touched > 0, tf.cast(written, sequence.dtype), sequence)


def gumbel_noise(shape, seed=None):
  uniform = tf.random.uniform(shape, minval=0.0, maxval=1.0, dtype=tf.float32, seed=seed)
  return -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)


def sample_from_logits(logits, temperature=1.0, seed=None):
  """Draws one id per row from softmax(logits / temperature) with the Gumbel-max trick.

  Returns int32 ids of shape logits.shape[:-1]. No gradient flows through the draw.
  """
  logits = tf.stop_gradient(tf.cast(logits, tf.float32))
  if temperature <= 0:
    raise ValueError(f"sampling temperature must be > 0, got {temperature}")
  noisy = logits / temperature + gumbel_noise(tf.shape(logits), seed=seed)
  return tf.argmax(noisy, axis=-1, output_type=tf.int32)


def exclude_ids(logits, ids):
  """float32 logits with -inf at `ids` ([...] ids into the last axis of [..., V])."""
  logits = tf.cast(logits, tf.float32)
  excluded = tf.one_hot(tf.cast(ids, tf.int32), tf.shape(logits)[-1], on_value=True, off_value=False)
  return tf.where(excluded, tf.fill(tf.shape(logits), -float("inf")), logits)


def sample_without_replacement(logits, k, excluded_ids, temperature=1.0, seed=None):
  """K distinct ids per row from softmax(logits / temperature), never one of `excluded_ids`.

  Gumbel-top-k: the K largest of logits / T + Gumbel noise are a draw of K items without
  replacement, in order, from the softmax (successive draws renormalized over what is left), the
  same as K rounds of Gumbel-max with removal. In float32, with no gradient. Returns int32
  [..., K]; the vocabulary must hold at least K ids besides the excluded one.
  """
  if temperature <= 0:
    raise ValueError(f"sampling temperature must be > 0, got {temperature}")
  logits = tf.stop_gradient(tf.cast(logits, tf.float32))
  noisy = logits / temperature + gumbel_noise(tf.shape(logits), seed=seed)
  return tf.math.top_k(exclude_ids(noisy, excluded_ids), k=k).indices


def top_k_excluding(logits, k, excluded_ids):
  """The K ids with the highest logits per row other than `excluded_ids`; int32 [..., K], no gradient."""
  return tf.math.top_k(exclude_ids(tf.stop_gradient(logits), excluded_ids), k=k).indices


def weighted_mean(values, weights):
  values = tf.cast(values, tf.float32)
  weights = tf.cast(weights, tf.float32)
  return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def binary_auc(scores, labels, weights):
  """Exact ROC AUC of `scores` against 0/1 `labels` over entries with weight > 0 (Mann-Whitney U).

  Ties between a positive and a negative count as wrong; 0.5 is returned when one class is absent.
  """
  scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
  labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
  valid = tf.reshape(tf.cast(weights, tf.float32), [-1]) > 0
  # Invalid entries sink to the bottom of the ranking; their count is then subtracted from ranks.
  ranked = tf.where(valid, scores, tf.fill(tf.shape(scores), -float("inf")))
  order = tf.argsort(ranked, stable=True)
  ranks = tf.cast(tf.math.invert_permutation(order), tf.float32) + 1.0
  num_invalid = tf.reduce_sum(tf.cast(tf.logical_not(valid), tf.float32))
  positives = labels * tf.cast(valid, tf.float32)
  num_pos = tf.reduce_sum(positives)
  num_neg = tf.reduce_sum(tf.cast(valid, tf.float32)) - num_pos
  rank_sum = tf.reduce_sum((ranks - num_invalid) * positives)
  u_statistic = rank_sum - num_pos * (num_pos + 1.0) / 2.0
  auc = tf.math.divide_no_nan(u_statistic, num_pos * num_neg)
  return tf.where(num_pos * num_neg > 0, auc, 0.5)
