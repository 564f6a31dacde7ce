"""The pretraining input pipeline: per-host sharding, epochs, exact resume, fixed evaluation batches."""
import os

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tests.conftest import SPECIAL_IDS
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining

SEQ = 16
FIRST_ID = len(SPECIAL_IDS)


def _write_numbered_data(data_dir, num_examples, num_shards, num_eval=0, shard_info=True):
  """Shards whose example i holds id FIRST_ID + i at position 1, so tests can read example ids back."""
  os.makedirs(data_dir, exist_ok=True)
  vocab_size = FIRST_ID + num_examples + num_eval + 8
  with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(list(SPECIAL_IDS) + [f"w{i}" for i in range(FIRST_ID, vocab_size)]) + "\n")

  def write(name, ids):
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
      for i in ids:
        tokens = [SPECIAL_IDS["[CLS]"], FIRST_ID + i] + [FIRST_ID + (i * 7 + j) % num_examples for j in range(SEQ - 3)]
        tokens += [SPECIAL_IDS["[SEP]"]]
        features = {"input_ids": tokens, "input_mask": [1] * SEQ, "segment_ids": [0] * SEQ}
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}))
                     .SerializeToString())

  shards = [f"pretrain-{s:05d}-of-{num_shards:05d}.tfrecord" for s in range(num_shards)]
  for s, name in enumerate(shards):
    write(name, range(s, num_examples, num_shards))
  eval_shards = []
  if num_eval:
    eval_shards = ["eval-00000-of-00001.tfrecord"]
    write(eval_shards[0], range(num_examples, num_examples + num_eval))
  manifest_lib.write_manifest(data_dir, manifest_lib.Manifest(
      vocab_file="vocab.txt", vocab_size=vocab_size, vocab_type="wordpiece", do_lower_case=True,
      special_token_ids=dict(SPECIAL_IDS), max_seq_length=SEQ, shards=shards, num_documents=num_examples,
      num_examples=num_examples, num_tokens=num_examples * SEQ, settings_hash="test", eval_shards=eval_shards,
      num_eval_documents=num_eval, num_eval_examples=num_eval, num_eval_tokens=num_eval * SEQ,
      shard_info={name: manifest_lib.shard_info(os.path.join(data_dir, name)) for name in shards + eval_shards}
      if shard_info else {}))
  return data_dir


def _ids(batches):
  return [int(i) for batch in batches for i in batch["input_ids"][:, 1].numpy() - FIRST_ID]


def _take(dataset, num_batches):
  return list(dataset.take(num_batches))


def _context(num_pipelines, pipeline_id, replicas=None):
  return tf.distribute.InputContext(num_input_pipelines=num_pipelines, input_pipeline_id=pipeline_id,
                                    num_replicas_in_sync=replicas or num_pipelines)


@pytest.mark.parametrize("num_shards", [4, 1])
def test_two_input_pipelines_read_disjoint_examples_that_together_cover_the_data(tmp_path, num_shards):
  # 4 shards: each host reads its own shards; 1 shard: each host reads every other example.
  data_dir = _write_numbered_data(str(tmp_path), num_examples=48, num_shards=num_shards)
  per_pipeline = []
  for pipeline_id in range(2):
    dataset = pretraining.pretraining_dataset(data_dir, 8, SEQ, input_context=_context(2, pipeline_id),
                                              shuffle_buffer_size=8, seed=3)
    per_pipeline.append(_ids(_take(dataset, 24 // 4)))  # One epoch of this pipeline: 24 examples, batches of 4.
  assert sorted(per_pipeline[0]) == sorted(set(per_pipeline[0])) and sorted(per_pipeline[1]) == sorted(set(per_pipeline[1]))
  assert not set(per_pipeline[0]) & set(per_pipeline[1])
  assert sorted(per_pipeline[0] + per_pipeline[1]) == list(range(48))


def test_every_epoch_visits_every_example_once_in_a_new_order(tmp_path):
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=3)
  ids = _ids(_take(pretraining.pretraining_dataset(data_dir, 4, SEQ, shuffle_buffer_size=16, seed=1), 30))
  first, second, third = ids[:40], ids[40:80], ids[80:]
  assert sorted(first) == sorted(second) == list(range(40))
  assert first != second
  assert len(third) == 40


@pytest.mark.parametrize("shard_info", [True, False], ids=["record_counts", "older_data_without_counts"])
def test_restarts_at_any_step_neither_replay_nor_skip_examples_across_epoch_boundaries(tmp_path, shard_info):
  # 40 examples, batches of 6: epoch boundaries fall inside batches 6, 13, ...; restarts at 5 and 11.
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=3, shard_info=shard_info)

  def stream(start_step, num_steps):
    dataset = pretraining.pretraining_dataset(data_dir, 6, SEQ, shuffle_buffer_size=16, seed=7, start_step=start_step)
    return _take(dataset, num_steps)

  uninterrupted = stream(0, 16)
  restarted = stream(0, 5) + stream(5, 6) + stream(11, 5)
  assert _ids(restarted) == _ids(uninterrupted)
  for a, b in zip(uninterrupted, restarted):  # Same masks and sampling noise, not only the same examples.
    for name in ("masked_input_ids", "masked_lm_positions", pretraining.NOISE_SEED):
      np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())
  ids = _ids(uninterrupted)
  assert sorted(ids[:40]) == sorted(ids[40:80]) == list(range(40))


