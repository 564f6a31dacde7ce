r"""Exports a pretraining run's encoder, or a fine-tuned task model: a TensorFlow SavedModel, or Hugging Face weights.

  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=saved_model --output_dir=OUT
  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=huggingface --output_dir=OUT
  python -m tpu_electra.export --model_dir=FINETUNE_RUN [--seed=S] --format=saved_model --output_dir=OUT
  python -m tpu_electra.export --model_dir=FINETUNE_RUN [--seed=S] --format=huggingface --output_dir=OUT

--model_dir is a pretraining model dir (its latest checkpoint) or one checkpoint prefix in it, whose
objective is rebuilt from the dir's run.json; or a fine-tuning run dir (run.json of kind
"finetuning"), whose task model is rebuilt from run.json and restored from `seed_<S>/final/model`
(default S: the run's first seed).

saved_model, pretraining run: one serving signature taking `input_word_ids`, `input_mask`,
`input_type_ids` (int32 [batch, length]) and returning `sequence_output` [batch, length, H] and, for
an objective that is a ReplacedTokenDetector (ELECTRA, ALE, TEAMS), `rtd_logits` [batch, length]
(the detector's logits; for TEAMS those of its RTD branch, which has a top layer of its own).

saved_model, fine-tuning run: GLUE tasks' `serving_default` takes raw text, `text` (string
[batch]) for single-sentence tasks or `text_a` + `text_b` for pair tasks, tokenizes it inside the
graph with tensorflow_text (the run's vocab, shipped as assets/vocab.txt, and casing), packs
`[CLS] a [SEP] (b [SEP])` truncated as the runner's features are (longest side first) and padded to
the run's max_seq_length, and returns `probabilities`, `logits`, `label_id` and `label`
(classification) or `score` (regression). `encode` returns the packed ids for the same inputs;
`serve_features` takes ids. Tagging runs (POS, NER) take `words` (string [batch, words], padded with
"") and return `tags` per word (words cut off by max_seq_length, and pads, get O). SQuAD runs take
`question` and `context` (string [batch]), window each context as the runner's features (doc stride,
max query length, max-context flags; any number of windows per question, run as one flat batch) and
decode as the runner does (top n-best starts x ends, max answer length, 2.0's null score against the
run's threshold; settings from the run's run.json), returning `answer` ("" for none),
`answer_start` / `answer_end` (character offsets into the context, -1 for none), `score`,
`has_answer`, `num_windows` and for 2.0 `null_score` and `null_score_diff`. RACE runs take
`article`, `question` (string [batch]) and `options` (string [batch, options]) and return
`probabilities`, `logits`, `answer_index` and `answer` (the letter). Loading needs
`import tensorflow_text` (it registers the ops).

huggingface: `config.json` and `model.safetensors` in the layout of a transformers class:
- ELECTRA, ALE: `ElectraForPreTraining` (the detector is exactly its discriminator head on the last
  layer); cross-layer sharing (ALE) is written out as L copies of the shared layer.
- BERT, SCRIPT: their MLM head too, `BertForMaskedLM` when E = H, `ElectraForMaskedLM` (names
  `generator_predictions.*`, `generator_lm_head`) otherwise (BERT's classes have no embedding
  projection).
- TEAMS: `ElectraModel`, the encoder alone: its RTD branch reads layer L - 1 through a layer of its
  own, which no transformers class holds.
- fine-tuned: `ElectraForSequenceClassification` (GLUE; num_labels 1 for STS-B regression; its head
  is dense + GELU + out_proj on [CLS] as ours), `ElectraForTokenClassification` (tagging),
  `ElectraForQuestionAnswering` (SQuAD; ours also sets padding logits to -10000),
  `ElectraForMultipleChoice` (RACE; its sequence summary on the first token, dense H -> H + activation,
  then its H -> 1 classifier, is our [CLS] scorer). BertForSequenceClassification is never written:
  its pooler is dense + tanh.
The WordPiece vocab is copied as `vocab.txt` with a tokenizer config when reachable.

Mapping, per transformer layer i (official TransformerEncoderBlock → Hugging Face):
  self_attention/{query,key,value}/kernel [H, heads, d] → attention.self.{query,key,value}.weight [H, H]
  self_attention/attention_output/kernel [heads, d, H]  → attention.output.dense.weight [H, H]
  self_attention_layer_norm                             → attention.output.LayerNorm
  intermediate, output                                  → intermediate.dense, output.dense
  output_layer_norm                                     → output.LayerNorm
Dense kernels [in, out] become torch Linear weights [out, in]. Output goes to a temporary directory
renamed into place at the end, so a failed export never leaves a half-written OUT.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils

FORMATS = ("saved_model", "huggingface")


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("model_dir", None, "Pretraining model dir (or a checkpoint prefix inside one), or a "
                      "fine-tuning run dir.",
                      flag_values=flag_values)
  flags.DEFINE_enum("format", "saved_model", list(FORMATS), "What to write.", flag_values=flag_values)
  flags.DEFINE_integer("seed", None, "Fine-tuning runs: the seed whose seed_<seed>/final model to export "
                       "(default: the run's first seed).", flag_values=flag_values)
  cli_utils.define_output_flags(flag_values, "the export")


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "model_dir", "output_dir")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.export", check_flags)

import json
import os
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra import convert
from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra.data import tokenization
from tpu_electra.finetuning import features as features_lib
from tpu_electra.finetuning import finetuned
from tpu_electra.finetuning import models as task_models
from tpu_electra.objectives import MaskedLanguageModel
from tpu_electra.objectives import ReplacedTokenDetector

SAFETENSORS_NAME = "model.safetensors"


class ExportError(ValueError):
  """An export that cannot be done as asked."""


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


# ----------------------------------------------------------------------------------------------
# Fine-tuned runs: a SavedModel that takes raw text


def _keep_first(ragged: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
  """The first `lengths[i]` tokens of each row i."""
  positions = tf.ragged.range(ragged.row_lengths())
  return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))


class _TokenizingModule(tf.Module):
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


class TextServingModule(_TokenizingModule):
  """A fine-tuned task model behind signatures that take raw text and tokenize inside the graph.

  Packing is the runner's (`glue.convert_fields`): `[CLS] a [SEP]` with a cut to max_seq_length - 2,
  or `[CLS] a [SEP] b [SEP]` with the longer side giving way one token at a time (b on a tie) to
  max_seq_length - 3; rows are padded to max_seq_length as in training.
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
      segments = [_keep_first(a, kept_a), _keep_first(b, kept_b)]
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
    return self.outputs(self.encode(text))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                tf.TensorSpec([None], tf.string, name="text_b")])
  def serve_pair(self, text_a, text_b):
    return self.outputs(self.encode(text_a, text_b))

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


