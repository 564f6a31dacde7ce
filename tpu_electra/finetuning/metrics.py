"""Statistics behind the fine-tuning metrics, written from their definitions.

All functions take plain sequences and return Python floats on the natural scale of the statistic
(accuracy and F1 in [0, 1], correlations in [-1, 1]); reports decide on percentages.

Degenerate inputs return 0.0 rather than NaN: a constant predictor (or constant gold) carries no
correlation, and a NaN would poison averages and is not valid JSON. This matches the usual MCC
convention (an undefined denominator gives 0).
"""
import collections
import math
from typing import Hashable, List, Sequence


def _check_lengths(predictions: Sequence, labels: Sequence) -> None:
  if len(predictions) != len(labels):
    raise ValueError(
        f"predictions and labels differ in length: {len(predictions)} vs {len(labels)}")
  if not predictions:
    raise ValueError("cannot score an empty set of predictions")


def accuracy(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
  """Fraction of positions where the prediction equals the label."""
  _check_lengths(predictions, labels)
  correct = sum(1 for p, y in zip(predictions, labels) if p == y)
  return correct / len(labels)


def binary_f1(predictions: Sequence[Hashable], labels: Sequence[Hashable],
              positive_label: Hashable = 1) -> float:
  """F1 of the positive class (as GLUE scores MRPC and QQP); 0.0 when there is no true positive."""
  _check_lengths(predictions, labels)
  true_pos = sum(1 for p, y in zip(predictions, labels) if p == positive_label and y == p)
  predicted_pos = sum(1 for p in predictions if p == positive_label)
  actual_pos = sum(1 for y in labels if y == positive_label)
  return f1_from_counts(true_pos, predicted_pos, actual_pos)


def f1_from_counts(num_correct: int, num_predicted: int, num_gold: int) -> float:
  """Harmonic mean of precision and recall from counts; 0.0 when nothing is correct."""
  if num_correct == 0:
    return 0.0
  precision = num_correct / num_predicted
  recall = num_correct / num_gold
  return 2.0 * precision * recall / (precision + recall)


def matthews_corrcoef(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
  """Matthews correlation coefficient, in its K-class form (Gorodkin 2004).

  For two classes this is (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). The K-class form
  needs no choice of positive label and is symmetric in the classes, so it is used throughout.
  Returns 0.0 when either side is constant (the denominator vanishes).
  """
  _check_lengths(predictions, labels)
  total = len(labels)
  correct = sum(1 for p, y in zip(predictions, labels) if p == y)
  predicted_counts = collections.Counter(predictions)
  gold_counts = collections.Counter(labels)
  classes = set(predicted_counts) | set(gold_counts)
  cross = sum(predicted_counts[k] * gold_counts[k] for k in classes)
  pred_sq = sum(c * c for c in predicted_counts.values())
  gold_sq = sum(c * c for c in gold_counts.values())
  denominator = math.sqrt(float(total * total - pred_sq)) * math.sqrt(
      float(total * total - gold_sq))
  if denominator == 0.0:
    return 0.0
  return (correct * total - cross) / denominator


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
  """Pearson product-moment correlation; 0.0 when either side has zero variance."""
  _check_lengths(xs, ys)
  n = len(xs)
  mean_x = math.fsum(xs) / n
  mean_y = math.fsum(ys) / n
  dx = [float(x) - mean_x for x in xs]
  dy = [float(y) - mean_y for y in ys]
  sxx = math.fsum(d * d for d in dx)
  syy = math.fsum(d * d for d in dy)
  if sxx == 0.0 or syy == 0.0:
    return 0.0
  sxy = math.fsum(a * b for a, b in zip(dx, dy))
  # Rounding can push a perfect correlation a hair past 1.
  return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def average_ranks(values: Sequence[float]) -> List[float]:
  """1-based ranks where tied values share the mean of the ranks they span."""
  order = sorted(range(len(values)), key=lambda i: values[i])
  ranks = [0.0] * len(values)
  start = 0
  while start < len(order):
    end = start
    while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
      end += 1
    shared_rank = (start + end) / 2.0 + 1.0
    for position in range(start, end + 1):
      ranks[order[position]] = shared_rank
    start = end + 1
  return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
  """Spearman rank correlation: Pearson on average ranks, so ties are handled exactly."""
  _check_lengths(xs, ys)
  return pearson(average_ranks(xs), average_ranks(ys))
