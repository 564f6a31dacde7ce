"""The study's interval math against hand-computed t intervals, its formatting, and the progress lines."""
import math

import pytest
from scipy import stats

from benchmarks import study_stats
from benchmarks import study_timing

# Two-sided 95% quantiles of Student's t, from a t table.
T_975 = {1: 12.7062047361747, 2: 4.302652729911275, 4: 2.7764451051977987}


def test_the_mean_gets_students_t_interval():
  summary = study_stats.summarize([1.0, 2.0, 4.0])
  mean, std = 7 / 3, math.sqrt(7 / 3)  # Squared deviations 16/9 + 1/9 + 25/9 = 42/9, over n - 1 = 2.
  assert summary["mean"] == pytest.approx(mean) and summary["std"] == pytest.approx(std) and summary["n"] == 3
  half = T_975[2] * std / math.sqrt(3)
  assert (summary["low"], summary["high"]) == pytest.approx((mean - half, mean + half))
  assert (summary["low"], summary["high"]) == pytest.approx((-1.46125, 6.12791), abs=1e-5)
  two = study_stats.summarize([0.5, 0.7])
  assert (two["low"], two["high"]) == pytest.approx((0.6 - T_975[1] * 0.1, 0.6 + T_975[1] * 0.1))


def test_welch_interval_of_a_difference_matches_the_hand_computed_one_and_scipy():
  # Equal n and variances: Welch's degrees of freedom are 2(n - 1) = 4, its standard error sqrt(1/3 + 1/3).
  interval = study_stats.welch([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
  assert interval["difference"] == 3.0 and interval["dof"] == pytest.approx(4.0)
  half = T_975[4] * math.sqrt(2 / 3)
  assert (interval["low"], interval["high"]) == pytest.approx((3.0 - half, 3.0 + half))
  assert (interval["low"], interval["high"]) == pytest.approx((0.73304, 5.26696), abs=1e-5)
  # Unequal n and variances: s²/n = 5/12 and 4/3, dof = (7/4)² / ((5/12)²/3 + (4/3)²/2) = 3.23472.
  a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
  interval = study_stats.welch(a, b)
  assert interval["difference"] == pytest.approx(-1.5) and interval["dof"] == pytest.approx(3.23472, abs=1e-5)
  assert (interval["n_a"], interval["n_b"]) == (4, 3)
  reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert (interval["low"], interval["high"]) == pytest.approx((reference.low, reference.high))


def test_no_interval_below_two_runs_and_a_point_interval_without_spread():
  one = study_stats.summarize([0.5])
  assert one["mean"] == 0.5 and math.isnan(one["std"]) and math.isnan(one["low"]) and math.isnan(one["high"])
  assert math.isnan(study_stats.summarize([])["mean"])
  assert math.isnan(study_stats.welch([1.0], [1.0, 2.0])["low"])
  assert study_stats.welch([1.0], [1.0, 2.0])["difference"] == -0.5
  same = study_stats.welch([0.3, 0.3], [0.1, 0.1])
  assert (same["low"], same["difference"], same["high"]) == pytest.approx((0.2, 0.2, 0.2))
  assert study_stats.excludes_zero(same) and not study_stats.excludes_zero(study_stats.welch([1.0], [2.0]))


def test_formatting_marks_differences_whose_interval_excludes_zero():
  assert study_stats.format_mean(study_stats.summarize([1.0, 2.0, 4.0])) == "2.33 [-1.46, 6.13] (n=3)"
  assert study_stats.format_mean(study_stats.summarize([0.5])) == "0.5 (n=1)"
  assert study_stats.format_difference(study_stats.welch([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])) == "**+3 [+0.73, +5.3]**"
  assert study_stats.format_difference(study_stats.welch([1.0, 3.0], [1.0, 2.0])) == "+0.5 [-6.4, +7.4]"
  assert study_stats.format_difference(study_stats.welch([1.0], [0.5])) == "+0.5"


def test_progress_lines_give_done_of_total_and_an_eta_from_the_runs_computed(capsys, monkeypatch):
  now = [100.0]
  monkeypatch.setattr(study_timing.time, "time", lambda: now[0])
  progress = study_timing.Progress("fine-tuning", total=4)
  progress.started("trec: bert", 2)
  now[0] += 30.0
  progress.finished("trec: bert", 2, 30.0)
  progress.reused("trec: electra")
  lines = capsys.readouterr().out.splitlines()
  assert lines == ["[fine-tuning] trec: bert: started (2 to compute; 0/4 done, 0s elapsed, ETA unknown)",
                   "[fine-tuning] trec: bert: finished in 30s (2/4 done, 30s elapsed, ETA 30s)",
                   "[fine-tuning] trec: electra: reused, nothing to compute"]
  assert study_timing.format_seconds(3725) == "1h02m" and study_timing.format_seconds(125) == "2m05s"
  assert study_timing.peak_rss_mb() > 0
  assert study_timing.machine()["cpu_cores"] >= 1
