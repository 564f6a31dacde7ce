r"""GPU launcher: one host with MirroredStrategy, several with MultiWorkerMirroredStrategy.

  python -m launch.gpu run [--hosts=HOST,HOST,...] [flags]
  python -m launch.gpu tail --hosts=HOST,HOST,... [--worker=I]

Without --hosts the job runs here, in the foreground, with `get_strategy.name = "gpu"` (all local
GPUs; restrict them with CUDA_VISIBLE_DEVICES). With one host it runs there over ssh. With
several hosts each one runs the same command over ssh with `get_strategy.name = "multi_worker"`
and its own TF_CONFIG: every host's address in --hosts order, and its index in that list (host 0
is the chief). Remote jobs run in the background, detached from ssh, and log to
~/tpu_electra_logs/JOB_NAME.log on their host; `tail` shows one of those logs.

Each host needs this repository at --remote_dir and a Python with it installed (`pip install -e
.`). For several hosts, --model_dir must be a location all of them can reach (gs:// or a shared
file system), and the hosts must reach each other on --worker_port.

Every flag value reaches the remote shell quoted; --dry_run prints the exact commands and runs
nothing.
"""

import argparse
import json
import os
import re
import shlex
import sys
from typing import Sequence

from launch import common
from launch.common import LaunchError

ACTIONS = ("run", "tail")

# A host name or IPv4 address, optionally with `user@`; never starting with '-', so that ssh
# cannot read it as an option.
_HOST = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*$")


def _parser() -> argparse.ArgumentParser:
  p = common.action_parser("launch.gpu", __doc__, ACTIONS)
  hosts = p.add_argument_group("hosts")
  hosts.add_argument("--hosts", default="",
                     help="Comma-separated ssh destinations ([user@]host); empty runs here.")
  hosts.add_argument("--cluster_hosts", default="",
                     help="Addresses the hosts use to reach each other, in --hosts order, when "
                          "they differ from the ssh destinations (default: --hosts without user@).")
  hosts.add_argument("--worker_port", type=int, default=12345,
                     help="Port each worker listens on for MultiWorkerMirroredStrategy.")
  hosts.add_argument("--ssh_port", type=int, help="ssh port on the hosts.")
  hosts.add_argument("--ssh_option", action="append", default=[],
                     help="ssh -o option such as StrictHostKeyChecking=accept-new; repeatable.")
  hosts.add_argument("--remote_dir", default=common.REMOTE_REPO,
                     help="The repository on each host, relative to the home directory, "
                          "absolute, or starting with ~/.")
  hosts.add_argument("--remote_python", default="python3",
                     help="Python on each host that has tpu_electra installed.")
  hosts.add_argument("--python", default=sys.executable,
                     help="Python for a local run (default: this one).")
  hosts.add_argument("--worker", type=int, default=0, help="Index of the host to tail.")
  hosts.add_argument("--lines", type=int, default=100, help="Lines of log to show first.")
  hosts.add_argument("--no_follow", action="store_true", help="Print the log and return.")
  common.add_job_flags(p)
  return p


def _split_hosts(value: str, flag: str) -> list[str]:
  hosts = [h.strip() for h in value.split(",") if h.strip()]
  for host in hosts:
    if not _HOST.match(host):
      raise LaunchError(f"{flag} entries must be [user@]host names or IPv4 addresses, got {host!r}")
  return hosts


def tf_config(cluster: Sequence[str], port: int, index: int) -> str:
  """TF_CONFIG for worker `index` of a MultiWorkerMirroredStrategy cluster."""
  return json.dumps({
      "cluster": {"worker": [f"{host}:{port}" for host in cluster]},
      "task": {"type": "worker", "index": index},
  }, separators=(",", ":"))


def _cd_target(remote_dir: str) -> str:
  # Quoting would stop the remote shell from expanding `~`, so spell it as $HOME.
  if remote_dir == "~":
    return '"$HOME"'
  if remote_dir.startswith("~/"):
    return '"$HOME"/' + shlex.quote(remote_dir[2:])
  return shlex.quote(remote_dir)


