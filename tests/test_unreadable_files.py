"""Files that cannot be read as what they claim to be: one line naming the file and what to do.

Malformed safetensors (read with the `safetensors` package), a config.json, manifest.json or
run.json that is not UTF-8 or not a JSON object.
"""
import json
import os
import shutil
import struct

import gin
import numpy as np
import pytest

from data_prep import verify
from tpu_electra import evaluate
from tpu_electra import fileio
from tpu_electra import pretrain
from tpu_electra.convert import cli as convert_cli
from tpu_electra.convert import common as convert_common
from tpu_electra.convert import huggingface

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
NOT_UTF8 = b'{"model_type": "electra", "name": "caf\xe9"}'
NOT_UTF8_AT = NOT_UTF8.index(b"\xe9")


def _safetensors(header, body):
  encoded = json.dumps(header).encode("utf-8")
  return struct.pack("<Q", len(encoded)) + encoded + body


_F32 = np.arange(8, dtype="<f4").tobytes()
_VALID = _safetensors({"w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}, _F32)
MALFORMED = {
    "header_not_an_object": _safetensors([1, 2], _F32),
    "no_data_offsets": _safetensors({"w": {"dtype": "F32", "shape": [2, 4]}}, _F32),
    "offsets_past_the_end": _safetensors({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}, _F32),
    "shape_not_the_byte_count": _safetensors({"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 32]}},
                                             _F32),
    "dtype_not_the_byte_count": _safetensors({"w": {"dtype": "F64", "shape": [2, 4], "data_offsets": [0, 32]}},
                                             _F32),
    "truncated": _VALID[:-5],
    "shorter_than_its_header_size": _VALID[:5],
    "header_not_utf8": struct.pack("<Q", 4) + b'{"\xff}',
    "empty": b"",
}


def _huggingface_dir(directory, weights=_VALID, config=b'{"model_type": "electra"}'):
  os.makedirs(directory)
  with open(os.path.join(directory, "config.json"), "wb") as f:
    f.write(config)
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\n".join(VOCAB) + "\n")
  with open(os.path.join(directory, "model.safetensors"), "wb") as f:
    f.write(weights)
  return str(directory)


def _one_line(cli, argv, capsys):
  gin.clear_config()
  try:
    assert cli(argv) == 1
  finally:
    gin.clear_config()
  error = capsys.readouterr().err.strip()
  assert error.startswith("error: ") and "\n" not in error, error
  return error


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_safetensors_file_is_one_line_naming_it(name, tmp_path, capsys):
  directory = _huggingface_dir(tmp_path / "hf", weights=MALFORMED[name])
  error = _one_line(convert_cli.cli, ["convert", f"--source=huggingface:{directory}", f"--output_dir={tmp_path / 'out'}"],
                    capsys)
  path = os.path.join(directory, "model.safetensors")
  assert error.startswith(f"error: {path} is not a valid safetensors file ("), error
  assert error.endswith("re-download it, or re-save it with transformers' save_pretrained"), error
  assert not os.path.exists(tmp_path / "out")


def test_safetensors_of_every_float_width_read_as_numpy(tmp_path):
  values = np.array([1.5, -2.0, 3.25, 0.0], np.float32)
  bfloat16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
  path = str(tmp_path / "w.safetensors")
  with open(path, "wb") as f:
    f.write(_safetensors({"__metadata__": {"format": "pt"},
                          "b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                          "h": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]},
                          "i": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}},
                         bfloat16 + values.astype("<f2").tobytes() + np.array([7], "<i8").tobytes()))
  tensors = huggingface.read_safetensors_file(path)
  np.testing.assert_array_equal(tensors["b"], values.reshape(2, 2))
  assert tensors["b"].dtype == np.float32 and tensors["h"].dtype == np.float16 and tensors["i"].tolist() == [7]


def test_a_safetensors_dtype_numpy_lacks_is_one_line_naming_the_tensor(tmp_path):
  path = str(tmp_path / "w.safetensors")
  with open(path, "wb") as f:
    f.write(_safetensors({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4))
  with pytest.raises(convert_common.ConversionError, match=f"tensor w in {path} has dtype F8_E4M3, which this converter"):
    huggingface.read_safetensors_file(path)


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json", "tokenizer.json"])
def test_a_config_file_that_is_not_utf8_is_one_line_naming_it(name, tmp_path, capsys):
  directory = _huggingface_dir(tmp_path / "hf")
  with open(os.path.join(directory, name), "wb") as f:
    f.write(NOT_UTF8)
  error = _one_line(convert_cli.cli, ["convert", f"--source=huggingface:{directory}", f"--output_dir={tmp_path / 'out'}"],
                    capsys)
  assert error == (f"error: {os.path.join(directory, name)} is not UTF-8 text (byte b'\\xe9' at offset "
                   f"{NOT_UTF8_AT}); "
                   "re-download it, or re-save it with transformers' save_pretrained"), error


def _data_copy(token_data_dir, tmp_path, manifest_bytes):
  data_dir = str(tmp_path / "data")
  shutil.copytree(token_data_dir, data_dir)
  with open(os.path.join(data_dir, "manifest.json"), "wb") as f:
    f.write(manifest_bytes)
  return data_dir


def _pretrain_argv(model_dir, data_dir):
  return ["pretrain", f"--model_dir={model_dir}", "--gin_file=smoke/electra.gin",
          f"--gin_param=DATA_DIR = '{data_dir}'",
          "--gin_param=SEQ_LENGTH = 32", "--gin_param=BATCH_SIZE = 8", "--gin_param=TRAIN_STEPS = 2",
          "--gin_param=WARMUP_STEPS = 1", "--gin_param=EVAL_EVERY = 0", "--gin_param=CHECKPOINT_EVERY = 2"]


@pytest.mark.parametrize("content, problem", [
    (b'{"vocab_file": "vocab.txt", "note": "\xff"}', "is not UTF-8 text (byte b'\\xff' at offset 37)"),
    (b'["not", "an", "object"]', "is not a JSON object"),
    (b'{"vocab_file": ', "is not valid JSON (Expecting value: line 1 column 16 (char 15))"),
])
def test_a_manifest_that_cannot_be_decoded_is_one_line_naming_it(content, problem, token_data_dir, tmp_path, capsys):
  data_dir = _data_copy(token_data_dir, tmp_path, content)
  expected = (f"{os.path.join(data_dir, 'manifest.json')} {problem}; rebuild the data with python -m "
              "data_prep.build")
  model_dir = str(tmp_path / "model")
  assert _one_line(pretrain.cli, _pretrain_argv(model_dir, data_dir), capsys) == f"error: {expected}"
  assert not os.path.exists(model_dir)
  assert _one_line(verify.cli, ["verify", f"--data_dir={data_dir}"], capsys) == f"error: {expected}"


def test_a_run_json_that_is_not_utf8_is_one_line_naming_it(token_data_dir, tmp_path, capsys):
  model_dir = str(tmp_path / "model")
  gin.clear_config()
  try:
    assert pretrain.cli(_pretrain_argv(model_dir, token_data_dir)) == 0
  finally:
    gin.clear_config()
  path = os.path.join(model_dir, "run.json")
  with open(path, "rb") as f:
    record = f.read()
  with open(path, "wb") as f:
    f.write(record.replace(b'"electra"', b'"electr\xe4"', 1))
  expected = f"error: {path} is not UTF-8 text (byte b'\\xe4'"
  # A resume reads it to compare its settings: it stops before anything is written.
  files = {name: os.path.getmtime(os.path.join(model_dir, name)) for name in os.listdir(model_dir)}
  assert _one_line(pretrain.cli, _pretrain_argv(model_dir, token_data_dir) + ["--gin_param=TRAIN_STEPS = 4"],
                   capsys).startswith(expected)
  assert files == {name: os.path.getmtime(os.path.join(model_dir, name)) for name in os.listdir(model_dir)}
  # What loads the run (evaluation, export, fine-tuning) reads it through runs.read_run.
  assert _one_line(evaluate.cli, ["evaluate", f"--model_dir={model_dir}"], capsys).startswith(expected)


def test_read_json_object_names_the_file_for_every_way_it_fails(tmp_path):
  path = str(tmp_path / "x.json")
  for content, problem in ((b"\xc3(", "is not UTF-8 text (byte b'\\xc3' at offset 0)"),
                           (b"[" * 100000 + b"]" * 100000, "is not valid JSON (nested too deeply)"),
                           (b"3", "is not a JSON object")):
    with open(path, "wb") as f:
      f.write(content)
    with pytest.raises(ValueError) as raised:
      fileio.read_json_object(path, ValueError, "rebuild it")
    assert str(raised.value) == f"{path} {problem}; rebuild it"
