"""Export: the SavedModel's serving signature, and Hugging Face ELECTRA weights that reproduce ours."""
import dataclasses
import json
import os

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import runs
from tpu_electra.convert import huggingface
from tpu_electra.export import classification as classification_export
from tpu_electra.export import cli as export_cli
from tpu_electra.export import huggingface as hf_export
from tpu_electra.export import saved_model as saved_model_export
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import ale
from tpu_electra.objectives import bert
from tpu_electra.objectives import electra
from tpu_electra.objectives import script
from tpu_electra.objectives import teams

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0)
IDS = np.array([[2, 10, 11, 12, 13, 3, 0, 0], [2, 20, 21, 3, 22, 23, 24, 3]], np.int32)
INPUTS = {"input_word_ids": IDS, "input_mask": (IDS > 0).astype(np.int32),
          "input_type_ids": np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 1]], np.int32)}


def _randomize_layer_norms(encoder, rng):
  """Moves the encoder's layer norms off a fresh one's gain 1 and bias 0, which transformers' fresh
  model has too: an export that left a layer norm out would otherwise reproduce our outputs."""
  encoder(encoder.dummy_inputs(batch_size=1, seq_length=2), training=False)
  for layer in encoder.submodules:
    if isinstance(layer, tf.keras.layers.LayerNormalization):
      for variable in layer.weights:
        variable.assign(variable + rng.normal(0.0, 0.3, variable.shape).astype(np.float32))


@pytest.fixture(scope="module")
def electra_dir(token_data_dir, tmp_path_factory):
  """A pretraining dir, and the encoder's and RTD head's outputs on INPUTS before saving."""
  tf.keras.utils.set_random_seed(5)
  objective = electra.Electra(CONFIG, generator_fraction=0.5)
  _randomize_layer_norms(objective.encoder, np.random.default_rng(5))
  sequence = objective.encoder({k: tf.constant(v) for k, v in INPUTS.items()}, training=False)["sequence_output"]
  expected = {"sequence_output": sequence.numpy(), "rtd_logits": objective.rtd_head(sequence).numpy()}
  model_dir = str(tmp_path_factory.mktemp("electra"))
  runs.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir,
                                  objective_arguments={"generator_fraction": 0.5})
  return model_dir, expected



def _transformers_outputs(model_class, directory):
  """The outputs (hidden states included) of transformers' `model_class` loaded from `directory` on INPUTS."""
  import torch  # pylint: disable=g-import-not-at-top
  model = model_class.from_pretrained(directory)
  model.eval()
  with torch.no_grad():
    return model(input_ids=torch.tensor(INPUTS["input_word_ids"], dtype=torch.long),
                 attention_mask=torch.tensor(INPUTS["input_mask"], dtype=torch.long),
                 token_type_ids=torch.tensor(INPUTS["input_type_ids"], dtype=torch.long),
                 output_hidden_states=True)

def test_saved_model_serves_sequence_output_and_rtd_logits(electra_dir, tmp_path):
  model_dir, expected = electra_dir
  out = str(tmp_path / "saved")
  assert export_cli.cli(["export", f"--model_dir={model_dir}", "--format=saved_model", f"--output_dir={out}"]) == 0
  assert [p for p in os.listdir(tmp_path) if ".tmp-" in p] == []
  serve = tf.saved_model.load(out).signatures["serving_default"]
  assert {spec.name for spec in serve.structured_input_signature[1].values()} == {
      "input_word_ids", "input_mask", "input_type_ids"}
  outputs = serve(**{k: tf.constant(v) for k, v in INPUTS.items()})
  np.testing.assert_allclose(outputs["sequence_output"].numpy(), expected["sequence_output"], atol=1e-5)
  np.testing.assert_allclose(outputs["rtd_logits"].numpy(), expected["rtd_logits"], atol=1e-5)


def test_export_refuses_an_existing_output_dir_in_one_line(electra_dir, tmp_path, capsys):
  out = tmp_path / "exists"
  out.mkdir()
  assert export_cli.cli(["export", f"--model_dir={electra_dir[0]}", "--format=huggingface", f"--output_dir={out}"]) == 1
  err = capsys.readouterr().err.strip()
  assert "already exists" in err and "\n" not in err


