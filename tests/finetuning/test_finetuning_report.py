"""Multi-seed statistics, the JSON/Markdown writers, and the GLUE report."""
import json
import math
import os

import pytest

from tpu_electra import fileio
from tpu_electra.finetuning import report


def test_summary_statistics_use_the_sample_standard_deviation():
  stats = report.summary_statistics([1.0, 2.0, 3.0, 4.0])
  # Squared deviations 2.25 + .25 + .25 + 2.25 = 5, over n - 1 = 3.
  assert stats == {"mean": 2.5, "median": 2.5, "std": pytest.approx(math.sqrt(5 / 3)),
                   "max": 4.0, "min": 1.0, "n": 4.0}


def test_median_of_an_odd_count_is_the_middle_value():
  assert report.summary_statistics([9.0, 1.0, 5.0])["median"] == 5.0


def test_a_single_seed_has_zero_spread():
  assert report.summary_statistics([0.7]) == {
      "mean": 0.7, "median": 0.7, "std": 0.0, "max": 0.7, "min": 0.7, "n": 1.0}


def test_aggregate_seeds_summarizes_each_metric_over_the_seeds_that_have_it():
  per_seed = [{"accuracy": 0.8, "f1": 0.9, "note": "x"},
              {"accuracy": 0.6},
              {"accuracy": 0.7, "f1": 0.7, "converged": True}]
  aggregated = report.aggregate_seeds(per_seed)
  assert list(aggregated) == ["accuracy", "f1"]
  assert aggregated["accuracy"]["mean"] == pytest.approx(0.7)
  assert aggregated["accuracy"]["std"] == pytest.approx(0.1)
  assert aggregated["f1"]["n"] == 2.0 and aggregated["f1"]["max"] == 0.9


def test_write_json_replaces_the_file_atomically_and_writes_strict_json(tmp_path):
  path = str(tmp_path / "out" / "results.json")
  report.write_json(path, {"old": 1})
  report.write_json(path, {"f1": 0.5, "diff": math.inf, "list": [math.nan, 1.0]})
  with open(path) as f:
    assert json.load(f) == {"f1": 0.5, "diff": None, "list": [None, 1.0]}
  assert os.listdir(tmp_path / "out") == ["results.json"]


def test_writers_take_a_swappable_text_writer():
  written = {}
  report.write_markdown("gs://bucket/report.md", "| a |", write_text=written.__setitem__)
  assert written == {"gs://bucket/report.md": "| a |\n"}
  assert fileio.is_url("gs://bucket/x") and not fileio.is_url("/tmp/x")


def test_seeds_markdown_has_a_row_per_metric_and_a_column_per_statistic():
  table = report.seeds_markdown(report.aggregate_seeds([{"acc": 0.5}, {"acc": 0.7}]),
                                title="RTE", digits=2)
  lines = table.splitlines()
  assert lines[0] == "## RTE"
  assert lines[2] == "| metric | mean | median | std | max | min | n |"
  assert lines[4] == "| acc | 0.60 | 0.60 | 0.14 | 0.70 | 0.50 | 2 |"


def _seeds(metric_values):
  """One dict per seed from {metric: [value per seed]}."""
  names = list(metric_values)
  return [dict(zip(names, values)) for values in zip(*metric_values.values())]


FULL = {
    "cola": _seeds({"mcc": [0.58, 0.60, 0.70]}),
    "sst-2": _seeds({"accuracy": [0.90, 0.90, 0.91]}),
    "mrpc": _seeds({"accuracy": [0.86, 0.80, 0.87], "f1": [0.90, 0.85, 0.91]}),
    "sts-b": _seeds({"pearson": [0.88, 0.88, 0.88], "spearman": [0.86, 0.86, 0.86]}),
    "qqp": _seeds({"accuracy": [0.89, 0.89, 0.89], "f1": [0.85, 0.85, 0.85]}),
    "mnli-m": _seeds({"accuracy": [0.82, 0.82, 0.82]}),
    "mnli-mm": _seeds({"accuracy": [0.80, 0.80, 0.80]}),
    "qnli": _seeds({"accuracy": [0.88, 0.88, 0.88]}),
    "rte": _seeds({"accuracy": [0.60, 0.66, 0.70]}),
    "wnli": _seeds({"accuracy": [0.56, 0.56, 0.56]}),
}


def test_glue_report_averages_per_task_medians_into_both_scores():
  result = report.glue_report(FULL, statistic="median")
  # Medians: CoLA 60, SST 90, MRPC acc 86 / F1 90, RTE 66; the rest are constant.
  assert result["electra_average"]["value"] == pytest.approx(
      (60 + 90 + 86 + 86 + 89 + 82 + 88 + 66) / 8)
  assert result["glue_score"]["value"] == pytest.approx(
      (60 + 90 + 88 + 87 + 87 + 81 + 88 + 66 + 56) / 9)
  assert result["tasks"]["rte"]["accuracy"]["median"] == pytest.approx(66.0)
  assert result["tasks"]["rte"]["accuracy"]["n"] == 3.0
  assert "WNLI excluded" in result["electra_average"]["definition"]


def test_glue_report_names_what_is_missing_instead_of_guessing():
  partial = {k: v for k, v in FULL.items() if k != "wnli"}
  result = report.glue_report(partial, statistic="mean")
  assert result["glue_score"] == {"value": None, "definition": result["glue_score"]["definition"],
                                  "missing": ["wnli/accuracy"]}
  assert result["electra_average"]["value"] is not None
  markdown = report.glue_markdown(result)
  assert "| ELECTRA-style 8-task average |" in markdown
  assert "| Official GLUE score | — |" in markdown
  assert "GLUE score not computed: missing wnli/accuracy" in markdown


def test_glue_markdown_lists_task_rows_and_both_summaries_side_by_side():
  markdown = report.glue_markdown(report.glue_report(FULL))
  assert "| rte accuracy | 65.33 | 66.00 |" in markdown
  summary_rows = [line for line in markdown.splitlines()
                  if line.startswith(("| ELECTRA-style", "| Official GLUE"))]
  assert len(summary_rows) == 2
  assert float(summary_rows[0].split("|")[2]) == pytest.approx(647 / 8, abs=0.005)
  assert float(summary_rows[1].split("|")[2]) == pytest.approx(703 / 9, abs=0.005)
