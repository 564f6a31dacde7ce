"""The fine-tuning half of the equal-compute study (benchmarks.compare_objectives --tasks).

Every pretraining run (objective x pretraining SEED) is fine-tuned on each task with
--finetune_seeds seeds (`runner.finetune` with finetune/<task>.gin, fine-tuning SEED = 0, 1, ...),
and each distinct encoder config among the objectives (as the runs' run.json record it: ALE shares
its layers, so it has its own) gets the from-scratch baseline (`from_scratch=True`: that config with
fresh weights drawn from the fine-tuning seed) with pretraining seeds x fine-tuning seeds seeds, so
a gain over scratch compares equal numbers of runs. Under <output_dir>/finetune/:

  features/                              every task's prepared features (one vocab: one cache)
  <task>/study_task.json                 the task's settings; a re-run under others is refused
  <task>/data/                           the task's files, train cut to --finetune_train_examples
  <task>/<objective>/pretrain_seed_<p>/  runner run dirs (seed_<k>/: fine-tuning seed k)
  <task>/scratch_<L>x<H>[_shared]_<hash>/  the from-scratch baseline of one encoder config

With --finetune_learning_rates every one of those is fine-tuned at each rate, in an `lr_<rate>/`
level under the objective or scratch group (`<task>/<objective>/lr_0.003/pretrain_seed_<p>/`), and
each encoder (objective or scratch group) is reported at the rate with the best mean dev score over
its runs: the recipe's learning rate is the one setting that papers choose per model on dev, and a
pretrained encoder and a fresh one need different rates (the from-scratch encoder diverges at rates
a pretrained one trains best at).

A fine-tuning seed with its metrics.json is never trained again (the runner skips it).
"""
import dataclasses
import hashlib
import json
import os
import time
from typing import Dict, List, Mapping, Optional, Sequence

import gin
import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import study_stats
from benchmarks import study_timing
from tpu_electra import fileio
from tpu_electra import gin_utils
from tpu_electra import runs as runs_lib
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import runner
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import task_base
from tpu_electra.finetuning import tasks as tasks_lib
from tpu_electra.finetuning import text_classification

# The study numbers the fine-tuning seeds itself (SEED = 0) and fixes each run dir's task.
RESERVED_BINDINGS = ("SEED", "finetune.seed", "TASK", "finetune.task")
# Set by --finetune_learning_rates when it is given.
LEARNING_RATE_BINDINGS = ("LEARNING_RATE", "create_finetuning_optimizer.learning_rate")
TASK_RECORD = "study_task.json"
# The objective every other one is compared with, when it is among those compared.
REFERENCE = "bert"


def refuse_reserved(bindings: Sequence[str], reserved: Sequence[str], flag: str, set_by: str) -> None:
  """Raises ValueError naming the first binding of a name in `reserved`."""
  for binding in bindings:
    for line in binding.splitlines():
      name = line.split("=", 1)[0].strip()
      if "=" in line and name in reserved:
        raise ValueError(f"{flag} {line.strip()!r}: {name} is set by this script ({set_by})")


def parse_train_examples(items: Sequence[str]) -> Dict[str, int]:
  """{task: N} from --finetune_train_examples' `task:N` items."""
  caps = {}
  for item in items:
    task, _, number = item.partition(":")
    if not number.strip().isdigit() or int(number) < 1 or task.strip() in caps:
      raise ValueError(f"--finetune_train_examples: {item!r} is not task:N with N >= 1 (each task once)")
    caps[task.strip()] = int(number)
  return caps


def parse_learning_rates(items: Sequence[str]) -> List[float]:
  """The --finetune_learning_rates grid, in the given order (each rate once, each > 0)."""
  rates = []
  for item in items:
    try:
      rate = float(item)
    except ValueError:
      rate = None
    if rate is None or not rate > 0 or rate in rates:
      raise ValueError(f"--finetune_learning_rates: {item!r} is not a learning rate > 0 (each rate once)")
    rates.append(rate)
  return rates


def rate_dir(rate: float) -> str:
  return f"lr_{rate:g}"


def task_gin(task: str) -> str:
  return f"finetune/{task}.gin"


