"""Seeds: one integer (the SEED macro) decides everything random in a run.

- Weight initialization and anything else drawn from the global generators (Python, NumPy,
  TensorFlow) follows `seed_everything(seed)`, called before a model is built.
- Everything drawn while training is a pure function of the seed and the step, so a run killed at
  any point and restarted from its last checkpoint draws what the uninterrupted run draws, with no
  random-generator state to save: the input pipeline derives masks and a per-example `noise_seed`
  from (seed, pipeline, batch number) (tpu_electra.data.pretraining); objectives sample with the
  batch's noise seed; dropout draws from the same seed through `dropout_seed`, which the train step
  opens around the forward pass.
"""
import contextlib
import threading
from typing import Iterator

import tensorflow as tf
import tf_keras

_RANDOM_GENERATOR = tf_keras.src.backend.RandomGenerator
# Folded into a step's seed before a layer's number: objectives fold small numbers into the same
# seed for their own draws, and dropout must not share their streams.
_DROPOUT_STREAM = 0x5EED
_active = threading.local()


def seed_everything(seed: int) -> None:
  """Seeds Python's, NumPy's and TensorFlow's global generators (weights are drawn from them)."""
  tf.keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def dropout_seed(seed) -> Iterator[None]:
  """While open, the dropout of models passed to `seed_dropout_per_step` draws from `seed` ([2]).

  It is read when the forward pass is traced, in the thread that traces it (a replica's thread under
  MirroredStrategy), so each replica's dropout follows its own batch's seed.
  """
  previous = getattr(_active, "seed", None)
  _active.seed = seed
  try:
    yield
  finally:
    _active.seed = previous


class _StepSeededDropout(_RANDOM_GENERATOR):
  """A Keras dropout generator that draws stateless masks from the open `dropout_seed`.

  Layer `index` folds its number into the seed, so no two dropout layers share a mask. Outside a
  `dropout_seed` block it falls back to Keras' stateful draws (what an unseeded call does anyway).
  """

  def __init__(self, index: int):
    super().__init__(seed=None, rng_type=_RANDOM_GENERATOR.RNG_LEGACY_STATEFUL)
    self._index = index

  def dropout(self, inputs, rate, noise_shape=None):
    seed = getattr(_active, "seed", None)
    if seed is None:
      return super().dropout(inputs, rate, noise_shape=noise_shape)
    fold_in = tf.random.experimental.stateless_fold_in
    layer_seed = fold_in(fold_in(tf.cast(seed, tf.int64), _DROPOUT_STREAM), self._index)
    return tf.nn.experimental.stateless_dropout(inputs, rate=rate, seed=layer_seed, noise_shape=noise_shape)


def seed_dropout_per_step(model: tf.Module) -> int:
  """Makes every Keras Dropout layer in `model` draw from the open `dropout_seed`; returns how many.

  tf-models-official's transformer layers build their Dropout layers inside; Keras gives each a
  generator whose state lives outside any checkpoint, so a resumed run would replay the dropout
  masks of its first steps. Layers are numbered in the model's (deterministic) submodule order.
  """
  count = 0
  for module in model.submodules:
    if isinstance(module, tf.keras.layers.Dropout):
      module._random_generator = _StepSeededDropout(count)  # pylint: disable=protected-access
      count += 1
  return count