class GpuLauncher:
  """Builds and runs the commands for one GPU job."""

  def __init__(self, args: argparse.Namespace, runner: common.Runner):
    self.args = args
    self.runner = runner
    self.hosts = _split_hosts(args.hosts, "--hosts")
    cluster = _split_hosts(args.cluster_hosts, "--cluster_hosts")
    if cluster and len(cluster) != len(self.hosts):
      raise LaunchError(f"--cluster_hosts has {len(cluster)} entries, --hosts {len(self.hosts)}")
    self.cluster = cluster or [h.rpartition("@")[2] for h in self.hosts]

  def _ssh(self, host: str, script: str) -> list[str]:
    argv = ["ssh"]
    if self.args.ssh_port is not None:
      argv += ["-p", str(self.args.ssh_port)]
    for option in self.args.ssh_option:
      argv += ["-o", option]
    return [*argv, "--", host, script]

  def _host_argv(self, job: common.JobSpec, index: int) -> list[str]:
    if len(self.hosts) > 1:
      strategy = [f"get_strategy.name = {common.gin_string('multi_worker')}"]
      env = [("TF_CONFIG", tf_config(self.cluster, self.args.worker_port, index))]
    else:
      strategy = [f"get_strategy.name = {common.gin_string('gpu')}"]
      env = []
    argv = common.job_argv(job, self.args.remote_python, strategy)
    script = common.remote_start_script(_cd_target(self.args.remote_dir), job.name,
                                        [*env, *job.env], argv)
    return self._ssh(self.hosts[index], script)

  def _local_argv(self, job: common.JobSpec) -> list[str]:
    argv = common.job_argv(job, self.args.python, [f"get_strategy.name = {common.gin_string('gpu')}"])
    return ["env", *[f"{k}={v}" for k, v in job.env], *argv] if job.env else argv

  def run(self) -> int:
    job = common.job_spec_from_args(self.args, require_gcs_paths=False)
    if not self.hosts:
      # The child gets this environment plus --env; it is never printed.
      env = {**os.environ, **dict(job.env)}
      proc = self.runner.run(common.job_argv(job, self.args.python,
                                             [f"get_strategy.name = {common.gin_string('gpu')}"]),
                             self._local_argv(job.redacted()), check=False,
                             cwd=common.REPO_ROOT, env=env)
      return proc.returncode
    shown_job = job.redacted()
    for index in range(len(self.hosts)):
      self.runner.run(self._host_argv(job, index), self._host_argv(shown_job, index))
    tail = self._ssh(self.hosts[0], common.remote_tail_script(job.name, 100, True))
    self.runner.note(f"follow the chief's log:  {shlex.join(tail)}")
    return 0

  def tail(self) -> int:
    if not self.hosts:
      raise LaunchError("tail needs --hosts (a local run prints its log to the terminal)")
    if not 0 <= self.args.worker < len(self.hosts):
      raise LaunchError(f"--worker must be in [0, {len(self.hosts) - 1}], got {self.args.worker}")
    job_name = common.check_job_name(self.args.job_name or self.args.job)
    argv = self._ssh(self.hosts[self.args.worker],
                     common.remote_tail_script(job_name, self.args.lines, not self.args.no_follow))
    return self.runner.run(argv, argv, check=False).returncode


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(argv)
  for option in args.ssh_option:
    if option.startswith("-") or "=" not in option:
      raise LaunchError(f"--ssh_option takes NAME=VALUE (passed as ssh -o), got {option!r}")
  launcher = GpuLauncher(args, common.Runner(args.dry_run))
  if args.action == "run":
    return launcher.run()
  return launcher.tail()


if __name__ == "__main__":
  sys.exit(common.main_wrapper("launch.gpu", main, sys.argv[1:]))
