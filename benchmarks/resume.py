r"""What exact resume costs: checkpoint size and save time, and the read-forward of a restart.

  python -m benchmarks.resume --objective=electra --size=small --batch_size=128 \
      --data_dir=runs/data/enwiki_embedded --copies=40

A resumed run reads exactly the batches an uninterrupted run reads because the data order is a
pure function of (SEED, epoch, block) and each batch's masks and noise of (SEED, pipeline, batch
number) (`tpu_electra.data.pretraining`). Two costs follow, each printed beside its peer:

1. The checkpoint. Ours holds the model, the optimizer and the step. The peer is the other way to
   resume exactly, tf.data iterator checkpointing: the same checkpoint plus the input iterator's
   state (its shuffle block, read positions and prefetch buffers), saved by the same
   CheckpointManager. tf.distribute's iterators (what the trainer reads from, one per host under
   TPUStrategy) are not trackable at all, so that peer exists only without a strategy.
2. The restart. A restart at step k skips whole epochs by the manifest's record counts and reads
   forward through the consumed part of one epoch: time to the first batch at the start, middle
   and end of an epoch, against a fresh start. The data dir's training shard(s) are repeated
   `--copies` times (links, manifest adjusted) to make an epoch of realistic length.
"""
import json
import os
import shutil
import statistics
import tempfile
import time

from absl import flags
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from benchmarks import train_step  # Its flags: --objective, --size, --batch_size, --rounds.
from tpu_electra import cli_utils
from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.training import optimization
from tpu_electra.training import trainer


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  train_step.define_flags(flag_values)
  flags.DEFINE_string("data_dir", "runs/data/enwiki_embedded", "A data dir built by python -m data_prep.build.",
                      flag_values=flag_values)
  flags.DEFINE_integer("copies", 40, "Times the training shards are repeated for the restart timing.",
                       flag_values=flag_values)
  flags.DEFINE_integer("saves", 5, "Checkpoint saves timed per variant (median reported).", flag_values=flag_values)


def time_saves(checkpoint: tf.train.Checkpoint, directory: str, saves: int):
  """Median seconds per CheckpointManager.save and the bytes of one checkpoint."""
  manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1)
  times = []
  for number in range(saves + 1):
    start = time.perf_counter()
    manager.save(checkpoint_number=number)
    if number:  # the first save also writes the object graph once and warms up
      times.append(time.perf_counter() - start)
  size = sum(os.path.getsize(path) for path in tf.io.gfile.glob(manager.latest_checkpoint + ".*"))
  return statistics.median(times), size


def built_model_and_optimizer(flag_values: flags.FlagValues, seq_length: int):
  """The objective and its optimizer with every variable (slots included) built, as the trainer has them."""
  objective_class, config = common.objective_and_config(flag_values.objective, flag_values.size)
  model = objective_class(encoder_config=config)
  optimizer = optimization.create_optimizer(name="adamw", learning_rate=1e-4, train_steps=10**6, warmup_steps=10)
  batch = common.synthetic_batch(flag_values.batch_size, seq_length)
  trainer.build_variables(model, optimizer, tf.distribute.get_strategy(),
                          tf.nest.map_structure(tf.TensorSpec.from_tensor, batch))
  return model, optimizer


