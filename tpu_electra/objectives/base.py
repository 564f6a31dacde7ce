"""What every pretraining objective declares, the capabilities some have, and their registry.

An objective is a class registered with `@register("name")`: that one decorator makes it a gin
configurable, puts it in the registry (`names()`, `get(name)`: the benchmarks, the comparison and
run.json go by this name), records the resolved arguments of every instance (`arguments`), and
checks that the class states its own training cost (`training_costs`, which the FLOPs counter and
TRAIN_FLOPS budgets use). What consumers may ask of an objective beyond that is one of the
capability interfaces below, checked with isinstance:

- ReplacedTokenDetector: per-token "was this replaced?" logits from the kept encoder's outputs;
- MaskedLanguageModel: a network and tied MLM head that predict masked tokens;
- OnePassScorer: a pseudo-log-likelihood from one forward pass.
"""
import functools
import inspect
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import gin
import tensorflow as tf

from tpu_electra import registry
from tpu_electra.modeling.config import EncoderConfig
from tpu_electra.modeling.costs import Cost

# The entry that an objective with replaced-token detection adds to its outputs when called with
# with_detection=True (held-out evaluation): per-token "scores" (log-odds of "replaced"), "labels"
# (1 = replaced) and "weights" (0 for padding), for metrics over a whole evaluation set (exact AUC).
DETECTION = "detection"

# Recorded on each instance by the registration decorator, outside Keras' attribute tracking (an
# attribute Keras tracks would be a new node of the checkpoint's object graph).
_ARGUMENTS = "_objective_arguments"
# Constructor parameters that are not part of an objective's recorded arguments.
_NOT_ARGUMENTS = ("self", "encoder_config")

_REGISTRY: registry.Registry[Type["PretrainingObjective"]] = registry.Registry("objective")


