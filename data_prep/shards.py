"""Example files of the work units, and TFRecord shards planned from them.

Each work unit writes its serialized examples into a record file of its own under `_work`
(length-prefixed records, read back without TensorFlow). Once every unit is done, the number of
records and bytes is known, so the shard count follows from the data size: enough shards of about
`target_bytes`, and at least `min_shards` (so that every host of a pod slice reads files of its
own) as long as each of them still holds `min_shard_bytes`. The units are put in a seeded random
order and the resulting record stream is cut into that many equal runs; each shard reads its run,
shuffles it with a seed of its own and is written under a temporary name, then renamed. A shard
therefore mixes many units from all over the corpus, and shards are independent tasks: they can be
written in parallel and a finished one is never written again.

Each shard's size, record count and sha256 (a `manifest.ShardInfo`) are taken from the bytes as
they are written, not by reading the file back, and kept beside the work files, so that a resumed
build knows them for shards it finished before.
"""
import dataclasses
import hashlib
import json
import math
import os
import random
import struct
import uuid
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from data_prep import tfexample
from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib

SHARD_PATTERN = "{prefix}-{index:05d}-of-{count:05d}.tfrecord"
TMP_SUFFIX = ".tmp"
_LENGTH = struct.Struct("<I")  # tfexample.LENGTH_PREFIX_DTYPE: serialized batches come framed for these files.


def _naming(error: OSError, path: str) -> OSError:
  """`error` naming the file written: a failed write (ENOSPC: a full disk) names none, and the build's
  one-line error should say which file of which directory could not be written."""
  if error.filename is not None:
    return error
  return OSError(error.errno, error.strerror or str(error), path)


class RecordWriter:
  """Length-prefixed records into `path`, which appears only when `close()` completes."""

  def __init__(self, path: str):
    self._path = path
    self._file = fileio.open_file(path + TMP_SUFFIX, "wb")
    self.num_records = 0
    self.num_bytes = 0

  def write(self, record: bytes) -> None:
    try:
      self._file.write(_LENGTH.pack(len(record)))
      self._file.write(record)
    except OSError as e:
      raise _naming(e, self._path + TMP_SUFFIX) from None
    self.num_records += 1
    self.num_bytes += len(record)

  def write_batch(self, batch: tfexample.RecordBatch) -> None:
    """Many records at once; in one write when serialized with `length_prefix` (this file's framing)."""
    if not batch.length_prefixed:
      for record in batch.records():
        self.write(record)
      return
    try:
      self._file.write(batch.data.tobytes())
    except OSError as e:
      raise _naming(e, self._path + TMP_SUFFIX) from None
    self.num_records += len(batch)
    self.num_bytes += batch.num_bytes

  def close(self) -> None:
    try:
      self._file.close()  # Flushes: a full disk may show only here.
    except OSError as e:
      raise _naming(e, self._path + TMP_SUFFIX) from None
    fileio.rename(self._path + TMP_SUFFIX, self._path)

  def abort(self) -> None:
    try:
      self._file.close()
    except OSError:
      pass  # The flush of a discarded file failed (a full disk): the file is closed all the same.
    if fileio.exists(self._path + TMP_SUFFIX):
      fileio.remove(self._path + TMP_SUFFIX)


def read_records(path: str, start: int = 0, end: int = -1) -> Iterator[bytes]:
  """Records [start, end) of a record file (end -1: to the last).

  The file is read whole (a unit's examples, some MB) and cut in memory: two reads per record
  cost more than all the rest of writing a shard.
  """
  with fileio.open_file(path, "rb") as f:
    data = f.read()
  offset = index = 0
  header = _LENGTH.size
  while (end < 0 or index < end) and offset < len(data):
    if offset + header > len(data):
      raise IOError(f"{path} ends inside a record; delete it and run again")
    (length,) = _LENGTH.unpack_from(data, offset)
    offset += header
    if index >= start:
      if offset + length > len(data):
        raise IOError(f"{path} ends inside a record; delete it and run again")
      yield data[offset:offset + length]
    offset += length
    index += 1


@dataclasses.dataclass(frozen=True)
class UnitRecords:
  path: str
  num_records: int
  num_bytes: int


@dataclasses.dataclass(frozen=True)
class ShardTask:
  index: int
  name: str
  slices: Tuple[Tuple[str, int, int], ...]  # (record file, first record, end record)
  seed: int


