r"""Pretrains an encoder: python -m tpu_electra.pretrain --gin_file=F [--gin_param=...] --model_dir=DIR.

The objective, model size, data and optimizer all come from gin; the common knobs are macros
(TRAIN_STEPS or TRAIN_FLOPS, BATCH_SIZE, SEQ_LENGTH, LEARNING_RATE, WARMUP_STEPS, CHECKPOINT_EVERY,
DATA_DIR, VOCAB_SIZE). Re-running the same command resumes from the latest checkpoint in --model_dir.
"""
import sys
from typing import Dict, Optional

from absl import app, flags, logging
import gin
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.modeling import EncoderConfig
import tpu_electra.objectives  # noqa: F401  (registers every objective with gin)
from tpu_electra.training import optimization
from tpu_electra.training import strategy as strategy_lib
from tpu_electra.training import trainer

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order (path, or relative to gin/).")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied after the files, e.g. 'TRAIN_STEPS = 1000'.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the operative config go (gs:// works).")

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@gin.configurable
def pretrain(model_dir: str,
        objective=gin.REQUIRED,
        data_dir: str = gin.REQUIRED,
        train_steps: Optional[int] = gin.REQUIRED,
        batch_size: int = gin.REQUIRED,
        seq_length: int = gin.REQUIRED,
        train_flops: Optional[float] = None,
        precision: str = "float32") -> Dict[str, float]:
  """Builds the objective for the data's vocab under the chosen strategy, and trains it."""
  if precision not in PRECISIONS:
    raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
  manifest = manifest_lib.read_manifest(data_dir)
  encoder_config = EncoderConfig()
  manifest_lib.check_compatible(manifest, data_dir, encoder_config.vocab_size, seq_length)
  if seq_length > encoder_config.max_position_embeddings:
    raise ValueError(f"SEQ_LENGTH={seq_length} exceeds EncoderConfig.max_position_embeddings="
                     f"{encoder_config.max_position_embeddings}")
  encoder_config = encoder_config.with_vocab_size(manifest.vocab_size)
  train_steps = resolve_train_steps(train_steps, train_flops, objective, encoder_config, batch_size, seq_length)

  tf.keras.mixed_precision.set_global_policy(precision)
  strategy = strategy_lib.get_strategy()
  logging.info("Strategy %s with %d replica(s); data %s: %d examples, vocab %d.", type(strategy).__name__,
               strategy.num_replicas_in_sync, data_dir, manifest.num_examples, manifest.vocab_size)
  with strategy.scope():
    model = objective(encoder_config=encoder_config)
    optimizer = optimization.create_optimizer(train_steps=train_steps)
    if precision == "mixed_float16":
      optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)

  def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
    return pretraining.pretraining_dataset(
        data_dir=data_dir, global_batch_size=batch_size, seq_length=seq_length, input_context=input_context)

  return trainer.train(model, optimizer, dataset_fn, strategy, model_dir, train_steps, batch_size,
                       checkpoint_items={"encoder": model.encoder})


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
