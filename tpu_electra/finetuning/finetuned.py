"""A fine-tuning run directory, read back: its task model restored from one seed, and its tokenizer.

`tpu_electra.finetuning.runner.finetune` leaves run.json (kind "finetuning": task, max_seq_length,
the pretraining checkpoint, the encoder config, the label list, the tokenizer as used) and per seed
`seed_<s>/final/model` (tf.train.Checkpoint items `model` = the task model, `encoder`). This module
rebuilds the task model from that record and the task registry (no gin), for export; run.json's
"task_serving" holds what serving needs beyond the head (SQuAD's doc stride, query length, n-best size,
answer length and null threshold; RACE's options per question).
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

from tpu_electra import runs
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import models
from tpu_electra.modeling import EncoderConfig, TransformerEncoder


class FinetunedModelError(ValueError):
  """A fine-tuning run dir that is missing, incomplete, or of a task this module cannot rebuild."""


def is_finetuning_dir(path: str) -> bool:
  try:
    info = runs.read_record(path) if tf.io.gfile.isdir(path) else None
  except runs.RunError:
    return False
  return bool(info) and info.get("kind") == runs.FINETUNING


@dataclasses.dataclass
class FinetuningRun:
  model_dir: str
  info: Dict[str, Any]
  seed: int

  @property
  def task(self) -> str:
    return self.info["task"]

  @property
  def max_seq_length(self) -> int:
    return int(self.info["max_seq_length"])

  @property
  def checkpoint(self) -> str:
    return os.path.join(self.model_dir, f"seed_{self.seed}", "final", "model")

  def encoder_config(self) -> EncoderConfig:
    return EncoderConfig(**self.info["encoder_config"])

  def glue_task(self) -> Optional[glue.GlueTask]:
    try:
      return glue.get_task(self.task)
    except ValueError:
      return None

  @property
  def label_list(self) -> Optional[List[str]]:
    recorded = self.info.get("label_list")
    if recorded is not None:
      return list(recorded)
    task = self.glue_task()
    return list(task.label_list) if task is not None and task.label_list is not None else None

  def pretraining_run(self) -> runs.PretrainingRun:
    return runs.read_run(self.info["init_checkpoint"])

  def tokenizer_settings(self) -> Dict[str, Any]:
    return dict(self.info.get("tokenizer") or {})

  def load_tokenizer(self) -> tokenization.Tokenizer:
    settings = self.tokenizer_settings()
    return runs.load_tokenizer(self.pretraining_run(), settings.get("vocab"), settings.get("vocab_type"),
                                     settings.get("do_lower_case"))

  def vocab_path(self) -> Optional[str]:
    """The vocab file the run tokenized with (as `runs.load_tokenizer` finds it), or None."""
    vocab = self.tokenizer_settings().get("vocab")
    if vocab:
      return vocab
    run = self.pretraining_run()
    data_dir = run.resolved_data_dir()
    if data_dir is not None:
      return manifest_lib.read_manifest(data_dir).vocab_path(data_dir)
    recorded = run.info["data"].get("vocab_file")
    if recorded and tf.io.gfile.exists(os.path.join(run.model_dir, recorded)):
      return os.path.join(run.model_dir, recorded)
    return None

  def serving_settings(self, *names: str) -> Dict[str, Any]:
    """Settings the runner recorded for serving this task (run.json "task_serving"): SQuAD's windowing
    and decoding arguments, RACE's options per question."""
    recorded = self.info.get("task_serving") or {}
    missing = [name for name in names if name not in recorded]
    if missing:
      raise FinetunedModelError(
          f"{runs.path_of(self.model_dir)} does not record {', '.join(missing)} (a run from before run.json "
          f"recorded the task's serving settings); re-run its python -m tpu_electra.finetune command: finished "
          f"seeds are kept and run.json is rewritten")
    return {name: recorded[name] for name in names}


def read_finetuning_run(model_dir: str, seed: Optional[int] = None) -> FinetuningRun:
  """A fine-tuning run dir and the seed to use (default: the run's first seed)."""
  info = runs.read_record(model_dir)
  if not info or info.get("kind") != runs.FINETUNING:
    raise FinetunedModelError(f"{model_dir!r} is not a fine-tuning run dir (no run.json of kind {runs.FINETUNING!r})")
  seeds = list(info.get("seeds") or [])
  if seed is None:
    if not seeds:
      raise FinetunedModelError(f"{runs.path_of(model_dir)} lists no seeds; pass --seed")
    seed = seeds[0]
  run = FinetuningRun(model_dir, info, int(seed))
  if not tf.io.gfile.exists(run.checkpoint + ".index"):
    raise FinetunedModelError(f"no fine-tuned model for seed {seed} in {model_dir!r} (no {run.checkpoint}.index); "
                              f"the run's seeds are {seeds}")
  return run


def build_task_model(run: FinetuningRun, encoder: tf.keras.Model) -> models.TaskModel:
  """The run's task model (heads sized from the record; tagging's label count from the checkpoint)."""
  task = run.glue_task()
  if task is not None:
    if task.is_regression:
      return models.RegressionModel(encoder, dropout_rate=0.0)
    return models.ClassificationModel(encoder, task.num_labels, dropout_rate=0.0)
  name = run.task
  if name == "text_classification":
    if not run.label_list:
      raise FinetunedModelError(f"{runs.path_of(run.model_dir)} records no label_list; re-run the fine-tuning")
    return models.ClassificationModel(encoder, len(run.label_list), dropout_rate=0.0)
  if name.startswith("squad"):
    return models.SpanModel(encoder)
  shapes = tf.train.load_checkpoint(run.checkpoint).get_variable_to_shape_map()
  if name in ("pos", "ner"):
    kernel = [s for k, s in shapes.items() if k.startswith("model/head/logits/kernel")]
    if not kernel:
      raise FinetunedModelError(f"{run.checkpoint} has no tagging head")
    return models.TaggingModel(encoder, kernel[0][-1], dropout_rate=0.0)
  if name == "race":
    return models.MultipleChoiceModel(encoder, run.serving_settings("num_choices")["num_choices"], dropout_rate=0.0)
  raise FinetunedModelError(f"cannot rebuild the model of task {name!r} (GLUE, text classification, SQuAD, tagging and RACE runs only)")


def load_task_model(run: FinetuningRun) -> models.TaskModel:
  """The task model with `seed_<seed>/final/model` restored into it (every variable must match)."""
  encoder = TransformerEncoder(run.encoder_config(), name="encoder")
  model = build_task_model(run, encoder)
  # A multiple-choice model reads its flat batch as rows of num_choices options.
  dummy = encoder.dummy_inputs(batch_size=getattr(model, "num_choices", 1), seq_length=2)
  model.task_outputs(dummy, training=False)
  try:
    # `read`, as the runner `write`s (no save counter).
    status = tf.train.Checkpoint(model=model, encoder=encoder).read(run.checkpoint).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise FinetunedModelError(f"checkpoint {run.checkpoint} does not fit the {run.task} model described by "
                              f"{runs.path_of(run.model_dir)}: {first}") from None
  return model
