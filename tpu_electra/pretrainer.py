"""A pretraining run: the gin configurable `pretrain` (build the objective for the data's vocab under the
chosen strategy, check the data, record the run, train it) and its checks for re-runs and continued
pretraining. tpu_electra.pretrain is its command line, whose docstring says what a run does with a model dir.

Importing this module registers the configurables every experiment file binds (`pretrain`, and through
its imports `train`, `create_optimizer`, `pretraining_dataset`, ...).
"""
import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

from absl import logging
import gin
import tensorflow as tf

from tpu_electra import errors
from tpu_electra import evaluate
from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra import warm_start
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

# The flag of tpu_electra.pretrain that lets a re-run continue with changed settings; its refusal names it.
ACCEPT_CHANGES_FLAG = "--accept_changes"


# init_checkpoint is where a run starts from, like model_dir where it goes: a flag, recorded in
# run.json, not a gin binding (it would otherwise travel in operative_config.gin to every later run);
# accept_changes is consent for one re-run, not a setting.
@gin.configurable(denylist=["init_checkpoint", "accept_changes"])
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
        verify_checksums: bool = False,
        init_checkpoint: Optional[str] = None,
        accept_changes: bool = False) -> Dict[str, float]:
  """Builds the objective for the data's vocab under the chosen strategy, and trains it.

  `seed` decides everything random (weights, dropout, masks, sampling, data order); the same
  command with the same seed gives bit-identical checkpoints on CPU. Every `eval_every` steps
  (0: never) the model is evaluated on `eval_batches` fixed held-out batches (tpu_electra.evaluate).
  Before the first step the data's shard sizes and vocab are checked against its manifest, and
  with `verify_checksums` every shard's checksum too (a full read of the data). `init_checkpoint`:
  continued pretraining from that run dir (tpu_electra.pretrain's docstring), when model_dir has no
  checkpoint yet. A model dir with checkpoints continues only with the settings its run.json records,
  or with `accept_changes` (tpu_electra.pretrain's docstring).
  """
  strategy_lib.set_precision(precision)
  manifest, encoder_config = checked_data(data_dir, seq_length, verify_checksums)
  objective = objectives.class_of(objective)
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

  # One masking config for the run, its evaluation and its record.
  masking_config = masking.MaskingConfig()

  def dataset_fn(input_context: tf.distribute.InputContext, start_step: int) -> tf.data.Dataset:
    return pretraining.pretraining_dataset(
        data_dir=data_dir, global_batch_size=batch_size, seq_length=seq_length, input_context=input_context,
        masking_config=masking_config, seed=seed, start_step=start_step)

  record = runs.pretraining_record(
      model, data_dir, seed=seed, batch_size=batch_size, seq_length=seq_length, train_steps=train_steps,
      train_flops=train_flops, precision=precision, eval_every=eval_every, eval_batches=eval_batches,
      **training_settings(masking_config))
  latest = tf.train.latest_checkpoint(model_dir)
  kept_config = None
  if latest:
    # Checked before anything is written: a refused re-run leaves the dir as it was.
    record, kept_config = continued_record(model_dir, latest, record, accept_changes)
    if init_checkpoint:
      logging.info("%s has checkpoints: resuming from them (--init_checkpoint=%s applies only to a new run).",
                   model_dir, init_checkpoint)
  elif init_checkpoint:
    record["init_checkpoint"] = initialize_from(init_checkpoint, model, optimizer, strategy, dataset_fn, manifest,
                                                data_dir, seq_length)

  if strategy.extended.should_checkpoint and record is not None:
    fileio.make_output_dir(model_dir, "--model_dir")
    if kept_config:
      fileio.copy(os.path.join(model_dir, trainer.OPERATIVE_CONFIG_NAME), os.path.join(model_dir, kept_config))
    runs.write_record(model_dir, record)

  evaluator = held_out_evaluator(model, strategy, manifest, data_dir, batch_size, seq_length, eval_every,
                                 eval_batches, masking_config)
  try:
    return trainer.train(model, optimizer, dataset_fn, strategy, model_dir, train_steps, batch_size,
                         checkpoint_items={"encoder": model.encoder}, evaluator=evaluator, eval_every=eval_every,
                         write_operative_config=record is not None)
  except tf.errors.DataLossError as e:
    raise manifest_lib.DataError(corrupt_data_message(manifest, data_dir, model_dir, e)) from None


def checked_data(data_dir: str, seq_length: int,
                 verify_checksums: bool) -> Tuple[manifest_lib.Manifest, EncoderConfig]:
  """(the data's manifest, the configured encoder config with the data's vocab size), once the data's
  shard sizes and vocab (and with `verify_checksums` every shard's checksum) match the manifest and
  the model fits SEQ_LENGTH; one-line errors otherwise."""
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
  return manifest, encoder_config.with_vocab_size(manifest.vocab_size)


