"""The train loop: resume, NaN guard, gradient accumulation, checkpoints, and learning."""
import glob
import logging
import os

import numpy as np
import pytest

import tpu_electra  # noqa: F401
from tpu_electra import fileio
import tensorflow as tf

from tpu_electra.data import pretraining
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives.electra import Electra
from tpu_electra.training import optimization, seeding, trainer


class LinearRegression(tf.keras.Model):
  """loss = mean((x·w + b - y)^2); small enough that each test traces in well under a second."""

  def __init__(self):
    super().__init__()
    self.dense = tf.keras.layers.Dense(1, kernel_initializer="zeros")

  def call(self, batch, training=None):
    prediction = tf.squeeze(self.dense(batch["x"]), -1)
    loss = tf.reduce_mean(tf.square(prediction - batch["y"]))
    return {"loss": loss, "mean_prediction": tf.reduce_mean(prediction)}


def _regression_data(num=64, poison_from=None, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num, 3)).astype(np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
  if poison_from is not None:
    y[poison_from:] = np.nan
  return x, y


def _dataset_fn(x, y, batch_size, repeat=True):
  def dataset_fn(input_context=None, start_step=0):
    per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    dataset = tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(per_replica, drop_remainder=True)
    return (dataset.repeat() if repeat else dataset).skip(start_step)
  return dataset_fn


def _train_regression(model_dir, train_steps, x, y, model=None, optimizer=None, **kwargs):
  strategy = tf.distribute.get_strategy()
  model = model or LinearRegression()
  optimizer = optimizer or optimization.create_optimizer(name="adam", learning_rate=0.05, train_steps=100, warmup_steps=0)
  metrics = trainer.train(model, optimizer, _dataset_fn(x, y, 8), strategy, model_dir, train_steps, 8,
                          checkpoint_every=kwargs.pop("checkpoint_every", 2), steps_per_loop=kwargs.pop("steps_per_loop", 1),
                          log_every_secs=0.0, **kwargs)
  return model, optimizer, metrics


def test_resume_restores_step_counter_weights_and_optimizer_state(tmp_path, caplog):
  x, y = _regression_data()
  model, optimizer, _ = _train_regression(str(tmp_path), 4, x, y)
  slots = [optimizer.get_slot(v, "m").numpy() for v in model.trainable_variables]
  weights = [v.numpy() for v in model.trainable_variables]

  # Some entry points lower absl's verbosity when run in the same process; set it here.
  caplog.set_level(logging.INFO, logger="absl")
  restored, restored_optimizer, metrics = _train_regression(str(tmp_path), 4, x, y)
  assert metrics == {}  # nothing left to train
  assert int(restored_optimizer.iterations.numpy()) == 4
  for v, expected in zip(restored.trainable_variables, weights):
    np.testing.assert_array_equal(v.numpy(), expected)
  for v, expected in zip(restored.trainable_variables, slots):
    np.testing.assert_array_equal(restored_optimizer.get_slot(v, "m").numpy(), expected)
  assert any("Resuming from checkpoint" in r.getMessage() and "at step 4" in r.getMessage() for r in caplog.records)

  _, continued_optimizer, _ = _train_regression(str(tmp_path), 6, x, y)
  assert int(continued_optimizer.iterations.numpy()) == 6
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-6")


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  # Batches 0-2 train steps 1-3 (none is spent on building the variables), batch 3 (NaN targets) is step 4.
  x, y = _regression_data(num=64, poison_from=24)
  with pytest.raises(trainer.NonFiniteLossError, match="loss became nan between steps 3 and 4"):
    _train_regression(str(tmp_path), 10, x, y)
  latest = tf.train.latest_checkpoint(str(tmp_path))
  assert latest.endswith("ckpt-2")
  model = LinearRegression()
  model({"x": tf.zeros([1, 3]), "y": tf.zeros([1])})
  tf.train.Checkpoint(model=model).restore(latest).expect_partial()
  assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)


def test_accumulated_micro_batches_give_the_update_of_one_big_batch():
  x, y = _regression_data(num=32)
  strategy = tf.distribute.get_strategy()
  results = []
  for accumulation in (1, 4):
    model = LinearRegression()
    model.dense.build((None, 3))
    model.dense.kernel.assign(np.array([[0.1], [0.2], [0.3]], np.float32))
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
    loop = trainer.make_train_loop(model, optimizer, strategy, grad_accum_steps=accumulation)
    iterator = iter(tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(32))
    loop(iterator, tf.constant(1))
    results.append([v.numpy() for v in model.trainable_variables])
  for one_batch, accumulated in zip(*results):
    np.testing.assert_allclose(one_batch, accumulated, rtol=1e-5, atol=1e-7)


