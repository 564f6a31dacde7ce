"""Pieces shared by the TPU and GPU launchers.

Every command is an argument list. Where a remote shell has to read a command (the `--command=`
of `gcloud ... ssh`, or the command of `ssh`), each user value in it is quoted with
`shlex.quote`, and the shell code around the values is fixed text of this module, so no value
can change what the remote shell runs.

What is printed (dry run or live) is the same argument list rendered with `shlex.join`, built
once more from copies of the user's values in which anything that looks like a credential is
replaced by `***`.
"""

import argparse
import dataclasses
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent

# Layout on every remote host, relative to the login user's home directory. Fixed names keep the
# shell code around user values free of anything that would itself need quoting.
REMOTE_REPO = "tpu_electra"
REMOTE_VENV = "tpu_electra_venv"
REMOTE_LOGS = "tpu_electra_logs"

JOB_KINDS = ("pretrain", "finetune")
REDACTED = "***"

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The rule: a name looks secret when it contains one of these words, in any case (`DB_PASS`,
# `OPENAI_KEY`, `MY_SECRET_X`, `GH_TOKEN`, `GOOGLE_APPLICATION_CREDENTIALS`, `HF_AUTH`). It is a
# plain substring test on purpose: it also masks harmless names (`TOKENIZERS_PARALLELISM`,
# `mask_token_id`), which costs a less readable line, where a cleverer test could print a secret.
SECRET_WORDS = ("PASS", "KEY", "SECRET", "TOKEN", "CREDENTIAL", "AUTH")
_SECRET_WORD = "(?:" + "|".join(SECRET_WORDS) + ")"
_SECRET_NAME = re.compile(rf"^[A-Za-z0-9_]*{_SECRET_WORD}[A-Za-z0-9_]*$", re.IGNORECASE)
# `NAME=value`, `NAME = "value"`, `--name=value`, `"name": "value"` in free text. The value is
# one shell word: unquoted characters and quoted strings (an unclosed quote runs to whitespace).
_SECRET_ASSIGNMENT = re.compile(
    rf"(?P<name>\b[A-Za-z0-9_]*{_SECRET_WORD}[A-Za-z0-9_]*)(?P<sep>[\"']?\s*[=:]\s*)"
    r"""(?P<value>(?:[^\s'"]|'[^']*'|"[^"]*"|['"]\S*)+)""",
    re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


class LaunchError(Exception):
  """A problem the user can fix; reported as one line, without a traceback."""


def redact(text: str) -> str:
  """Returns `text` with URL user info and `SECRET_NAME=value` pairs replaced by `***`."""
  text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
  return _SECRET_ASSIGNMENT.sub(
      lambda m: f"{m.group('name')}{m.group('sep')}{REDACTED}", text)


def is_secret_name(name: str) -> bool:
  return bool(_SECRET_NAME.match(name))


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
  """Parses repeated `--env NAME=VALUE` flags, keeping their order."""
  env = {}
  for pair in pairs:
    name, sep, value = pair.partition("=")
    if not sep or not _ENV_NAME.match(name):
      raise LaunchError(f"--env needs NAME=VALUE with a shell variable name, got {redact(pair)!r}")
    env[name] = value
  return env


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
  return {k: (REDACTED if is_secret_name(k) else redact(v)) for k, v in env.items()}


def check_job_name(name: str) -> str:
  if not _JOB_NAME.match(name):
    raise LaunchError(
        f"--job_name must be letters, digits, '.', '_' or '-' (it names the log file), got {name!r}")
  return name


def require_gcs(flag: str, value: Optional[str], why: str) -> None:
  if value is not None and not value.startswith("gs://"):
    raise LaunchError(f"{flag} must be a gs:// path ({why}), got {value!r}")


def gin_string(value: str) -> str:
  """A gin string literal for `value`.

  Gin reads Python literal syntax, which JSON strings are. Double quotes keep the single quotes of
  shell quoting from nesting inside gin's own.
  """
  return json.dumps(value)


def read_tf_version(setup_py: Path = REPO_ROOT / "setup.py") -> str:
  """The TensorFlow version that setup.py pins, so the TPU build installed matches it."""
  try:
    text = setup_py.read_text()
  except OSError as e:
    raise LaunchError(f"cannot read {setup_py} to find the TensorFlow pin ({e.strerror}); "
                      "pass --tf_version") from e
  match = re.search(r"""["']tensorflow==([0-9][0-9A-Za-z.]*)["']""", text)
  if not match:
    raise LaunchError(f"no tensorflow==X pin in {setup_py}; pass --tf_version")
  return match.group(1)


@dataclasses.dataclass(frozen=True)
class JobSpec:
  """What to run: one of the project's entry points and its flags."""
  kind: str
  gin_files: tuple[str, ...]
  gin_params: tuple[str, ...]
  model_dir: str
  data_dir: Optional[str]
  init_checkpoint: Optional[str]
  seeds: Optional[int]
  env: tuple[tuple[str, str], ...]
  name: str

  def redacted(self) -> "JobSpec":
    def r(v):
      return None if v is None else redact(v)
    return dataclasses.replace(
        self,
        gin_files=tuple(map(redact, self.gin_files)),
        gin_params=tuple(map(redact, self.gin_params)),
        model_dir=redact(self.model_dir),
        data_dir=r(self.data_dir),
        init_checkpoint=r(self.init_checkpoint),
        env=tuple(redact_env(dict(self.env)).items()))


# A launcher's own failures exit with this status, not 1: `run` exits with the job's exit status,
# and 1 is the commonest job failure.
LAUNCH_ERROR_STATUS = 2


class _Parser(argparse.ArgumentParser):
  """argparse as the other entry points answer (tpu_electra.cli_utils, absl flags; not imported
  here, so that a launcher runs from a checkout on the Python standard library alone): --help exits
  0, a flag error is one line, `error: ... (--help lists the flags)`, with no usage block."""

  def error(self, message: str) -> None:  # pylint: disable=arguments-differ
    # Masked as every printed line is: argparse quotes the value it refuses.
    print(f"error: {redact(message)} (--help lists the flags)", file=sys.stderr)
    sys.exit(LAUNCH_ERROR_STATUS)


def action_parser(module: str, description: str, actions: Sequence[str]) -> argparse.ArgumentParser:
  """`python -m <module> ACTION [--dry_run] ...`: the flags every launcher starts with."""
  parser = _Parser(prog=f"python -m {module}", description=description,
                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument("action", choices=actions)
  parser.add_argument("--dry_run", action="store_true", help="Print the exact commands and run nothing.")
  return parser


def add_job_flags(parser: argparse.ArgumentParser) -> None:
  """Flags that describe the training job; shared by both launchers."""
  g = parser.add_argument_group("job")
  g.add_argument("--job", choices=JOB_KINDS, default="pretrain",
                 help="Entry point: tpu_electra.pretrain or tpu_electra.finetune.")
  g.add_argument("--gin_file", action="append", default=[],
                 help="Gin file, relative to the repository root; repeatable.")
  g.add_argument("--gin_param", action="append", default=[],
                 help="Gin binding such as \"train.num_steps = 1000\"; repeatable; applied after "
                      "the launcher's own bindings, so it can override them.")
  g.add_argument("--model_dir", help="Checkpoints and summaries; rerunning resumes from here.")
  g.add_argument("--data_dir", help="Pretraining shards (bound as DATA_DIR) or fine-tuning data.")
  g.add_argument("--init_checkpoint", help="Fine-tuning only: the pretrained checkpoint.")
  g.add_argument("--seeds", type=int, help="Fine-tuning only: number of seeds to run.")
  g.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                 help="Environment variable for the job; repeatable. The value of a name "
                      "containing PASS, KEY, SECRET, TOKEN, CREDENTIAL or AUTH (any case) is "
                      "printed as ***.")
  g.add_argument("--job_name",
                 help="Names the log file ~/tpu_electra_logs/JOB_NAME.log; defaults to --job.")


def job_spec_from_args(args: argparse.Namespace, require_gcs_paths: bool) -> JobSpec:
  """Validates the job flags; with `require_gcs_paths`, every path must be on gs://."""
  if not args.gin_file:
    raise LaunchError("--gin_file is required (e.g. experiments/electra_small.gin)")
  if not args.model_dir:
    raise LaunchError("--model_dir is required")
  if args.job == "finetune":
    if not args.init_checkpoint or not args.data_dir:
      raise LaunchError("--job=finetune needs --init_checkpoint and --data_dir")
  elif args.init_checkpoint or args.seeds is not None:
    raise LaunchError("--init_checkpoint and --seeds are fine-tuning flags; add --job=finetune")
  if args.seeds is not None and args.seeds < 1:
    raise LaunchError(f"--seeds must be at least 1, got {args.seeds}")
  if require_gcs_paths:
    why = "TPU workers cannot reach this machine's disk"
    require_gcs("--model_dir", args.model_dir, why)
    require_gcs("--data_dir", args.data_dir, why)
    require_gcs("--init_checkpoint", args.init_checkpoint, why)
  return JobSpec(
      kind=args.job,
      gin_files=tuple(args.gin_file),
      gin_params=tuple(args.gin_param),
      model_dir=args.model_dir,
      data_dir=args.data_dir,
      init_checkpoint=args.init_checkpoint,
      seeds=args.seeds,
      env=tuple(parse_env(args.env).items()),
      name=check_job_name(args.job_name or args.job))


def job_argv(spec: JobSpec, python: str, strategy_params: Sequence[str]) -> list[str]:
  """The entry-point command line, `python -m tpu_electra.<kind> ...`."""
  argv = [python, "-m", f"tpu_electra.{spec.kind}"]
  argv += [f"--gin_file={f}" for f in spec.gin_files]
  params = list(strategy_params)
  if spec.kind == "pretrain" and spec.data_dir is not None:
    params.append(f"DATA_DIR = {gin_string(spec.data_dir)}")
  params += spec.gin_params
  argv += [f"--gin_param={p}" for p in params]
  if spec.kind == "finetune":
    argv += [f"--init_checkpoint={spec.init_checkpoint}", f"--data_dir={spec.data_dir}"]
  argv.append(f"--model_dir={spec.model_dir}")
  if spec.seeds is not None:
    argv.append(f"--seeds={spec.seeds}")
  return argv


def _log_paths(job_name: str) -> tuple[str, str, str]:
  base = f'"$HOME"/{REMOTE_LOGS}/{check_job_name(job_name)}'
  return f"{base}.log", f"{base}.exit", f"{base}.pid"


def remote_start_script(cd_target: str, job_name: str, env: Sequence[tuple[str, str]],
                        argv: Sequence[str], prelude: Sequence[str] = ()) -> str:
  """Shell code that starts `argv` in the background, detached from the ssh session.

  The job ignores SIGHUP, so it survives the ssh connection closing (and the launching machine
  going away); it appends its output to ~/tpu_electra_logs/JOB.log, and on exit writes its status
  to JOB.exit, which is how `remote_status_script` tells a finished job from one that was lost
  with its host.

  Args:
    cd_target: already-quoted directory to run in.
    job_name: validated job name.
    env: environment for the job; values are quoted here.
    argv: the job's command line; quoted here.
    prelude: fixed shell commands (no user values) that run first inside the job's shell.
  """
  log, exit_file, pid_file = _log_paths(job_name)
  command = shlex.join(["env", *[f"{k}={v}" for k, v in env], *argv]) if env else shlex.join(argv)
  body = " && ".join([*prelude, command])
  return (f'mkdir -p "$HOME"/{REMOTE_LOGS} && rm -f {exit_file} {pid_file} && cd {cd_target} && '
          f'{{ ( trap "" HUP; {body}; echo $? > {exit_file} ) < /dev/null >> {log} 2>&1 & '
          f"echo $! > {pid_file}; }} && echo "
          + shlex.quote(f"started {job_name}, log: ~/{REMOTE_LOGS}/{job_name}.log"))


def remote_status_script(job_name: str) -> str:
  """Shell code printing the job's exit status, `running`, or `lost` (gone without one)."""
  _, exit_file, pid_file = _log_paths(job_name)
  return (f"if [ -e {exit_file} ]; then cat {exit_file}; "
          f'elif [ -e {pid_file} ] && kill -0 "$(cat {pid_file})" 2>/dev/null; then echo running; '
          "else echo lost; fi")


def remote_tail_script(job_name: str, lines: int, follow: bool) -> str:
  log, _, _ = _log_paths(job_name)
  return f"tail -n {int(lines)}{' -F' if follow else ''} {log}"


class Runner:
  """Runs commands, or with `dry_run` only prints them.

  Dry runs print copy-pasteable lines to `out`; notes are `#` comments so that pasting the whole
  output runs only the commands. Live runs echo each command to `log` before running it.
  """

  def __init__(self, dry_run: bool, out: Optional[TextIO] = None, log: Optional[TextIO] = None):
    self.dry_run = dry_run
    # Looked up now, not at import, so that redirecting sys.stdout/stderr is honoured.
    self._out = out or sys.stdout
    self._log = log or sys.stderr

  def note(self, text: str) -> None:
    stream = self._out if self.dry_run else self._log
    for line in text.splitlines():
      print(f"# {line}", file=stream, flush=True)

  def run(self, argv: Sequence[str], shown: Sequence[str], capture: bool = False,
          check: bool = True, cwd: Optional[Path] = None,
          env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
    """Runs `argv`, printing `shown` (the same command with credentials redacted).

    Args:
      argv: the command to run.
      shown: what to print for it.
      capture: capture stdout and stderr (text) instead of passing them through.
      check: raise LaunchError on a non-zero exit status.
      cwd: working directory.
      env: full environment for the command; None inherits this process's.

    Returns:
      The completed process; in a dry run, one with status 0 and empty output.
    """
    line = shlex.join(shown)
    if self.dry_run:
      print(line, file=self._out, flush=True)
      return subprocess.CompletedProcess(list(argv), 0, "", "")
    print(f"+ {line}", file=self._log, flush=True)
    try:
      proc = subprocess.run(list(argv), text=True, capture_output=capture, cwd=cwd,
                            env=None if env is None else dict(env), check=False)
    except FileNotFoundError as e:
      raise LaunchError(f"{argv[0]} not found on PATH") from e
    if check and proc.returncode != 0:
      detail = ""
      if capture and proc.stderr:
        detail = ": " + redact(proc.stderr.strip().splitlines()[-1])
      raise LaunchError(f"{shown[0]} exited with status {proc.returncode}{detail}")
    return proc


def main_wrapper(prog: str, main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
  """Runs `main`, turning LaunchError into a one-line message, `error: ...`, and LAUNCH_ERROR_STATUS.

  The message is masked as the printed commands are: an error quotes the flag value it refuses,
  which may be a URL with a password in it.
  """
  try:
    return main(argv)
  except LaunchError as e:
    print(f"error: {redact(str(e))}", file=sys.stderr)
    return LAUNCH_ERROR_STATUS
  except KeyboardInterrupt:
    print(f"{prog}: interrupted; jobs already started keep running remotely", file=sys.stderr)
    return 130
