"""The pretraining entry point end to end: model dir contents, resume, kill -9, one-line errors."""
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest

from tpu_electra import gin_utils
from tpu_electra import pretrain
from tpu_electra import pretrainer

SMOKE = ["smoke/electra.gin"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params(data_dir, **macros):
  params = [f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 2",
            "EVAL_BATCHES = 2", "train.log_every_secs = 0.0"]
  return params + [f"{k} = {v}" for k, v in macros.items()]


def _run_in_process(model_dir, params):
  gin.clear_config()
  try:
    gin_utils.parse(SMOKE, params)
    return pretrainer.pretrain(model_dir=model_dir)
  finally:
    gin.clear_config()


def _cli(model_dir, params, **kwargs):
  command = [sys.executable, "-m", "tpu_electra.pretrain", f"--model_dir={model_dir}"]
  command += [f"--gin_file={f}" for f in SMOKE] + [f"--gin_param={p}" for p in params]
  return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_run_leaves_checkpoints_events_and_operative_config_and_resumes_with_more_steps(token_data_dir, tmp_path, caplog):
  model_dir = str(tmp_path / "model")
  metrics = _run_in_process(model_dir, _params(token_data_dir, TRAIN_STEPS=6, CHECKPOINT_EVERY=3))
  assert sorted(os.path.basename(p) for p in glob.glob(model_dir + "/ckpt-*.index")) == ["ckpt-3.index", "ckpt-6.index"]
  assert glob.glob(model_dir + "/train/events.out.tfevents.*")
  with open(os.path.join(model_dir, "operative_config.gin")) as f:
    operative = f.read()
  assert "TRAIN_STEPS = 6" in operative and "Electra.rtd_weight = 50.0" in operative
  assert set(metrics) >= {"loss", "mlm_loss", "rtd_loss", "generator_accuracy", "discriminator_accuracy",
                          "discriminator_precision", "discriminator_recall", "replaced_fraction", "examples_per_sec",
                          "eval/loss", "eval/mlm_loss", "eval/rtd_loss", "eval/discriminator_auc"}
  assert "SEED = 0" in operative and "pretrain.seed = %SEED" in operative
  with open(os.path.join(model_dir, "run.json")) as f:
    info = json.load(f)
  assert info["kind"] == "pretraining" and info["objective"]["name"] == "electra"
  assert info["objective"]["arguments"]["rtd_weight"] == 50.0 and info["encoder_config"]["vocab_size"] == 60
  assert (info["seed"], info["batch_size"], info["seq_length"], info["train_steps"]) == (0, 8, 32, 6)
  assert info["data"]["data_dir"] == token_data_dir and len(info["data"]["manifest_sha256"]) == 64
  assert glob.glob(model_dir + "/eval/events.out.tfevents.*")

  # Some entry points lower absl's verbosity when run in the same process; set it here.
  caplog.set_level(logging.INFO, logger="absl")
  _run_in_process(model_dir, _params(token_data_dir, TRAIN_STEPS=9, CHECKPOINT_EVERY=3))
  assert any("Resuming from checkpoint" in r.getMessage() and "at step 6" in r.getMessage() for r in caplog.records)
  assert os.path.exists(model_dir + "/ckpt-9.index")


def _final_weights(model_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if name.startswith("model/") and "OPTIMIZER_SLOT" not in name}


def _max_difference(a, b):
  assert a.keys() == b.keys()
  return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a)