def _first_max(values: tf.Tensor) -> tf.Tensor:
  """Index of the first maximum along the last axis (tf.argmax leaves ties unspecified)."""
  width = tf.shape(values, out_type=tf.int64)[-1]
  top = tf.reduce_max(values, axis=-1, keepdims=True)
  positions = tf.range(width) + tf.zeros_like(values, tf.int64)
  return tf.reduce_min(tf.where(values == top, positions, width), axis=-1)


def _segment_first(keys: tf.Tensor, candidates: tf.Tensor, segments: tf.Tensor, num_segments) -> tf.Tensor:
  """Per segment, the smallest of `keys` where `candidates` holds (int64 max where none does)."""
  missing = tf.constant(np.iinfo(np.int64).max, tf.int64)
  return tf.math.unsorted_segment_min(tf.where(candidates, keys, missing), segments, num_segments)


# White space that separates SQuAD's words (`squad.split_on_whitespace`), as an RE2 class.
_SQUAD_WORD_DELIMITERS = "[ \\t\\r\\n\\x{202f}]+"


class SquadServingModule(_TokenizingModule):
  """A fine-tuned SQuAD model behind a signature that takes a question and its context as text.

  It repeats the runner (`squad.convert_examples_to_features`, `squad.decode_predictions`) inside the
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
    """One answer per example from its windows' logits, as `squad.decode_predictions`."""
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


