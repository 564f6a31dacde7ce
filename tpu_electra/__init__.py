"""tpu_electra: TPU-first pretraining and fine-tuning of compute-efficient text encoders.

tf-models-official is written against Keras 2 (tf_keras). Setting TF_USE_LEGACY_KERAS before the
first TensorFlow import makes `tf.keras` be tf_keras too, so mixed-precision policies and layers
from both sides agree. Users never have to set it themselves: importing any `tpu_electra` module
runs this file first.

Importing the package stays cheap: it never imports TensorFlow itself. On a machine without a GPU,
TensorFlow's CUDA build logs one harmless line at its first device probe ("failed call to cuInit",
README: "Pretraining"); it is left as TensorFlow prints it.
"""
import logging
import os

from absl import logging as absl_logging

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


class _DropSaverTiming(logging.Filter):
  """Drops TensorFlow's "Sharding callback duration: N microseconds", logged at every checkpoint save."""

  def filter(self, record):
    return not (record.msg == "Sharding callback duration: %s microseconds"
                and record.pathname.endswith("functional_saver.py"))


# TensorFlow's checkpoint saver logs through absl (pure Python, cheap to import). The logger must
# come from absl itself: a plain logging.getLogger("absl") made first would not be absl's.
absl_logging.get_absl_logger().addFilter(_DropSaverTiming())
