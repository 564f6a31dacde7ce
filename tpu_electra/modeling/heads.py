"""Pretraining heads: masked-LM tied to the input embeddings, and replaced-token detection."""
import tpu_electra  # noqa: F401
import tensorflow as tf
from official.nlp.modeling import layers

from tpu_electra.modeling.encoder import Embeddings


def masked_lm_head(embeddings: Embeddings, activation: str = "gelu", name: str = "mlm_head"):
  """Dense(E) + activation + layer norm, then logits against the (tied) word-embedding table.

  Called as head(sequence_output, masked_positions=[B, P]) -> logits [B, P, vocab]; only the
  masked positions are projected onto the vocabulary.
  """
  return layers.MaskedLM(
      embedding_table=embeddings.embedding_table,
      activation=activation,
      initializer=tf.keras.initializers.TruncatedNormal(stddev=embeddings.config.initializer_range),
      output="logits",
      name=name)


class ReplacedTokenDetectionHead(tf.keras.layers.Layer):
  """Dense(H) + activation + Dense(1): one logit per token, "was this token replaced?"."""

  def __init__(self, hidden_size: int, activation: str = "gelu", initializer_range: float = 0.02,
               name: str = "rtd_head", **kwargs):
    super().__init__(name=name, **kwargs)
    def init():
      return tf.keras.initializers.TruncatedNormal(stddev=initializer_range)
    self.dense = tf.keras.layers.Dense(hidden_size, activation=activation, kernel_initializer=init(), name="dense")
    self.logits = tf.keras.layers.Dense(1, kernel_initializer=init(), name="logits")

  def call(self, sequence_output):
    return tf.squeeze(self.logits(self.dense(sequence_output)), axis=-1)
