"""What the text-in SavedModels share: the tokenizing module they build on, and how one is saved."""
import json
import os
from typing import Dict, Optional

import tensorflow as tf

from tpu_electra import fileio
from tpu_electra.data import tokenization
from tpu_electra.export.common import ExportError, write_text
from tpu_electra.finetuning import features as features_lib
from tpu_electra.finetuning import finetuned
from tpu_electra.finetuning import models as task_models

def keep_first(ragged: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
  """The first `lengths[i]` tokens of each row i."""
  positions = tf.ragged.range(ragged.row_lengths())
  return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))


class TokenizingModule(tf.Module):
  """A fine-tuned task model with the run's tokenizer op (and vocab asset), for signatures that take text."""

  def __init__(self, model: task_models.TaskModel, tokenizer: tokenization.Tokenizer, max_seq_length: int,
               label_list=None, vocab_path: Optional[str] = None):
    super().__init__()
    self.model = model
    # The tokenizer's tensorflow_text op (a tf.Module: its vocab or SentencePiece model is saved with it).
    self.tokenizer_op = tokenizer._op  # pylint: disable=protected-access
    self._tokenize = tokenizer.tokenize_tensor
    if vocab_path:
      # The run's own vocab file, shipped inside the SavedModel (assets/) for reference and reuse.
      self.vocab_file = tf.saved_model.Asset(vocab_path)
    ids = features_lib.special_ids(tokenizer)
    self._cls, self._sep, self._pad = ids.cls, ids.sep, ids.pad
    self.max_seq_length = max_seq_length
    self._label_list = list(label_list) if label_list else None


def first_max(values: tf.Tensor) -> tf.Tensor:
  """Index of the first maximum along the last axis (tf.argmax leaves ties unspecified)."""
  width = tf.shape(values, out_type=tf.int64)[-1]
  top = tf.reduce_max(values, axis=-1, keepdims=True)
  positions = tf.range(width) + tf.zeros_like(values, tf.int64)
  return tf.reduce_min(tf.where(values == top, positions, width), axis=-1)

def serving_tokenizer(run: finetuned.FinetuningRun) -> tokenization.Tokenizer:
  tokenizer = run.load_tokenizer()
  if not hasattr(tokenizer, "_op"):
    raise ExportError(f"the run's tokenizer {type(tokenizer).__name__} has no tensorflow_text op to serve with")
  return tokenizer


def save_text_module(run: finetuned.FinetuningRun, tokenizer, module: tf.Module, signatures, output_dir: str,
                     record: Dict[str, object]) -> str:
  """Saves `module` with `signatures` and an export.json (the run, seed, checkpoint, tokenizer and `record`)."""
  tmp_dir = fileio.temporary_sibling(output_dir)
  try:
    tf.saved_model.save(module, tmp_dir, signatures=signatures)
    write_text(os.path.join(tmp_dir, "export.json"), json.dumps(dict({
        "task": run.task, "seed": run.seed, "checkpoint": run.checkpoint, "max_seq_length": run.max_seq_length,
        "do_lower_case": tokenizer.do_lower_case, "vocab_type": tokenizer.vocab_type}, **record), indent=2) + "\n")
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir
