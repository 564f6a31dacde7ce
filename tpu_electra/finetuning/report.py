"""Multi-seed reports: per-metric statistics over seeds, JSON and Markdown writers, the GLUE report.

Fine-tuning results vary a lot with the seed, so a run with `--seeds=N` reports, per metric, the
mean, median, standard deviation and max over the N seeds (and min and n, which cost nothing and
make a table readable on its own).

The standard deviation is the *sample* one (divisor n − 1): the seeds are a small sample of the
seed distribution and the number is read as an estimate of its spread, which the population
formula underestimates by a factor sqrt((n − 1) / n) — 11% for 5 seeds. With a single seed it is
reported as 0.0, with n = 1 beside it.
"""
import json
import math
import numbers
import statistics
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from tpu_electra import fileio
from tpu_electra.finetuning import glue

STATISTICS = ("mean", "median", "std", "max", "min", "n")
TextWriter = Callable[[str, str], None]


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_statistics(values: Sequence[float]) -> Dict[str, float]:
  """mean, median (mean of the two middle values for an even count), sample std, max, min, n."""
  if not values:
    raise ValueError("no values to summarize")
  floats = [float(v) for v in values]
  return {
      "mean": statistics.fmean(floats),
      "median": statistics.median(floats),
      "std": statistics.stdev(floats) if len(floats) > 1 else 0.0,
      "max": max(floats),
      "min": min(floats),
      "n": len(floats),
  }


def aggregate_seeds(per_seed: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, float]]:
  """Statistics per metric over the seeds' metric dicts.

  A metric absent from some seeds is summarized over the seeds that have it (its n says how
  many). Non-numeric entries are ignored. Metrics keep the order of their first appearance.
  """
  values: Dict[str, List[float]] = {}
  for seed_metrics in per_seed:
    for name, value in seed_metrics.items():
      if _is_number(value):
        values.setdefault(name, []).append(float(value))
  return {name: summary_statistics(v) for name, v in values.items()}


def _json_safe(value: Any) -> Any:
  """Non-finite floats become null: strict JSON has no NaN or Infinity."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, Mapping):
    return {str(k): _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  return value


def to_json(obj: Any) -> str:
  return json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n"


def write_json(path: str, obj: Any, write_text: TextWriter = fileio.write_text_atomic) -> None:
  write_text(path, to_json(obj))


def write_markdown(path: str, text: str,
                   write_text: TextWriter = fileio.write_text_atomic) -> None:
  write_text(path, text if text.endswith("\n") else text + "\n")


def _cell(value: Any, digits: int) -> str:
  if value is None:
    return "—"
  if isinstance(value, numbers.Integral) and not isinstance(value, bool):
    return str(int(value))  # Counts, steps and seeds.
  if _is_number(value):
    return f"{float(value):.{digits}f}"
  return str(value).replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
  """A GitHub-flavoured Markdown table; integers print as they are, other numbers with `digits`
  decimals, None as a dash.

  Columns holding only numbers (or None) are right-aligned, text columns left-aligned; a column
  headed "n" is a count and printed without decimals.
  """
  for row in rows:
    if len(row) != len(headers):
      raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")
  numeric = [all(row[i] is None or _is_number(row[i]) for row in rows) and i > 0
             for i in range(len(headers))]
  lines = ["| " + " | ".join(_cell(h, digits) for h in headers) + " |",
           "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
  for row in rows:
    cells = [_cell(v, 0 if h == "n" else digits) for h, v in zip(headers, row)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def seeds_markdown(aggregated: Mapping[str, Mapping[str, float]], title: Optional[str] = None,
                   digits: int = 4) -> str:
  """One row per metric, one column per statistic."""
  rows = [[name] + [stats[s] for s in STATISTICS] for name, stats in aggregated.items()]
  table = markdown_table(["metric"] + list(STATISTICS), rows, digits)
  return f"## {title}\n\n{table}" if title else table


def glue_report(per_seed_results: Mapping[str, Sequence[Mapping[str, float]]],
                statistic: str = "median") -> Dict[str, Any]:
  """Per-task seed statistics and both GLUE summary numbers, all on a 0–100 scale.

  Args:
    per_seed_results: result key (as `glue.result_key` names it: "cola", "mnli-m", "mnli-mm",
      ...) → one metric dict per seed, on the metrics' natural scale.
    statistic: which seed statistic of each task metric feeds the summaries; "median" follows
      TEAMS (median of runs per task, then the average), "mean" is the other common choice.

  Returns:
    {"statistic", "tasks": {key: {metric: stats ×100 (n unscaled)}}, "electra_average": {...},
     "glue_score": {...}, "glue_task_scores": {...}}, each summary with its value, its definition
    and the components that were missing (value None then).
  """
  if statistic not in ("mean", "median", "max"):
    raise ValueError(f"statistic must be mean, median or max, not {statistic!r}")
  tasks: Dict[str, Dict[str, Dict[str, float]]] = {}
  chosen: Dict[str, Dict[str, float]] = {}
  for key, seeds in per_seed_results.items():
    aggregated = aggregate_seeds(seeds)
    tasks[key] = {metric: {s: (v if s == "n" else 100.0 * v) for s, v in stats.items()}
                  for metric, stats in aggregated.items()}
    chosen[key] = {metric: stats[statistic] for metric, stats in aggregated.items()}
  summary = glue.summarize(chosen)
  return {
      "statistic": statistic,
      "tasks": tasks,
      "electra_average": {"value": summary.electra_average,
                          "definition": glue.ELECTRA_AVERAGE_LABEL,
                          "missing": summary.electra_missing},
      "glue_score": {"value": summary.glue_score, "definition": glue.GLUE_SCORE_LABEL,
                     "missing": summary.glue_missing},
      "glue_task_scores": summary.glue_task_scores,
  }


def glue_markdown(report: Mapping[str, Any], digits: int = 2) -> str:
  """The GLUE report as Markdown: a per-task table, then the two summary numbers side by side."""
  rows = []
  for key, task_metrics in report["tasks"].items():
    for metric, stats in task_metrics.items():
      rows.append([f"{key} {metric}"] + [stats[s] for s in STATISTICS])
  task_table = markdown_table(["task metric (×100)"] + list(STATISTICS), rows, digits)
  summaries = [
      ["ELECTRA-style 8-task average", report["electra_average"]["value"],
       report["electra_average"]["definition"]],
      ["Official GLUE score", report["glue_score"]["value"], report["glue_score"]["definition"]],
  ]
  summary_table = markdown_table(["summary", report["statistic"] + " of seeds", "definition"],
                                 summaries, digits)
  notes = []
  for name, entry in (("ELECTRA-style average", report["electra_average"]),
                      ("GLUE score", report["glue_score"])):
    if entry["missing"]:
      notes.append(f"- {name} not computed: missing {', '.join(entry['missing'])}")
  # Only a combined report (runner.glue_summary) records how its runs were initialized.
  scratch = ", fine-tuned from scratch (no pretraining)" if report.get("from_scratch") else ""
  text = f"## GLUE (dev){scratch}\n\n{task_table}\n{summary_table}"
  if notes:
    text += "\n" + "\n".join(notes) + "\n"
  return text
