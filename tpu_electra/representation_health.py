"""Representation health: whether an encoder's token vectors are collapsing, in two numbers per layer.

- Mean pairwise cosine similarity of the token vectors, over every pair of two distinct real tokens
  (a token with itself is not a pair): near 1 when all tokens point one way (the anisotropy or
  "representation degeneration" of trained transformers), about 0 for an isotropic cloud.
- Effective rank of their covariance (Roy & Vetterli 2007): exp of the Shannon entropy of the
  eigenvalue spectrum normalized to sum 1; from 1 (all the spread along one direction) to d
  (isotropic in d dimensions), so dimensional collapse shows as a falling number. A cloud with no
  spread at all (every vector equal) is fully collapsed and counts as 1.

Both are exact over every real (non-padding) token of a set, computed from sums that add up over
batches (`Moments`): the token count, their mean and scatter matrix Σ(x - mean)(x - mean)ᵀ, the sum
of their unit vectors and of those vectors' squared norms. A batch's sums come from the graph
(`batch_moments`: float32, the scatter taken about the batch's own mean); batches are merged and the
spectrum is taken in float64 NumPy. Merging uses the pairwise update of Chan, Golub & LeVeque
(1979) rather than Σxxᵀ - n·mean·meanᵀ, which would cancel the spread away exactly when a large
common mean dominates the vectors, the collapse this is meant to see. Memory is d² per layer,
whatever the number of tokens. Both numbers are unchanged when the vectors are scaled. (On TPUs
and recent GPUs TensorFlow multiplies float32 matrices at reduced precision by default, bfloat16
passes or TF32: ample for these diagnostics, though not bit-equal to a CPU's numbers.)

`encoder_moments` runs an encoder (a TransformerEncoder: tpu_electra.modeling) on a batch's
original ids and gives the sums of its embedding output and of every layer's output; `summarize`
names the numbers as held-out evaluation reports them (tpu_electra.evaluate).
"""
import dataclasses
from typing import Dict, Mapping, Optional

import numpy as np
import tensorflow as tf

from tpu_electra.modeling import encoder_inputs

PREFIX = "health/"
EMBEDDING = "embedding"
FINAL = "final"


def layer_name(index: int) -> str:
  """The name of transformer layer `index`'s output (0: the bottom layer, as the checkpoint numbers them)."""
  return f"layer_{index}"


@dataclasses.dataclass(frozen=True)
class Moments:
  """Sums over a set of token vectors from which both measures follow; `merge` adds two sets."""
  count: float  # Number of vectors.
  mean: np.ndarray  # [d]
  scatter: np.ndarray  # [d, d]: Σ (x - mean)(x - mean)ᵀ.
  unit_sum: np.ndarray  # [d]: Σ x / |x| (a zero vector adds zero).
  unit_square_sum: float  # Σ |x / |x||², the number of nonzero vectors up to rounding.

  @classmethod
  def of(cls, vectors, mask=None) -> "Moments":
    """The moments of the rows of `vectors` [n, d] whose `mask` [n] is nonzero (default: all), in float64."""
    x = np.asarray(vectors, np.float64).reshape(-1, np.shape(vectors)[-1])
    if mask is not None:
      x = x[np.asarray(mask).reshape(-1) != 0]
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    centered = x - mean
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    units = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return cls(count=float(len(x)), mean=mean, scatter=centered.T @ centered, unit_sum=units.sum(axis=0),
               unit_square_sum=float(np.sum(units * units)))

  def merge(self, other: "Moments") -> "Moments":
    """The moments of both sets together (Chan et al.'s pairwise update of the scatter)."""
    count = self.count + other.count
    if not count:
      return self
    delta = other.mean - self.mean
    return Moments(count=count, mean=self.mean + delta * (other.count / count),
                   scatter=self.scatter + other.scatter + np.outer(delta, delta) * (self.count * other.count / count),
                   unit_sum=self.unit_sum + other.unit_sum,
                   unit_square_sum=self.unit_square_sum + other.unit_square_sum)

  def mean_cosine(self) -> float:
    """Mean cosine similarity over the count·(count - 1) ordered pairs of distinct vectors.

    Σ_{i≠j} u_i·u_j = |Σ u_i|² - Σ |u_i|² for unit vectors u, so no pair is ever formed.
    """
    if self.count < 2:
      raise ValueError(f"the mean pairwise cosine needs at least 2 vectors, got {self.count:g}")
    pair_sum = float(self.unit_sum @ self.unit_sum) - self.unit_square_sum
    return pair_sum / (self.count * (self.count - 1))

  def effective_rank(self) -> float:
    """exp(entropy of the covariance's normalized eigenvalues) (Roy & Vetterli 2007); 1 with no spread."""
    return spectrum_effective_rank(np.linalg.eigvalsh(self.scatter))


