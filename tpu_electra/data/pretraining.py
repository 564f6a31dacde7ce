"""The pretraining input pipeline: TFRecord shards -> shuffled, dynamically masked batches."""
from typing import Optional

import gin
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking


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


@gin.configurable(denylist=["input_context"])
def pretraining_dataset(data_dir: str = gin.REQUIRED,
                        global_batch_size: int = gin.REQUIRED,
                        seq_length: int = gin.REQUIRED,
                        input_context: Optional[tf.distribute.InputContext] = None,
                        masking_config: Optional[masking.MaskingConfig] = None,
                        is_training: bool = True,
                        shuffle_buffer_size: int = 10000,
                        cycle_length: int = 8,
                        seed: Optional[int] = None) -> tf.data.Dataset:
  """Batches of masked examples for one input pipeline (one host) of a distributed run.

  Each host reads a disjoint subset of the shards when there are at least as many shards as
  input pipelines, and a disjoint subset of examples otherwise. Masking happens here, per batch,
  so every epoch sees new masks (dynamic masking, as in RoBERTa / ELECTRA), unless the data was
  masked ahead of time (its manifest says max_predictions_per_seq > 0): then the stored masks are
  used as they are (static masking, as in BERT / TEAMS).
  """
  manifest = manifest_lib.read_manifest(data_dir)
  manifest_lib.check_compatible(manifest, data_dir, vocab_size=None, seq_length=seq_length)
  masking_config = masking_config or masking.MaskingConfig()
  batch_size = global_batch_size
  num_pipelines, pipeline_id = 1, 0
  if input_context is not None:
    batch_size = input_context.get_per_replica_batch_size(global_batch_size)
    num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id

  files = tf.data.Dataset.from_tensor_slices(manifest.shard_paths(data_dir))
  shard_by_file = len(manifest.shards) >= num_pipelines
  if shard_by_file and num_pipelines > 1:
    files = files.shard(num_pipelines, pipeline_id)
  if is_training:
    files = files.shuffle(len(manifest.shards), seed=seed, reshuffle_each_iteration=True).repeat()
  dataset = files.interleave(
      tf.data.TFRecordDataset, cycle_length=cycle_length, num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=seed is not None)
  if not shard_by_file and num_pipelines > 1:
    dataset = dataset.shard(num_pipelines, pipeline_id)
  if is_training:
    dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
  dataset = dataset.batch(batch_size, drop_remainder=is_training)
  scalar_features = tuple(manifest.scalar_features)
  static_predictions = manifest.max_predictions_per_seq
  dataset = dataset.map(lambda records: parse_example(records, seq_length, scalar_features, static_predictions),
                        num_parallel_calls=tf.data.AUTOTUNE)
  if static_predictions:
    return dataset.prefetch(tf.data.AUTOTUNE)

  special_ids = dict(manifest.special_token_ids)
  vocab_size = manifest.vocab_size

  def add_masks(features):
    features.update(masking.mask_tokens(
        features["input_ids"], features["input_mask"], masking_config, special_ids, vocab_size, seed=seed))
    return features

  dataset = dataset.map(add_masks, num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
  return dataset.prefetch(tf.data.AUTOTUNE)
