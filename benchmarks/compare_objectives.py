r"""Equal-compute comparison of the pretraining objectives, carried through fine-tuning with --tasks.

  python -m benchmarks.compare_objectives --data_dir=DATA --output_dir=OUT [--train_flops=F] \
      [--objectives=bert,electra,...] [--config=smoke/{objective}.gin] [--seeds=3] [--noprobe] \
      [--tasks=conll03,trec --task_data_dir=TASKS --finetune_seeds=2 \
       --finetune_train_examples=conll03:4000,trec:2000 --finetune_gin_param='EPOCHS = 2' \
       --finetune_learning_rates=1e-3,3e-3]

Pretraining: each objective (default: every registered one) trains from its gin config
(`{objective}` replaced by its name) at TRAIN_FLOPS = --train_flops (default: the configs' own,
which must agree), counted by tpu_electra.flops, so an objective that costs more per step gets fewer
steps; once per SEED = 0..seeds-1, in OUT/runs/<objective>/seed_<k>. Each run evaluates itself
--eval_points times on the data's held-out split (its own metrics, and the `health/*` metrics of
its encoder, which compare across objectives) and, with --probe, is scored by the shared probe of
benchmarks.heldout_probe. With --tasks, benchmarks.study_finetune fine-tunes every pretraining run
and a from-scratch baseline per encoder config on each task. benchmarks.study_report writes
results.md, results.json, curves.png (and finetune.png): means with 95% t intervals over runs,
Welch intervals for differences (benchmarks.study_stats), wall times, peak memory and the machine.

Re-running the same command reuses finished runs and fine-tuning seeds, resumes an interrupted
pretraining run from its last checkpoint (bit-identically) and recomputes the report; a run dir
made under other settings is refused. README: "Comparing objectives at equal compute".
"""
import glob
import hashlib
import json
import os
import sys
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import flags
import gin
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from benchmarks import heldout_probe
from benchmarks import study_finetune
from benchmarks import study_report
from benchmarks import study_stats
from benchmarks import study_timing
from tpu_electra import cli_utils
from tpu_electra import evaluate
from tpu_electra import fileio
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra import pretrainer
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.training import seeding
from tpu_electra.training import trainer

DEFAULT_CONFIG = "smoke/{objective}.gin"
RUN_RECORD = "compare_run.json"
EVAL_SUBDIR = trainer.EVAL_SUMMARY_DIR
# Set by this script for every run: a --gin_param binding them would break the budget, the seeds or
# the evaluation schedule.
RESERVED_BINDINGS = ("DATA_DIR", "TRAIN_FLOPS", "TRAIN_STEPS", "SEED", "EVAL_EVERY", "EVAL_BATCHES",
                     "pretrain.data_dir", "pretrain.train_flops", "pretrain.train_steps", "pretrain.seed",
                     "pretrain.eval_every", "pretrain.eval_batches")



