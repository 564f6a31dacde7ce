"""Conversion of tf-models-official checkpoints (tpu_electra.convert.tf_models)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tpu_electra  # noqa: F401,E402
import tensorflow as tf  # noqa: E402

from tpu_electra.convert import mapping  # noqa: E402
from tpu_electra.convert import run_dir  # noqa: E402
from tests.convert.hf_models import (  # noqa: E402
    VOCAB, _inputs, _max_diff, _mlm_logits, _sequence_output)


def _official_electra(tmp_path, tie_all_embeddings=True):
  """A tf-models-official ElectraPretrainer as official.nlp.tasks.electra_task builds it, and its
  model dir (checkpoint + params.yaml); built directly, as official.nlp.configs needs tensorflow_hub."""
  yaml = pytest.importorskip("yaml")
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import models, networks  # pylint: disable=g-import-not-at-top
  def bert(hidden, heads, ffn):
    return {"vocab_size": len(VOCAB), "hidden_size": hidden, "num_layers": 2, "num_attention_heads": heads,
            "intermediate_size": ffn, "max_position_embeddings": 40, "type_vocab_size": 2, "embedding_size": 16,
            "hidden_activation": "gelu"}
  def network(values, embedding_layer=None):
    return networks.BertEncoder(
        vocab_size=values["vocab_size"], hidden_size=values["hidden_size"], num_layers=values["num_layers"],
        num_attention_heads=values["num_attention_heads"], intermediate_size=values["intermediate_size"],
        activation=tf_utils.get_activation("gelu"), max_sequence_length=40, type_vocab_size=2,
        embedding_width=16, embedding_layer=embedding_layer, dict_outputs=True)
  disc_config, gen_config = bert(32, 4, 64), bert(16, 2, 32)
  disc = network(disc_config)
  gen = network(gen_config, disc.get_embedding_layer())
  pretrainer = models.ElectraPretrainer(generator_network=gen, discriminator_network=disc, vocab_size=len(VOCAB),
                                        num_classes=2, num_token_predictions=3,
                                        mlm_activation=tf_utils.get_activation("gelu"))
  params = {"task": {"model": {"generator_encoder": {"type": "bert", "bert": gen_config},
                               "discriminator_encoder": {"type": "bert", "bert": disc_config},
                               "tie_embeddings": True, "num_masked_tokens": 3, "cls_heads": []}}}
  inputs = _inputs(3, 16, len(VOCAB), seed=15)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"]
  gen_out = pretrainer.generator_network(as_list)["sequence_output"]
  pretrainer.masked_lm(gen_out, tf.zeros([3, 1], tf.int32))
  pretrainer.discriminator_head(pretrainer.discriminator_projection(disc_out))
  rng = np.random.default_rng(16)
  for variable in pretrainer.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  if tie_all_embeddings:
    disc, gen = pretrainer.discriminator_network, pretrainer.generator_network
    for name in ("_position_embedding_layer", "_type_embedding_layer", "_embedding_norm_layer"):
      for target, value in zip(getattr(gen, name).weights, getattr(disc, name).weights):
        target.assign(value)
  model_dir = tmp_path / "tf_models_electra"
  model_dir.mkdir()
  checkpoint = tf.train.Checkpoint(model=pretrainer, **pretrainer.checkpoint_items)
  tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=1).save(checkpoint_number=100)
  (model_dir / "params.yaml").write_text(yaml.safe_dump(params))
  (model_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  return pretrainer, model_dir, inputs, as_list


def test_tf_models_electra_pretrainer_converts_with_equal_outputs(tmp_path):
  pretrainer, model_dir, inputs, as_list = _official_electra(tmp_path)
  converted, source = run_dir.convert_source(f"tf_models:{model_dir}")
  assert source.architecture == "ElectraPretrainer" and converted.objective == "electra"
  assert converted.objective_arguments == {"generator_fraction": 0.5} and not converted.absent
  assert converted.encoder_config.activation == mapping.APPROXIMATE_GELU  # tf-models' "gelu" is the tanh one.
  positions = np.array([[1, 2, 3], [2, 3, 4], [1, 1, 2]], np.int32)
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"]
  rtd = tf.squeeze(pretrainer.discriminator_head(pretrainer.discriminator_projection(disc_out)), -1).numpy()
  gen_out = pretrainer.generator_network(as_list)["sequence_output"]
  mlm = pretrainer.masked_lm(gen_out, tf.constant(positions)).numpy()
  sequence = _sequence_output(converted.model.discriminator, inputs)
  assert _max_diff(sequence, disc_out.numpy(), inputs["input_mask"]) < 1e-4
  assert _max_diff(converted.model.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4
  assert _max_diff(_mlm_logits(converted.model, inputs, positions), mlm) < 1e-4


def test_tf_models_electra_with_untied_position_embeddings_keeps_the_discriminator(tmp_path):
  pretrainer, model_dir, inputs, as_list = _official_electra(tmp_path, tie_all_embeddings=False)
  converted, source = run_dir.convert_source(f"tf_models:{model_dir}")
  assert converted.absent == ["generator", "mlm_head"] and "generator not converted" in source.notes[0]
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"].numpy()
  assert _max_diff(_sequence_output(converted.encoder, inputs), disc_out, inputs["input_mask"]) < 1e-4


def test_tf_models_bert_encoder_with_bert_config_converts(tmp_path):
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  network = networks.BertEncoder(vocab_size=len(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=4,
                                 inner_dim=64, max_sequence_length=40, type_vocab_size=2, dict_outputs=True)
  inputs = _inputs(3, 16, len(VOCAB), seed=17)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  network(as_list)
  rng = np.random.default_rng(18)
  for variable in network.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  directory = tmp_path / "bert_tf2"
  directory.mkdir()
  tf.train.Checkpoint(encoder=network).write(str(directory / "bert_model.ckpt"))
  (directory / "bert_config.json").write_text(json.dumps({
      "vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 64, "hidden_act": "gelu", "max_position_embeddings": 40, "type_vocab_size": 2}))
  (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, source = run_dir.convert_source(f"tf_models:{directory / 'bert_model.ckpt'}")
  assert source.architecture == "BertEncoder" and converted.model is None
  assert converted.unused_tensors == []
  expected = network(as_list)["sequence_output"].numpy()
  assert _max_diff(_sequence_output(converted.encoder, inputs), expected, inputs["input_mask"]) < 1e-4


def test_tf_models_bert_pretrainer_converts_with_its_mlm_head(tmp_path):
  yaml = pytest.importorskip("yaml")
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import models, networks  # pylint: disable=g-import-not-at-top
  bert = {"vocab_size": len(VOCAB), "hidden_size": 32, "num_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2}
  network = networks.BertEncoder(vocab_size=len(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=4,
                                 intermediate_size=64, activation=tf_utils.get_activation("gelu"),
                                 max_sequence_length=40, type_vocab_size=2, dict_outputs=True)
  pretrainer = models.BertPretrainerV2(encoder_network=network, mlm_activation=tf_utils.get_activation("gelu"))
  inputs = _inputs(3, 16, len(VOCAB), seed=19)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  positions = tf.constant([[1, 2, 3], [2, 3, 4], [1, 1, 2]], tf.int32)
  pretrainer.masked_lm(network(as_list)["sequence_output"], positions)
  rng = np.random.default_rng(20)
  for variable in pretrainer.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  model_dir = tmp_path / "tf_models_bert"
  (model_dir / "checkpoints").mkdir(parents=True)
  checkpoint = tf.train.Checkpoint(model=pretrainer, **pretrainer.checkpoint_items)
  tf.train.CheckpointManager(checkpoint, str(model_dir / "checkpoints"), max_to_keep=1).save(checkpoint_number=5)
  (model_dir / "params.yaml").write_text(yaml.safe_dump({"task": {"model": {
      "encoder": {"type": "bert", "bert": bert}, "mlm_activation": "gelu"}}}))
  (model_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, source = run_dir.convert_source(f"tf_models:{model_dir / 'checkpoints'}")
  assert source.architecture == "BertPretrainerV2" and converted.objective == "bert"
  expected = pretrainer.masked_lm(network(as_list)["sequence_output"], positions).numpy()
  sequence = converted.encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
  assert _max_diff(converted.model.mlm_head(sequence, masked_positions=positions).numpy(), expected) < 1e-4
