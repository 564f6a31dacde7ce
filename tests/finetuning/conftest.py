"""A stand-in tokenizer with the protocol of `tpu_electra.finetuning.features.Tokenizer`."""
from typing import Dict, List

import pytest

PAD_ID, CLS_ID, SEP_ID = 0, 1, 2


class FakeTokenizer:
  """Splits on spaces; words longer than 4 characters become 2-character pieces.

  Ids are handed out on first sight, so the same piece always gets the same id and tests can ask
  for `piece_id("ab")` to build expected sequences.
  """

  special_token_ids = {"[PAD]": PAD_ID, "[CLS]": CLS_ID, "[SEP]": SEP_ID}

  def __init__(self):
    self._vocab: Dict[str, int] = {}

  def pieces(self, word: str) -> List[str]:
    if len(word) <= 4:
      return [word]
    return [word[i:i + 2] for i in range(0, len(word), 2)]

  def piece_id(self, piece: str) -> int:
    return self._vocab.setdefault(piece, 10 + len(self._vocab))

  def tokenize(self, text: str) -> List[int]:
    return [self.piece_id(p) for word in text.split() for p in self.pieces(word)]


@pytest.fixture
def tokenizer() -> FakeTokenizer:
  return FakeTokenizer()
