r"""Cloud TPU VM launcher: create, set up, run, tail and delete, with relaunch after preemption.

  python -m launch.tpu ACTION --name=NAME --zone=ZONE [flags]

Actions:
  create    gcloud compute tpus tpu-vm create (--spot or --preemptible for cheap capacity).
  setup     copy this repository to every worker and install it (or --git_url / --install_cmd).
  run       start the job in the background; with --wait or --max_restarts=N, watch it and, when
            the TPU is preempted, delete, recreate, set up and rerun it (training resumes from the
            last checkpoint in --model_dir).
  tail      print (and by default follow) the job's log on worker 0.
  status    print the TPU's state (READY, PREEMPTED, ...).
  delete    delete the TPU.
  all       create, setup, run.
  versions  list the runtime versions a zone offers.

Single-host TPUs (v2-8, v3-8, v4-8, ...) run the job on their own chips with
`get_strategy.tpu = 'local'`. TensorFlow drives a multi-host slice (v3-32, v4-32, ...) from one
client: the pod runtime image serves the chips of every worker, and the job runs on worker 0 only,
with `get_strategy.tpu = '<NAME>'`, TPU_NAME=<NAME> and TPU_LOAD_LIBRARY=0 (the client must not
claim worker 0's chips, which the runtime already serves). Setup still installs on every worker,
so that any worker can take the client's place.

Every flag value reaches the remote shell quoted; --dry_run prints the exact commands and runs
nothing.
"""

import argparse
import dataclasses
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from launch import common
from launch.common import LaunchError

ACTIONS = ("create", "setup", "run", "tail", "status", "delete", "all", "versions")

# States after which a TPU VM has lost its workers and must be deleted and created again.
_LOST_STATES = ("PREEMPTED", "TERMINATED")
# States that mean somebody stopped the TPU on purpose; relaunching would fight them.
_STOPPED_STATES = ("STOPPING", "STOPPED", "DELETING")

_TPU_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
_PROJECT = re.compile(r"^[a-z][-a-z0-9.:]{2,}$")
_ACCELERATOR = re.compile(r"^(v2|v3|v4|v5p|v5litepod|v5e|v6e)-([0-9]+)$")

_REMOTE_TARBALL = "tpu_electra_src.tar.gz"
# Anchored names are excluded at the top of the tree only, the rest at every level.
_TAR_EXCLUDES = ("./.git", "./.venv", "./runs", "__pycache__", "*.egg-info", ".pytest_cache")


