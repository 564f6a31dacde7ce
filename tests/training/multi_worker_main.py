"""One worker of the two-process MultiWorkerMirroredStrategy test (run by test_multi_worker.py).

argv: TF_CONFIG json, data dir, model dir, output .npz path. Trains a tiny ELECTRA a few steps and
saves the final weights so the test can compare the workers.
"""
import os
import sys

os.environ["TF_CONFIG"] = sys.argv[1]

import numpy as np  # pylint: disable=g-import-not-at-top

import tpu_electra  # noqa: F401  pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tpu_electra.data import pretraining  # pylint: disable=g-import-not-at-top
from tpu_electra.modeling import EncoderConfig  # pylint: disable=g-import-not-at-top
from tpu_electra.objectives.electra import Electra  # pylint: disable=g-import-not-at-top
from tpu_electra.training import optimization, strategy as strategy_lib, trainer  # pylint: disable=g-import-not-at-top


def main(data_dir, model_dir, output_path):
  strategy = strategy_lib.get_strategy("multi_worker")
  config = EncoderConfig(vocab_size=60, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         embedding_size=16, max_position_embeddings=32)
  with strategy.scope():
    model = Electra(config)
    optimizer = optimization.create_optimizer(name="adamw", learning_rate=1e-3, train_steps=6, warmup_steps=1)

  def dataset_fn(input_context, start_step):
    return pretraining.pretraining_dataset(data_dir, 8, 32, input_context=input_context, seed=0, start_step=start_step)

  trainer.train(model, optimizer, dataset_fn, strategy, model_dir, train_steps=6, global_batch_size=8,
                checkpoint_every=3, steps_per_loop=3, log_every_secs=0.0)
  np.savez(output_path, *[v.numpy() for v in model.trainable_variables], step=optimizer.iterations.numpy())


if __name__ == "__main__":
  main(*sys.argv[2:5])