class MultipleChoiceServingModule(_TokenizingModule):
  """A fine-tuned RACE model behind a signature that takes an article, a question and its options as text.

  Packing is the runner's (`race.convert_example`): `[CLS] article [SEP] question [SEP] option [SEP]`,
  article in segment 0, question and option in segment 1; when they do not fit only the article is
  cut (from its end), then the option, then the question (`race.fit_lengths`). Each option is scored
  from its own [CLS]; the answer is the first option with the highest score, as a letter ("A" = 0).
  """

  @staticmethod
  def _kept(lengths, budget):
    return tf.maximum(tf.minimum(lengths, budget), 0)

  def encode_options(self, article, question, options) -> Dict[str, tf.Tensor]:
    """Encoder inputs [batch, options, max_seq_length]."""
    length = self.max_seq_length
    shape = tf.shape(options, out_type=tf.int64)
    row = tf.repeat(tf.range(shape[0]), shape[1])
    article_ids = tf.gather(self._tokenize(article), row)
    question_ids = tf.gather(self._tokenize(question), row)
    option_ids = self._tokenize(tf.reshape(options, [-1]))
    budget = tf.constant(length - 4, tf.int64)
    kept_question = self._kept(question_ids.row_lengths(), budget)
    kept_option = self._kept(option_ids.row_lengths(), budget - kept_question)
    kept_article = self._kept(article_ids.row_lengths(), budget - kept_question - kept_option)
    segments = [_keep_first(article_ids, kept_article), _keep_first(question_ids, kept_question),
                _keep_first(option_ids, kept_option)]
    word_ids, type_ids = tf_text.combine_segments(segments, self._cls, self._sep)
    type_ids = tf.minimum(type_ids, 1)  # question and option share segment 1
    word_ids, mask = tf_text.pad_model_inputs(word_ids, length, pad_value=self._pad)
    type_ids, _ = tf_text.pad_model_inputs(type_ids, length, pad_value=0)
    out_shape = tf.stack([shape[0], shape[1], tf.constant(length, tf.int64)])
    return {"input_word_ids": tf.reshape(tf.cast(word_ids, tf.int32), out_shape),
            "input_mask": tf.reshape(tf.cast(mask, tf.int32), out_shape),
            "input_type_ids": tf.reshape(tf.cast(type_ids, tf.int32), out_shape)}

  def choose(self, inputs) -> Dict[str, tf.Tensor]:
    shape = tf.shape(inputs["input_word_ids"])
    flat = {name: tf.reshape(inputs[name], [-1, shape[-1]]) for name in inputs}
    sequence = self.model.encoder(flat, training=False)["sequence_output"]
    # The head's scorer, not task_outputs: the head reshapes to the run's fixed number of options,
    # while a request may bring any number.
    scores = self.model.head.scorer(sequence, training=False)
    logits = tf.reshape(tf.cast(scores, tf.float32), shape[:2])
    index = tf.cast(_first_max(logits), tf.int32)
    letters = tf.constant([chr(ord("A") + i) for i in range(26)])
    return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1), "answer_index": index,
            "answer": tf.gather(letters, index)}

  @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="article"),
                                tf.TensorSpec([None], tf.string, name="question"),
                                tf.TensorSpec([None, None], tf.string, name="options")])
  def serve_race(self, article, question, options):
    return self.choose(self.encode_options(article, question, options))

  @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="article"),
                                tf.TensorSpec([None], tf.string, name="question"),
                                tf.TensorSpec([None, None], tf.string, name="options")])
  def encode_race(self, article, question, options):
    return self.encode_options(article, question, options)

  @tf.function(autograph=False, input_signature=[{
      "input_word_ids": tf.TensorSpec([None, None, None], tf.int32, name="input_word_ids"),
      "input_mask": tf.TensorSpec([None, None, None], tf.int32, name="input_mask"),
      "input_type_ids": tf.TensorSpec([None, None, None], tf.int32, name="input_type_ids"),
  }])
  def serve_option_features(self, inputs):
    return self.choose(inputs)


