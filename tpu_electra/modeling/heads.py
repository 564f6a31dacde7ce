"""Pretraining heads: masked-LM tied to the input embeddings, replaced-token detection, multi-word selection."""
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


class MultiWordSelectionHead(tf.keras.layers.Layer):
  """Scores candidate tokens at the masked positions (TEAMS Eq. 7).

  The hidden state at each masked position goes through Dense(E) + activation + layer norm (as in
  the MLM head, so it lives in the word-embedding space when E != H); each candidate's logit is its
  dot product with the candidate's row of the tied word-embedding table. No output bias: Eq. 7 has
  none, and a per-token bias would let the head prefer frequent words regardless of context.
  """

  def __init__(self, embeddings: Embeddings, activation: str = "gelu", name: str = "mws_head", **kwargs):
    super().__init__(name=name, **kwargs)
    self.embedding_table = embeddings.embedding_table
    init = tf.keras.initializers.TruncatedNormal(stddev=embeddings.config.initializer_range)
    self.dense = tf.keras.layers.Dense(
        embeddings.config.embedding_width, activation=activation, kernel_initializer=init, name="dense")
    self.layer_norm = tf.keras.layers.LayerNormalization(epsilon=1e-12, dtype=tf.float32, name="layer_norm")

  def call(self, sequence_output, positions, candidate_ids):
    """[B, L, H], [B, P], [B, P, C] -> logits [B, P, C]."""
    hidden = self.dense(tf.gather(sequence_output, positions, batch_dims=1, axis=1))
    hidden = tf.cast(self.layer_norm(hidden), self.compute_dtype)
    candidates = tf.gather(tf.cast(self.embedding_table, self.compute_dtype), candidate_ids)
    return tf.einsum("bpe,bpce->bpc", hidden, candidates)
