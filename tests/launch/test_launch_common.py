"""Tests for launch.common: the remote shell snippets run in a real bash, redaction, job flags."""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launch import common


def bash(script: str, home: Path) -> str:
  env = dict(os.environ, HOME=str(home))
  return subprocess.run(["bash", "-c", script], cwd=home, env=env, capture_output=True,
                        text=True, check=True, timeout=30).stdout


def wait_for_status(home: Path, job: str, wanted: str, timeout: float = 10.0) -> str:
  deadline = time.monotonic() + timeout
  status = ""
  while time.monotonic() < deadline:
    status = bash(common.remote_status_script(job), home).strip()
    if status == wanted:
      break
    time.sleep(0.05)
  return status


def test_started_job_is_running_then_reports_its_exit_status_and_log(tmp_path):
  (tmp_path / "repo").mkdir()
  gate = tmp_path / "gate"
  job = [sys.executable, "-S", "-c",
         "import os, sys, time\n"
         f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
         "print('step', sys.argv[1]); sys.exit(7)", "a b'c"]

  started = bash(common.remote_start_script("repo", "job1", [("X", "1")], job), tmp_path)

  assert started.strip() == "started job1, log: ~/tpu_electra_logs/job1.log"
  assert wait_for_status(tmp_path, "job1", "running") == "running"
  gate.touch()
  assert wait_for_status(tmp_path, "job1", "7") == "7"
  assert "step a b'c" in (tmp_path / "tpu_electra_logs" / "job1.log").read_text()


def test_job_whose_process_vanished_without_a_status_is_lost(tmp_path):
  logs = tmp_path / "tpu_electra_logs"
  logs.mkdir()
  dead = subprocess.run([sys.executable, "-S", "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  (logs / "job2.pid").write_text(dead + "\n")

  assert bash(common.remote_status_script("job2"), tmp_path).strip() == "lost"


def test_prelude_failure_stops_the_job_and_is_its_status(tmp_path):
  (tmp_path / "repo").mkdir()
  marker = tmp_path / "ran"

  bash(common.remote_start_script("repo", "job3", [], ["touch", str(marker)],
                                  prelude=['V="$(exit 4)"']), tmp_path)

  assert wait_for_status(tmp_path, "job3", "4") == "4"
  assert not marker.exists()


@pytest.mark.parametrize("text,shown", [
    ("https://me:tok@github.com/x.git", "https://***@github.com/x.git"),
    ("HF_TOKEN=hf_123 pip install x", "HF_TOKEN=*** pip install x"),
    ("--api_key=abc", "--api_key=***"),
    ("gs://bucket/token_counts/data", "gs://bucket/token_counts/data"),
    ("train.num_steps = 1000", "train.num_steps = 1000"),
    ("export DB_PASS=pw1 OPENAI_KEY=sk-2 && pip install x",
     "export DB_PASS=*** OPENAI_KEY=*** && pip install x"),
    ("GH_TOKEN='two words' make", "GH_TOKEN=*** make"),
    ('hub.access_token = "hf_1"', "hub.access_token = ***"),
    ('{"client_secret": "s3"}', '{"client_secret": ***'),
    ("NCCL_DEBUG=INFO XLA_FLAGS=--xla_dump_to=/tmp/x", "NCCL_DEBUG=INFO XLA_FLAGS=--xla_dump_to=/tmp/x"),
])
def test_redact_hides_credentials_and_keeps_ordinary_values(text, shown):
  assert common.redact(text) == shown


# The names of issue 10, names the earlier word list missed (DB_PASS, OPENAI_KEY), lower case.
SECRET_NAMES = ["DB_PASS", "OPENAI_KEY", "MY_SECRET_X", "GH_TOKEN",
                "GOOGLE_APPLICATION_CREDENTIALS", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY",
                "db_passphrase", "MyApiKey", "HF_AUTH"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_names_containing_a_secret_word_look_secret(name):
  assert common.is_secret_name(name)


@pytest.mark.parametrize("name", ["NCCL_DEBUG", "XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL", "PATH",
                                  "CUDA_VISIBLE_DEVICES", "TPU_NAME"])
def test_ordinary_names_do_not_look_secret(name):
  assert not common.is_secret_name(name)


def test_secret_env_values_are_hidden_and_others_kept():
  env = common.parse_env([f"{name}=v{i}" for i, name in enumerate(SECRET_NAMES)]
                         + ["NCCL_DEBUG=INFO"])

  assert common.redact_env(env) == {**{name: "***" for name in SECRET_NAMES},
                                    "NCCL_DEBUG": "INFO"}


def test_a_malformed_env_flag_is_reported_without_its_secret():
  with pytest.raises(common.LaunchError) as e:
    common.parse_env(["1DB_PASS=hunter2"])

  assert "hunter2" not in str(e.value)


@pytest.mark.parametrize("pair", ["NOEQUALS", "1X=2", "A B=c"])
def test_env_flags_must_be_name_equals_value(pair):
  with pytest.raises(common.LaunchError, match="--env needs NAME=VALUE"):
    common.parse_env([pair])


def _job_args(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  common.add_job_flags(parser)
  return parser.parse_args(list(argv))


def test_finetune_flags_without_finetune_job_are_refused():
  args = _job_args("--gin_file=a.gin", "--model_dir=gs://b/m", "--seeds=3")

  with pytest.raises(common.LaunchError, match="add --job=finetune"):
    common.job_spec_from_args(args, require_gcs_paths=False)


def test_job_name_is_restricted_to_safe_file_names():
  args = _job_args("--gin_file=a.gin", "--model_dir=gs://b/m", "--job_name=../x")

  with pytest.raises(common.LaunchError, match="--job_name"):
    common.job_spec_from_args(args, require_gcs_paths=False)


def test_launcher_bindings_come_before_the_users_so_the_user_can_override_them():
  spec = common.job_spec_from_args(
      _job_args("--gin_file=a.gin", "--model_dir=gs://b/m", "--data_dir=gs://b/d",
                "--gin_param=get_strategy.name = 'cpu'"), require_gcs_paths=True)

  argv = common.job_argv(spec, "python3", ['get_strategy.name = "tpu"'])

  assert argv == ["python3", "-m", "tpu_electra.pretrain", "--gin_file=a.gin",
                  '--gin_param=get_strategy.name = "tpu"', '--gin_param=DATA_DIR = "gs://b/d"',
                  "--gin_param=get_strategy.name = 'cpu'", "--model_dir=gs://b/m"]