def check_arguments(tasks: Sequence[str], task_data_dir: Optional[str], finetune_seeds: int,
                    train_examples: Mapping[str, int], gin_params: Sequence[str],
                    learning_rates: Sequence[float] = ()) -> None:
  if not task_data_dir:
    raise ValueError("--tasks needs --task_data_dir (python -m data_prep.embedded_tasks writes one)")
  if finetune_seeds < 1:
    raise ValueError(f"--finetune_seeds must be >= 1, got {finetune_seeds}")
  stray = sorted(set(train_examples) - set(tasks))
  if stray:
    raise ValueError(f"--finetune_train_examples names {stray}, which --tasks does not list")
  refuse_reserved(gin_params, RESERVED_BINDINGS, "--finetune_gin_param", "the fine-tuning seeds and the task")
  if learning_rates:
    refuse_reserved(gin_params, LEARNING_RATE_BINDINGS, "--finetune_gin_param", "--finetune_learning_rates")
  for task in tasks:
    gin_utils.resolve_gin_file(task_gin(task))


def _parse(task: str, gin_params: Sequence[str]) -> None:
  gin.clear_config()
  gin_utils.parse([task_gin(task)], ["SEED = 0"] + list(gin_params))


# ---------------------------------------------------------------------------------------------
# Task data, with the train split cut.


def example_ends(lines: Sequence[str], unit: str) -> List[int]:
  """For each example of a train file's lines, the index just past its last line.

  "rows": a TSV's non-empty lines after the header (text_classification's reader); "sentences":
  CoNLL sentences as tagging.parse_conll reads them (a blank or -DOCSTART- line ends one).
  """
  if unit == "rows":
    return [i + 1 for i in range(1, len(lines)) if lines[i].rstrip("\r\n")]
  ends, in_sentence = [], False
  for i, line in enumerate(lines):
    columns = line.split()
    boundary = not columns or columns[0] == tagging.DOCSTART
    if boundary and in_sentence:
      ends.append(i)
    in_sentence = not boundary
  if in_sentence:
    ends.append(len(lines))
  return ends


def cut_lines(lines: Sequence[str], unit: str, limit: int) -> List[str]:
  """The file's first lines up to the end of its `limit`-th example (all of them when it has fewer)."""
  ends = example_ends(lines, unit)
  return list(lines[:ends[limit - 1]]) if len(ends) > limit else list(lines)


def _unit(adapter: task_base.CachedFeaturesTask) -> Optional[str]:
  if isinstance(adapter, adapters.TaggingTask):
    return "sentences"
  if isinstance(adapter, adapters.TextClassificationTask):
    return "rows"
  return None


def _read_lines(path: str) -> List[str]:
  with fileio.open_text(path) as f:
    return f.read().splitlines(keepends=True)


def _read_json(path: str) -> Optional[Dict]:
  if not fileio.exists(path):
    return None
  with fileio.open_text(path) as f:
    return json.load(f)


def _check_labels(adapter: adapters.TextClassificationTask, train: Sequence[str], dev: Sequence[str],
                  train_examples: int) -> None:
  """The label set is the train file's (text_classification): a cut that loses a dev label would fail
  only at the first fine-tuning, after all the pretraining."""
  def labels(lines, split):
    return {row.label for row in text_classification.iter_rows(lines, adapter.text_column, adapter.label_column,
                                                                source=split)}
  missing = sorted(labels(dev, adapter.dev_file) - labels(train, adapter.train_file))
  if missing:
    raise ValueError(f"--finetune_train_examples: the first {train_examples} rows of {adapter.train_file} lack the "
                     f"dev label(s) {', '.join(missing)}; keep more rows")


@dataclasses.dataclass
class TaskSetup:
  name: str
  data_dir: str  # What runner.finetune reads: the study's cut copy, or the given dir.
  record: Dict  # The settings (TASK_RECORD) and what was cut.


