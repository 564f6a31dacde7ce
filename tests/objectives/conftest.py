"""The batch the objective tests feed their models."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.data import masking

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
# The vocab size of the tests' encoder configs.
VOCAB_SIZE = 40


@pytest.fixture
def make_batch():
  """make_batch(seed=0): four `[CLS] ... [SEP]` rows of 12 random ids, the last one padded after 8 tokens
  (so that losses must skip padding), masked at rate 0.3 (several predictions per row) by the input
  pipeline's masking, with `seed` for the ids and the masks."""
  def make(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(len(SPECIAL), VOCAB_SIZE, size=(4, 12)).astype(np.int32)
    ids[:, 0], ids[:, -1] = SPECIAL["[CLS]"], SPECIAL["[SEP]"]
    ids[3, 8:] = SPECIAL["[PAD]"]
    ids[3, 7] = SPECIAL["[SEP]"]
    mask = (ids != SPECIAL["[PAD]"]).astype(np.int32)
    batch = {"input_ids": tf.constant(ids), "input_mask": tf.constant(mask), "segment_ids": tf.zeros_like(ids)}
    batch.update(masking.mask_tokens(batch["input_ids"], batch["input_mask"], masking.MaskingConfig(mask_rate=0.3),
                                     SPECIAL, VOCAB_SIZE, seed=seed))
    return batch
  return make


@pytest.fixture
def outputs_under_mixed_bfloat16():
  """outputs_under_mixed_bfloat16(build_model, batch): builds and calls `build_model()` under the
  mixed_bfloat16 policy (float32 restored after), checks that its discriminator computes in bfloat16 and
  that every loss and metric it returns is a finite float32."""
  def run(build_model, batch):
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
      model = build_model()
      outputs = model(batch, training=True)
    finally:
      tf.keras.mixed_precision.set_global_policy("float32")
    assert model.discriminator.transformer_layers[0].compute_dtype == "bfloat16"
    for name, value in outputs.items():
      assert value.dtype == tf.float32, name
      assert np.isfinite(value.numpy()), name
    return outputs
  return run
