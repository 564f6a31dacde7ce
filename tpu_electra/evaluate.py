r"""Held-out evaluation of a pretraining run: python -m tpu_electra.evaluate --model_dir=DIR [--checkpoint=...].

The same evaluation the trainer runs every EVAL_EVERY steps: EVAL_BATCHES fixed batches of the data's
held-out split (whole documents that `data_prep.build` set aside), with masks and sampling noise
from a constant stateless seed, so the numbers compare across steps, runs, seeds and objectives.
Each objective reports its own metrics (its call's losses and accuracies: MLM loss/accuracy for
BERT, generator and RTD metrics for ELECTRA/ALE, MWS accuracy for TEAMS, the critic for SCRIPT),
averaged over the batches, and objectives with replaced-token detection add the exact AUC over
every held-out token (ties counted half) — a sort over the whole set, kept out of the train step.

Every objective also reports the health of its kept encoder's representations (`model.encoder`, the
network fine-tuning loads; tpu_electra.representation_health), run on the same batches' original
ids (not masked, not corrupted), over every real token of the set: `health/cosine_<part>`, the mean
cosine similarity of two distinct tokens' vectors, and `health/effective_rank_<part>`, the
effective rank of their covariance, for the embedding output (`embedding`), each transformer layer
(`layer_0` at the bottom to `layer_<L-1>`) and the top one again as `final`. Cosine near 1 or an
effective rank falling towards 1 is collapse, and the layer where it starts shows where. The cost
is one more forward pass of the encoder per batch and a d×d matrix per layer.

The command prints the metrics and writes them as JSON (default: DIR/eval/metrics-<step>.json).
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("model_dir", None, "Pretraining model dir.", flag_values=flag_values)
  flags.DEFINE_string("checkpoint", None, "A checkpoint prefix (default: the model dir's latest).",
                      flag_values=flag_values)
  flags.DEFINE_string("data_dir", None, "Pretraining data with a held-out split (default: the run's DATA_DIR).",
                      flag_values=flag_values)
  flags.DEFINE_integer("eval_batches", None, "Held-out batches (default: the run's EVAL_BATCHES).",
                       flag_values=flag_values)
  flags.DEFINE_integer("batch_size", None, "Global batch size (default: the run's BATCH_SIZE).",
                       flag_values=flag_values)
  flags.DEFINE_string("output", None, "Output JSON (default: <model_dir>/eval/metrics-<step>.json).",
                      flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  if not flag_values.checkpoint:
    cli_utils.require(flag_values, "model_dir", why="or --checkpoint")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.evaluate", check_flags)

import json
import os
import re
import time
from typing import Callable, Dict, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import representation_health
from tpu_electra import runs
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking
from tpu_electra.data import pretraining
from tpu_electra.objectives.base import DETECTION

DEFAULT_EVAL_BATCHES = 8


def binary_auc(scores, labels, weights):
  """Exact ROC AUC of `scores` against 0/1 `labels` over entries with weight > 0 (Mann-Whitney U).

  A positive scored above a negative counts 1, a tie between them counts 1/2 (mid ranks), so a
  constant scorer gets 0.5. 0.5 is also returned when one class is absent. O(n log n) tf ops
  with static shapes (one sort, one segment sum), so it runs in a graph and under XLA. Exact up to
  float32 summation: each term is a half-integer count of negatives.
  """
  scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
  labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
  valid = tf.cast(tf.reshape(tf.cast(weights, tf.float32), [-1]) > 0, tf.float32)
  # In increasing score order, entries with equal scores form one group. Entries with weight 0
  # count as neither class, so they may sit in any group without changing a count.
  order = tf.argsort(scores, stable=True)
  sorted_scores = tf.gather(scores, order)
  positive = tf.gather(valid * labels, order)
  negative = tf.gather(valid * (1.0 - labels), order)
  starts = tf.concat([tf.ones_like(sorted_scores[:1], tf.bool),
                     sorted_scores[1:] != sorted_scores[:-1]], axis=0)
  group = tf.cumsum(tf.cast(starts, tf.int32)) - 1
  size = scores.shape[0] if scores.shape[0] is not None else tf.size(scores)
  negatives_in_group = tf.math.unsorted_segment_sum(negative, group, size)
  # Groups are numbered in score order, so the negatives below a group are those of lower groups.
  negatives_below = tf.cumsum(negatives_in_group, exclusive=True)
  wins = tf.gather(negatives_below + 0.5 * negatives_in_group, group)
  u_statistic = tf.reduce_sum(positive * wins)
  num_pos = tf.reduce_sum(positive)
  num_neg = tf.reduce_sum(negative)
  auc = tf.math.divide_no_nan(u_statistic, num_pos * num_neg)
  return tf.where(num_pos * num_neg > 0, auc, 0.5)


def make_evaluator(model: tf.keras.Model, strategy: tf.distribute.Strategy, data_dir: str, global_batch_size: int,
                   seq_length: int, num_batches: int,
                   masking_config: Optional[masking.MaskingConfig] = None) -> Callable[[], Dict[str, float]]:
  """Returns evaluate() -> {metric: value} over the fixed held-out batches (built once, cached), masked
  as `masking_config` says (the run's: its mask rate decides what the metrics measure)."""
  if num_batches < 1:
    raise ValueError(f"EVAL_BATCHES must be >= 1, got {num_batches}")
  dataset = strategy.distribute_datasets_from_function(
      lambda input_context: pretraining.evaluation_dataset(
          data_dir, global_batch_size, seq_length, num_batches, input_context=input_context,
          masking_config=masking_config))

  def replica_step(batch):
    outputs = model(batch, training=False, with_detection=True)
    detection = outputs.pop(DETECTION, None)
    scalars = {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
    # A leading axis of one per replica, so that gathering keeps each replica's sums apart.
    health = tf.nest.map_structure(lambda t: t[tf.newaxis],
                                   representation_health.encoder_moments(model.encoder, batch))
    return scalars, detection, health

  @tf.function
  def step(batch):
    scalars, detection, health = strategy.run(replica_step, args=(batch,))
    scalars = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in scalars.items()}
    if detection is not None:
      detection = {k: strategy.gather(v, axis=0) for k, v in detection.items()}
    return scalars, detection, tf.nest.map_structure(lambda t: strategy.gather(t, axis=0), health)

  def evaluate() -> Dict[str, float]:
    sums: Dict[str, float] = {}
    tokens = {"scores": [], "labels": [], "weights": []}
    moments: Dict[str, representation_health.Moments] = {}
    count = 0
    for batch in dataset:
      scalars, detection, health = step(batch)
      for k, v in scalars.items():
        sums[k] = sums.get(k, 0.0) + float(v)
      if detection is not None:
        for k in tokens:
          tokens[k].append(detection[k].numpy().reshape(-1))
      for part, parts in health.items():
        moments[part] = representation_health.merge_all({k: v.numpy() for k, v in parts.items()}, moments.get(part))
      count += 1
    if not count:
      logging.warning("the held-out split of %s holds less than one batch of %d: no evaluation metrics",
                      data_dir, global_batch_size)
    metrics = {k: v / max(count, 1) for k, v in sums.items()}
    if tokens["scores"]:
      metrics["discriminator_auc"] = float(binary_auc(
          np.concatenate(tokens["scores"]), np.concatenate(tokens["labels"]), np.concatenate(tokens["weights"])))
    metrics.update(representation_health.summarize(moments))
    return metrics

  return evaluate


def checkpoint_step(checkpoint: str) -> int:
  match = re.search(r"-(\d+)$", checkpoint)
  return int(match.group(1)) if match else 0


def evaluate_run(model_dir: str, checkpoint: Optional[str] = None, data_dir: Optional[str] = None,
                 eval_batches: Optional[int] = None, batch_size: Optional[int] = None,
                 output: Optional[str] = None) -> Dict[str, float]:
  """Evaluates one checkpoint of a pretraining run (its latest by default); writes the JSON."""
  run = runs.read_run(checkpoint or model_dir)
  data_dir = data_dir or run.resolved_data_dir()
  if not data_dir:
    raise runs.RunError(
        f"the run's data dir {run.data_dir!r} has no manifest here; pass --data_dir=<the pretraining data>")
  manifest = manifest_lib.read_manifest(data_dir)
  seq_length = int(run.setting("seq_length", manifest.max_seq_length))
  batch_size = batch_size or int(run.setting("batch_size", 16))
  eval_batches = eval_batches or int(run.setting("eval_batches", DEFAULT_EVAL_BATCHES))
  objective = runs.load_objective(run)
  strategy = tf.distribute.get_strategy()
  # A run recorded before run.json held its masking is evaluated at MaskingConfig's defaults, as before.
  masking_config = masking.MaskingConfig(**run.setting("masking", {}))
  metrics = make_evaluator(objective, strategy, data_dir, batch_size, seq_length, eval_batches,
                           masking_config=masking_config)()
  step = checkpoint_step(run.checkpoint)
  result = {"checkpoint": run.checkpoint, "step": step, "data_dir": data_dir, "eval_batches": eval_batches,
            "batch_size": batch_size, "metrics": metrics}
  output = output or os.path.join(run.model_dir, "eval", f"metrics-{step}.json")
  fileio.write_atomic(output, json.dumps(result, indent=2, sort_keys=True) + "\n")
  logging.info("wrote %s", output)
  return result


@cli_utils.one_line_errors(ValueError, OSError, tf.errors.OpError)
def run(flag_values: flags.FlagValues) -> int:
  """Evaluates what the parsed flags ask for; returns the exit status (errors: one line)."""
  start = time.time()
  check_flags(flag_values)
  result = evaluate_run(flag_values.model_dir, flag_values.checkpoint, flag_values.data_dir,
                        flag_values.eval_batches, flag_values.batch_size, flag_values.output)
  print(json.dumps(result, indent=2, sort_keys=True))
  # The objective's own metrics; the representation health (many) is in the printed JSON.
  headline = {name: value for name, value in result["metrics"].items()
              if not name.startswith(representation_health.PREFIX)}
  cli_utils.log_closing_line("evaluation", result["checkpoint"], headline, time.time() - start, step=result["step"])
  return 0


cli = cli_utils.command_line(define_flags, run)
