"""A token vocabulary: ids are positions, the special tokens must be there. No TensorFlow.

Shared by the tensorflow_text tokenizers of `tpu_electra.data.tokenization` and by data_prep's
numpy WordPiece (`data_prep.wordpiece`), whose processes never import TensorFlow.
"""
from typing import Dict, List, Sequence, Type

from tpu_electra.data.manifest import SPECIAL_TOKENS


class Vocabulary:
  """Tokens by id and ids by token, with the special tokens' ids."""

  # What a vocab without the special tokens raises (subclasses name their own error).
  vocab_error: Type[Exception] = ValueError

  def __init__(self, vocab: Sequence[str], do_lower_case: bool, origin: str):
    self._vocab = list(vocab)
    self._ids: Dict[str, int] = {token: i for i, token in enumerate(self._vocab)}
    self.do_lower_case = do_lower_case
    missing = [t for t in SPECIAL_TOKENS if t not in self._ids]
    if missing:
      raise self.vocab_error(f"vocab {origin} has no {missing}; every vocab needs {list(SPECIAL_TOKENS)} "
                             "(rebuild it with python -m data_prep.build)")
    self.special_token_ids: Dict[str, int] = {t: self._ids[t] for t in SPECIAL_TOKENS}

  @property
  def vocab_size(self) -> int:
    return len(self._vocab)

  def id_to_token(self, token_id: int) -> str:
    return self._vocab[token_id]

  def token_to_id(self, token: str) -> int:
    return self._ids.get(token, self.special_token_ids["[UNK]"])

  def convert_ids_to_tokens(self, ids: Sequence[int]) -> List[str]:
    return [self._vocab[i] for i in ids]
