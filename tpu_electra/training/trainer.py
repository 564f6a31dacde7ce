"""The custom training loop: distributed steps in tf.function, checkpoints, resume, summaries, logs.

It knows nothing of objectives: a model is anything whose call(batch, training=True) returns a
dict of scalar tensors with a "loss" entry; every other entry is logged as a metric.

A resumed run continues exactly: the checkpoint holds the weights, the optimizer state and the step,
and everything else a step depends on is a function of the step. `dataset_fn(input_context,
start_step)` must return the stream from `start_step` on (tpu_electra.data.pretraining does), and a
batch's `noise_seed` feature, when present, seeds the step's dropout (tpu_electra.training.seeding).
"""
import math
import os
import time
from typing import Callable, Dict, Mapping, Optional

import gin
from absl import logging
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra.data import pretraining
from tpu_electra.training import seeding

OPERATIVE_CONFIG_NAME = "operative_config.gin"
EVAL_SUMMARY_DIR = "eval"


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or Inf; training stopped without saving the bad weights."""


def make_train_loop(model: tf.keras.Model, optimizer, strategy: tf.distribute.Strategy,
                    jit_compile: bool = False, grad_accum_steps: int = 1) -> Callable:
  """Returns train_loop(iterator, num_steps) -> dict of per-step means of the model's outputs.

  With grad_accum_steps = k, each step's per-replica batch is cut into k equal micro-batches
  whose gradients are averaged before one optimizer update (same update as one big batch when
  the loss is a mean over equally sized micro-batches).
  """
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
    if grad_accum_steps == 1:
      grads, outputs = gradients(batch)
    else:
      micro_batches = [dict(zip(batch, parts)) for parts in zip(
          *[tf.split(value, grad_accum_steps, axis=0) for value in batch.values()])]
      grads, outputs = gradients(micro_batches[0])
      for micro_batch in micro_batches[1:]:
        more_grads, more_outputs = gradients(micro_batch)
        grads = [g + m if g is not None else None for g, m in zip(grads, more_grads)]
        outputs = {k: outputs[k] + more_outputs[k] for k in outputs}
      grads = [g / grad_accum_steps if g is not None else None for g in grads]
      outputs = {k: v / grad_accum_steps for k, v in outputs.items()}
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
    totals = step(next(iterator))
    for _ in tf.range(num_steps - 1):
      outputs = step(next(iterator))
      totals = {k: totals[k] + outputs[k] for k in totals}
    return {k: v / tf.cast(num_steps, tf.float32) for k, v in totals.items()}

  return train_loop


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


@gin.configurable(denylist=["model", "optimizer", "dataset_fn", "strategy", "model_dir", "train_steps",
                            "global_batch_size", "checkpoint_items", "evaluator"])
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
          grad_accum_steps: int = 1) -> Dict[str, float]:
  """Trains until `train_steps` optimizer steps, resuming from the latest checkpoint in model_dir.

  `dataset_fn(input_context, start_step)` gives the batches from optimizer step `start_step` on.
  Every `eval_every` steps (and at the last step) `evaluator()` is called, when given; its metrics
  are logged and written as TensorBoard scalars in `model_dir/eval`. Returns the metrics of the last
  logging window (and the last evaluation's under "eval/<name>"). The model and optimizer must
  have been created under `strategy.scope()`.
  """
  if checkpoint_every <= 0 or steps_per_loop <= 0 or eval_every < 0:
    raise ValueError(f"CHECKPOINT_EVERY ({checkpoint_every}) and train.steps_per_loop ({steps_per_loop}) must be > 0, "
                     f"EVAL_EVERY ({eval_every}) >= 0")
  if global_batch_size % (grad_accum_steps * strategy.num_replicas_in_sync):
    raise ValueError(f"BATCH_SIZE={global_batch_size} must divide by grad_accum_steps × replicas "
                     f"= {grad_accum_steps} × {strategy.num_replicas_in_sync}")
  if evaluator is None:
    eval_every = 0
  is_chief = strategy.extended.should_checkpoint
  fileio.make_output_dir(model_dir)
  if is_chief:
    fileio.write_text_atomic(os.path.join(model_dir, OPERATIVE_CONFIG_NAME), gin.operative_config_str())

  spec_context = tf.distribute.InputContext(num_replicas_in_sync=strategy.num_replicas_in_sync)
  build_variables(model, optimizer, strategy, dataset_fn(spec_context, 0).element_spec)
  # After building: tf-models-official's layers create their Dropout layers in build().
  logging.info("%d dropout layer(s) draw from each step's seed.", seeding.seed_dropout_per_step(model))
  with strategy.scope():
    step_counter = optimizer.iterations
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **dict(checkpoint_items or {}))
    # Under MultiWorkerMirroredStrategy every worker takes part in saving; only the chief's copy
    # is kept, the others write to a scratch directory of their own that is removed afterwards.
    save_dir = model_dir if is_chief else os.path.join(model_dir, f"worker_scratch_{_task_id(strategy)}")
    manager = tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=keep_checkpoint_max, step_counter=step_counter)
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    checkpoint.restore(latest).assert_existing_objects_matched()
    logging.info("Resuming from checkpoint %s at step %d.", latest, int(step_counter.numpy()))
  else:
    logging.info("No checkpoint in %s: training from scratch.", model_dir)

  current = int(step_counter.numpy())
  if current >= train_steps:
    logging.info("Step %d already reaches TRAIN_STEPS=%d: nothing to train.", current, train_steps)
    return {}

  # The stream starts at the first batch this run has not trained on (none is re-read or skipped).
  iterator = iter(strategy.distribute_datasets_from_function(
      lambda input_context: dataset_fn(input_context, current)))
  train_loop = make_train_loop(model, optimizer, strategy, jit_compile=jit_compile, grad_accum_steps=grad_accum_steps)
  summary_writer = (tf.summary.create_file_writer(os.path.join(model_dir, "train")) if is_chief
                    else tf.summary.create_noop_writer())
  eval_writer = (tf.summary.create_file_writer(os.path.join(model_dir, EVAL_SUMMARY_DIR)) if is_chief and eval_every
                 else tf.summary.create_noop_writer())

  window_sums: Dict[str, float] = {}
  window_steps = 0
  window_start = time.time()
  last_log = window_start
  last_metrics: Dict[str, float] = {}
  first_loop = True
  while current < train_steps:
    next_checkpoint = (current // checkpoint_every + 1) * checkpoint_every
    num_steps = min(steps_per_loop, train_steps - current, next_checkpoint - current)
    if eval_every:
      num_steps = min(num_steps, (current // eval_every + 1) * eval_every - current)
    outputs = {k: float(v) for k, v in train_loop(iterator, tf.constant(num_steps, tf.int32)).items()}
    if not math.isfinite(outputs["loss"]):
      raise NonFiniteLossError(
          f"loss became {outputs['loss']} between steps {current} and {current + num_steps}; stopped without "
          f"saving, last good checkpoint: {tf.train.latest_checkpoint(model_dir) or 'none'} (lower LEARNING_RATE or check the data)")
    current += num_steps
    if first_loop:
      # The first loop includes tracing and graph optimization: kept out of the throughput.
      logging.info("step %d/%d  loss=%.4g  (first %d step(s), tracing included, took %.1f s)", current, train_steps,
                   outputs["loss"], num_steps, time.time() - window_start)
      first_loop, window_start, last_log = False, time.time(), time.time()
      last_metrics = dict(outputs)
      with summary_writer.as_default(step=current):
        for k, v in outputs.items():
          tf.summary.scalar(k, v)
    else:
      window_steps += num_steps
      for k, v in outputs.items():
        window_sums[k] = window_sums.get(k, 0.0) + v * num_steps

    now = time.time()
    if window_steps and (now - last_log >= log_every_secs or current >= train_steps):
      steps_per_sec = window_steps / max(now - window_start, 1e-9)
      last_metrics = {k: v / window_steps for k, v in window_sums.items()}
      last_metrics["learning_rate"] = current_learning_rate(optimizer)
      last_metrics["examples_per_sec"] = steps_per_sec * global_batch_size
      _log_progress(current, train_steps, last_metrics, steps_per_sec)
      with summary_writer.as_default(step=current):
        for k, v in last_metrics.items():
          tf.summary.scalar(k, v)
      summary_writer.flush()
      window_sums, window_steps, window_start, last_log = {}, 0, now, now

    # Before the checkpoint: a run killed in between evaluates this step again when it resumes.
    if eval_every and (current % eval_every == 0 or current >= train_steps):
      eval_metrics = run_evaluation(evaluator, current, eval_writer)
      last_metrics.update({f"{EVAL_SUMMARY_DIR}/{k}": v for k, v in eval_metrics.items()})

    if current % checkpoint_every == 0 or current >= train_steps:
      save_start = time.time()
      path = manager.save(checkpoint_number=current)
      if is_chief:
        logging.info("Saved checkpoint %s (%.2f s)", path, time.time() - save_start)
  summary_writer.close()
  eval_writer.close()
  if not is_chief:
    tf.io.gfile.rmtree(save_dir)
  return last_metrics


def run_evaluation(evaluator: Callable[[], Dict[str, float]], step: int, writer) -> Dict[str, float]:
  """Runs the evaluator, logs its metrics in one line and writes them as scalars at `step`."""
  start = time.time()
  metrics = evaluator()
  logging.info("eval at step %d (%.1f s): %s", step, time.time() - start,
               "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
  with writer.as_default(step=step):
    for k, v in metrics.items():
      tf.summary.scalar(k, v)
  writer.flush()
  return metrics


def _task_id(strategy: tf.distribute.Strategy) -> int:
  resolver = getattr(strategy, "cluster_resolver", None)
  return int(getattr(resolver, "task_id", 0) or 0)


def _log_progress(step: int, train_steps: int, metrics: Mapping[str, float], steps_per_sec: float) -> None:
  eta = (train_steps - step) / max(steps_per_sec, 1e-9)
  hours, rest = divmod(int(eta), 3600)
  shown = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k not in ("examples_per_sec", "learning_rate"))
  logging.info("step %d/%d  %s  lr=%.3g  examples/s=%.1f  ETA %d:%02d:%02d", step, train_steps, shown,
               metrics["learning_rate"], metrics["examples_per_sec"], hours, rest // 60, rest % 60)
