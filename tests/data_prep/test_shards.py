"""Shard writing: count follows size, min_shards is honoured, nothing is lost or left half-written."""
import os

import tensorflow as tf

from data_prep import shards


def _records(n):
  return [f"record-{i:04d}".encode() * 10 for i in range(n)]  # 110 bytes each.


def _read_all(directory, names):
  return [r for name in names for r in tf.data.TFRecordDataset(os.path.join(directory, name)).as_numpy_iterator()]


def test_shard_count_follows_data_size(tmp_path):
  writer = shards.ShardWriter(str(tmp_path), "p", target_bytes=1100, shuffle_buffer=7, seed=0)
  for record in _records(100):
    writer.add(record)
  names = writer.close()
  assert names == [f"p-{i:05d}.tfrecord" for i in range(10)]
  assert sorted(_read_all(tmp_path, names)) == sorted(_records(100))
  assert sorted(os.listdir(tmp_path)) == names  # No temporary files left.


def test_records_are_shuffled_deterministically(tmp_path):
  orders = []
  for run in ("a", "b"):
    os.makedirs(tmp_path / run)
    writer = shards.ShardWriter(str(tmp_path / run), "p", target_bytes=1 << 20, shuffle_buffer=50, seed=4)
    for record in _records(100):
      writer.add(record)
    orders.append(_read_all(tmp_path / run, writer.close()))
  assert orders[0] == orders[1]
  assert orders[0] != _records(100)


def test_small_data_is_spread_over_min_shards(tmp_path):
  writer = shards.ShardWriter(str(tmp_path), "p", target_bytes=1 << 20, min_shards=4, shuffle_buffer=1, seed=0)
  for record in _records(10):
    writer.add(record)
  names = writer.close()
  assert names == [f"p-{i:05d}.tfrecord" for i in range(4)]
  counts = [len(_read_all(tmp_path, [n])) for n in names]
  assert counts == [3, 3, 2, 2]
  assert sorted(_read_all(tmp_path, names)) == sorted(_records(10))
  assert sorted(os.listdir(tmp_path)) == names
