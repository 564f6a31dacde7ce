"""The text-in SavedModel of a SQuAD run: a question and its context in, the answer span out."""
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra.export.common import ExportError
from tpu_electra.export.text import TokenizingModule, save_text_module, serving_tokenizer
from tpu_electra.finetuning import finetuned

def _segment_first(keys: tf.Tensor, candidates: tf.Tensor, segments: tf.Tensor, num_segments) -> tf.Tensor:
  """Per segment, the smallest of `keys` where `candidates` holds (int64 max where none does)."""
  missing = tf.constant(np.iinfo(np.int64).max, tf.int64)
  return tf.math.unsorted_segment_min(tf.where(candidates, keys, missing), segments, num_segments)


# White space that separates SQuAD's words (`squad.split_on_whitespace`), as an RE2 class.
_SQUAD_WORD_DELIMITERS = "[ \\t\\r\\n\\x{202f}]+"


class SquadServingModule(TokenizingModule):
  """A fine-tuned SQuAD model behind a signature that takes a question and its context as text.

  It repeats the runner (`squad.convert_examples_to_features`, `squad_decode.decode_predictions`) inside the
  graph: the context is split into white-space words and each word is tokenized on its own; the
  question is cut to max_query_length tokens; the document is windowed as `squad.doc_spans` does
  (window length max_seq_length - question - 3, each starting doc_stride after the last, the last
  ending at the last token), as many windows as each context needs (the batch of windows is flat,
  with each window's example index); each token is judged only in the window that gives it the most
  context (`squad.max_context_windows`, ties to the first window). Every window proposes its
  n_best_size best starts × n_best_size best ends (ties to the lower position); spans outside the
  window, reversed, longer than max_answer_length tokens or starting outside their max-context
  window are dropped; the best-scoring span of all windows wins (ties to the runner's candidate
  order: window, start rank, end rank). SQuAD 2.0: the null score is the smallest [CLS] start + end
  score over the windows, and "" is answered when null score - best span score exceeds the run's
  threshold (or no span is valid). The answer is the whole words the span covers joined by single
  spaces, exactly the runner's text; `answer_start` / `answer_end` are character offsets of those
  words in the context (Python string indices), -1 when the answer is "".
  """

  def __init__(self, model, tokenizer, max_seq_length: int, version_2: bool, doc_stride: int,
               max_query_length: int, n_best_size: int, max_answer_length: int,
               null_score_diff_threshold: float, vocab_path: Optional[str] = None):
    super().__init__(model, tokenizer, max_seq_length, None, vocab_path)
    if doc_stride < 1 or max_query_length < 0 or n_best_size < 1 or max_answer_length < 1:
      raise ExportError(f"SQuAD settings out of range: doc_stride={doc_stride}, max_query_length={max_query_length}, "
                        f"n_best_size={n_best_size}, max_answer_length={max_answer_length}")
    self.version_2 = version_2
    self.doc_stride = doc_stride
    self.max_query_length = max_query_length
    self.n_best_size = n_best_size
    self.max_answer_length = max_answer_length
    self.null_score_diff_threshold = float(null_score_diff_threshold)

  def outputs(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    result = self.model.task_outputs(inputs, training=False)
    return {name: tf.cast(result[name], tf.float32) for name in ("start_logits", "end_logits")}

  def windows(self, question, context) -> Dict[str, tf.Tensor]:
    """The runner's features of every window of every (question, context), flat, plus what decoding needs."""
    length = self.max_seq_length
    words, word_begin, word_end = tf_text.regex_split_with_offsets(context, _SQUAD_WORD_DELIMITERS)
    query = self._tokenize(question)[:, :self.max_query_length]
    pieces = self._tokenize(words.flat_values)  # [words in the batch, (pieces)]
    # The document's tokens per example, and each token's word (an index into the batch's words).
    doc = tf.RaggedTensor.from_row_splits(pieces.flat_values, tf.gather(pieces.row_splits, words.row_splits))
    token_word = tf.repeat(tf.range(tf.shape(words.flat_values, out_type=tf.int64)[0]), pieces.row_lengths())
    num_tokens = doc.row_lengths()
    query_length = query.row_lengths()
    window_length = length - query_length - 3
    # As the runner's features, a question too long for any document token is an error (the run's
    # max_query_length may allow one when max_seq_length is short).
    with tf.control_dependencies([tf.debugging.assert_positive(
        window_length, message=f"max_seq_length {length} leaves no room for the document after the question")]):
      window_length = tf.identity(window_length)
    stride = tf.minimum(window_length, self.doc_stride)
    extra = tf.maximum(num_tokens - window_length, 0)
    num_windows = 1 + (extra + stride - 1) // stride
    row = tf.repeat(tf.range(tf.shape(num_windows, out_type=tf.int64)[0]), num_windows)  # [W]
    index = tf.ragged.range(num_windows).flat_values  # window index within its example
    start = index * tf.gather(stride, row)
    span = tf.minimum(tf.gather(num_tokens, row) - start, tf.gather(window_length, row))
    # Window tokens: (window, i) for i < span, as document token `start + i` of its example.
    within = tf.ragged.range(span)
    window_of = within.value_rowids()
    offset = within.flat_values
    doc_token = tf.gather(doc.row_splits, tf.gather(row, window_of)) + tf.gather(start, window_of) + offset
    window_ids = tf.RaggedTensor.from_row_splits(tf.gather(doc.flat_values, doc_token), within.row_splits)
    # Max context (`squad.max_context_windows`): min(left, right) + 0.01 * span, in float64 as NumPy does;
    # the first window with the best score keeps the token.
    spans = tf.gather(span, window_of)
    score = (tf.cast(tf.minimum(offset, spans - 1 - offset), tf.float64)
             + tf.constant(0.01, tf.float64) * tf.cast(spans, tf.float64))
    num_doc_tokens = tf.shape(doc.flat_values, out_type=tf.int64)[0]
    best = tf.math.unsorted_segment_max(score, doc_token, num_doc_tokens)
    first = _segment_first(tf.gather(index, window_of), score == tf.gather(best, doc_token), doc_token,
                           num_doc_tokens)
    max_context = tf.gather(index, window_of) == tf.gather(first, doc_token)
    word_ids, type_ids = tf_text.combine_segments([tf.gather(query, row), window_ids], self._cls, self._sep)
    word_ids, mask = tf_text.pad_model_inputs(word_ids, length, pad_value=self._pad)
    type_ids, _ = tf_text.pad_model_inputs(type_ids, length, pad_value=0)
    # Per window position: the word (index into the batch's words) and the max-context flag, -1 / False
    # outside the window.
    doc_offset = tf.gather(query_length, row) + 2
    positions = tf.stack([window_of, tf.gather(doc_offset, window_of) + offset], axis=1)
    shape = tf.stack([tf.shape(row, out_type=tf.int64)[0], tf.constant(length, tf.int64)])
    position_word = tf.scatter_nd(positions, tf.gather(token_word, doc_token) + 1, shape) - 1
    position_max_context = tf.scatter_nd(positions, tf.cast(max_context, tf.int32), shape) > 0
    return {"input_word_ids": tf.cast(word_ids, tf.int32), "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32), "row": row, "index": index, "start": start,
            "span": span, "position_word": position_word, "position_max_context": position_max_context,
            "words": words, "word_begin": word_begin, "word_end": word_end}

  def decode(self, context, windows, start_logits, end_logits) -> Dict[str, tf.Tensor]:
    """One answer per example from its windows' logits, as `squad_decode.decode_predictions`."""
    batch = tf.shape(context, out_type=tf.int64)[0]
    row = windows["row"]
    k = min(self.n_best_size, self.max_seq_length)
    top_starts = tf.math.top_k(start_logits, k).indices  # ties: the lower position first, as Python's stable sort
    top_ends = tf.math.top_k(end_logits, k).indices
    word = windows["position_word"]
    start_word = tf.gather(word, top_starts, batch_dims=1)[:, :, None]  # [W, k, 1]
    end_word = tf.gather(word, top_ends, batch_dims=1)[:, None, :]  # [W, 1, k]
    start_position = tf.cast(top_starts, tf.int64)[:, :, None]
    end_position = tf.cast(top_ends, tf.int64)[:, None, :]
    valid = ((start_word >= 0) & (end_word >= 0)
             & tf.gather(windows["position_max_context"], top_starts, batch_dims=1)[:, :, None]
             & (end_position >= start_position) & (end_position - start_position + 1 <= self.max_answer_length))
    # The runner's scores: Python floats (float64) of the float32 logits, added.
    start_scores = tf.cast(tf.gather(start_logits, top_starts, batch_dims=1), tf.float64)[:, :, None]
    end_scores = tf.cast(tf.gather(end_logits, top_ends, batch_dims=1), tf.float64)[:, None, :]
    scores = tf.reshape(start_scores + end_scores, [-1])
    valid = tf.reshape(valid, [-1])
    first_words = tf.reshape(tf.broadcast_to(start_word, [tf.shape(row)[0], k, k]), [-1])
    last_words = tf.reshape(tf.broadcast_to(end_word, [tf.shape(row)[0], k, k]), [-1])
    candidate_row = tf.repeat(row, k * k)
    scores = tf.where(valid, scores, tf.constant(-np.inf, tf.float64))
    best = tf.math.unsorted_segment_max(scores, candidate_row, batch)
    has_span = tf.math.unsorted_segment_max(tf.cast(valid, tf.int32), candidate_row, batch) > 0
    # The first candidate (in the runner's order: window, start rank, end rank) with the best score.
    chosen = _segment_first(tf.range(tf.shape(scores, out_type=tf.int64)[0]),
                            valid & (scores == tf.gather(best, candidate_row)), candidate_row, batch)
    chosen = tf.where(has_span, chosen, 0)
    out = {"num_windows": tf.cast(tf.math.bincount(tf.cast(row, tf.int32), minlength=tf.cast(batch, tf.int32)),
                                  tf.int32)}
    answered = has_span
    if self.version_2:
      null_scores = tf.cast(start_logits[:, 0], tf.float64) + tf.cast(end_logits[:, 0], tf.float64)
      null = tf.math.unsorted_segment_min(null_scores, row, batch)
      if self.n_best_size <= 1:
        # An n-best list of one holds only the null answer when it outscores every span (a tie goes to the span).
        has_span &= ~(null > best)
      diff = tf.where(has_span, null - best, tf.constant(np.inf, tf.float64))
      answered = has_span & ~(diff > self.null_score_diff_threshold)
      out.update(null_score=null, null_score_diff=diff)
    first_word = tf.where(answered, tf.gather(first_words, chosen), 0)
    last_word = tf.where(answered, tf.gather(last_words, chosen), -1)
    words = windows["words"].flat_values
    answer_words = tf.gather(words, tf.ragged.range(first_word, last_word + 1))
    answer = tf.strings.reduce_join(answer_words, axis=1, separator=" ")
    # A trailing 0 so that a batch without a single context word (every context empty) gathers too.
    begin_byte = tf.gather(tf.concat([windows["word_begin"].flat_values, [0]], 0), tf.maximum(first_word, 0))
    end_byte = tf.gather(tf.concat([windows["word_end"].flat_values, [0]], 0), tf.maximum(last_word, 0))

    def characters(byte_offset):
      # Python string indices: characters before the byte offset.
      return tf.strings.length(tf.strings.substr(context, tf.zeros_like(byte_offset), byte_offset), unit="UTF8_CHAR")

    missing = tf.constant(-1, tf.int32)
    out.update(
        answer=answer,
        answer_start=tf.where(answered, characters(begin_byte), missing),
        answer_end=tf.where(answered, characters(end_byte), missing),
        has_answer=answered,
        score=tf.where(has_span, best, tf.constant(-np.inf, tf.float64)))
    return out

  @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                tf.TensorSpec([None], tf.string, name="context")])
  def serve_squad(self, question, context):
    windows = self.windows(question, context)
    outputs = self.outputs({k: windows[k] for k in ("input_word_ids", "input_mask", "input_type_ids")})
    return self.decode(context, windows, outputs["start_logits"], outputs["end_logits"])

  @tf.function(autograph=False, input_signature=[{
      "input_word_ids": tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
      "input_mask": tf.TensorSpec([None, None], tf.int32, name="input_mask"),
      "input_type_ids": tf.TensorSpec([None, None], tf.int32, name="input_type_ids"),
  }])
  def serve_window_features(self, inputs):
    return self.outputs(inputs)

  @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                tf.TensorSpec([None], tf.string, name="context")])
  def encode_squad(self, question, context):
    windows = self.windows(question, context)
    # Words as indices within their example (the runner's token_to_orig_map), -1 outside the window.
    word = windows["position_word"]
    example_first_word = tf.gather(windows["words"].row_splits, windows["row"])[:, None]
    return {"input_word_ids": windows["input_word_ids"], "input_mask": windows["input_mask"],
            "input_type_ids": windows["input_type_ids"], "example_index": tf.cast(windows["row"], tf.int32),
            "window_index": tf.cast(windows["index"], tf.int32), "window_start": tf.cast(windows["start"], tf.int32),
            "token_to_word": tf.cast(tf.where(word >= 0, word - example_first_word, -1), tf.int32),
            "token_is_max_context": windows["position_max_context"]}


def squad_settings(run: finetuned.FinetuningRun) -> Dict[str, object]:
  """The run's windowing and decoding settings (SquadTask's arguments as the run had them)."""
  return run.serving_settings("version_2", "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                              "null_score_diff_threshold")


def export_run(run: finetuned.FinetuningRun, output_dir: str) -> str:
  settings = squad_settings(run)
  model = finetuned.load_task_model(run)
  tokenizer = serving_tokenizer(run)
  module = SquadServingModule(model, tokenizer, run.max_seq_length, vocab_path=run.vocab_path(), **settings)
  return save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_squad, "encode": module.encode_squad,
      "serve_features": module.serve_window_features},
      output_dir, {"inputs": ["question", "context"], "squad": settings})

