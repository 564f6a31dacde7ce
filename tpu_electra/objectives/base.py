"""What every pretraining objective shares."""
import tpu_electra  # noqa: F401
import tensorflow as tf


class PretrainingObjective(tf.keras.Model):
  """A Keras model whose call(batch, training) returns a dict of scalar losses and metrics.

  The dict has a "loss" entry (what is minimized); every other entry is logged. `encoder` is the
  network that fine-tuning and export load from the checkpoint.
  """

  def __init__(self, name: str):
    # Batches hold float32 weights and int ids: Keras must not cast them to a bfloat16/float16
    # compute dtype under a mixed-precision policy (losses and sampling stay float32).
    super().__init__(name=name, autocast=False)

  def build(self, input_shape=None):
    # Keras would otherwise trace `call` once more on placeholders just to build a subclassed
    # model; the sub-layers build themselves on first use, so that trace only costs time.
    self.built = True

  @property
  def encoder(self) -> tf.keras.Model:
    raise NotImplementedError(f"{type(self).__name__} must say which network is its encoder")
