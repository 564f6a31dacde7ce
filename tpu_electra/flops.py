r"""Training FLOPs of a pretraining run, counted the way the ELECTRA paper counts them.

  python -m tpu_electra.flops --gin_file=experiments/electra_small.gin [--gin_param=...] \
      [--train_flops=1.4e18] [--vocab_size=30522]
  python -m tpu_electra.flops --papers   # our count of the runs the papers publish FLOPs for

Conventions (the ELECTRA paper's FLOPs appendix and its authors' flops_computation.py, so that a
budget here means what the papers' tables mean): a matrix multiply of [1, m] by [m, n] is 2mn
FLOPs; every elementwise operation is one FLOP per element, with fixed per-element costs for
dropout, layer norm, GELU and softmax below; word, position and type embedding lookups count as
dense one-hot matrix multiplies; the backward pass costs as much as the forward pass
(`backward_factor=1`; 2 gives the "backward = 2 x forward" rule of thumb of later scaling-law
papers, about 1.5x these totals). Every network an objective runs is counted: ELECTRA's generator and
discriminator, both of SCRIPT's passes, heads and losses. Weight sharing across layers saves
parameters, not compute, so ALE costs what ELECTRA costs.
"""
import dataclasses
import inspect
import math
import sys
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from absl import app, flags
import gin
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

from tpu_electra import cli_utils
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking
from tpu_electra.modeling.config import EncoderConfig

# Per element: draw a random number, compare with the rate, apply the mask, rescale.
DROPOUT_FLOPS = 4
# Per element: mean (sum), variance (square, sum), scale, shift.
LAYER_NORM_FLOPS = 5
# Per element: GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
ACTIVATION_FLOPS = 8
# Per element: max, subtract, exp, sum, divide (or log for a log-sum-exp).
SOFTMAX_FLOPS = 5
# Per vocabulary entry: uniform draw, two logs, two epsilon adds, negation, 1/temperature, add the
# noise, compare for the argmax. No gradient flows through a sample, so it has no backward pass.
GUMBEL_SAMPLE_FLOPS = 9
# The vocabulary the papers' figures assume (BERT's uncased WordPiece).
BERT_VOCAB_SIZE = 30522


@dataclasses.dataclass(frozen=True)
class Cost:
  """The forward FLOPs of one part of an objective, for one sequence.

  `trained` parts are differentiated, so the backward pass goes through them too. `lookups` is
  the part of `forward` that is embedding lookups counted as one-hot matmuls: hardware runs them
  as gathers (and their backward as a scatter-add), so an executed-FLOPs count leaves them out.
  """
  name: str
  forward: float
  trained: bool = True
  lookups: float = 0.0


def _dense(inputs: int, outputs: int) -> float:
  """A dense layer on one token: the matmul and the bias."""
  return 2.0 * inputs * outputs + outputs


def lookup_flops(config: EncoderConfig, seq_length: int) -> float:
  """Word, position and type lookups counted as dense one-hot products; per sequence."""
  return 2.0 * config.embedding_width * (config.vocab_size + seq_length + config.type_vocab_size) * seq_length


def embedding_flops(config: EncoderConfig, seq_length: int) -> float:
  """Word, position and type lookups (dense one-hot products), sum, layer norm, dropout, and the
  E -> H projection when E != H; per sequence."""
  e, h = config.embedding_width, config.hidden_size
  per_token = 2.0 * e + (LAYER_NORM_FLOPS + DROPOUT_FLOPS) * e  # add the three, layer norm, dropout
  if e != h:
    per_token += _dense(e, h)
  return lookup_flops(config, seq_length) + per_token * seq_length