def tpu_hosts(accelerator_type: str) -> int:
  """Number of TPU VM hosts (workers) in a slice of `accelerator_type`."""
  match = _ACCELERATOR.match(accelerator_type)
  if not match:
    raise LaunchError(f"unknown --accelerator_type {accelerator_type!r}; "
                      "expected e.g. v3-8, v4-32, v5p-16, v5litepod-16, v6e-8")
  family, size = match.group(1), int(match.group(2))
  if family in ("v2", "v3", "v4", "v5p"):
    # The suffix counts TensorCores; each host has 4 chips of 2 cores.
    return max(1, size // 8)
  # v5e and v6e count chips: up to 8 on one host, and 4 per host in multi-host slices.
  return 1 if size <= 8 else size // 4


def default_runtime_version(accelerator_type: str, tf_version: str) -> str:
  """TensorFlow TPU VM image `tpu-vm-tf-X.Y.Z[-pod]-pjrt`; `-pod` for multi-host slices."""
  pod = "-pod" if tpu_hosts(accelerator_type) > 1 else ""
  return f"tpu-vm-tf-{tf_version}{pod}-pjrt"


def _parser() -> argparse.ArgumentParser:
  p = common.action_parser("launch.tpu", __doc__, ACTIONS)
  tpu = p.add_argument_group("TPU")
  tpu.add_argument("--name", help="TPU VM name (lowercase letters, digits, '-').")
  tpu.add_argument("--zone", help="e.g. europe-west4-a (v3), us-central2-b (v4).")
  tpu.add_argument("--project", help="Google Cloud project; defaults to gcloud's configuration.")
  tpu.add_argument("--accelerator_type", help="e.g. v3-8, v4-32. Needed by create, run and all.")
  tpu.add_argument("--runtime_version",
                   help="TPU VM image; defaults to tpu-vm-tf-<TF>-pjrt, or -pod-pjrt for "
                        "multi-host slices, with <TF> the TensorFlow version setup.py pins.")
  capacity = tpu.add_mutually_exclusive_group()
  capacity.add_argument("--spot", action="store_true", help="Create a Spot TPU.")
  capacity.add_argument("--preemptible", action="store_true", help="Create a preemptible TPU.")
  tpu.add_argument("--create_flag", action="append", default=[],
                   help="Extra flag for `tpu-vm create`, e.g. --create_flag=--reserved.")
  tpu.add_argument("--ssh_flag", action="append", default=[],
                   help="Extra flag for `tpu-vm ssh` and `scp`, e.g. --ssh_flag=--internal-ip.")
  setup = p.add_argument_group("setup")
  setup.add_argument("--source", default=str(common.REPO_ROOT),
                     help="Local source tree to copy to the workers (default: this repository).")
  setup.add_argument("--tarball",
                     help="Where to write the source archive locally (default: a temp file).")
  setup.add_argument("--git_url", help="Clone this repository on the workers instead of copying.")
  setup.add_argument("--git_ref", help="Branch or tag for --git_url.")
  setup.add_argument("--tf_version",
                     help="TensorFlow version of the tensorflow-tpu build to install and of the "
                          "default runtime image (default: the tensorflow== pin in setup.py).")
  setup.add_argument("--install_cmd",
                     help="Shell command run in ~/tpu_electra on every worker instead of the "
                          "default install (Python 3.11 venv, pip install -e ., tensorflow-tpu).")
  setup.add_argument("--remote_python", default=f"../{common.REMOTE_VENV}/bin/python",
                     help="Python on the workers, relative to ~/tpu_electra or absolute.")
  run = p.add_argument_group("run")
  run.add_argument("--wait", action="store_true",
                   help="Stay until the job ends and exit with its status.")
  run.add_argument("--max_restarts", type=int, default=0,
                   help="Relaunch up to N times after preemption (implies --wait).")
  run.add_argument("--poll_seconds", type=float, default=300.0,
                   help="Seconds between checks of the TPU and the job while waiting.")
  run.add_argument("--delete_when_done", action="store_true",
                   help="With --wait: delete the TPU when the job has ended.")
  tail = p.add_argument_group("tail")
  tail.add_argument("--worker", default="0", help="Worker whose log to show (tail only).")
  tail.add_argument("--lines", type=int, default=100, help="Lines of log to show first.")
  tail.add_argument("--no_follow", action="store_true", help="Print the log and return.")
  common.add_job_flags(p)
  return p


@dataclasses.dataclass(frozen=True)
class _Setup:
  source: str
  tarball: str
  git_url: Optional[str]
  git_ref: Optional[str]
  tf_version: str
  install_cmd: Optional[str]

  def redacted(self) -> "_Setup":
    def r(v):
      return None if v is None else common.redact(v)
    return dataclasses.replace(self, git_url=r(self.git_url), git_ref=r(self.git_ref),
                               install_cmd=r(self.install_cmd))


class TpuLauncher:
  """Builds and runs the gcloud commands for one TPU VM."""

  def __init__(self, args: argparse.Namespace, runner: common.Runner):
    self.args = args
    self.runner = runner
    self.name = args.name
    self._hosts = tpu_hosts(args.accelerator_type) if args.accelerator_type else None
    self._setup: Optional[_Setup] = None
    self._job: Optional[common.JobSpec] = None

  # -- configuration -------------------------------------------------------------------------

  def require_accelerator(self) -> int:
    """The slice's host count; fails when --accelerator_type was not given."""
    if self._hosts is None:
      raise LaunchError(f"--accelerator_type is required for {self.args.action}")
    return self._hosts

  @property
  def is_pod(self) -> bool:
    return self.require_accelerator() > 1

  def setup_config(self) -> _Setup:
    if self._setup is None:
      a = self.args
      if a.git_ref and not a.git_url:
        raise LaunchError("--git_ref needs --git_url")
      if not a.git_url and not Path(a.source, "setup.py").is_file():
        raise LaunchError(f"--source {a.source!r} has no setup.py; point it at a tpu_electra tree")
      # Absolute paths: gcloud must never read a path that starts with '-' as one of its flags.
      tarball = Path(a.tarball or Path(tempfile.gettempdir(), f"tpu_electra_{self.name}.tar.gz"))
      self._setup = _Setup(source=str(Path(a.source).resolve()), tarball=str(tarball.resolve()),
                           git_url=a.git_url,
                           git_ref=a.git_ref, tf_version=a.tf_version or common.read_tf_version(),
                           install_cmd=a.install_cmd)
    return self._setup

  def job(self) -> common.JobSpec:
    if self._job is None:
      self._job = common.job_spec_from_args(self.args, require_gcs_paths=True)
    return self._job

  def runtime_version(self) -> str:
    if self.args.runtime_version:
      return self.args.runtime_version
    tf_version = self.args.tf_version or common.read_tf_version()
    return default_runtime_version(self.args.accelerator_type, tf_version)

  # -- command builders (pure: called once with real values, once with redacted ones) ---------

  def _gcloud(self, *words: str) -> list[str]:
    argv = ["gcloud", "compute", "tpus", "tpu-vm", *words, f"--zone={self.args.zone}"]
    if self.args.project:
      argv.append(f"--project={self.args.project}")
    return argv

  def _ssh(self, worker: str, script: str) -> list[str]:
    return [*self._gcloud("ssh", self.name), f"--worker={worker}", *self.args.ssh_flag,
            f"--command={script}"]

  def _create_argv(self) -> list[str]:
    argv = [*self._gcloud("create", self.name),
            f"--accelerator-type={self.args.accelerator_type}",
            f"--version={self.runtime_version()}"]
    if self.args.spot:
      argv.append("--spot")
    if self.args.preemptible:
      argv.append("--preemptible")
    return argv + list(self.args.create_flag)

  def _tar_argv(self, s: _Setup) -> list[str]:
    return ["tar", "-czf", s.tarball, *[f"--exclude={x}" for x in _TAR_EXCLUDES],
            "-C", s.source, "."]

  def _scp_argv(self, s: _Setup) -> list[str]:
    return [*self._gcloud("scp", s.tarball, f"{self.name}:{_REMOTE_TARBALL}"), "--worker=all",
            *self.args.ssh_flag]

  def _setup_script(self, s: _Setup) -> str:
    repo = f'"$HOME"/{common.REMOTE_REPO}'
    if s.git_url:
      clone = ["git", "clone", "--depth=1"]
      if s.git_ref:
        clone.append(f"--branch={s.git_ref}")
      fetch = [f"rm -rf {repo}", f"{shlex.join([*clone, '--', s.git_url])} {repo}"]
    else:
      fetch = [f"rm -rf {repo}", f"mkdir -p {repo}",
               f'tar -xzf "$HOME"/{_REMOTE_TARBALL} -C {repo}']
    if s.install_cmd:
      install = [f"cd {repo}", f"bash -c {shlex.quote(s.install_cmd)}"]
    else:
      # TPU VM images carry Ubuntu's Python 3.10; setup.py wants 3.11. The lock timeout waits
      # out the unattended upgrades that hold apt's lock on a freshly booted VM.
      apt = "sudo DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600"
      pip = f'"$HOME"/{common.REMOTE_VENV}/bin/pip'
      tf_tpu = shlex.quote(f"tensorflow-tpu=={s.tf_version}")
      install = [
          f"{apt} update", f"{apt} install -y python3.11 python3.11-venv",
          f'python3.11 -m venv "$HOME"/{common.REMOTE_VENV}',
          f"{pip} install -q --upgrade pip",
          f"{pip} install -q -e {repo}",
          # setup.py pins the `tensorflow` distribution; on a TPU the same package must come
          # from `tensorflow-tpu` (same version, plus libtpu), and both write tensorflow/.
          f"{pip} uninstall -q -y tensorflow",
          f"{pip} install -q {tf_tpu}",
      ]
    return " && ".join([*fetch, *install])

  def _start_script(self, job: common.JobSpec) -> str:
    if self.is_pod:
      strategy = [f"get_strategy.name = {common.gin_string('tpu')}",
                  f"get_strategy.tpu = {common.gin_string(self.name)}"]
      env = [("TPU_NAME", self.name), ("TPU_LOAD_LIBRARY", "0")]
      prelude = []
    else:
      strategy = [f"get_strategy.name = {common.gin_string('tpu')}",
                  f"get_strategy.tpu = {common.gin_string('local')}"]
      env = [("PJRT_DEVICE", "TPU"), ("NEXT_PLUGGABLE_DEVICE_USE_C_API", "true")]
      # The PJRT plugin is the libtpu that tensorflow-tpu installed next to it. A plain
      # assignment, unlike `export X=$(...)`, fails when the lookup fails.
      prelude = [
          f'TF_PLUGGABLE_DEVICE_LIBRARY_PATH="$({shlex.quote(self.args.remote_python)} '
          '-c "import libtpu; print(libtpu.get_library_path())")"',
          "export TF_PLUGGABLE_DEVICE_LIBRARY_PATH"]
    argv = common.job_argv(job, self.args.remote_python, strategy)
    return common.remote_start_script(f'"$HOME"/{common.REMOTE_REPO}', job.name,
                                      [*env, *job.env], argv, prelude)

  def _run_worker(self) -> str:
    return "0" if self.is_pod else "all"

  # -- actions -------------------------------------------------------------------------------

  def _run(self, build, *, capture=False, check=True):
    """Builds a command from real and from redacted values; runs the first, prints the second."""
    return self.runner.run(build(False), build(True), capture=capture, check=check)

  def create(self) -> None:
    self.require_accelerator()
    self._run(lambda shown: self._create_argv())

  def setup(self) -> None:
    s = self.setup_config()
    if not s.git_url:
      self._run(lambda shown: self._tar_argv(s.redacted() if shown else s))
      self._run(lambda shown: self._scp_argv(s.redacted() if shown else s))
    self._run(lambda shown: self._ssh("all", self._setup_script(s.redacted() if shown else s)))

  def start(self) -> None:
    job = self.job()
    self._run(lambda shown: self._ssh(self._run_worker(),
                                      self._start_script(job.redacted() if shown else job)))

  def tail(self) -> None:
    job_name = common.check_job_name(self.args.job_name or self.args.job)
    script = common.remote_tail_script(job_name, self.args.lines, not self.args.no_follow)
    self._run(lambda shown: self._ssh(self.args.worker, script), check=False)

  def delete(self) -> None:
    self._run(lambda shown: [*self._gcloud("delete", self.name), "--quiet"])

  def status(self) -> None:
    self._run(lambda shown: [*self._gcloud("describe", self.name), "--format=value(state)"])

  def versions(self) -> None:
    argv = ["gcloud", "compute", "tpus", "tpu-vm", "versions", "list", f"--zone={self.args.zone}"]
    if self.args.project:
      argv.append(f"--project={self.args.project}")
    self.runner.run(argv, argv)

  def print_hints(self) -> None:
    job_name = self.job().name
    tail = self._ssh("0", common.remote_tail_script(job_name, 100, True))
    self.runner.note(f"follow the log:  {shlex.join(tail)}")
    self.runner.note(f"tear down:       {shlex.join([*self._gcloud('delete', self.name), '--quiet'])}")

  # -- watching and relaunching --------------------------------------------------------------

  def _state(self) -> tuple[Optional[str], bool]:
    """The TPU's state, and whether the TPU no longer exists."""
    proc = self._run(lambda shown: [*self._gcloud("describe", self.name), "--format=value(state)"],
                     capture=True, check=False)
    if proc.returncode != 0:
      gone = re.search(r"not[ _]found", proc.stderr or "", re.IGNORECASE) is not None
      return None, gone
    return (proc.stdout.strip() or None), False

  def _job_status(self) -> Optional[str]:
    script = common.remote_status_script(self.job().name)
    proc = self._run(lambda shown: self._ssh("0", script), capture=True, check=False)
    if proc.returncode != 0:
      return None
    lines = proc.stdout.strip().splitlines()
    return lines[-1].strip() if lines else None

  def watch(self) -> int:
    """Waits for the job; relaunches after preemption. Returns the job's exit status."""
    a = self.args
    if self.runner.dry_run:
      self.runner.note(
          f"then, every {a.poll_seconds:g} s until the job ends: the TPU's state, and the job's "
          "exit status on worker 0 (a number, 'running' or 'lost'):")
      self._run(lambda shown: [*self._gcloud("describe", self.name), "--format=value(state)"])
      self._run(lambda shown: self._ssh("0", common.remote_status_script(self.job().name)))
      if a.max_restarts:
        self.runner.note(
            f"when the TPU is {' or '.join(_LOST_STATES)} or gone (at most {a.max_restarts} "
            "times): delete, then create, setup and run again as above; training resumes from "
            "the last checkpoint in --model_dir. A 'lost' job is started again on the same TPU.")
      else:
        self.runner.note("if the TPU is preempted or the job lost: stop with an error "
                         "(--max_restarts=N relaunches instead).")
      if a.delete_when_done:
        self.runner.note("when the job has ended:")
        self.delete()
      return 0
    restarts = 0
    while True:
      time.sleep(a.poll_seconds)
      state, gone = self._state()
      if gone or state in _LOST_STATES:
        restarts = self._count_restart(restarts, f"TPU {self.name} is {state or 'gone'}")
        if not gone:
          self.delete()
        self.create()
        self.setup()
        self.start()
        continue
      if state in _STOPPED_STATES:
        raise LaunchError(f"TPU {self.name} is {state}; not relaunching a TPU stopped on purpose")
      if state != "READY":
        continue
      status = self._job_status()
      if status is None or status == "running":
        continue
      if status == "lost":
        restarts = self._count_restart(restarts, f"the job on TPU {self.name} ended without a status")
        self.start()
        continue
      if re.fullmatch(r"[0-9]+", status):
        code = int(status)
        print(f"job {self.job().name} on {self.name} exited with status {code}", file=sys.stderr)
        if a.delete_when_done:
          self.delete()
        return code

  def _count_restart(self, restarts: int, why: str) -> int:
    if restarts >= self.args.max_restarts:
      raise LaunchError(f"{why}; --max_restarts={self.args.max_restarts} relaunches used up "
                        "(the last checkpoint is in --model_dir)")
    restarts += 1
    print(f"{why}: relaunch {restarts} of {self.args.max_restarts}, resuming from the last "
          "checkpoint in --model_dir", file=sys.stderr)
    return restarts


def _validate(args: argparse.Namespace) -> None:
  if not args.zone or not _ZONE.match(args.zone):
    raise LaunchError(f"--zone must be a zone such as europe-west4-a, got {args.zone!r}")
  if args.project is not None and not _PROJECT.match(args.project):
    raise LaunchError(f"--project does not look like a project id: {args.project!r}")
  if args.action == "versions":
    return
  if not args.name or not _TPU_NAME.match(args.name):
    raise LaunchError("--name must be lowercase letters, digits and '-', starting with a letter, "
                      f"got {args.name!r}")
  if not re.fullmatch(r"all|[0-9]+", args.worker):
    raise LaunchError(f"--worker must be a worker index or 'all', got {args.worker!r}")
  if args.lines < 0:
    raise LaunchError(f"--lines must be >= 0, got {args.lines}")
  if args.max_restarts < 0:
    raise LaunchError(f"--max_restarts must be >= 0, got {args.max_restarts}")
  if args.poll_seconds < 0:
    raise LaunchError(f"--poll_seconds must be >= 0, got {args.poll_seconds}")
  waits = args.wait or args.max_restarts > 0
  if args.delete_when_done and not waits:
    raise LaunchError("--delete_when_done needs --wait or --max_restarts")
  for flag in ("create_flag", "ssh_flag"):
    for value in getattr(args, flag):
      if not value.startswith("--"):
        raise LaunchError(f"--{flag} takes a gcloud flag starting with --, got {value!r}")


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(argv)
  _validate(args)
  launcher = TpuLauncher(args, common.Runner(args.dry_run))
  action = args.action
  waits = args.wait or args.max_restarts > 0
  if action in ("run", "all"):
    # A bad --model_dir or a missing --accelerator_type must stop us before anything is created.
    launcher.job()
    launcher.require_accelerator()
    if waits or action == "all":
      launcher.setup_config()  # A relaunch runs setup again.
  if action == "create":
    launcher.create()
  elif action == "setup":
    launcher.setup()
  elif action in ("run", "all"):
    if action == "all":
      launcher.create()
      launcher.setup()
    launcher.start()
    if waits:
      return launcher.watch()
    launcher.print_hints()
  elif action == "tail":
    launcher.tail()
  elif action == "status":
    launcher.status()
  elif action == "delete":
    launcher.delete()
  elif action == "versions":
    launcher.versions()
  return 0


if __name__ == "__main__":
  sys.exit(common.main_wrapper("launch.tpu", main, sys.argv[1:]))
