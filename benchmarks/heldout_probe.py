r"""The shared held-out measure of benchmarks.compare_objectives: a frozen-feature replaced-token-detection probe.

* Corruption, fixed and objective-independent: in every example of the data's held-out split, each
  real token ([CLS]/[SEP]/padding excluded) is replaced with probability 0.15 by a draw from the
  unigram distribution of its half of the held-out set (the probe's fit or test half); one draw
  with a constant seed, the same inputs for every encoder and seed. A token is positive when it was
  drawn, so a detector that sees only the token scores AUC 0.5 in expectation: anything above comes
  from context.
* Features: the last layer of `objective.encoder` (the network fine-tuning loads), in inference mode.
* Probe: L2-regularized logistic regression on standardized features, solved to convergence with
  Newton's method (no learning rate or step count that could suit one encoder better), fitted on
  the tokens of the first half of the held-out sequences, scored on the second half by ROC AUC,
  with a 95% bootstrap interval over test sequences (the held-out sampling error, which seeds do not
  resample). The same probe on the freshly initialized network gives the floor.

It needs no head that only some objectives train, and its corruption is nobody's training
distribution; it is still closer to the replaced-token detectors' task than to BERT's MLM, and the
report says so. Held-out MLM perplexity would not do: ELECTRA, ALE and TEAMS keep no MLM head on
the encoder they keep.
"""
import dataclasses
from typing import Dict, Mapping, Tuple

import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining

REPLACE_RATE = 0.15
# Newton's method on a convex problem: the ridge only keeps the Hessian well conditioned.
L2 = 1.0
# The probe's corruption and bootstrap: constant, so every run of every objective is probed alike.
SEED = 0


def heldout_manifest(data_dir: str) -> manifest_lib.Manifest:
  """The data's manifest, which must list a held-out split (else one line saying how to get one)."""
  manifest = manifest_lib.read_manifest(data_dir)
  if not manifest.eval_shard_paths(data_dir) or not manifest.num_eval_examples:
    raise manifest_lib.DataError(
        f"the data in {data_dir!r} has no held-out split; rebuild it with python -m data_prep.build "
        "(--held_out_fraction > 0; the default 0.01 sets one aside)")
  return manifest


def read_heldout_examples(data_dir: str) -> Dict[str, np.ndarray]:
  """Every example of the data's held-out split as int32 arrays [N, L]: input_ids, input_mask, segment_ids."""
  manifest = heldout_manifest(data_dir)
  records = [r.numpy() for r in tf.data.TFRecordDataset(manifest.eval_shard_paths(data_dir))]
  parsed = pretraining.parse_example(tf.constant(records), manifest.max_seq_length)
  return {name: parsed[name].numpy().astype(np.int32) for name in manifest_lib.EXAMPLE_FEATURES}


# ---------------------------------------------------------------------------------------------
# The shared probe.


@dataclasses.dataclass
class ProbeData:
  """Held-out examples with the fixed corruption, and which tokens the probe fits and scores."""
  input_ids: np.ndarray  # [N, L] corrupted ids.
  input_mask: np.ndarray
  segment_ids: np.ndarray
  labels: np.ndarray  # [N, L] 1 where the token is a draw.
  scored: np.ndarray  # [N, L] bool: real, non-special tokens.
  fit_sequences: int  # Sequences [0, fit_sequences) fit the probe; the rest test it.


def corrupt_for_probe(examples: Mapping[str, np.ndarray], special_token_ids: Mapping[str, int], seed: int,
                      replace_rate: float = REPLACE_RATE) -> ProbeData:
  """Replaces `replace_rate` of the real tokens by draws from the unigram distribution of their half.

  A token is labelled positive when it was drawn, even when the draw happens to be the original
  token (as often as two random tokens of the text coincide: about 1% of draws on the embedded
  corpus).
  Labelled by "differs from the original" instead, frequent tokens would be positive less often
  than rare ones and token identity alone would score above chance. Each half (the probe's fit
  sequences, its test sequences) draws from its own tokens: drawn from all held-out tokens, a token
  that happens to be common in the fit half is rare in the test half, and the probe would learn
  "this token is seldom replaced" and find the opposite on the test half. With both choices the
  originals and the draws of a half have the same distribution, so a detector that sees only the
  token has an AUC of 0.5 in expectation.
  """
  input_ids = examples["input_ids"]
  special = [special_token_ids[t] for t in ("[PAD]", "[CLS]", "[SEP]")]
  scored = (examples["input_mask"] > 0) & ~np.isin(input_ids, special)
  rng = np.random.default_rng(seed)
  fit_sequences = len(input_ids) // 2
  corrupted = input_ids.copy()
  chosen = scored & (rng.random(input_ids.shape) < replace_rate)
  for half in (slice(0, fit_sequences), slice(fit_sequences, len(input_ids))):
    values, counts = np.unique(input_ids[half][scored[half]], return_counts=True)
    replacements = rng.choice(values, size=input_ids[half].shape, p=counts / counts.sum())
    corrupted[half] = np.where(chosen[half], replacements, input_ids[half])
  return ProbeData(corrupted.astype(np.int32), examples["input_mask"], examples["segment_ids"],
                   chosen.astype(np.int32), scored, fit_sequences)


