"""Fine-tuning runs: one seed (train, evaluate, keep curves), N seeds, and the run's reports.

A run directory holds, per seed, `seed_<seed>/metrics.json` (final and best metrics, learning curves,
timings), `seed_<seed>/final` (the fine-tuned model and its `encoder`, a tf.train.Checkpoint),
`seed_<seed>/best` with `keep_best`, and any prediction files the task writes (SQuAD answers); and for
the whole run `run.json` (tpu_electra.runs: task, seed and seeds, the pretrained checkpoint and its encoder
config, the feature cache, the training arguments; written before training), `results.json`,
`results.md`, `learning_curves.png` and `operative_config.gin`.
Re-running the same command skips seeds whose `metrics.json` exists, so a preempted run resumes.

Seeds: the run's base seed (the `SEED` macro of finetune/base.gin, default 0) gives the k-th of
`--seeds=N` fine-tunings the seed SEED + k (`run_seeds`), and that seed alone decides everything
random in it: the task head's initial weights, dropout and the order of the training data
(`seeding.seed_everything` before the model is built; the shuffle is seeded with it). Its directory
is `seed_<seed>`, so the same command gives bit-identical checkpoints on CPU, a seed trains the same
whatever ran before it in the process (a resumed run that skips seed_0 trains seed_1 as the
uninterrupted run does), and a run with another SEED in the same --model_dir never takes another
seed's results for its own.

From scratch (`finetune(..., from_scratch=True)`, `--from_scratch`): the no-pretraining baseline. The
encoder is the init run's (its run.json EncoderConfig and its vocab, as for any fine-tuning) with the
fresh weights its initializers draw right after `seed_everything(seed)`, so they too are a function
of the fine-tuning seed; the init run's checkpoint is never read. run.json, results.json, each seed's
metrics.json ("from_scratch") and results.md say so.

Data: the task's features are prepared once into the feature cache (`feature_cache`, keyed by the
task files, vocab, casing, sequence length and task settings) and streamed from its shards by every
run and seed: training reads each host's share, shuffled with the seed; evaluation reads each split
in order. With `train_and_evaluate.length_buckets` (off by default) both group rows by length into a
few bucket lengths and run each batch at its bucket's length (`feature_streams.bucket_lengths`).

Training: AdamW with warmup and linear decay and layer-wise learning-rate decay
(`tpu_electra.training.layerwise_decay`), the step and the loop of `tpu_electra.training.trainer`
(`make_train_loop`, `run_loop`: pretraining's NaN guard, timing and log lines). Evaluation runs after
every epoch (or only at the end with `eval_every_epoch=False`); rows are padded to whole batches so
every step has one of a few static shapes (TPU), and padding rows are dropped before scoring.
"""
import dataclasses
import functools
import inspect
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gin
from absl import logging
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra.finetuning import feature_cache
from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import plots
from tpu_electra.finetuning import prediction
from tpu_electra.finetuning import report
from tpu_electra.finetuning import task_base
from tpu_electra.finetuning import tasks as tasks_lib
from tpu_electra.training import layerwise_decay
from tpu_electra.training import seeding
from tpu_electra.training import strategy as strategy_lib
from tpu_electra.training import trainer


def _train_dataset(split: feature_streams.SplitFeatures, global_batch_size: int, seed: int, length_buckets: bool,
                   shuffle_buffer_bytes: int = feature_streams.SHUFFLE_BUFFER_BYTES):
  """The training stream of `split` for each input pipeline: order a function of `seed`, batches
  grouped by length with `length_buckets`."""
  def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
    per_replica = input_context.get_per_replica_batch_size(global_batch_size)
    return feature_streams.training_dataset(split, per_replica, seed, input_context, shuffle_buffer_bytes,
                                          lengths=prediction.bucket_lengths(split, length_buckets))
  return dataset_fn


def evaluate(task_data: task_base.TaskData, predictor: prediction.Predictor):
  """(flattened metrics, {eval name: {metric: value}}, {eval name: files}) over every eval set."""
  per_eval, files = {}, {}
  for eval_set in task_data.evals:
    metrics, eval_files = eval_set.score(predictor(eval_set.features))
    per_eval[eval_set.name] = {k: float(v) for k, v in metrics.items()}
    files[eval_set.name] = eval_files
  return task_base.flatten_metrics(per_eval), per_eval, files


