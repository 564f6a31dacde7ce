"""ALE: one layer's weights at every depth, ELECTRA's loss, the paper's 4.8M parameters, one-line swaps."""
import dataclasses
import math

import gin
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import gin_utils
from tpu_electra import pretrainer  # noqa: F401  (registers pretrain.objective with gin)
from tpu_electra.data import masking
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import ale, bert, electra, losses, script

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _batch(seed=0, vocab_size=40, length=12):
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, vocab_size, size=(4, length)).astype(np.int32)
  ids[:, 0], ids[:, -1] = 2, 3
  mask = np.ones_like(ids)
  batch = {"input_ids": tf.constant(ids), "input_mask": tf.constant(mask), "segment_ids": tf.zeros_like(ids)}
  batch.update(masking.mask_tokens(batch["input_ids"], batch["input_mask"], masking.MaskingConfig(mask_rate=0.3),
                                   SPECIAL, vocab_size, seed=seed))
  return batch


def _count(variables):
  unique = {id(v): v for v in variables}
  return sum(int(np.prod(v.shape)) for v in unique.values())


def test_every_depth_applies_the_same_layer_weights_in_generator_and_discriminator():
  # The config asks for no sharing: ALE turns it on regardless.
  model = ale.Ale(dataclasses.replace(CONFIG, share_layers=False), generator_fraction=0.5)
  unshared = electra.Electra(CONFIG, generator_fraction=0.5)
  batch = _batch()
  model(batch, training=False, seed=0)
  unshared(batch, training=False, seed=0)

  for network in (model.discriminator, model.generator):
    layers = network.transformer_layers
    assert len(layers) == 3 and all(layer is layers[0] for layer in layers)
  assert model.discriminator.embedding_projection is not None  # E = 8 != H = 16: factorized embeddings
  # One layer's variables, not three: each network holds exactly one set.
  disc_layer = _count(model.discriminator.transformer_layers[0].trainable_variables)
  gen_layer = _count(model.generator.transformer_layers[0].trainable_variables)
  assert _count(model.discriminator.trainable_variables) == (
      _count(unshared.discriminator.trainable_variables) - 2 * disc_layer)
  assert _count(model.trainable_variables) == _count(unshared.trainable_variables) - 2 * (disc_layer + gen_layer)
  assert model.generator.embeddings is model.discriminator.embeddings
  names = [v.name for v in model.trainable_variables]
  assert not [n for n in names if "layer_1" in n or "layer_2" in n]


def _argmax_sample(logits, temperature=1.0, seed=None):
  del temperature, seed
  return tf.argmax(logits, axis=-1, output_type=tf.int32)


def test_loss_is_electras_mlm_plus_50_rtd_by_hand(monkeypatch):
  monkeypatch.setattr(electra.sampling, "sample_from_logits", _argmax_sample)
  model = ale.Ale(CONFIG, generator_fraction=0.5)
  batch = _batch(seed=2)
  outputs = model(batch, training=False)

  generator = model.generator({"input_word_ids": batch["masked_input_ids"], "input_mask": batch["input_mask"],
                               "input_type_ids": batch["segment_ids"]})
  logits = model.mlm_head(generator["sequence_output"], masked_positions=batch["masked_lm_positions"]).numpy()
  shifted = logits - logits.max(-1, keepdims=True)
  nll = -np.take_along_axis(shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)),
                            batch["masked_lm_ids"].numpy()[..., None], -1)[..., 0]
  weights = batch["masked_lm_weights"].numpy()
  mlm = (nll * weights).sum() / weights.sum()
  fake, labels = losses.corrupt_with_samples(batch["masked_input_ids"], batch["input_ids"],
                                              batch["masked_lm_positions"], batch["masked_lm_weights"],
                                              tf.constant(logits.argmax(-1), tf.int32))
  z = model.rtd_head(model.discriminator({"input_word_ids": fake, "input_mask": batch["input_mask"],
                                          "input_type_ids": batch["segment_ids"]})["sequence_output"]).numpy()
  y = labels.numpy()
  rtd = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean()  # every token is real here

  assert outputs["mlm_loss"].numpy() == pytest.approx(mlm, rel=1e-5)
  assert outputs["rtd_loss"].numpy() == pytest.approx(rtd, rel=1e-5)
  assert outputs["loss"].numpy() == pytest.approx(mlm + 50.0 * rtd, rel=1e-5)


def test_ale_small_discriminator_has_the_papers_4_8m_parameters():
  # ALE paper Table V: 4.8M for ALE-small against 13.5M for ELECTRA-small, BERT's 30522-word vocab.
  small = EncoderConfig(vocab_size=30522, hidden_size=256, num_layers=12, num_heads=4, intermediate_size=1024,
                        embedding_size=128)
  model = ale.Ale(small)
  model(_batch(vocab_size=30522, length=8), training=False, seed=0)
  discriminator = _count(model.discriminator.trainable_variables)
  # word 30522x128 + position 512x128 + type 2x128 + layer norm 256, projection 128x256+256,
  # one layer 789,760.
  assert discriminator == 3_972_864 + 33_024 + 789_760
  assert round(discriminator / 1e6, 1) == 4.8
  # Generator (its projection, one 64-wide layer) and both heads add 0.16M more.
  assert _count(model.trainable_variables) == 4_959_035


def _objective_class():
  """The class pretrainer.pretrain would instantiate from the parsed config."""
  return gin.query_parameter("pretrain.objective").configurable.wrapped


@pytest.mark.parametrize("experiment,expected", [
    ("experiments/bert_small.gin", bert.Bert), ("experiments/ale_small.gin", ale.Ale),
    ("experiments/script_small.gin", script.Script)])
def test_swapping_an_experiments_objective_is_one_include(experiment, expected, tmp_path):
  with open(gin_utils.resolve_gin_file(experiment)) as f:
    lines = f.read().splitlines()
  includes = [i for i, line in enumerate(lines) if line.startswith("include 'objectives/")]
  assert len(includes) == 1
  swapped = list(lines)
  swapped[includes[0]] = "include 'objectives/electra.gin'"
  swapped_path = tmp_path / "swapped.gin"
  swapped_path.write_text("\n".join(swapped) + "\n")

  built = []
  for config_file in (experiment, str(swapped_path)):
    gin.clear_config()
    try:
      gin_utils.parse([config_file], [])
      cls = _objective_class()
      model = cls(encoder_config=dataclasses.replace(EncoderConfig(), vocab_size=40, num_layers=1))
      built.append((cls, model, EncoderConfig()))
    finally:
      gin.clear_config()
  (cls, model, sizes), (swapped_cls, swapped_model, swapped_sizes) = built
  assert cls is expected and isinstance(model, expected)
  assert swapped_cls is electra.Electra and type(swapped_model) is electra.Electra
  assert sizes == swapped_sizes  # the model size did not move with the objective
  if expected is ale.Ale:
    assert model.temperature == 0.8 and model.encoder.config.share_layers


def test_smoke_config_trains_a_few_steps_with_finite_loss(pretrain_smoke_config):
  metrics = pretrain_smoke_config("ale")
  assert math.isfinite(metrics["loss"])
  assert metrics["loss"] == pytest.approx(metrics["mlm_loss"] + 50.0 * metrics["rtd_loss"], rel=1e-4)
