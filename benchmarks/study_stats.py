"""Run-level statistics of the equal-compute study: means and differences with 95% t intervals.

An observation is one run's score (a pretraining seed's final held-out metric, or one fine-tuning
run's dev metric). The mean's interval is Student's t interval over the runs; a difference between
two sets of runs (pretrained minus from scratch, ELECTRA minus BERT) gets Welch's interval, which
does not assume equal variances, with the Welch-Satterthwaite degrees of freedom. Fewer than two
runs on a side give no interval (NaN bounds).
"""
import math
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def _bounds(center: float, standard_error: float, dof: float, confidence: float) -> Tuple[float, float]:
  if standard_error == 0.0:
    # Every run scored the same: no spread to widen the interval (the t quantile is irrelevant).
    return center, center
  half = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * standard_error
  return center - half, center + half


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Dict[str, object]:
  """Mean, sample standard deviation (ddof 1), n, the values, and the t interval of the mean (low, high)."""
  values = [float(v) for v in values]
  n = len(values)
  mean = float(np.mean(values)) if n else float("nan")
  std = float(np.std(values, ddof=1)) if n > 1 else float("nan")
  low, high = _bounds(mean, std / math.sqrt(n), n - 1, confidence) if n > 1 else (float("nan"), float("nan"))
  return {"mean": mean, "std": std, "n": n, "values": values, "low": low, "high": high}


def welch(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Dict[str, float]:
  """mean(a) - mean(b) with Welch's t interval: standard error sqrt(s_a²/n_a + s_b²/n_b), degrees of
  freedom (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1))."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  nan = float("nan")
  difference = float(a.mean() - b.mean()) if len(a) and len(b) else nan
  result = {"difference": difference, "low": nan, "high": nan, "dof": nan, "n_a": len(a), "n_b": len(b)}
  if len(a) < 2 or len(b) < 2:
    return result
  var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  standard_error = math.sqrt(var_a + var_b)
  if standard_error > 0.0:
    result["dof"] = float((var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1)))
  result["low"], result["high"] = _bounds(difference, standard_error, result["dof"], confidence)
  return result


def excludes_zero(interval: Mapping[str, float]) -> bool:
  """Whether a difference's interval lies wholly on one side of 0 (False without an interval)."""
  return bool(interval["low"] > 0.0 or interval["high"] < 0.0)


def format_mean(summary: Mapping[str, object], digits: int = 3) -> str:
  """`mean [low, high] (n=k)`; the interval is left out below two runs."""
  if not summary["n"]:
    return ""
  if not math.isfinite(summary["low"]):
    return f"{summary['mean']:.{digits}g} (n={summary['n']})"
  return f"{summary['mean']:.{digits}g} [{summary['low']:.{digits}g}, {summary['high']:.{digits}g}] (n={summary['n']})"


def format_difference(interval: Mapping[str, float], digits: int = 2) -> str:
  """`+d [low, high]`, bold when the interval excludes 0; the interval is left out without one."""
  if not math.isfinite(interval["difference"]):
    return ""
  if not math.isfinite(interval["low"]):
    return f"{interval['difference']:+.{digits}g}"
  text = f"{interval['difference']:+.{digits}g} [{interval['low']:+.{digits}g}, {interval['high']:+.{digits}g}]"
  return f"**{text}**" if excludes_zero(interval) else text
