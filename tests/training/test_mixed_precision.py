"""mixed_float16 with loss scaling: finite training steps, and gradients that match float32."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.data import masking
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import bert, electra
from tpu_electra.training import optimization, trainer

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
CONFIG = EncoderConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


@pytest.fixture
def policy():
  """Sets a global Keras policy for the test; float32 again afterwards, whatever happens."""
  yield tf.keras.mixed_precision.set_global_policy
  tf.keras.mixed_precision.set_global_policy("float32")


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, 40, size=(4, 12)).astype(np.int32)
  ids[:, 0], ids[:, -1] = 2, 3
  ids[3, 8:] = 0
  ids[3, 7] = 3
  batch = {"input_ids": tf.constant(ids), "input_mask": tf.constant((ids != 0).astype(np.int32)),
           "segment_ids": tf.zeros_like(ids)}
  batch.update(masking.mask_tokens(batch["input_ids"], batch["input_mask"], masking.MaskingConfig(mask_rate=0.3),
                                   SPECIAL, 40, seed=seed))
  return batch


def _bert(precision, policy, weights=None):
  """A BERT objective (no sampling, so its loss is a function of weights and batch) built under `precision`."""
  policy(precision)
  model = bert.Bert(CONFIG)
  model(_batch(), training=False)
  if weights is not None:
    model.set_weights(weights)
  policy("float32")
  return model


def test_mixed_float16_with_loss_scaling_trains_a_few_finite_steps(policy):
  tf.keras.utils.set_random_seed(0)
  policy("mixed_float16")
  model = electra.Electra(CONFIG, generator_fraction=0.5)
  optimizer = tf.keras.mixed_precision.LossScaleOptimizer(
      optimization.create_optimizer(name="adam", learning_rate=1e-3, train_steps=100, warmup_steps=0))
  batches = tf.data.Dataset.from_tensors(_batch()).repeat()
  strategy = tf.distribute.get_strategy()
  trainer.build_variables(model, optimizer, strategy, batches.element_spec)
  assert model.discriminator.transformer_layers[0].compute_dtype == "float16"
  before = [v.numpy() for v in model.trainable_variables]
  loop = trainer.make_train_loop(model, optimizer, strategy)
  iterator = iter(batches)

  losses, scales = [], [float(optimizer.loss_scale)]
  for _ in range(6):
    losses.append(float(loop(iterator, tf.constant(1))["loss"]))
    scales.append(float(optimizer.loss_scale))

  assert all(np.isfinite(losses)), losses
  # A step whose scaled float16 gradients overflow is skipped and halves the scale (the first few
  # here: the loss starts near 38, and the scale at 2^15); the others are applied.
  applied = sum(after >= before for before, after in zip(scales, scales[1:]))
  assert applied >= 2, scales
  assert scales[-1] >= 1.0
  after = [v.numpy() for v in model.trainable_variables]
  assert all(np.all(np.isfinite(v)) for v in after)
  assert sum(not np.array_equal(a, b) for a, b in zip(before, after)) > len(after) // 2


def _relative_errors(got, want):
  """||got - want|| / ||want|| per tensor, with ||want|| floored at 1e-6 of the global norm.

  The floor is for the attention key biases: softmax ignores a shift shared by all keys, so their
  exact gradient is 0, and both precisions return rounding noise (1e-14 and 1e-10 here).
  """
  floor = 1e-6 * np.sqrt(sum(np.sum(np.square(w, dtype=np.float64)) for w in want))
  return [float(np.linalg.norm(g - w) / max(np.linalg.norm(w), floor)) for g, w in zip(got, want)]


# float16 keeps 11 significant bits: each rounding is off by at most 2^-11 ≈ 5e-4 relative. The
# forward and backward pass of this 2-layer encoder round a few dozen times along each path,
# mostly with independent signs, which measures as 1e-3 to 5e-3 relative error per gradient
# tensor (the largest for the type embeddings, a sum over every token). 2e-2 leaves room for
# other machines' kernels, and is still far below what a broken scaling gives: a gradient left
# scaled is off by the loss scale (2^15), one unscaled twice by as much the other way, and one
# that underflowed to 0 is off by 1.
TOLERANCE = 2e-2


def test_unscaled_mixed_float16_gradients_match_float32(policy):
  tf.keras.utils.set_random_seed(1)
  reference = _bert("float32", policy)
  mixed = _bert("mixed_float16", policy, reference.get_weights())
  assert mixed.encoder.transformer_layers[0].compute_dtype == "float16"
  batch = _batch(seed=3)

  with tf.GradientTape() as tape:
    loss = reference(batch, training=True)["loss"]
  want = [g.numpy() for g in tape.gradient(loss, reference.trainable_variables)]

  optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.legacy.SGD(0.1))
  with tf.GradientTape() as tape:
    mixed_loss = mixed(batch, training=True)["loss"]
    scaled_loss = optimizer.get_scaled_loss(mixed_loss)
  scaled = tape.gradient(scaled_loss, mixed.trainable_variables)
  got = [g.numpy() for g in optimizer.get_unscaled_gradients(scaled)]

  assert float(optimizer.loss_scale) == 2.0 ** 15
  assert mixed_loss.dtype == tf.float32 and abs(float(mixed_loss) - float(loss)) < 1e-2 * float(loss)
  assert all(np.all(np.isfinite(g)) for g in got)
  errors = _relative_errors(got, want)
  assert max(errors) < TOLERANCE, sorted(zip(errors, [v.name for v in mixed.trainable_variables]))[-3:]


def test_a_mixed_float16_train_step_makes_the_float32_update(policy):
  # The train loop's own scaling and unscaling: one SGD step moves each weight by -lr * gradient.
  tf.keras.utils.set_random_seed(2)
  reference = _bert("float32", policy)
  start = reference.get_weights()
  mixed = _bert("mixed_float16", policy, start)
  batches = tf.data.Dataset.from_tensors(_batch(seed=4)).repeat()
  strategy = tf.distribute.get_strategy()
  steps = []
  for model, optimizer in [(reference, tf.keras.optimizers.legacy.SGD(1.0)),
                           (mixed, tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.legacy.SGD(1.0)))]:
    trainer.make_train_loop(model, optimizer, strategy)(iter(batches), tf.constant(1))
    if model is mixed:  # Applied, not skipped for overflow (which would halve the scale).
      assert float(optimizer.loss_scale) == 2.0 ** 15
    steps.append([w - s for w, s in zip(model.get_weights(), start)])
  float32_step, mixed_step = steps
  assert sum(np.linalg.norm(f) > 0 for f in float32_step) > len(float32_step) // 2
  errors = _relative_errors(mixed_step, float32_step)
  assert max(errors) < TOLERANCE, sorted(zip(errors, [v.name for v in mixed.trainable_variables]))[-3:]