# GLUE tasks whose examples are sentence pairs (the others are single sentences).
PAIR_TASKS = ("mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli")


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
    return _export_tagging_saved_model(run, output_dir)
  if glue_task is None and run.task in ("squad_v1", "squad_v2"):
    return _export_squad_saved_model(run, output_dir)
  if glue_task is None and run.task == "race":
    return _export_race_saved_model(run, output_dir)
  if glue_task is None and run.task != "text_classification":
    raise ExportError(f"the text-in SavedModel covers GLUE, text classification, tagging, SQuAD and RACE runs; "
                      f"{run.task!r} is not exported from text yet")
  model = finetuned.load_task_model(run)
  tokenizer = _serving_tokenizer(run)
  module = TextServingModule(model, tokenizer, run.max_seq_length, run.label_list, run.vocab_path())
  pair = glue_task is not None and glue_task.name in PAIR_TASKS
  signatures = {
      "serving_default": module.serve_pair if pair else module.serve_text,
      "encode": module.encode_pair if pair else module.encode_text,
      "serve_features": module.serve_features,
  }
  return _save_text_module(run, tokenizer, module, signatures, output_dir, {
      "inputs": ["text_a", "text_b"] if pair else ["text"], "label_list": run.label_list})


def _serving_tokenizer(run: finetuned.FinetuningRun) -> tokenization.Tokenizer:
  tokenizer = run.load_tokenizer()
  if not hasattr(tokenizer, "_op"):
    raise ExportError(f"the run's tokenizer {type(tokenizer).__name__} has no tensorflow_text op to serve with")
  return tokenizer


def _save_text_module(run: finetuned.FinetuningRun, tokenizer, module: tf.Module, signatures, output_dir: str,
                      record: Dict[str, object]) -> str:
  """Saves `module` with `signatures` and an export.json (the run, seed, checkpoint, tokenizer and `record`)."""
  tmp_dir = fileio.temporary_sibling(output_dir)
  try:
    tf.saved_model.save(module, tmp_dir, signatures=signatures)
    _write_text(os.path.join(tmp_dir, "export.json"), json.dumps(dict({
        "task": run.task, "seed": run.seed, "checkpoint": run.checkpoint, "max_seq_length": run.max_seq_length,
        "do_lower_case": tokenizer.do_lower_case, "vocab_type": tokenizer.vocab_type}, **record), indent=2) + "\n")
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


def _export_tagging_saved_model(run: finetuned.FinetuningRun, output_dir: str) -> str:
  if not run.label_list:
    raise ExportError(f"{run.model_dir}/run.json lists no tag names (a run from before run.json recorded "
                      "label_list); re-run the fine-tuning to export it from text")
  model = finetuned.load_task_model(run)
  tokenizer = _serving_tokenizer(run)
  module = WordTaggingModule(model, tokenizer, run.max_seq_length, run.label_list, run.vocab_path())
  return _save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_words, "encode": module.encode_word_rows,
      "serve_features": module.serve_features}, output_dir, {"inputs": ["words"], "label_list": run.label_list})


def squad_settings(run: finetuned.FinetuningRun) -> Dict[str, object]:
  """The run's windowing and decoding settings (SquadTask's arguments as the run had them)."""
  return run.serving_settings("version_2", "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                              "null_score_diff_threshold")


def _export_squad_saved_model(run: finetuned.FinetuningRun, output_dir: str) -> str:
  settings = squad_settings(run)
  model = finetuned.load_task_model(run)
  tokenizer = _serving_tokenizer(run)
  module = SquadServingModule(model, tokenizer, run.max_seq_length, vocab_path=run.vocab_path(), **settings)
  return _save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_squad, "encode": module.encode_squad,
      "serve_features": module.serve_window_features},
      output_dir, {"inputs": ["question", "context"], "squad": settings})


