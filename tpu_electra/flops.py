r"""Training FLOPs of a pretraining run, counted the way the ELECTRA paper counts them.

  python -m tpu_electra.flops --gin_file=experiments/electra_small.gin [--gin_param=...] \
      [--train_flops=1.4e18] [--vocab_size=30522]
  python -m tpu_electra.flops --papers   # our count of the runs the papers publish FLOPs for

Each objective states its cost part by part (`training_costs`, built from the primitives of
tpu_electra.modeling.costs, whose docstring gives the conventions: those of the ELECTRA paper's FLOPs
appendix and its authors' flops_computation.py, so that a budget here means what the papers' tables
mean). The backward pass costs as much as the forward pass (`backward_factor=1`; 2 gives the
"backward = 2 x forward" rule of thumb of later scaling-law papers, about 1.5x these totals). Every
network an objective runs is counted: ELECTRA's generator and discriminator, both of SCRIPT's passes,
heads and losses. Weight sharing across layers saves parameters, not compute, so ALE costs what
ELECTRA costs. This module adds up those parts per step and per budget, and holds the CLI and the
comparison with the papers' published figures.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils

# The vocabulary the papers' figures assume (BERT's uncased WordPiece).
BERT_VOCAB_SIZE = 30522


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  cli_utils.define_gin_flags(flag_values, "TRAIN_FLOPS = 1.4e18")
  flags.DEFINE_float("train_flops", None, "Also print the number of steps that fits in this FLOPs budget.",
                     flag_values=flag_values)
  flags.DEFINE_integer("vocab_size", BERT_VOCAB_SIZE, "Vocabulary size when neither VOCAB_SIZE nor a DATA_DIR "
                       "manifest gives one (the papers' figures use BERT's 30522).", flag_values=flag_values)
  flags.DEFINE_float("backward_factor", 1.0, "Backward-pass FLOPs as a multiple of the forward pass (ELECTRA: 1).",
                     flag_values=flag_values)
  flags.DEFINE_bool("papers", False, "Print our count of the runs whose FLOPs the papers publish, and exit.",
                    flag_values=flag_values)


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.flops")

import dataclasses
from typing import Any, List, Mapping, Optional

import gin

from tpu_electra import gin_utils
from tpu_electra import objectives
# Registers the configurables every experiment file binds (pretrain, train, create_optimizer), without which
# gin cannot parse those files.
from tpu_electra import pretrainer  # noqa: F401  pylint: disable=unused-import
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import masking
from tpu_electra.modeling.config import EncoderConfig
from tpu_electra.modeling.costs import Cost, steps_within, train_flops_per_sequence  # noqa: F401  (the budget API)


def objective_costs(objective, encoder_config: EncoderConfig, seq_length: int, num_predictions: int,
                    arguments: Optional[Mapping[str, Any]] = None) -> List[Cost]:
  """Forward FLOPs per sequence of every part of `objective` (a registry name, a registered class or
  an instance), with its arguments resolved: defaults, gin bindings, then `arguments`."""
  return objectives.class_of(objective).costs(encoder_config, seq_length, num_predictions, arguments)


def train_flops_per_step(objective, encoder_config: EncoderConfig, batch_size: int, seq_length: int,
                         masking_config: Optional[masking.MaskingConfig] = None,
                         arguments: Optional[Mapping[str, Any]] = None, backward_factor: float = 1.0,
                         lookups_as_matmuls: bool = True) -> float:
  """Training FLOPs of one optimizer step over a global batch of `batch_size` sequences.

  The MLM heads run on as many positions as the input pipeline masks (padded positions included,
  as the head computes them), `masking_config.num_predictions(seq_length)`.
  """
  masking_config = masking_config or masking.MaskingConfig()
  parts = objective_costs(objective, encoder_config, seq_length, masking_config.num_predictions(seq_length), arguments)
  return batch_size * train_flops_per_sequence(parts, backward_factor, lookups_as_matmuls)


def train_steps_for_flops(flops_budget: float, objective, encoder_config: EncoderConfig, batch_size: int,
                          seq_length: int, masking_config: Optional[masking.MaskingConfig] = None,
                          arguments: Optional[Mapping[str, Any]] = None, backward_factor: float = 1.0) -> int:
  """The most optimizer steps whose training FLOPs stay within `flops_budget` (the TRAIN_FLOPS macro)."""
  return steps_within(flops_budget, train_flops_per_step(
      objective, encoder_config, batch_size, seq_length, masking_config, arguments, backward_factor))


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
  arguments: Mapping[str, object]
  published_flops: float

  def counted_flops(self) -> float:
    return self.train_steps * train_flops_per_step(self.objective, self.encoder_config, self.batch_size,
                                                   self.seq_length, arguments=self.arguments)


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
    PublishedRun("BERT-Small", _ELECTRA, "bert", _SMALL, 128, 128, 1.45e6, {}, 1.4e18),
    PublishedRun("ELECTRA-Small", _ELECTRA, "electra", _SMALL, 128, 128, 1e6, {"generator_fraction": 0.25}, 1.4e18),
    PublishedRun("BERT-Base", _ELECTRA, "bert", _BASE, 256, 512, 1e6, {}, 6.4e19),
    PublishedRun("ELECTRA-Base", _ELECTRA, "electra", _BASE, 256, 512, 766e3, {"generator_fraction": 1 / 3}, 6.4e19),
    PublishedRun("BERT-Large", _ELECTRA, "bert", _LARGE, 256, 512, 1e6, {}, 1.9e20),
    PublishedRun("ELECTRA-400K", _ELECTRA, "electra", _LARGE, 2048, 512, 400e3, {"generator_fraction": 0.25}, 7.1e20),
    PublishedRun("ELECTRA-1.75M", _ELECTRA, "electra", _LARGE, 2048, 512, 1.75e6, {"generator_fraction": 0.25},
                 3.1e21),
    PublishedRun("BERT_small", _ALE, "bert", _SMALL, 1024, 128, 163e3, {}, 2.3e17),
    PublishedRun("ELECTRA_small", _ALE, "electra", _SMALL, 1024, 128, 125e3, {"generator_fraction": 0.25}, 2.3e17),
    PublishedRun("ALE_small", _ALE, "ale", dataclasses.replace(_SMALL, share_layers=True), 1024, 128, 162e3,
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
  objective: str  # The objective's registry name.
  objective_class: str
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
    lines = [f"objective {self.objective} ({self.objective_class}): L={c.num_layers} H={c.hidden_size} A={c.num_heads} "
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


def report_from_gin(vocab_size: Optional[int] = None, backward_factor: float = 1.0) -> FlopsReport:
  """Counts the run that the parsed gin config describes (after tpu_electra.gin_utils.parse).

  The vocabulary size comes from EncoderConfig (VOCAB_SIZE), else from the manifest in DATA_DIR,
  else from `vocab_size`.
  """
  objective = objectives.class_of(gin.query_parameter("pretrain.objective").configurable.wrapped)
  encoder_config = EncoderConfig()
  if encoder_config.vocab_size is None:
    try:
      data_dir = gin_utils.bound_value("pretrain.data_dir")
      encoder_config = encoder_config.with_vocab_size(manifest_lib.read_manifest(data_dir).vocab_size)
    except (ValueError, manifest_lib.DataError):
      if vocab_size is None:
        raise ValueError("no vocabulary size: set VOCAB_SIZE, a DATA_DIR with a manifest, or --vocab_size") from None
      encoder_config = encoder_config.with_vocab_size(vocab_size)
  seq_length = int(gin_utils.bound_value("pretrain.seq_length"))
  batch_size = int(gin_utils.bound_value("pretrain.batch_size"))
  train_steps, train_flops = None, None
  try:
    train_steps = int(gin_utils.bound_value("pretrain.train_steps"))
  except (ValueError, TypeError):  # Unbound, or None when the run is sized by TRAIN_FLOPS.
    pass
  try:
    train_flops = float(gin_utils.bound_value("pretrain.train_flops"))
  except (ValueError, TypeError):
    pass
  parts = objective.costs(encoder_config, seq_length, masking.MaskingConfig().num_predictions(seq_length))
  return FlopsReport(objective.registry_name, objective.__name__, encoder_config, batch_size, seq_length,
                     train_steps, parts, backward_factor, train_flops)


@cli_utils.one_line_errors(ValueError)
def run(flag_values: flags.FlagValues) -> int:
  """Prints the count the parsed flags ask for; returns the exit status (errors: one line)."""
  if flag_values.papers:
    print(published_comparison())
    return 0
  gin_utils.parse(flag_values.gin_file, flag_values.gin_param)
  print(report_from_gin(flag_values.vocab_size, flag_values.backward_factor).format(flag_values.train_flops))
  return 0


cli = cli_utils.command_line(define_flags, run)

