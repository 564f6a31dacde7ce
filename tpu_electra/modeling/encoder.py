"""A BERT/ELECTRA/ALBERT transformer encoder as a Keras model, from official.nlp.modeling layers."""
from typing import Optional, Sequence

import tensorflow as tf
from official.nlp.modeling import layers

from tpu_electra.modeling.config import EncoderConfig


def _initializer(config: EncoderConfig):
  # A fresh instance per layer: Keras gives every use of one unseeded instance the same values.
  return tf.keras.initializers.TruncatedNormal(stddev=config.initializer_range)


class Embeddings(tf.keras.layers.Layer):
  """Word + position + token-type embeddings, layer norm and dropout, of width E.

  ELECTRA shares one instance between its generator and discriminator.
  """

  def __init__(self, config: EncoderConfig, name: str = "embeddings", **kwargs):
    super().__init__(name=name, **kwargs)
    if config.vocab_size is None:
      raise ValueError("EncoderConfig.vocab_size is unset: take it from the data manifest before building a model")
    self.config = config
    width = config.embedding_width
    self.word_embeddings = layers.OnDeviceEmbedding(
        config.vocab_size, width, initializer=_initializer(config), name="word_embeddings")
    self.position_embeddings = layers.PositionEmbedding(
        config.max_position_embeddings, initializer=_initializer(config), name="position_embeddings")
    self.type_embeddings = layers.OnDeviceEmbedding(
        config.type_vocab_size, width, initializer=_initializer(config), use_one_hot=True, name="type_embeddings")
    self.layer_norm = tf.keras.layers.LayerNormalization(epsilon=1e-12, dtype=tf.float32, name="layer_norm")
    self.dropout = tf.keras.layers.Dropout(config.dropout_rate)

  def build(self, input_shape=None):
    # Built eagerly so the (shared, tied) embedding table exists before any head needs it; the
    # name scopes give the variables the names Keras would (weight decay excludes "layer_norm").
    width = self.config.embedding_width
    with tf.name_scope(self.name):
      for layer, shape in ((self.word_embeddings, (None, None)), (self.type_embeddings, (None, None)),
                           (self.position_embeddings, (None, None, width)), (self.layer_norm, (None, None, width))):
        with tf.name_scope(layer.name):
          layer.build(shape)
    super().build(input_shape)

  @property
  def embedding_table(self):
    return self.word_embeddings.embeddings

  def call(self, word_ids, type_ids, training=None):
    words = self.word_embeddings(word_ids)
    x = words + self.position_embeddings(words) + self.type_embeddings(type_ids)
    x = tf.cast(self.layer_norm(x), self.compute_dtype)
    return self.dropout(x, training=training)


def encoder_inputs(batch, word_ids=None):
  """An encoder's inputs from a batch's `input_ids` (or `word_ids`, e.g. a corrupted copy),
  `input_mask` and `segment_ids`."""
  return {"input_word_ids": batch["input_ids"] if word_ids is None else word_ids,
          "input_mask": batch["input_mask"], "input_type_ids": batch["segment_ids"]}


def transformer_block(config: EncoderConfig, name: str) -> layers.TransformerEncoderBlock:
  """One transformer layer of the encoder's shape (also for task-specific layers, e.g. TEAMS' RTD)."""
  return layers.TransformerEncoderBlock(
      num_attention_heads=config.num_heads,
      inner_dim=config.intermediate_size,
      inner_activation=config.activation,
      output_dropout=config.dropout_rate,
      attention_dropout=config.attention_dropout_rate,
      kernel_initializer=_initializer(config),
      name=name)


class TransformerEncoder(tf.keras.Model):
  """Embeddings (own or shared), optional E -> H projection, and a stack of transformer layers.

  `call` takes a dict with `input_word_ids`, `input_mask`, `input_type_ids` ([B, L] ints) and
  returns `sequence_output` [B, L, H], `encoder_outputs` (every layer's output, bottom first) and
  `embedding_output`.
  """

  def __init__(self, config: EncoderConfig, embeddings: Optional[Embeddings] = None,
               embedding_projection: Optional[tf.keras.layers.Layer] = None,
               bottom_layers: Sequence[tf.keras.layers.Layer] = (), name: str = "encoder", **kwargs):
    """`embeddings`, `embedding_projection` and `bottom_layers` (the lowest transformer layers) are
    taken from another encoder when given: ELECTRA shares embeddings, TEAMS also the bottom layers."""
    super().__init__(name=name, **kwargs)
    self.config = config
    self.embeddings = embeddings if embeddings is not None else Embeddings(config)
    if not self.embeddings.built:
      self.embeddings.build()
    self.embedding_projection = None
    if self.embeddings.config.embedding_width != config.hidden_size:
      self.embedding_projection = embedding_projection or tf.keras.layers.Dense(
          config.hidden_size, kernel_initializer=_initializer(config), name="embedding_projection")
    self.attention_mask = layers.SelfAttentionMask()

    if config.share_layers:
      shared = transformer_block(config, "transformer/layer_shared")
      self.transformer_layers = [shared] * config.num_layers
    else:
      bottom_layers = list(bottom_layers)
      if len(bottom_layers) > config.num_layers:
        raise ValueError(f"{len(bottom_layers)} bottom layers given to an encoder of {config.num_layers} layers")
      self.transformer_layers = bottom_layers + [
          transformer_block(config, f"transformer/layer_{i}") for i in range(len(bottom_layers), config.num_layers)]

  def call(self, inputs, training=None):
    word_ids = inputs["input_word_ids"]
    embedding_output = self.embeddings(word_ids, inputs["input_type_ids"], training=training)
    x = embedding_output
    if self.embedding_projection is not None:
      x = self.embedding_projection(x)
    attention_mask = self.attention_mask(x, inputs["input_mask"])
    encoder_outputs = []
    for layer in self.transformer_layers:
      x = layer([x, attention_mask], training=training)
      encoder_outputs.append(x)
    return {"sequence_output": x, "encoder_outputs": encoder_outputs, "embedding_output": embedding_output}

  def get_embedding_table(self):
    return self.embeddings.embedding_table

  def dummy_inputs(self, batch_size: int = 1, seq_length: int = 8):
    ids = tf.zeros([batch_size, seq_length], tf.int32)
    return {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": ids}