def eval_points(num_train: int, batch_size: int, epochs: float, train_steps: int, every_epoch: bool) -> List[int]:
  """Steps after which to evaluate: each whole epoch's end (if asked) and the last step."""
  points = set()
  if every_epoch:
    for epoch in range(1, int(math.floor(epochs)) + 1):
      points.add(min(train_steps, max(1, int(round(epoch * num_train / batch_size)))))
  points.add(train_steps)
  return sorted(points)


@gin.configurable(denylist=["task_data", "run", "strategy", "seed", "seed_dir", "from_scratch"])
def train_and_evaluate(task_data: task_base.TaskData,
                       run: runs.PretrainingRun,
                       strategy: tf.distribute.Strategy,
                       seed: int,
                       seed_dir: str,
                       from_scratch: bool,
                       batch_size: int = gin.REQUIRED,
                       epochs: float = gin.REQUIRED,
                       eval_batch_size: Optional[int] = None,
                       dropout_rate: float = 0.1,
                       eval_every_epoch: bool = True,
                       keep_best: bool = False,
                       steps_per_loop: int = 100,
                       max_train_steps: Optional[int] = None,
                       jit_compile: bool = False,
                       length_buckets: bool = False,
                       save_final_checkpoint: bool = True,
                       log_every_secs: float = 10.0) -> Dict[str, Any]:
  """Fine-tunes one seed from the pretrained encoder and evaluates it; returns its record.

  With `from_scratch` the encoder is `run`'s, of its shape, with the fresh weights `seed` draws
  (`runs.fresh_encoder`): the run's checkpoint is not read.

  Train steps are int(examples × epochs / batch_size) as in ELECTRA, capped by `max_train_steps`
  (smoke runs). With `length_buckets` (on in finetune/base.gin), training and evaluation read
  batches grouped by length into a few bucket lengths (`feature_streams.bucket_lengths`: 16, 32, 64,
  ... up to the task's sequence length), each at its bucket's length instead of the full one:
  evaluation gives the same outputs within float noise, training sees other batches (rows of similar
  length together, in an order still a function of `seed` alone). With `keep_best`, the model at
  the best evaluation (by the task's primary metric) is saved in `seed_dir/best` and its metrics
  are the seed's reported metrics (TEAMS reports the best GLUE evaluation); otherwise the metrics
  after the last step are reported. Both are kept in the record.
  """
  timings: Dict[str, float] = {}
  start = time.time()
  seeding.seed_everything(seed)
  train_steps = max(1, int(task_data.num_train * epochs / batch_size))
  if max_train_steps:
    train_steps = min(train_steps, max_train_steps)
  iterator, model, optimizer = _build_training(task_data, run, strategy, seed, from_scratch, batch_size, train_steps,
                                               dropout_rate, length_buckets)
  timings["build_and_restore_s"] = time.time() - start

  predictor = prediction.Predictor(model, strategy, eval_batch_size or batch_size, length_buckets)
  evaluations = _Evaluations(task_data, predictor, batch_size, seed_dir, keep_best)

  def save_final(step: int) -> None:  # pylint: disable=unused-argument
    tf.train.Checkpoint(model=model, encoder=model.encoder).write(os.path.join(seed_dir, "final", "model"))

  result = trainer.run_loop(
      trainer.make_train_loop(model, optimizer, strategy, jit_compile=jit_compile), iterator, optimizer,
      start_step=0, train_steps=train_steps, global_batch_size=batch_size, steps_per_loop=steps_per_loop,
      log_every_secs=log_every_secs, evaluate=evaluations,
      eval_at=trainer.EventSteps(steps=eval_points(task_data.num_train, batch_size, epochs, train_steps, eval_every_epoch)),
      save=save_final if save_final_checkpoint else None, record_curve=True, log_prefix=f"seed {seed}: ",
      failure_hint=lambda: "; lower the learning rate")
  _write_eval_files(seed_dir, evaluations.last["files"])
  timings.update({
      "train_steps": train_steps,
      "first_loop_s": result.first_loop_s,
      "train_s": result.train_s,
      "eval_s": result.eval_s,
      "total_s": time.time() - start,
  })
  if result.steps_per_s is not None:
    # Steps after the first loop, whose time includes tracing.
    timings["steps_per_s"] = result.steps_per_s
  return _seed_record(seed, from_scratch, keep_best, evaluations, result.curve, timings)


