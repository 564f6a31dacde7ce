"""tf.distribute strategy by name: cpu (default), gpu, multi_worker, tpu."""
from typing import Optional

import gin
from absl import logging
import tensorflow as tf

STRATEGIES = ("cpu", "gpu", "multi_worker", "tpu")
# Keras mixed-precision policies by short name (the benchmarks' --precision): bfloat16 on TPU, float16
# (with loss scaling) on GPU.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def set_precision(precision: str) -> None:
  """Sets the global Keras policy (one of PRECISIONS' values) that models built afterwards compute in."""
  if precision not in PRECISIONS.values():
    raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS.values())}")
  tf.keras.mixed_precision.set_global_policy(precision)


@gin.configurable
def get_strategy(name: str = "cpu", tpu: Optional[str] = None) -> tf.distribute.Strategy:
  """Returns the strategy to build and train the model under.

  - cpu: the default strategy (one device, no distribution).
  - gpu: MirroredStrategy over this host's GPUs.
  - multi_worker: MultiWorkerMirroredStrategy; each worker reads its role from TF_CONFIG.
  - tpu: TPUStrategy; `tpu` is the TPU name, a grpc:// address, or 'local' on a TPU VM.
  """
  if name == "cpu":
    return tf.distribute.get_strategy()
  if name == "gpu":
    if not tf.config.list_physical_devices("GPU"):
      raise RuntimeError("get_strategy.name = 'gpu' but TensorFlow sees no GPU; use 'cpu' or check the CUDA install")
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    if tpu is None:
      raise ValueError("get_strategy.name = 'tpu' needs get_strategy.tpu = '<tpu name, grpc:// address or local>'")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    if tpu not in ("", "local"):
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    logging.info("TPU %s: %s", tpu, resolver.cluster_spec().as_dict())
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