class DropoutRegression(LinearRegression):
  """LinearRegression with dropout on its inputs: each micro-batch's mask must follow its own noise seed."""

  def __init__(self):
    super().__init__()
    self.dropout = tf.keras.layers.Dropout(0.5)

  def call(self, batch, training=None):
    return super().call({"x": self.dropout(batch["x"], training=training), "y": batch["y"]}, training)


def test_accumulated_micro_batches_draw_dropout_from_their_own_noise_seeds():
  x, y = _regression_data(num=32)
  noise_seed = np.stack([np.arange(32) // 8, np.full(32, 7)], axis=1).astype(np.int64)  # [i, 7] in micro-batch i
  batch = {"x": x, "y": y, pretraining.NOISE_SEED: noise_seed}
  kernel = np.array([[0.1], [0.2], [0.3]], np.float32)

  def new_model():
    model = DropoutRegression()
    model.dense.build((None, 3))
    model.dense.kernel.assign(kernel)
    assert seeding.seed_dropout_per_step(model) == 1
    return model

  model = new_model()
  loop = trainer.make_train_loop(model, tf.keras.optimizers.SGD(learning_rate=0.1), tf.distribute.get_strategy(),
                                 grad_accum_steps=4)
  outputs = loop(iter(tf.data.Dataset.from_tensors(batch)), tf.constant(1))

  # By hand: each micro-batch of 8 rows under its own first row's noise seed, gradients averaged.
  reference = new_model()
  grads, losses = [], []
  for i in range(4):
    micro = {k: tf.constant(v[8 * i:8 * (i + 1)]) for k, v in batch.items()}
    with tf.GradientTape() as tape, seeding.dropout_seed(pretraining.batch_noise_seed(micro)):
      loss = reference(micro, training=True)["loss"]
    grads.append(tape.gradient(loss, reference.trainable_variables))
    losses.append(float(loss))
  for v, g in zip(reference.trainable_variables, zip(*grads)):
    v.assign_sub(0.1 * tf.add_n(list(g)) / 4)
  for got, want in zip(model.trainable_variables, reference.trainable_variables):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
  assert float(outputs["loss"]) == pytest.approx(np.mean(losses), rel=1e-6)
  assert len(set(losses)) == 4  # the four masks differ


def test_accumulation_on_an_objective_applies_the_mean_of_its_micro_batch_gradients(token_data_dir):
  # Electra: embedding gradients come as IndexedSlices, and sampling and dropout draw from the noise seed.
  config = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                         embedding_size=8, max_position_embeddings=32)
  dataset = pretraining.pretraining_dataset(token_data_dir, 8, 32, seed=3)
  batch = next(iter(dataset))
  strategy = tf.distribute.get_strategy()

  def new_model():
    tf.keras.utils.set_random_seed(0)
    model = Electra(config, generator_fraction=0.5)
    model(batch, training=False)
    seeding.seed_dropout_per_step(model)
    return model

  model = new_model()
  loop = trainer.make_train_loop(model, tf.keras.optimizers.SGD(learning_rate=0.1), strategy, grad_accum_steps=2)
  outputs = loop(iter(tf.data.Dataset.from_tensors(batch)), tf.constant(1))

  reference = new_model()
  grads = []
  for i in range(2):
    micro = {k: v[4 * i:4 * (i + 1)] for k, v in batch.items()}
    with tf.GradientTape() as tape, seeding.dropout_seed(pretraining.batch_noise_seed(micro)):
      loss = reference(micro, training=True)["loss"]
    grads.append([tf.convert_to_tensor(g) if g is not None else None
                  for g in tape.gradient(loss, reference.trainable_variables)])
  updated = 0
  for v, (a, b) in zip(reference.trainable_variables, zip(*grads)):
    if a is not None:
      v.assign_sub(0.1 * (a + b) / 2)
      updated += 1
  assert updated > 0 and np.isfinite(float(outputs["loss"]))
  for got, want in zip(model.trainable_variables, reference.trainable_variables):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6, err_msg=got.name)