@pytest.mark.parametrize("export_format", ["huggingface", "saved_model"])
def test_a_full_disk_is_one_line_and_leaves_nothing(export_format, electra_dir, tmp_path, capsys, monkeypatch):
  def full(path, *unused_args, **unused_kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, f"{path}; No space left on device")

  monkeypatch.setattr(hf_export, "write_bytes", full)
  monkeypatch.setattr(saved_model_export.tf.saved_model, "save", lambda module, path, **unused: full(path + "/saved_model.pb"))
  out = str(tmp_path / "out")
  assert export_cli.cli(["export", f"--model_dir={electra_dir[0]}", f"--format={export_format}",
                     f"--output_dir={out}"]) == 1
  err = capsys.readouterr().err.strip()
  assert "\n" not in err
  assert err.startswith(f"error: no space left to write the export {out} ({out}.tmp-"), err
  assert err.endswith("No space left on device); nothing was written: free space there or choose another "
                      "--output_dir"), err
  assert os.listdir(tmp_path) == []


def test_huggingface_export_writes_electra_config_and_mapped_weights(electra_dir, tmp_path):
  out = str(tmp_path / "hf")
  hf_export.export_huggingface(electra_dir[0], out)
  with open(os.path.join(out, "config.json")) as f:
    config = json.load(f)
  assert config["architectures"] == ["ElectraForPreTraining"]
  assert (config["embedding_size"], config["hidden_size"], config["num_hidden_layers"]) == (8, 16, 2)
  assert config["layer_norm_eps"] == 1e-12 and config["hidden_act"] == "gelu"
  state = huggingface.read_safetensors_file(os.path.join(out, hf_export.SAFETENSORS_NAME))
  assert state["electra.embeddings.word_embeddings.weight"].shape == (60, 8)
  assert state["electra.embeddings_project.weight"].shape == (16, 8)
  assert state["electra.encoder.layer.1.attention.self.query.weight"].shape == (16, 16)
  assert state["electra.encoder.layer.0.intermediate.dense.weight"].shape == (32, 16)
  assert state["discriminator_predictions.dense_prediction.weight"].shape == (1, 16)
  with open(os.path.join(out, "vocab.txt")) as f:
    assert len(f.read().split()) == 60


def test_safetensors_round_trip_keeps_names_shapes_and_values(tmp_path):
  tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([7], np.int64)}
  data = hf_export.safetensors_bytes(tensors)
  header_size = int.from_bytes(data[:8], "little")
  assert header_size % 8 == 0
  (tmp_path / "t.safetensors").write_bytes(data)
  back = huggingface.read_safetensors_file(str(tmp_path / "t.safetensors"))
  assert set(back) == {"a", "b"}
  np.testing.assert_array_equal(back["b"], tensors["b"])
  np.testing.assert_array_equal(back["a"], tensors["a"])


def test_shared_layer_weights_are_written_once_per_depth():
  tf.keras.utils.set_random_seed(0)
  objective = ale.Ale(CONFIG, generator_fraction=0.5)
  objective.encoder(objective.encoder.dummy_inputs())
  state = hf_export.encoder_state_dict(objective.encoder)
  for suffix in ("attention.self.key.weight", "output.LayerNorm.bias"):
    np.testing.assert_array_equal(state[f"electra.encoder.layer.0.{suffix}"],
                                  state[f"electra.encoder.layer.1.{suffix}"])


def test_transformers_loads_the_export_and_reproduces_our_outputs(electra_dir, tmp_path):
  pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  model_dir, expected = electra_dir
  out = str(tmp_path / "hf")
  hf_export.export_huggingface(model_dir, out)
  outputs = _transformers_outputs(transformers.ElectraForPreTraining, out)
  np.testing.assert_allclose(outputs.hidden_states[-1].numpy(), expected["sequence_output"], atol=1e-4)
  np.testing.assert_allclose(outputs.logits.numpy(), expected["rtd_logits"], atol=1e-4)


def test_teams_saved_model_serves_the_rtd_branch_logits(token_data_dir, tmp_path):
  tf.keras.utils.set_random_seed(6)
  objective = teams.Teams(CONFIG)
  inputs = {k: tf.constant(v) for k, v in INPUTS.items()}
  encoder_output = objective.encoder(inputs, training=False)
  expected_rtd = objective.detector_logits(encoder_output, inputs["input_mask"], training=False).numpy()
  model_dir = str(tmp_path / "teams")
  runs.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir)
  out = str(tmp_path / "saved")
  saved_model_export.export_saved_model(model_dir, out)
  outputs = tf.saved_model.load(out).signatures["serving_default"](**inputs)
  np.testing.assert_allclose(outputs["sequence_output"].numpy(), encoder_output["sequence_output"].numpy(), atol=1e-5)
  # The branch reads layer L - 1 and has a layer of its own, so it is not a head on the last layer.
  np.testing.assert_allclose(outputs["rtd_logits"].numpy(), expected_rtd, atol=1e-5)
  assert not np.allclose(expected_rtd, objective.rtd_head(encoder_output["sequence_output"]).numpy(), rtol=1e-3, atol=0)


