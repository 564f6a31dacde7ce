"""Tests for launch.gpu against a fake ssh that runs remote commands in local fake homes."""

import json
import shlex
import time
from pathlib import Path

import pytest

from launch import gpu

GIN = "experiments/electra_small.gin"
JOB = ["--model_dir=gs://bucket/electra_small", "--data_dir=gs://bucket/data", f"--gin_file={GIN}"]


def gpu_hosts(fakes, *hosts: str) -> Path:
  """Fake homes for `hosts`, each with the repository; returns a fake python to run there."""
  root = fakes.execute_remote_commands()
  for host in hosts:
    (root / host.rpartition("@")[2] / "tpu_electra").mkdir(parents=True)
  return fakes.fake_python(fakes.root / "remote_python")


def tf_config_of(ssh_argv: list) -> dict:
  """TF_CONFIG as the remote shell will see it in the printed ssh command."""
  (assignment,) = [w for w in shlex.split(ssh_argv[-1]) if w.startswith("TF_CONFIG=")]
  return json.loads(assignment[len("TF_CONFIG="):])


def test_each_of_two_hosts_runs_multi_worker_with_its_own_tf_config_index(fakes):
  python = gpu_hosts(fakes, "gpu-a", "gpu-b")

  result = fakes.launch("launch.gpu", "run", "--hosts=alice@gpu-a,gpu-b", "--worker_port=2222",
                        f"--remote_python={python}", *JOB)

  assert result.returncode == 0, result.stderr
  records = sorted(fakes.python_calls(count=2), key=lambda r: r["home"])
  assert [Path(r["home"]).name for r in records] == ["gpu-a", "gpu-b"]
  for index, record in enumerate(records):
    assert json.loads(record["env"]["TF_CONFIG"]) == {
        "cluster": {"worker": ["gpu-a:2222", "gpu-b:2222"]},
        "task": {"type": "worker", "index": index}}
    assert record["cwd"] == str(Path(record["home"]) / "tpu_electra")
    assert '--gin_param=get_strategy.name = "multi_worker"' in record["argv"]
  assert [c[:3] for c in fakes.calls()] == [["ssh", "--", "alice@gpu-a"], ["ssh", "--", "gpu-b"]]


def test_dry_run_prints_one_ssh_per_host_and_runs_nothing(fakes):
  result = fakes.launch("launch.gpu", "run", "--dry_run", "--hosts=h1,h2,h3", "--ssh_port=2200",
                        *JOB)

  assert result.returncode == 0, result.stderr
  assert fakes.calls() == []
  commands = fakes.printed_commands(result.stdout)
  assert [c[:5] for c in commands] == [["ssh", "-p", "2200", "--", h] for h in ("h1", "h2", "h3")]
  assert [tf_config_of(c)["task"]["index"] for c in commands] == [0, 1, 2]
  assert "# follow the chief's log:" in result.stdout


def test_cluster_hosts_set_the_addresses_in_tf_config(fakes):
  status, stdout, _ = fakes.main("launch.gpu", "run", "--dry_run", "--hosts=pub-a,pub-b",
                                 "--cluster_hosts=10.0.0.2,10.0.0.3", *JOB)

  assert status == 0
  first, second = fakes.printed_commands(stdout)
  assert first[2] == "pub-a" and second[2] == "pub-b"
  assert tf_config_of(second) == {"cluster": {"worker": ["10.0.0.2:12345", "10.0.0.3:12345"]},
                                  "task": {"type": "worker", "index": 1}}


def test_one_host_runs_mirrored_strategy_without_tf_config(fakes):
  python = gpu_hosts(fakes, "gpu-a")

  result = fakes.launch("launch.gpu", "run", "--hosts=gpu-a", f"--remote_python={python}", *JOB)

  assert result.returncode == 0, result.stderr
  (record,) = fakes.python_calls()
  assert "TF_CONFIG" not in record["env"]
  assert record["argv"] == ["-m", "tpu_electra.pretrain", f"--gin_file={GIN}",
                            '--gin_param=get_strategy.name = "gpu"',
                            '--gin_param=DATA_DIR = "gs://bucket/data"',
                            "--model_dir=gs://bucket/electra_small"]


def test_malicious_values_reach_the_remote_job_verbatim_and_execute_nothing(fakes, tmp_path):
  python = gpu_hosts(fakes, "gpu-a", "gpu-b")
  canary = tmp_path / "pwned"
  evil = f"x = 1'; touch {canary} #"

  result = fakes.launch("launch.gpu", "run", "--hosts=gpu-a,gpu-b", f"--remote_python={python}",
                        *JOB, f"--gin_param={evil}", f"--env=NOTE=$(touch {canary})")

  assert result.returncode == 0, result.stderr
  records = fakes.python_calls(count=2)
  assert len(records) == 2
  assert all(r["argv"][-2] == f"--gin_param={evil}" for r in records)
  time.sleep(0.2)
  assert not canary.exists()


