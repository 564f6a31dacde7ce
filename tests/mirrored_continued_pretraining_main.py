"""Continued pretraining under MirroredStrategy over two logical CPUs (run by test_continued_pretraining.py).

argv: data dir, init run dir, model dir. A process of its own: logical devices must be set before
TensorFlow initializes. Prints one JSON line: replicas, the variables whose replica copies differ
from the init checkpoint at the start of training, the final step and loss.
"""
import json
import sys

import tpu_electra  # noqa: F401  pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import gin  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from tpu_electra import gin_utils, pretrainer  # pylint: disable=g-import-not-at-top
from tpu_electra import warm_start  # pylint: disable=g-import-not-at-top
from tpu_electra.training import strategy as strategy_lib, trainer  # pylint: disable=g-import-not-at-top


def main(data_dir, init_dir, model_dir):
  strategy_lib.get_strategy = lambda *args, **kwargs: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(init_dir))
  init = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
  report = {}
  real_train = trainer.train

  def train(model, optimizer, dataset_fn, strategy, *args, **kwargs):
    variables = warm_start.checkpoint_variables(encoder=model.encoder, model=model)
    report["replicas"] = strategy.num_replicas_in_sync
    report["compared"] = sum(key in init for key in variables)
    report["differ"] = sorted(key for key, variable in variables.items() if key in init and not all(
        np.array_equal(component.numpy(), init[key]) for component in getattr(variable, "values", [variable])))
    return real_train(model, optimizer, dataset_fn, strategy, *args, **kwargs)

  trainer.train = train
  gin_utils.parse(["smoke/electra.gin"], [
      f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "EVAL_BATCHES = 2",
      "TRAIN_STEPS = 2", "CHECKPOINT_EVERY = 2", "train.log_every_secs = 0.0", "train.steps_per_loop = 1",
      "EncoderConfig.hidden_size = 16", "EncoderConfig.intermediate_size = 32", "EncoderConfig.embedding_size = 8"])
  metrics = pretrainer.pretrain(model_dir=model_dir, init_checkpoint=init_dir)
  report["step"] = int(tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir)).get_tensor(
      "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"))
  report["loss"] = float(metrics["loss"])
  print(json.dumps(report))


if __name__ == "__main__":
  main(*sys.argv[1:4])
