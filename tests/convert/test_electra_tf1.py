"""Conversion of google-research/electra TF1 checkpoints (tpu_electra.convert.electra_tf1)."""
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tpu_electra  # noqa: F401,E402
import tensorflow as tf  # noqa: E402

from tpu_electra.convert import common  # noqa: E402
from tpu_electra.convert import run_dir  # noqa: E402
from tests.convert.hf_models import (  # noqa: E402
    VOCAB, _electra_config, _generator_pair, _inputs, _max_diff, _mlm_logits, _randomize, _sequence_output,
    _torch_inputs)


def _huggingface_to_tf1(name):
  """google-research/electra's variable name of a Hugging Face ELECTRA tensor (and transpose?)."""
  for theirs, ours in (("discriminator_predictions.dense_prediction.", "discriminator_predictions/dense_1/"),
                       ("discriminator_predictions.dense.", "discriminator_predictions/dense/"),
                       ("generator_predictions.dense.", "generator_predictions/dense/"),
                       ("generator_predictions.LayerNorm.", "generator_predictions/LayerNorm/")):
    if name.startswith(theirs):
      leaf = name[len(theirs):]
      is_norm = "LayerNorm" in theirs
      return ours + {"weight": "gamma" if is_norm else "kernel", "bias": "beta" if is_norm else "bias"}[leaf], \
          leaf == "weight" and not is_norm
  if name == "generator_lm_head.bias":
    return "generator_predictions/output_bias", False
  scope, rest = name.split(".", 1)
  parts = re.sub(r"layer\.(\d+)", r"layer_\1", rest).split(".")
  if parts[-2].endswith("_embeddings"):
    return "/".join([scope] + parts[:-1]), False
  leaf = parts[-1]
  is_norm = parts[-2] == "LayerNorm"
  parts[-1] = {"weight": "gamma" if is_norm else "kernel", "bias": "beta" if is_norm else "bias"}[leaf]
  return "/".join([scope] + parts), parts[-1] == "kernel"


def _write_tf1_checkpoint(prefix, discriminator, generator):
  """A checkpoint with google-research/electra's variable names, written by a TF1 Saver."""
  values = {}
  for name, value in discriminator.state_dict().items():
    if "position_ids" in name:
      continue
    tf1_name, transpose = _huggingface_to_tf1(name)
    values[tf1_name] = value.numpy().T if transpose else value.numpy()
  for name, value in generator.state_dict().items():
    if "position_ids" in name or name.startswith("electra.embeddings.") or name == "generator_lm_head.weight":
      continue
    tf1_name, transpose = _huggingface_to_tf1(name.replace("electra.", "generator.", 1))
    values[tf1_name] = value.numpy().T if transpose else value.numpy()
  values["electra/encoder/layer_0/output/dense/kernel/adam_m"] = np.zeros_like(
      values["electra/encoder/layer_0/output/dense/kernel"])
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.get_variable(name, initializer=tf.constant(value)) for name, value in values.items()]
    variables.append(tf.compat.v1.train.get_or_create_global_step())
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix)
  return values


def test_google_research_electra_checkpoint_converts_with_equal_outputs(tmp_path):
  discriminator, generator = _generator_pair(tmp_path)
  checkpoint_dir = tmp_path / "electra_small"
  checkpoint_dir.mkdir()
  _write_tf1_checkpoint(str(checkpoint_dir / "model.ckpt-100"), discriminator, generator)
  (checkpoint_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  # The names are google-research/electra's: transformers' own loader of its checkpoints reads them.
  check = transformers.ElectraForPreTraining(_electra_config())
  transformers.load_tf_weights_in_electra(check, check.config, str(checkpoint_dir / "model.ckpt-100"))
  for name, value in discriminator.state_dict().items():
    np.testing.assert_array_equal(check.state_dict()[name].numpy(), value.numpy(), err_msg=name)
  check = transformers.ElectraForMaskedLM(generator.config)
  transformers.load_tf_weights_in_electra(check, check.config, str(checkpoint_dir / "model.ckpt-100"),
                                          discriminator_or_generator="generator")
  for name, value in generator.state_dict().items():
    np.testing.assert_array_equal(check.state_dict()[name].numpy(), value.numpy(), err_msg=name)

  # Heads: 64-wide by default (hidden 32 -> 1 head); the config beside the checkpoint says 4 and 2.
  (checkpoint_dir / "bert_config.json").write_text(json.dumps({"num_attention_heads": 4}))
  with pytest.raises(common.ConversionError, match="generator"):
    run_dir.convert_source(f"electra:{checkpoint_dir}")  # The generator's 1 head is not 1/2 of 4.
  (checkpoint_dir / "bert_config.json").unlink()
  converted, source = run_dir.convert_source(f"electra:{checkpoint_dir}")
  assert converted.encoder_config.num_heads == 1 and source.notes  # Inferred: noted in run.json.

  def heads(n, directory):
    (directory / "bert_config.json").write_text(json.dumps({"num_attention_heads": n}))
  # A checkpoint whose generator has heads 1/2 of the discriminator's: 2 heads of 16 vs 1 of 16.
  heads(2, checkpoint_dir)
  disc2 = _randomize(transformers.ElectraForPreTraining(_electra_config(num_attention_heads=2)), seed=9)
  gen2 = _randomize(transformers.ElectraForMaskedLM(
      _electra_config(hidden_size=16, num_attention_heads=1, intermediate_size=32)), seed=10)
  with torch.no_grad():
    gen2.electra.embeddings.load_state_dict(disc2.electra.embeddings.state_dict())
  _write_tf1_checkpoint(str(checkpoint_dir / "model.ckpt-100"), disc2, gen2)
  converted, source = run_dir.convert_source(f"electra:{checkpoint_dir}")
  assert converted.objective == "electra" and converted.objective_arguments == {"generator_fraction": 0.5}
  assert converted.unused_tensors == [] and source.architecture == "ElectraForPreTraining+ElectraForMaskedLM"
  inputs = _inputs(3, 16, len(VOCAB), seed=11)
  positions = np.array([[1, 2, 3], [2, 3, 4], [1, 1, 2]], np.int32)
  with torch.no_grad():
    gen_logits = gen2(**_torch_inputs(inputs)).logits.numpy()
    rtd = disc2(**_torch_inputs(inputs)).logits.numpy()
  sequence = _sequence_output(converted.model.discriminator, inputs)
  assert _max_diff(converted.model.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4
  assert _max_diff(_mlm_logits(converted.model, inputs, positions),
                   np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4