def test_a_run_killed_with_sigkill_and_rerun_ends_bit_identical_to_an_uninterrupted_run(token_data_dir, tmp_path):
  # 2 shards of 32 examples, batches of 8: the 30 steps cross 7 epochs; evaluation every 4 steps.
  params = _params(token_data_dir, TRAIN_STEPS=30, CHECKPOINT_EVERY=2, EVAL_EVERY=4, SEED=5) + [
      "train.steps_per_loop = 1"]
  killed_dir = str(tmp_path / "killed")
  process = _cli(killed_dir, params, start_new_session=True)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # A checkpoint counts once the manager has recorded it in the `checkpoint` state file: its
  # `.index` appears a moment before that, and a kill in between leaves nothing to resume from.
  deadline = time.time() + 240
  while time.time() < deadline and tf.train.latest_checkpoint(killed_dir) is None:
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.05)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  step = int(tf.train.latest_checkpoint(killed_dir).rsplit("-", 1)[1])
  assert step < 30, "the run finished before it was killed: nothing was resumed"
  _run_in_process(killed_dir, params)

  uninterrupted_dir = str(tmp_path / "uninterrupted")
  _run_in_process(uninterrupted_dir, params)
  assert _max_difference(_final_weights(killed_dir), _final_weights(uninterrupted_dir)) == 0.0


def test_the_same_seed_gives_bit_identical_checkpoints_and_another_seed_does_not(token_data_dir, tmp_path):
  weights = {}
  for name, seed in (("a", 1), ("b", 1), ("c", 2)):
    _run_in_process(str(tmp_path / name), _params(token_data_dir, TRAIN_STEPS=3, CHECKPOINT_EVERY=3, SEED=seed))
    weights[name] = _final_weights(str(tmp_path / name))
  assert _max_difference(weights["a"], weights["b"]) == 0.0
  assert _max_difference(weights["a"], weights["c"]) > 1e-3


def _copy_data(source, destination):
  shutil.copytree(source, destination)
  return str(destination)


def _shard(data_dir, index=0):
  return sorted(glob.glob(os.path.join(data_dir, "pretrain-*.tfrecord")))[index]


def _one_line_error(params, model_dir, capsys):
  argv = ["pretrain", f"--model_dir={model_dir}"] + [f"--gin_file={f}" for f in SMOKE]
  argv += [f"--gin_param={p}" for p in params]
  gin.clear_config()
  try:
    assert pretrain.cli(argv) == 1
  finally:
    gin.clear_config()
  error = capsys.readouterr().err.strip()
  assert "\n" not in error, error
  return error


def test_a_truncated_shard_stops_the_run_before_training_naming_the_shard(token_data_dir, tmp_path, capsys):
  data_dir = _copy_data(token_data_dir, tmp_path / "data")
  shard = _shard(data_dir)
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) - 1024)
  error = _one_line_error(_params(data_dir, TRAIN_STEPS=3), str(tmp_path / "model"), capsys)
  assert error.startswith("error: ") and os.path.basename(shard) in error, error
  # Before training: no step ran, nothing was written (a run that failed mid-way would have a model dir).
  assert not os.path.exists(tmp_path / "model")