def test_two_replicas_of_one_pipeline_resume_at_twice_the_step_in_batches(tmp_path):
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=2)
  context = _context(1, 0, replicas=2)
  full = _take(pretraining.pretraining_dataset(data_dir, 8, SEQ, input_context=context, seed=0), 10)
  resumed = _take(pretraining.pretraining_dataset(data_dir, 8, SEQ, input_context=context, seed=0, start_step=3), 4)
  assert _ids(resumed) == _ids(full[6:10])


def test_the_seed_changes_order_masks_and_noise(tmp_path):
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=3)
  a, b = (_take(pretraining.pretraining_dataset(data_dir, 8, SEQ, shuffle_buffer_size=16, seed=s), 2) for s in (0, 1))
  assert _ids(a) != _ids(b)
  assert not np.array_equal(a[0][pretraining.NOISE_SEED].numpy(), b[0][pretraining.NOISE_SEED].numpy())
  again = _take(pretraining.pretraining_dataset(data_dir, 8, SEQ, shuffle_buffer_size=16, seed=0), 2)
  for x, y in zip(a, again):
    for name in x:
      np.testing.assert_array_equal(x[name].numpy(), y[name].numpy())


def test_noise_seeds_differ_between_examples_and_batches(tmp_path):
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=2)
  batches = _take(pretraining.pretraining_dataset(data_dir, 4, SEQ, seed=0), 3)
  seeds = np.concatenate([b[pretraining.NOISE_SEED].numpy() for b in batches])
  assert seeds.shape == (12, 2) and len({tuple(s) for s in seeds}) == 12


def test_evaluation_batches_are_the_held_out_examples_with_masks_fixed_across_calls(tmp_path):
  data_dir = _write_numbered_data(str(tmp_path), num_examples=40, num_shards=2, num_eval=16)
  first = list(pretraining.evaluation_dataset(data_dir, 4, SEQ, num_batches=3))
  again = list(pretraining.evaluation_dataset(data_dir, 4, SEQ, num_batches=3))
  assert _ids(first) == list(range(40, 52))
  for x, y in zip(first, again):
    for name in x:
      np.testing.assert_array_equal(x[name].numpy(), y[name].numpy())
  halves = [_ids(pretraining.evaluation_dataset(data_dir, 4, SEQ, num_batches=2, input_context=_context(2, p)))
            for p in range(2)]
  assert sorted(halves[0] + halves[1]) == list(range(40, 48))  # The same 2 global batches of 4, split.


def test_evaluation_without_a_held_out_split_or_with_too_few_examples_is_refused(tmp_path):
  no_split = _write_numbered_data(str(tmp_path / "a"), num_examples=16, num_shards=1)
  with pytest.raises(manifest_lib.DataError, match="has no held-out split"):
    pretraining.evaluation_dataset(no_split, 4, SEQ, num_batches=1)
  small = _write_numbered_data(str(tmp_path / "b"), num_examples=16, num_shards=1, num_eval=8)
  with pytest.raises(manifest_lib.DataError, match="EVAL_BATCHES=3 of 4 needs 12 held-out examples"):
    pretraining.evaluation_dataset(small, 4, SEQ, num_batches=3)