def transformer_layer_flops(config: EncoderConfig, seq_length: int) -> float:
  """One post-LN transformer layer (self-attention + GELU feed-forward) on a whole sequence."""
  h, i, s, heads = config.hidden_size, config.intermediate_size, seq_length, config.num_heads
  attention = (3 * _dense(h, h)                          # query, key, value projections
               + 2.0 * h * s                              # scores: every query against every key
               + (1 + SOFTMAX_FLOPS + DROPOUT_FLOPS) * s * heads  # scale, softmax, dropout
               + 2.0 * h * s                              # probabilities times values
               + _dense(h, h)                             # output projection
               + (DROPOUT_FLOPS + 1 + LAYER_NORM_FLOPS) * h)  # dropout, residual, layer norm
  feed_forward = (_dense(h, i) + ACTIVATION_FLOPS * i + _dense(i, h)
                  + (DROPOUT_FLOPS + 1 + LAYER_NORM_FLOPS) * h)
  return (attention + feed_forward) * s


def encoder_flops(config: EncoderConfig, seq_length: int) -> float:
  """Embeddings plus every layer; a shared layer applied L times costs L layers."""
  return embedding_flops(config, seq_length) + config.num_layers * transformer_layer_flops(config, seq_length)


def encoder_cost(name: str, config: EncoderConfig, seq_length: int) -> Cost:
  return Cost(name, encoder_flops(config, seq_length), lookups=lookup_flops(config, seq_length))


def masked_lm_head_flops(config: EncoderConfig, num_positions: int, with_targets: bool = True) -> float:
  """The tied MLM head on `num_positions` tokens: dense H -> E, GELU, layer norm, logits over the
  vocabulary and their softmax; `with_targets` adds picking each target's log-probability."""
  e, v = config.embedding_width, config.vocab_size
  per_position = (_dense(config.hidden_size, e) + (ACTIVATION_FLOPS + LAYER_NORM_FLOPS) * e
                  + _dense(e, v) + SOFTMAX_FLOPS * v)
  if with_targets:
    per_position += 2.0 * v
  return per_position * num_positions


def token_classifier_flops(config: EncoderConfig, num_positions: int, num_classes: int = 1) -> float:
  """Dense H -> H, GELU, dense H -> classes on `num_positions` tokens (ELECTRA's RTD head)."""
  h = config.hidden_size
  return (_dense(h, h) + ACTIVATION_FLOPS * h + _dense(h, num_classes)) * num_positions


def next_sentence_flops(config: EncoderConfig) -> float:
  """BERT's pooler (dense + tanh on [CLS]) and 2-way classifier with its softmax; per sequence."""
  h = config.hidden_size
  return _dense(h, h) + ACTIVATION_FLOPS * h + _dense(h, 2) + SOFTMAX_FLOPS * 2


def sampling_flops(config: EncoderConfig, num_positions: int) -> float:
  return GUMBEL_SAMPLE_FLOPS * config.vocab_size * num_positions


# Objective (class name) -> function(encoder_config, seq_length, num_predictions, settings) -> costs.
# Looked up along the class's MRO, so a subclass (Ale of Electra) is counted as its base unless it
# registers its own function.
CostFunction = Callable[[EncoderConfig, int, int, Mapping[str, object]], List[Cost]]
COST_FUNCTIONS: Dict[str, CostFunction] = {}


def register_costs(objective_name: str) -> Callable[[CostFunction], CostFunction]:
  def register(fn: CostFunction) -> CostFunction:
    COST_FUNCTIONS[objective_name] = fn
    return fn
  return register


@register_costs("Bert")
def _bert_costs(config, seq_length, num_predictions, settings):
  costs = [encoder_cost("encoder", config, seq_length),
           Cost("mlm_head", masked_lm_head_flops(config, num_predictions))]
  if settings.get("next_sentence_prediction", False):
    costs.append(Cost("nsp_head", next_sentence_flops(config)))
  return costs


@register_costs("Electra")
def _electra_costs(config, seq_length, num_predictions, settings):
  generator = config.scaled(float(settings.get("generator_fraction", 0.25)))
  return [encoder_cost("generator", generator, seq_length),
          Cost("generator_mlm_head", masked_lm_head_flops(generator, num_predictions)),
          Cost("sampling", sampling_flops(config, num_predictions), trained=False),
          encoder_cost("discriminator", config, seq_length),
          Cost("rtd_head", token_classifier_flops(config, seq_length))]