def _graph_size(train_loop):
  """Nodes of train_loop's graph and of every function it calls (the step, the accumulation loop's body)."""
  spec = {"x": tf.TensorSpec([16, 3], tf.float32), "y": tf.TensorSpec([16], tf.float32)}
  iterator = iter(tf.data.Dataset.from_tensors({k: tf.zeros(s.shape, s.dtype) for k, s in spec.items()}).repeat())
  graph_def = train_loop.get_concrete_function(iterator, tf.TensorSpec([], tf.int32)).graph.as_graph_def()
  return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def test_the_graph_does_not_grow_with_the_number_of_micro_batches():
  sizes = {}
  for accumulation in (1, 2, 8):
    model = LinearRegression()
    model.dense.build((None, 3))
    sizes[accumulation] = _graph_size(trainer.make_train_loop(
        model, tf.keras.optimizers.SGD(learning_rate=0.1), tf.distribute.get_strategy(), grad_accum_steps=accumulation))
  # Python-unrolled micro-batches gave 112 / 163 / 397 nodes for k = 1 / 2 / 8; the graph loop: 112 / 166 / 166.
  assert sizes[2] == sizes[8], sizes
  assert sizes[2] < 2 * sizes[1], sizes


def test_checkpoints_summaries_and_operative_config_are_written(tmp_path):
  x, y = _regression_data()
  _train_regression(str(tmp_path), 6, x, y, checkpoint_every=2, keep_checkpoint_max=2)
  names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "ckpt-*.index")))
  assert names == ["ckpt-4.index", "ckpt-6.index"]
  assert glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
  assert os.path.exists(tmp_path / trainer.OPERATIVE_CONFIG_NAME)
  assert not glob.glob(str(tmp_path / "*.tmp"))


def test_electra_loss_falls_on_a_repeated_batch(token_data_dir):
  tf.keras.utils.set_random_seed(0)  # initial weights and samples: a reproducible run
  config = EncoderConfig(vocab_size=60, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         embedding_size=16, max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0)
  dataset = pretraining.pretraining_dataset(token_data_dir, 16, 32, seed=1)
  batch = next(iter(dataset))
  model = Electra(config)
  optimizer = optimization.create_optimizer(name="adam", learning_rate=3e-3, train_steps=1000, warmup_steps=0)
  strategy = tf.distribute.get_strategy()
  trainer.build_variables(model, optimizer, strategy, dataset.element_spec)
  loop = trainer.make_train_loop(model, optimizer, strategy)
  iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
  first = loop(iterator, tf.constant(1))
  loop(iterator, tf.constant(40))
  last = loop(iterator, tf.constant(5))
  # Memorizing one batch: the masked-LM loss falls well below its ~log(vocab) start.
  assert float(last["mlm_loss"]) < 0.8 * float(first["mlm_loss"])
  assert float(last["loss"]) < float(first["loss"])
  assert 0.0 <= float(last["discriminator_accuracy"]) <= 1.0
  assert "discriminator_auc" not in last  # An exact AUC sorts every token: evaluation computes it, not the step.


def test_xla_compiled_step_gives_the_same_update():
  x, y = _regression_data(num=16)
  strategy = tf.distribute.get_strategy()
  results = []
  for jit_compile, accumulation in ((False, 1), (True, 1), (True, 2)):
    model = LinearRegression()
    model.dense.build((None, 3))
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
    loop = trainer.make_train_loop(model, optimizer, strategy, jit_compile=jit_compile, grad_accum_steps=accumulation)
    loop(iter(tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(8).repeat()), tf.constant(2))
    results.append([v.numpy() for v in model.trainable_variables])
  for plain, compiled, accumulated in zip(*results):
    np.testing.assert_allclose(plain, compiled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain, accumulated, rtol=1e-5, atol=1e-6)


def test_evaluator_runs_every_eval_every_steps_and_at_the_end_and_writes_eval_scalars(tmp_path):
  x, y = _regression_data()
  calls = []

  def evaluator():
    calls.append(True)
    return {"eval_loss": float(len(calls))}

  _, _, metrics = _train_regression(str(tmp_path), 7, x, y, evaluator=evaluator, eval_every=3, steps_per_loop=5)
  assert len(calls) == 3  # Steps 3, 6 and 7.
  assert metrics["eval/eval_loss"] == 3.0
  events = glob.glob(str(tmp_path / trainer.EVAL_SUMMARY_DIR / "events.out.tfevents.*"))
  assert events
  steps = [e.step for e in tf.compat.v1.train.summary_iterator(events[0])
           for v in e.summary.value if v.tag == "eval_loss"]
  assert steps == [3, 6, 7]


