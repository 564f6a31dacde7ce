"""AdamW for fine-tuning, with layer-wise learning-rate decay applied to the update.

Layer-wise decay (Clark et al. 2020, ELECTRA; SCRIPT Table 5: decay 0.8) gives the layers near the
input smaller learning rates than those near the task head. With L transformer layers and decay d:

  task head (anything outside the encoder)   lr
  top transformer layer (index L-1)          lr * d
  layer i (0 = bottom)                       lr * d^(L-i)
  embeddings (and the E -> H projection)     lr * d^(L+1)

google-research/electra issue 51: the original code counted depths one too high, so its top layer
got lr * d^2; here the top layer gets lr * d.

The factor multiplies the learning rate of each variable's *update* (Adam's step and the decoupled
weight decay, both of which are proportional to the learning rate). Scaling the gradient instead
would do nothing: Adam divides the first moment by the root of the second, so a constant factor on
a variable's gradient cancels out.

An encoder with cross-layer sharing (ALBERT-style) has one set of layer weights: it counts as one
layer, so it gets lr * d and the embeddings lr * d^2. Encoder variables that belong neither to the
embeddings nor to the layer stack (extra task-specific layers on top of it) get the top layer's
factor.
"""
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import gin
import tensorflow as tf
from official.modeling.optimization import legacy_adamw
from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.configs import optimization_config

from tpu_electra.training import optimization
from tpu_electra.training.optimization import EXCLUDE_FROM_WEIGHT_DECAY

HEAD = "head"
EMBEDDINGS = "embeddings"


def _unique(layers: Iterable[tf.Module]) -> List[tf.Module]:
  seen, out = set(), []
  for layer in layers:
    if id(layer) not in seen:
      seen.add(id(layer))
      out.append(layer)
  return out


def encoder_groups(encoder: tf.keras.Model) -> List[Tuple[str, List[tf.Variable]]]:
  """The encoder's trainable variables grouped by depth, bottom first: embeddings, then layers.

  Relies on the attributes of `tpu_electra.modeling.TransformerEncoder`: `embeddings`, an optional
  `embedding_projection`, and `transformer_layers` (bottom first; a shared layer appears once).
  Variables of any other sub-layer are put in a last group, "top".
  """
  for attribute in ("embeddings", "transformer_layers"):
    if not hasattr(encoder, attribute):
      raise ValueError(f"{type(encoder).__name__} has no `{attribute}`: layer-wise decay needs the "
                       "structure of tpu_electra.modeling.TransformerEncoder")
  embedding_vars = list(encoder.embeddings.trainable_variables)
  projection = getattr(encoder, "embedding_projection", None)
  if projection is not None:
    embedding_vars += list(projection.trainable_variables)
  groups = [(EMBEDDINGS, embedding_vars)]
  layers = _unique(encoder.transformer_layers)
  for index, layer in enumerate(layers):
    groups.append((f"layer_{index}", list(layer.trainable_variables)))
  grouped = {v.ref() for _, variables in groups for v in variables}
  rest = [v for v in encoder.trainable_variables if v.ref() not in grouped]
  if rest:
    groups.append(("top", rest))
  return groups


def group_multipliers(num_layers: int, decay: float) -> Dict[str, float]:
  """Factor of each depth group for `num_layers` distinct layers: see the module docstring."""
  if not 0.0 < decay <= 1.0:
    raise ValueError(f"layer-wise decay must be in (0, 1], got {decay}")
  factors = {EMBEDDINGS: decay ** (num_layers + 1), HEAD: 1.0, "top": decay}
  for index in range(num_layers):
    factors[f"layer_{index}"] = decay ** (num_layers - index)
  return factors


def learning_rate_multipliers(model: tf.keras.Model, encoder: tf.keras.Model,
                              decay: float) -> Dict[tf.Variable, float]:
  """Maps each trainable variable of `model` (by `.ref()`) to its learning-rate factor.

  `encoder` must be the pretrained encoder inside `model`; every other variable of `model` is the
  task head and gets 1.0. The encoder's variables must be built (call the model once first).
  """
  groups = encoder_groups(encoder)
  num_layers = sum(1 for name, _ in groups if name.startswith("layer_"))
  factors = group_multipliers(num_layers, decay)
  multipliers = {}
  for name, variables in groups:
    for variable in variables:
      multipliers[variable.ref()] = factors[name]
  for variable in model.trainable_variables:
    multipliers.setdefault(variable.ref(), factors[HEAD])
  return multipliers