def _flip_bytes(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    f.write(b"\xff" * 8)


def test_flipped_bytes_stop_a_checksum_verifying_run_before_training_naming_the_shard(token_data_dir, tmp_path, capsys):
  data_dir = _copy_data(token_data_dir, tmp_path / "data")
  shard = _shard(data_dir, 1)
  _flip_bytes(shard)
  params = _params(data_dir, TRAIN_STEPS=3) + ["pretrain.verify_checksums = True"]
  error = _one_line_error(params, str(tmp_path / "model"), capsys)
  assert os.path.basename(shard) in error, error
  assert not os.path.exists(tmp_path / "model")  # Before training: no step ran, nothing was written.


def test_a_corrupt_record_met_mid_run_stops_in_one_line_naming_the_shard_and_keeps_the_last_checkpoint(
    token_data_dir, tmp_path, capsys):
  data_dir = _copy_data(token_data_dir, tmp_path / "data")
  model_dir = str(tmp_path / "model")
  _run_in_process(model_dir, _params(data_dir, TRAIN_STEPS=4, CHECKPOINT_EVERY=2))
  shard = _shard(data_dir, 0)
  _flip_bytes(shard)
  error = _one_line_error(_params(data_dir, TRAIN_STEPS=40, CHECKPOINT_EVERY=2), model_dir, capsys)
  assert error.startswith("error: corrupt pretraining data:") and os.path.basename(shard) in error, error
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest and latest in error
  assert tf.train.load_checkpoint(latest).get_tensor("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE") > 0


def test_a_manifest_whose_vocab_size_disagrees_with_its_vocab_file_is_refused_in_one_line(token_data_dir, tmp_path,
                                                                                         capsys):
  data_dir = _copy_data(token_data_dir, tmp_path / "data")
  path = os.path.join(data_dir, "manifest.json")
  with open(path) as f:
    manifest = json.load(f)
  manifest["vocab_size"] = 100
  with open(path, "w") as f:
    json.dump(manifest, f)
  error = _one_line_error(_params(data_dir, TRAIN_STEPS=3), str(tmp_path / "model"), capsys)
  assert "vocab.txt" in error and "100" in error, error
  assert not os.path.exists(str(tmp_path / "model"))


def test_an_unwritable_model_dir_fails_in_one_line(token_data_dir, tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("")
  error = _one_line_error(_params(token_data_dir, TRAIN_STEPS=3), str(blocker / "model"), capsys)
  assert error.startswith("error: cannot write to --model_dir="), error


@pytest.mark.parametrize("params, message", [
    (["SEQ_LENGTH = 64"], "error: SEQ_LENGTH=64 but the data in"),
    (["TRAIN_STESP = 3"], "error: --gin_param sets macro TRAIN_STESP but no loaded gin file uses %TRAIN_STESP"),
    (["Electra.rtd_wieght = 3"], "error: in --gin_param 'Electra.rtd_wieght = 3': Configurable 'Electra' doesn't have"),
])
def test_bad_configuration_fails_with_one_line_error_and_writes_nothing(token_data_dir, tmp_path, capsys, params, message):
  model_dir = str(tmp_path / "model")
  error = _one_line_error(_params(token_data_dir) + params, model_dir, capsys)
  assert error.startswith(message), error
  assert not os.path.exists(model_dir)


def test_cli_refuses_a_vocab_that_does_not_match_the_model_in_one_line(token_data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  process = _cli(model_dir, _params(token_data_dir) + ["VOCAB_SIZE = 30522"])
  output, _ = process.communicate(timeout=180)
  assert process.returncode == 1
  error_lines = [line for line in output.splitlines() if line.startswith("error:")]
  assert len(error_lines) == 1 and error_lines[0].startswith("error: model vocab_size=30522 but the data in"), output[-2000:]
  assert not os.path.exists(model_dir)


@pytest.mark.parametrize("objective", ["bert", "electra", "ale", "teams", "script"])
def test_every_objective_is_seeded_and_resumes_bit_identically(objective, token_data_dir, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def run(model_dir):
    gin.clear_config()
    try:
      gin_utils.parse([f"smoke/{objective}.gin"], _params(token_data_dir, TRAIN_STEPS=4, CHECKPOINT_EVERY=2) + [
          "EncoderConfig.hidden_size = 16", "EncoderConfig.intermediate_size = 32", "EncoderConfig.embedding_size = 8",
          "train.steps_per_loop = 1"])
      pretrainer.pretrain(model_dir=model_dir)
    finally:
      gin.clear_config()
    return _final_weights(model_dir)

  first = run(str(tmp_path / "first"))
  assert _max_difference(first, run(str(tmp_path / "again"))) == 0.0
  # Roll a copy back to its step-2 checkpoint, as if killed before step 4 was saved, and re-run it.
  resumed_dir = str(tmp_path / "resumed")
  shutil.copytree(str(tmp_path / "first"), resumed_dir)
  for path in glob.glob(os.path.join(resumed_dir, "ckpt-4.*")):
    os.remove(path)
  tf.compat.v1.train.update_checkpoint_state(resumed_dir, os.path.join(resumed_dir, "ckpt-2"))
  assert tf.train.latest_checkpoint(resumed_dir).endswith("ckpt-2")  # What the re-run resumes from.
  assert _max_difference(first, run(resumed_dir)) == 0.0