def _build_training(task_data: task_base.TaskData, run: runs.PretrainingRun, strategy: tf.distribute.Strategy,
                    seed: int, from_scratch: bool, batch_size: int, train_steps: int, dropout_rate: float,
                    length_buckets: bool):
  """(training batch iterator, model, optimizer), every variable built. Call it right after
  `seed_everything(seed)`: the data order, a fresh encoder and the head draw from it in this order."""
  iterator = iter(strategy.distribute_datasets_from_function(
      _train_dataset(task_data.train, batch_size, seed, length_buckets)))
  first_batch = next(iterator)
  with strategy.scope():
    # Drawn after seed_everything(seed): a fresh encoder's weights are a function of the seed.
    encoder = runs.fresh_encoder(run) if from_scratch else runs.load_encoder(run)
    model = task_data.build_model(encoder, dropout_rate=dropout_rate)
  strategy.run(lambda batch: model(batch, training=False), args=(first_batch,))
  with strategy.scope():
    optimizer = layerwise_decay.create_finetuning_optimizer(model, encoder, train_steps)
  trainer.build_variables(model, optimizer, strategy, first_batch)
  return iterator, model, optimizer


@dataclasses.dataclass
class _Evaluations:
  """The `evaluate` of one seed's training loop: keeps every evaluation's metrics (`curve`), the last
  one with its prediction files, and the best by the task's primary metric, whose model `keep_best`
  saves in `seed_dir/best` while it is still that model."""
  task_data: task_base.TaskData
  predictor: prediction.Predictor
  batch_size: int
  seed_dir: str
  keep_best: bool
  curve: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
  best: Optional[Dict[str, Any]] = None
  last: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __call__(self, step: int) -> Dict[str, float]:
    task_data = self.task_data
    metrics, per_eval, files = evaluate(task_data, self.predictor)
    self.curve.append({"step": step, "epoch": step * self.batch_size / task_data.num_train, "metrics": metrics})
    self.last.update(step=step, metrics=metrics, per_eval=per_eval, files=files)
    primary = metrics.get(task_data.primary_metric)
    if primary is not None and (self.best is None or primary > self.best["metrics"][task_data.primary_metric]):
      self.best = {"step": step, "metrics": metrics, "per_eval": per_eval}
      if self.keep_best:
        tf.train.Checkpoint(model=self.predictor.model).write(os.path.join(self.seed_dir, "best", "model"))
    return metrics


def _write_eval_files(seed_dir: str, files: Dict[str, Dict[str, Any]]) -> None:
  """The last evaluation's prediction files, named after their eval set when the task has several."""
  for eval_name, eval_files in files.items():
    for file_name, content in eval_files.items():
      prefix = "" if len(files) == 1 else f"{eval_name}_"
      report.write_json(os.path.join(seed_dir, prefix + file_name), content)


def _seed_record(seed: int, from_scratch: bool, keep_best: bool, evaluations: _Evaluations,
                 train_curve: List[Dict[str, Any]], timings: Dict[str, float]) -> Dict[str, Any]:
  """The seed's metrics.json."""
  last, best = evaluations.last, evaluations.best
  final = {"step": last["step"], "metrics": last["metrics"], "per_eval": last["per_eval"]}
  reported = best if keep_best and best is not None else final
  return {
      "seed": seed,
      "from_scratch": from_scratch,
      "metrics": reported["metrics"],
      "per_eval": reported["per_eval"],
      "reported_step": reported["step"],
      "final_metrics": final["metrics"],
      "best_metrics": best["metrics"] if best else None,
      "best_step": best["step"] if best else None,
      "train_curve": train_curve,
      "eval_curve": evaluations.curve,
      "timings": timings,
  }