def test_a_resumed_run_reads_the_batches_an_uninterrupted_run_reads(tmp_path):
  # Each batch of distinct targets moves the weights differently: a replayed or skipped batch shows.
  x, y = _regression_data(num=64)
  uninterrupted, _, _ = _train_regression(str(tmp_path / "a"), 6, x, y)
  _train_regression(str(tmp_path / "b"), 2, x, y)
  _train_regression(str(tmp_path / "b"), 4, x, y)
  resumed, _, _ = _train_regression(str(tmp_path / "b"), 6, x, y)
  for a, b in zip(uninterrupted.trainable_variables, resumed.trainable_variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_an_unwritable_model_dir_fails_in_one_line(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(fileio.OutputPathError, match="cannot write to --model_dir=") as error:
    fileio.make_output_dir(str(blocker / "model"))
  assert "\n" not in str(error.value)


def test_an_update_that_overflows_the_weights_is_never_saved(tmp_path):
  # The step's loss is computed before its update: finite, while the update makes the weights inf.
  x, y = _regression_data(num=64)
  with pytest.raises(trainer.NonFiniteLossError, match="the weights or optimizer state after step 1 are not finite"):
    _train_regression(str(tmp_path), 4, x, y, optimizer=tf.keras.optimizers.legacy.SGD(learning_rate=3e38),
                      checkpoint_every=1)
  assert tf.train.latest_checkpoint(str(tmp_path)) is None


def test_a_checkpoint_whose_weights_give_a_non_finite_loss_is_set_aside(tmp_path):
  # Step 1 at lr 1e19 gives finite weights of ~1e19 whose squared error overflows at step 2: ckpt-1
  # would resume into NaN at once; ckpt-1 is renamed, and the latest checkpoint is none.
  x, y = _regression_data(num=64)
  with pytest.raises(trainer.NonFiniteLossError, match="between steps 1 and 2; .* last good checkpoint: none"):
    _train_regression(str(tmp_path), 4, x, y, optimizer=tf.keras.optimizers.legacy.SGD(learning_rate=1e19),
                      checkpoint_every=1)
  assert tf.train.latest_checkpoint(str(tmp_path)) is None
  assert os.path.exists(os.path.join(str(tmp_path), "nonfinite-ckpt-1.index"))


def test_a_checkpoint_before_a_good_first_step_stays_the_last_good_one(tmp_path):
  # Batches 0-2 train steps 1-3, batch 3 has NaN targets: the loss at ckpt-3's weights on batch 3 is
  # NaN, but so would any weights' be; ckpt-2's first step (batch 2) was finite. With a loop of two
  # steps from 2, the failing call's first step is finite: ckpt-2 is good and stays.
  x, y = _regression_data(num=64, poison_from=24)
  with pytest.raises(trainer.NonFiniteLossError, match="between steps 2 and 4; .* last good checkpoint: .*ckpt-2"):
    _train_regression(str(tmp_path), 10, x, y, steps_per_loop=2)
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")


def test_a_full_disk_at_a_checkpoint_save_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch):
  x, y = _regression_data()
  original = tf.train.CheckpointManager.save

  def save(manager, checkpoint_number=None, **kwargs):
    if checkpoint_number == 4:
      # What a save that runs out of space leaves: a part of its temporary directory, then the error.
      os.makedirs(os.path.join(str(tmp_path), "ckpt-4_temp"))
      raise tf.errors.ResourceExhaustedError(
          None, None, f"{tmp_path}/ckpt-4_temp/part-00000-of-00001.data-00000-of-00001.tempstate1; No space left on "
          "device\n\tFailed to write")
    return original(manager, checkpoint_number=checkpoint_number, **kwargs)

  monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
  with pytest.raises(trainer.CheckpointSaveError) as raised:
    _train_regression(str(tmp_path), 6, x, y)
  message = str(raised.value).splitlines()[0]  # Gin appends where it was called; the CLI prints this line.
  assert message.startswith(f"cannot write checkpoint {tmp_path}/ckpt-4 ({tmp_path}/ckpt-4_temp/part-00000-of-00001"
                            ".data-00000-of-00001.tempstate1; No space left on device); training stopped at step 4, "
                            f"last checkpoint written: {tmp_path}/ckpt-2 (intact)"), message
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
  assert not os.path.exists(os.path.join(str(tmp_path), "ckpt-4_temp"))


def test_a_save_killed_midway_leaves_a_temporary_directory_that_the_next_start_removes(tmp_path):
  x, y = _regression_data()
  _train_regression(str(tmp_path), 2, x, y)
  leftover = os.path.join(str(tmp_path), "ckpt-4_temp")
  os.makedirs(leftover)
  with open(os.path.join(leftover, "part-00000-of-00001.data-00000-of-00001.tempstate7"), "wb") as f:
    f.write(b"\0" * 64)
  _train_regression(str(tmp_path), 4, x, y)
  assert not os.path.exists(leftover)
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")


class DropoutRegression(LinearRegression):
  """The regression behind Keras' stateful dropout, as fine-tuning's batches (no noise seed) draw it."""

  def __init__(self):
    super().__init__()
    self.dropout = tf.keras.layers.Dropout(0.5)

  def call(self, batch, training=None):
    return super().call(dict(batch, x=self.dropout(batch["x"], training=training)), training=training)


def _run_loop_calls(x, y, steps_per_loop, max_loop_secs):
  """run_loop over 9 steps of the regression with dropout, saving at 4: (the steps of each call, the
  curve, the weights)."""
  tf.keras.utils.set_random_seed(0)
  model, strategy = DropoutRegression(), tf.distribute.get_strategy()
  optimizer = tf.keras.optimizers.legacy.SGD(learning_rate=0.05)
  dataset = _dataset_fn(x, y, 8)()
  trainer.build_variables(model, optimizer, strategy, dataset.element_spec)
  loop = trainer.make_train_loop(model, optimizer, strategy)
  calls = []

  def counted(iterator, num_steps):
    calls.append(int(num_steps))
    return loop(iterator, num_steps)

  result = trainer.run_loop(counted, iter(dataset), optimizer, start_step=0, train_steps=9, global_batch_size=8,
                            steps_per_loop=steps_per_loop, log_every_secs=0.0, max_loop_secs=max_loop_secs,
                            save=lambda step: None, save_at=trainer.EventSteps(steps=[4]), record_curve=True)
  return calls, result.curve, [v.numpy() for v in model.trainable_variables]


def test_the_first_call_is_one_step_and_a_time_cap_changes_neither_the_curve_nor_the_weights_even_with_dropout():
  x, y = _regression_data()
  whole_calls, whole_curve, whole_weights = _run_loop_calls(x, y, steps_per_loop=3, max_loop_secs=None)
  # The first call traces: one step, so that its line comes early; then stretches up to the save point.
  assert whole_calls == [1, 2, 1, 3, 2]
  # A cap no step fits in: every later call is one step.
  capped_calls, capped_curve, capped_weights = _run_loop_calls(x, y, steps_per_loop=3, max_loop_secs=1e-9)
  assert capped_calls == [1] * 9
  # The curve's points are the stretches', bit for bit.
  assert [p["step"] for p in whole_curve] == [3, 4, 7, 9]
  assert capped_curve == whole_curve
  for capped, whole in zip(capped_weights, whole_weights):
    np.testing.assert_array_equal(capped, whole)


def test_a_train_loop_per_model_gives_no_retracing_warning():
  # Fine-tuning --seeds=5 builds a model and a train loop per seed, each traced once.
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  tf_logger = logging.getLogger("tensorflow")
  tf_logger.addHandler(handler)
  try:
    x, y = _regression_data()
    for _ in range(7):
      model, strategy = LinearRegression(), tf.distribute.get_strategy()
      optimizer = tf.keras.optimizers.legacy.SGD(learning_rate=0.05)
      dataset = _dataset_fn(x, y, 8)()
      trainer.build_variables(model, optimizer, strategy, dataset.element_spec)
      trainer.make_train_loop(model, optimizer, strategy)(iter(dataset), tf.constant(1))
  finally:
    tf_logger.removeHandler(handler)
  assert not [r for r in records if "retracing" in r.getMessage()]
