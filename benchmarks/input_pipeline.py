r"""Input pipeline throughput against what a train step consumes, in the same process.

  python -m benchmarks.input_pipeline --data_dir=runs/data/enwiki_embedded --objective=electra \
      --size=small --batch_size=32

Reads, shuffles, parses and dynamically masks real shards (the pretraining pipeline exactly as
the trainer uses it) and compares its examples/s with the examples/s of our train step on the same
batch shape. Training is input-bound when the ratio is below 1; the target is at least 10.
"""
import statistics
import time

from absl import flags
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from benchmarks import train_step
from tpu_electra import cli_utils
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  train_step.define_flags(flag_values)  # --objective, --size, --batch_size, --steps, --rounds, ...
  flags.DEFINE_string("data_dir", "runs/data/enwiki_embedded", "A data dir built by python -m data_prep.build.",
                      flag_values=flag_values)
  flags.DEFINE_integer("batches", 200, "Batches to time per round of the input pipeline.", flag_values=flag_values)


def pipeline_examples_per_sec(data_dir: str, batch_size: int, seq_length: int, batches: int, rounds: int) -> float:
  dataset = pretraining.pretraining_dataset(data_dir, batch_size, seq_length)
  iterator = iter(dataset)
  for _ in range(10):
    next(iterator)
  rates = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(iterator)
    batch["masked_input_ids"].numpy()
    rates.append(batches * batch_size / (time.perf_counter() - start))
  return statistics.median(rates)


def run(flag_values: flags.FlagValues) -> int:
  seq_length = manifest_lib.read_manifest(flag_values.data_dir).max_seq_length
  input_rate = pipeline_examples_per_sec(flag_values.data_dir, flag_values.batch_size, seq_length, flag_values.batches,
                                         flag_values.rounds)
  batch = common.synthetic_batch(flag_values.batch_size, seq_length)
  run_steps, _, _ = train_step.ours(flag_values.objective, flag_values.size, batch, jit_compile=False)
  step_time = statistics.median(common.time_steps(run_steps, flag_values.steps, flag_values.warmup_steps,
                                                  flag_values.rounds))
  step_rate = flag_values.batch_size / step_time
  print(common.markdown_table(
      ["what", "examples/s"],
      [[f"input pipeline ({flag_values.data_dir}, batch {flag_values.batch_size}, seq {seq_length}, dynamic masking)",
        f"{input_rate:.0f}"],
       [f"train step ({flag_values.objective}-{flag_values.size}, fp32)", f"{step_rate:.1f}"],
       ["ratio (target >= 10)", f"{input_rate / step_rate:.1f}x"]]))
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.input_pipeline")
