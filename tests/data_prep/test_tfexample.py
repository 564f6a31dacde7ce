"""The vectorised tf.train.Example writer gives exactly the proto library's bytes."""
import numpy as np
import pytest
import tensorflow as tf

from data_prep import examples
from data_prep import shards
from data_prep import tfexample

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _proto_records(features, float_features=()):
  """What examples.serialize_features (tf.train.Example, deterministic) gives, example by example."""
  count = len(next(iter(features.values())))
  records = []
  for row in range(count):
    values = {}
    for name, column in features.items():
      cell = np.asarray(column)[row]
      values[name] = cell.item() if cell.ndim == 0 else cell.tolist()
    proto = {}
    for name, value in values.items():
      listed = [value] if not isinstance(value, list) else value
      if name in float_features:
        proto[name] = tf.train.Feature(float_list=tf.train.FloatList(value=listed))
      else:
        proto[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=listed))
    records.append(tf.train.Example(features=tf.train.Features(feature=proto)).SerializeToString(deterministic=True))
  return records


@pytest.mark.parametrize("values", [
    np.zeros((3, 5), np.int64),  # All one-byte varints.
    np.array([[0, 127, 128, 16383, 16384, 2097151, 2097152]]),  # Every varint width boundary up to 4 bytes.
    np.array([[INT64_MAX, 1 << 35, (1 << 56) - 1, 1 << 56, 1 << 62]]),  # Up to 9 bytes; widths mixed in a row.
    np.array([[1 << 28, 1 << 35, 5, 1 << 42, (1 << 49) - 1, (1 << 56) - 1], [3, 200, 70000, 1 << 30, 9, 1]]),  # 5-8 bytes.
    np.array([[-1, INT64_MIN, 0], [5, -300, 1]]),  # Negative int64: ten bytes each, as protobuf writes them.
    np.zeros((4, 0), np.int64),  # An empty list: the feature is there, its packed values are not.
    np.arange(7, dtype=np.int64),  # 1-D: one value per example (a scalar feature, e.g. next_sentence_labels).
    np.random.default_rng(0).integers(0, 30522, (50, 128)),  # Token ids of a BERT vocab.
])
def test_int64_features_match_the_proto_library(values):
  features = {"input_ids": values, "input_mask": np.ones((len(values), 3), np.int64)}
  assert tfexample.serialize_batch(features).records() == _proto_records(features)


def test_float_features_and_their_odd_values_match_the_proto_library():
  weights = np.array([[1.0, 0.0, -0.0, 1e-45], [np.inf, -np.inf, 3.5, 1e38], [np.nan, 0.1, 2.0, -7.25]], np.float32)
  features = {"masked_lm_weights": weights, "masked_lm_positions": np.array([[1, 2, 3, 4]] * 3)}
  got = tfexample.serialize_batch(features, ["masked_lm_weights"]).records()
  assert got == _proto_records(features, ["masked_lm_weights"])


def test_entries_are_sorted_by_name_whatever_the_order_given():
  rng = np.random.default_rng(1)
  names = ["segment_ids", "input_ids", "next_sentence_labels", "B", "a", "masked_lm_ids", "input_mask", "x" * 200]
  features = {name: rng.integers(0, 1000, (6, 1 + i % 3)) for i, name in enumerate(names)}
  assert tfexample.serialize_batch(features).records() == _proto_records(features)


def test_long_rows_need_multi_byte_lengths_at_every_level():
  # 512 ids of three bytes each: the packed list, the feature, the entry and the example all exceed 127 bytes.
  values = np.full((2, 512), 20000, np.int64)
  features = {"input_ids": values}
  assert tfexample.serialize_batch(features).records() == _proto_records(features)


def test_examples_serialize_as_example_serialize_does():
  config = examples.PackingConfig(max_seq_length=16, cls_id=2, sep_id=3)
  packed = [examples.make_example([10, 11], [12], config, next_sentence_label=1),
            examples.make_example(list(range(100, 113)), [], config, next_sentence_label=0)]
  batch = examples.ExampleBatch.from_examples(packed, 16, next_sentence=True)
  assert tfexample.serialize_batch(batch.features()).records() == [e.serialize() for e in packed]


def test_length_prefixed_batches_are_the_unit_record_file_format(tmp_path):
  rng = np.random.default_rng(2)
  features = {"input_ids": rng.integers(0, 300, (9, 20)), "segment_ids": rng.integers(0, 2, (9, 20))}
  plain = tfexample.serialize_batch(features)
  framed = tfexample.serialize_batch(features, length_prefix=True)
  assert framed.records() == plain.records() and framed.num_bytes == plain.num_bytes
  one_by_one = shards.RecordWriter(str(tmp_path / "single.rec"))
  for record in plain.records():
    one_by_one.write(record)
  one_by_one.close()
  batched = shards.RecordWriter(str(tmp_path / "batched.rec"))
  batched.write_batch(framed)
  batched.write_batch(plain)  # Unframed batches are framed record by record.
  batched.close()
  assert (batched.num_records, batched.num_bytes) == (18, 2 * plain.num_bytes)
  single = (tmp_path / "single.rec").read_bytes()
  assert (tmp_path / "batched.rec").read_bytes() == single + single
  assert list(shards.read_records(str(tmp_path / "batched.rec"), 7, 11)) == (plain.records() * 2)[7:11]


def test_an_empty_batch_has_no_records():
  batch = tfexample.serialize_batch({"input_ids": np.zeros((0, 8), np.int64)}, length_prefix=True)
  assert len(batch) == 0 and batch.records() == [] and batch.num_bytes == 0


def test_features_of_different_batch_sizes_are_refused():
  with pytest.raises(ValueError, match="different batch sizes"):
    tfexample.serialize_batch({"a": np.zeros((2, 3)), "b": np.zeros((3, 3))})