def held_out_evaluator(model, strategy: tf.distribute.Strategy, manifest: manifest_lib.Manifest, data_dir: str,
                       batch_size: int, seq_length: int, eval_every: int, eval_batches: int,
                       masking_config: masking.MaskingConfig):
  """The evaluator of EVAL_EVERY (tpu_electra.evaluate); None when it is 0, and (with a warning) for data without
  a held-out split."""
  if not eval_every:
    return None
  if manifest.eval_shard_paths(data_dir):
    return evaluate.make_evaluator(model, strategy, data_dir, batch_size, seq_length, eval_batches,
                                   masking_config=masking_config)
  logging.warning("EVAL_EVERY=%d but the data in %s has no held-out split: no evaluation. Rebuild it with "
                  "python -m data_prep.build to get one.", eval_every, data_dir)
  return None


def training_settings(masking_config: masking.MaskingConfig) -> Dict[str, Any]:
  """run.json's entries for what gin decides of a step beyond the objective and the encoder: the
  optimizer and its schedule, the masking, the input pipeline's order, the update's micro-batches
  and compilation (arguments the caller passes are recorded elsewhere in the record, or nowhere)."""
  return {
      "optimizer": runs.configured_arguments(optimization.create_optimizer, exclude=("train_steps",)),
      "masking": dataclasses.asdict(masking_config),
      "input_pipeline": runs.configured_arguments(
          pretraining.pretraining_dataset,
          exclude=("data_dir", "global_batch_size", "seq_length", "seed", "masking_config", "input_context",
                   "start_step")),
      "train_loop": {name: value for name, value in runs.configured_arguments(trainer.train).items()
                     if name in ("grad_accum_steps", "jit_compile")},
  }



def continued_record(model_dir: str, latest: str, record: Dict[str, Any],
                     accept_changes: bool) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
  """For a re-run of a model dir with checkpoints: (the run.json to write, None when the recorded one
  stays as it is; the name under which to keep the operative config of the steps before the change).

  A change of what trains (runs.changes) without `accept_changes` is refused in one line.
  """
  recorded = runs.read_record(model_dir)
  if recorded is None:
    return record, None  # A dir from before run.json: this run's record is the first.
  step = evaluate.checkpoint_step(latest)
  training, free = runs.changes(recorded, record)
  if training and not accept_changes:
    raise runs.ChangedSettingsError(
        f"{model_dir} holds checkpoints up to step {step} trained with other settings than these: "
        f"{runs.describe_changes(training)}; to keep its record true, train into a new --model_dir, or pass "
        f"{ACCEPT_CHANGES_FLAG} to continue this run with them from step {step} (recorded in "
        f"{runs.RUN_JSON}'s history)")
  if not training and not free:
    return None, None
  if training:
    logging.warning("%s: continuing from step %d with changed settings (%s): %s; recorded in %s's history.",
                    model_dir, step, ACCEPT_CHANGES_FLAG, runs.describe_changes(training), runs.RUN_JSON)
  kept = f"{os.path.splitext(trainer.OPERATIVE_CONFIG_NAME)[0]}.before-step-{step}.gin"
  if fileio.exists(os.path.join(model_dir, kept)) or not fileio.exists(
      os.path.join(model_dir, trainer.OPERATIVE_CONFIG_NAME)):
    kept = None  # Kept already (an earlier change at this step), or nothing to keep.
  return runs.continued_record(recorded, record, step, {**training, **free}, kept), kept


# EncoderConfig fields that decide the variables' shapes or what the restored weights compute.
_MATCHING_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "embedding_size",
                    "max_position_embeddings", "type_vocab_size", "share_layers", "activation")


def check_init_run(run: runs.PretrainingRun, encoder_config: EncoderConfig, manifest: manifest_lib.Manifest,
                   data_dir: str, seq_length: int) -> None:
  """One-line errors when the init run's encoder or vocab does not fit the configured model and the data."""
  init_config = run.encoder_config()
  if init_config.vocab_size != manifest.vocab_size:
    raise runs.RunError(
        f"--init_checkpoint={run.model_dir} has a vocab of {init_config.vocab_size} tokens but the data in "
        f"{data_dir!r} has {manifest.vocab_size} ({manifest.vocab_file}); continue pretraining on data built with the "
        f"init run's vocab ({run.vocab_path() or 'the vocab it was pretrained with'})")
  for field in _MATCHING_FIELDS[1:]:
    ours, theirs = getattr(encoder_config, field), getattr(init_config, field)
    if ours != theirs:
      raise runs.RunError(
          f"--init_checkpoint={run.model_dir} has EncoderConfig.{field}={theirs!r} but the configured model has "
          f"{field}={ours!r}; set EncoderConfig.{field} = {theirs!r} (e.g. --gin_param='EncoderConfig.{field} = "
          f"{theirs!r}') to continue from it")
  if seq_length > init_config.max_position_embeddings:
    raise runs.RunError(
        f"SEQ_LENGTH={seq_length} exceeds the max_position_embeddings={init_config.max_position_embeddings} of "
        f"--init_checkpoint={run.model_dir}; use data built with --max_seq_length<={init_config.max_position_embeddings}")
  check_same_vocab(run, manifest, data_dir)