def spectrum_effective_rank(eigenvalues) -> float:
  """exp(-Σ p log p) of p = eigenvalues / their sum; negative round-off is clipped to 0; 1 when all are 0."""
  values = np.clip(np.asarray(eigenvalues, np.float64), 0.0, None)
  total = values.sum()
  if total <= 0:
    return 1.0
  p = values[values > 0] / total
  return float(np.exp(-np.sum(p * np.log(p))))


def mean_pairwise_cosine(vectors, mask=None) -> float:
  """Mean cosine similarity of the rows of `vectors` [n, d] (where `mask` is nonzero), over distinct pairs."""
  return Moments.of(vectors, mask).mean_cosine()


def effective_rank(vectors, mask=None) -> float:
  """Effective rank of the covariance of the rows of `vectors` [n, d] (where `mask` is nonzero)."""
  return Moments.of(vectors, mask).effective_rank()


def batch_moments(vectors: tf.Tensor, mask: tf.Tensor) -> Dict[str, tf.Tensor]:
  """The graph side of `Moments.of`: float32 sums of [..., d] `vectors` where `mask` [...] is nonzero.

  Static shapes only (padding is weighted out, not dropped), so it runs on TPU and under XLA.
  """
  width = vectors.shape[-1]
  x = tf.reshape(tf.cast(vectors, tf.float32), [-1, width])
  weights = tf.reshape(tf.cast(tf.not_equal(mask, 0), tf.float32), [-1, 1])
  count = tf.reduce_sum(weights)
  mean = tf.reduce_sum(x * weights, axis=0) / tf.maximum(count, 1.0)
  centered = (x - mean) * weights
  units = tf.math.l2_normalize(x, axis=-1) * weights  # A zero vector stays zero.
  return {"count": count, "mean": mean, "scatter": tf.matmul(centered, centered, transpose_a=True),
          "unit_sum": tf.reduce_sum(units, axis=0), "unit_square_sum": tf.reduce_sum(units * units)}


def encoder_moments(encoder: tf.keras.Model, batch: Mapping[str, tf.Tensor]) -> Dict[str, Dict[str, tf.Tensor]]:
  """`batch_moments` of the encoder's embedding output and of each layer's output, on the batch's
  original `input_ids` (not its masked or corrupted copies), over its real tokens (`input_mask`)."""
  output = encoder(encoder_inputs(batch), training=False)
  mask = batch["input_mask"]
  moments = {EMBEDDING: batch_moments(output["embedding_output"], mask)}
  for index, layer_output in enumerate(output["encoder_outputs"]):
    moments[layer_name(index)] = batch_moments(layer_output, mask)
  return moments


def merge_all(parts: Mapping[str, np.ndarray], into: Optional[Moments] = None) -> Moments:
  """Merges `parts` (batch_moments' entries as arrays with a leading axis of sets, e.g. replicas) into `into`."""
  merged = into
  for i in range(np.shape(parts["count"])[0]):
    part = Moments(count=float(parts["count"][i]), mean=np.asarray(parts["mean"][i], np.float64),
                   scatter=np.asarray(parts["scatter"][i], np.float64),
                   unit_sum=np.asarray(parts["unit_sum"][i], np.float64),
                   unit_square_sum=float(parts["unit_square_sum"][i]))
    merged = part if merged is None else merged.merge(part)
  return merged


def summarize(moments: Mapping[str, Moments]) -> Dict[str, float]:
  """{"health/cosine_<part>", "health/effective_rank_<part>"} for the embedding output and every layer,
  and the top layer's again as "final" (comparable across encoders of different depths); {} when no batch
  was seen (a held-out split smaller than one batch evaluates to no metrics, as the other metrics do)."""
  if not moments:
    return {}
  layers = sorted((name for name in moments if name != EMBEDDING), key=lambda name: int(name.split("_")[-1]))
  named = {EMBEDDING: moments[EMBEDDING], **{name: moments[name] for name in layers}, FINAL: moments[layers[-1]]}
  metrics = {}
  for name, part in named.items():
    metrics[f"{PREFIX}cosine_{name}"] = part.mean_cosine()
    metrics[f"{PREFIX}effective_rank_{name}"] = part.effective_rank()
  return metrics
