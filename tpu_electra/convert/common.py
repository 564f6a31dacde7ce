"""What every source reader of tpu_electra.convert shares: file names, the error, the vocab and the `Source`."""
import dataclasses
import os
from typing import Any, Dict, List, Optional

import numpy as np

from tpu_electra import fileio

SAFETENSORS_NAME = "model.safetensors"
TORCH_BIN_NAME = "pytorch_model.bin"
VOCAB_NAME = "vocab.txt"
# The --source kinds, one reader each.
KINDS = ("huggingface", "electra", "tf_models")
WORDPIECE = "wordpiece"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class ConversionError(ValueError):
  """A source that cannot be converted as asked (one line, naming the tensor or file)."""


@dataclasses.dataclass(frozen=True)
class Vocab:
  tokens: List[str]
  do_lower_case: bool
  origin: str
  vocab_type: str = WORDPIECE


def check_vocab(tokens: List[str], origin: str) -> None:
  missing = [t for t in SPECIAL_TOKENS if t not in set(tokens)]
  if missing:
    raise ConversionError(f"vocab {origin} has no {missing}; tpu_electra needs {list(SPECIAL_TOKENS)}")
  bad = [i for i, t in enumerate(tokens) if not t.strip() or "\n" in t or "\r" in t]
  if bad:
    raise ConversionError(f"vocab {origin} has a blank or multi-line token at id {bad[0]}, which a vocab.txt "
                          "cannot hold")
  if len(set(tokens)) != len(tokens):
    raise ConversionError(f"vocab {origin} lists {len(tokens) - len(set(tokens))} token(s) twice")


def read_lines(path: str) -> List[str]:
  with open(path, encoding="utf-8") as f:
    return [line.rstrip("\n").rstrip("\r") for line in f if line.strip()]


@dataclasses.dataclass
class Source:
  """What was read: where from, the config, the tensors (Hugging Face names) and the vocab."""
  kind: str
  path: str
  config: Dict[str, Any]
  tensors: Dict[str, np.ndarray]
  weights_file: str
  vocab: Vocab
  architecture: Optional[str] = None
  notes: List[str] = dataclasses.field(default_factory=list)

  def record(self) -> Dict[str, Any]:
    return {"kind": self.kind, "path": os.path.abspath(self.path), "architecture": self.architecture,
            "weights_file": os.path.basename(self.weights_file), "sha256": fileio.file_sha256(self.weights_file)}

