"""The convert command (tpu_electra.convert.cli): the run directory it writes, its one-line errors."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tpu_electra  # noqa: F401,E402
import tensorflow as tf  # noqa: E402

from tpu_electra import fileio  # noqa: E402
from tpu_electra import runs  # noqa: E402
from tpu_electra.convert import huggingface  # noqa: E402
from tests.convert.hf_models import (  # noqa: E402
    VOCAB, _cli, _electra_config, _from_tokenizer, _inputs, _max_diff, _polarity_sentences, _randomize, _save,
    _sequence_output, _torch_inputs)


def test_cli_writes_a_run_directory_that_loads_as_a_run(tmp_path, capsys):
  reference = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=12)
  directory = _save(reference, tmp_path / "disc")
  out = tmp_path / "run"
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}") == 0
  record = json.loads((out / "run.json").read_text())
  assert record["kind"] == "pretraining" and record["objective"]["name"] == "electra"
  assert record["source"]["kind"] == "huggingface" and record["source"]["architecture"] == "ElectraForPreTraining"
  assert record["source"]["path"] == os.path.abspath(directory)
  assert record["source"]["sha256"] == fileio.file_sha256(os.path.join(directory, "model.safetensors"))
  assert record["data"] == {"data_dir": None, "vocab_file": "vocab.txt", "vocab_type": "wordpiece",
                            "do_lower_case": True, "vocab_size": len(VOCAB)}
  assert record["conversion"]["checkpoint_items"] == ["encoder", "model"]
  assert record["conversion"]["absent"] == ["generator", "mlm_head"]
  assert (out / "vocab.txt").read_text().split("\n")[:-1] == VOCAB

  run = runs.read_run(str(out))
  encoder = runs.load_encoder(run)
  inputs = _inputs(3, 16, len(VOCAB), seed=14)
  with torch.no_grad():
    expected = reference(**_torch_inputs(inputs), output_hidden_states=True).hidden_states[-1].numpy()
  assert _max_diff(_sequence_output(encoder, inputs), expected, inputs["input_mask"]) < 1e-4
  # The RTD head is in the `model` item under the Electra objective's names.
  objective = run.build_objective()
  objective.discriminator(objective.discriminator.dummy_inputs())
  objective.rtd_head(tf.zeros([1, 1, 32]))
  tf.train.Checkpoint(model=objective).restore(run.checkpoint).expect_partial()
  np.testing.assert_array_equal(objective.rtd_head.logits.kernel.numpy(),
                                reference.discriminator_predictions.dense_prediction.weight.detach().numpy().T)
  # And back out: `export --format=huggingface` of the converted run gives the source's tensors.
  from tpu_electra.export import huggingface as hf_export  # pylint: disable=g-import-not-at-top
  hf_export.export_huggingface(str(out), str(tmp_path / "hf_again"))
  again = huggingface.read_safetensors_file(str(tmp_path / "hf_again" / "model.safetensors"))
  source = huggingface.read_safetensors_file(os.path.join(directory, "model.safetensors"))
  assert sorted(again) == sorted(n for n in source if "position_ids" not in n)
  for name, value in again.items():
    np.testing.assert_array_equal(value, source[name], err_msg=name)
  # Again: refused without --overwrite, in one line.
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}") == 1
  assert "already exists" in capsys.readouterr().err
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}", "--overwrite") == 0


def test_converted_minilm_run_dir_loads_for_fine_tuning(minilm_dir, tmp_path):
  out = tmp_path / "minilm"
  assert _cli(f"--source=huggingface:{minilm_dir}", f"--output_dir={out}") == 0
  run = runs.read_run(str(out))
  tokenizer = runs.load_tokenizer(run)  # The vocab the run carries (run.json data.vocab_file).
  assert tokenizer.vocab_size == 30522 and tokenizer.do_lower_case
  encoder = runs.load_encoder(run)
  sentences = _polarity_sentences(4)
  reference_tokenizer = transformers.BertTokenizerFast(tokenizer_file=os.path.join(minilm_dir, "tokenizer.json"))
  batch = reference_tokenizer(sentences, padding=True, return_tensors="np")
  inputs = _from_tokenizer(batch)
  with torch.no_grad():
    expected = transformers.BertModel.from_pretrained(minilm_dir).eval()(**_torch_inputs(inputs)).last_hidden_state
  assert _max_diff(_sequence_output(encoder, inputs), expected.numpy()) < 1e-4


def _error(capsys, *args):
  assert _cli(*args) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err
  return err


def test_cli_errors_are_one_line_and_name_the_tensor(tmp_path, capsys):
  reference = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=13)
  directory = _save(reference, tmp_path / "disc")
  out = f"--output_dir={tmp_path / 'out'}"
  assert "unknown source kind 'nope'" in _error(capsys, "--source=nope:/x", out)
  assert "not a directory" in _error(capsys, f"--source=huggingface:{tmp_path / 'missing'}", out)

  from tpu_electra.export import huggingface as hf_export  # pylint: disable=g-import-not-at-top
  weights = os.path.join(directory, "model.safetensors")
  # Copied out of the memory map before the file is rewritten.
  state = {k: np.array(v) for k, v in huggingface.read_safetensors_file(weights).items() if v.dtype == np.float32}
  layer_value = state.pop("electra.encoder.layer.1.intermediate.dense.weight")
  with open(weights, "wb") as f:
    f.write(hf_export.safetensors_bytes(state))
  assert "electra.encoder.layer.1.intermediate.dense.weight" in _error(
      capsys, f"--source=huggingface:{directory}", out)
  state["electra.encoder.layer.1.intermediate.dense.weight"] = layer_value[:, :-1]
  with open(weights, "wb") as f:
    f.write(hf_export.safetensors_bytes(state))
  err = _error(capsys, f"--source=huggingface:{directory}", out)
  assert "electra.encoder.layer.1.intermediate.dense.weight" in err and "shape" in err

  config_path = os.path.join(directory, "config.json")
  config = json.loads(open(config_path).read())
  config["architectures"] = ["ElectraForTokenClassification"]
  open(config_path, "w").write(json.dumps(config))
  assert "ElectraForTokenClassification" in _error(capsys, f"--source=huggingface:{directory}", out)
  assert not os.path.exists(tmp_path / "out")
  assert not [n for n in os.listdir(tmp_path) if n.startswith("out.tmp-")]  # No half-written run left.
  (tmp_path / "a_file").write_text("")
  assert "cannot write to --output_dir" in _error(capsys, f"--source=huggingface:{directory}",
                                                  f"--output_dir={tmp_path / 'a_file' / 'run'}")
