"""tpu_electra: TPU-first pretraining and fine-tuning of compute-efficient text encoders.

tf-models-official is written against Keras 2 (tf_keras). Setting TF_USE_LEGACY_KERAS before the
first TensorFlow import makes `tf.keras` be tf_keras too, so mixed-precision policies and layers
from both sides agree. Users never have to set it themselves.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