def run(flag_values: flags.FlagValues) -> int:
  manifest = manifest_lib.read_manifest(flag_values.data_dir)
  seq_length = manifest.max_seq_length
  work_dir = tempfile.mkdtemp(prefix="tpu_electra_resume_bench_")
  try:
    rows = []
    # 1. Checkpoint: ours against ours + the tf.data iterator's state.
    model, optimizer = built_model_and_optimizer(flag_values, seq_length)
    iterator = iter(pretraining.pretraining_dataset(flag_values.data_dir, flag_values.batch_size, seq_length))
    for _ in range(3):
      next(iterator)
    ours_s, ours_bytes = time_saves(tf.train.Checkpoint(model=model, optimizer=optimizer),
                                    os.path.join(work_dir, "ours"), flag_values.saves)
    rows.append(["checkpoint: model + optimizer + step (ours)", f"{ours_bytes / 2**20:.1f} MiB",
                 f"{ours_s:.3f} s", "1.00x / 1.00x"])
    try:
      peer_s, peer_bytes = time_saves(tf.train.Checkpoint(model=model, optimizer=optimizer, iterator=iterator),
                                      os.path.join(work_dir, "iterator"), flag_values.saves)
      rows.append(["checkpoint: the same + tf.data iterator state (peer)", f"{peer_bytes / 2**20:.1f} MiB",
                   f"{peer_s:.3f} s", f"{peer_bytes / ours_bytes:.2f}x / {peer_s / ours_s:.2f}x"])
    except (tf.errors.OpError, ValueError, TypeError) as error:
      rows.append(["checkpoint: the same + tf.data iterator state (peer)", "-", "-",
                   f"not checkpointable: {str(error).splitlines()[0][:120]}"])
    # As the trainer iterates (strategy.distribute_datasets_from_function), even on one device.
    strategy = tf.distribute.OneDeviceStrategy("cpu")
    distributed = iter(strategy.distribute_datasets_from_function(
        lambda context: pretraining.pretraining_dataset(flag_values.data_dir, flag_values.batch_size, seq_length,
                                                        context)))
    try:
      tf.train.Checkpoint(iterator=distributed)
      rows.append(["checkpoint: the same + the trainer's distributed iterator (peer)", "?", "?", "checkpointable"])
    except (ValueError, TypeError) as error:
      rows.append(["checkpoint: the same + the trainer's distributed iterator (peer)", "-", "-",
                   f"not checkpointable ({type(distributed).__name__}: {str(error).split('(')[0].strip()})"])
    print(f"objective {flag_values.objective}-{flag_values.size}, batch {flag_values.batch_size}, seq {seq_length}, "
          f"{sum(v.shape.num_elements() for v in model.variables):,} model parameters, "
          f"median of {flag_values.saves} saves\n")
    print(common.markdown_table(["what is saved", "size", "seconds per save", "peer / ours (size / time)"], rows))

    # 2. Restart: time to the first batch at a fresh start and mid-epoch.
    data_dir = repeated_data_dir(flag_values.data_dir, os.path.join(work_dir, "data"), flag_values.copies)
    epoch_examples = manifest_lib.read_manifest(data_dir).num_examples
    steps_per_epoch = epoch_examples // flag_values.batch_size
    rows = []
    fresh = None
    for label, step in [("fresh start (step 0)", 0), ("restart mid-epoch", steps_per_epoch // 2),
                        ("restart at the end of an epoch", steps_per_epoch - 1),
                        ("restart 1.5 epochs in", steps_per_epoch + steps_per_epoch // 2)]:
      seconds = statistics.median(first_batch_seconds(data_dir, flag_values.batch_size, seq_length, step)
                                  for _ in range(flag_values.rounds))
      fresh = fresh or seconds
      skipped = (step * flag_values.batch_size) % epoch_examples
      rate = f"{skipped / (seconds - fresh):,.0f}" if skipped and seconds > fresh else "-"
      rows.append([label, f"{step:,}", f"{skipped:,}", f"{seconds:.2f}", f"{seconds / fresh:.1f}x", rate])
    print(f"\nrestart: {flag_values.data_dir} training shards x {flag_values.copies} = {epoch_examples:,} examples "
          "per epoch, "
          f"batch {flag_values.batch_size}, median of {flag_values.rounds} rounds\n")
    print(common.markdown_table(["start", "step", "examples read forward", "s to first batch", "vs fresh start",
                                 "read-forward examples/s"], rows))
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)
  return 0


def first_batch_seconds(data_dir: str, batch_size: int, seq_length: int, start_step: int) -> float:
  start = time.perf_counter()
  batch = next(iter(pretraining.pretraining_dataset(data_dir, batch_size, seq_length, start_step=start_step)))
  batch["input_ids"].numpy()
  return time.perf_counter() - start


def repeated_data_dir(source: str, target: str, copies: int) -> str:
  """A data dir whose training shards are `copies` links to the source's (manifest adjusted)."""
  with open(os.path.join(source, manifest_lib.MANIFEST_NAME)) as f:
    manifest = json.load(f)
  os.makedirs(target)
  shards, shard_info = [], dict(manifest["shard_info"])
  for copy in range(copies):
    for name in manifest["shards"]:
      new_name = f"copy{copy:03d}-{name}"
      os.symlink(os.path.abspath(os.path.join(source, name)), os.path.join(target, new_name))
      shards.append(new_name)
      shard_info[new_name] = manifest["shard_info"][name]
  for name in manifest["eval_shards"]:
    os.symlink(os.path.abspath(os.path.join(source, name)), os.path.join(target, name))
  shutil.copy(os.path.join(source, manifest["vocab_file"]), target)
  for name in manifest["shards"]:
    del shard_info[name]
  manifest.update(shards=shards, shard_info=shard_info, num_examples=manifest["num_examples"] * copies)
  fileio.write_text_atomic(os.path.join(target, manifest_lib.MANIFEST_NAME), json.dumps(manifest, indent=1))
  return target


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.resume")