def _read_json(path: str):
  import json  # pylint: disable=g-import-not-at-top
  with fileio.open_text(path) as f:
    return json.load(f)


MAX_SEED = 2**32 - 1  # NumPy's global generator takes seeds in [0, 2**32).


def run_seeds(seed: int, num_seeds: int) -> List[int]:
  """The seeds of a run's `num_seeds` fine-tunings from its base seed (SEED): SEED + k for k < num_seeds."""
  if num_seeds < 1:
    raise ValueError(f"--seeds must be >= 1, got {num_seeds}")
  if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0 or seed + num_seeds - 1 > MAX_SEED:
    raise ValueError(f"SEED must be an integer with 0 <= SEED and SEED + --seeds - 1 <= {MAX_SEED}, "
                     f"got SEED = {seed!r} with --seeds={num_seeds}")
  return [seed + k for k in range(num_seeds)]


def _dirs_made_by_creating(path: str) -> List[str]:
  """The directories that creating `path` makes, deepest first: `path` and its missing parents (a URL:
  only `path`, as an object store has no parents to make)."""
  made = []
  while path and not fileio.exists(path):
    made.append(path)
    parent = os.path.dirname(os.path.normpath(path))
    if fileio.is_url(path) or parent == path:
      break
    path = parent
  return made


def _remove_if_empty(directories: List[str]) -> None:
  """Removes `directories` (deepest first) as long as they are empty."""
  for directory in directories:
    try:
      if not fileio.isdir(directory) or fileio.listdir(directory):
        return
      if fileio.is_url(directory):
        fileio.rmtree(directory)
      else:
        os.rmdir(directory)  # Refuses a directory something was written into meanwhile.
    except fileio.errors():
      return  # Cleaning up must never hide the error that stopped the command.


