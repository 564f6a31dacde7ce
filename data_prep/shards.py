"""TFRecord shards whose count follows from the data size, each renamed into place when complete.

Examples go through a seeded shuffle buffer (consecutive examples of one document would otherwise
sit side by side in a shard) and then into shards of about `target_bytes` each, so the number of
shards grows with the corpus. When the data is too small to fill `min_shards` shards, the records
are dealt round-robin into `min_shards` smaller ones at the end, so that every host of a pod slice
still gets a file of its own.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import os
import random
from typing import List, Optional

import tensorflow as tf

SHARD_PATTERN = "{prefix}-{index:05d}.tfrecord"
TMP_SUFFIX = ".tmp"


class ShardWriter:
  """Writes serialized records into `output_dir`; `close()` returns the shard file names."""

  def __init__(self, output_dir: str, prefix: str, target_bytes: int, min_shards: int = 1,
               shuffle_buffer: int = 10000, seed: int = 0):
    if target_bytes <= 0 or min_shards < 1 or shuffle_buffer < 1:
      raise ValueError("target_bytes, min_shards and shuffle_buffer must be positive")
    self._output_dir = output_dir
    self._prefix = prefix
    self._target_bytes = target_bytes
    self._min_shards = min_shards
    self._shuffle_buffer = shuffle_buffer
    self._rng = random.Random(seed)
    self._buffer: List[bytes] = []
    self._names: List[str] = []
    self._writer: Optional[tf.io.TFRecordWriter] = None
    self._bytes_in_shard = 0
    self.num_records = 0

  def _name(self, index: int) -> str:
    return SHARD_PATTERN.format(prefix=self._prefix, index=index)

  def _path(self, name: str) -> str:
    return os.path.join(self._output_dir, name)

  def _write(self, record: bytes) -> None:
    if self._writer is None:
      self._names.append(self._name(len(self._names)))
      self._writer = tf.io.TFRecordWriter(self._path(self._names[-1]) + TMP_SUFFIX)
      self._bytes_in_shard = 0
    self._writer.write(record)
    self._bytes_in_shard += len(record)
    self.num_records += 1
    if self._bytes_in_shard >= self._target_bytes:
      self._finish_shard()

  def _finish_shard(self) -> None:
    self._writer.close()
    self._writer = None
    path = self._path(self._names[-1])
    tf.io.gfile.rename(path + TMP_SUFFIX, path, overwrite=True)

  def add(self, record: bytes) -> None:
    if len(self._buffer) < self._shuffle_buffer:
      self._buffer.append(record)
      return
    slot = self._rng.randrange(self._shuffle_buffer)
    self._buffer[slot], record = record, self._buffer[slot]
    self._write(record)

  def close(self) -> List[str]:
    self._rng.shuffle(self._buffer)
    for record in self._buffer:
      self._write(record)
    self._buffer = []
    if self._writer is not None:
      self._finish_shard()
    if len(self._names) < self._min_shards and self.num_records >= self._min_shards:
      self._names = self._redistribute()
    return list(self._names)

  def _redistribute(self) -> List[str]:
    """Deals the records of the few large shards round-robin into `min_shards` new ones."""
    old_paths = [self._path(n) for n in self._names]
    names = [self._name(i) for i in range(self._min_shards)]
    staging = [self._path(f"{self._prefix}-split-{i:05d}.tfrecord") for i in range(self._min_shards)]
    writers = [tf.io.TFRecordWriter(p + TMP_SUFFIX) for p in staging]
    index = 0
    for path in old_paths:
      for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        writers[index % len(writers)].write(record)
        index += 1
    for writer in writers:
      writer.close()
    for path in old_paths:
      tf.io.gfile.remove(path)
    for tmp, name in zip(staging, names):
      tf.io.gfile.rename(tmp + TMP_SUFFIX, self._path(name), overwrite=True)
    return names