def shard_count(num_records: int, num_bytes: int, target_bytes: int, min_shards: int, min_shard_bytes: int) -> int:
  by_size = math.ceil(num_bytes / max(1, target_bytes))
  for_hosts = min(min_shards, num_bytes // max(1, min_shard_bytes))
  return max(1, min(num_records, max(by_size, for_hosts)))


def plan_shards(units: Sequence[UnitRecords], prefix: str, target_bytes: int, min_shards: int, min_shard_bytes: int,
                seed: int) -> List[ShardTask]:
  """Cuts the records of all units, in a seeded order of units, into equal runs, one per shard."""
  if target_bytes <= 0 or min_shards < 1:
    raise ValueError("target_bytes and min_shards must be positive")
  units = [u for u in units if u.num_records]
  num_records = sum(u.num_records for u in units)
  if not num_records:
    return []
  count = shard_count(num_records, sum(u.num_bytes for u in units), target_bytes, min_shards, min_shard_bytes)
  order = list(units)
  random.Random(f"{seed}:unit-order").shuffle(order)
  starts = [0]
  for unit in order:
    starts.append(starts[-1] + unit.num_records)
  tasks = []
  for index in range(count):
    low, high = index * num_records // count, (index + 1) * num_records // count
    slices = []
    for unit, first in zip(order, starts):
      a, b = max(low, first), min(high, first + unit.num_records)
      if a < b:
        slices.append((unit.path, a - first, b - first))
    name = SHARD_PATTERN.format(prefix=prefix, index=index, count=count)
    tasks.append(ShardTask(index=index, name=name, slices=tuple(slices), seed=seed))
  return tasks


def _crc32c() -> Optional[Callable[[bytes], int]]:
  """google_crc32c's CRC-32C (C, hardware-accelerated), or None where it is not installed."""
  try:
    import google_crc32c  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return google_crc32c.value if google_crc32c.implementation == "c" else None


_MASK_DELTA = 0xA282EAD8
_RECORD_LENGTH = struct.Struct("<Q")
_RECORD_CRC = struct.Struct("<I")


def _masked(crc: int) -> int:
  """TFRecord's masked CRC (tensorflow/core/lib/hash/crc32c.h)."""
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _tfrecord_bytes(records: Sequence[bytes]) -> bytes:
  """The TFRecord file of `records`, in memory: length, masked CRC-32C of the length, data, masked CRC-32C of the data.

  Framed here with google_crc32c when it is installed (no TensorFlow import), else by TensorFlow's
  own writer; tests/data_prep/test_shards.py pins the two to the same bytes.
  """
  crc = _crc32c()
  if crc is None:
    return _tfrecord_bytes_tf(records)
  parts = []
  for record in records:
    length = _RECORD_LENGTH.pack(len(record))
    parts += (length, _RECORD_CRC.pack(_masked(crc(length))), record, _RECORD_CRC.pack(_masked(crc(record))))
  return b"".join(parts)


def _tfrecord_bytes_tf(records: Sequence[bytes]) -> bytes:
  """The TFRecord file of `records`, framed by TensorFlow's own writer, in memory."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  staging = f"ram://data_prep-{uuid.uuid4().hex}.tfrecord"
  try:
    with tf.io.TFRecordWriter(staging) as writer:
      for record in records:
        writer.write(record)
    with tf.io.gfile.GFile(staging, "rb") as f:
      return f.read()
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.remove(staging)


def _info_path(info_dir: str, name: str) -> str:
  return os.path.join(info_dir, name + ".json")


def _read_info(info_dir: Optional[str], name: str) -> Optional[manifest_lib.ShardInfo]:
  if info_dir is None or not fileio.exists(_info_path(info_dir, name)):
    return None
  with fileio.open_file(_info_path(info_dir, name), "r") as f:
    return manifest_lib.ShardInfo(**json.load(f))


def _write_info(info_dir: Optional[str], name: str, info: manifest_lib.ShardInfo) -> None:
  if info_dir is None:
    return
  fileio.write_atomic(_info_path(info_dir, name), json.dumps(dataclasses.asdict(info), sort_keys=True))


def write_shard(output_dir: str, task: ShardTask, info_dir: Optional[str] = None) -> Tuple[str, manifest_lib.ShardInfo]:
  """Writes one shard (skipped when it exists: it was renamed into place complete); (name, its info).

  The info goes to `info_dir` before the shard is renamed into place, so a finished shard always
  has it; without one (or for a shard from elsewhere) a finished shard is read once to get it.
  """
  path = os.path.join(output_dir, task.name)
  if fileio.exists(path):
    return task.name, _read_info(info_dir, task.name) or manifest_lib.shard_info(path)
  records = [r for unit_path, a, b in task.slices for r in read_records(unit_path, a, b)]
  random.Random(f"{task.seed}:shard:{task.index}").shuffle(records)
  data = _tfrecord_bytes(records)
  del records
  info = manifest_lib.ShardInfo(num_bytes=len(data), num_records=sum(b - a for _, a, b in task.slices),
                                sha256=hashlib.sha256(data).hexdigest())
  try:
    with fileio.open_file(path + TMP_SUFFIX, "wb") as f:
      f.write(data)
  except BaseException as e:
    if fileio.exists(path + TMP_SUFFIX):
      fileio.remove(path + TMP_SUFFIX)
    if isinstance(e, OSError):
      raise _naming(e, path + TMP_SUFFIX) from None
    raise
  _write_info(info_dir, task.name, info)
  fileio.rename(path + TMP_SUFFIX, path)
  return task.name, info
