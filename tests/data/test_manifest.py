"""The manifest: old formats still load; shard sizes, checksums and the vocab are checked in one line."""
import hashlib
import json
import logging
import os

import pytest
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib

SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
# What format 1 (before held-out shards and integrity info) wrote.
V1_FIELDS = dict(vocab_file="vocab.txt", vocab_size=8192, vocab_type="wordpiece", do_lower_case=True,
                 special_token_ids=SPECIAL_IDS, max_seq_length=128, shards=["pretrain-00000-of-00001.tfrecord"],
                 num_documents=97, num_examples=5000, num_tokens=600000, settings_hash="abc", settings={},
                 sources=["wikipedia:embedded"], num_bad_files=0, scalar_features=[], max_predictions_per_seq=0,
                 format_version=1)


def _write_vocab(data_dir, size):
  with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(list(SPECIAL_IDS) + [f"w{i}" for i in range(len(SPECIAL_IDS), size)]) + "\n")


def _write_shard(path, num_records, seed):
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(num_records):
      writer.write(f"{seed}-record-{i:05d}-".encode() * 8)


@pytest.fixture
def data_dir(tmp_path):
  """Two training shards and one held-out shard of about 25 kB each, with a format-2 manifest."""
  directory = str(tmp_path / "data")
  os.makedirs(directory)
  _write_vocab(directory, 8192)
  names = ["pretrain-00000-of-00002.tfrecord", "pretrain-00001-of-00002.tfrecord", "eval-00000-of-00001.tfrecord"]
  info = {}
  for seed, name in enumerate(names):
    path = os.path.join(directory, name)
    _write_shard(path, 200, seed)
    with open(path, "rb") as f:
      data = f.read()
    info[name] = manifest_lib.ShardInfo(num_bytes=len(data), num_records=200, sha256=hashlib.sha256(data).hexdigest())
  manifest = manifest_lib.Manifest(
      vocab_file="vocab.txt", vocab_size=8192, vocab_type="wordpiece", do_lower_case=True,
      special_token_ids=dict(SPECIAL_IDS), max_seq_length=128, shards=names[:2], num_documents=10, num_examples=400,
      num_tokens=40000, settings_hash="x", eval_shards=names[2:], num_eval_documents=1, num_eval_examples=200,
      num_eval_tokens=20000, shard_info=info)
  manifest_lib.write_manifest(directory, manifest)
  return directory


def _one_line(error):
  text = str(error.value)
  assert "\n" not in text
  return text


