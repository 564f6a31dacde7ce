"""The training loop of pretraining and fine-tuning: distributed steps, checkpoints, resume, summaries, logs.

It knows nothing of objectives or tasks: a model is anything whose call(batch, training=True) returns
a dict of scalar tensors with a "loss" entry; every other entry is logged as a metric.

- `make_train_loop` builds the compiled part: `train_loop(iterator, num_steps)` runs `num_steps`
  optimizer steps in one tf.function call (with gradient accumulation as a graph loop).
- `run_loop` drives it from a step to the last step, for both pretraining (`train`) and fine-tuning
  (`tpu_electra.finetuning.runner`): the NaN guard, timing (the first call, which traces, is kept
  out of the throughput), progress (a Keras progress bar where stdout is a terminal, log lines with
  loss, examples/s and ETA every LOG_EVERY_SECS otherwise), TensorBoard summaries, evaluation at
  given steps and checkpoints at given steps (`EventSteps`).
- `train` is pretraining's entry: resume from the latest checkpoint, a checkpoint every
  CHECKPOINT_EVERY steps and at the end, evaluation every EVAL_EVERY steps and at the end.

A checkpoint holds only a state that trains on: before saving, every variable of the model and the
optimizer must be finite (an update can overflow while the loss it logs, computed before it, is
finite). A state can also be finite yet blow up at its first step (weights of 1e9 after a step at a
learning rate of 1e9): each train_loop call also returns the loss of its first step, computed at
the weights it started from, and when that loss is not finite the checkpoint holding those weights
is set aside (renamed `nonfinite-ckpt-N`, dropped from the checkpoint list), so that "last good
checkpoint" names one that resumes.

A resumed run continues exactly: the checkpoint holds the weights, the optimizer state and the step,
and everything else a step depends on is a function of the step. `dataset_fn(input_context,
start_step)` must return the stream from `start_step` on (tpu_electra.data.pretraining does), and a
batch's `noise_seed` feature, when present, seeds the step's dropout (tpu_electra.training.seeding).
"""
import dataclasses
import math
import os
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import gin
from absl import logging
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.data import pretraining
from tpu_electra.training import seeding

OPERATIVE_CONFIG_NAME = "operative_config.gin"
EVAL_SUMMARY_DIR = "eval"
TRAIN_SUMMARY_DIR = "train"
# train_loop's output holding its first step's loss: the loss at the weights the call started from.
FIRST_STEP_LOSS = "first_step_loss"
# train_loop's output holding each output of every step of the call ({name: [num_steps]}).
PER_STEP = "per_step"
CHECKPOINT_PREFIX = "ckpt"
# Where a checkpoint whose weights gave a non-finite loss is moved (`nonfinite-ckpt-N.*`).
SET_ASIDE_PREFIX = "nonfinite-"
# A train_loop call runs at most about this long, whatever steps_per_loop says, so that progress
# shows on a slow machine too (a step of seconds); a call costs about 0.5 ms besides its steps (CPU).
MAX_LOOP_SECS = 5.0


class NonFiniteLossError(RuntimeError):
  """The loss or the weights became NaN or Inf; training stopped without saving the bad weights."""


class CheckpointSaveError(RuntimeError):
  """A checkpoint could not be written (a full disk, a lost bucket); the earlier ones are intact."""


