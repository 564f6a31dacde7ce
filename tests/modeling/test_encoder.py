"""The encoder: shapes, factorized embeddings, cross-layer sharing, shared embeddings."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, Embeddings, TransformerEncoder

TINY = dict(vocab_size=50, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64, max_position_embeddings=16)


def _param_count(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def test_outputs_have_one_hidden_state_per_layer():
  encoder = TransformerEncoder(EncoderConfig(**TINY))
  outputs = encoder(encoder.dummy_inputs(batch_size=2, seq_length=7))
  assert outputs["sequence_output"].shape == (2, 7, 32)
  assert len(outputs["encoder_outputs"]) == 3
  assert outputs["encoder_outputs"][-1] is outputs["sequence_output"]


def test_factorized_embeddings_add_exactly_one_projection():
  plain = TransformerEncoder(EncoderConfig(**TINY))
  plain(plain.dummy_inputs())
  factorized = TransformerEncoder(EncoderConfig(embedding_size=8, **TINY))
  factorized(factorized.dummy_inputs())
  assert factorized.get_embedding_table().shape == (50, 8)
  # Embedding tables shrink from width 32 to 8; a 8x32 projection (+ bias) appears.
  embed_rows = 50 + 16 + 2
  expected = _param_count(plain.trainable_variables) - embed_rows * (32 - 8) - 2 * (32 - 8) + (8 * 32 + 32)
  assert _param_count(factorized.trainable_variables) == expected


def test_cross_layer_sharing_reuses_one_layer_at_every_depth():
  shared = TransformerEncoder(EncoderConfig(share_layers=True, **TINY))
  shared(shared.dummy_inputs())
  unshared = TransformerEncoder(EncoderConfig(**TINY))
  unshared(unshared.dummy_inputs())
  assert all(layer is shared.transformer_layers[0] for layer in shared.transformer_layers)
  per_layer = _param_count(unshared.transformer_layers[0].trainable_variables)
  assert _param_count(shared.trainable_variables) == _param_count(unshared.trainable_variables) - 2 * per_layer


def test_two_encoders_can_share_one_embedding_layer():
  config = EncoderConfig(embedding_size=16, **TINY)
  embeddings = Embeddings(config)
  first = TransformerEncoder(config, embeddings=embeddings, name="first")
  second = TransformerEncoder(config.scaled(0.5), embeddings=embeddings, name="second")
  first(first.dummy_inputs())
  second(second.dummy_inputs())
  assert first.get_embedding_table() is second.get_embedding_table()
  assert second.config.hidden_size == 16 and second.embedding_projection is None


def test_padding_does_not_change_outputs_at_real_positions():
  encoder = TransformerEncoder(EncoderConfig(dropout_rate=0.0, attention_dropout_rate=0.0, **TINY))
  ids = tf.constant([[2, 7, 8, 9, 3]])
  short = encoder({"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)})
  padded_ids = tf.constant([[2, 7, 8, 9, 3, 0, 0]])
  mask = tf.constant([[1, 1, 1, 1, 1, 0, 0]])
  padded = encoder({"input_word_ids": padded_ids, "input_mask": mask, "input_type_ids": tf.zeros_like(padded_ids)})
  np.testing.assert_allclose(short["sequence_output"].numpy(), padded["sequence_output"].numpy()[:, :5], atol=1e-5)


def test_generator_scaling_and_invalid_shapes():
  small = EncoderConfig(vocab_size=10, hidden_size=256, num_heads=4, intermediate_size=1024, embedding_size=128)
  generator = small.scaled(0.25)
  assert (generator.hidden_size, generator.num_heads, generator.intermediate_size, generator.embedding_width) == (64, 1, 256, 128)
  with pytest.raises(ValueError, match="divisible"):
    EncoderConfig(hidden_size=30, num_heads=4)
  with pytest.raises(ValueError, match="vocab_size"):
    Embeddings(EncoderConfig())


def test_layers_start_from_different_random_weights():
  encoder = TransformerEncoder(EncoderConfig(**TINY))
  encoder(encoder.dummy_inputs())
  first, second = (layer.trainable_variables[0].numpy() for layer in encoder.transformer_layers[:2])
  assert not np.allclose(first, second)
