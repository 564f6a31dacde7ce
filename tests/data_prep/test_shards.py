"""Shards: the count follows the data size, every record lands in exactly one shard, nothing half-written."""
import hashlib
import os

import pytest
import tensorflow as tf

from data_prep import shards
from tpu_electra.data import manifest as manifest_lib


def _unit(directory, name, records):
  writer = shards.RecordWriter(os.path.join(directory, name))
  for record in records:
    writer.write(record)
  writer.close()
  return shards.UnitRecords(os.path.join(directory, name), writer.num_records, writer.num_bytes)


def _records(unit, n):
  return [f"unit{unit}-record-{i:04d}".encode() * 5 for i in range(n)]


def _units(directory, sizes):
  return [_unit(directory, f"unit-{u}.rec", _records(u, n)) for u, n in enumerate(sizes)]


def _write_all(directory, tasks):
  names = [shards.write_shard(str(directory), task)[0] for task in tasks]
  return names, [[r for r in tf.data.TFRecordDataset(os.path.join(directory, n)).as_numpy_iterator()] for n in names]


def test_record_file_reads_back_any_range_and_appears_only_when_closed(tmp_path):
  path = str(tmp_path / "unit.rec")
  writer = shards.RecordWriter(path)
  for record in _records(0, 10):
    writer.write(record)
  assert not os.path.exists(path)
  writer.close()
  assert list(shards.read_records(path)) == _records(0, 10)
  assert list(shards.read_records(path, 3, 7)) == _records(0, 10)[3:7]
  assert os.listdir(tmp_path) == ["unit.rec"]


@pytest.mark.parametrize("num_records, num_bytes, expected", [
    (10_000, 1000 << 20, 64),  # 1000 MB: 64 hosts' worth, each shard well above the minimum size.
    (10_000, 100 << 20, 12),  # 100 MB: min_shards would make 1.6 MB slivers; 12 shards of 8 MB.
    (10_000, 3 << 20, 1),  # The embedded fragment's size: one shard.
    (100_000, 20_000 << 20, 157),  # 20 GB: the target size decides.
    (5, 1000 << 20, 5),  # Never more shards than records.
])
def test_shard_count_follows_size_and_min_shards_only_when_big_enough(num_records, num_bytes, expected):
  assert shards.shard_count(num_records, num_bytes, 128 << 20, 64, 8 << 20) == expected


def test_every_record_lands_in_exactly_one_shard_and_shards_are_even(tmp_path):
  units = _units(tmp_path, [13, 0, 40, 7, 25])
  tasks = shards.plan_shards(units, "p", target_bytes=1 << 20, min_shards=4, min_shard_bytes=1, seed=3)
  assert [t.name for t in tasks] == [f"p-{i:05d}-of-00004.tfrecord" for i in range(4)]
  names, contents = _write_all(tmp_path, tasks)
  assert sorted(r for c in contents for r in c) == sorted(r for u in range(5) for r in _records(u, [13, 0, 40, 7, 25][u]))
  assert [len(c) for c in contents] == [21, 21, 21, 22]
  assert not [n for n in os.listdir(tmp_path) if n.endswith(shards.TMP_SUFFIX)]


def test_shards_mix_units_and_are_shuffled_deterministically(tmp_path):
  units = _units(tmp_path, [30, 30, 30, 30])
  first = shards.plan_shards(units, "p", 1 << 20, min_shards=2, min_shard_bytes=1, seed=1)
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  _, contents = _write_all(tmp_path / "a", first)
  _, again = _write_all(tmp_path / "b", shards.plan_shards(units, "p", 1 << 20, min_shards=2, min_shard_bytes=1, seed=1))
  assert contents == again
  assert all(len({r.split(b"-")[0] for r in c}) >= 2 for c in contents)  # Each shard holds several units.
  assert contents[0] != sorted(contents[0])
  other = shards.plan_shards(units, "p", 1 << 20, min_shards=2, min_shard_bytes=1, seed=2)
  assert other != first


def test_a_finished_shard_is_not_written_again(tmp_path):
  units = _units(tmp_path, [10])
  task = shards.plan_shards(units, "p", 1 << 20, min_shards=1, min_shard_bytes=1, seed=0)[0]
  path = tmp_path / task.name
  info_dir = tmp_path / "info"
  info_dir.mkdir()
  name, info = shards.write_shard(str(tmp_path), task, str(info_dir))
  assert (name, info.num_records) == (task.name, 10)
  before = path.stat().st_mtime_ns
  os.remove(units[0].path)  # Rewriting would need the unit file.
  assert shards.write_shard(str(tmp_path), task, str(info_dir)) == (task.name, info)
  assert shards.write_shard(str(tmp_path), task) == (task.name, info)  # No kept info: the shard is read once.
  assert path.stat().st_mtime_ns == before


def test_shard_info_is_taken_from_the_bytes_written(tmp_path):
  units = _units(tmp_path, [7, 9])
  tasks = shards.plan_shards(units, "p", 1 << 20, min_shards=2, min_shard_bytes=1, seed=0)
  for task in tasks:
    name, info = shards.write_shard(str(tmp_path), task)
    data = (tmp_path / name).read_bytes()
    assert info == manifest_lib.ShardInfo(len(data), sum(1 for _ in tf.data.TFRecordDataset(str(tmp_path / name))),
                                          hashlib.sha256(data).hexdigest())
  assert not [n for n in os.listdir(tmp_path) if n.endswith(shards.TMP_SUFFIX)]


@pytest.mark.parametrize("crc32c", ["google_crc32c", "none installed"])
def test_tfrecords_are_framed_as_tensorflows_writer_frames_them(monkeypatch, crc32c):
  records = [b"", b"x", bytes(range(256)) * 7, os.urandom(5000), b"\x00" * 70000]
  if crc32c == "none installed":
    monkeypatch.setattr(shards, "_crc32c", lambda: None)  # Falls back to TensorFlow's writer.
  else:
    pytest.importorskip("google_crc32c")  # Installed with the [beam] extra.
  assert shards._tfrecord_bytes(records) == shards._tfrecord_bytes_tf(records)  # pylint: disable=protected-access


class _FullDisk:
  """A file whose writes fail as on a full disk: ENOSPC, and no file name in the error."""

  def __init__(self, *unused_args, **unused_kwargs):
    pass

  def write(self, data):
    raise OSError(28, "No space left on device")

  def close(self):
    pass

  def __enter__(self):
    return self

  def __exit__(self, *unused):
    return False


def test_a_full_disk_names_the_shard_or_unit_file_being_written(tmp_path, monkeypatch):
  units = _units(tmp_path, [10])
  task = shards.plan_shards(units, "p", 1 << 20, min_shards=1, min_shard_bytes=1, seed=0)[0]
  real_open = shards.fileio.open_file  # Reading the units still works; writing fails.
  monkeypatch.setattr(shards.fileio, "open_file",
                      lambda path, mode="rb": _FullDisk() if "w" in mode else real_open(path, mode))
  path = os.path.join(str(tmp_path), task.name) + shards.TMP_SUFFIX
  with pytest.raises(OSError) as raised:
    shards.write_shard(str(tmp_path), task)
  # data_prep.build prints it as "data_prep.build: OSError: <this>; check the paths and space of ...".
  assert str(raised.value) == f"[Errno 28] No space left on device: {path!r}"
  writer = shards.RecordWriter(str(tmp_path / "unit-9.rec"))
  with pytest.raises(OSError) as raised:
    writer.write(b"record")
  assert str(raised.value) == f"[Errno 28] No space left on device: {str(tmp_path / 'unit-9.rec.tmp')!r}"
