"""The equal-compute study's report: results.md, the timings, curves.png and finetune.png."""
import math
from typing import Dict, List, Mapping

import numpy as np

from benchmarks import study_stats
from benchmarks import study_timing
from tpu_electra import fileio
from tpu_electra import representation_health as health

# The health metrics results.md shows (results.json has every layer's): the top layer, which
# fine-tuning reads, and the embedding output, which every layer builds on.
HEALTH_COLUMNS = [f"{health.PREFIX}{metric}_{part}" for part in (health.FINAL, health.EMBEDDING)
                  for metric in ("cosine", "effective_rank")]


def _all_runs(results: Mapping[str, object], side: str, task: str) -> List[Dict]:
  groups = results["finetune"]["tasks"][task][side].values()
  return [run for group in groups for run in group["runs"] + group.get("runs_at_other_rates", [])]


def timings(results: Mapping[str, object], phases: Mapping[str, float]) -> Dict[str, object]:
  """Seconds per run of each phase (each run's own, recorded when it ran), this invocation's wall
  time per phase, the whole study's compute time, and this process's peak RSS."""
  per_seed = [one for run in results["objectives"].values() for one in run["per_seed"]]
  pretrain = [one["train_seconds"] for one in per_seed]
  out = {"pretrain_seconds_per_run": study_stats.summarize(pretrain),
         "resumed_pretraining_runs": sum(bool(one["resumed_from_step"]) for one in per_seed),
         "measure_seconds_per_run": study_stats.summarize([one["eval_seconds"] for one in per_seed]),
         "phase_seconds": dict(phases), "total_seconds": results["total_seconds"],
         "peak_rss_mb": study_timing.peak_rss_mb()}
  compute = sum(pretrain)
  if "finetune" in results:
    out["finetune_seconds_per_run"] = {}
    for task in results["finetune"]["tasks"]:
      sides = {side: [run["seconds"] for run in _all_runs(results, side, task)] for side in ("pretrained", "scratch")}
      out["finetune_seconds_per_run"][task] = {side: study_stats.summarize(v) for side, v in sides.items()}
      compute += sum(sum(v) for v in sides.values())
  out["compute_seconds"] = compute
  return out


# ---------------------------------------------------------------------------------------------
# results.md


