"""Fine-tuning heads on top of an encoder's `sequence_output` [B, L, H].

Each head returns float32 logits whatever the compute dtype, so losses and the decoding that reads
them (span n-best, softmax over options) are computed in full precision.
"""
import tensorflow as tf

# Added to the span logits of padding: far below any real logit, yet finite so softmax has no NaN.
_MASKED_LOGIT = -10000.0


def _initializer(initializer_range: float):
  # A new instance per layer: tf_keras warns that a reused unseeded initializer may repeat values.
  return tf.keras.initializers.TruncatedNormal(stddev=initializer_range)


class ClassificationHead(tf.keras.layers.Layer):
  """ELECTRA-style sentence head on the first ([CLS]) position: dense + activation, dropout, dense.

  `num_outputs` is the number of classes, or 1 for regression (STS-B) and for the per-option score
  of multiple choice.
  """

  def __init__(self, num_outputs: int, hidden_size: int, activation: str = "gelu",
               dropout_rate: float = 0.1, initializer_range: float = 0.02,
               name: str = "classification_head", **kwargs):
    super().__init__(name=name, **kwargs)
    if num_outputs < 1:
      raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
    self.num_outputs = num_outputs
    self.dense = tf.keras.layers.Dense(hidden_size, activation=activation,
                                       kernel_initializer=_initializer(initializer_range), name="dense")
    self.dropout = tf.keras.layers.Dropout(dropout_rate)
    self.out_proj = tf.keras.layers.Dense(num_outputs, kernel_initializer=_initializer(initializer_range),
                                          dtype=tf.float32, name="out_proj")

  def call(self, sequence_output, training=None):
    x = self.dense(sequence_output[:, 0, :])
    x = self.dropout(x, training=training)
    return self.out_proj(x)


class SpanHead(tf.keras.layers.Layer):
  """Start and end logits per position (SQuAD); padding positions get a very low logit.

  The [CLS] position stays a valid target: SQuAD 2.0's null answer is the span (0, 0), scored by
  `start_logits[0] + end_logits[0]` as `tpu_electra.finetuning.squad_decode.decode_predictions` expects.
  """

  def __init__(self, initializer_range: float = 0.02, name: str = "span_head", **kwargs):
    super().__init__(name=name, **kwargs)
    self.logits = tf.keras.layers.Dense(2, kernel_initializer=_initializer(initializer_range),
                                        dtype=tf.float32, name="logits")

  def call(self, sequence_output, input_mask):
    logits = self.logits(sequence_output)
    padding = (1.0 - tf.cast(input_mask, tf.float32)) * _MASKED_LOGIT
    start_logits, end_logits = tf.unstack(logits, axis=-1)
    return start_logits + padding, end_logits + padding


class TaggingHead(tf.keras.layers.Layer):
  """Dropout, then one dense layer giving label logits at every position [B, L, num_labels]."""

  def __init__(self, num_labels: int, dropout_rate: float = 0.1, initializer_range: float = 0.02,
               name: str = "tagging_head", **kwargs):
    super().__init__(name=name, **kwargs)
    self.dropout = tf.keras.layers.Dropout(dropout_rate)
    self.logits = tf.keras.layers.Dense(num_labels, kernel_initializer=_initializer(initializer_range),
                                        dtype=tf.float32, name="logits")

  def call(self, sequence_output, training=None):
    return self.logits(self.dropout(sequence_output, training=training))


class MultipleChoiceHead(tf.keras.layers.Layer):
  """One score per option from its own [CLS]: input [B * C, L, H], output logits [B, C].

  The options of a question are encoded as separate sequences (flattened into the batch); a
  softmax over the C scores of a question picks the answer.
  """

  def __init__(self, num_choices: int, hidden_size: int, activation: str = "gelu",
               dropout_rate: float = 0.1, initializer_range: float = 0.02,
               name: str = "multiple_choice_head", **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_choices = num_choices
    self.scorer = ClassificationHead(1, hidden_size, activation, dropout_rate, initializer_range, name="scorer")

  def call(self, sequence_output, training=None):
    scores = self.scorer(sequence_output, training=training)
    return tf.reshape(scores, [-1, self.num_choices])