def _export_race_saved_model(run: finetuned.FinetuningRun, output_dir: str) -> str:
  model = finetuned.load_task_model(run)
  tokenizer = _serving_tokenizer(run)
  module = MultipleChoiceServingModule(model, tokenizer, run.max_seq_length, vocab_path=run.vocab_path())
  return _save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_race, "encode": module.encode_race,
      "serve_features": module.serve_option_features}, output_dir,
      {"inputs": ["article", "question", "options"], **run.serving_settings("num_choices")})


# ----------------------------------------------------------------------------------------------
# Hugging Face


def _linear(kernel: np.ndarray) -> np.ndarray:
  """A Keras Dense kernel [in, out] as a torch Linear weight [out, in]."""
  return np.ascontiguousarray(kernel.T)


def encoder_state_dict(encoder, prefix: str = "electra.") -> Dict[str, np.ndarray]:
  """Hugging Face ELECTRA tensor names → float32 arrays for a built TransformerEncoder."""
  embeddings = encoder.embeddings
  state = {
      f"{prefix}embeddings.word_embeddings.weight": embeddings.word_embeddings.embeddings.numpy(),
      f"{prefix}embeddings.position_embeddings.weight": embeddings.position_embeddings.weights[0].numpy(),
      f"{prefix}embeddings.token_type_embeddings.weight": embeddings.type_embeddings.embeddings.numpy(),
      f"{prefix}embeddings.LayerNorm.weight": embeddings.layer_norm.gamma.numpy(),
      f"{prefix}embeddings.LayerNorm.bias": embeddings.layer_norm.beta.numpy(),
  }
  if encoder.embedding_projection is not None:
    state[f"{prefix}embeddings_project.weight"] = _linear(encoder.embedding_projection.kernel.numpy())
    state[f"{prefix}embeddings_project.bias"] = encoder.embedding_projection.bias.numpy()
  for index, layer in enumerate(encoder.transformer_layers):
    state.update(convert.layer_state_dict(layer, f"{prefix}encoder.layer.{index}."))
  return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def rtd_head_state_dict(rtd_head) -> Dict[str, np.ndarray]:
  """ELECTRA's discriminator head as `ElectraForPreTraining.discriminator_predictions`."""
  return {
      "discriminator_predictions.dense.weight": _linear(rtd_head.dense.kernel.numpy()),
      "discriminator_predictions.dense.bias": rtd_head.dense.bias.numpy(),
      "discriminator_predictions.dense_prediction.weight": _linear(rtd_head.logits.kernel.numpy()),
      "discriminator_predictions.dense_prediction.bias": rtd_head.logits.bias.numpy(),
  }


def huggingface_config(encoder_config, architecture: str, pad_token_id: int = 0) -> Dict[str, object]:
  """config.json of transformers' ELECTRA for an encoder of `encoder_config`."""
  return {
      "architectures": [architecture],
      "model_type": "electra",
      "vocab_size": encoder_config.vocab_size,
      "embedding_size": encoder_config.embedding_width,
      "hidden_size": encoder_config.hidden_size,
      "num_hidden_layers": encoder_config.num_layers,
      "num_attention_heads": encoder_config.num_heads,
      "intermediate_size": encoder_config.intermediate_size,
      "hidden_act": convert.huggingface_activation(encoder_config.activation),
      "hidden_dropout_prob": encoder_config.dropout_rate,
      "attention_probs_dropout_prob": encoder_config.attention_dropout_rate,
      "max_position_embeddings": encoder_config.max_position_embeddings,
      "type_vocab_size": encoder_config.type_vocab_size,
      "initializer_range": encoder_config.initializer_range,
      # The epsilon of every layer norm in tpu_electra.modeling (and BERT's).
      "layer_norm_eps": 1e-12,
      "pad_token_id": pad_token_id,
      "position_embedding_type": "absolute",
      "torch_dtype": "float32",
  }


