"""The pretraining entry point end to end: model dir contents, resume, kill -9, one-line errors."""
import glob
import logging
import os
import signal
import subprocess
import sys
import time

from absl import flags
import gin
import pytest

from tpu_electra import gin_utils
from tpu_electra import pretrain

SMOKE = ["smoke/electra.gin"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params(data_dir, **macros):
  params = [f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 2",
            "train.log_every_secs = 0.0"]
  return params + [f"{k} = {v}" for k, v in macros.items()]


def _run_in_process(model_dir, params):
  gin.clear_config()
  try:
    gin_utils.parse(SMOKE, params)
    return pretrain.pretrain(model_dir=model_dir)
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
  assert set(metrics) >= {"loss", "mlm_loss", "rtd_loss", "generator_accuracy", "discriminator_auc",
                          "discriminator_precision", "discriminator_recall", "replaced_fraction", "examples_per_sec"}

  # Some entry points lower absl's verbosity when run in the same process; set it here.
  caplog.set_level(logging.INFO, logger="absl")
  _run_in_process(model_dir, _params(token_data_dir, TRAIN_STEPS=9, CHECKPOINT_EVERY=3))
  assert any("Resuming from checkpoint" in r.getMessage() and "at step 6" in r.getMessage() for r in caplog.records)
  assert os.path.exists(model_dir + "/ckpt-9.index")


def test_a_run_killed_mid_way_resumes_from_its_last_checkpoint(token_data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  params = _params(token_data_dir, TRAIN_STEPS=100000, CHECKPOINT_EVERY=2) + ["train.steps_per_loop = 1"]
  process = _cli(model_dir, params, start_new_session=True)
  deadline = time.time() + 240
  while time.time() < deadline and len(glob.glob(model_dir + "/ckpt-*.index")) < 2:
    assert process.poll() is None, process.stdout.read()
    time.sleep(0.2)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest is not None
  step = int(latest.rsplit("-", 1)[1])
  metrics = _run_in_process(model_dir, _params(token_data_dir, TRAIN_STEPS=step + 2, CHECKPOINT_EVERY=2))
  assert metrics and os.path.exists(f"{model_dir}/ckpt-{step + 2}.index")


@pytest.mark.parametrize("params, message", [
    (["SEQ_LENGTH = 64"], "error: SEQ_LENGTH=64 but the data in"),
    (["TRAIN_STESP = 3"], "error: --gin_param sets macro TRAIN_STESP but no loaded gin file uses %TRAIN_STESP"),
    (["Electra.rtd_wieght = 3"], "error: in --gin_param 'Electra.rtd_wieght = 3': Configurable 'Electra' doesn't have"),
])
def test_bad_configuration_fails_with_one_line_error_and_writes_nothing(token_data_dir, tmp_path, capsys, params, message):
  model_dir = str(tmp_path / "model")
  argv = ["pretrain", f"--model_dir={model_dir}"] + [f"--gin_file={f}" for f in SMOKE]
  argv += [f"--gin_param={p}" for p in _params(token_data_dir) + params]
  gin.clear_config()
  flags.FLAGS.unparse_flags()
  flags.FLAGS(argv)
  try:
    with pytest.raises(SystemExit) as exit_info:
      pretrain.main(argv[:1])
  finally:
    flags.FLAGS.unparse_flags()
    gin.clear_config()
  assert exit_info.value.code == 1
  error = capsys.readouterr().err.strip()
  assert "\n" not in error and error.startswith(message), error
  assert not os.path.exists(model_dir)


def test_cli_refuses_a_vocab_that_does_not_match_the_model_in_one_line(token_data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  process = _cli(model_dir, _params(token_data_dir) + ["VOCAB_SIZE = 30522"])
  output, _ = process.communicate(timeout=180)
  assert process.returncode == 1
  error_lines = [line for line in output.splitlines() if line.startswith("error:")]
  assert len(error_lines) == 1 and error_lines[0].startswith("error: model vocab_size=30522 but the data in"), output[-2000:]
  assert not os.path.exists(model_dir)