def _container(variable):
  """The variable the model holds: strategies hand the optimizer per-device components."""
  get_container = getattr(variable, "_distributed_container", None)
  if get_container is not None:
    container = get_container()
    if container is not None:
      return container
  return variable


class LayerwiseAdamWeightDecay(legacy_adamw.AdamWeightDecay):
  """BERT/ELECTRA's AdamW whose per-variable step is scaled by a learning-rate factor.

  `multipliers` maps `variable.ref()` to a float for every variable the optimizer will update (see
  `learning_rate_multipliers`); a variable missing from it is an error at trace time rather than a
  silent factor of 1.
  """

  def __init__(self, multipliers: Mapping, **kwargs):
    super().__init__(**kwargs)
    self._multipliers = dict(multipliers)

  def multiplier(self, variable) -> float:
    key = _container(variable).ref()
    if key not in self._multipliers:
      raise ValueError(f"variable {variable.name} has no learning-rate multiplier; build the "
                       "multipliers from the model this optimizer trains")
    return self._multipliers[key]

  def _scaled_state(self, var, apply_state):
    """A copy of the shared per-(device, dtype) coefficients with this variable's learning rate."""
    var_device, var_dtype = var.device, var.dtype.base_dtype
    coefficients = (apply_state or {}).get((var_device, var_dtype))
    if coefficients is None:
      coefficients = self._fallback_apply_state(var_device, var_dtype)
    factor = tf.constant(self.multiplier(var), dtype=var_dtype)
    scaled = dict(coefficients)
    # lr_t feeds the dense Adam kernel and the weight decay; lr (bias-corrected) the sparse path.
    scaled["lr_t"] = coefficients["lr_t"] * factor
    scaled["lr"] = coefficients["lr"] * factor
    return {(var_device, var_dtype): scaled}

  def _resource_apply_dense(self, grad, var, apply_state=None):
    return super()._resource_apply_dense(grad, var, apply_state=self._scaled_state(var, apply_state))

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    return super()._resource_apply_sparse(grad, var, indices, apply_state=self._scaled_state(var, apply_state))

  def get_config(self):
    # The multipliers are tied to live variables: they are rebuilt from the model, not serialized.
    return super().get_config()


def warmup_linear_decay(learning_rate: float, train_steps: int, warmup_steps: int,
                        end_learning_rate: float = 0.0):
  """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then linear decay to the end."""
  if train_steps <= 0:
    raise ValueError(f"train_steps must be positive, got {train_steps}")
  if not 0 <= warmup_steps < train_steps:
    raise ValueError(f"warmup_steps={warmup_steps} must be in [0, train_steps={train_steps})")
  config = optimization_config.OptimizationConfig({
      "optimizer": {"type": "adamw"},
      **optimization.schedule_config(learning_rate, train_steps, warmup_steps, end_learning_rate)})
  return optimizer_factory.OptimizerFactory(config).build_learning_rate()


@gin.configurable(denylist=["model", "encoder", "train_steps"])
def create_finetuning_optimizer(model: tf.keras.Model,
                                encoder: tf.keras.Model,
                                train_steps: int,
                                learning_rate: float = gin.REQUIRED,
                                layerwise_decay: float = 0.8,
                                warmup_fraction: float = 0.1,
                                weight_decay: float = 0.0,
                                epsilon: float = 1e-6,
                                beta_1: float = 0.9,
                                beta_2: float = 0.999,
                                clip_norm: Optional[float] = 1.0) -> LayerwiseAdamWeightDecay:
  """AdamW, warmup over `warmup_fraction` of the steps, linear decay to 0, layer-wise decay.

  Defaults are SCRIPT Table 5 (ELECTRA's recipe) less the learning rate, which depends on the
  model size. `layerwise_decay = 1.0` turns the decay off (TEAMS, BERT). The model's variables
  must exist (call it once) so that every one of them gets its factor.
  """
  if not 0.0 <= warmup_fraction < 1.0:
    raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
  schedule = warmup_linear_decay(learning_rate, train_steps, int(warmup_fraction * train_steps))
  return LayerwiseAdamWeightDecay(
      multipliers=learning_rate_multipliers(model, encoder, layerwise_decay),
      learning_rate=schedule,
      beta_1=beta_1,
      beta_2=beta_2,
      epsilon=epsilon,
      weight_decay_rate=weight_decay,
      exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
      # Clipping after cross-replica aggregation (global_clipnorm), not per replica before it.
      gradient_clip_norm=0.0,
      global_clipnorm=clip_norm or None)
