"""The shape of a transformer encoder: one small, strict, gin-configurable dataclass."""
import dataclasses
from typing import Optional

import gin


@gin.configurable
@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """Sizes of a BERT/ELECTRA/ALBERT-style encoder.

  `vocab_size=None` means "take it from the pretraining data's manifest". `embedding_size=None`
  means E = H (no projection); E != H adds one dense projection E -> H (ALBERT's factorization,
  also ELECTRA-small's E=128, H=256). `share_layers=True` applies one transformer layer's weights
  at every depth (ALBERT cross-layer sharing).
  """
  vocab_size: Optional[int] = None
  hidden_size: int = 256
  num_layers: int = 12
  num_heads: int = 4
  intermediate_size: int = 1024
  embedding_size: Optional[int] = None
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.1
  activation: str = "gelu"
  initializer_range: float = 0.02
  share_layers: bool = False

  def __post_init__(self):
    if self.hidden_size % self.num_heads:
      raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")

  @property
  def embedding_width(self) -> int:
    return self.embedding_size or self.hidden_size

  def scaled(self, fraction: float) -> "EncoderConfig":
    """A narrower encoder of the same depth: hidden size, heads and FFN size times `fraction`.

    This is how ELECTRA sizes its generator (ELECTRA-small: 256 -> 64 hidden, 4 -> 1 head,
    1024 -> 256 FFN). The embedding width is left alone so the embeddings can be shared.
    """
    if not 0.0 < fraction <= 1.0:
      raise ValueError(f"generator_fraction must be in (0, 1], got {fraction}")
    num_heads = max(1, int(round(self.num_heads * fraction)))
    hidden_size = max(num_heads, int(round(self.hidden_size * fraction)))
    hidden_size -= hidden_size % num_heads
    return dataclasses.replace(
        self,
        hidden_size=hidden_size,
        num_heads=num_heads,
        intermediate_size=max(1, int(round(self.intermediate_size * fraction))),
        embedding_size=self.embedding_width)

  def with_vocab_size(self, vocab_size: int) -> "EncoderConfig":
    return dataclasses.replace(self, vocab_size=vocab_size)