def encoder_features(encoder: tf.keras.Model, data: ProbeData, batch_size: int = 64) -> np.ndarray:
  """The encoder's last-layer vectors of the scored tokens, [num_scored, H], in row-major order."""
  outputs = []
  for start in range(0, len(data.input_ids), batch_size):
    part = slice(start, start + batch_size)
    sequence = encoder({"input_word_ids": tf.constant(data.input_ids[part]),
                        "input_mask": tf.constant(data.input_mask[part]),
                        "input_type_ids": tf.constant(data.segment_ids[part])}, training=False)["sequence_output"]
    outputs.append(tf.cast(sequence, tf.float32).numpy()[data.scored[part]])
  return np.concatenate(outputs)


@dataclasses.dataclass
class LogisticRegression:
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray  # [H + 1], the bias last.

  def logits(self, features: np.ndarray) -> np.ndarray:
    x = (features.astype(np.float64) - self.mean) / self.scale
    return x @ self.weights[:-1] + self.weights[-1]


def fit_logistic_regression(features: np.ndarray, labels: np.ndarray, l2: float = L2,
                            max_iterations: int = 100, tolerance: float = 1e-9) -> LogisticRegression:
  """The minimizer of the summed log loss + l2/2 |w|^2 on standardized features (bias unpenalized)."""
  mean = features.mean(axis=0, dtype=np.float64)
  scale = features.std(axis=0, dtype=np.float64) + 1e-6
  x = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
  y = labels.astype(np.float64)
  ridge = np.full(x.shape[1], l2)
  ridge[-1] = 0.0
  w = np.zeros(x.shape[1])
  for _ in range(max_iterations):
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    gradient = x.T @ (p - y) + ridge * w
    hessian = (x.T * (p * (1.0 - p))) @ x + np.diag(ridge)
    step = np.linalg.solve(hessian, gradient)
    w -= step
    if np.max(np.abs(step)) < tolerance:
      break
  return LogisticRegression(mean, scale, w)


def _tie_groups(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """The ascending order of `scores` and, along it, the index of each score's group of equal scores."""
  order = np.argsort(scores, kind="mergesort")
  return order, np.concatenate([[0], np.cumsum(np.diff(scores[order]) != 0)])


def _weighted_auc(groups: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> float:
  """Mann-Whitney AUC along a sorted order: every positive against every negative, each counted
  `weights` times, ties as half; NaN when a class has no weight."""
  positives = np.bincount(groups, weights=weights * positive)
  negatives = np.bincount(groups, weights=weights * ~positive)
  total = positives.sum() * negatives.sum()
  if not total:
    return float("nan")
  below = np.cumsum(negatives) - negatives
  return float(np.sum(positives * (below + 0.5 * negatives)) / total)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
  """ROC AUC (Mann-Whitney), ties counted as half; NaN when a class is absent."""
  order, groups = _tie_groups(np.asarray(scores))
  return _weighted_auc(groups, np.asarray(labels)[order] > 0, np.ones(len(order)))


def bootstrap_auc(scores: np.ndarray, labels: np.ndarray, sequence_ids: np.ndarray, num_resamples: int,
                  seed: int) -> Tuple[float, float]:
  """95% interval of the AUC over resamples of whole sequences (their tokens share context)."""
  if num_resamples < 1:
    return float("nan"), float("nan")
  order, groups = _tie_groups(scores)
  positive = labels[order] > 0
  _, sequence_of = np.unique(sequence_ids[order], return_inverse=True)
  num_sequences = int(sequence_of.max()) + 1
  rng = np.random.default_rng(seed)
  aucs = [_weighted_auc(groups, positive, np.bincount(rng.integers(0, num_sequences, num_sequences),
                                                      minlength=num_sequences)[sequence_of].astype(np.float64))
          for _ in range(num_resamples)]
  low, high = np.nanpercentile(aucs, [2.5, 97.5])
  return float(low), float(high)


def run_probe(encoder: tf.keras.Model, data: ProbeData, num_bootstrap: int, seed: int) -> Dict[str, float]:
  """Fits the probe on the first half of the sequences and scores the second half."""
  features = encoder_features(encoder, data)
  labels = data.labels[data.scored]
  sequence_of_token = np.nonzero(data.scored)[0]
  fit = sequence_of_token < data.fit_sequences
  probe = fit_logistic_regression(features[fit], labels[fit])
  logits, test_labels = probe.logits(features[~fit]), labels[~fit]
  low, high = bootstrap_auc(logits, test_labels, sequence_of_token[~fit], num_bootstrap, seed)
  return {"auc": roc_auc(logits, test_labels), "auc_low": low, "auc_high": high,
          "accuracy": float(np.mean((logits > 0) == (test_labels > 0))),
          "majority_accuracy": float(max(test_labels.mean(), 1.0 - test_labels.mean())),
          "fit_tokens": int(fit.sum()), "test_tokens": int((~fit).sum()),
          "test_replaced_fraction": float(test_labels.mean())}

