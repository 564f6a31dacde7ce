"""Tests for launch.tpu, run as a subprocess against a fake gcloud."""

import ast
import shlex
import time
from pathlib import Path

import pytest

from launch import common
from launch import tpu

TF = common.read_tf_version()
GIN = "experiments/electra_small.gin"
JOB = ["--model_dir=gs://bucket/electra_small", "--data_dir=gs://bucket/data", f"--gin_file={GIN}"]
V3 = ["--name=electra-v3", "--zone=europe-west4-a", "--accelerator_type=v3-8", *JOB]
V4 = ["--name=electra-pod", "--zone=us-central2-b", "--accelerator_type=v4-32", *JOB]


def remote_command(argv: list) -> str:
  (command,) = [a[len("--command="):] for a in argv if a.startswith("--command=")]
  return command


def source_tree(root: Path) -> Path:
  src = root / "src"
  (src / "tpu_electra").mkdir(parents=True)
  (src / "setup.py").write_text("import setuptools\n")
  (src / "tpu_electra" / "__init__.py").write_text("")
  (src / ".git").mkdir()
  (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
  return src


def setup_flags(root: Path) -> list:
  return [f"--source={source_tree(root)}", f"--tarball={root / 'src.tar.gz'}"]


def wait_for_text(path: Path, timeout: float = 10.0) -> str:
  """The stripped text of `path` once a background job has written some."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if path.exists() and path.read_text().strip():
      break
    time.sleep(0.05)
  return path.read_text().strip()


def remote_checkout(fakes) -> Path:
  """A fake TPU VM home with the repository and a venv whose python records its calls."""
  home = fakes.execute_remote_commands()
  (home / "tpu_electra").mkdir()
  fakes.fake_python(home / "tpu_electra_venv" / "bin" / "python")
  return home


def test_v3_8_dry_run_prints_create_copy_install_and_run_on_the_single_worker(fakes):
  result = fakes.launch("launch.tpu", "all", "--dry_run", "--preemptible", *V3)

  assert result.returncode == 0, result.stderr
  assert fakes.calls() == []
  create, tar, scp, setup, run = fakes.printed_commands(result.stdout)
  assert create == ["gcloud", "compute", "tpus", "tpu-vm", "create", "electra-v3",
                    "--zone=europe-west4-a", "--accelerator-type=v3-8",
                    f"--version=tpu-vm-tf-{TF}-pjrt", "--preemptible"]
  assert tar[:2] == ["tar", "-czf"] and tar[-3:] == ["-C", str(common.REPO_ROOT), "."]
  assert "--exclude=./.git" in tar and "--exclude=./.venv" in tar
  assert scp == ["gcloud", "compute", "tpus", "tpu-vm", "scp", tar[2],
                 "electra-v3:tpu_electra_src.tar.gz", "--zone=europe-west4-a", "--worker=all"]
  assert setup[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "electra-v3",
                       "--zone=europe-west4-a", "--worker=all"]
  install = remote_command(setup)
  assert 'tar -xzf "$HOME"/tpu_electra_src.tar.gz' in install
  assert 'pip install -q -e "$HOME"/tpu_electra' in install
  assert install.endswith(f"pip install -q tensorflow-tpu=={TF}")
  assert run[:8] == setup[:8]
  assert "get_strategy.tpu = \"local\"" in remote_command(run)
  assert "# follow the log:" in result.stdout and "# tear down:" in result.stdout


def test_v4_32_dry_run_installs_on_every_worker_and_runs_one_client_on_worker_0(fakes):
  result = fakes.launch("launch.tpu", "all", "--dry_run", "--spot", *V4)

  assert result.returncode == 0, result.stderr
  assert fakes.calls() == []
  create, _, scp, setup, run = fakes.printed_commands(result.stdout)
  assert create == ["gcloud", "compute", "tpus", "tpu-vm", "create", "electra-pod",
                    "--zone=us-central2-b", "--accelerator-type=v4-32",
                    f"--version=tpu-vm-tf-{TF}-pod-pjrt", "--spot"]
  assert "--worker=all" in scp and "--worker=all" in setup
  assert "--worker=0" in run
  command = remote_command(run)
  assert "TPU_NAME=electra-pod TPU_LOAD_LIBRARY=0" in command
  assert "get_strategy.tpu = \"electra-pod\"" in command


@pytest.mark.parametrize("flags", [V3, V4], ids=["v3-8", "v4-32"])
def test_all_runs_exactly_the_commands_its_dry_run_prints(fakes, tmp_path, flags):
  extra = setup_flags(tmp_path)
  dry = fakes.launch("launch.tpu", "all", "--dry_run", *flags, *extra)
  assert dry.returncode == 0, dry.stderr
  assert fakes.calls() == []

  live = fakes.launch("launch.tpu", "all", *flags, *extra)

  assert live.returncode == 0, live.stderr
  printed = fakes.printed_commands(dry.stdout)
  assert [c[4] for c in printed if c[0] == "gcloud"] == ["create", "scp", "ssh", "ssh"]
  assert fakes.calls() == [c for c in printed if c[0] == "gcloud"]


def test_tail_status_and_delete_run_what_their_dry_runs_print(fakes):
  for action in ("tail", "status", "delete"):
    dry = fakes.launch("launch.tpu", action, "--dry_run", *V4, "--lines=20")
    live = fakes.launch("launch.tpu", action, *V4, "--lines=20")
    assert live.returncode == 0, live.stderr
    assert fakes.printed_commands(dry.stdout) == fakes.calls()[-1:]

  tail_call, status_call, delete_call = fakes.calls()
  assert "--worker=0" in tail_call
  assert remote_command(tail_call) == 'tail -n 20 -F "$HOME"/tpu_electra_logs/pretrain.log'
  assert status_call[-1] == "--format=value(state)"
  assert delete_call == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "electra-pod",
                         "--zone=us-central2-b", "--quiet"]


def test_setup_archive_leaves_out_git_metadata(fakes, tmp_path):
  result = fakes.launch("launch.tpu", "setup", *V3, *setup_flags(tmp_path))

  assert result.returncode == 0, result.stderr
  import tarfile
  with tarfile.open(tmp_path / "src.tar.gz") as archive:
    names = archive.getnames()
  assert "./setup.py" in names and "./tpu_electra/__init__.py" in names
  assert not any(".git" in n for n in names)


def test_spot_and_preemptible_cannot_be_combined(fakes):
  status, _, stderr = fakes.main("launch.tpu", "create", "--spot", "--preemptible", *V3)

  assert status == 2
  assert "not allowed with argument" in stderr
  assert fakes.calls() == []


def test_project_and_extra_gcloud_flags_reach_every_command(fakes):
  result = fakes.launch("launch.tpu", "create", "--project=my-proj", "--create_flag=--reserved",
                        *V3)
  tail = fakes.launch("launch.tpu", "tail", "--project=my-proj", "--ssh_flag=--internal-ip", *V3)

  assert result.returncode == 0 and tail.returncode == 0
  create_call, tail_call = fakes.calls()
  assert "--project=my-proj" in create_call and create_call[-1] == "--reserved"
  assert "--project=my-proj" in tail_call and "--internal-ip" in tail_call


@pytest.mark.parametrize("flags", [V3, V4], ids=["v3-8", "v4-32"])
def test_job_reaches_the_remote_python_with_the_strategy_for_the_slice(fakes, flags):
  home = remote_checkout(fakes)

  result = fakes.launch("launch.tpu", "run", *flags, "--gin_param=train.num_steps = 10")

  assert result.returncode == 0, result.stderr
  (record,) = fakes.python_calls()
  name = flags[0].split("=", 1)[1]
  tpu_binding = '"local"' if "v3-8" in flags[2] else f'"{name}"'
  assert record["argv"] == [
      "-m", "tpu_electra.pretrain", f"--gin_file={GIN}",
      '--gin_param=get_strategy.name = "tpu"', f"--gin_param=get_strategy.tpu = {tpu_binding}",
      '--gin_param=DATA_DIR = "gs://bucket/data"', "--gin_param=train.num_steps = 10",
      "--model_dir=gs://bucket/electra_small"]
  assert record["cwd"] == str(home / "tpu_electra")
  if "v3-8" in flags[2]:
    assert record["env"] == {"PJRT_DEVICE": "TPU", "NEXT_PLUGGABLE_DEVICE_USE_C_API": "true",
                             "TF_PLUGGABLE_DEVICE_LIBRARY_PATH": "/fake/libtpu/libtpu.so"}
  else:
    assert record["env"] == {"TPU_NAME": name, "TPU_LOAD_LIBRARY": "0"}
  assert wait_for_text(home / "tpu_electra_logs" / "pretrain.exit") == "0"
  assert "fake job ran" in (home / "tpu_electra_logs" / "pretrain.log").read_text()


def test_malicious_values_arrive_as_single_arguments_and_execute_nothing(fakes, tmp_path):
  remote_checkout(fakes)
  canary = tmp_path / "pwned"
  # Executed by a real bash standing in for the TPU VM: payloads only ever touch a canary.
  evil = [f"x = 1'; touch {canary} #", f'y = "$(touch {canary})"', f"z = `touch {canary}`; :"]

  result = fakes.launch("launch.tpu", "run", *V3, *[f"--gin_param={v}" for v in evil],
                        f"--env=NOTE=a b'; touch {canary}")

  assert result.returncode == 0, result.stderr
  (record,) = fakes.python_calls()
  assert record["argv"][-4:-1] == [f"--gin_param={v}" for v in evil]
  time.sleep(0.2)
  assert not canary.exists()


def test_dry_run_quoting_survives_a_second_shell(fakes):
  evil = "x = 1'; rm -rf / #"

  status, stdout, _ = fakes.main("launch.tpu", "run", "--dry_run", *V3, f"--gin_param={evil}")

  assert status == 0
  (run,) = fakes.printed_commands(stdout)
  command = remote_command(run)
  job = command.split("( trap \"\" HUP; ", 1)[1].split("; echo $?", 1)[0]
  words = shlex.split(job.split(" && ")[-1])
  assert f"--gin_param={evil}" in words


@pytest.mark.parametrize("flag,value", [
    ("--model_dir", "runs/electra_small"),
    ("--model_dir", "/home/me/electra_small"),
    ("--data_dir", "/data/shards"),
])
def test_local_paths_are_refused_for_tpu_runs_before_any_gcloud_call(fakes, flag, value):
  args = [a for a in V3 if not a.startswith(flag + "=")] + [f"{flag}={value}"]

  status, stdout, stderr = fakes.main("launch.tpu", "all", *args)

  assert status == 2
  assert stdout == "" and stderr.count("\n") == 1
  assert f"{flag} must be a gs:// path" in stderr and value in stderr
  assert fakes.calls() == []


def test_an_error_quoting_a_url_masks_its_credentials_as_printed_commands_do(fakes):
  args = [a for a in V3 if not a.startswith("--data_dir=")] + ["--data_dir=https://u:SECRET@host/d"]

  status, stdout, stderr = fakes.main("launch.tpu", "run", "--dry_run", *args)

  assert status == 2 and stdout == ""
  assert "--data_dir must be a gs:// path" in stderr and "https://***@host/d" in stderr
  assert "SECRET" not in stderr


def test_preempted_tpu_is_recreated_set_up_and_the_job_rerun(fakes, tmp_path):
  fakes.tpu_states("PREEMPTED", "READY")
  fakes.job_statuses("0")

  result = fakes.launch("launch.tpu", "run", *V3, "--spot", "--max_restarts=2",
                        "--poll_seconds=0", *setup_flags(tmp_path))

  assert result.returncode == 0, result.stderr
  steps = []
  for call in fakes.calls():
    verb = call[4]
    if verb == "ssh":
      command = remote_command(call)
      verb = ("ssh:start" if "nohup" in command or "trap" in command else
              "ssh:status" if ".exit ]" in command else "ssh:setup")
    steps.append(verb)
  assert steps == ["ssh:start", "describe", "delete", "create", "scp", "ssh:setup", "ssh:start",
                   "describe", "ssh:status"]
  create = next(c for c in fakes.calls() if c[4] == "create")
  assert "--spot" in create
  starts = [c for c in fakes.calls() if c[4] == "ssh" and "trap" in remote_command(c)]
  assert starts[0] == starts[1]
  assert "relaunch 1 of 2" in result.stderr


def test_tpu_that_disappeared_is_created_again_without_a_delete(fakes, tmp_path):
  fakes.tpu_states("NOT_FOUND", "READY")

  result = fakes.launch("launch.tpu", "run", *V3, "--max_restarts=1", "--poll_seconds=0",
                        *setup_flags(tmp_path))

  assert result.returncode == 0, result.stderr
  verbs = [c[4] for c in fakes.calls()]
  assert "delete" not in verbs and verbs.count("create") == 1


def test_relaunching_stops_when_max_restarts_is_used_up(fakes, tmp_path):
  fakes.tpu_states("PREEMPTED")

  result = fakes.launch("launch.tpu", "run", *V3, "--max_restarts=1", "--poll_seconds=0",
                        *setup_flags(tmp_path))

  assert result.returncode == 2
  assert "--max_restarts=1 relaunches used up" in result.stderr
  assert [c[4] for c in fakes.calls()].count("create") == 1


def test_a_failing_job_is_reported_with_its_status_and_not_rerun(fakes, tmp_path):
  fakes.tpu_states("READY")
  fakes.job_statuses("running", "3")

  result = fakes.launch("launch.tpu", "run", *V3, "--max_restarts=4", "--poll_seconds=0",
                        "--delete_when_done", *setup_flags(tmp_path))

  assert result.returncode == 3
  verbs = [c[4] for c in fakes.calls()]
  assert "create" not in verbs
  assert verbs[-1] == "delete"
  starts = [c for c in fakes.calls() if c[4] == "ssh" and "trap" in remote_command(c)]
  assert len(starts) == 1


def test_a_job_lost_on_a_ready_tpu_is_started_again_in_place(fakes, tmp_path):
  fakes.tpu_states("READY")
  fakes.job_statuses("lost", "0")

  result = fakes.launch("launch.tpu", "run", *V4, "--max_restarts=1", "--poll_seconds=0",
                        *setup_flags(tmp_path))

  assert result.returncode == 0, result.stderr
  verbs = [c[4] for c in fakes.calls()]
  assert "create" not in verbs and "delete" not in verbs
  starts = [c for c in fakes.calls() if c[4] == "ssh" and "trap" in remote_command(c)]
  assert len(starts) == 2 and all("--worker=0" in c for c in starts)


def test_a_stopped_tpu_is_not_relaunched(fakes, tmp_path):
  fakes.tpu_states("STOPPED")

  result = fakes.launch("launch.tpu", "run", *V3, "--max_restarts=3", "--poll_seconds=0",
                        *setup_flags(tmp_path))

  assert result.returncode == 2 and "STOPPED" in result.stderr
  assert "create" not in [c[4] for c in fakes.calls()]


def test_credentials_in_a_git_url_or_env_are_never_printed(fakes):
  status, stdout, stderr = fakes.main(
      "launch.tpu", "all", "--dry_run", *V3, "--git_ref=main", "--env=HF_TOKEN=hf_abcdef",
      "--git_url=https://me:s3cr3t-tok@example.com/me/tpu_electra.git", "--env=NCCL_DEBUG=WARN")

  assert status == 0, stderr
  assert "s3cr3t-tok" not in stdout and "hf_abcdef" not in stdout
  assert "https://***@example.com/me/tpu_electra.git" in stdout
  assert "HF_TOKEN=***" in stdout and "NCCL_DEBUG=WARN" in stdout
  create, setup, run = fakes.printed_commands(stdout)
  assert create[4] == "create" and setup[4] == run[4] == "ssh"
  assert "git clone --depth=1 --branch=main --" in remote_command(setup)


# Issue 10: every name that looks secret, each with a value found nowhere else.
SECRET_ENV = {"DB_PASS": "pw-db-1", "OPENAI_KEY": "sk-openai-2", "MY_SECRET_X": "sec-x-3",
              "GH_TOKEN": "ghp-4", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa-5.json"}


def test_values_of_secret_looking_env_names_are_masked_in_the_dry_run(fakes):
  status, stdout, stderr = fakes.main(
      "launch.tpu", "all", "--dry_run", *V3, *[f"--env={k}={v}" for k, v in SECRET_ENV.items()],
      "--env=NCCL_DEBUG=WARN", "--gin_param=hub.api_key = 'gin-key-6'",
      "--install_cmd=DB_PASSWORD=pw-install-7 pip install -e .",
      "--ssh_flag=--strict-host-key-checking=no")

  assert status == 0, stderr
  for secret in [*SECRET_ENV.values(), "gin-key-6", "pw-install-7"]:
    assert secret not in stdout + stderr
  assert all(f"{name}=***" in stdout for name in SECRET_ENV)
  assert "hub.api_key = ***" in stdout and "DB_PASSWORD=***" in stdout
  # A name that does not look secret, and an option that is not a name, print as they are.
  assert "NCCL_DEBUG=WARN" in stdout and "--strict-host-key-checking=no" in stdout


def test_credentials_reach_the_job_while_the_echoed_command_hides_them(fakes):
  remote_checkout(fakes)

  result = fakes.launch("launch.tpu", "run", *V3, "--env=HF_TOKEN=hf_abcdef",
                        *[f"--env={k}={v}" for k, v in SECRET_ENV.items()])

  assert result.returncode == 0, result.stderr
  for secret in ["hf_abcdef", *SECRET_ENV.values()]:
    assert secret not in result.stderr + result.stdout
  assert "+ gcloud compute tpus tpu-vm ssh" in result.stderr and "DB_PASS=***" in result.stderr
  (record,) = fakes.python_calls()
  assert record["env"]["HF_TOKEN"] == "hf_abcdef"


def test_install_cmd_replaces_the_default_install(fakes):
  status, stdout, _ = fakes.main("launch.tpu", "setup", "--dry_run", *V3,
                                 "--install_cmd=pip install -e . && echo 'done'")

  assert status == 0
  (_, _, setup) = fakes.printed_commands(stdout)
  command = remote_command(setup)
  assert "apt-get" not in command and "tensorflow-tpu" not in command
  assert command.endswith("bash -c 'pip install -e . && echo '\"'\"'done'\"'\"''")


def test_finetune_passes_checkpoint_data_and_seeds_and_needs_gcs(fakes):
  flags = ["--name=ft", "--zone=europe-west4-a", "--accelerator_type=v3-8", "--job=finetune",
           "--gin_file=finetune/mnli.gin", "--model_dir=gs://b/mnli",
           "--init_checkpoint=gs://b/electra_small", "--data_dir=gs://b/glue/MNLI", "--seeds=5"]
  remote_checkout(fakes)

  result = fakes.launch("launch.tpu", "run", *flags)
  local = fakes.launch("launch.tpu", "run", *flags[:-3], "--data_dir=glue/MNLI",
                       "--init_checkpoint=gs://b/electra_small")

  assert result.returncode == 0, result.stderr
  (record,) = fakes.python_calls()
  assert record["argv"][:3] == ["-m", "tpu_electra.finetune", "--gin_file=finetune/mnli.gin"]
  assert record["argv"][-4:] == ["--init_checkpoint=gs://b/electra_small",
                                 "--data_dir=gs://b/glue/MNLI", "--model_dir=gs://b/mnli",
                                 "--seeds=5"]
  assert local.returncode == 2 and "--data_dir must be a gs:// path" in local.stderr


def test_run_without_accelerator_type_is_refused(fakes):
  status, _, stderr = fakes.main("launch.tpu", "run", *[a for a in V3 if "accelerator" not in a])

  assert status == 2 and "--accelerator_type is required" in stderr
  assert fakes.calls() == []


@pytest.mark.parametrize("name", ["-oProxyCommand=x", "Electra", "a_b", "x" * 70])
def test_invalid_tpu_names_are_refused(fakes, name):
  status, _, stderr = fakes.main("launch.tpu", "create", f"--name={name}",
                                 *[a for a in V3 if not a.startswith("--name")])

  assert status == 2 and "--name must be" in stderr
  assert fakes.calls() == []


@pytest.mark.parametrize("accelerator,hosts", [
    ("v2-8", 1), ("v3-8", 1), ("v3-32", 4), ("v4-8", 1), ("v4-32", 4), ("v5p-16", 2),
    ("v5p-128", 16), ("v5litepod-8", 1), ("v5litepod-16", 4), ("v6e-4", 1), ("v6e-256", 64),
])
def test_tpu_hosts_counts_workers_per_slice(accelerator, hosts):
  assert tpu.tpu_hosts(accelerator) == hosts


def test_unknown_accelerator_type_is_an_error():
  with pytest.raises(common.LaunchError, match="unknown --accelerator_type"):
    tpu.tpu_hosts("v9-8")


def test_default_runtime_uses_the_pod_image_only_for_multi_host_slices():
  assert tpu.default_runtime_version("v3-8", "2.20.0") == "tpu-vm-tf-2.20.0-pjrt"
  assert tpu.default_runtime_version("v4-32", "2.20.0") == "tpu-vm-tf-2.20.0-pod-pjrt"


def test_tf_version_comes_from_the_setup_py_pin(tmp_path):
  setup_py = tmp_path / "setup.py"
  setup_py.write_text('REQ = ["tensorflow-text==2.20.1", "tensorflow==2.21.3", "tf-keras"]\n')

  assert common.read_tf_version(setup_py) == "2.21.3"
  setup_py.write_text("REQ = []\n")
  with pytest.raises(common.LaunchError, match="--tf_version"):
    common.read_tf_version(setup_py)


def test_gin_string_is_a_python_literal_of_the_value():
  for value in ["gs://b/data", "it's", 'say "hi"', "ünï\\"]:
    assert ast.literal_eval(common.gin_string(value)) == value
