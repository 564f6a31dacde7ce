"""What every pretraining objective shares."""
import tpu_electra  # noqa: F401
import tensorflow as tf


class PretrainingObjective(tf.keras.Model):
  """A Keras model whose call(batch, training) returns a dict of scalar losses and metrics.

  The dict has a "loss" entry (what is minimized); every other entry is logged. Every subclass
  has an `encoder` property: the network that fine-tuning and export load from the checkpoint.
  """

  def __init__(self, name: str):
    # Batches hold float32 weights and int ids: Keras must not cast them to a bfloat16/float16
    # compute dtype under a mixed-precision policy (losses and sampling stay float32).
    super().__init__(name=name, autocast=False)

