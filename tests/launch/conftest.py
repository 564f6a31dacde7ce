"""Fakes for the launcher tests: `gcloud`, `ssh` and a remote `python` that record their calls.

The fakes are put first on PATH for launchers run as subprocesses. Each appends one JSON line per
call to a log. With `remote_home` set, the fake `gcloud ... ssh --command=` and `ssh HOST CMD`
run the remote command with bash in a local directory standing in for the remote home, so tests
see what a real remote shell makes of the quoting.
"""

import contextlib
import importlib
import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

_FAKE_GCLOUD = r'''
import json, os, subprocess, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as f:
  f.write(json.dumps({"tool": "gcloud", "argv": argv}) + "\n")


def pop_line(path, default):
  """Returns the first line of the file at `path`; the last line repeats forever."""
  if not path or not os.path.exists(path):
    return default
  with open(path) as f:
    lines = [l.strip() for l in f if l.strip()]
  if not lines:
    return default
  if len(lines) > 1:
    with open(path, "w") as f:
      f.write("\n".join(lines[1:]) + "\n")
  return lines[0]


if "describe" in argv:
  state = pop_line(os.environ.get("FAKE_TPU_STATES"), "READY")
  if state == "NOT_FOUND":
    print("ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: Resource not found", file=sys.stderr)
    sys.exit(1)
  print(state)
elif "ssh" in argv:
  command = next(a[len("--command="):] for a in argv if a.startswith("--command="))
  home = os.environ.get("FAKE_REMOTE_HOME")
  if home:
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home)
    sys.exit(subprocess.run(["bash", "-c", command], cwd=home, env=env).returncode)
  if ".exit ]" in command:
    print(pop_line(os.environ.get("FAKE_JOB_STATUSES"), "0"))
'''

_FAKE_SSH = r'''
import json, os, subprocess, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as f:
  f.write(json.dumps({"tool": "ssh", "argv": argv}) + "\n")
rest = argv[argv.index("--") + 1:]
host, command = rest[0], " ".join(rest[1:])
root = os.environ.get("FAKE_REMOTE_HOME")
if root:
  home = os.path.join(root, host.rpartition("@")[2])
  os.makedirs(home, exist_ok=True)
  env = dict(os.environ, HOME=home)
  sys.exit(subprocess.run(["bash", "-c", command], cwd=home, env=env).returncode)
'''

_FAKE_PYTHON = r'''
import json, os, sys

if sys.argv[1:2] == ["-c"]:
  print("/fake/libtpu/libtpu.so")
  sys.exit(0)
keys = ("TF_CONFIG", "TPU_NAME", "TPU_LOAD_LIBRARY", "PJRT_DEVICE", "HF_TOKEN",
        "NEXT_PLUGGABLE_DEVICE_USE_C_API", "TF_PLUGGABLE_DEVICE_LIBRARY_PATH")
record = {"argv": sys.argv[1:], "cwd": os.getcwd(), "home": os.environ.get("HOME"),
          "env": {k: os.environ[k] for k in keys if k in os.environ}}
with open(os.environ["FAKE_PY_CALLS"], "a") as f:
  f.write(json.dumps(record) + "\n")
print("fake job ran")
sys.exit(int(os.environ.get("FAKE_PY_EXIT", "0")))
'''


def write_script(path: Path, body: str) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  # -S skips site-packages: the fakes need only the standard library, and start faster.
  path.write_text(f"#!{sys.executable} -S\n" + textwrap.dedent(body))
  path.chmod(0o755)
  return path


def read_jsonl(path: Path) -> list:
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Fakes:
  """A fake cloud: tool fakes on PATH, their call log, and knobs for their answers."""

  def __init__(self, root: Path):
    self.root = root
    self.bin = root / "bin"
    self.calls_file = root / "calls.jsonl"
    self.py_calls_file = root / "py_calls.jsonl"
    self.remote_home = None
    self.env = {}
    write_script(self.bin / "gcloud", _FAKE_GCLOUD)
    write_script(self.bin / "ssh", _FAKE_SSH)

  def fake_python(self, path: Path) -> Path:
    return write_script(path, _FAKE_PYTHON)

  def tpu_states(self, *states: str) -> None:
    path = self.root / "states.txt"
    path.write_text("\n".join(states) + "\n")
    self.env["FAKE_TPU_STATES"] = str(path)

  def job_statuses(self, *statuses: str) -> None:
    path = self.root / "job_statuses.txt"
    path.write_text("\n".join(statuses) + "\n")
    self.env["FAKE_JOB_STATUSES"] = str(path)

  def execute_remote_commands(self) -> Path:
    """Makes ssh run remote commands with bash under the returned fake remote home."""
    self.remote_home = self.root / "remote_home"
    self.remote_home.mkdir(exist_ok=True)
    self.env["FAKE_REMOTE_HOME"] = str(self.remote_home)
    return self.remote_home

  def launch(self, module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(self.env)
    env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
    env["FAKE_CALLS"] = str(self.calls_file)
    env["FAKE_PY_CALLS"] = str(self.py_calls_file)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)

  def main(self, module: str, *args: str) -> tuple[int, str, str]:
    """Runs a launcher in this process: (exit status, stdout, stderr).

    For checks that must stop before any command runs; anything that does run still goes to
    the fakes on PATH.
    """
    from launch import common  # pylint: disable=g-import-not-at-top
    launcher = importlib.import_module(module)
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(self.env)
    os.environ["PATH"] = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["FAKE_CALLS"] = str(self.calls_file)
    os.environ["FAKE_PY_CALLS"] = str(self.py_calls_file)
    try:
      with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
          status = common.main_wrapper(module, launcher.main, list(args))
        except SystemExit as e:  # argparse rejecting the flags
          status = e.code
    finally:
      os.environ.clear()
      os.environ.update(saved)
    return status, out.getvalue(), err.getvalue()

  @staticmethod
  def printed_commands(stdout: str) -> list:
    """The commands of a dry run: each line that is not a # comment, split as a shell would."""
    return [shlex.split(line) for line in stdout.splitlines()
            if line.strip() and not line.startswith("#")]

  def calls(self) -> list:
    """[tool, *argv] for every call of a fake tool, in order."""
    return [[c["tool"], *c["argv"]] for c in read_jsonl(self.calls_file)]

  def clear_calls(self) -> None:
    self.calls_file.unlink(missing_ok=True)

  def python_calls(self, count: int = 1, timeout: float = 10.0) -> list:
    """Job records of the fake python, waiting for `count` (remote jobs run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
      records = read_jsonl(self.py_calls_file)
      if len(records) >= count or time.monotonic() > deadline:
        return records
      time.sleep(0.05)


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
  return Fakes(tmp_path)