_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}


def safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> bytes:
  """The safetensors serialization: u64-LE header size, JSON header, then the raw tensors.

  The header names each tensor's dtype, shape and [begin, end) byte range in the data that follows;
  ranges are contiguous in name order. The header is space-padded to a multiple of 8 bytes.
  """
  header: Dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
  chunks, offset = [], 0
  for name in sorted(tensors):
    array = np.ascontiguousarray(tensors[name])
    if array.dtype not in _SAFETENSORS_DTYPES:
      raise ExportError(f"tensor {name} has dtype {array.dtype}, which this writer does not handle")
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    header[name] = {"dtype": _SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                    "data_offsets": [offset, offset + len(data)]}
    chunks.append(data)
    offset += len(data)
  encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
  encoded += b" " * (-len(encoded) % 8)
  return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks)


def _write_bytes(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _write_text(path: str, text: str) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)


def masked_lm_state_dict(mlm_head, bert: bool) -> Dict[str, np.ndarray]:
  """Our tied MLM head (dense + activation + layer norm, logits on the word embeddings + bias) under
  BertForMaskedLM's (`cls.predictions.*`) or ElectraForMaskedLM's (`generator_predictions.*`,
  `generator_lm_head.bias`) names; the decoder weight is the tied word-embedding table."""
  if bert:
    # pylint: disable-next=protected-access
    state = convert._official_mlm_head_tensors(mlm_head, "cls.predictions.transform.", "cls.predictions.bias")
  else:
    # pylint: disable-next=protected-access
    state = convert._official_mlm_head_tensors(mlm_head, "generator_predictions.", "generator_lm_head.bias")
  return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def bert_config(encoder_config, architecture: str, pad_token_id: int = 0) -> Dict[str, object]:
  """config.json of transformers' BERT for an encoder with E = H."""
  config = huggingface_config(encoder_config, architecture, pad_token_id)
  config["model_type"] = "bert"
  config.pop("embedding_size")
  return config


def _require_gelu(encoder_config, architecture: str) -> None:
  # transformers' ELECTRA heads (generator predictions, classifier) apply exact GELU whatever hidden_act says.
  if encoder_config.activation != "gelu":
    raise ExportError(f"{architecture}'s head always applies GELU, but this model's head uses "
                      f"{encoder_config.activation!r}; export --format=saved_model instead")


def _pretraining_state(objective, encoder) -> Tuple[str, Dict[str, np.ndarray], bool]:
  """(architecture, tensors, is BERT-named) of a pretraining objective's Hugging Face export."""
  if isinstance(objective, ReplacedTokenDetector):
    state = encoder_state_dict(encoder)
    head = objective.electra_discriminator_head()
    if head is None:
      # TEAMS: its detector reads layer L - 1 through a layer of its own, which no transformers class holds.
      return "ElectraModel", state, False
    head(tf.zeros([1, 1, encoder.config.hidden_size]))
    state.update(rtd_head_state_dict(head))
    return "ElectraForPreTraining", state, False
  if isinstance(objective, MaskedLanguageModel):
    network, mlm_head = objective.masked_lm()
    if network is encoder:
      mlm_head(tf.zeros([1, 1, encoder.config.hidden_size]), masked_positions=tf.zeros([1, 1], tf.int32))
      if encoder.embedding_projection is None:
        state = encoder_state_dict(encoder, prefix="bert.")
        state.update(masked_lm_state_dict(mlm_head, bert=True))
        return "BertForMaskedLM", state, True
      _require_gelu(encoder.config, "ElectraForMaskedLM")
      state = encoder_state_dict(encoder)
      state.update(masked_lm_state_dict(mlm_head, bert=False))
      return "ElectraForMaskedLM", state, False
  return "ElectraModel", encoder_state_dict(encoder), False


