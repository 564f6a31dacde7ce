"""What every pretraining objective shares."""
import tpu_electra  # noqa: F401
import tensorflow as tf


# The entry that an objective with replaced-token detection adds to its outputs when called with
# with_detection=True (held-out evaluation): per-token "scores" (log-odds of "replaced"), "labels"
# (1 = replaced) and "weights" (0 for padding), for metrics over a whole evaluation set (exact AUC).
DETECTION = "detection"


class PretrainingObjective(tf.keras.Model):
  """A Keras model whose call(batch, training) returns a dict of scalar losses and metrics.

  The dict has a "loss" entry (what is minimized); every other entry is logged. Every subclass
  has an `encoder` property: the network that fine-tuning and export load from the checkpoint.
  Randomness in a call (sampling) comes from the batch's `noise_seed` when it has one (see
  tpu_electra.data.pretraining), so a step's draws are a pure function of the run's seed and step.
  """

  def __init__(self, name: str):
    # Batches hold float32 weights and int ids: Keras must not cast them to a bfloat16/float16
    # compute dtype under a mixed-precision policy (losses and sampling stay float32).
    super().__init__(name=name, autocast=False)