def test_remote_dir_under_home_is_expanded_on_the_host(fakes):
  python = gpu_hosts(fakes)
  (fakes.remote_home / "gpu-a" / "code" / "tpu electra").mkdir(parents=True)

  result = fakes.launch("launch.gpu", "run", "--hosts=gpu-a", "--remote_dir=~/code/tpu electra",
                        f"--remote_python={python}", *JOB)

  assert result.returncode == 0, result.stderr
  (record,) = fakes.python_calls()
  assert record["cwd"] == str(fakes.remote_home / "gpu-a" / "code" / "tpu electra")


def test_without_hosts_the_job_runs_here_and_its_status_is_returned(fakes):
  python = fakes.fake_python(fakes.root / "local_python")
  fakes.env["FAKE_PY_EXIT"] = "3"

  result = fakes.launch("launch.gpu", "run", f"--python={python}", "--model_dir=runs/small",
                        "--data_dir=data/shards", f"--gin_file={GIN}", "--env=HF_TOKEN=hf_abc")

  assert result.returncode == 3
  assert fakes.calls() == []
  (record,) = fakes.python_calls()
  assert record["argv"] == ["-m", "tpu_electra.pretrain", f"--gin_file={GIN}",
                            '--gin_param=get_strategy.name = "gpu"',
                            '--gin_param=DATA_DIR = "data/shards"', "--model_dir=runs/small"]
  assert record["env"]["HF_TOKEN"] == "hf_abc"
  assert "hf_abc" not in result.stderr and "HF_TOKEN=***" in result.stderr


# Issue 10: every name that looks secret, each with a value found nowhere else.
SECRET_ENV = {"DB_PASS": "pw-db-1", "OPENAI_KEY": "sk-openai-2", "MY_SECRET_X": "sec-x-3",
              "GH_TOKEN": "ghp-4", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa-5.json"}
ENV_FLAGS = [f"--env={k}={v}" for k, v in SECRET_ENV.items()] + ["--env=NCCL_DEBUG=INFO"]


def test_values_of_secret_looking_env_names_are_masked_in_the_dry_run(fakes):
  result = fakes.launch("launch.gpu", "run", "--dry_run", "--hosts=h1,h2", *JOB, *ENV_FLAGS,
                        "--ssh_option=StrictHostKeyChecking=accept-new")

  assert result.returncode == 0, result.stderr
  for secret in SECRET_ENV.values():
    assert secret not in result.stdout + result.stderr
  for command in fakes.printed_commands(result.stdout):
    words = shlex.split(command[-1])
    assert {f"{name}=***" for name in SECRET_ENV} <= set(words)
    assert "NCCL_DEBUG=INFO" in words
    assert "StrictHostKeyChecking=accept-new" in command


def test_a_local_run_echoes_its_command_with_secret_looking_values_masked(fakes):
  python = fakes.fake_python(fakes.root / "local_python")

  result = fakes.launch("launch.gpu", "run", f"--python={python}", "--model_dir=runs/small",
                        f"--gin_file={GIN}", *ENV_FLAGS)

  assert result.returncode == 0, result.stderr
  for secret in SECRET_ENV.values():
    assert secret not in result.stdout + result.stderr
  assert all(f"{name}=***" in result.stderr for name in SECRET_ENV)
  assert "NCCL_DEBUG=INFO" in result.stderr
  assert len(fakes.python_calls()) == 1


@pytest.mark.parametrize("hosts", ["-oProxyCommand=touch /tmp/x,h2", "h1,h 2", "h1;reboot"])
def test_hosts_that_are_not_plain_names_are_refused(fakes, hosts):
  status, _, stderr = fakes.main("launch.gpu", "run", f"--hosts={hosts}", *JOB)

  assert status == 2 and "--hosts entries must be" in stderr
  assert fakes.calls() == []


def test_tail_shows_the_chosen_workers_log(fakes):
  result = fakes.launch("launch.gpu", "tail", "--hosts=h1,h2", "--worker=1", "--job=finetune",
                        "--no_follow")
  status, _, stderr = fakes.main("launch.gpu", "tail", "--hosts=h1,h2", "--worker=2")

  assert result.returncode == 0, result.stderr
  assert fakes.calls() == [["ssh", "--", "h2",
                            'tail -n 100 "$HOME"/tpu_electra_logs/finetune.log']]
  assert status == 2 and "--worker must be in [0, 1]" in stderr


def test_tf_config_lists_every_worker_and_names_this_one():
  assert json.loads(gpu.tf_config(["a", "b"], 7, 1)) == {
      "cluster": {"worker": ["a:7", "b:7"]}, "task": {"type": "worker", "index": 1}}