class PretrainingObjective(tf.keras.Model):
  """A Keras model whose call(batch, training, with_detection=False) returns a dict of scalar losses
  and metrics.

  The dict has a "loss" entry (what is minimized); every other entry is logged. Randomness in a
  call (sampling) comes from the batch's `noise_seed` when it has one (see
  tpu_electra.data.pretraining), so a step's draws are a pure function of the run's seed and step.

  Every objective declares:
    encoder: the network that fine-tuning and export load (checkpoint item `encoder`);
    encoder_config: that network's EncoderConfig, as built (ALE's has share_layers=True);
    arguments: the resolved constructor arguments besides encoder_config (JSON values), recorded
      by `register`;
    training_costs(encoder_config, seq_length, num_predictions, arguments): classmethod, the
      forward FLOPs per sequence of each part a training step runs (tpu_electra.modeling.costs).
  """

  # Set by `register`.
  registry_name: Optional[str] = None

  def __init__(self, encoder_config: EncoderConfig, name: str):
    # Batches hold float32 weights and int ids: Keras must not cast them to a bfloat16/float16
    # compute dtype under a mixed-precision policy (losses and sampling stay float32).
    super().__init__(name=name, autocast=False)
    self.encoder_config = encoder_config

  @property
  def encoder(self) -> tf.keras.Model:
    raise NotImplementedError(f"{type(self).__name__} does not say which network is its encoder")

  @property
  def arguments(self) -> Dict[str, Any]:
    return dict(self.__dict__.get(_ARGUMENTS, {}))

  @classmethod
  def training_costs(cls, encoder_config: EncoderConfig, seq_length: int, num_predictions: int,
                     arguments: Mapping[str, Any]) -> List[Cost]:
    """The forward FLOPs per sequence of every part of a training step (see modeling.costs)."""
    raise NotImplementedError(f"{cls.__name__} does not define training_costs")

  @classmethod
  def resolve_arguments(cls, given: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The constructor's defaults, overridden by what gin binds for the class, then by `given`."""
    arguments = {name: p.default for name, p in _parameters(cls).items() if p.default is not inspect.Parameter.empty}
    arguments.update({k: v for k, v in gin.get_bindings(cls).items() if k not in _NOT_ARGUMENTS})
    arguments.update(given or {})
    return arguments

  @classmethod
  def costs(cls, encoder_config: EncoderConfig, seq_length: int, num_predictions: int,
            arguments: Optional[Mapping[str, Any]] = None) -> List[Cost]:
    """training_costs with the arguments resolved (defaults, gin bindings, then `arguments`)."""
    if encoder_config.vocab_size is None:
      raise ValueError("EncoderConfig.vocab_size is unset: counting FLOPs needs the vocabulary size")
    return cls.training_costs(encoder_config, seq_length, num_predictions, cls.resolve_arguments(arguments))


# ------------------------------------------------------------------------------------------------
# Capabilities


class ReplacedTokenDetector:
  """An objective that detects replaced tokens from its kept encoder's outputs."""

  def detector_logits(self, encoder_output: Mapping[str, Any], input_mask, training: Optional[bool] = None):
    """Replaced-token logits [batch, length] from the encoder's output dict."""
    raise NotImplementedError

  def detector_layers(self) -> Sequence[tf.Module]:
    """The layers besides the encoder that `detector_logits` runs (what an export must save)."""
    raise NotImplementedError

  def electra_discriminator_head(self) -> Optional[tf.keras.layers.Layer]:
    """The detector when it is exactly transformers' ElectraForPreTraining head on the last layer
    (a ReplacedTokenDetectionHead on `sequence_output`), else None."""
    return None


class MaskedLanguageModel:
  """An objective with a network and tied MLM head that predict masked tokens."""

  def masked_lm(self) -> Tuple[tf.keras.Model, tf.keras.layers.Layer]:
    """(network, MLM head): head(network(inputs)["sequence_output"], masked_positions) -> logits."""
    raise NotImplementedError


class OnePassScorer:
  """An objective that scores a sequence's plausibility in one forward pass."""

  def pseudo_log_likelihood(self, batch, token_weights=None):
    """[B] float32 scores of `batch` (input_ids, input_mask, segment_ids), higher = more plausible;
    tokens count where `token_weights` > 0 (default: input_mask)."""
    raise NotImplementedError


CAPABILITIES = (ReplacedTokenDetector, MaskedLanguageModel, OnePassScorer)


class GeneratorDiscriminator(PretrainingObjective, ReplacedTokenDetector, MaskedLanguageModel):
  """ELECTRA's shape (ELECTRA, ALE, TEAMS): a generator with a tied MLM head corrupts the input and a
  discriminator, the network that is kept, detects the replaced tokens.

  Subclasses set `generator`, `mlm_head` and `discriminator`, and say how the detector reads the
  discriminator (`detector_logits`, `detector_layers`).
  """

  @property
  def encoder(self) -> tf.keras.Model:
    return self.discriminator

  def masked_lm(self) -> Tuple[tf.keras.Model, tf.keras.layers.Layer]:
    return self.generator, self.mlm_head
# Capability methods with a default that fits most objectives.
_OPTIONAL_METHODS = ("electra_discriminator_head",)


# ------------------------------------------------------------------------------------------------
# Registration


def _parameters(cls) -> Mapping[str, inspect.Parameter]:
  init = getattr(cls, "__objective_init__", cls.__init__)
  return {name: p for name, p in inspect.signature(init).parameters.items() if name not in _NOT_ARGUMENTS}


def _record_arguments(cls):
  """Wraps cls.__init__ so that an instance records its resolved arguments (the outermost class's)."""
  init = cls.__init__
  signature = inspect.signature(init)

  @functools.wraps(init)
  def __init__(self, *args, **kwargs):
    if _ARGUMENTS not in self.__dict__:
      bound = signature.bind(self, *args, **kwargs)
      bound.apply_defaults()
      arguments = {k: v for k, v in bound.arguments.items() if k not in _NOT_ARGUMENTS}
      object.__setattr__(self, _ARGUMENTS, arguments)
    init(self, *args, **kwargs)

  cls.__objective_init__ = init
  cls.__init__ = __init__


def register(name: str):
  """Class decorator: `@register("electra")` makes an objective known to gin, the registry (run.json,
  benchmarks, comparison) and the FLOPs counter. The class must define `training_costs` itself: a
  subclass that costs what its parent costs says so (`training_costs = Parent.training_costs`)."""
  def decorate(cls):
    if not (isinstance(cls, type) and issubclass(cls, PretrainingObjective)):
      raise TypeError(f"@register({name!r}) needs a subclass of PretrainingObjective, got {cls!r}")
    if "training_costs" not in vars(cls):
      raise TypeError(f"objective {cls.__name__} must define training_costs itself (a subclass does not inherit its "
                      f"parent's count; write `training_costs = {cls.__mro__[1].__name__}.training_costs` if it "
                      "costs the same)")
    for capability in CAPABILITIES:
      if issubclass(cls, capability):
        missing = [m for m, method in vars(capability).items() if callable(method) and not m.startswith("_")
                   and m not in _OPTIONAL_METHODS and getattr(cls, m) is method]
        if missing:
          raise TypeError(f"objective {cls.__name__} is a {capability.__name__} but does not define "
                          f"{', '.join(missing)}")
    _REGISTRY.register(name, cls)  # First: a taken name changes nothing.
    _record_arguments(cls)
    cls.registry_name = name
    return gin.configurable(cls)  # Made configurable in place: the registered class itself.
  return decorate


def names() -> List[str]:
  """Registered objective names, in registration order."""
  return _REGISTRY.names()


def get(name: str) -> Type[PretrainingObjective]:
  """The objective class registered as `name` (a one-line error with the nearest name otherwise)."""
  return _REGISTRY.get(name)


def class_of(objective: Any) -> Type[PretrainingObjective]:
  """The registered class for a registry name, a registered class (or a gin reference's), or an instance."""
  if isinstance(objective, str):
    return get(objective)
  cls = objective if isinstance(objective, type) else type(objective)
  if "registry_name" not in vars(cls):
    raise ValueError(f"{cls.__name__} is not a registered objective; decorate it with "
                     "@tpu_electra.objectives.register(name)")
  return cls