@register_costs("Script")
def _script_costs(config, seq_length, num_predictions, settings):
  del settings
  # The critic pass needs the log-sum-exp of the logits of every token (Eq. 4-5), not a target's.
  return [encoder_cost("mlm_pass", config, seq_length),
          Cost("mlm_head", masked_lm_head_flops(config, num_predictions)),
          Cost("sampling", sampling_flops(config, num_predictions), trained=False),
          encoder_cost("critic_pass", config, seq_length),
          Cost("critic_head", masked_lm_head_flops(config, seq_length, with_targets=False))]


@register_costs("Teams")
def _teams_costs(config, seq_length, num_predictions, settings):
  # A shared bottom layer still runs once in each network, so sharing changes no FLOPs.
  num_generator_layers = max(1, int(math.floor(config.num_layers * float(settings.get("generator_layer_fraction", 0.5))
                                               + 0.5)))
  generator = dataclasses.replace(config, num_layers=num_generator_layers)
  num_rtd_layers = int(settings.get("num_rtd_layers", 1))
  num_candidates = int(settings.get("num_candidates", 5)) + 1  # K non-originals and the original
  e = config.embedding_width
  mws_per_position = (_dense(config.hidden_size, e) + (ACTIVATION_FLOPS + LAYER_NORM_FLOPS) * e
                      + 2.0 * e * num_candidates + SOFTMAX_FLOPS * num_candidates)
  return [encoder_cost("generator", generator, seq_length),
          Cost("generator_mlm_head", masked_lm_head_flops(generator, num_predictions)),
          # One draw corrupts the input, a second picks the K candidates.
          Cost("sampling", 2 * sampling_flops(config, num_predictions), trained=False),
          encoder_cost("discriminator", config, seq_length),
          Cost("rtd_layers", num_rtd_layers * transformer_layer_flops(config, seq_length)),
          Cost("rtd_head", token_classifier_flops(config, seq_length)),
          Cost("mws_head", mws_per_position * num_predictions)]


ObjectiveLike = Union[str, type]


def objective_name(objective: ObjectiveLike) -> str:
  """The registered name that counts `objective` (a class, a gin reference's class, or a name)."""
  if isinstance(objective, str):
    if objective not in COST_FUNCTIONS:
      raise ValueError(f"no FLOPs count for objective {objective!r}; known: {', '.join(sorted(COST_FUNCTIONS))}")
    return objective
  for cls in inspect.getmro(objective):
    if cls.__name__ in COST_FUNCTIONS:
      return cls.__name__
  raise ValueError(f"no FLOPs count for objective {objective.__name__}; register one with "
                   f"tpu_electra.flops.register_costs (known: {', '.join(sorted(COST_FUNCTIONS))})")


