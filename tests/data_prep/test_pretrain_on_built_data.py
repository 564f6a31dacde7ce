"""A SentencePiece vocab works end to end: data_prep builds the data, the pretraining entry point trains on it."""
import glob
import os

import gin
import numpy as np
import tensorflow as tf

from data_prep import build
from tpu_electra import gin_utils
from tpu_electra import pretrainer
from tpu_electra.data import pretraining


def test_sentencepiece_data_trains_electra_and_writes_checkpoints(tmp_path, text_corpus):
  data_dir = str(tmp_path / "data")
  manifest = build.build(build.BuildConfig(
      corpus=(f"text:{text_corpus}",), vocab="sentencepiece:60", do_lower_case=True, max_seq_length=32,
      output_dir=data_dir))
  assert manifest.vocab_type == "sentencepiece" and manifest.vocab_size == 60
  model_dir = str(tmp_path / "model")
  gin.clear_config()
  try:
    gin_utils.parse(["smoke/electra.gin"], [
        f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "TRAIN_STEPS = 2", "WARMUP_STEPS = 1",
        "CHECKPOINT_EVERY = 2", "train.steps_per_loop = 1"])
    metrics = pretrainer.pretrain(model_dir=model_dir)
  finally:
    gin.clear_config()
  assert glob.glob(os.path.join(model_dir, "ckpt-2.index"))
  assert np.isfinite(metrics["loss"])


def test_statically_masked_held_out_data_reaches_the_model_with_its_stored_masks(tmp_path, text_corpus,
                                                                                 wordpiece_vocab):
  data_dir = str(tmp_path / "data")
  # Half the text held out: enough held-out examples for a batch of 16.
  manifest = build.build(build.BuildConfig(
      corpus=(f"text:{text_corpus}",), vocab=wordpiece_vocab, do_lower_case=True, max_seq_length=32,
      output_dir=data_dir, static_masking=True, dupe_factor=2, held_out_fraction=0.5))
  assert manifest.max_predictions_per_seq == 4 and manifest.num_eval_examples >= 16
  batch = next(iter(pretraining.evaluation_dataset(data_dir=data_dir, global_batch_size=16, seq_length=32,
                                                   num_batches=1)))
  assert batch["masked_lm_positions"].shape == (16, 4) and batch["masked_lm_weights"].dtype.name == "float32"
  stored = pretraining.parse_example(
      next(iter(tf.data.TFRecordDataset(manifest.eval_shard_paths(data_dir)).batch(16))), 32, (), 4)
  for name in ("masked_input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
    np.testing.assert_array_equal(batch[name].numpy(), stored[name].numpy())
