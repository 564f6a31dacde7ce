"""The text-in SavedModel of a GLUE or text classification run: one text or a pair of texts in, the label out."""
from typing import Dict

import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra.export.text import TokenizingModule, keep_first, save_text_module, serving_tokenizer
from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import finetuned


def cut_to_bucket(inputs: Dict[str, tf.Tensor], max_seq_length: int) -> Dict[str, tf.Tensor]:
  """Encoder inputs padded to max_seq_length, cut to the shortest of fine-tuning's bucket lengths
  (16, 32, ... max_seq_length) that holds the batch's longest row: a classifier reads only real
  positions, so the outputs are the same, and a short request no longer pays for 128 positions while
  the model still sees a handful of static shapes."""
  lengths = tf.constant(feature_streams.bucket_lengths(max_seq_length), tf.int32)
  longest = tf.reduce_max(tf.reduce_sum(inputs["input_mask"], axis=1))
  # The first bucket that holds the longest row (the last one, max_seq_length, holds every row).
  bucket = tf.gather(lengths, tf.argmax(tf.cast(lengths >= longest, tf.int32), output_type=tf.int32))
  return {name: value[:, :bucket] for name, value in inputs.items()}

class TextServingModule(TokenizingModule):
  """A fine-tuned task model behind signatures that take raw text and tokenize inside the graph.

  Packing is the runner's (`glue.convert_fields`): `[CLS] a [SEP]` with a cut to max_seq_length - 2,
  or `[CLS] a [SEP] b [SEP]` with the longer side giving way one token at a time (b on a tie) to
  max_seq_length - 3; rows are padded to max_seq_length as in training (`encode_*`), and the
  serving signatures cut that padding to the batch's length bucket (`cut_to_bucket`).
  """

  def encode(self, text_a, text_b=None) -> Dict[str, tf.Tensor]:
    """The encoder inputs (int32 [batch, max_seq_length]) for one text or a pair per row."""
    length = self.max_seq_length
    a = self._tokenize(text_a)
    if text_b is None:
      segments = [a[:, :max(0, length - 2)]]
    else:
      b = self._tokenize(text_b)
      len_a, len_b = a.row_lengths(), b.row_lengths()
      budget = tf.constant(length - 3, tf.int64)
      kept_a = tf.minimum(len_a, tf.maximum((budget + 1) // 2, budget - len_b))
      kept_b = tf.minimum(len_b, budget - kept_a)
      segments = [keep_first(a, kept_a), keep_first(b, kept_b)]
    word_ids, type_ids = tf_text.combine_segments(segments, self._cls, self._sep)
    word_ids, mask = tf_text.pad_model_inputs(word_ids, length, pad_value=self._pad)
    type_ids, _ = tf_text.pad_model_inputs(type_ids, length, pad_value=0)
    return {"input_word_ids": tf.cast(word_ids, tf.int32), "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32)}

  def outputs(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    result = self.model.task_outputs(inputs, training=False)
    if "scores" in result:
      return {"score": tf.cast(result["scores"], tf.float32)}
    logits = tf.cast(result["logits"], tf.float32)
    label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
    out = {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1), "label_id": label_id}
    if self._label_list:
      out["label"] = tf.gather(tf.constant(self._label_list), label_id)
    return out

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def serve_text(self, text):
    return self.outputs(cut_to_bucket(self.encode(text), self.max_seq_length))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                tf.TensorSpec([None], tf.string, name="text_b")])
  def serve_pair(self, text_a, text_b):
    return self.outputs(cut_to_bucket(self.encode(text_a, text_b), self.max_seq_length))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def encode_text(self, text):
    return self.encode(text)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                tf.TensorSpec([None], tf.string, name="text_b")])
  def encode_pair(self, text_a, text_b):
    return self.encode(text_a, text_b)

  @tf.function(input_signature=[{
      "input_word_ids": tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
      "input_mask": tf.TensorSpec([None, None], tf.int32, name="input_mask"),
      "input_type_ids": tf.TensorSpec([None, None], tf.int32, name="input_type_ids"),
  }])
  def serve_features(self, inputs):
    return self.outputs(inputs)


# GLUE tasks whose examples are sentence pairs (the others are single sentences).
PAIR_TASKS = ("mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli")


def export_run(run: finetuned.FinetuningRun, glue_task, output_dir: str) -> str:
  """Writes the text-in SavedModel of classification run `run` (`glue_task`: its GLUE task, or None)."""
  model = finetuned.load_task_model(run)
  tokenizer = serving_tokenizer(run)
  module = TextServingModule(model, tokenizer, run.max_seq_length, run.label_list, run.vocab_path())
  pair = glue_task is not None and glue_task.name in PAIR_TASKS
  signatures = {
      "serving_default": module.serve_pair if pair else module.serve_text,
      "encode": module.encode_pair if pair else module.encode_text,
      "serve_features": module.serve_features,
  }
  return save_text_module(run, tokenizer, module, signatures, output_dir, {
      "inputs": ["text_a", "text_b"] if pair else ["text"], "label_list": run.label_list})
