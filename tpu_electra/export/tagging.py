"""The text-in SavedModel of a tagging run (POS, NER): words in, one tag per word out."""
from typing import Optional

import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra.export.classification import TextServingModule
from tpu_electra.export.common import ExportError
from tpu_electra.export.text import save_text_module, serving_tokenizer
from tpu_electra.finetuning import finetuned

class WordTaggingModule(TextServingModule):
  """A fine-tuned tagger behind a signature that takes words and returns one tag per word.

  Packing is the runner's (`tagging.convert_example`): each word is tokenized on its own, words are
  kept whole while they fit in max_seq_length - 2 tokens (the first that does not, and every later
  one, is dropped), and a word's tag is read at its first sub-token; dropped words and words with
  no tokens (the empty strings that pad a batch) get the fallback tag O.
  """

  def __init__(self, model, tokenizer, max_seq_length: int, label_list, vocab_path: Optional[str] = None,
               fallback: str = "O"):
    super().__init__(model, tokenizer, max_seq_length, label_list, vocab_path)
    self._fallback = fallback

  def encode_words(self, words):
    """(encoder inputs, word positions [batch, words] with -1 for words not in the sequence)."""
    shape = tf.shape(words, out_type=tf.int64)
    pieces = self._tokenize(tf.reshape(words, [-1]))  # [batch * words, (pieces)]
    counts = tf.reshape(pieces.row_lengths(), shape)
    ends = tf.cumsum(counts, axis=1)
    kept = ends <= self.max_seq_length - 2
    positions = tf.where(kept & (counts > 0), 1 + ends - counts, tf.constant(-1, tf.int64))
    kept_pieces = tf.ragged.boolean_mask(pieces, tf.reshape(kept, [-1]))
    # Back to one row of tokens per sentence: kept words are a prefix of each row.
    row_lengths = tf.reduce_sum(tf.cast(kept, tf.int64), axis=1)
    sentences = tf.RaggedTensor.from_row_lengths(kept_pieces, row_lengths).merge_dims(1, 2)
    word_ids, type_ids = tf_text.combine_segments([sentences], self._cls, self._sep)
    word_ids, mask = tf_text.pad_model_inputs(word_ids, self.max_seq_length, pad_value=self._pad)
    type_ids, _ = tf_text.pad_model_inputs(type_ids, self.max_seq_length, pad_value=0)
    inputs = {"input_word_ids": tf.cast(word_ids, tf.int32), "input_mask": tf.cast(mask, tf.int32),
              "input_type_ids": tf.cast(type_ids, tf.int32)}
    return inputs, positions

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="words")])
  def serve_words(self, words):
    inputs, positions = self.encode_words(words)
    logits = tf.cast(self.model.task_outputs(inputs, training=False)["logits"], tf.float32)
    word_logits = tf.gather(logits, tf.maximum(positions, 0), batch_dims=1)
    label_id = tf.argmax(word_logits, axis=-1, output_type=tf.int32)
    present = positions >= 0
    tags = tf.where(present, tf.gather(tf.constant(self._label_list), label_id), self._fallback)
    return {"tags": tags, "label_id": tf.where(present, label_id, -1), "word_logits": word_logits,
            "word_position": tf.cast(positions, tf.int32)}

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="words")])
  def encode_word_rows(self, words):
    inputs, positions = self.encode_words(words)
    return dict(inputs, word_position=tf.cast(positions, tf.int32))


def export_run(run: finetuned.FinetuningRun, output_dir: str) -> str:
  if not run.label_list:
    raise ExportError(f"{run.model_dir}/run.json lists no tag names (a run from before run.json recorded "
                      "label_list); re-run the fine-tuning to export it from text")
  model = finetuned.load_task_model(run)
  tokenizer = serving_tokenizer(run)
  module = WordTaggingModule(model, tokenizer, run.max_seq_length, run.label_list, run.vocab_path())
  return save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_words, "encode": module.encode_word_rows,
      "serve_features": module.serve_features}, output_dir, {"inputs": ["words"], "label_list": run.label_list})