def _absolute(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


# ---------------------------------------------------------------------------------------------
# Pretraining runs.


def read_scalars(run_dir: str, subdir: str = "train") -> Dict[str, List[Tuple[int, float]]]:
  """Every scalar the trainer wrote under run_dir/<subdir> (`train` or `eval`), by tag, sorted by step.

  A resumed run writes a second events file; where both hold a step, the later file's value wins.
  """
  curves: Dict[str, Dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(run_dir, subdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else float(value.simple_value)
        curves.setdefault(value.tag, {})[int(event.step)] = number
  return {tag: sorted(points.items()) for tag, points in curves.items()}


def mean_curves(curves_per_seed: Sequence[Mapping[str, Sequence[Sequence[float]]]],
                flops_per_step: float) -> Dict[str, Dict[str, list]]:
  """Per tag, over the steps every seed evaluated: the mean and sample std over seeds, and the FLOPs."""
  result = {}
  tags = set.intersection(*(set(curves) for curves in curves_per_seed)) if curves_per_seed else set()
  for tag in sorted(tags):
    by_seed = [dict((int(s), v) for s, v in curves[tag]) for curves in curves_per_seed]
    steps = sorted(set.intersection(*(set(points) for points in by_seed)))
    stats = [study_stats.summarize([points[s] for points in by_seed]) for s in steps]
    result[tag] = {"steps": steps, "flops": [s * flops_per_step for s in steps],
                   "mean": [x["mean"] for x in stats], "std": [x["std"] for x in stats], "n": len(by_seed)}
  return result


def eval_every_for(steps: int, eval_points: int) -> int:
  """EVAL_EVERY for `eval_points` evaluations, the last at the last step (the trainer always evaluates there).

  ceil, not floor: with floor, 271 steps and 5 points evaluate at 270 and again at 271.
  """
  return max(1, -(-steps // eval_points))


def _build(objective_cls, encoder_config, batch, seed: int) -> tf.keras.Model:
  seeding.seed_everything(seed)
  model = objective_cls(encoder_config=encoder_config)
  model(batch, training=False)
  return model


def _read_record(path: str) -> Optional[Dict[str, object]]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _parse(config: str, bindings: Sequence[str]) -> None:
  gin.clear_config()
  gin_utils.parse([config], list(bindings))


def run_dir_of(output_dir: str, objective: str, seed: int) -> str:
  return os.path.join(output_dir, "runs", objective, f"seed_{seed}")


def is_finished(run_dir: str) -> bool:
  record = _read_record(os.path.join(run_dir, RUN_RECORD))
  return bool(record and record.get("finished"))


def run_seed(objective: str, config: str, data_dir: str, manifest: manifest_lib.Manifest, train_flops: float,
             run_dir: str, gin_params: Sequence[str], seed: int, eval_points: int, eval_batches: Optional[int],
             probe_data: Optional[heldout_probe.ProbeData], num_bootstrap: int,
             progress: study_timing.Progress) -> Dict[str, object]:
  """Pretrains one objective with one SEED within the budget (or reuses its finished run) and measures it."""
  base = [f"DATA_DIR = {data_dir!r}", f"TRAIN_FLOPS = {train_flops!r}", f"SEED = {seed}"]
  _parse(config, base + list(gin_params))
  report = flops.report_from_gin()
  steps = flops.steps_within(train_flops, report.per_step)
  eval_every = eval_every_for(steps, eval_points)
  num_eval = manifest.num_eval_examples
  batches = eval_batches or num_eval // report.batch_size
  if batches < 1 or batches * report.batch_size > num_eval:
    raise manifest_lib.DataError(
        f"the held-out split of {data_dir!r} has {num_eval} examples: too few for "
        f"{batches or 1} batch(es) of {report.batch_size}; lower --eval_batches or BATCH_SIZE, or rebuild the data "
        "with a larger --held_out_fraction")
  # A checkpoint at every evaluation: an interrupted run resumes from there (bit-identically).
  _parse(config, base + [f"EVAL_EVERY = {eval_every}", f"EVAL_BATCHES = {batches}",
                         f"CHECKPOINT_EVERY = {eval_every}"] + list(gin_params))
  objective_cls = gin.query_parameter("pretrain.objective").scoped_configurable_fn

  wanted = {"objective": objective, "config": config, "train_flops": train_flops, "gin_params": list(gin_params),
            "data": manifest.settings_hash, "seed": seed, "eval_every": eval_every, "eval_batches": batches,
            # The recipe's contents, not only its file name: an edited gin file is another recipe.
            "config_sha256": hashlib.sha256(gin.config_str().encode()).hexdigest()}
  record_path = os.path.join(run_dir, RUN_RECORD)
  record = _read_record(record_path)
  if record is not None and {k: record.get(k) for k in wanted} != wanted:
    raise ValueError(f"{run_dir} was trained with other settings ({record_path}); use another --output_dir")
  if record is None and tf.train.latest_checkpoint(run_dir):
    raise ValueError(f"{run_dir} holds checkpoints of a run this comparison did not start (no {RUN_RECORD}); "
                     "use another --output_dir")
  what = f"{objective} seed {seed}"
  if record is not None and record.get("finished"):
    progress.reused(f"{what} ({run_dir})")
  else:
    record = _pretrain_run(run_dir, wanted, what, steps, report, data_dir, batches, progress)

  start = time.time()
  first = next(iter(pretraining.evaluation_dataset(data_dir, report.batch_size, report.seq_length, 1)))
  model = _build(objective_cls, report.encoder_config, first, seed)
  status = tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(run_dir)).expect_partial()
  status.assert_existing_objects_matched()
  train_curves = read_scalars(run_dir, "train")
  result = {
      "seed": seed,
      "run_dir": run_dir,
      "config": config,
      "steps": steps,
      "flops_per_step": report.per_step,
      "train_flops": steps * report.per_step,
      "batch_size": report.batch_size,
      "seq_length": report.seq_length,
      "eval_every": eval_every,
      "eval_batches": batches,
      "encoder_params": common.count_params(model.encoder.trainable_variables),
      "objective_params": common.count_params(model.trainable_variables),
      "train_seconds": record["train_seconds"],
      "resumed_from_step": record["resumed_from_step"],
      "final_eval": dict(record["final_eval"]),
      "eval_curves": {tag: [[s, v] for s, v in points] for tag, points in read_scalars(run_dir, EVAL_SUBDIR).items()},
      "train_curves": {tag: [[s, v] for s, v in points] for tag, points in train_curves.items()},
      "final_train_metrics": {tag: points[-1][1] for tag, points in train_curves.items()},
  }
  if probe_data is not None:
    initial = _build(objective_cls, report.encoder_config, first, seed)
    result["probe"] = heldout_probe.run_probe(model.encoder, probe_data, num_bootstrap, heldout_probe.SEED)
    # No interval for the floor: it only anchors the gain, and resampling is not free.
    result["probe_at_init"] = heldout_probe.run_probe(initial.encoder, probe_data, 0, heldout_probe.SEED)
  result["eval_seconds"] = time.time() - start
  return result


def _pretrain_run(run_dir: str, wanted: Dict[str, object], what: str, steps: int, report: flops.FlopsReport,
                  data_dir: str, batches: int, progress: study_timing.Progress) -> Dict[str, object]:
  """Pretrains (or resumes) the run the parsed gin config describes; returns its finished run record."""
  record_path = os.path.join(run_dir, RUN_RECORD)
  eval_every = wanted["eval_every"]
  latest = tf.train.latest_checkpoint(run_dir)
  resumed_from = evaluate.checkpoint_step(latest) if latest else 0
  progress.started(f"{what}: {steps} steps of {report.per_step:.4g} FLOPs = {steps * report.per_step:.4g} "
                   f"(budget {wanted['train_flops']:.4g}); batch {report.batch_size} x seq {report.seq_length}; "
                   f"held-out evaluation every {eval_every} steps on {batches} batches"
                   + (f"; resuming at step {resumed_from}" if latest else ""))
  fileio.make_output_dir(run_dir, "--output_dir")
  fileio.write_text_atomic(record_path, json.dumps(dict(wanted, finished=False), indent=2) + "\n")
  start = time.time()
  metrics = pretrainer.pretrain(model_dir=run_dir)
  train_seconds = time.time() - start
  prefix = EVAL_SUBDIR + "/"
  final_eval = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
  if not final_eval:
    # Nothing left to train (killed after the last checkpoint): the last evaluation is in the events.
    curves = read_scalars(run_dir, EVAL_SUBDIR)
    final_eval = {tag: points[-1][1] for tag, points in curves.items() if points[-1][0] == steps}
    if not final_eval:
      final_eval = evaluate.evaluate_run(run_dir, data_dir=data_dir, eval_batches=batches,
                                         batch_size=report.batch_size)["metrics"]
  record = dict(wanted, finished=True, steps=steps, resumed_from_step=resumed_from, train_seconds=train_seconds,
                final_eval=final_eval)
  fileio.write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
  progress.finished(what, 1, train_seconds)
  return record


def compare_one(objective: str, config: str, data_dir: str, manifest: manifest_lib.Manifest, train_flops: float,
                output_dir: str, gin_params: Sequence[str], seeds: int, eval_points: int,
                eval_batches: Optional[int], probe_data: Optional[heldout_probe.ProbeData], num_bootstrap: int,
                progress: study_timing.Progress) -> Dict[str, object]:
  """Every seed of one objective, and the summaries over the seeds."""
  per_seed = []
  for seed in range(seeds):
    try:
      per_seed.append(run_seed(objective, config, data_dir, manifest, train_flops,
                               run_dir_of(output_dir, objective, seed), gin_params, seed, eval_points, eval_batches,
                               probe_data, num_bootstrap, progress))
    finally:
      gin.clear_config()
      tf.keras.backend.clear_session()
  first = per_seed[0]
  summarize = study_stats.summarize
  metrics = sorted(set().union(*(run["final_eval"] for run in per_seed)))
  train_metrics = sorted(set().union(*(run["final_train_metrics"] for run in per_seed)))
  result = {key: first[key] for key in ("config", "steps", "flops_per_step", "train_flops", "batch_size",
                                        "seq_length", "eval_every", "eval_batches", "encoder_params",
                                        "objective_params")}
  result.update({
      "seeds": list(range(seeds)),
      "train_seconds": summarize([run["train_seconds"] for run in per_seed]),
      "final_eval": {m: summarize([run["final_eval"][m] for run in per_seed if m in run["final_eval"]])
                     for m in metrics},
      "final_train_metrics": {m: summarize([run["final_train_metrics"][m] for run in per_seed
                                            if m in run["final_train_metrics"]]) for m in train_metrics},
      "eval_curves": mean_curves([run["eval_curves"] for run in per_seed], first["flops_per_step"]),
      "per_seed": per_seed,
  })
  if probe_data is not None:
    result.update({
        "probe_auc": summarize([run["probe"]["auc"] for run in per_seed]),
        "probe_at_init_auc": summarize([run["probe_at_init"]["auc"] for run in per_seed]),
        "probe_gain": summarize([run["probe"]["auc"] - run["probe_at_init"]["auc"] for run in per_seed]),
        # A run is above chance when its probe's 95% bootstrap interval (held-out sampling) excludes 0.5.
        "probe_above_chance": sum(bool(run["probe"]["auc_low"] > 0.5) for run in per_seed),
    })
  return result


# ---------------------------------------------------------------------------------------------
# The study.


def configured_train_flops(configs: Mapping[str, str], data_dir: str, gin_params: Sequence[str]) -> float:
  """The TRAIN_FLOPS every objective's config sets: they must agree, else the comparison is not at equal compute."""
  budgets = {}
  try:
    for name, config in configs.items():
      _parse(config, [f"DATA_DIR = {data_dir!r}"] + list(gin_params))
      budgets[name] = gin_utils.bound_value("pretrain.train_flops")
  finally:
    gin.clear_config()
  if None in budgets.values() or len(set(budgets.values())) != 1:
    raise ValueError(f"the configs' TRAIN_FLOPS differ or are unset ({budgets}): pass --train_flops")
  return float(next(iter(budgets.values())))


def compare(data_dir: str, train_flops: Optional[float], output_dir: str, objectives: Optional[Sequence[str]] = None,
            config_pattern: str = DEFAULT_CONFIG, gin_params: Sequence[str] = (), seeds: int = 3,
            eval_points: int = 5, eval_batches: Optional[int] = None, num_bootstrap: int = 1000, probe: bool = True,
            tasks: Sequence[str] = (), task_data_dir: Optional[str] = None, finetune_seeds: int = 3,
            finetune_train_examples: Optional[Mapping[str, int]] = None,
            finetune_gin_params: Sequence[str] = (),
            finetune_learning_rates: Sequence[float] = ()) -> Dict[str, object]:
  """Runs the study and writes results.md, results.json, curves.png (and finetune.png) into `output_dir`.

  `train_flops` None: the budget the configs set. `tasks` empty: pretraining only.
  """
  start = time.time()
  study_finetune.refuse_reserved(gin_params, RESERVED_BINDINGS, "--gin_param",
                                 "--data_dir, --train_flops, --seeds, --eval_points, --eval_batches")
  if seeds < 1 or eval_points < 1 or (eval_batches is not None and eval_batches < 1):
    raise ValueError(f"--seeds ({seeds}), --eval_points ({eval_points}) and --eval_batches ({eval_batches}) "
                     "must be >= 1")
  objectives = list(objectives or common.objective_names())
  data_dir = _absolute(data_dir)
  manifest = heldout_probe.heldout_manifest(data_dir)
  configs = {name: gin_utils.resolve_gin_file(config_pattern.format(objective=name)) for name in objectives}
  if train_flops is None:
    train_flops = configured_train_flops(configs, data_dir, gin_params)
  # The tasks' data is checked and cut before any training, so that a bad flag costs no pretraining.
  task_setups = []
  if tasks:
    study_finetune.check_arguments(tasks, task_data_dir, finetune_seeds, finetune_train_examples or {},
                                   finetune_gin_params, finetune_learning_rates)
    task_setups = [study_finetune.prepare_task(task, _absolute(task_data_dir), output_dir,
                                               (finetune_train_examples or {}).get(task), finetune_gin_params)
                   for task in tasks]
  probe_data = None
  if probe:
    probe_data = heldout_probe.corrupt_for_probe(heldout_probe.read_heldout_examples(data_dir),
                                                 manifest.special_token_ids, heldout_probe.SEED)
  results: Dict[str, object] = {
      "train_flops": train_flops, "config": config_pattern, "gin_params": list(gin_params), "num_seeds": seeds,
      "eval_points": eval_points,
      "data": {"source": data_dir, "settings_hash": manifest.settings_hash, "num_train": manifest.num_examples,
               "num_eval_examples": manifest.num_eval_examples, "num_eval_documents": manifest.num_eval_documents,
               "eval_shards": list(manifest.eval_shards)},
      "objectives": {},
  }
  if probe_data is not None:
    results["probe"] = {"replace_rate": heldout_probe.REPLACE_RATE, "l2": heldout_probe.L2,
                        "seed": heldout_probe.SEED, "features": "encoder sequence_output",
                        "fit_sequences": probe_data.fit_sequences,
                        "test_sequences": len(probe_data.input_ids) - probe_data.fit_sequences}
  to_train = sum(not is_finished(run_dir_of(output_dir, name, seed)) for name in objectives for seed in range(seeds))
  progress = study_timing.Progress("pretraining", to_train)
  try:
    for name in objectives:
      results["objectives"][name] = compare_one(name, configs[name], data_dir, manifest, train_flops, output_dir,
                                                gin_params, seeds, eval_points, eval_batches, probe_data,
                                                num_bootstrap, progress)
  finally:
    gin.clear_config()
  phases = {"pretraining": time.time() - start}
  if task_setups:
    tick = time.time()
    runs = {name: [one["run_dir"] for one in run["per_seed"]] for name, run in results["objectives"].items()}
    results["finetune"] = study_finetune.finetune_all(task_setups, runs, output_dir, finetune_seeds,
                                                      finetune_gin_params, finetune_learning_rates)
    phases["fine-tuning"] = time.time() - tick
  results["total_seconds"] = time.time() - start
  results["timings"] = study_report.timings(results, phases)
  results["machine"] = study_timing.machine()
  fileio.write_text_atomic(os.path.join(output_dir, "results.json"), json.dumps(results, indent=1) + "\n")
  report = study_report.markdown_report(results)
  fileio.write_text_atomic(os.path.join(output_dir, "results.md"), report)
  written = ["results.md", "results.json", "curves.png"]
  study_report.plot_curves(results, os.path.join(output_dir, "curves.png"))
  if task_setups:
    study_report.plot_finetuning(results, os.path.join(output_dir, "finetune.png"))
    written.append("finetune.png")
  print(report)
  print(f"total {results['total_seconds']:.0f} s; wrote {', '.join(os.path.join(output_dir, w) for w in written)}")
  return results


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("data_dir", None, "Pretraining data dir (data_prep output with a held-out split).",
                      flag_values=flag_values)
  flags.DEFINE_float("train_flops", None, "The training-FLOPs budget every objective gets (TRAIN_FLOPS; default: "
                     "the TRAIN_FLOPS of the configs, which must agree).", flag_values=flag_values)
  flags.DEFINE_string("output_dir", None, "Where the runs and the report go.", flag_values=flag_values)
  flags.DEFINE_list("objectives", common.objective_names(), "Objectives to compare, by registered name.",
                    flag_values=flag_values)
  flags.DEFINE_string("config", DEFAULT_CONFIG, "Gin file of each objective; {objective} is replaced by its name.",
                      flag_values=flag_values)
  flags.DEFINE_integer("seeds", 3, "Pretraining runs per objective, with SEED = 0, ..., seeds - 1.",
                       flag_values=flag_values)
  flags.DEFINE_integer("eval_points", 5, "Held-out evaluations per run (at most; the last at the last step): "
                       "EVAL_EVERY = ceil(steps / eval_points).", flag_values=flag_values)
  flags.DEFINE_integer("eval_batches", None, "Held-out batches per evaluation (EVAL_BATCHES; default: every "
                       "complete batch of the held-out split).", flag_values=flag_values)
  flags.DEFINE_boolean("probe", True, "Score every run (and its initialization) with the shared frozen-feature "
                       "probe (benchmarks.heldout_probe); --noprobe saves its time.", flag_values=flag_values)
  flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the test sequences for each probe's interval.",
                       flag_values=flag_values)
  flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied to every objective's config, e.g. "
                            "'BATCH_SIZE = 32' (not the ones this script sets).", flag_values=flag_values)
  flags.DEFINE_list("tasks", [], "Fine-tuning tasks (finetune/<task>.gin), e.g. conll03,trec: every pretraining "
                    "run and a from-scratch baseline are fine-tuned on each. Empty: pretraining only.",
                    flag_values=flag_values)
  flags.DEFINE_string("task_data_dir", None, "The tasks' --data_dir (python -m data_prep.embedded_tasks writes one).",
                      flag_values=flag_values)
  flags.DEFINE_integer("finetune_seeds", 3, "Fine-tuning seeds per pretraining run (fine-tuning SEED = 0, ...); "
                       "the from-scratch baseline gets seeds x finetune_seeds.", flag_values=flag_values)
  flags.DEFINE_list("finetune_train_examples", [], "task:N caps the task's train split at its first N examples "
                    "(CoNLL sentences, TSV rows), written into the study's own task dir; dev is unchanged.",
                    flag_values=flag_values)
  flags.DEFINE_multi_string("finetune_gin_param", [], "Gin bindings applied to every task's config, e.g. "
                            "'EPOCHS = 2' (not SEED or TASK).", flag_values=flag_values)
  flags.DEFINE_list("finetune_learning_rates", [], "Fine-tune every encoder (each objective's runs, each scratch "
                    "baseline) at each of these rates and report each at the rate with its best mean dev score, "
                    "e.g. 1e-3,3e-3. Empty: the recipe's LEARNING_RATE only.", flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors found before any run starts (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "data_dir", "output_dir")
  known = common.objective_names()
  unknown = [name for name in flag_values.objectives if name not in known and flag_values.config == DEFAULT_CONFIG]
  if unknown:
    raise ValueError(f"unknown objective(s) {unknown}; choose from {', '.join(known)}")


@cli_utils.one_line_errors(ValueError, OSError, trainer.NonFiniteLossError)
def run(flag_values: flags.FlagValues) -> int:
  check_flags(flag_values)
  compare(flag_values.data_dir, flag_values.train_flops, flag_values.output_dir, flag_values.objectives,
          flag_values.config, flag_values.gin_param, flag_values.seeds, flag_values.eval_points,
          flag_values.eval_batches, flag_values.bootstrap, flag_values.probe, flag_values.tasks,
          flag_values.task_data_dir, flag_values.finetune_seeds,
          study_finetune.parse_train_examples(flag_values.finetune_train_examples), flag_values.finetune_gin_param,
          study_finetune.parse_learning_rates(flag_values.finetune_learning_rates))
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.compare_objectives", check_flags)