def objective_settings(objective: type) -> Dict[str, object]:
  """The objective's constructor defaults, overridden by what gin binds for it."""
  settings = {name: p.default for name, p in inspect.signature(objective.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
  settings.update(gin.get_bindings(objective))
  return settings


def objective_costs(objective: ObjectiveLike, encoder_config: EncoderConfig, seq_length: int,
                    num_predictions: int, settings: Optional[Mapping[str, object]] = None) -> List[Cost]:
  """Forward FLOPs per sequence of every part of `objective`."""
  if encoder_config.vocab_size is None:
    raise ValueError("EncoderConfig.vocab_size is unset: counting FLOPs needs the vocabulary size")
  if settings is None:
    settings = {} if isinstance(objective, str) else objective_settings(objective)
  return COST_FUNCTIONS[objective_name(objective)](encoder_config, seq_length, num_predictions, settings)


def train_flops_per_sequence(costs: Sequence[Cost], backward_factor: float = 1.0,
                             lookups_as_matmuls: bool = True) -> float:
  """Forward of every part plus `backward_factor` times the forward of the parts that train.

  `lookups_as_matmuls=False` leaves embedding lookups out: the FLOPs hardware executes, the
  numerator of a model-FLOPs utilization.
  """
  total = 0.0
  for c in costs:
    forward = c.forward if lookups_as_matmuls else c.forward - c.lookups
    total += forward * (1.0 + (backward_factor if c.trained else 0.0))
  return total


def train_flops_per_step(objective: ObjectiveLike, encoder_config: EncoderConfig, batch_size: int,
                         seq_length: int, masking_config: Optional[masking.MaskingConfig] = None,
                         settings: Optional[Mapping[str, object]] = None, backward_factor: float = 1.0,
                         lookups_as_matmuls: bool = True) -> float:
  """Training FLOPs of one optimizer step over a global batch of `batch_size` sequences.

  The MLM heads run on as many positions as the input pipeline masks (padded positions included,
  as the head computes them), `masking_config.num_predictions(seq_length)`.
  """
  masking_config = masking_config or masking.MaskingConfig()
  costs = objective_costs(objective, encoder_config, seq_length, masking_config.num_predictions(seq_length), settings)
  return batch_size * train_flops_per_sequence(costs, backward_factor, lookups_as_matmuls)


def train_steps_for_flops(flops_budget: float, objective: ObjectiveLike, encoder_config: EncoderConfig,
                          batch_size: int, seq_length: int, masking_config: Optional[masking.MaskingConfig] = None,
                          settings: Optional[Mapping[str, object]] = None, backward_factor: float = 1.0) -> int:
  """The most optimizer steps whose training FLOPs stay within `flops_budget` (the TRAIN_FLOPS macro)."""
  return steps_within(flops_budget, train_flops_per_step(
      objective, encoder_config, batch_size, seq_length, masking_config, settings, backward_factor))


def steps_within(flops_budget: float, flops_per_step: float) -> int:
  steps = int(math.floor(flops_budget / flops_per_step))
  if steps < 1:
    raise ValueError(f"TRAIN_FLOPS={flops_budget:.3g} is less than one training step ({flops_per_step:.3g} FLOPs)")
  return steps


@dataclasses.dataclass(frozen=True)
class PublishedRun:
  """A pretraining run whose train FLOPs a paper prints, with the settings that determine them."""
  name: str
  source: str
  objective: str
  encoder_config: EncoderConfig
  batch_size: int
  seq_length: int
  train_steps: float
  settings: Mapping[str, object]
  published_flops: float

  def counted_flops(self) -> float:
    return self.train_steps * train_flops_per_step(self.objective, self.encoder_config, self.batch_size,
                                                   self.seq_length, settings=self.settings)


def _paper_encoder(hidden_size, num_layers, num_heads, embedding_size):
  return EncoderConfig(vocab_size=BERT_VOCAB_SIZE, hidden_size=hidden_size, num_layers=num_layers,
                       num_heads=num_heads, intermediate_size=4 * hidden_size, embedding_size=embedding_size)


_SMALL = _paper_encoder(256, 12, 4, 128)
_BASE = _paper_encoder(768, 12, 12, 768)
_LARGE = _paper_encoder(1024, 24, 16, 1024)
_ELECTRA = "ELECTRA paper"
_ALE = "ALE paper Table IV/V"
# ELECTRA: Table 1 (small, base) and Table 2 (large) with the Appendix's steps, batch and length;
# BERT-Small's 1.45M steps are those of the authors' FLOPs script. ALE: Table IV with Table V.
PUBLISHED_RUNS = (
    PublishedRun("BERT-Small", _ELECTRA, "Bert", _SMALL, 128, 128, 1.45e6, {}, 1.4e18),
    PublishedRun("ELECTRA-Small", _ELECTRA, "Electra", _SMALL, 128, 128, 1e6, {"generator_fraction": 0.25}, 1.4e18),
    PublishedRun("BERT-Base", _ELECTRA, "Bert", _BASE, 256, 512, 1e6, {}, 6.4e19),
    PublishedRun("ELECTRA-Base", _ELECTRA, "Electra", _BASE, 256, 512, 766e3, {"generator_fraction": 1 / 3}, 6.4e19),
    PublishedRun("BERT-Large", _ELECTRA, "Bert", _LARGE, 256, 512, 1e6, {}, 1.9e20),
    PublishedRun("ELECTRA-400K", _ELECTRA, "Electra", _LARGE, 2048, 512, 400e3, {"generator_fraction": 0.25}, 7.1e20),
    PublishedRun("ELECTRA-1.75M", _ELECTRA, "Electra", _LARGE, 2048, 512, 1.75e6, {"generator_fraction": 0.25},
                 3.1e21),
    PublishedRun("BERT_small", _ALE, "Bert", _SMALL, 1024, 128, 163e3, {}, 2.3e17),
    PublishedRun("ELECTRA_small", _ALE, "Electra", _SMALL, 1024, 128, 125e3, {"generator_fraction": 0.25}, 2.3e17),
    PublishedRun("ALE_small", _ALE, "Electra", dataclasses.replace(_SMALL, share_layers=True), 1024, 128, 162e3,
                 {"generator_fraction": 0.25}, 2.3e17),
)


def published_comparison() -> str:
  """Our count of every run in PUBLISHED_RUNS next to the paper's figure."""
  lines = [f"{'run':<15}{'source':<22}{'steps':>9}{'batch':>7}{'seq':>5}{'ours':>11}{'paper':>10}{'diff':>9}"]
  for run in PUBLISHED_RUNS:
    ours = run.counted_flops()
    lines.append(f"{run.name:<15}{run.source:<22}{run.train_steps:>9.4g}{run.batch_size:>7}{run.seq_length:>5}"
                 f"{ours:>11.3e}{run.published_flops:>10.2g}{100 * (ours / run.published_flops - 1):>+8.1f}%")
  return "\n".join(lines)


@dataclasses.dataclass
class FlopsReport:
  objective: str  # The objective's class name.
  counted_as: str  # The registered count it uses (an ALE run is counted as ELECTRA).
  encoder_config: EncoderConfig
  batch_size: int
  seq_length: int
  train_steps: Optional[int]
  costs: List[Cost]
  backward_factor: float
  train_flops: Optional[float] = None  # TRAIN_FLOPS, when the config sets a budget.

  @property
  def per_sequence(self) -> float:
    return train_flops_per_sequence(self.costs, self.backward_factor)

  @property
  def per_step(self) -> float:
    return self.batch_size * self.per_sequence

  @property
  def total(self) -> Optional[float]:
    return None if self.train_steps is None else self.train_steps * self.per_step

  def format(self, train_flops: Optional[float] = None) -> str:
    """A table of the parts' FLOPs per token, then per step, per run and within a budget (the
    argument, else the config's TRAIN_FLOPS)."""
    train_flops = self.train_flops if train_flops is None else train_flops
    c = self.encoder_config
    counted = "" if self.counted_as == self.objective else f" (counted as {self.counted_as})"
    lines = [f"objective {self.objective}{counted}: L={c.num_layers} H={c.hidden_size} A={c.num_heads} "
             f"FFN={c.intermediate_size} E={c.embedding_width} V={c.vocab_size}; "
             f"batch {self.batch_size} x seq {self.seq_length}; backward = {self.backward_factor:g} x forward",
             f"{'part':<22}{'forward/token':>16}{'train/token':>16}"]
    tokens = float(self.seq_length)
    for cost in self.costs:
      train = cost.forward * (1.0 + (self.backward_factor if cost.trained else 0.0))
      lines.append(f"{cost.name:<22}{cost.forward / tokens:>16.4g}{train / tokens:>16.4g}")
    forward = sum(x.forward for x in self.costs)
    lines.append(f"{'total':<22}{forward / tokens:>16.4g}{self.per_sequence / tokens:>16.4g}")
    lines.append(f"train FLOPs per step: {self.per_step:.4g}")
    if self.total is not None:
      lines.append(f"train FLOPs for TRAIN_STEPS={self.train_steps}: {self.total:.4g}")
    if train_flops is not None:
      lines.append(f"steps within TRAIN_FLOPS={train_flops:.4g}: {steps_within(train_flops, self.per_step)}")
    return "\n".join(lines)


def _macro_value(binding_key: str):
  """A bound gin value with macro references followed to the value they name."""
  value = gin.query_parameter(binding_key)
  while isinstance(value, gin.config.ConfigurableReference) and value.configurable.name == "macro":
    value = gin.query_parameter("%" + "/".join(value.scopes))
  return value


def report_from_gin(vocab_size: Optional[int] = None, backward_factor: float = 1.0) -> FlopsReport:
  """Counts the run that the parsed gin config describes (after tpu_electra.gin_utils.parse).

  The vocabulary size comes from EncoderConfig (VOCAB_SIZE), else from the manifest in DATA_DIR,
  else from `vocab_size`.
  """
  reference = gin.query_parameter("pretrain.objective")
  objective = reference.configurable.wrapped
  encoder_config = EncoderConfig()
  if encoder_config.vocab_size is None:
    try:
      data_dir = _macro_value("pretrain.data_dir")
      encoder_config = encoder_config.with_vocab_size(manifest_lib.read_manifest(data_dir).vocab_size)
    except (ValueError, manifest_lib.DataError):
      if vocab_size is None:
        raise ValueError("no vocabulary size: set VOCAB_SIZE, a DATA_DIR with a manifest, or --vocab_size") from None
      encoder_config = encoder_config.with_vocab_size(vocab_size)
  seq_length = int(_macro_value("pretrain.seq_length"))
  batch_size = int(_macro_value("pretrain.batch_size"))
  train_steps, train_flops = None, None
  try:
    train_steps = int(_macro_value("pretrain.train_steps"))
  except (ValueError, TypeError):  # Unbound, or None when the run is sized by TRAIN_FLOPS.
    pass
  try:
    train_flops = float(_macro_value("pretrain.train_flops"))
  except (ValueError, TypeError):
    pass
  masking_config = masking.MaskingConfig()
  costs = objective_costs(objective, encoder_config, seq_length, masking_config.num_predictions(seq_length))
  return FlopsReport(objective.__name__, objective_name(objective), encoder_config, batch_size, seq_length,
                     train_steps, costs, backward_factor, train_flops)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tpu_electra import gin_utils  # pylint: disable=g-import-not-at-top
  flag_values = flags.FLAGS
  if flag_values.papers:
    print(published_comparison())
    return
  try:
    gin_utils.parse(flag_values.gin_file, flag_values.gin_param)
    report = report_from_gin(flag_values.vocab_size, flag_values.backward_factor)
    print(report.format(flag_values.train_flops))
  except ValueError as e:
    cli_utils.print_error(e)
    sys.exit(1)


def _run():
  # pretrain.py owns --gin_file/--gin_param and registers `pretrain`, `train` and `create_optimizer`
  # with gin, which every experiment file binds. Importing it only here (not at the top) lets
  # pretrain.py import this module for TRAIN_FLOPS without a cycle or a second set of flags.
  from tpu_electra import pretrain  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  flags.DEFINE_float("train_flops", None, "Also print the number of steps that fits in this FLOPs budget.")
  flags.DEFINE_integer("vocab_size", BERT_VOCAB_SIZE, "Vocabulary size when neither VOCAB_SIZE nor a DATA_DIR "
                       "manifest gives one (the papers' figures use BERT's 30522).")
  flags.DEFINE_float("backward_factor", 1.0, "Backward-pass FLOPs as a multiple of the forward pass (ELECTRA: 1).")
  flags.DEFINE_bool("papers", False, "Print our count of the runs whose FLOPs the papers publish, and exit.")
  app.run(main)


if __name__ == "__main__":
  _run()
