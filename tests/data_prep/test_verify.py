"""python -m data_prep.verify: OK and counts for intact data, exit 1 with one line naming the first problem."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from data_prep import verify
from tpu_electra.data import manifest as manifest_lib


@pytest.fixture
def data_copy(reference_build, tmp_path):
  """A copy of the reference build's output, free to damage."""
  config, manifest, _ = reference_build
  destination = str(tmp_path / "data")
  shutil.copytree(config.output_dir, destination)
  return destination, manifest


def _verify(data_dir, capsys=None):
  """The exit status of `verify --data_dir`, and with `capsys` the one line it printed to stderr."""
  status = verify.cli(["verify", f"--data_dir={data_dir}"])
  if capsys is None:
    return status
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  return status, err.strip()


def test_intact_data_prints_a_line_per_shard_then_ok_and_counts(data_copy, capsys):
  data_dir, manifest = data_copy
  assert _verify(data_dir) == 0
  lines = capsys.readouterr().out.splitlines()
  total = len(manifest.all_shards())
  assert [line.split(":")[0] for line in lines[1:-1]] == [f"[{i + 1}/{total}] {n}" for i, n in
                                                        enumerate(manifest.all_shards())]
  assert lines[-1].startswith(f"OK: {len(manifest.shards)} training shard(s) with {manifest.num_examples} examples, "
                              f"{len(manifest.eval_shards)} held-out shard(s) with {manifest.num_eval_examples}")


def test_damaged_shard_exits_1_with_one_line_naming_it(data_copy, capsys):
  data_dir, manifest = data_copy
  path = os.path.join(data_dir, manifest.shards[0])
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(size // 2)
    f.write(b"\x00" * 8)
  assert _verify(data_dir, capsys) == (1, f"error: shard {path} is corrupt: its sha256 differs from the manifest's "
                               f"(bytes changed, size unchanged); re-copy it or rebuild the data (python -m "
                               f"data_prep.verify --data_dir={data_dir} checks every shard's checksum)")


def test_vocab_mismatch_exits_1_as_a_process(data_copy):
  data_dir, manifest = data_copy
  path = os.path.join(data_dir, manifest_lib.MANIFEST_NAME)
  with open(path) as f:
    fields = json.load(f)
  fields["vocab_size"] = 9000
  with open(path, "w") as f:
    json.dump(fields, f)
  result = subprocess.run([sys.executable, "-m", "data_prep.verify", f"--data_dir={data_dir}"], capture_output=True,
                          text=True, check=False, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: manifest says vocab_size 9000 but vocab.txt ({os.path.join(data_dir, 'vocab.txt')}) has "
      f"{manifest.vocab_size} entries; rebuild the data or fix the manifest")


def test_missing_manifest_and_format_1_data(tmp_path, data_copy, capsys):
  status, line = _verify(str(tmp_path / "nothing"), capsys)
  assert status == 1 and line.startswith("error: no manifest.json in")
  data_dir, _ = data_copy
  path = os.path.join(data_dir, manifest_lib.MANIFEST_NAME)
  with open(path) as f:
    fields = json.load(f)
  for name in ("eval_shards", "num_eval_documents", "num_eval_examples", "num_eval_tokens", "shard_info"):
    del fields[name]
  fields["format_version"] = 1
  with open(path, "w") as f:
    json.dump(fields, f)
  assert _verify(data_dir) == 0
  assert capsys.readouterr().out.splitlines()[-1].startswith("OK (vocab only): ")
