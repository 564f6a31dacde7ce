"""A fine-tuned model's outputs over a split's rows, in whole batches under the strategy and in row order.

Every step sees one of a few static shapes (TPU): rows are padded to whole batches (or, with length
buckets, batched by bucket length), and the padding rows, marked INDEX = -1, are dropped again
before the outputs are scored.
"""
import math
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import task_base

INDEX = "example_index"


def bucket_lengths(split: feature_streams.SplitFeatures, length_buckets: bool) -> Optional[List[int]]:
  """The bucket lengths of `split`'s batches (`feature_streams.bucket_lengths`); None: every batch at the
  split's full length (`length_buckets` off, or a split too short for more than one bucket)."""
  lengths = feature_streams.bucket_lengths(split.record_format.seq_length)
  return lengths if length_buckets and len(lengths) > 1 else None


def pad_rows(arrays: task_base.Arrays, multiple: int) -> task_base.Arrays:
  """Appends copies of row 0 so the row count divides `multiple`; INDEX is -1 on the copies."""
  num_rows = len(arrays["input_word_ids"])
  padded_rows = int(math.ceil(num_rows / multiple)) * multiple
  extra = padded_rows - num_rows
  out = {name: np.concatenate([value, np.repeat(value[:1], extra, axis=0)]) for name, value in arrays.items()}
  out[INDEX] = np.concatenate([np.arange(num_rows), -np.ones(extra, np.int64)]).astype(np.int32)
  return out


def _pad_positions(value: tf.Tensor, length: int) -> tf.Tensor:
  """An output with a position axis of a length-bucketed batch ([B, bucket length, ...]; the length is
  unknown when traced, see `Predictor`) padded to the split's `length`. The positions added are
  padding, which no task's scoring reads; they hold the dtype's lowest value, so that no argmax or
  softmax over positions would pick them either. Any other output is returned as it is."""
  if value.shape.rank is None or value.shape.rank < 2 or value.shape[1] is not None:
    return value
  padding = [[0, 0], [0, length - tf.shape(value)[1]]] + [[0, 0]] * (value.shape.rank - 2)
  padded = tf.pad(value, padding, constant_values=value.dtype.min)
  return tf.ensure_shape(padded, value.shape[:1].concatenate([length]).concatenate(value.shape[2:]))


class Predictor:
  """Runs `model.task_outputs` over a split's rows in whole batches under the strategy; returns rows in order.

  The split is streamed from its shards (padded to whole batches with rows marked INDEX = -1,
  dropped again before scoring), or given as in-memory arrays (tests). With `length_buckets` a
  split is read in batches of one bucket length each (`feature_streams.evaluation_dataset`): every
  row once, scored in row order as without. The step is traced once per element spec, in which a
  bucketed batch's length is unknown: the outputs whose position axis has that unknown length are
  padded back to the split's length (`_pad_positions`), so that the rows of every batch line up.
  """

  def __init__(self, model, strategy: tf.distribute.Strategy, global_batch_size: int, length_buckets: bool = False):
    self.model = model
    self.strategy = strategy
    self.global_batch_size = global_batch_size
    self.length_buckets = length_buckets
    self._steps: Dict[Tuple[str, int], Callable] = {}

  def _step(self, element_spec, length: int) -> Callable:
    key = (repr(element_spec), length)
    if key not in self._steps:
      def replica_step(batch):
        outputs = {name: _pad_positions(value, length)
                   for name, value in self.model.task_outputs(batch, training=False).items()}
        outputs[INDEX] = batch[INDEX]
        return outputs

      def step(batch):
        per_replica = self.strategy.run(replica_step, args=(batch,))
        return tf.nest.map_structure(lambda t: self.strategy.gather(t, axis=0), per_replica)

      self._steps[key] = tf.function(step, input_signature=[element_spec])
    return self._steps[key]

  def __call__(self, features) -> task_base.Arrays:
    if isinstance(features, feature_streams.SplitFeatures):
      length = features.record_format.seq_length
      dataset = feature_streams.evaluation_dataset(features, self.global_batch_size, INDEX,
                                                 bucket_lengths(features, self.length_buckets))
    else:
      length = features["input_word_ids"].shape[-1]
      padded = pad_rows(features, self.global_batch_size)
      dataset = tf.data.Dataset.from_tensor_slices(padded).batch(self.global_batch_size, drop_remainder=True)
    distributed = self.strategy.experimental_distribute_dataset(dataset)
    step = self._step(distributed.element_spec, length)
    chunks: Dict[str, List[np.ndarray]] = {}
    for batch in distributed:
      for name, value in step(batch).items():
        chunks.setdefault(name, []).append(value.numpy())
    outputs = {name: np.concatenate(values) for name, values in chunks.items()}
    index = outputs.pop(INDEX)
    keep = index >= 0
    order = np.argsort(index[keep], kind="stable")
    return {name: value[keep][order] for name, value in outputs.items()}