def _finetuned_state(model, encoder) -> Tuple[str, Dict[str, np.ndarray], Dict[str, object]]:
  """(architecture, tensors, extra config) of a fine-tuned task model's Hugging Face export."""
  state = encoder_state_dict(encoder)
  if isinstance(model, (task_models.ClassificationModel, task_models.RegressionModel)):
    # ElectraClassificationHead: dropout, dense, GELU, dropout, out_proj on [CLS] = our ClassificationHead
    # at inference. BertForSequenceClassification (pooler dense + tanh) computes something else.
    _require_gelu(encoder.config, "ElectraForSequenceClassification")
    head = model.head
    state.update({"classifier.dense.weight": _linear(head.dense.kernel.numpy()),
                  "classifier.dense.bias": head.dense.bias.numpy(),
                  "classifier.out_proj.weight": _linear(head.out_proj.kernel.numpy()),
                  "classifier.out_proj.bias": head.out_proj.bias.numpy()})
    regression = isinstance(model, task_models.RegressionModel)
    extra = {"num_labels": head.num_outputs,
             "problem_type": "regression" if regression else "single_label_classification"}
    return "ElectraForSequenceClassification", state, extra
  if isinstance(model, task_models.TaggingModel):
    # Dropout + one dense layer per position, as ElectraForTokenClassification.
    logits = model.head.logits
    state.update({"classifier.weight": _linear(logits.kernel.numpy()), "classifier.bias": logits.bias.numpy()})
    return "ElectraForTokenClassification", state, {"num_labels": int(logits.kernel.shape[-1])}
  if isinstance(model, task_models.SpanModel):
    # One dense layer to (start, end) per position, as ElectraForQuestionAnswering; ours also pushes
    # padding positions to -10000, which transformers leaves to the caller (logits at real tokens agree).
    logits = model.head.logits
    state.update({"qa_outputs.weight": _linear(logits.kernel.numpy()), "qa_outputs.bias": logits.bias.numpy()})
    return "ElectraForQuestionAnswering", state, {"num_labels": 2}
  if isinstance(model, task_models.MultipleChoiceModel):
    # ElectraForMultipleChoice: its sequence summary (first token, dense H -> H, activation, dropout) and
    # classifier (H -> 1) are our [CLS] scorer's dense + activation, dropout and out_proj.
    scorer = model.head.scorer
    state.update({"sequence_summary.summary.weight": _linear(scorer.dense.kernel.numpy()),
                  "sequence_summary.summary.bias": scorer.dense.bias.numpy(),
                  "classifier.weight": _linear(scorer.out_proj.kernel.numpy()),
                  "classifier.bias": scorer.out_proj.bias.numpy()})
    return "ElectraForMultipleChoice", state, {
        "summary_type": "first", "summary_use_proj": True, "summary_proj_to_labels": False,
        "summary_activation": convert.huggingface_activation(encoder.config.activation),
        "summary_last_dropout": encoder.config.dropout_rate}
  raise ExportError(f"no transformers class computes {type(model).__name__}'s head as ours does; "
                    "export --format=saved_model instead")


def _write_huggingface_dir(output_dir: str, config: Dict[str, object], state: Dict[str, np.ndarray],
                           vocab_path: Optional[str], do_lower_case: bool, bert: bool, max_length: int) -> None:
  tmp_dir = fileio.temporary_sibling(output_dir)
  tf.io.gfile.makedirs(tmp_dir)
  try:
    _write_text(os.path.join(tmp_dir, "config.json"), json.dumps(config, indent=2) + "\n")
    _write_bytes(os.path.join(tmp_dir, SAFETENSORS_NAME), safetensors_bytes(state))
    if vocab_path is not None:
      tf.io.gfile.copy(vocab_path, os.path.join(tmp_dir, "vocab.txt"), overwrite=True)
      _write_text(os.path.join(tmp_dir, "tokenizer_config.json"), json.dumps({
          "tokenizer_class": "BertTokenizer" if bert else "ElectraTokenizer", "do_lower_case": do_lower_case,
          "model_max_length": max_length}, indent=2) + "\n")
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)


