r"""Pretrains an encoder: python -m tpu_electra.pretrain --gin_file=F [--gin_param=...] --model_dir=DIR.

The objective, model size, data and optimizer all come from gin; the common knobs are macros
(TRAIN_STEPS or TRAIN_FLOPS, BATCH_SIZE, SEQ_LENGTH, LEARNING_RATE, WARMUP_STEPS, CHECKPOINT_EVERY,
DATA_DIR, VOCAB_SIZE, SEED, EVAL_EVERY, EVAL_BATCHES). Re-running the same command resumes from the
latest checkpoint in --model_dir, exactly where the run stopped (same weights as a run never stopped).

Besides checkpoints, summaries and operative_config.gin (how the run was configured), the model dir
gets run.json (what the run is: tpu_electra.runs), which everything that loads the run reads.

A re-run of a model dir that has checkpoints must train as they were trained: when its settings
differ from run.json's in anything that changes training (learning rate and schedule, optimizer,
objective arguments, masking, batch, sequence length, seed, precision, data, encoder shape), it
stops before writing anything, with one line listing the differences. `--accept_changes` continues
with them instead, and run.json's `history` records each change with the step it applies from (the
configuration of the steps before is kept as operative_config.before-step-N.gin). A re-run with
the same settings rewrites neither run.json nor operative_config.gin.

Continued pretraining: `--init_checkpoint=RUN_DIR` (one of our pretraining runs, or a dir written
by tpu_electra.convert) starts a new run from what that checkpoint holds: the whole objective when
RUN_DIR's objective is the configured one (parts it lacks, e.g. the generator of a converted
discriminator, are freshly initialized), else its encoder alone; with a fresh optimizer at step 0.
Its encoder config and vocab must match the configured model and the data (one-line errors). The
init checkpoint applies only to a model dir without checkpoints: re-running resumes from its own.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  cli_utils.define_gin_flags(flag_values, "TRAIN_STEPS = 1000")
  flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the operative config go (gs:// works).",
                      flag_values=flag_values)
  flags.DEFINE_string("init_checkpoint", None, "Continued pretraining: start a new run from this pretraining run "
                      "dir (or one checkpoint prefix in it; converted dirs too), with a fresh optimizer at step 0. "
                      "Ignored when --model_dir has checkpoints (the run resumes from them).", flag_values=flag_values)
  flags.DEFINE_boolean("accept_changes", False, "Continue --model_dir's checkpoints with settings that "
                       "differ from its run.json in what changes training; run.json's history records the change "
                       "with the step it applies from. Without it such a re-run is refused.", flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "model_dir")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.pretrain", check_flags)

import time

import tensorflow as tf

from tpu_electra import gin_utils
from tpu_electra.pretrainer import pretrain
from tpu_electra.training import trainer


# Gin appends the configurable's name on further lines of its errors; the first line says what is wrong.
@cli_utils.one_line_errors(ValueError, OSError, trainer.NonFiniteLossError, trainer.CheckpointSaveError)
def run(flag_values: flags.FlagValues) -> int:
  """Pretrains as the parsed flags ask; returns the exit status (errors: one line)."""
  start = time.time()
  check_flags(flag_values)
  gin_utils.parse(flag_values.gin_file, flag_values.gin_param)
  metrics = pretrain(model_dir=flag_values.model_dir, init_checkpoint=flag_values.init_checkpoint,
                     accept_changes=flag_values.accept_changes)
  headline = {name: metrics[name] for name in ("loss", "eval/loss", "examples_per_sec") if name in metrics}
  cli_utils.log_closing_line("pretraining", tf.train.latest_checkpoint(flag_values.model_dir) or flag_values.model_dir,
                             headline, time.time() - start)
  return 0


cli = cli_utils.command_line(define_flags, run)