def _tokens(path: str):
  with tf.io.gfile.GFile(path) as f:
    return [line.rstrip("\r\n") for line in f]


def check_same_vocab(run: runs.PretrainingRun, manifest: manifest_lib.Manifest, data_dir: str) -> None:
  """The init run's embedding rows must stand for the data's tokens: same vocab file contents."""
  data_vocab = manifest.vocab_path(data_dir)
  init_vocab = run.vocab_path()
  recorded = run.info["data"].get("vocab_sha256")
  data_sha = fileio.file_sha256(data_vocab)
  if init_vocab is None:
    if recorded is None:
      logging.warning("--init_checkpoint=%s: neither its vocab file nor its hash is at hand; only the vocab size "
                      "(%d) was checked against %s.", run.model_dir, manifest.vocab_size, data_vocab)
    elif recorded != data_sha:
      raise runs.RunError(
          f"--init_checkpoint={run.model_dir} was pretrained with a vocab of sha256 {recorded[:12]}… but the data's "
          f"vocab {data_vocab} has sha256 {data_sha[:12]}…: the embedding rows would stand for other tokens; "
          "continue on data built with the init run's vocab")
    return
  if fileio.file_sha256(init_vocab) == data_sha:
    return
  if manifest.vocab_type == "wordpiece":
    ours, theirs = _tokens(data_vocab), _tokens(init_vocab)
    differing = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
    if differing is None and len(ours) == len(theirs):
      return  # The same tokens (line endings aside).
    where = (f"token {differing} is {theirs[differing]!r} there but {ours[differing]!r} in the data's"
             if differing is not None else f"{len(theirs)} tokens there, {len(ours)} in the data's")
  else:
    where = "the files differ"
  raise runs.RunError(
      f"--init_checkpoint={run.model_dir}'s vocab {init_vocab} is not the data's vocab {data_vocab} ({where}): the "
      "embedding rows would stand for other tokens; continue on data built with the init run's vocab")


def initialize_from(init_checkpoint: str, model, optimizer, strategy: tf.distribute.Strategy, dataset_fn,
                    manifest: manifest_lib.Manifest, data_dir: str, seq_length: int) -> Dict:
  """Checks the init run against the configured model and the data, builds the model's variables and
  restores into them what the init checkpoint has; returns run.json's `init_checkpoint` record."""
  run = runs.read_run(init_checkpoint)
  check_init_run(run, model.encoder_config, manifest, data_dir, seq_length)
  keys = tf.train.load_checkpoint(run.checkpoint).get_variable_to_shape_map()
  whole_model = run.objective == model.registry_name and any(key.startswith("model/") for key in keys)
  # Built now (as trainer.train would) so that the restored values are assigned to existing
  # variables; train() builds nothing new and restores nothing from a model dir without checkpoints.
  spec_context = tf.distribute.InputContext(num_replicas_in_sync=strategy.num_replicas_in_sync)
  trainer.build_variables(model, optimizer, strategy, dataset_fn(spec_context, 0).element_spec)
  restored = warm_start.restore_available(run, model, whole_model)
  source = run.info.get("source")
  what = (f"converted from {source.get('architecture') or source.get('kind')}, objective {run.objective}" if source
          else f"a run of objective {run.objective}")
  logging.info("Continued pretraining from %s (%s): %s. Fresh optimizer, step 0.", run.checkpoint, what,
               restored.summary())
  return {"path": init_checkpoint, **run.identity(), "restore": restored.record()}


def corrupt_data_message(manifest: manifest_lib.Manifest, data_dir: str, model_dir: str, error: Exception) -> str:
  """One line naming the corrupt shard (found by its checksum) and the checkpoint left intact."""
  try:
    manifest_lib.verify_checksums(manifest, data_dir)
    culprit = f"a shard of {data_dir!r} ({errors.first_line(error)})"
  except manifest_lib.DataError as found:
    culprit = errors.first_line(found)
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
