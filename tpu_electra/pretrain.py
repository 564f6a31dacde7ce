r"""Pretrains an encoder: python -m tpu_electra.pretrain --gin_file=F [--gin_param=...] --model_dir=DIR.

The objective, model size, data and optimizer all come from gin; the common knobs are macros
(TRAIN_STEPS or TRAIN_FLOPS, BATCH_SIZE, SEQ_LENGTH, LEARNING_RATE, WARMUP_STEPS, CHECKPOINT_EVERY,
DATA_DIR, VOCAB_SIZE, SEED, EVAL_EVERY, EVAL_BATCHES). Re-running the same command resumes from the
latest checkpoint in --model_dir, exactly where the run stopped (same weights as a run never stopped).

Besides checkpoints, summaries and operative_config.gin (how the run was configured), the model dir
gets run.json (what the run is: tpu_electra.run_info), which everything that loads the run reads.
A model dir written before run.json existed gets one with

  python -m tpu_electra.pretrain --upgrade_run_dir=DIR
"""
import os
from typing import Dict, Optional

from absl import flags, logging
import gin
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import evaluate
from tpu_electra import fileio
from tpu_electra import gin_utils
from tpu_electra import run_info
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking
from tpu_electra.data import pretraining
from tpu_electra.modeling import EncoderConfig
from tpu_electra.modeling import costs
from tpu_electra import objectives
from tpu_electra.training import optimization
from tpu_electra.training import seeding
from tpu_electra.training import strategy as strategy_lib
from tpu_electra.training import trainer


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
  objective = objectives.of(objective)
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

  if strategy.extended.should_checkpoint:
    fileio.make_output_dir(model_dir, "--model_dir")
    run_info.write_run_info(model_dir, run_info.pretraining_record(
        model, data_dir, seed=seed, batch_size=batch_size, seq_length=seq_length, train_steps=train_steps,
        train_flops=train_flops, precision=precision, eval_every=eval_every, eval_batches=eval_batches))

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
  """TRAIN_FLOPS, when set, decides the step count: the papers compare objectives at equal compute.

  `objective` is a registered objective class; its cost is its training_costs (tpu_electra.flops
  prints the same count part by part).
  """
  if train_flops is None:
    if train_steps is None:
      raise ValueError("set TRAIN_STEPS, or TRAIN_FLOPS to train for a compute budget")
    return train_steps
  num_predictions = masking.MaskingConfig().num_predictions(seq_length)
  per_step = batch_size * costs.train_flops_per_sequence(objective.costs(encoder_config, seq_length, num_predictions))
  steps = costs.steps_within(train_flops, per_step)
  logging.info("TRAIN_FLOPS=%.4g: %d steps of %.4g FLOPs each, counted as in the ELECTRA paper (replaces "
               "TRAIN_STEPS=%s).", train_flops, steps, per_step, train_steps)
  return steps


def bound_value(binding_key: str):
  """A bound gin value with macro references followed to the value they name."""
  value = gin.query_parameter(binding_key)
  while isinstance(value, gin.config.ConfigurableReference) and value.configurable.name == "macro":
    value = gin.query_parameter("%" + "/".join(value.scopes))
  return value


def _bound_or_none(binding_key: str):
  try:
    return bound_value(binding_key)
  except ValueError:  # Not bound: the default applies.
    return None


def upgrade_run_dir(model_dir: str) -> str:
  """Writes run.json for a model dir written before runs recorded one, from its operative_config.gin
  (read with gin's own parser, then forgotten) and its latest checkpoint's embedding table."""
  if run_info.read_run_info(model_dir) is not None:
    raise ValueError(f"{run_info.path_of(model_dir)} exists already: nothing to upgrade")
  config_path = os.path.join(model_dir, trainer.OPERATIVE_CONFIG_NAME)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if not tf.io.gfile.exists(config_path) or checkpoint is None:
    raise ValueError(f"{model_dir!r} is not a pretraining model dir (it needs {trainer.OPERATIVE_CONFIG_NAME} "
                     "and a checkpoint)")
  gin.clear_config()
  try:
    gin.parse_config_file(config_path, skip_unknown=True)
    objective_cls = objectives.of(gin.query_parameter("pretrain.objective").configurable.wrapped)
    # The word-embedding table's rows (every objective has one table, shared by its networks, and
    shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    # (saved once, under the first path that reaches it: the encoder's embeddings or the MLM head).
    vocab_size = next(shape[0] for key, shape in sorted(shapes.items())
                      if key.endswith(("word_embeddings/embeddings/.ATTRIBUTES/VARIABLE_VALUE",
                                       "embedding_table/.ATTRIBUTES/VARIABLE_VALUE")))
    encoder_config = EncoderConfig(vocab_size=int(vocab_size))
    arguments = objective_cls.resolve_arguments()
    settings = {key: _bound_or_none(f"pretrain.{key}") for key in
                ("seed", "batch_size", "seq_length", "train_steps", "train_flops", "precision", "eval_every",
                 "eval_batches")}
    data_dir = _bound_or_none("pretrain.data_dir")
  except (ValueError, KeyError, SyntaxError, StopIteration) as e:
    raise ValueError(f"cannot read {config_path}: {cli_utils.first_line(e)}") from None
  finally:
    gin.clear_config()
  # Building the objective resolves what its constructor derives (ALE's share_layers) and checks
  # the arguments; nothing is restored.
  objective = objective_cls(encoder_config=encoder_config, **arguments)
  return run_info.write_run_info(model_dir, dict(run_info.pretraining_record(objective, data_dir, **settings),
                                                 upgraded_from=trainer.OPERATIVE_CONFIG_NAME))


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  cli_utils.define_gin_flags(flag_values, "TRAIN_STEPS = 1000")
  flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the operative config go (gs:// works).",
                      flag_values=flag_values)
  flags.DEFINE_string("upgrade_run_dir", None, "Instead of training: write run.json for this model dir, "
                      "written before runs recorded one.", flag_values=flag_values)


# Gin appends the configurable's name on further lines of its errors; the first line says what is wrong.
@cli_utils.one_line_errors(ValueError, trainer.NonFiniteLossError)
def run(flag_values: flags.FlagValues) -> int:
  """Pretrains (or upgrades a model dir) as the parsed flags ask; returns the exit status (errors: one line)."""
  if flag_values.upgrade_run_dir:
    print(f"wrote {upgrade_run_dir(flag_values.upgrade_run_dir)}")
    return 0
  cli_utils.require(flag_values, "model_dir")
  gin_utils.parse(flag_values.gin_file, flag_values.gin_param)
  pretrain(model_dir=flag_values.model_dir)
  return 0


cli = cli_utils.command_line(define_flags, run)


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, run)