# Every objective's Hugging Face class: (objective, config, transformers class, head compared).
SQUARE = dataclasses.replace(CONFIG, embedding_size=None)
OBJECTIVES = {
    "bert": (lambda: bert.Bert(SQUARE), SQUARE, "BertForMaskedLM", "mlm"),
    "bert_projected": (lambda: bert.Bert(CONFIG), CONFIG, "ElectraForMaskedLM", "mlm"),
    "script": (lambda: script.Script(CONFIG), CONFIG, "ElectraForMaskedLM", "mlm"),
    "script_square": (lambda: script.Script(SQUARE), SQUARE, "BertForMaskedLM", "mlm"),
    "electra": (lambda: electra.Electra(CONFIG, generator_fraction=0.5), CONFIG, "ElectraForPreTraining", "rtd"),
    "ale": (lambda: ale.Ale(CONFIG, generator_fraction=0.5), CONFIG, "ElectraForPreTraining", "rtd"),
    # TEAMS' detector reads layer L - 1 through a layer of its own: no transformers class holds it.
    "teams": (lambda: teams.Teams(CONFIG), CONFIG, "ElectraModel", None),
}


def _randomize(layer, rng, encoder):
  """Non-trivial values for a head's weights that start at 0 or 1 (biases, layer-norm gains); the
  tied word embeddings, which the MLM head also lists, are left alone."""
  shared = {v.ref() for v in encoder.weights}
  for variable in layer.weights:
    if variable.ref() not in shared:
      variable.assign(variable + rng.normal(0.0, 0.1, variable.shape).astype(np.float32))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_transformers_loads_every_objectives_export_with_equal_outputs(name, token_data_dir, tmp_path):
  pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  build, config, architecture, head = OBJECTIVES[name]
  tf.keras.utils.set_random_seed(11)
  rng = np.random.default_rng(11)
  objective = build()
  _randomize_layer_norms(objective.encoder, rng)
  inputs = {k: tf.constant(v) for k, v in INPUTS.items()}
  sequence = objective.encoder(inputs, training=False)["sequence_output"]
  expected = {}
  if head == "mlm":
    _, mlm_head = objective.masked_lm()
    positions = tf.tile(tf.range(IDS.shape[1])[None], [IDS.shape[0], 1])
    mlm_head(sequence, masked_positions=positions)
    _randomize(mlm_head, rng, objective.encoder)
    expected["logits"] = mlm_head(sequence, masked_positions=positions).numpy()
  elif head == "rtd":
    objective.rtd_head(sequence)
    _randomize(objective.rtd_head, rng, objective.encoder)
    expected["logits"] = objective.rtd_head(sequence).numpy()
  else:
    objective.detector_logits(objective.encoder(inputs, training=False), inputs["input_mask"], training=False)
  model_dir = str(tmp_path / "run")
  runs.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir)
  out = str(tmp_path / "hf")
  assert export_cli.cli(["export", f"--model_dir={model_dir}", "--format=huggingface", f"--output_dir={out}"]) == 0
  with open(os.path.join(out, "config.json")) as f:
    assert json.load(f)["architectures"] == [architecture]
  outputs = _transformers_outputs(getattr(transformers, architecture), out)
  mask = INPUTS["input_mask"].astype(bool)
  np.testing.assert_allclose(outputs.hidden_states[-1].numpy()[mask], sequence.numpy()[mask], atol=1e-4)
  if "logits" in expected:
    np.testing.assert_allclose(outputs.logits.numpy()[mask], expected["logits"][mask], atol=1e-4)


def test_text_serving_cuts_padding_to_the_batchs_length_bucket():
  def inputs(lengths, width=128):
    mask = np.array([[1] * n + [0] * (width - n) for n in lengths], np.int32)
    return {"input_word_ids": tf.constant(mask * 7), "input_mask": tf.constant(mask),
            "input_type_ids": tf.constant(np.zeros_like(mask))}

  for lengths, bucket in (([3, 5], 16), ([16], 16), ([17, 2], 32), ([40], 64), ([65], 128), ([128, 1], 128)):
    cut = classification_export.cut_to_bucket(inputs(lengths), 128)
    assert {name: tuple(value.shape) for name, value in cut.items()} == {
        name: (len(lengths), bucket) for name in ("input_word_ids", "input_mask", "input_type_ids")}, lengths
    # Nothing real is cut: every row keeps all its tokens.
    assert cut["input_mask"].numpy().sum(axis=1).tolist() == lengths
  assert classification_export.cut_to_bucket(inputs([20], 48), 48)["input_mask"].shape == (1, 32)
  assert classification_export.cut_to_bucket(inputs([40], 48), 48)["input_mask"].shape == (1, 48)
