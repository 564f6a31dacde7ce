r"""Pretrains an encoder: python -m tpu_electra.pretrain --gin_file=F [--gin_param=...] --model_dir=DIR.

The objective, model size, data and optimizer all come from gin; the common knobs are macros
(TRAIN_STEPS or TRAIN_FLOPS, BATCH_SIZE, SEQ_LENGTH, LEARNING_RATE, WARMUP_STEPS, CHECKPOINT_EVERY,
DATA_DIR, VOCAB_SIZE, SEED, EVAL_EVERY, EVAL_BATCHES). Re-running the same command resumes from the
latest checkpoint in --model_dir, exactly where the run stopped (same weights as a run never stopped).
"""
import sys
from typing import Dict, Optional

from absl import app, flags, logging
import gin
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import evaluate
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.modeling import EncoderConfig
import tpu_electra.objectives  # noqa: F401  (registers every objective with gin)
from tpu_electra.training import optimization
from tpu_electra.training import seeding
from tpu_electra.training import strategy as strategy_lib
from tpu_electra.training import trainer

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order (path, or relative to gin/).")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied after the files, e.g. 'TRAIN_STEPS = 1000'.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the operative config go (gs:// works).")



@gin.configurable
def pretrain(model_dir: str,
        objective=gin.REQUIRED,
        data_dir: str = gin.REQUIRED,
        train_steps: Optional[int] = gin.REQUIRED,
        batch_size: int = gin.REQUIRED,
        seq_length: int = gin.REQUIRED,
        train_flops: Optional[float] = None,
        precision: str = "float32",
        seed: int = 0,
        eval_every: int = 0,
        eval_batches: int = 8,
        verify_checksums: bool = False) -> Dict[str, float]:
  """Builds the objective for the data's vocab under the chosen strategy, and trains it.

  `seed` decides everything random (weights, dropout, masks, sampling, data order); the same
  command with the same seed gives bit-identical checkpoints on CPU. Every `eval_every` steps
  (0: never) the model is evaluated on `eval_batches` fixed held-out batches (tpu_electra.evaluate).
  Before the first step the data's shard sizes and vocab are checked against its manifest, and
  with `verify_checksums` every shard's checksum too (a full read of the data).
  """
  strategy_lib.set_precision(precision)
  manifest = manifest_lib.read_manifest(data_dir)
  encoder_config = EncoderConfig()
  manifest_lib.check_compatible(manifest, data_dir, encoder_config.vocab_size, seq_length)
  manifest_lib.check_vocab(manifest, data_dir)
  manifest_lib.check_shard_sizes(manifest, data_dir)
  if verify_checksums:
    manifest_lib.verify_checksums(manifest, data_dir)
  if seq_length > encoder_config.max_position_embeddings:
    raise ValueError(f"SEQ_LENGTH={seq_length} exceeds EncoderConfig.max_position_embeddings="
                     f"{encoder_config.max_position_embeddings}")
  encoder_config = encoder_config.with_vocab_size(manifest.vocab_size)
  train_steps = resolve_train_steps(train_steps, train_flops, objective, encoder_config, batch_size, seq_length)

  strategy = strategy_lib.get_strategy()
  logging.info("SEED=%d. Strategy %s with %d replica(s); data %s: %d examples, vocab %d.", seed,
               type(strategy).__name__, strategy.num_replicas_in_sync, data_dir, manifest.num_examples,
               manifest.vocab_size)
  seeding.seed_everything(seed)
  with strategy.scope():
    model = objective(encoder_config=encoder_config)
    optimizer = optimization.create_optimizer(train_steps=train_steps)
    if precision == "mixed_float16":
      optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)

  def dataset_fn(input_context: tf.distribute.InputContext, start_step: int) -> tf.data.Dataset:
    return pretraining.pretraining_dataset(
        data_dir=data_dir, global_batch_size=batch_size, seq_length=seq_length, input_context=input_context,
        seed=seed, start_step=start_step)

  evaluator = None
  if eval_every:
    if manifest.eval_shard_paths(data_dir):
      evaluator = evaluate.make_evaluator(model, strategy, data_dir, batch_size, seq_length, eval_batches)
    else:
      logging.warning("EVAL_EVERY=%d but the data in %s has no held-out split: no evaluation. Rebuild it with "
                      "python -m data_prep.build to get one.", eval_every, data_dir)
  try:
    return trainer.train(model, optimizer, dataset_fn, strategy, model_dir, train_steps, batch_size,
                         checkpoint_items={"encoder": model.encoder}, evaluator=evaluator, eval_every=eval_every)
  except tf.errors.DataLossError as e:
    raise manifest_lib.DataError(corrupt_data_message(manifest, data_dir, model_dir, e)) from None


def corrupt_data_message(manifest: manifest_lib.Manifest, data_dir: str, model_dir: str, error: Exception) -> str:
  """One line naming the corrupt shard (found by its checksum) and the checkpoint left intact."""
  try:
    manifest_lib.verify_checksums(manifest, data_dir)
    culprit = f"a shard of {data_dir!r} ({cli_utils.first_line(error)})"
  except manifest_lib.DataError as found:
    culprit = cli_utils.first_line(found)
  return (f"corrupt pretraining data: {culprit}; training stopped, last good checkpoint: "
          f"{tf.train.latest_checkpoint(model_dir) or 'none'} (re-copy or rebuild the data, then re-run to resume)")


def resolve_train_steps(train_steps: Optional[int], train_flops: Optional[float], objective,
                        encoder_config: EncoderConfig, batch_size: int, seq_length: int) -> int:
  """TRAIN_FLOPS, when set, decides the step count: the papers compare objectives at equal compute."""
  if train_flops is None:
    if train_steps is None:
      raise ValueError("set TRAIN_STEPS, or TRAIN_FLOPS to train for a compute budget")
    return train_steps
  steps = flops.train_steps_for_flops(train_flops, objective, encoder_config, batch_size, seq_length)
  logging.info("TRAIN_FLOPS=%.4g: %d steps of %.4g FLOPs each, counted as in the ELECTRA paper (replaces "
               "TRAIN_STEPS=%s).", train_flops, steps,
               flops.train_flops_per_step(objective, encoder_config, batch_size, seq_length), train_steps)
  return steps


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required")
  try:
    gin_utils.parse(FLAGS.gin_file, FLAGS.gin_param)
    pretrain(model_dir=FLAGS.model_dir)
  except (ValueError, trainer.NonFiniteLossError) as e:
    # Gin appends the configurable's name on further lines; the first line says what is wrong.
    cli_utils.print_error(e)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
