"""The pretraining input pipeline: TFRecord shards -> shuffled, dynamically masked batches.

Everything random here is a pure function of (seed, input pipeline, position in the stream), so a
run restarted at step k reads exactly the batches an uninterrupted run reads from step k on, with
the same masks, on any number of hosts and without saving input-pipeline state in checkpoints:

- the stream of one input pipeline is a sequence of epochs; epoch e visits the pipeline's shards in
  an order drawn from (seed, e), interleaves them deterministically and permutes blocks of
  `shuffle_buffer_size` examples with seeds drawn from (seed, e, block), so epochs can be rebuilt
  from their number alone;
- a restart at step k skips whole epochs for free (their sizes come from the manifest's record
  counts) and reads forward only through the part of one epoch that was already consumed;
- batch number n of pipeline p gets masks and sampling noise from stateless seeds derived from
  (seed, p, n): the objective reads its noise seed from the batch (`noise_seed`), and so does the
  trainer's dropout.

Held-out evaluation batches (`evaluation_dataset`) are fixed: the manifest's held-out shards in
order, masks and noise from a constant seed, whatever the run's seed or step, so evaluation numbers
are comparable across steps, runs and objectives.
"""
from typing import Optional, Sequence

from absl import logging
import gin
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking

# Per example, a [2] stateless seed for the objective's sampling (and the trainer's dropout).
NOISE_SEED = "noise_seed"


def batch_noise_seed(batch) -> Optional[tf.Tensor]:
  """The [2] stateless seed of a batch's step (its first example's NOISE_SEED), or None when it has none.

  Every draw of a step (masks aside, which the pipeline makes) derives from it: the objective's
  sampling and the trainer's dropout, so a step's randomness is a function of the run's seed and step.
  """
  if NOISE_SEED not in batch:
    return None
  return batch[NOISE_SEED][0]


# Evaluation masks and noise do not depend on the run's SEED: every run sees the same eval batches.
EVAL_SEED = 20200318


