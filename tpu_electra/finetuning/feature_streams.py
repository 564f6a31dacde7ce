"""A fine-tuning split's cached features read back: streamed for training and evaluation.

Training reads the shards with per-host sharding through `tf.distribute.InputContext`
(by file when there are at least as many files as input pipelines, else by record), shuffles the
file order and a window of records (the whole split when it fits in SHUFFLE_BUFFER_BYTES) with
seeds from the run's seed (so the order is a function of the seed alone), repeats, batches and
decodes. Evaluation reads each split in order.
"""
import dataclasses
import hashlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tpu_electra.finetuning.feature_records import RecordFormat

# Bytes of serialized records a training shuffle buffer may hold (the buffer is never larger than
# the split, so a small task is shuffled whole).
SHUFFLE_BUFFER_BYTES = 64 << 20
# What one buffered element costs besides its bytes (tensor and string headers), for sizing it.
_BUFFER_OVERHEAD_BYTES = 128
# The shortest bucket of length-bucketed batches (`bucket_lengths`): a question or a short sentence
# is 10-20 WordPiece tokens (TREC: 79% of its questions within 16 with [CLS] and [SEP]).
SMALLEST_BUCKET = 16

Arrays = Dict[str, np.ndarray]


@dataclasses.dataclass
class SplitFeatures:
  """One split's features on disk: shards in row order, their row count and record format."""
  name: str
  files: List[str]
  num_rows: int
  record_format: RecordFormat
  num_bytes: int = 0

  @property
  def mean_record_bytes(self) -> float:
    return self.num_bytes / max(1, self.num_rows)

  def records(self) -> tf.data.Dataset:
    """Every record in row order (files in order, each read through)."""
    return tf.data.TFRecordDataset(self.files)

  def decode(self, records: tf.Tensor, length=None) -> Dict[str, tf.Tensor]:
    return self.record_format.decode(records, length)

  def read_all(self) -> Arrays:
    """Every row as numpy arrays: for tests and small splits, never for training."""
    chunks: Dict[str, List[np.ndarray]] = {}
    for batch in self.records().batch(4096):
      for name, value in self.decode(batch).items():
        chunks.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in chunks.items()}


def _derived_seed(seed: int, salt: int) -> int:
  digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def bucket_lengths(seq_length: int, smallest: int = SMALLEST_BUCKET) -> List[int]:
  """The lengths of length-bucketed batches of rows of at most `seq_length` positions: `smallest`
  doubled while below `seq_length`, then `seq_length` (16, 32, 64, 128 for 128; 16, 32, 64, 128,
  256, 512 for 512): a handful of static shapes, each compiled once (XLA, TPU), padding under half."""
  lengths = []
  while smallest < seq_length:
    lengths.append(smallest)
    smallest *= 2
  return lengths + [seq_length]


def _bucket_batches(dataset: tf.data.Dataset, split: SplitFeatures, lengths: Sequence[int],
                    batch_rows: int, pad_last: bool) -> tf.data.Dataset:
  """(records, extra...) elements -> (batch of `batch_rows` records, extra..., its bucket's length).

  A record goes to the first bucket whose length holds its `row_lengths` (`group_by_window`, keyed
  by bucket); a bucket's batch is emitted when it is full, so the batch order is a function of the
  record order. `pad_last` (a finite dataset): a bucket's last, partial batch is emitted too,
  filled up with copies of its first element whose last extra (the row index) is -1; otherwise
  partial batches are dropped (an endless stream never has one).
  """
  bucket_length = tf.constant(lengths, tf.int64)

  def key(record, *unused_extra):
    return tf.searchsorted(bucket_length, tf.reshape(split.record_format.row_lengths(record), [1]),
                           out_type=tf.int64)[0]

  def fill(*batch):
    extra = batch_rows - tf.shape(batch[0])[0]
    filled = [tf.concat([value, tf.repeat(value[:1], extra, axis=0)], 0) for value in batch[:-1]]
    filled.append(tf.concat([batch[-1], -tf.ones([extra], batch[-1].dtype)], 0))
    return tuple(tf.ensure_shape(value, [batch_rows]) for value in filled)

  def batches(bucket, window):
    window = window.batch(batch_rows, drop_remainder=not pad_last)
    if pad_last:
      window = window.map(fill)
    return window.map(lambda *batch: (*batch, bucket_length[bucket]))

  return dataset.group_by_window(key, batches, window_size=batch_rows)


