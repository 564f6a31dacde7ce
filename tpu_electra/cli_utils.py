"""What the command-line entry points share: one-line errors and running on flags of their own.

Every entry point has `define_flags(flag_values)` and `run(flag_values) -> exit status`, then

  cli = cli_utils.command_line(define_flags, run)

  if __name__ == "__main__":
    cli_utils.run_as_program(define_flags, run)
"""
import functools
import sys
from typing import Callable, Sequence

from absl import app, flags


def first_line(error: BaseException) -> str:
  """The line that says what is wrong (gin and Keras append context on further lines)."""
  # tf.errors.OpError's str() starts with the op's context; its message is what went wrong.
  text = (getattr(error, "message", None) or str(error)).strip()
  return text.splitlines()[0] if text else type(error).__name__


def print_error(error: BaseException) -> None:
  print(f"error: {first_line(error)}", file=sys.stderr)


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
