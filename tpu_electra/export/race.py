"""The text-in SavedModel of a RACE run: an article, a question and its options in, the answer letter out."""
from typing import Dict

import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra.export.text import TokenizingModule, first_max, keep_first, save_text_module, serving_tokenizer
from tpu_electra.finetuning import finetuned

class MultipleChoiceServingModule(TokenizingModule):
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
    segments = [keep_first(article_ids, kept_article), keep_first(question_ids, kept_question),
                keep_first(option_ids, kept_option)]
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
    index = tf.cast(first_max(logits), tf.int32)
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


def export_run(run: finetuned.FinetuningRun, output_dir: str) -> str:
  model = finetuned.load_task_model(run)
  tokenizer = serving_tokenizer(run)
  module = MultipleChoiceServingModule(model, tokenizer, run.max_seq_length, vocab_path=run.vocab_path())
  return save_text_module(run, tokenizer, module, {
      "serving_default": module.serve_race, "encode": module.encode_race,
      "serve_features": module.serve_option_features}, output_dir,
      {"inputs": ["article", "question", "options"], **run.serving_settings("num_choices")})


