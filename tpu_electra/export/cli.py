"""The `export` command: its flags, and `run` on them (the package's docstring says what it does).

Importing this module loads no TensorFlow: `python -m tpu_electra.export` defines and checks the flags
first, so --help and flag errors answer at once.
"""
from absl import flags

from tpu_electra import cli_utils
from tpu_electra import errors

FORMATS = ("saved_model", "huggingface")


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("model_dir", None, "Pretraining model dir (or a checkpoint prefix inside one), or a "
                      "fine-tuning run dir.",
                      flag_values=flag_values)
  flags.DEFINE_enum("format", "saved_model", list(FORMATS), "What to write.", flag_values=flag_values)
  flags.DEFINE_integer("seed", None, "Fine-tuning runs: the seed whose seed_<seed>/final model to export "
                       "(default: the run's first seed).", flag_values=flag_values)
  cli_utils.define_output_flags(flag_values, "the export")


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "model_dir", "output_dir")


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the export the parsed flags ask for; returns the exit status (errors: one line)."""
  check_flags(flag_values)
  # pylint: disable=g-import-not-at-top  (TensorFlow loads only once the flags are checked)
  import tensorflow as tf
  from tpu_electra import fileio
  from tpu_electra.export.common import ExportError
  from tpu_electra.export.huggingface import export_huggingface
  from tpu_electra.export.saved_model import export_saved_model
  from tpu_electra.finetuning import finetuned
  # pylint: enable=g-import-not-at-top
  if flag_values.seed is None and finetuned.is_finetuning_dir(flag_values.model_dir):
    seed = finetuned.read_finetuning_run(flag_values.model_dir).seed
    print(f"exporting seed {seed}, the run's first seed (--seed chooses another)")
  exporter = export_saved_model if flag_values.format == "saved_model" else export_huggingface
  try:
    path = exporter(flag_values.model_dir, flag_values.output_dir, overwrite=flag_values.overwrite,
                    seed=flag_values.seed)
  except tf.errors.OpError as e:
    if not fileio.is_disk_full(e):
      raise
    # The export is written into a temporary sibling, removed on failure: nothing half-written stays.
    raise ExportError(f"no space left to write the export {flag_values.output_dir} ({errors.first_line(e)}); "
                      "nothing was written: free space there or choose another --output_dir") from None
  print(f"wrote {flag_values.format} export to {path}")
  return 0


cli = cli_utils.command_line(define_flags, run)
