"""Sampling for the pretraining objectives: positions, Gumbel noise and seeds, draws from logits.

Losses and metrics are in tpu_electra.objectives.losses.

Everything here works on dense, statically shaped tensors (one-hot products instead of scatters)
so it compiles the same way on TPU, GPU and CPU. Sampling always happens in float32: Gumbel noise
added to bfloat16 logits rounds away most of the distribution's tail.
"""
import tensorflow as tf

from tpu_electra.data import pretraining


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
  """float32 Gumbel(0, 1) noise; `seed` is a [2] stateless seed, an int op seed, or None."""
  if seed is not None and not isinstance(seed, int):
    uniform = tf.random.stateless_uniform(shape, seed=seed, minval=0.0, maxval=1.0, dtype=tf.float32)
  else:
    uniform = tf.random.uniform(shape, minval=0.0, maxval=1.0, dtype=tf.float32, seed=seed)
  return -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)


def noise_seed(batch, seed=None):
  """The sampling seed of a batch: its `noise_seed` feature ([B, 2] stateless seeds, the first row
  is the batch's) when the input pipeline provides one, so that a step's noise is a pure function of
  the run's seed and the step; otherwise `seed` (an int op seed, or None for unseeded draws)."""
  batch_seed = pretraining.batch_noise_seed(batch)
  return seed if batch_seed is None else batch_seed


def derive_seed(seed, index: int):
  """An independent seed for the `index`-th draw of a step, of the same kind as `seed`."""
  if seed is None:
    return None
  if isinstance(seed, int):
    return seed + index
  return tf.random.experimental.stateless_fold_in(seed, index)


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
