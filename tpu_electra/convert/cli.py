"""The `convert` command: its flags, and `run` on them (the package's docstring says what it does).

Importing this module loads no TensorFlow: `python -m tpu_electra.convert` defines and checks the flags
first, so --help and flag errors answer at once.
"""
from absl import flags

from tpu_electra import cli_utils
from tpu_electra.convert.common import KINDS



def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("source", None, f"KIND:PATH, KIND one of {list(KINDS)}.", flag_values=flag_values)
  flags.DEFINE_string("generator", None, "huggingface:PATH of an ElectraForMaskedLM to pair with an "
                      "ElectraForPreTraining --source into an Electra objective.", flag_values=flag_values)
  cli_utils.define_output_flags(flag_values, "the run directory")


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "source", "output_dir")


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the conversion the parsed flags ask for; returns the exit status (errors: one line)."""
  check_flags(flag_values)
  from tpu_electra.convert import run_dir  # pylint: disable=g-import-not-at-top  (loads TensorFlow)
  path = run_dir.convert(flag_values.source, flag_values.output_dir, generator=flag_values.generator,
                         overwrite=flag_values.overwrite)
  print(f"wrote converted run directory {path}")
  return 0


cli = cli_utils.command_line(define_flags, run)