def export_huggingface(model_dir: str, output_dir: str, overwrite: bool = False, seed: Optional[int] = None) -> str:
  """Writes config.json, model.safetensors (and the vocab when reachable) to `output_dir`.

  Pretraining runs: ElectraForPreTraining (ELECTRA, ALE), BertForMaskedLM (BERT, SCRIPT with E = H),
  ElectraForMaskedLM (BERT, SCRIPT with E != H), ElectraModel (TEAMS). Fine-tuning runs:
  ElectraForSequenceClassification (GLUE, regression included), ElectraForTokenClassification
  (tagging), ElectraForQuestionAnswering (SQuAD), ElectraForMultipleChoice (RACE).
  """
  fileio.check_new_output_dir(output_dir, overwrite)
  if finetuned.is_finetuning_dir(model_dir):
    return _export_finetuned_huggingface(model_dir, output_dir, seed)
  run = runs.read_run(model_dir)
  objective = runs.load_objective(run)
  encoder = objective.encoder
  architecture, state, bert = _pretraining_state(objective, encoder)
  manifest = run.manifest()
  pad_id = manifest.special_token_ids["[PAD]"] if manifest else 0
  config = (bert_config if bert else huggingface_config)(encoder.config, architecture, pad_id)
  vocab_path = None
  if manifest is not None and manifest.vocab_type == tokenization.WORDPIECE:
    vocab_path = manifest.vocab_path(run.resolved_data_dir())
  _write_huggingface_dir(output_dir, config, state, vocab_path, manifest.do_lower_case if manifest else True, bert,
                         encoder.config.max_position_embeddings)
  return output_dir


def _export_finetuned_huggingface(model_dir: str, output_dir: str, seed: Optional[int]) -> str:
  run = finetuned.read_finetuning_run(model_dir, seed)
  model = finetuned.load_task_model(run)
  encoder = model.encoder
  architecture, state, extra = _finetuned_state(model, encoder)
  tokenizer = run.load_tokenizer()
  config = huggingface_config(encoder.config, architecture, tokenizer.special_token_ids["[PAD]"])
  config.update(extra)
  labels = run.label_list
  if labels and len(labels) == config.get("num_labels"):
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
  vocab_path = run.vocab_path() if tokenizer.vocab_type == tokenization.WORDPIECE else None
  _write_huggingface_dir(output_dir, config, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
                         vocab_path, tokenizer.do_lower_case, False, run.max_seq_length)
  return output_dir


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the export the parsed flags ask for; returns the exit status (errors: one line)."""
  check_flags(flag_values)
  if flag_values.seed is None and finetuned.is_finetuning_dir(flag_values.model_dir):
    seed = finetuned.read_finetuning_run(flag_values.model_dir).seed
    print(f"exporting seed {seed}, the run's first seed (--seed chooses another)")
  exporter = export_saved_model if flag_values.format == "saved_model" else export_huggingface
  try:
    path = exporter(flag_values.model_dir, flag_values.output_dir, overwrite=flag_values.overwrite,
                    seed=flag_values.seed)
  except tf.errors.OpError as e:
    if not fileio.is_disk_full(e):
      raise
    # The export is written into a temporary sibling, removed on failure: nothing half-written stays.
    raise ExportError(f"no space left to write the export {flag_values.output_dir} ({cli_utils.first_line(e)}); "
                      "nothing was written: free space there or choose another --output_dir") from None
  print(f"wrote {flag_values.format} export to {path}")
  return 0


cli = cli_utils.command_line(define_flags, run)