def make_train_loop(model: tf.keras.Model, optimizer, strategy: tf.distribute.Strategy,
                    jit_compile: bool = False, grad_accum_steps: int = 1) -> Callable:
  """Returns train_loop(iterator, num_steps) -> dict of per-step means of the model's outputs,
  FIRST_STEP_LOSS: the first step's loss, computed at the weights the call started from, and
  PER_STEP: every step's outputs.

  With grad_accum_steps = k, each step's per-replica batch is cut into k equal micro-batches
  (consecutive rows) whose gradients are averaged before one optimizer update (same update as one
  big batch when the loss is a mean over equally sized micro-batches). The micro-batches are taken
  in a graph loop (tf.while_loop, one at a time), so the graph holds one forward and backward pass
  whatever k is; each micro-batch's dropout draws from its own noise seed, as a step's does.
  """
  if grad_accum_steps < 1:
    raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
  loss_scale = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)

  def gradients(batch):
    with tf.GradientTape() as tape, seeding.dropout_seed(pretraining.batch_noise_seed(batch)):
      outputs = model(batch, training=True)
      loss = outputs["loss"] / strategy.num_replicas_in_sync
      if loss_scale:
        loss = optimizer.get_scaled_loss(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    if loss_scale:
      grads = optimizer.get_unscaled_gradients(grads)
    return grads, outputs

  def replica_step(batch):
    grads, outputs = (gradients(batch) if grad_accum_steps == 1 else
                      _accumulated_gradients(gradients, batch, model.trainable_variables, grad_accum_steps))
    optimizer.apply_gradients(
        [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}

  if jit_compile:
    replica_step = tf.function(replica_step, jit_compile=True)

  # A tf.function of its own so that the step is traced once, not once per call site below.
  @tf.function
  def step(batch):
    per_replica = strategy.run(replica_step, args=(batch,))
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

  @tf.function
  def train_loop(iterator, num_steps):
    # Every step is the one call of `step` in the loop: a step's stateful random draws (Keras'
    # dropout where the batch has no noise seed: fine-tuning) then follow from the steps before,
    # however run_loop cuts the steps into calls. A first step called before the loop would draw
    # from a stream of its own.
    names = step.get_concrete_function(iterator.element_spec).structured_outputs
    steps = {k: tf.TensorArray(tf.float32, size=num_steps) for k in names}
    for i in tf.range(num_steps):
      outputs = step(next(iterator))
      steps = {k: steps[k].write(i, outputs[k]) for k in steps}
    per_step = {k: v.stack() for k, v in steps.items()}
    means = {k: tf.reduce_mean(v) for k, v in per_step.items()}
    means[FIRST_STEP_LOSS] = per_step["loss"][0]
    means[PER_STEP] = per_step
    return means

  # Each model (each fine-tuning seed, each run of a process) gets a train loop of its own, traced
  # once. TensorFlow counts the traces of every function of the same code together and would call
  # those of five seeds "retracing"; one loop traces again only for batches of a new shape
  # (num_steps is a tensor).
  for function in (step, train_loop):
    function._omit_frequent_tracing_warning = True  # pylint: disable=protected-access
  return train_loop


def _accumulated_gradients(gradients: Callable, batch, variables: Sequence[tf.Variable], k: int):
  """The mean of `gradients`' gradients and outputs over `batch` cut into k micro-batches; the graph
  holds one forward and backward pass whatever k is."""
  micro_batches = {name: _split_rows(value, k) for name, value in batch.items()}
  # Learnt when the loop body is traced (once): which variables get a gradient, the outputs' names.
  has_gradient: List[bool] = []
  output_names: List[str] = []

  def body(i, grad_sums, output_values):
    grads, outputs = gradients({name: value[i] for name, value in micro_batches.items()})
    has_gradient[:] = [g is not None for g in grads]
    output_names[:] = list(outputs)
    grad_sums = [s + tf.convert_to_tensor(g) if g is not None else s for s, g in zip(grad_sums, grads)]
    output_values = output_values.write(i, tf.stack([tf.cast(outputs[n], tf.float32) for n in output_names]))
    return i + 1, grad_sums, output_values

  _, grad_sums, output_values = tf.while_loop(
      lambda i, *_: i < k, body,
      (tf.constant(0), [tf.zeros(v.shape, v.dtype) for v in variables],
       tf.TensorArray(tf.float32, size=k, element_shape=tf.TensorShape([None]))),
      parallel_iterations=1, maximum_iterations=k)  # One micro-batch at a time: that is the memory saved.
  grads = [s / k if kept else None for s, kept in zip(grad_sums, has_gradient)]
  means = tf.unstack(tf.reduce_mean(output_values.stack(), axis=0), num=len(output_names))
  return grads, dict(zip(output_names, means))


def _split_rows(value: tf.Tensor, k: int) -> tf.Tensor:
  """[B, ...] -> [k, B/k, ...]: micro-batch i is rows i·B/k to (i+1)·B/k - 1 (as tf.split cuts them)."""
  shape = value.shape
  if shape.rank is not None and shape[1:].is_fully_defined():
    rows = shape[0] // k if shape[0] is not None else -1
    return tf.reshape(value, [k, rows] + shape[1:].as_list())
  return tf.reshape(value, tf.concat([[k, -1], tf.shape(value)[1:]], axis=0))


def build_variables(model: tf.keras.Model, optimizer, strategy: tf.distribute.Strategy,
                    element_spec) -> None:
  """Creates the model's variables and the optimizer's slots before anything is traced.

  Variables created inside the first trace of a tf.function make TensorFlow trace it twice, which
  costs as much as the trace itself; and a checkpoint restored after this is applied at once
  rather than deferred. The model is called on a dummy batch shaped like one replica's batch
  (`element_spec`), so no batch of the stream is spent on building: a resumed run trains on the
  first batch it reads.
  """
  # Ids of one and weights of zero: valid for every feature (zero-weight prediction slots are padding).
  batch = tf.nest.map_structure(
      lambda spec: tf.zeros(spec.shape, spec.dtype) if spec.dtype.is_floating else tf.ones(spec.shape, spec.dtype),
      element_spec)
  strategy.run(lambda features: model(features, training=False), args=(batch,))
  inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer keeps slots inside.
  with strategy.scope():
    inner._create_all_weights(model.trainable_variables)  # pylint: disable=protected-access


def current_learning_rate(optimizer) -> float:
  lr = optimizer.learning_rate
  if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
    lr = lr(optimizer.iterations)
  return float(tf.convert_to_tensor(lr))


@dataclasses.dataclass(frozen=True)
class EventSteps:
  """Steps of a run at which something happens: every `every` steps (0: none), each of `steps`, and the last."""
  every: int = 0
  steps: Sequence[int] = ()

  def includes(self, step: int, last: int) -> bool:
    return step == last or bool(self.every and step % self.every == 0) or step in self.steps

  def next_after(self, step: int, last: int) -> int:
    candidates = [last] + [s for s in self.steps if s > step]
    if self.every:
      candidates.append((step // self.every + 1) * self.every)
    return min(candidates)


@dataclasses.dataclass
class LoopResult:
  """What `run_loop` measured: the last log window's metrics (and "eval/<name>" of the last evaluation),
  each loop's means (`curve`, with `record_curve`), and timings."""
  metrics: Dict[str, float]
  curve: List[Dict[str, float]]
  first_loop_s: float = 0.0  # The first train_loop call: tracing and graph optimization included.
  train_s: float = 0.0  # The other train_loop calls.
  timed_steps: int = 0  # The steps of those calls.
  eval_s: float = 0.0

  @property
  def steps_per_s(self) -> Optional[float]:
    return self.timed_steps / self.train_s if self.train_s > 0 else None


def run_loop(train_loop: Callable, iterator, optimizer, *, start_step: int, train_steps: int,
             global_batch_size: int, steps_per_loop: int, log_every_secs: float = 10.0,
             max_loop_secs: Optional[float] = MAX_LOOP_SECS, summary_dir: Optional[str] = None,
             evaluate: Optional[Callable[[int], Dict[str, float]]] = None, eval_at: EventSteps = EventSteps(),
             eval_summary_dir: Optional[str] = None, save: Optional[Callable[[int], None]] = None,
             save_at: EventSteps = EventSteps(), record_curve: bool = False, log_prefix: str = "",
             failure_hint: Callable[[], str] = lambda: "",
             on_non_finite_start: Optional[Callable[[int], None]] = None) -> LoopResult:
  """Trains from `start_step` to `train_steps` with `train_loop` (of make_train_loop) over `iterator`.

  The steps go in stretches of at most `steps_per_loop` that end at every `eval_at` and `save_at`
  point; a stretch is one train_loop call or several (`_call_end`: the first call is one step, later
  ones at most about `max_loop_secs`; None: whole stretches, as every worker of a multi-worker run
  must make the same calls). After each call a NaN/Inf loss raises NonFiniteLossError (`_check_finite`;
  `failure_hint()` ends the message), and the progress shows and is written as scalars in
  `summary_dir`. At a stretch's end: `evaluate(step)` at an `eval_at` step (logged, written in
  `eval_summary_dir`), then `save(step)` at a `save_at` step (after the evaluation: a run killed in
  between evaluates that step again when it resumes). `record_curve` keeps each stretch's means, "step"
  and "learning_rate" in the result's `curve`: the same points however the stretches were cut.
  """
  summary_writer, eval_writer = _summary_writer(summary_dir), _summary_writer(eval_summary_dir if evaluate else None)
  result = LoopResult(metrics={}, curve=[])
  progress = _Progress(start_step, train_steps)
  window = _LogWindow()
  current = start_step
  stretch_end, stretch_values = start_step, {}  # The stretch's steps' outputs, for the curve.
  seconds_per_step: Optional[float] = None  # Of the last call; none before the first.
  try:
    while current < train_steps:
      if current == stretch_end:
        stretch_end = min(current + steps_per_loop, save_at.next_after(current, train_steps),
                          eval_at.next_after(current, train_steps) if evaluate else train_steps)
      stop = _call_end(current, stretch_end, seconds_per_step, max_loop_secs)
      num_steps = stop - current
      tick = time.time()
      outputs = train_loop(iterator, tf.constant(num_steps, tf.int32))
      per_step = {k: v.numpy().tolist() for k, v in outputs.pop(PER_STEP).items()}
      outputs = {k: float(v) for k, v in outputs.items()}
      elapsed = time.time() - tick
      _check_finite(outputs, current, stop, log_prefix + "loss", failure_hint, on_non_finite_start)
      current = stop
      if record_curve:
        for k, values in per_step.items():
          stretch_values.setdefault(k, []).extend(values)
        if current == stretch_end:
          result.curve.append(_curve_point(stretch_values, current, optimizer))
          stretch_values = {}
      if seconds_per_step is None:
        seconds_per_step, result.first_loop_s, window.last_log = elapsed, elapsed, time.time()
        logging.info("%sstep %d/%d  loss=%.4g  (first step, tracing included, took %.1f s)", log_prefix, current,
                     train_steps, outputs["loss"], elapsed)
        progress.update(current, outputs["loss"])
        result.metrics = dict(outputs)
        _write_scalars(summary_writer, current, outputs)
      else:
        seconds_per_step = elapsed / num_steps
        result.train_s += elapsed
        result.timed_steps += num_steps
        window.add(outputs, num_steps, elapsed)
        progress.update(current, outputs["loss"], num_steps * global_batch_size / max(elapsed, 1e-9))

      if window.due(log_every_secs, finished=current >= train_steps):
        result.metrics = window.close(optimizer, global_batch_size)
        if progress.lines:
          _log_progress(log_prefix, current, train_steps, result.metrics,
                        result.metrics["examples_per_sec"] / global_batch_size)
        _write_scalars(summary_writer, current, result.metrics)

      if evaluate and eval_at.includes(current, train_steps):
        progress.end_line()
        result.metrics.update(_evaluate(evaluate, current, eval_writer, result, log_prefix))

      if save and save_at.includes(current, train_steps):
        progress.end_line()
        save(current)
  finally:
    progress.end_line()
    summary_writer.close()
    eval_writer.close()
  return result

def _check_finite(outputs: Dict[str, float], start: int, stop: int, what: str, failure_hint: Callable[[], str],
                  on_non_finite_start: Optional[Callable[[int], None]]) -> None:
  """Raises NonFiniteLossError when a call's mean loss is not finite (after `on_non_finite_start(start)`
  when its first step's loss, at the weights it started from, is not either); drops FIRST_STEP_LOSS."""
  first_step_loss = outputs.pop(FIRST_STEP_LOSS)
  if not math.isfinite(outputs["loss"]):
    if on_non_finite_start and not math.isfinite(first_step_loss):
      on_non_finite_start(start)
    raise NonFiniteLossError(f"{what} became {outputs['loss']} between steps {start} and {stop}; "
                             f"stopped without saving{failure_hint()}")


def _curve_point(stretch_values: Mapping[str, List[float]], step: int, optimizer) -> Dict[str, float]:
  # fsum is exact: the same numbers however the stretch was cut into calls.
  return {**{k: math.fsum(v) / len(v) for k, v in stretch_values.items()},
          "step": step, "learning_rate": current_learning_rate(optimizer)}


def _call_end(current: int, stretch_end: int, seconds_per_step: Optional[float],
              max_loop_secs: Optional[float]) -> int:
  """Where the next train_loop call stops: one step for the first call (it traces, and its line should
  come at once), then the stretch's end, or about `max_loop_secs` of steps at the last call's speed."""
  if seconds_per_step is None:
    return current + 1
  if max_loop_secs is not None:
    return min(stretch_end, current + max(1, int(max_loop_secs / seconds_per_step)))
  return stretch_end


class _LogWindow:
  """The train_loop calls since the last log line: their step-weighted metric sums, steps and seconds."""

  def __init__(self):
    self.sums: Dict[str, float] = {}
    self.steps, self.seconds, self.last_log = 0, 0.0, time.time()

  def add(self, outputs: Mapping[str, float], num_steps: int, elapsed: float) -> None:
    self.steps += num_steps
    self.seconds += elapsed
    for k, v in outputs.items():
      self.sums[k] = self.sums.get(k, 0.0) + v * num_steps

  def due(self, log_every_secs: float, finished: bool) -> bool:
    return bool(self.steps) and (time.time() - self.last_log >= log_every_secs or finished)

  def close(self, optimizer, global_batch_size: int) -> Dict[str, float]:
    """The window's mean metrics, learning rate and examples/s; a new window starts."""
    # Throughput over the train_loop calls only: evaluations and checkpoints are not training.
    steps_per_sec = self.steps / max(self.seconds, 1e-9)
    metrics = {k: v / self.steps for k, v in self.sums.items()}
    metrics["learning_rate"] = current_learning_rate(optimizer)
    metrics["examples_per_sec"] = steps_per_sec * global_batch_size
    self.sums, self.steps, self.seconds, self.last_log = {}, 0, 0.0, time.time()
    return metrics


def _evaluate(evaluate: Callable[[int], Dict[str, float]], step: int, writer, result: "LoopResult",
              log_prefix: str) -> Dict[str, float]:
  """Runs `evaluate(step)`, logs and writes its metrics; returns them as "eval/<name>"."""
  tick = time.time()
  eval_metrics = evaluate(step)
  result.eval_s += time.time() - tick
  logging.info("%seval at step %d (%.1f s): %s", log_prefix, step, time.time() - tick,
               "  ".join(f"{k}={v:.4g}" for k, v in sorted(eval_metrics.items())))
  _write_scalars(writer, step, eval_metrics)
  return {f"{EVAL_SUMMARY_DIR}/{k}": v for k, v in eval_metrics.items()}


class _Progress:
  """Where a run's progress shows: a Keras progress bar (steps, loss, examples/s, its ETA) where
  stdout is a terminal, log lines where stderr is not one (CI, a log file), or both."""

  def __init__(self, start_step: int, train_steps: int):
    self._start_step = start_step
    self._bar = (tf.keras.utils.Progbar(train_steps - start_step, stateful_metrics=["loss", "examples/s"])
                 if _is_terminal(sys.stdout) else None)
    # The bar and the log lines share a terminal: other lines start on a line of their own.
    self._shares_terminal = self._bar is not None and _is_terminal(sys.stderr)
    self._mid_line = False
    self.lines = not self._shares_terminal

  def update(self, step: int, loss: float, examples_per_sec: Optional[float] = None) -> None:
    if self._bar is not None:
      values = [("loss", loss)] + ([("examples/s", examples_per_sec)] if examples_per_sec is not None else [])
      self._bar.update(step - self._start_step, values)
      self._mid_line = step - self._start_step < self._bar.target

  def end_line(self) -> None:
    """Ends the bar's line before another line is written to the same terminal."""
    if self._shares_terminal and self._mid_line:
      sys.stdout.write("\n")
      sys.stdout.flush()
      self._mid_line = False


def _is_terminal(stream) -> bool:
  return stream is not None and hasattr(stream, "isatty") and stream.isatty()


@gin.configurable(denylist=["model", "optimizer", "dataset_fn", "strategy", "model_dir", "train_steps",
                            "global_batch_size", "checkpoint_items", "evaluator", "write_operative_config"])
def train(model: tf.keras.Model,
          optimizer,
          dataset_fn: Callable[[tf.distribute.InputContext, int], tf.data.Dataset],
          strategy: tf.distribute.Strategy,
          model_dir: str,
          train_steps: int,
          global_batch_size: int,
          checkpoint_items: Optional[Mapping[str, tf.Module]] = None,
          evaluator: Optional[Callable[[], Dict[str, float]]] = None,
          checkpoint_every: int = 1000,
          eval_every: int = 0,
          keep_checkpoint_max: int = 5,
          steps_per_loop: int = 20,
          log_every_secs: float = 10.0,
          jit_compile: bool = False,
          grad_accum_steps: int = 1,
          write_operative_config: bool = True) -> Dict[str, float]:
  """Trains until `train_steps` optimizer steps, resuming from the latest checkpoint in model_dir.

  `dataset_fn(input_context, start_step)` gives the batches from optimizer step `start_step` on.
  Every `eval_every` steps (and at the last step) `evaluator()` is called, when given; its metrics
  are logged and written as TensorBoard scalars in `model_dir/eval`. Returns the metrics of the last
  logging window (and the last evaluation's under "eval/<name>"). The model and optimizer must
  have been created under `strategy.scope()`. `write_operative_config`: False when model_dir's
  operative_config.gin describes this run already (a resume with the same settings rewrites nothing).

  A checkpoint save that fails (a full disk) raises CheckpointSaveError naming the checkpoint and the
  last one written; a save killed midway leaves a `ckpt-N_temp/` directory, removed at the next start.
  """
  if checkpoint_every <= 0 or steps_per_loop <= 0 or eval_every < 0:
    raise ValueError(f"CHECKPOINT_EVERY ({checkpoint_every}) and train.steps_per_loop ({steps_per_loop}) must be > 0, "
                     f"EVAL_EVERY ({eval_every}) >= 0")
  if global_batch_size % (grad_accum_steps * strategy.num_replicas_in_sync):
    raise ValueError(f"BATCH_SIZE={global_batch_size} must divide by grad_accum_steps × replicas "
                     f"= {grad_accum_steps} × {strategy.num_replicas_in_sync}")
  is_chief = strategy.extended.should_checkpoint
  fileio.make_output_dir(model_dir)
  if is_chief:
    if write_operative_config:
      fileio.write_text_atomic(os.path.join(model_dir, OPERATIVE_CONFIG_NAME), gin.operative_config_str())
    _remove_unfinished_saves(model_dir)

  spec_context = tf.distribute.InputContext(num_replicas_in_sync=strategy.num_replicas_in_sync)
  build_variables(model, optimizer, strategy, dataset_fn(spec_context, 0).element_spec)
  # After building: tf-models-official's layers create their Dropout layers in build().
  logging.info("%d dropout layer(s) draw from each step's seed.", seeding.seed_dropout_per_step(model))
  with strategy.scope():
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **dict(checkpoint_items or {}))
    # Under MultiWorkerMirroredStrategy every worker takes part in saving; only the chief's copy
    # is kept, the others write to a scratch directory of their own that is removed afterwards.
    save_dir = model_dir if is_chief else os.path.join(model_dir, f"worker_scratch_{_task_id(strategy)}")
    manager = tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=keep_checkpoint_max,
                                         step_counter=optimizer.iterations)
  current = _restore_latest(checkpoint, model_dir, optimizer)
  if current >= train_steps:
    logging.info("Step %d already reaches TRAIN_STEPS=%d: nothing to train.", current, train_steps)
    return {}

  keeper = _CheckpointKeeper(manager, model_dir, save_dir, is_chief,
                             [v for v in _checkpoint_variables(model, optimizer) if v.dtype.is_floating])
  # The stream starts at the first batch this run has not trained on (none is re-read or skipped).
  iterator = iter(strategy.distribute_datasets_from_function(
      lambda input_context: dataset_fn(input_context, current)))
  result = run_loop(
      make_train_loop(model, optimizer, strategy, jit_compile=jit_compile, grad_accum_steps=grad_accum_steps),
      iterator, optimizer, start_step=current, train_steps=train_steps, global_batch_size=global_batch_size,
      steps_per_loop=steps_per_loop, log_every_secs=log_every_secs,
      # Every worker must make the same calls: no call is cut short by one worker's clock.
      max_loop_secs=None if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else MAX_LOOP_SECS,
      summary_dir=os.path.join(model_dir, TRAIN_SUMMARY_DIR) if is_chief else None,
      evaluate=(lambda step: evaluator()) if evaluator and eval_every else None, eval_at=EventSteps(every=eval_every),
      eval_summary_dir=os.path.join(model_dir, EVAL_SUMMARY_DIR) if is_chief else None,
      save=keeper.save, save_at=EventSteps(every=checkpoint_every), on_non_finite_start=keeper.set_aside,
      failure_hint=keeper.failure_hint)
  if not is_chief:
    tf.io.gfile.rmtree(save_dir)
  return result.metrics


class _CheckpointKeeper:
  """A run's checkpoints as it trains: only finite states are saved, a failed save names the last good
  checkpoint, and a checkpoint whose weights give a non-finite loss is set aside."""

  def __init__(self, manager: tf.train.CheckpointManager, model_dir: str, save_dir: str, is_chief: bool,
               saved_state: Sequence[tf.Variable]):
    self._manager, self._model_dir, self._save_dir, self._is_chief = manager, model_dir, save_dir, is_chief
    self._saved_state = saved_state

  def last_good(self) -> str:
    return tf.train.latest_checkpoint(self._model_dir) or "none"

  def failure_hint(self) -> str:
    # Resuming a checkpoint with another learning rate changes its recorded settings: pretrain asks for consent.
    consent = " and --accept_changes to resume with it" if tf.train.latest_checkpoint(self._model_dir) else ""
    return f", last good checkpoint: {self.last_good()} (lower LEARNING_RATE{consent}, or check the data)"

  def save(self, step: int) -> None:
    if not _all_finite(self._saved_state):
      raise NonFiniteLossError(f"the weights or optimizer state after step {step} are not finite (the step's loss, "
                               f"computed before its update, was finite); not saved{self.failure_hint()}")
    save_start = time.time()
    try:
      path = self._manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
      prefix = os.path.join(self._save_dir, f"{CHECKPOINT_PREFIX}-{step}")
      _remove_unfinished_saves(self._save_dir)  # Frees what the failed save wrote.
      raise CheckpointSaveError(
          f"cannot write checkpoint {prefix} ({errors.first_line(e)}); training stopped at step {step}, last "
          f"checkpoint written: {self.last_good()} (intact); free space or fix {self._model_dir}, then re-run the "
          "same command to resume") from None
    if self._is_chief:
      logging.info("Saved checkpoint %s (%.2f s)", path, time.time() - save_start)

  def set_aside(self, step: int) -> None:
    """The checkpoint of `step` holds weights whose loss is not finite: no run can resume from it."""
    prefix = os.path.join(self._model_dir, f"{CHECKPOINT_PREFIX}-{step}")
    if self._is_chief and tf.train.latest_checkpoint(self._model_dir) == prefix:
      _set_aside_checkpoint(self._model_dir, prefix)


def _restore_latest(checkpoint: tf.train.Checkpoint, model_dir: str, optimizer) -> int:
  """Restores model_dir's latest checkpoint, if any; returns the step training goes on from."""
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    checkpoint.restore(latest).assert_existing_objects_matched()
    logging.info("Resuming from checkpoint %s at step %d.", latest, int(optimizer.iterations.numpy()))
  else:
    logging.info("No checkpoint in %s: training from scratch.", model_dir)
  return int(optimizer.iterations.numpy())


def _checkpoint_variables(model: tf.keras.Model, optimizer) -> List[tf.Variable]:
  """What a checkpoint of `model` and `optimizer` saves: the model's variables and the optimizer's."""
  return list(model.variables) + list(optimizer.variables())


def _all_finite(variables: Sequence[tf.Variable]) -> bool:
  # One device-to-host read for all of them (a few ms at ELECTRA-Base's size, once per save).
  return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])) if variables else True