def prepare_task(task: str, source_dir: str, output_dir: str, train_examples: Optional[int],
                 gin_params: Sequence[str]) -> TaskSetup:
  """Checks the task's files and, with `train_examples`, writes the cut copy once (each file atomically)."""
  try:
    _parse(task, gin_params)
    adapter = tasks_lib.get_task(gin.get_bindings(runner.finetune)["task"])
  finally:
    gin.clear_config()
  sources = adapter.input_files(source_dir)
  for path in sources.values():
    if not fileio.exists(path):
      raise FileNotFoundError(f"{path} does not exist (--task_data_dir)")
  unit = _unit(adapter)
  if train_examples and unit is None:
    raise ValueError(f"--finetune_train_examples: {task}'s train split is neither CoNLL sentences nor TSV rows")
  settings = {"task": task, "gin_file": task_gin(task), "gin_params": list(gin_params),
              "train_examples": train_examples,
              "source_sha256": {split: fileio.file_sha256(path) for split, path in sources.items()}}
  task_dir = os.path.join(output_dir, "finetune", task)
  record_path = os.path.join(task_dir, TASK_RECORD)
  record = _read_json(record_path)
  if record is not None and {k: record.get(k) for k in settings} != settings:
    raise ValueError(f"{task_dir} was fine-tuned under other settings ({record_path}); use another --output_dir")
  data_dir = os.path.join(task_dir, "data") if train_examples else source_dir
  files = {"train": os.path.join(data_dir, adapter.train_file), "dev": os.path.join(data_dir, adapter.dev_file)}
  if record is None or not all(fileio.exists(path) for path in files.values()):
    lines = {split: _read_lines(path) for split, path in sources.items()}
    data = {"unit": unit, "source_dir": source_dir, "train_file": adapter.train_file, "dev_file": adapter.dev_file}
    if unit:
      total = len(example_ends(lines["train"], unit))
      data.update(train_kept=min(train_examples or total, total), train_total=total,
                  dev_total=len(example_ends(lines["dev"], unit)))
    if train_examples:
      train = cut_lines(lines["train"], unit, train_examples)
      if unit == "rows":
        _check_labels(adapter, train, lines["dev"], train_examples)
      fileio.write_text_atomic(files["dev"], "".join(lines["dev"]))
      fileio.write_text_atomic(files["train"], "".join(train))
    # Written last: a study killed while copying finds no record and copies again.
    record = dict(settings, data=data)
    fileio.write_text_atomic(record_path, json.dumps(record, indent=1) + "\n")
  return TaskSetup(task, data_dir, record)


# ---------------------------------------------------------------------------------------------
# Fine-tuning.


def scratch_groups(runs: Mapping[str, Sequence[str]]) -> Dict[str, Dict]:
  """The objectives grouped by the encoder config their runs recorded, as {"scratch_<L>x<H>[_shared]_<hash>": group}."""
  groups: Dict[str, Dict] = {}
  for objective, run_dirs in runs.items():
    config = runs_lib.read_run(run_dirs[0]).info["encoder_config"]
    # Readable (layers x width, shared layers), and the hash tells apart configs that differ elsewhere.
    key = (f"scratch_{config['num_layers']}x{config['hidden_size']}{'_shared' if config.get('share_layers') else ''}_"
           + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:6])
    # The baseline reads only the init run's config and vocab (never its weights): any run of the group does.
    group = groups.setdefault(key, {"objectives": [], "encoder_config": config, "init_checkpoint": run_dirs[0]})
    group["objectives"].append(objective)
  return groups


@dataclasses.dataclass
class Job:
  """One runner.finetune call: `num_seeds` fine-tuning seeds of one init in one run dir."""
  task: TaskSetup
  name: str  # The objective, or the scratch group.
  pretrain_seed: Optional[int]
  init_checkpoint: str
  model_dir: str
  num_seeds: int
  from_scratch: bool
  learning_rate: Optional[float] = None  # None: the recipe's own.

  def label(self) -> str:
    seed = "" if self.pretrain_seed is None else f" pretraining seed {self.pretrain_seed}"
    rate = "" if self.learning_rate is None else f" at learning rate {self.learning_rate:g}"
    return f"{self.task.name}: {self.name}{seed}{rate}, {self.num_seeds} fine-tuning seed(s)"

  def to_compute(self) -> int:
    return sum(not fileio.exists(os.path.join(self.model_dir, f"seed_{k}", "metrics.json"))
               for k in range(self.num_seeds))


def _run(job: Job, features_dir: str, gin_params: Sequence[str], progress: study_timing.Progress) -> Dict:
  """The job's runner results: reads them back when every seed is done, else fine-tunes what is missing."""
  to_compute = job.to_compute()
  done = _read_json(os.path.join(job.model_dir, "results.json"))
  if not to_compute and done and done["seeds"] == list(range(job.num_seeds)):
    progress.reused(job.label())
    return done
  progress.started(job.label(), to_compute)
  start = time.time()
  try:
    rate = [] if job.learning_rate is None else [f"LEARNING_RATE = {job.learning_rate!r}"]
    _parse(job.task.name, list(gin_params) + rate)
    results = runner.finetune(init_checkpoint=job.init_checkpoint, data_dir=job.task.data_dir,
                              model_dir=job.model_dir, num_seeds=job.num_seeds, feature_cache_dir=features_dir,
                              from_scratch=job.from_scratch)
  finally:
    gin.clear_config()
    tf.keras.backend.clear_session()
  progress.finished(job.label(), to_compute, time.time() - start)
  return results