def parse_example(serialized, seq_length: int, scalar_features=(), max_predictions_per_seq: int = 0):
  features = {name: tf.io.FixedLenFeature([seq_length], tf.int64) for name in manifest_lib.EXAMPLE_FEATURES}
  features.update({name: tf.io.FixedLenFeature([], tf.int64) for name in scalar_features})
  if max_predictions_per_seq:
    features["masked_input_ids"] = tf.io.FixedLenFeature([seq_length], tf.int64)
    features["masked_lm_positions"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
    features["masked_lm_ids"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
    features["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
  parsed = tf.io.parse_example(serialized, features)
  return {name: value if value.dtype == tf.float32 else tf.cast(value, tf.int32) for name, value in parsed.items()}


def batch_seed(base_seed, batch_index):
  """The [2] int64 stateless seed of one batch: a pure function of the base seed and its number."""
  return tf.random.experimental.stateless_fold_in(tf.cast(base_seed, tf.int64), tf.cast(batch_index, tf.int64))


def pipeline_split(num_shards: int, num_pipelines: int, pipeline_id: int):
  """(shard indices this pipeline reads, True when examples rather than shards are split)."""
  if num_shards >= num_pipelines:
    return list(range(pipeline_id, num_shards, num_pipelines)), False
  return list(range(num_shards)), True


def examples_per_epoch(record_counts: Optional[Sequence[int]], shard_indices: Sequence[int], by_example: bool,
                       num_pipelines: int, pipeline_id: int) -> Optional[int]:
  """How many examples one epoch of this pipeline holds (None when the manifest has no counts)."""
  if record_counts is None:
    return None
  total = sum(record_counts[i] for i in shard_indices)
  if by_example:
    return len(range(pipeline_id, total, num_pipelines))
  return total


@gin.configurable(denylist=["input_context", "start_step"])
def pretraining_dataset(data_dir: str = gin.REQUIRED,
                        global_batch_size: int = gin.REQUIRED,
                        seq_length: int = gin.REQUIRED,
                        input_context: Optional[tf.distribute.InputContext] = None,
                        masking_config: Optional[masking.MaskingConfig] = None,
                        shuffle_buffer_size: int = 10000,
                        cycle_length: int = 8,
                        seed: int = 0,
                        start_step: int = 0) -> tf.data.Dataset:
  """The endless stream of training batches of one input pipeline (one host), from `start_step` on.

  Each host reads a disjoint subset of the shards when there are at least as many shards as
  input pipelines, and a disjoint subset of examples otherwise. Masking happens here, per batch,
  so every epoch sees new masks (dynamic masking, as in RoBERTa / ELECTRA), unless the data was
  masked ahead of time (its manifest says max_predictions_per_seq > 0): then the stored masks are
  used as they are (static masking, as in BERT / TEAMS).

  `start_step` is the number of optimizer steps already taken: the pipeline starts at the first
  batch the run has not consumed yet (each of the pipeline's replicas takes one batch per step).
  """
  manifest = manifest_lib.read_manifest(data_dir)
  manifest_lib.check_compatible(manifest, data_dir, vocab_size=None, seq_length=seq_length)
  context = input_context or tf.distribute.InputContext()
  batch_size = context.get_per_replica_batch_size(global_batch_size)
  num_pipelines, pipeline_id = context.num_input_pipelines, context.input_pipeline_id
  replicas_per_pipeline = max(1, context.num_replicas_in_sync // num_pipelines)

  shard_paths = manifest.shard_paths(data_dir)
  shard_indices, by_example = pipeline_split(len(shard_paths), num_pipelines, pipeline_id)
  files = tf.constant([shard_paths[i] for i in shard_indices])
  epoch_size = examples_per_epoch(manifest_lib.record_counts(manifest), shard_indices, by_example,
                                  num_pipelines, pipeline_id)
  if epoch_size == 0:
    raise manifest_lib.DataError(f"input pipeline {pipeline_id} of {num_pipelines} has no examples in {data_dir!r}; "
                                 f"rebuild the data with more examples or use fewer hosts")
  first_batch = start_step * replicas_per_pipeline
  consumed = first_batch * batch_size
  if epoch_size is None and consumed:
    logging.warning("the manifest in %s records no shard record counts (data built by an older data_prep): resuming "
                    "reads through the %d examples already trained on; rebuild the data to resume at once",
                    data_dir, consumed)
  first_epoch, skip = (consumed // epoch_size, consumed % epoch_size) if epoch_size else (0, consumed)

  def epoch(number):
    order = tf.random.experimental.stateless_shuffle(files, seed=tf.stack([tf.constant(seed, tf.int64), number]))
    examples = tf.data.Dataset.from_tensor_slices(order).interleave(
        tf.data.TFRecordDataset, cycle_length=cycle_length, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if by_example:
      examples = examples.shard(num_pipelines, pipeline_id)
    # Blocks of `shuffle_buffer_size` consecutive records, each permuted by a stateless seed of
    # (seed, epoch, block): as much memory as a shuffle buffer, and a pure function of the epoch
    # number (tf.data's own shuffle also depends on the global seed state of the process).
    blocks = examples.batch(shuffle_buffer_size)
    epoch_seed = tf.stack([tf.constant(seed, tf.int64), number])
    return tf.data.Dataset.zip(tf.data.Dataset.counter(), blocks).map(
        lambda block_number, block: tf.random.experimental.stateless_shuffle(
            block, seed=tf.random.experimental.stateless_fold_in(epoch_seed, block_number))).unbatch()

  dataset = tf.data.Dataset.range(first_epoch, tf.int64.max).flat_map(epoch)
  if skip:
    dataset = dataset.skip(skip)
  dataset = dataset.batch(batch_size, drop_remainder=True)
  base_seed = tf.constant([seed, pipeline_id], tf.int64)
  dataset = tf.data.Dataset.zip(tf.data.Dataset.counter(first_batch), dataset)
  return _parse_and_mask(dataset, manifest, seq_length, masking_config, base_seed)


def evaluation_dataset(data_dir: str, global_batch_size: int, seq_length: int, num_batches: int,
                       input_context: Optional[tf.distribute.InputContext] = None,
                       masking_config: Optional[masking.MaskingConfig] = None) -> tf.data.Dataset:
  """The first `num_batches` held-out batches (global), with fixed masks and noise, cached in memory.

  Every run of every objective evaluates on exactly these batches. With several input pipelines,
  pipeline p takes every p-th global batch.
  """
  manifest = manifest_lib.read_manifest(data_dir)
  manifest_lib.check_compatible(manifest, data_dir, vocab_size=None, seq_length=seq_length)
  eval_paths = manifest.eval_shard_paths(data_dir)
  if not eval_paths:
    raise manifest_lib.DataError(
        f"the data in {data_dir!r} has no held-out split; rebuild it with python -m data_prep.build (which sets "
        f"one aside by default) or set EVAL_EVERY = 0")
  context = input_context or tf.distribute.InputContext()
  batch_size = context.get_per_replica_batch_size(global_batch_size)
  num_pipelines, pipeline_id = context.num_input_pipelines, context.input_pipeline_id
  replicas_per_pipeline = max(1, context.num_replicas_in_sync // num_pipelines)
  available = manifest.num_eval_examples // batch_size
  if available and available < num_batches * replicas_per_pipeline * num_pipelines:
    raise manifest_lib.DataError(
        f"EVAL_BATCHES={num_batches} of {global_batch_size} needs {num_batches * global_batch_size} held-out "
        f"examples, the data in {data_dir!r} has {manifest.num_eval_examples}; lower EVAL_BATCHES or "
        f"rebuild the data with a larger held-out split")
  dataset = tf.data.TFRecordDataset(eval_paths).batch(batch_size, drop_remainder=True)
  dataset = tf.data.Dataset.zip(tf.data.Dataset.counter(), dataset)
  dataset = dataset.take(num_batches * replicas_per_pipeline * num_pipelines)
  if num_pipelines > 1:
    dataset = dataset.shard(num_pipelines, pipeline_id)
  dataset = _parse_and_mask(dataset, manifest, seq_length, masking_config, tf.constant([EVAL_SEED, 0], tf.int64))
  return dataset.cache()


def _parse_and_mask(numbered_batches: tf.data.Dataset, manifest: manifest_lib.Manifest, seq_length: int,
                    masking_config: Optional[masking.MaskingConfig], base_seed) -> tf.data.Dataset:
  """(batch number, serialized records) -> features with masks and a noise seed from the number."""
  masking_config = masking_config or masking.MaskingConfig()
  scalar_features = tuple(manifest.scalar_features)
  static_predictions = manifest.max_predictions_per_seq
  special_ids = dict(manifest.special_token_ids)

  def parse(number, records):
    return number, parse_example(records, seq_length, scalar_features, static_predictions)

  def add_masks_and_noise(number, features):
    seed = batch_seed(base_seed, number)
    if not static_predictions:
      features.update(masking.mask_tokens(
          features["input_ids"], features["input_mask"], masking_config, special_ids, manifest.vocab_size,
          stateless_seed=tf.random.experimental.stateless_fold_in(seed, 0)))
    features[NOISE_SEED] = example_noise_seeds(tf.random.experimental.stateless_fold_in(seed, 1),
                                               tf.shape(features["input_ids"])[0])
    return features

  # Two stages, as two maps: tf.data runs them concurrently (faster than one map doing both).
  return numbered_batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE).map(
      add_masks_and_noise, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def example_noise_seeds(seed, batch_size):
  """[batch_size, 2] int32 seeds, one per example: micro-batches of a batch draw different noise."""
  seed = tf.cast(seed, tf.int64)
  rows = tf.stack([tf.fill([batch_size], seed[0]), seed[1] + tf.range(batch_size, dtype=tf.int64)], axis=1)
  # int32 like every other feature: TPU infeed and tf.distribute handle it everywhere.
  return tf.cast(rows % (2**31 - 1), tf.int32)