def _pretraining_section(results: Mapping[str, object]) -> List[str]:
  runs = results["objectives"]
  data = results["data"]
  probe = "probe" in results
  lines = [f"# Objectives at equal compute: {results['train_flops']:.3g} training FLOPs each, "
           f"{results['num_seeds']} pretraining seed(s)", "",
           f"Data: {data['source']} ({data['num_train']} training examples; held-out split: "
           f"{data['num_eval_examples']} examples of {data['num_eval_documents']} whole documents); configs: "
           f"{results['config']}; SEED = 0..{results['num_seeds'] - 1}"
           + (f"; --gin_param {results['gin_params']}" if results["gin_params"] else "") + ".", "",
           "Every number is a mean over runs with its 95% t interval in brackets (n = runs; one run: no "
           "interval); a difference is bold when its interval excludes 0. Pretraining numbers are at each run's "
           "last step."]
  if probe:
    lines += ["", "Shared held-out measure: frozen-feature replaced-token-detection probe (15% of held-out tokens "
              "replaced by unigram draws; logistic regression on the encoder's last layer fitted on half the "
              "held-out sequences, ROC AUC on the other half; a context-free detector scores 0.5). \"above chance\": "
              "runs whose 95% bootstrap interval over test sequences excludes 0.5 (benchmarks/heldout_probe.py)."]
  header = "| objective | steps | train FLOPs | encoder params | pretrain s per run |"
  rule = "|---|---:|---:|---:|---:|"
  if probe:
    header += " probe AUC | above chance | AUC at init | gain |"
    rule += "---|---:|---:|---|"
  lines += ["", header, rule]
  for name, run in runs.items():
    row = (f"| {name} | {run['steps']} | {run['train_flops']:.3g} | {run['encoder_params']:,} "
           f"| {run['train_seconds']['mean']:.0f} |")
    if probe:
      row += (f" {study_stats.format_mean(run['probe_auc'])} | {run['probe_above_chance']}/{run['probe_auc']['n']} "
              f"| {run['probe_at_init_auc']['mean']:.3f} | {study_stats.format_mean(run['probe_gain'], 2)} |")
    lines.append(row)
  any_run = next(iter(runs.values()))["per_seed"][0]
  if probe:
    if not any(run["probe_above_chance"] for run in runs.values()):
      lines += ["", "**No run's probe AUC is above chance (every 95% interval reaches 0.5): at this budget no "
                "encoder has learned context that the probe can read, so the probe ranks nothing.**"]
    lines += ["", f"Probe: {any_run['probe']['fit_tokens']} fit tokens, {any_run['probe']['test_tokens']} test "
              f"tokens, {100 * any_run['probe']['test_replaced_fraction']:.1f}% replaced (majority-class accuracy "
              f"{any_run['probe']['majority_accuracy']:.3f})."]
  columns = [c for c in HEALTH_COLUMNS if any(c in run["final_eval"] for run in runs.values())]
  if columns:
    lines += ["", "Representation health of each kept encoder on the held-out split (tpu_electra.representation_health:"
              " the same held-out tokens, unmasked, through every encoder), so these DO compare across objectives: "
              "mean cosine of two tokens' vectors (near 1: collapse) and effective rank of their covariance (falling "
              "towards 1: collapse); every layer's in results.json.", "",
              "| objective | " + " | ".join(c[len(health.PREFIX):] for c in columns) + " |",
              "|---|" + "---|" * len(columns)]
    for name, run in runs.items():
      cells = [study_stats.format_mean(run["final_eval"][c]) if c in run["final_eval"] else "" for c in columns]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
  lines += ["", "Each objective's own metrics (they do NOT compare across objectives: each detector is scored on "
            "its own generator's samples): on the held-out split at the last step (the trainer's evaluation: fixed "
            f"batches, masks and sampling noise; {any_run['eval_batches']} batches of {any_run['batch_size']}), and "
            "in the last training window (training batches). Held-out curves: results.json and curves.png.", "",
            "| objective | metric | held out, last step | last training window |", "|---|---|---|---|"]
  for name, run in runs.items():
    for metric, summary in run["final_eval"].items():
      if metric.startswith(health.PREFIX):
        continue
      train = run["final_train_metrics"].get(metric)
      lines.append(f"| {name} | {metric} | {study_stats.format_mean(summary, 4)} "
                   f"| {study_stats.format_mean(train, 4) if train else ''} |")
  return lines


def _data_cell(data: Mapping[str, object], split: str) -> str:
  if not data.get("unit"):
    return "all"
  if split == "dev":
    return f"{data['dev_total']:,} {data['unit']}"
  if data["train_kept"] < data["train_total"]:
    return f"first {data['train_kept']:,} of {data['train_total']:,} {data['unit']}"
  return f"all {data['train_total']:,} {data['unit']}"