def training_dataset(split: SplitFeatures, per_replica_batch_size: int, seed: int,
                     input_context: Optional[tf.distribute.InputContext] = None,
                     shuffle_buffer_bytes: int = SHUFFLE_BUFFER_BYTES,
                     lengths: Optional[Sequence[int]] = None) -> tf.data.Dataset:
  """Endless shuffled batches of `split` for one input pipeline, in an order decided by `seed`.

  The shuffles take `seed` (and seeds derived from it) as op seeds; TensorFlow pairs them with the
  global seed, which the runner sets from the same seed (`seeding.seed_everything`) just before, so
  a run's order is a function of its seed alone.

  Files are this pipeline's share when there are at least as many as pipelines, else every
  pipeline reads every file and keeps every n-th record. Each epoch reshuffles the file order and
  a window of records (all of them when they fit in `shuffle_buffer_bytes`).

  With bucket `lengths` (`bucket_lengths`), the shuffled records are grouped into batches of one
  bucket each (`_bucket_batches`), decoded to that bucket's length. All replicas of a step must get
  one length (a TPU step is one program), so the grouping is done over whole steps (per-replica
  batch x replicas) on the same stream in every pipeline: each pipeline then reads every file, in
  the same seeded order, and keeps its replicas' rows of each step.
  """
  num_pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  files = list(split.files)
  share = num_pipelines > 1 and not lengths
  by_file = share and len(files) >= num_pipelines
  if by_file:
    files = files[pipeline_id::num_pipelines]
  dataset = tf.data.Dataset.from_tensor_slices(files)
  dataset = dataset.shuffle(len(files), seed=_derived_seed(seed, 1), reshuffle_each_iteration=True)
  dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4), block_length=1)
  if share and not by_file:
    dataset = dataset.shard(num_pipelines, pipeline_id)
  rows = -(-split.num_rows // num_pipelines) if share else split.num_rows
  buffer = int(max(1, min(rows, shuffle_buffer_bytes // (split.mean_record_bytes + _BUFFER_OVERHEAD_BYTES))))
  # The run's seed itself: a split that fits the buffer is shuffled exactly as the in-memory
  # arrays of earlier versions were (`from_tensor_slices(...).shuffle(rows, seed)`).
  dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  if lengths:
    replicas = input_context.num_replicas_in_sync if input_context else 1
    local = replicas // num_pipelines  # This pipeline's replicas: its per-replica batches of each step.
    first = pipeline_id * local * per_replica_batch_size
    dataset = _bucket_batches(dataset, split, lengths, per_replica_batch_size * replicas, pad_last=False)
    dataset = dataset.map(lambda records, length: (
        tf.reshape(records[first:first + local * per_replica_batch_size], [local, per_replica_batch_size]),
        tf.fill([local], length))).unbatch()
    dataset = dataset.map(split.decode)
  else:
    dataset = dataset.batch(per_replica_batch_size, drop_remainder=True).map(split.decode)
  # Reading a few shards needs no tuning, and tf.data's autotuning thread makes deleting the
  # iterator at the end of each seed wait up to tens of seconds.
  options = tf.data.Options()
  options.autotune.enabled = False
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return dataset.prefetch(2).with_options(options)


def evaluation_dataset(split: SplitFeatures, global_batch_size: int, index_name: str,
                       lengths: Optional[Sequence[int]] = None) -> tf.data.Dataset:
  """Every row of `split` once, in whole batches, with its row index as `index_name`.

  Rows come in row order, the last batch filled up with copies of row 0 whose index is -1; with
  bucket `lengths`, in batches of one bucket each decoded to its length (`_bucket_batches`; rows in
  row order within a bucket, each bucket's last batch filled up with index -1 copies).
  """
  records = split.records()
  indexed = tf.data.Dataset.zip((records, tf.data.Dataset.range(split.num_rows)))

  def decode(batch, index, length=None):
    features = split.decode(batch, length)
    features[index_name] = tf.cast(index, tf.int32)
    return features

  if lengths:
    batches = _bucket_batches(indexed, split, lengths, global_batch_size, pad_last=True)
  else:
    extra = -(-split.num_rows // global_batch_size) * global_batch_size - split.num_rows
    if extra:
      indexed = indexed.concatenate(tf.data.Dataset.zip((records.take(1).repeat(extra),
                                                         tf.data.Dataset.from_tensors(tf.constant(-1, tf.int64))
                                                         .repeat(extra))))
    batches = indexed.batch(global_batch_size, drop_remainder=True)
  options = tf.data.Options()
  options.autotune.enabled = False
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return batches.map(decode).prefetch(2).with_options(options)