def _no_empty_dir_on_failure(argument: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
  """Decorates a function that creates the output dir its `argument` names first thing (so that an
  unusable one fails before any work): when the function fails, what creating the dir made and is
  still empty is removed again (a wrong --data_dir, a bad checkpoint), so a failed command leaves no
  empty run dir behind. A dir that holds anything, e.g. a run.json, is kept."""
  def decorate(function):
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
      made = _dirs_made_by_creating(signature.bind(*args, **kwargs).arguments[argument])
      try:
        return function(*args, **kwargs)
      except BaseException:
        _remove_if_empty(made)
        raise
    return wrapper
  return decorate


@gin.configurable(denylist=["init_checkpoint", "data_dir", "model_dir", "num_seeds", "vocab", "vocab_type",
                            "do_lower_case", "feature_cache_dir", "from_scratch"])
@_no_empty_dir_on_failure("model_dir")
def finetune(init_checkpoint: str,
             data_dir: str,
             model_dir: str,
             num_seeds: int = 1,
             vocab: Optional[str] = None,
             vocab_type: Optional[str] = None,
             do_lower_case: Optional[bool] = None,
             feature_cache_dir: Optional[str] = None,
             from_scratch: bool = False,
             task: str = gin.REQUIRED,
             max_seq_length: int = gin.REQUIRED,
             seed: int = 0,
             precision: str = "float32",
             verify_feature_checksums: bool = True) -> Dict[str, Any]:
  """Fine-tunes `num_seeds` seeds of `task` from a pretraining model dir and writes the reports.

  `seed` is the base seed (SEED); the seeds fine-tuned are `run_seeds(seed, num_seeds)`. The task's
  features are prepared once into `feature_cache_dir` (default: `<data_dir>/tpu_electra_features`, or
  the user's cache dir when the data dir is read-only) and reused by every later run; a cache is
  checked against its index (sizes, and CRC32s unless `verify_feature_checksums` is False) and
  rebuilt with a warning when it does not match.

  With `from_scratch`, each seed fine-tunes `init_checkpoint`'s encoder (the EncoderConfig its run.json
  records, its vocab) from fresh weights drawn from that seed instead of the pretrained ones: the
  "no pretraining" baseline of the same recipe. Its run.json, results.json and results.md say so; a
  --model_dir that holds the other kind of run is refused, so the two are never mixed.
  """
  seeds = run_seeds(seed, num_seeds)
  strategy_lib.set_precision(precision)
  fileio.make_output_dir(model_dir)
  _check_same_kind(model_dir, from_scratch)
  run = runs.read_run(init_checkpoint)
  encoder_config = run.encoder_config()
  if max_seq_length > encoder_config.max_position_embeddings:
    raise ValueError(f"max_seq_length={max_seq_length} exceeds the pretrained model's max_position_embeddings="
                     f"{encoder_config.max_position_embeddings}")
  tokenizer = runs.load_tokenizer(run, vocab, vocab_type, do_lower_case)
  task_adapter = tasks_lib.get_task(task)

  task_data, prepare_seconds = _prepare_task_data(task_adapter, data_dir, tokenizer, max_seq_length,
                                                  feature_cache_dir, verify_feature_checksums)

  runs.write_record(model_dir, runs.finetuning_record(
      task=task_data.name, seed=seed, seeds=seeds, init_checkpoint=run.checkpoint, encoder_config=encoder_config,
      max_seq_length=max_seq_length, precision=precision, from_scratch=from_scratch,
      features=dict(task_data.features), data_dir=data_dir, train_and_evaluate=_arguments(train_and_evaluate),
      create_finetuning_optimizer=_arguments(layerwise_decay.create_finetuning_optimizer),
      # What export needs to rebuild the head and the tokenizer: the label names in label-id order
      # (None: regression, or labels kept in the feature cache), and the vocab as passed (None: the
      # pretraining run's) with the type and casing actually used.
      label_list=_label_list(task_adapter, task_data),
      # What serving needs beyond the head: SQuAD's windowing and decoding arguments, RACE's options.
      task_serving=dict(task_data.serving),
      tokenizer={"vocab": vocab, "vocab_type": getattr(tokenizer, "vocab_type", vocab_type),
                 "do_lower_case": getattr(tokenizer, "do_lower_case", do_lower_case)}))
  strategy = strategy_lib.get_strategy()
  logging.info("SEED=%d: fine-tuning %s with seed(s) %s (seed k = SEED + k).", seed, task_data.name,
               ", ".join(str(s) for s in seeds))
  if from_scratch:
    logging.info("From scratch: the encoder of %s (its run.json EncoderConfig and vocab) with fresh weights drawn "
                 "from each seed; its checkpoint is not read.", run.model_dir)
  records = _finetune_seeds(task_data, run, strategy, model_dir, seed, seeds, from_scratch)
  results = summarize(task_data, run, records, hyperparameters={
      "task": task_data.name, "max_seq_length": max_seq_length, "precision": precision,
      "num_train_rows": task_data.num_train, "seed": seed}, prepare_seconds=prepare_seconds, from_scratch=from_scratch)
  write_reports(model_dir, results, records, task_data.primary_metric)
  fileio.write_text_atomic(os.path.join(model_dir, trainer.OPERATIVE_CONFIG_NAME), gin.operative_config_str())
  return results


def _prepare_task_data(task_adapter, data_dir: str, tokenizer, max_seq_length: int, cache_dir: Optional[str],
                       verify_checksums: bool) -> Tuple[task_base.TaskData, float]:
  """The task's data from its feature cache (built there first if missing), and the seconds it took."""
  tick = time.time()
  task_data = task_adapter.prepare(data_dir, tokenizer, max_seq_length, cache_dir=cache_dir,
                                   verify_checksums=verify_checksums)
  prepare_seconds = time.time() - tick
  logging.info("%s: %d training rows, eval %s, features %s (%s) in %.1f s", task_data.name, task_data.num_train,
               {e.name: e.num_rows for e in task_data.evals},
               "prepared" if task_data.features.get("source") == "built" else "reused",
               task_data.features.get("dir"), prepare_seconds)
  return task_data, prepare_seconds


def _finetune_seeds(task_data: task_base.TaskData, run: runs.PretrainingRun, strategy: tf.distribute.Strategy,
                    model_dir: str, seed: int, seeds: List[int], from_scratch: bool) -> List[Dict[str, Any]]:
  """Each seed's record, fine-tuning the seeds that have none yet; a seed's metrics.json is written as
  soon as it finishes, so that a preempted run resumes after it."""
  records = []
  for k, run_seed in enumerate(seeds):
    seed_dir = os.path.join(model_dir, f"seed_{run_seed}")
    metrics_path = os.path.join(seed_dir, "metrics.json")
    if fileio.exists(metrics_path):
      logging.info("seed %d already done (%s): skipped", run_seed, metrics_path)
      records.append(_read_json(metrics_path))
      continue
    logging.info("seed %d (SEED=%d + %d, %d of %d) -> %s", run_seed, seed, k, k + 1, len(seeds), seed_dir)
    record = train_and_evaluate(task_data, run, strategy, run_seed, seed_dir, from_scratch)
    report.write_json(metrics_path, record)
    records.append(record)
  return records


def _check_same_kind(model_dir: str, from_scratch: bool) -> None:
  """Refuses a --model_dir whose earlier fine-tuning is of the other kind (from scratch or pretrained):
  its finished seeds would be skipped and reported as this run's."""
  info = runs.read_record(model_dir)
  if info and info.get("kind") == runs.FINETUNING and bool(info.get("from_scratch")) != from_scratch:
    raise ValueError(f"{model_dir!r} holds a fine-tuning {_kind(not from_scratch)} (its run.json); this one is "
                     f"{_kind(from_scratch)}: use another --model_dir")


def _kind(from_scratch: bool) -> str:
  return "from scratch" if from_scratch else "from the pretrained weights"


def _label_list(task_adapter, task_data: task_base.TaskData) -> Optional[List[str]]:
  """The label names in label-id order: a GLUE task's, or those its feature cache lists (tagging);
  None for regression, SQuAD and RACE."""
  glue_task = getattr(task_adapter, "task", None)
  labels = getattr(glue_task, "label_list", None)
  if labels is None and task_data.features.get("dir"):
    index = feature_cache._read_index(task_data.features["dir"])  # pylint: disable=protected-access
    labels = (index or {}).get("info", {}).get("label_list")
  return list(labels) if labels is not None else None


def _arguments(configurable) -> Dict[str, Any]:
  """A gin configurable's keyword arguments as a call now gets them: its defaults, then its gin bindings.

  Arguments its callers pass (denylisted) and required ones left unbound are not listed; a value JSON
  cannot hold is written as its repr.
  """
  signature = inspect.signature(configurable)
  values = {name: p.default for name, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and p.default is not gin.REQUIRED}
  try:
    values.update(gin.get_bindings(configurable))
  except ValueError:  # Not registered with gin in this process: its defaults.
    pass
  plain = (str, int, float, bool, type(None), list, tuple, dict)
  return {name: value if isinstance(value, plain) else repr(value) for name, value in sorted(values.items())}


def summarize(task_data: task_base.TaskData, run: runs.PretrainingRun, records: List[Dict[str, Any]],
              hyperparameters: Dict[str, Any], prepare_seconds: float, from_scratch: bool) -> Dict[str, Any]:
  """The run's results: per-seed metrics, their statistics over seeds, and (GLUE) the GLUE view.

  `init_checkpoint` is the pretraining run the encoder came from: its weights, or with `from_scratch`
  only its shape and vocab.
  """
  results: Dict[str, Any] = {
      "task": task_data.name,
      "init_checkpoint": run.checkpoint,
      "from_scratch": from_scratch,
      "hyperparameters": hyperparameters,
      "primary_metric": task_data.primary_metric,
      "seeds": [r["seed"] for r in records],
      "per_seed": [{"seed": r["seed"], "metrics": r["metrics"], "per_eval": r["per_eval"],
                    "step": r["reported_step"], "timings": r["timings"]} for r in records],
      "aggregate": report.aggregate_seeds([r["metrics"] for r in records]),
      "prepare_s": prepare_seconds,
      "data_stats": task_data.stats,
      "features": dict(task_data.features),
  }
  if task_data.name in glue.TASKS:
    per_key: Dict[str, List[Dict[str, float]]] = {}
    for record in records:
      for key, metrics in record["per_eval"].items():
        per_key.setdefault(key, []).append(metrics)
    results["glue"] = report.glue_report(per_key, statistic="mean")
  return results


@_no_empty_dir_on_failure("output_dir")
def glue_summary(run_dirs: List[str], output_dir: str, statistic: str = "median") -> Dict[str, Any]:
  """Combines the results.json of GLUE task runs into the GLUE report (both summary numbers).

  Writes `glue_results.json` and `glue_results.md` into `output_dir`; a task given twice is an
  error, a task missing leaves the summaries it feeds at None with the gap listed. The runs must be
  all from scratch or all from pretrained weights; the report says which.
  """
  fileio.make_output_dir(output_dir)
  per_key: Dict[str, List[Dict[str, float]]] = {}
  sources: Dict[str, str] = {}
  by_kind: Dict[bool, str] = {}
  for run_dir in run_dirs:
    path = os.path.join(run_dir, "results.json")
    if not fileio.exists(path):
      raise ValueError(f"no results.json in {run_dir!r}: finish that fine-tuning run first")
    results = _read_json(path)
    if results["task"] not in glue.TASKS:
      raise ValueError(f"{run_dir!r} holds a {results['task']} run, not a GLUE task")
    from_scratch = bool(results.get("from_scratch"))
    by_kind.setdefault(from_scratch, run_dir)
    if len(by_kind) > 1:
      raise ValueError(f"{by_kind[True]!r} was fine-tuned {_kind(True)} and {by_kind[False]!r} {_kind(False)}: "
                       "combine runs of one kind")
    for entry in results["per_seed"]:
      for key, metrics in entry["per_eval"].items():
        if key in sources and sources[key] != run_dir:
          raise ValueError(f"GLUE result {key} appears in both {sources[key]!r} and {run_dir!r}")
        sources[key] = run_dir
        per_key.setdefault(key, []).append(metrics)
  glue_results = report.glue_report(per_key, statistic=statistic)
  glue_results["runs"] = sources
  glue_results["from_scratch"] = True in by_kind
  report.write_json(os.path.join(output_dir, "glue_results.json"), glue_results)
  report.write_markdown(os.path.join(output_dir, "glue_results.md"), report.glue_markdown(glue_results))
  return glue_results


def results_markdown(results: Dict[str, Any]) -> str:
  seeds = results["seeds"]
  base_seed = results["hyperparameters"].get("seed")
  derived = "" if base_seed is None else f"; SEED = {base_seed}, seed k = SEED + k"
  if results["from_scratch"]:
    init = (f"- from scratch (no pretraining): fresh encoder weights drawn from each seed; the encoder's shape and "
            f"vocab are those of `{results['init_checkpoint']}`")
  else:
    init = f"- initialized from `{results['init_checkpoint']}`"
  lines = [f"# Fine-tuning {results['task']}{' from scratch' if results['from_scratch'] else ''}", "", init,
           f"- seeds: {', '.join(str(s) for s in seeds)} (n = {len(seeds)}{derived})",
           f"- primary metric: {results['primary_metric']}", ""]
  text = "\n".join(lines) + "\n" + report.seeds_markdown(results["aggregate"], title="Dev metrics over seeds")
  metric_names = list(results["aggregate"])
  rows = [[str(entry["seed"]), str(entry["step"])] + [entry["metrics"].get(m) for m in metric_names]
          for entry in results["per_seed"]]
  return text + "\n## Per seed\n\n" + report.markdown_table(["seed", "step"] + metric_names, rows)


def write_reports(model_dir: str, results: Dict[str, Any], records: List[Dict[str, Any]], primary_metric: str):
  report.write_json(os.path.join(model_dir, "results.json"), results)
  report.write_markdown(os.path.join(model_dir, "results.md"), results_markdown(results))
  plots.plot_learning_curves(records, primary_metric, os.path.join(model_dir, "learning_curves.png"),
                             title=results["task"])
