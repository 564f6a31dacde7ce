"""`python -m tpu_electra.export`: its flags are parsed and checked before TensorFlow is imported, so
--help and flag errors answer at once."""
from tpu_electra import cli_utils
from tpu_electra import export
from tpu_electra.export import cli

# absl's --help prints the __main__ module's docstring: the package's documents the command.
__doc__ = export.__doc__  # pylint: disable=redefined-builtin

cli_utils.run_as_program(cli.define_flags, "tpu_electra.export.cli", cli.check_flags)