def _remove_unfinished_saves(directory: str) -> None:
  """Removes `ckpt-N_temp/` directories: what a checkpoint save killed (or failed) midway wrote."""
  for path in tf.io.gfile.glob(os.path.join(directory, f"{CHECKPOINT_PREFIX}-*_temp")):
    logging.info("Removing %s, left by an unfinished checkpoint save.", path)
    tf.io.gfile.rmtree(path)


def _set_aside_checkpoint(model_dir: str, prefix: str) -> None:
  """Renames `prefix`'s files to nonfinite-ckpt-N.* (kept, never resumed from) and drops it from the
  checkpoint list, so that the latest checkpoint is the one before it."""
  directory, name = os.path.split(prefix)
  for path in tf.io.gfile.glob(prefix + ".*"):
    tf.io.gfile.rename(path, os.path.join(directory, SET_ASIDE_PREFIX + os.path.basename(path)), overwrite=True)
  state = tf.train.get_checkpoint_state(model_dir)
  kept = [p for p in state.all_model_checkpoint_paths if os.path.basename(p) != name]
  if kept:
    tf.compat.v1.train.update_checkpoint_state(model_dir, kept[-1], all_model_checkpoint_paths=kept)
  else:
    tf.io.gfile.remove(os.path.join(model_dir, "checkpoint"))
  logging.warning("The loss at the weights of %s is not finite: set aside as %s%s (no run resumes from it).",
                  prefix, SET_ASIDE_PREFIX, name)


def _summary_writer(directory: Optional[str]):
  return tf.summary.create_file_writer(directory) if directory else tf.summary.create_noop_writer()


def _write_scalars(writer, step: int, metrics: Mapping[str, float]) -> None:
  with writer.as_default(step=step):
    for k, v in metrics.items():
      tf.summary.scalar(k, v)
  writer.flush()


def _task_id(strategy: tf.distribute.Strategy) -> int:
  resolver = getattr(strategy, "cluster_resolver", None)
  return int(getattr(resolver, "task_id", 0) or 0)


def _log_progress(prefix: str, step: int, train_steps: int, metrics: Mapping[str, float],
                  steps_per_sec: float) -> None:
  eta = (train_steps - step) / max(steps_per_sec, 1e-9)
  shown = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k not in ("examples_per_sec", "learning_rate"))
  logging.info("%sstep %d/%d  %s  lr=%.3g  examples/s=%.1f  ETA %s", prefix, step, train_steps, shown,
               metrics["learning_rate"], metrics["examples_per_sec"], cli_utils.format_seconds(eta))
