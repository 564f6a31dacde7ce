"""The statistics behind every metric, against numbers worked out by hand."""
import math

import pytest

from tpu_electra.finetuning import metrics


def test_accuracy_counts_matching_positions():
  assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


def test_accuracy_rejects_misaligned_inputs():
  with pytest.raises(ValueError, match="differ in length"):
    metrics.accuracy([1, 0], [1])
  with pytest.raises(ValueError, match="empty"):
    metrics.accuracy([], [])


def test_binary_f1_is_f1_of_the_positive_class():
  # tp = 2 (positions 0, 4), predicted positives 3, actual positives 3: P = R = 2/3.
  assert metrics.binary_f1([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(2 / 3)


def test_binary_f1_without_true_positives_is_zero():
  assert metrics.binary_f1([0, 0, 0], [1, 1, 0]) == 0.0
  assert metrics.binary_f1([1, 1], [0, 0]) == 0.0


def test_mcc_matches_the_binary_formula():
  # TP=3, TN=3, FP=1, FN=1: (9 - 1) / sqrt(4 · 4 · 4 · 4) = 0.5.
  predictions = [1, 1, 1, 0, 0, 0, 1, 0]
  labels = [1, 1, 0, 0, 0, 1, 1, 0]
  assert metrics.matthews_corrcoef(predictions, labels) == pytest.approx(0.5)


def test_mcc_is_minus_one_for_inverted_predictions():
  assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_mcc_is_zero_when_predictions_or_labels_are_constant():
  assert metrics.matthews_corrcoef([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0
  assert metrics.matthews_corrcoef([1, 0, 1, 0], [0, 0, 0, 0]) == 0.0


def test_pearson_matches_hand_computation():
  # dx = [-1.5, -.5, .5, 1.5], dy = [-3, -1, 0, 4]: sxy = 11, sxx = 5, syy = 26.
  assert metrics.pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(130))


def test_pearson_of_a_constant_side_is_zero():
  assert metrics.pearson([1, 2, 3], [5, 5, 5]) == 0.0


def test_average_ranks_share_the_mean_rank_among_ties():
  assert metrics.average_ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
  assert metrics.average_ranks([3, 1, 3, 3]) == [3.0, 1.0, 3.0, 3.0]


def test_spearman_with_ties_uses_average_ranks():
  # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: sxy = 4.5, sxx = 4.5, syy = 5.
  assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_spearman_is_one_for_any_increasing_relation():
  assert metrics.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
  assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
