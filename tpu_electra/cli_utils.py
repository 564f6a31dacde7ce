"""What the command-line entry points share: flags parsed before TensorFlow loads, one-line errors,
running on flags of their own, a closing line.

An entry point starts with what needs no TensorFlow: its flags and the checks of them,

  def define_flags(flag_values): ...

  def check_flags(flag_values):  # raises MissingFlagError (cli_utils.require)
    cli_utils.require(flag_values, "model_dir")

  if __name__ == "__main__":
    cli_utils.run_as_program(define_flags, "tpu_electra.<entry point>", check_flags)

and only then imports TensorFlow and what uses it, ending with

  @cli_utils.one_line_errors(ValueError, OSError)
  def run(flag_values) -> int:  # the exit status
    check_flags(flag_values)
    ...

  cli = cli_utils.command_line(define_flags, run)

`python -m` runs the file as __main__, top to bottom: stopping at that `if`, the program parses its
flags, answers --help and flag errors (in well under 2 s: no TensorFlow), then imports the module
under its own name (TensorFlow with it) and calls its `run`.
"""
import functools
import importlib
import sys
from typing import Callable, Mapping, Optional, Sequence, Type

from absl import app, flags, logging

from tpu_electra import configs
from tpu_electra import errors
from tpu_electra import gin_utils

# What asks for help: absl's own --help flags, answered here with exit status 0 (absl's is 1).
HELP_ARGUMENTS = ("-h", "-?", "-help", "--help", "--helpshort")


def print_error(error: BaseException) -> None:
  print(f"error: {errors.first_line(error)}", file=sys.stderr)


def define_gin_flags(flag_values: flags.FlagValues, example_binding: str,
                     config_dirs: Sequence[str] = configs.PRETRAINING_DIRS) -> None:
  """--gin_file and --gin_param, as every gin-configured entry point takes them; --gin_file's help
  names the shipped configs of `config_dirs`."""
  flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order: a path, or the name of a shipped "
                            f"config: {configs.summary(config_dirs)} (python -m tpu_electra.configs lists them "
                            "all, with what each is).", flag_values=flag_values)
  flags.DEFINE_multi_string("gin_param", [], f"Gin bindings applied after the files, e.g. {example_binding!r}.",
                            flag_values=flag_values)


def define_output_flags(flag_values: flags.FlagValues, what: str) -> None:
  """--output_dir (written whole into a temporary sibling, then renamed) and --overwrite."""
  flags.DEFINE_string("output_dir", None, f"Where to write {what} (must not exist unless --overwrite).",
                      flag_values=flag_values)
  flags.DEFINE_boolean("overwrite", False, "Replace an existing --output_dir.", flag_values=flag_values)


class MissingFlagError(ValueError):
  """A flag that the command needs was not given."""


def require(flag_values: flags.FlagValues, *names: str, why: str = "") -> None:
  """Raises MissingFlagError naming the first of `names` that is unset (`why`: what it is for)."""
  for name in names:
    if not flag_values[name].value:
      raise MissingFlagError(f"--{name} is required{f' ({why})' if why else ''}")


def one_line_errors(*errors: Type[BaseException]):
  """Decorates `run(flag_values) -> exit status`: an error of these kinds, or a missing flag, is
  printed as one line (`error: ...`) and the exit status is 1, with no traceback."""
  def decorate(run: Callable[[flags.FlagValues], int]) -> Callable[[flags.FlagValues], int]:
    @functools.wraps(run)
    def run_with_one_line_errors(flag_values: flags.FlagValues) -> int:
      try:
        return run(flag_values)
      except (MissingFlagError, *errors) as e:  # pylint: disable=catching-non-exception
        print_error(e)
        return 1
    return run_with_one_line_errors
  return decorate


def run_on_own_flags(define_flags: Callable[[flags.FlagValues], None], run: Callable[[flags.FlagValues], int],
                     argv: Sequence[str]) -> int:
  """Runs an entry point on a fresh FlagValues, so several can share one process (tests)."""
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values(list(argv))
  return run(flag_values)


def command_line(define_flags: Callable[[flags.FlagValues], None],
                 run: Callable[[flags.FlagValues], int]) -> Callable[[Sequence[str]], int]:
  """`cli(argv) -> exit status`: the entry point on flags of its own, e.g. `cli(["evaluate", "--model_dir=D"])`.

  Importing an entry point defines no flag, so several share a process (tests, notebooks).
  """
  return functools.partial(run_on_own_flags, define_flags, run)


def run_as_program(define_flags: Callable[[flags.FlagValues], None], module: str,
                   check_flags: Optional[Callable[[flags.FlagValues], None]] = None) -> None:
  """`python -m <module>`: its flags on absl's FLAGS, checked before `module` (and TensorFlow) is
  imported; then `module.run(FLAGS)`'s return is the exit status.

  --help prints the module's docstring and every flag of the command (exit status 0); a flag error,
  a missing flag (`check_flags`) or a --gin_file that is not found is one line and exit status 1.
  """
  own = flags.FlagValues()
  define_flags(own)
  define_flags(flags.FLAGS)
  # absl's --help shows the flags defined by the __main__ module; the shared ones (--gin_file, ...)
  # are defined by this one.
  for name in own:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])

  def check(flag_values: flags.FlagValues) -> None:
    if check_flags:
      check_flags(flag_values)
    if "gin_file" in own:
      for path in flag_values.gin_file:
        gin_utils.resolve_gin_file(path)

  def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
      _exit_with_error(f"unexpected arguments: {' '.join(argv[1:])} (--help lists the flags)")
    sys.exit(importlib.import_module(module).run(flags.FLAGS))

  app.run(main, flags_parser=functools.partial(_parse_flags, check=check))


def _parse_flags(argv: Sequence[str], check: Optional[Callable[[flags.FlagValues], None]] = None) -> Sequence[str]:
  """absl's FLAGS from `argv`, answering --help (exit status 0) and flag errors (one line, exit status 1)."""
  if any(argument in HELP_ARGUMENTS for argument in argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True)
    sys.exit(0)
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as e:
    _exit_with_error(f"{errors.first_line(e)} (--help lists the flags)")
  if check:
    try:
      check(flags.FLAGS)
    except ValueError as e:
      _exit_with_error(errors.first_line(e))
  return remaining


def _exit_with_error(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(1)


def log_closing_line(what: str, where: str, metrics: Mapping[str, float], seconds: float,
                     step: Optional[int] = None) -> None:
  """The last line of a command: where its result is, its final metrics and its wall time."""
  shown = "  ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()) if isinstance(value, float))
  at_step = f" at step {step}" if step is not None else ""
  logging.info("%s done%s: %s  %s  (wall time %s)", what, at_step, where, shown or "(no metrics)",
               format_seconds(seconds))


def format_seconds(seconds: float) -> str:
  """H:MM:SS."""
  minutes, secs = divmod(int(round(seconds)), 60)
  return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
