"""What the command-line entry points share: one-line errors and running on flags of their own.

Every entry point has `define_flags(flag_values)` and

  @cli_utils.one_line_errors(ValueError, OSError)
  def run(flag_values) -> int:  # the exit status
    cli_utils.require(flag_values, "model_dir")
    ...

then

  cli = cli_utils.command_line(define_flags, run)

  if __name__ == "__main__":
    cli_utils.run_as_program(define_flags, run)
"""
import functools
import sys
from typing import Callable, Sequence, Type

from absl import app, flags


def first_line(error: BaseException) -> str:
  """The line that says what is wrong (gin and Keras append context on further lines)."""
  # tf.errors.OpError's str() starts with the op's context; its message is what went wrong.
  text = (getattr(error, "message", None) or str(error)).strip()
  return text.splitlines()[0] if text else type(error).__name__


def print_error(error: BaseException) -> None:
  print(f"error: {first_line(error)}", file=sys.stderr)


def define_gin_flags(flag_values: flags.FlagValues, example_binding: str) -> None:
  """--gin_file and --gin_param, as every gin-configured entry point takes them."""
  flags.DEFINE_multi_string("gin_file", [], "Gin config files, applied in order: a path, or a name in "
                            "tpu_electra/gin/ such as smoke/electra.gin.", flag_values=flag_values)
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


def absl_main(run: Callable[[flags.FlagValues], int]) -> Callable[[Sequence[str]], None]:
  """The `main` for app.run: the global flags, no positional arguments, run's return as exit code."""
  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    sys.exit(run(flags.FLAGS))
  return main


def command_line(define_flags: Callable[[flags.FlagValues], None],
                 run: Callable[[flags.FlagValues], int]) -> Callable[[Sequence[str]], int]:
  """`cli(argv) -> exit status`: the entry point on flags of its own, e.g. `cli(["evaluate", "--model_dir=D"])`.

  Importing an entry point defines no flag, so several share a process (tests, notebooks).
  """
  return functools.partial(run_on_own_flags, define_flags, run)


def run_as_program(define_flags: Callable[[flags.FlagValues], None], run: Callable[[flags.FlagValues], int]) -> None:
  """`python -m <entry point>`: its flags on absl's FLAGS, and run's return as the exit status."""
  define_flags(flags.FLAGS)
  app.run(absl_main(run))
