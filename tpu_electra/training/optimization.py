"""Optimizers and learning-rate schedules, from official.modeling.optimization.

Schedule: linear warmup from 0 to the peak over `warmup_steps`, then linear decay from the peak
to `end_learning_rate` (0) over the remaining steps. Weight decay is never applied to layer-norm
parameters or biases; gradients are clipped to a global norm after cross-replica aggregation.
"""
import logging

from absl import logging as absl_logging
import gin
import tensorflow as tf
from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.configs import optimization_config

EXCLUDE_FROM_WEIGHT_DECAY = ["layer_norm", "LayerNorm", "bias"]


class _DropZeroLegacyClipNorm(logging.Filter):
  """Drops "AdamWeightDecay gradient_clip_norm=0.000000", which the legacy AdamW logs when built.

  Our AdamW optimizers (here and fine-tuning's layer-wise one) turn the legacy per-replica clip
  off and clip with `global_clipnorm` after cross-replica aggregation instead, so that line would
  say there is no clipping while there is. A non-zero legacy clip norm is still logged.
  """

  def filter(self, record):
    return not (record.msg == "AdamWeightDecay gradient_clip_norm=%f" and record.args
                and record.args[0] == 0.0)


absl_logging.get_absl_logger().addFilter(_DropZeroLegacyClipNorm())


@gin.configurable
def create_optimizer(name: str = "lamb", learning_rate: float = gin.REQUIRED, train_steps: int = gin.REQUIRED,
                     warmup_steps: int = 0, end_learning_rate: float = 0.0, weight_decay: float = 0.01,
                     epsilon: float = 1e-6, beta_1: float = 0.9, beta_2: float = 0.999,
                     clip_norm: float = 1.0) -> tf.keras.optimizers.Optimizer:
  """LAMB, AdamW or Adam (no decay) with warmup + linear decay."""
  if warmup_steps >= train_steps:
    raise ValueError(f"WARMUP_STEPS={warmup_steps} must be smaller than TRAIN_STEPS={train_steps}")
  factory = _factory(name, learning_rate, train_steps, warmup_steps, end_learning_rate, weight_decay,
                     epsilon, beta_1, beta_2, clip_norm)
  return factory.build_optimizer(factory.build_learning_rate())


def _factory(name, learning_rate, train_steps, warmup_steps, end_learning_rate, weight_decay, epsilon,
             beta_1, beta_2, clip_norm):
  common = {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "global_clipnorm": clip_norm or None}
  if name == "lamb":
    optimizer = {"type": "lamb", "lamb": dict(
        common, weight_decay_rate=weight_decay, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
        exclude_from_layer_adaptation=EXCLUDE_FROM_WEIGHT_DECAY)}
  elif name in ("adamw", "adam"):
    # The legacy AdamWeightDecay would clip per replica before aggregation; global_clipnorm clips after.
    optimizer = {"type": "adamw", "adamw": dict(
        common, weight_decay_rate=weight_decay if name == "adamw" else 0.0,
        exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY, gradient_clip_norm=0.0)}
  else:
    raise ValueError(f"unknown optimizer {name!r}; choose lamb, adamw or adam")
  config = optimization_config.OptimizationConfig(
      {"optimizer": optimizer, **schedule_config(learning_rate, train_steps, warmup_steps, end_learning_rate)})
  return optimizer_factory.OptimizerFactory(config)


def schedule_config(learning_rate: float, train_steps: int, warmup_steps: int, end_learning_rate: float = 0.0):
  """tf-models-official's "learning_rate" and "warmup" configs: linear warmup from 0 over `warmup_steps`,
  then linear decay to `end_learning_rate` at `train_steps`."""
  return {
      "learning_rate": {"type": "polynomial", "polynomial": {
          "initial_learning_rate": learning_rate,
          "decay_steps": max(1, train_steps - warmup_steps),
          "end_learning_rate": end_learning_rate,
          "power": 1.0,
          "offset": warmup_steps}},
      "warmup": ({"type": "linear", "linear": {"warmup_steps": warmup_steps, "warmup_learning_rate": 0.0}}
                 if warmup_steps > 0 else {"type": None}),
  }
