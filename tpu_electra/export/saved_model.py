"""The SavedModel export: a pretraining run's encoder (ids in), or a fine-tuned run's task model (text in,
one module per kind of task)."""
from typing import Optional

import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra.export import classification
from tpu_electra.export import race
from tpu_electra.export import squad
from tpu_electra.export import tagging
from tpu_electra.export.common import ExportError
from tpu_electra.finetuning import finetuned
from tpu_electra.objectives import ReplacedTokenDetector

class ServingModule(tf.Module):
  """The encoder (and the objective's replaced-token detector when it has one) behind one serving function."""

  def __init__(self, encoder, detector: Optional[ReplacedTokenDetector] = None):
    super().__init__()
    self.encoder = encoder
    self.detector_logits = detector.detector_logits if detector is not None else None
    # Tracked so that the detector's variables (its head, TEAMS' branch layers) are saved, and not
    # the generator's.
    self.detector_layers = list(detector.detector_layers()) if detector is not None else []

  @tf.function(input_signature=[{
      "input_word_ids": tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
      "input_mask": tf.TensorSpec([None, None], tf.int32, name="input_mask"),
      "input_type_ids": tf.TensorSpec([None, None], tf.int32, name="input_type_ids"),
  }])
  def serve(self, inputs):
    encoder_output = self.encoder(inputs, training=False)
    outputs = {"sequence_output": tf.cast(encoder_output["sequence_output"], tf.float32)}
    if self.detector_logits is not None:
      outputs["rtd_logits"] = tf.cast(
          self.detector_logits(encoder_output, inputs["input_mask"], training=False), tf.float32)
    return outputs


def export_saved_model(model_dir: str, output_dir: str, overwrite: bool = False, seed: Optional[int] = None) -> str:
  """Writes the serving SavedModel of the run in `model_dir` to `output_dir`.

  A fine-tuning run gets the text-in SavedModel (`export_text_saved_model`); a pretraining run the
  encoder's id-in one.
  """
  fileio.check_new_output_dir(output_dir, overwrite)
  if finetuned.is_finetuning_dir(model_dir):
    return export_text_saved_model(model_dir, output_dir, overwrite=overwrite, seed=seed)
  run = runs.read_run(model_dir)
  objective = runs.load_objective(run)
  detector = objective if isinstance(objective, ReplacedTokenDetector) else None
  if detector is not None:
    # Heads are built on first use; build them eagerly so the checkpoint's values land in them
    # before the serving function is traced.
    dummy = objective.encoder.dummy_inputs(batch_size=1, seq_length=2)
    detector.detector_logits(objective.encoder(dummy, training=False), dummy["input_mask"], training=False)
  module = ServingModule(objective.encoder, detector)
  tmp_dir = fileio.temporary_sibling(output_dir)
  try:
    tf.saved_model.save(module, tmp_dir, signatures={"serving_default": module.serve})
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


def export_text_saved_model(model_dir: str, output_dir: str, overwrite: bool = False,
                            seed: Optional[int] = None) -> str:
  """Writes the text-in SavedModel of fine-tuning run `model_dir` (seed `seed`, default its first).

  GLUE: `serving_default` takes `text` (single-sentence tasks) or `text_a` + `text_b` (pair tasks)
  and returns `probabilities`, `logits`, `label_id`, `label` (classification) or `score`
  (regression); `encode` returns the packed encoder inputs for the same strings; `serve_features`
  takes them as ids. Tagging: `words` in, `tags` out. SQuAD: `question` + `context` in, `answer`
  and its character offsets out. RACE: `article`, `question`, `options` in, `probabilities` and the
  answer letter out.
  """
  fileio.check_new_output_dir(output_dir, overwrite)
  run = finetuned.read_finetuning_run(model_dir, seed)
  glue_task = run.glue_task()
  if glue_task is None and run.task in ("pos", "ner"):
    return tagging.export_run(run, output_dir)
  if glue_task is None and run.task in ("squad_v1", "squad_v2"):
    return squad.export_run(run, output_dir)
  if glue_task is None and run.task == "race":
    return race.export_run(run, output_dir)
  if glue_task is None and run.task != "text_classification":
    raise ExportError(f"the text-in SavedModel covers GLUE, text classification, tagging, SQuAD and RACE runs; "
                      f"{run.task!r} is not exported from text yet")
  return classification.export_run(run, glue_task, output_dir)
