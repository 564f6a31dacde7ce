r"""Fine-tunes a pretrained encoder on one task and evaluates it over one or more seeds.

  python -m tpu_electra.finetune --gin_file=finetune/cola.gin --init_checkpoint=PRETRAIN_DIR \
      --data_dir=GLUE_DIR --model_dir=RUN_DIR [--seeds=N] [--gin_param='LEARNING_RATE = 1e-4']

--init_checkpoint is a pretraining model dir (its latest checkpoint) or one checkpoint prefix in
it, or a converted one (tpu_electra.convert); the encoder's shape comes from the dir's run.json and
its vocab from the pretraining data's manifest, the vocab the dir carries, or --vocab. --data_dir
is the task's data: the GLUE root (holding CoLA/, SST-2/, ...), the directory with the SQuAD JSON
files, with train.txt/dev.txt for tagging, or the RACE root (train/, dev/); or, for GLUE and SQuAD,
`tfds:` (TensorFlow Datasets' data dir) or `tfds:DIR`, where TFDS prepared `glue/<task>` or
`squad/v1.1` / `squad/v2.0` (finetuning/tfds_source.py). Per-task hyper-parameters are macros in
finetune/<task>.gin (tpu_electra/gin/).

The task's tokenized, packed features are prepared once (batched, with a progress line) into
TFRecord shards under --feature_cache_dir (default: beside the data), keyed by the task files (TFDS: the dataset),
vocab, casing, sequence length and task settings; every later run and seed streams them.

Writes into --model_dir: results.json, results.md (statistics over seeds: mean, median, std, max),
learning_curves.png, per-seed metrics, checkpoints and predictions (see finetuning/runner.py).
Re-running the command skips the seeds already done. The k-th of --seeds=N fine-tunings uses seed
SEED + k (`--gin_param='SEED = 5'`; default 0) for everything random, in `seed_<SEED + k>/`: the same
command with the same SEED gives bit-identical checkpoints on CPU.

  python -m tpu_electra.finetune ... --init_checkpoint=PRETRAIN_DIR --from_scratch

is the no-pretraining baseline of the same recipe: PRETRAIN_DIR's encoder (the same shape and vocab)
with fresh weights drawn from each fine-tuning seed, so seed k starts from the same encoder every
time and another seed from another one; none of PRETRAIN_DIR's weights is read. results.json,
run.json ("from_scratch": true) and results.md say so.

  python -m tpu_electra.finetune --glue_runs=RUN_COLA,RUN_SST2,... --model_dir=OUT [--glue_statistic=mean]

combines finished GLUE task runs into glue_results.json / .md: per-task seed statistics, the
ELECTRA-style 8-task average and the official GLUE score (tpu_electra.finetuning.report).
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils
from tpu_electra import configs


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values`.

  Only `python -m tpu_electra.finetune` puts them on absl's global FLAGS: importing this module
  defines nothing, so it can share a process with other entry points that use the same names.
  """
  cli_utils.define_gin_flags(flag_values, "LEARNING_RATE = 1e-4", config_dirs=configs.FINETUNING_DIRS)
  flags.DEFINE_string("init_checkpoint", None, "Pretraining model dir, or a checkpoint prefix inside one.",
                      flag_values=flag_values)
  flags.DEFINE_boolean("from_scratch", False, "Fine-tune --init_checkpoint's encoder (its shape and vocab) from "
                       "fresh weights drawn from each fine-tuning seed, not its pretrained weights: the "
                       "no-pretraining baseline.", flag_values=flag_values)
  flags.DEFINE_string("data_dir", None, "The task's data directory, or tfds:[DIR] for GLUE and SQuAD from "
                      "TensorFlow Datasets.", flag_values=flag_values)
  flags.DEFINE_string("model_dir", None, "Where checkpoints, metrics and reports go (gs:// works).",
                      flag_values=flag_values)
  flags.DEFINE_integer("seeds", 1, "Number of fine-tuning seeds; results report mean, median, std and max.",
                       flag_values=flag_values)
  flags.DEFINE_string("vocab", None, "Vocab file to use instead of the one in the pretraining data's manifest.",
                      flag_values=flag_values)
  flags.DEFINE_enum("vocab_type", None, ["wordpiece", "sentencepiece"],
                    "Kind of --vocab (default: the manifest's, else wordpiece).", flag_values=flag_values)
  flags.DEFINE_boolean("do_lower_case", None, "Lower-case text for --vocab (default: the manifest's, else true).",
                       flag_values=flag_values)
  flags.DEFINE_string("feature_cache_dir", None, "Where the task's prepared features are kept and found again "
                      "(default: <data_dir>/tpu_electra_features, or ~/.cache/tpu_electra/finetune_features "
                      "when the data dir is read-only; gs:// works).", flag_values=flag_values)
  flags.DEFINE_list("glue_runs", [], "Instead of fine-tuning: combine these GLUE task run dirs into the GLUE "
                    "report (ELECTRA-style average and official score) written to --model_dir.",
                    flag_values=flag_values)
  flags.DEFINE_enum("glue_statistic", "median", ["mean", "median", "max"],
                    "Seed statistic of each task that feeds the GLUE summaries (ELECTRA and TEAMS: median).",
                    flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  if flag_values.glue_runs:
    cli_utils.require(flag_values, "model_dir", why="where the GLUE report goes")
    return
  if flag_values.from_scratch:
    cli_utils.require(flag_values, "init_checkpoint", why="--from_scratch takes the encoder's shape and vocab from "
                      "it: pass --init_checkpoint=<a pretraining or converted run dir>")
  cli_utils.require(flag_values, "init_checkpoint", "data_dir", "model_dir")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.finetune", check_flags)

import time

from tpu_electra import gin_utils
from tpu_electra.finetuning import report
from tpu_electra.finetuning import runner
from tpu_electra.training import trainer


# Gin appends the configurable's name on further lines of its errors; the first line says what is wrong.
@cli_utils.one_line_errors(ValueError, OSError, trainer.NonFiniteLossError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the fine-tuning the parsed flags ask for; returns the exit status (errors: one line)."""
  start = time.time()
  check_flags(flag_values)
  if flag_values.glue_runs:
    glue_results = runner.glue_summary(flag_values.glue_runs, flag_values.model_dir, flag_values.glue_statistic)
    print(report.glue_markdown(glue_results))
    return 0
  gin_utils.parse(flag_values.gin_file, flag_values.gin_param)
  results = runner.finetune(
      init_checkpoint=flag_values.init_checkpoint, data_dir=flag_values.data_dir,
      model_dir=flag_values.model_dir, num_seeds=flag_values.seeds, vocab=flag_values.vocab,
      vocab_type=flag_values.vocab_type, do_lower_case=flag_values.do_lower_case,
      feature_cache_dir=flag_values.feature_cache_dir, from_scratch=flag_values.from_scratch)
  print(runner.results_markdown(results))
  seeds = len(results["seeds"])
  cli_utils.log_closing_line(
      f"fine-tuning {results['task']} ({seeds} seed{'s' if seeds > 1 else ''}, mean)", flag_values.model_dir,
      {name: stats["mean"] for name, stats in results["aggregate"].items()}, time.time() - start)
  return 0


cli = cli_utils.command_line(define_flags, run)