def _scores(results: Dict, pretrain_seed: Optional[int]) -> List[Dict]:
  primary = results["primary_metric"]
  return [{"pretrain_seed": pretrain_seed, "finetune_seed": entry["seed"], "score": entry["metrics"][primary],
           "seconds": entry["timings"]["total_s"], "metrics": entry["metrics"]} for entry in results["per_seed"]]


def choose_rate(scores_by_rate: Mapping[Optional[float], Sequence[float]]) -> Optional[float]:
  """The rate whose runs have the highest mean dev score (the first of the grid on a tie)."""
  return max(scores_by_rate, key=lambda rate: float(np.mean(scores_by_rate[rate])))


def _side(runs_by_rate: Mapping[Optional[float], List[Dict]]) -> Dict:
  """One encoder's entry: its runs at the chosen rate, their summary, and every rate's summary."""
  by_rate = {rate: [run["score"] for run in runs] for rate, runs in runs_by_rate.items()}
  chosen = choose_rate(by_rate)
  return {"score": study_stats.summarize(by_rate[chosen]), "runs": runs_by_rate[chosen], "learning_rate": chosen,
          "by_learning_rate": {f"{rate:g}": study_stats.summarize(v) for rate, v in by_rate.items() if rate is not None},
          "runs_at_other_rates": [run for rate, runs in runs_by_rate.items() if rate != chosen for run in runs]}


def finetune_all(setups: Sequence[TaskSetup], runs: Mapping[str, Sequence[str]], output_dir: str,
                 finetune_seeds: int, gin_params: Sequence[str], learning_rates: Sequence[float] = ()) -> Dict:
  """Fine-tunes every run in `runs` ({objective: pretraining run dir per seed}) and the baselines on
  every task (at each of `learning_rates`, or at the recipe's rate); returns the run-level scores, the
  means, the gains over scratch and the differences to the reference objective, each with its 95%
  interval, every encoder at its best rate on dev."""
  groups = scratch_groups(runs)
  num_pretrain_seeds = len(next(iter(runs.values())))
  rates: List[Optional[float]] = list(learning_rates) or [None]

  def job_dir(task_dir: str, name: str, rate: Optional[float], *rest: str) -> str:
    return os.path.join(task_dir, name, *([] if rate is None else [rate_dir(rate)]), *rest)

  jobs = []
  for setup in setups:
    task_dir = os.path.join(output_dir, "finetune", setup.name)
    for rate in rates:
      for objective, run_dirs in runs.items():
        jobs += [Job(setup, objective, p, run_dir, job_dir(task_dir, objective, rate, f"pretrain_seed_{p}"),
                     finetune_seeds, False, rate) for p, run_dir in enumerate(run_dirs)]
      jobs += [Job(setup, key, None, group["init_checkpoint"], job_dir(task_dir, key, rate),
                   num_pretrain_seeds * finetune_seeds, True, rate) for key, group in groups.items()]
  progress = study_timing.Progress("fine-tuning", sum(job.to_compute() for job in jobs))
  features_dir = os.path.join(output_dir, "finetune", "features")
  scores: Dict[str, Dict[str, Dict[Optional[float], List[Dict]]]] = {}
  primary: Dict[str, str] = {}
  for job in jobs:
    results = _run(job, features_dir, gin_params, progress)
    primary[job.task.name] = results["primary_metric"]
    by_rate = scores.setdefault(job.task.name, {}).setdefault(job.name, {})
    by_rate.setdefault(job.learning_rate, []).extend(_scores(results, job.pretrain_seed))

  reference = REFERENCE if REFERENCE in runs else next(iter(runs))
  group_of = {objective: key for key, group in groups.items() for objective in group["objectives"]}
  per_task = {}
  for setup in setups:
    sides = {name: _side(by_rate) for name, by_rate in scores[setup.name].items()}
    values = {name: side["score"]["values"] for name, side in sides.items()}
    per_task[setup.name] = {
        "primary_metric": primary[setup.name],
        "data": setup.record["data"],
        "pretrained": {o: sides[o] for o in runs},
        "scratch": {key: sides[key] for key in groups},
        "gain_over_scratch": {o: study_stats.welch(values[o], values[group_of[o]]) for o in runs},
        "minus_reference": {o: study_stats.welch(values[o], values[reference]) for o in runs if o != reference},
    }
  return {"tasks": per_task, "num_finetune_seeds": finetune_seeds, "num_pretrain_seeds": num_pretrain_seeds,
          "gin_params": list(gin_params), "learning_rates": list(learning_rates), "reference": reference,
          "scratch_groups": groups, "features_dir": features_dir}