def test_manifest_round_trips_through_json_with_shard_info(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  assert manifest.format_version == manifest_lib.FORMAT_VERSION == 2
  assert manifest == manifest_lib.Manifest.from_json(manifest.to_json())
  assert isinstance(manifest.shard_info["eval-00000-of-00001.tfrecord"], manifest_lib.ShardInfo)
  assert manifest_lib.record_counts(manifest) == [200, 200]
  assert manifest.num_eval_examples == 200
  assert manifest.eval_shard_paths(data_dir) == [os.path.join(data_dir, "eval-00000-of-00001.tfrecord")]
  assert manifest.all_shards() == manifest.shards + manifest.eval_shards


def test_intact_data_passes_every_check(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  manifest_lib.check_vocab(manifest, data_dir)
  manifest_lib.check_shard_sizes(manifest, data_dir)
  seen = []
  manifest_lib.verify_checksums(manifest, data_dir, progress=lambda done, total, name, info: seen.append((done, total, name)))
  assert seen == [(i + 1, 3, name) for i, name in enumerate(manifest.all_shards())]


def test_shard_info_reads_size_records_and_sha256(data_dir):
  path = os.path.join(data_dir, "eval-00000-of-00001.tfrecord")
  with open(path, "rb") as f:
    data = f.read()
  assert manifest_lib.shard_info(path) == manifest_lib.ShardInfo(len(data), 200, hashlib.sha256(data).hexdigest())


def test_truncated_shard_is_caught_by_the_size_check_and_by_verification(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  path = os.path.join(data_dir, manifest.shards[1])
  size = os.path.getsize(path)
  assert size > 8192
  with open(path, "r+b") as f:
    f.truncate(size - 4096)  # The last 4 KB lost, as by an interrupted copy.
  with pytest.raises(manifest_lib.DataError) as raised:
    manifest_lib.check_shard_sizes(manifest, data_dir)
  assert _one_line(raised).startswith(f"shard {path} has {size - 4096} bytes but the manifest says {size}")
  assert f"python -m data_prep.verify --data_dir={data_dir}" in str(raised.value)
  with pytest.raises(manifest_lib.DataError) as raised:
    manifest_lib.verify_checksums(manifest, data_dir)
  assert _one_line(raised).startswith(f"shard {path} has {size - 4096} bytes")


def test_bytes_overwritten_in_the_middle_are_caught_by_verification_only(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  path = os.path.join(data_dir, manifest.eval_shards[0])
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(size // 2)
    f.write(b"\xde\xad\xbe\xef" * 2)
  assert os.path.getsize(path) == size
  manifest_lib.check_shard_sizes(manifest, data_dir)  # Sizes cannot see it.
  with pytest.raises(manifest_lib.DataError) as raised:
    manifest_lib.verify_checksums(manifest, data_dir)
  assert _one_line(raised).startswith(f"shard {path} is corrupt: its sha256 differs from the manifest's")


def test_missing_shard_is_named(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  path = os.path.join(data_dir, manifest.shards[0])
  os.remove(path)
  for check in (manifest_lib.check_shard_sizes, manifest_lib.verify_checksums):
    with pytest.raises(manifest_lib.DataError) as raised:
      check(manifest, data_dir)
    assert _one_line(raised).startswith(f"shard {path} listed in the manifest is missing; re-copy it or rebuild")


def test_a_wrong_record_count_in_the_manifest_is_caught(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  name = manifest.shards[0]
  info = manifest.shard_info[name]
  manifest.shard_info[name] = manifest_lib.ShardInfo(info.num_bytes, 199, info.sha256)
  with pytest.raises(manifest_lib.DataError, match=f"{name} holds 200 records but the manifest says 199"):
    manifest_lib.verify_checksums(manifest, data_dir)


@pytest.mark.parametrize("vocab_size", [9000, 100])
def test_vocab_size_mismatch_is_caught_in_one_line(data_dir, vocab_size):
  manifest = manifest_lib.read_manifest(data_dir)
  manifest.vocab_size = vocab_size
  with pytest.raises(manifest_lib.DataError) as raised:
    manifest_lib.check_vocab(manifest, data_dir)
  assert _one_line(raised) == (
      f"manifest says vocab_size {vocab_size} but vocab.txt ({os.path.join(data_dir, 'vocab.txt')}) has 8192 "
      "entries; rebuild the data or fix the manifest")


def test_special_token_ids_and_missing_vocab_are_caught(data_dir):
  manifest = manifest_lib.read_manifest(data_dir)
  manifest.special_token_ids = {**SPECIAL_IDS, "[MASK]": 103}
  with pytest.raises(manifest_lib.DataError, match=r"manifest says \[MASK\] has id 103 but in vocab.txt .* it has id 4"):
    manifest_lib.check_vocab(manifest, data_dir)
  os.remove(os.path.join(data_dir, "vocab.txt"))
  with pytest.raises(manifest_lib.DataError, match="vocab .*vocab.txt named by the manifest is missing"):
    manifest_lib.check_vocab(manifest, data_dir)


def test_format_1_manifest_still_loads_and_integrity_checks_only_warn(tmp_path, caplog):
  data_dir = str(tmp_path)
  with open(os.path.join(data_dir, manifest_lib.MANIFEST_NAME), "w") as f:
    json.dump(V1_FIELDS, f)
  manifest = manifest_lib.read_manifest(data_dir)
  assert manifest.format_version == 1
  assert (manifest.eval_shards, manifest.num_eval_examples, manifest.shard_info) == ([], 0, {})
  assert manifest_lib.record_counts(manifest) is None
  assert manifest.eval_shard_paths(data_dir) == []
  with caplog.at_level(logging.WARNING):
    manifest_lib.check_shard_sizes(manifest, data_dir)  # The shard does not even exist: nothing to compare.
    manifest_lib.verify_checksums(manifest, data_dir)
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 2 and all("records no shard sizes or checksums" in w and "rebuild the data" in w
                                    for w in warnings)


def test_unknown_format_and_partial_shard_info_are_refused(data_dir):
  fields = json.loads(manifest_lib.read_manifest(data_dir).to_json())
  with pytest.raises(manifest_lib.DataError, match="format_version 3, this tpu_electra reads \\[1, 2\\]"):
    manifest_lib.Manifest.from_json(json.dumps({**fields, "format_version": 3}))
  del fields["shard_info"]["eval-00000-of-00001.tfrecord"]
  with pytest.raises(manifest_lib.DataError, match="no size or checksum for shard eval-00000-of-00001.tfrecord"):
    manifest_lib.Manifest.from_json(json.dumps(fields))