def _finetuning_section(results: Mapping[str, object]) -> List[str]:
  study = results["finetune"]
  reference = study["reference"]
  groups = study["scratch_groups"]
  lines = ["", f"## Fine-tuning: {', '.join(study['tasks'])}", "",
           f"Every pretraining run is fine-tuned with {study['num_finetune_seeds']} seed(s) (fine-tuning SEED = "
           f"0..{study['num_finetune_seeds'] - 1}; finetune/<task>.gin"
           + (f", --finetune_gin_param {study['gin_params']}" if study["gin_params"] else "") + "). From scratch: "
           "the same recipe on an encoder of the same config with fresh weights drawn from the fine-tuning seed, "
           f"with {study['num_pretrain_seeds']} x {study['num_finetune_seeds']} = "
           f"{study['num_pretrain_seeds'] * study['num_finetune_seeds']} seeds, so each side of a gain has the same "
           "n. One observation = one fine-tuning run (its dev score as the runner reports it: after the last step "
           "unless the recipe keeps the best); means get a 95% t interval, differences Welch's. The fine-tuning "
           "runs of one pretraining run share its pretraining seed, so they are not independent: n overstates the "
           "independent observations, and the intervals are too narrow wherever the pretraining seed matters "
           "(with one pretraining seed they leave its noise out).", ""]
  rates = study.get("learning_rates") or []
  if rates:
    lines += [f"Learning rate: every encoder (each objective's runs, each from-scratch baseline) is fine-tuned at each "
              f"of {', '.join(f'{r:g}' for r in rates)} and reported at the rate with its best mean dev score (column "
              "lr; every rate's mean is in the table after). The choice is made on the dev split the table reports, "
              "so each mean is a little optimistic; both sides of a gain are chosen the same way.", ""]
  lines += [
           "From-scratch baselines, one per encoder config: "
           + "; ".join(f"{key}: {', '.join(g['objectives'])}" for key, g in groups.items()) + ".", "",
           "| task | dev metric | train examples | dev examples | read from |", "|---|---|---|---|---|"]
  for task, one in study["tasks"].items():
    lines.append(f"| {task} | {one['primary_metric']} | {_data_cell(one['data'], 'train')} "
                 f"| {_data_cell(one['data'], 'dev')} | {one['data']['source_dir']} |")
  group_of = {o: key for key, g in groups.items() for o in g["objectives"]}
  for task, one in study["tasks"].items():
    lr_header, lr_rule = (" lr: pretrained / scratch |", "---|") if rates else ("", "")
    lines += ["", f"### {task}: dev {one['primary_metric']}", "",
              f"| objective | pretrained | from scratch | gain over scratch | minus {reference} |{lr_header} s per run |",
              f"|---|---|---|---|---|{lr_rule}---:|"]
    for objective, side in one["pretrained"].items():
      minus = one["minus_reference"].get(objective)
      scratch = one["scratch"][group_of[objective]]
      seconds = np.mean([run["seconds"] for run in side["runs"]])
      rate = f" {side['learning_rate']:g} / {scratch['learning_rate']:g} |" if rates else ""
      lines.append(f"| {objective} | {study_stats.format_mean(side['score'])} "
                   f"| {study_stats.format_mean(scratch['score'])} "
                   f"| {study_stats.format_difference(one['gain_over_scratch'][objective])} "
                   f"| {study_stats.format_difference(minus) if minus else ''} |{rate} {seconds:.0f} |")
    if rates:
      lines += ["", f"{task}: mean dev {one['primary_metric']} at each learning rate (the chosen one in bold)", "",
                "| encoder | " + " | ".join(f"{r:g}" for r in rates) + " |", "|---|" + "---|" * len(rates)]
      for name, side in list(one["pretrained"].items()) + list(one["scratch"].items()):
        cells = []
        for r in rates:
          cell = study_stats.format_mean(side["by_learning_rate"][f"{r:g}"])
          cells.append(f"**{cell}**" if r == side["learning_rate"] else cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return lines


def _timing_section(results: Mapping[str, object]) -> List[str]:
  times = results["timings"]
  machine = results["machine"]

  def row(what: str, summary: Mapping[str, object]) -> str:
    values = summary["values"]
    return (f"| {what} | {summary['n']} | {summary['mean']:.1f} [{min(values):.1f}, {max(values):.1f}] "
            f"| {sum(values):.0f} |")

  lines = ["", "## Time and memory", "",
           f"Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores ({machine['usable_cores']} usable), "
           f"{machine['gpus']} GPU(s); {machine['platform']}; TensorFlow {machine['tensorflow']}.", "",
           "| phase | runs | s per run: mean [min, max] | s in all |", "|---|---:|---|---:|",
           row("pretraining (training only)", times["pretrain_seconds_per_run"]),
           row("held-out measurement (restore" + (", probe" if "probe" in results else "") + "), this invocation",
               times["measure_seconds_per_run"])]
  for task, sides in times.get("finetune_seconds_per_run", {}).items():
    lines += [row(f"fine-tuning {task}, pretrained", sides["pretrained"]),
              row(f"fine-tuning {task}, from scratch", sides["scratch"])]
  phases = ", ".join(f"{name} phase {seconds:.0f} s" for name, seconds in times["phase_seconds"].items())
  lines += ["", f"All runs' compute: {times['compute_seconds']:.0f} s. This invocation: {times['total_seconds']:.0f} s "
            f"wall ({phases}), peak RSS {times['peak_rss_mb']:.0f} MiB. A run's time is recorded when it runs and "
            "kept when a later invocation reuses it"
            + (f"; {times['resumed_pretraining_runs']} resumed pretraining run(s) count only their last session"
               if times["resumed_pretraining_runs"] else "") + "."]
  return lines


def markdown_report(results: Mapping[str, object]) -> str:
  """results.md: pretraining (probe, health, own metrics), fine-tuning with gains and differences, time."""
  lines = _pretraining_section(results)
  if "finetune" in results:
    lines += _finetuning_section(results)
  lines += _timing_section(results)
  shared = ["the probe"] * ("probe" in results) + ["representation health"] + ["fine-tuning"] * ("finetune" in results)
  lines += ["", "## What these numbers can and cannot show", "",
            "They can show whether each objective trains at this budget, how its held-out metrics move per FLOP, "
            f"and how the encoders rank on shared measures ({', '.join(shared)}), with the spread over seeds "
            "(initialization, data order, masks, sampling, dropout). They cannot show that a ranking holds at the "
            "papers' scale (tiny encoders and minutes of compute against 10^17-10^18 FLOPs), or anything about "
            "GLUE; a handful of seeds gives rough intervals."
            + (" The probe is closer to the replaced-token detectors' training task than to BERT's." if "probe" in
               results else "")
            + " At this size the embedding lookups and vocabulary projections dominate the FLOPs count, and "
            "wall-clock time per FLOP differs by objective.", ""]
  return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Plots.


def _save(figure, path: str) -> None:
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  with fileio.atomic_writer(path, "wb") as f:
    figure.savefig(f, format="png", dpi=100)
  plt.close(figure)


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_curves(results: Mapping[str, object], path: str) -> None:
  """Held-out curves against FLOPs (mean over seeds, ±1 std shaded); the probe, or without it the top
  layer's effective rank."""
  plt = _pyplot()
  runs = results["objectives"]
  probe = "probe" in results
  # One color per objective in every panel, although not every objective has every curve.
  colors = {name: f"C{i}" for i, name in enumerate(runs)}
  figure, axes = plt.subplots(2, 2, figsize=(12, 8))
  panels = [(axes[0, 0], "loss", "own loss, held out (log scale)"),
            (axes[0, 1], "mlm_loss", "MLM loss, held out (generator's for ELECTRA/ALE/TEAMS)"),
            (axes[1, 0], "discriminator_auc", "replaced-token detection AUC, held out")]
  if not probe:
    panels.append((axes[1, 1], HEALTH_COLUMNS[1], "effective rank of the top layer, held out (shared measure)"))
  for ax, tag, title in panels:
    for name, run in runs.items():
      curve = run["eval_curves"].get(tag)
      if not curve or not curve["steps"]:
        continue
      x, mean, std = np.array(curve["flops"]), np.array(curve["mean"]), np.array(curve["std"])
      ax.plot(x, mean, color=colors[name], marker="o", markersize=3, label=f"{name} (n={curve['n']})")
      if curve["n"] > 1:
        ax.fill_between(x, mean - std, mean + std, color=colors[name], alpha=0.2, linewidth=0)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("training FLOPs")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  if axes[0, 0].get_legend_handles_labels()[0]:
    axes[0, 0].set_yscale("log")
  if probe:
    names = list(runs)
    auc = np.array([runs[n]["probe_auc"]["mean"] for n in names])
    spread = np.nan_to_num(np.array([runs[n]["probe_auc"]["std"] for n in names]))
    at_init = np.array([runs[n]["probe_at_init_auc"]["mean"] for n in names])
    x = np.arange(len(names))
    ax = axes[1, 1]
    ax.bar(x - 0.2, at_init, width=0.4, color="lightgray")
    ax.bar(x + 0.2, auc, width=0.4, yerr=spread, capsize=4, color=[colors[n] for n in names])
    for n, name in enumerate(names):
      ax.scatter(np.full(runs[name]["probe_auc"]["n"], n + 0.2), runs[name]["probe_auc"]["values"], color="black",
                 s=8, zorder=3)
    ax.axhline(0.5, color="black", linewidth=0.8, linestyle=":")
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylim(min(0.45, float(np.nanmin(np.concatenate([auc - spread, at_init]))) - 0.02),
                max(0.6, float(np.nanmax(np.concatenate([auc + spread, at_init]))) + 0.02))
    ax.set_title("shared held-out measure: probe ROC AUC\n(gray: at init; color: pretrained, mean ± std, dots: "
                 "seeds)", fontsize="medium")
  figure.suptitle(f"{', '.join(runs)} at {results['train_flops']:.3g} training FLOPs each, "
                  f"{results['num_seeds']} seed(s)")
  figure.tight_layout()
  _save(figure, path)


def _error(summary_or_difference: Mapping[str, float], center: str) -> List[List[float]]:
  """matplotlib's yerr for one interval (0 where there is none: one run)."""
  mid, low, high = summary_or_difference[center], summary_or_difference["low"], summary_or_difference["high"]
  return [[mid - low if math.isfinite(low) else 0.0], [high - mid if math.isfinite(high) else 0.0]]


def plot_finetuning(results: Mapping[str, object], path: str) -> None:
  """Per task: every run's dev score with each mean's 95% interval (top), and the gains over scratch and
  the differences to the reference objective with their Welch intervals (bottom)."""
  plt = _pyplot()
  study = results["finetune"]
  objectives = list(results["objectives"])
  colors = {name: f"C{i}" for i, name in enumerate(objectives)}
  figure, axes = plt.subplots(2, len(study["tasks"]), figsize=(6 * len(study["tasks"]), 8), squeeze=False)
  for column, (task, one) in enumerate(study["tasks"].items()):
    top, bottom = axes[0, column], axes[1, column]
    bars = [(name, side["score"], colors[name], name) for name, side in one["pretrained"].items()]
    bars += [(key, side["score"], "gray", "scratch: " + "/".join(study["scratch_groups"][key]["objectives"]))
             for key, side in one["scratch"].items()]
    rng = np.random.default_rng(0)  # Jitter only, so that equal scores stay visible.
    for x, (_, score, color, _) in enumerate(bars):
      top.scatter(x + rng.uniform(-0.12, 0.12, score["n"]), score["values"], color=color, s=10, alpha=0.6)
      top.errorbar([x + 0.25], [score["mean"]], yerr=_error(score, "mean"), fmt="D", color=color, capsize=4)
    top.set_xticks(range(len(bars)))
    top.set_xticklabels([label for *_, label in bars], fontsize="small", rotation=30, ha="right")
    top.set_title(f"{task}: dev {one['primary_metric']} per run, mean with 95% t interval", fontsize="medium")
    top.grid(axis="y", alpha=0.3)
    minus_labelled = False  # The reference has no difference to itself, so the first one to label varies.
    for x, name in enumerate(objectives):
      gain = one["gain_over_scratch"][name]
      bottom.errorbar([x - 0.1], [gain["difference"]], yerr=_error(gain, "difference"), fmt="o", color=colors[name],
                      capsize=4, label="pretrained minus scratch" if x == 0 else None)
      minus = one["minus_reference"].get(name)
      if minus:
        bottom.errorbar([x + 0.1], [minus["difference"]], yerr=_error(minus, "difference"), fmt="s", color="black",
                        capsize=4, label=None if minus_labelled else f"minus {study['reference']}")
        minus_labelled = True
    bottom.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    bottom.set_xticks(range(len(objectives)))
    bottom.set_xticklabels(objectives)
    bottom.set_title(f"{task}: differences with 95% Welch intervals", fontsize="medium")
    bottom.grid(axis="y", alpha=0.3)
    bottom.legend(fontsize="small")
  figure.suptitle(f"fine-tuning after {results['train_flops']:.3g} pretraining FLOPs: {study['num_pretrain_seeds']} "
                  f"pretraining x {study['num_finetune_seeds']} fine-tuning seeds")
  figure.tight_layout()
  _save(figure, path)
