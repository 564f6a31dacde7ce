"""Text to token ids, with the same tokenizer in data_prep, the trainer and fine-tuning.

Both kinds run as tensorflow_text C++ ops: WordPiece through `FastBertTokenizer` (BERT's basic
normalization and punctuation splitting fused with linear-time WordPiece), SentencePiece through
`SentencepieceTokenizer`. A batch of texts is one op call, never a Python loop over words, which is
what makes tokenizing a corpus on a few cores affordable. `tokenize_tensor` is the same op for use
inside `tf.data` pipelines.
"""
import abc
import unicodedata
from typing import List, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import vocabulary

WORDPIECE = "wordpiece"
SENTENCEPIECE = "sentencepiece"
VOCAB_TYPES = (WORDPIECE, SENTENCEPIECE)
SPECIAL_TOKENS = manifest_lib.SPECIAL_TOKENS
# BERT's limit: a longer "word" is almost always noise (URLs, base64) and becomes one [UNK].
MAX_BYTES_PER_WORD = 100
SENTENCEPIECE_WORD_START = "\u2581"


class TokenizerError(ValueError):
  """A vocab that cannot be loaded or lacks what the pipeline needs."""


class Tokenizer(vocabulary.Vocabulary, abc.ABC):
  """Shared surface of both vocab types; subclasses provide the op and the vocabulary list."""

  vocab_type: str = ""
  vocab_error = TokenizerError

  @abc.abstractmethod
  def tokenize_tensor(self, texts: tf.Tensor) -> tf.RaggedTensor:
    """Token ids (int64) for a 1-D string tensor; usable inside tf.function and tf.data."""

  def tokenize_batch(self, texts: Sequence[str]) -> List[List[int]]:
    if not texts:
      return []
    ragged = self.tokenize_tensor(tf.constant(list(texts), dtype=tf.string))
    return ragged.to_list()

  def tokenize(self, text: str) -> List[int]:
    return self.tokenize_batch([text])[0]

  def word_continuation(self) -> List[bool]:
    """Per id: True when the piece continues the word of the piece before it (whole-word masking)."""
    special = set(SPECIAL_TOKENS)
    return [token not in special and self._continues_word(token) for token in self._vocab]

  @staticmethod
  @abc.abstractmethod
  def _continues_word(token: str) -> bool:
    """Whether a (non-special) piece of this vocab type continues a word."""


class WordpieceTokenizer(Tokenizer):
  """BERT-style WordPiece with `##` continuation pieces."""

  vocab_type = WORDPIECE

  def __init__(self, vocab: Sequence[str], do_lower_case: bool, origin: str = "<memory>"):
    super().__init__(vocab, do_lower_case, origin)
    duplicates = len(self._vocab) - len(self._ids)
    if duplicates:
      raise TokenizerError(f"vocab {origin} lists {duplicates} token(s) twice; a WordPiece vocab needs unique lines")
    self._op = tf_text.FastBertTokenizer(
        vocab=self._vocab,
        suffix_indicator="##",
        max_bytes_per_word=MAX_BYTES_PER_WORD,
        token_out_type=tf.int64,
        unknown_token="[UNK]",
        lower_case_nfd_strip_accents=do_lower_case)

  def tokenize_tensor(self, texts: tf.Tensor) -> tf.RaggedTensor:
    return self._op.tokenize(texts)

  @staticmethod
  def _continues_word(token: str) -> bool:
    return token.startswith("##")


class SentencepieceTokenizer(Tokenizer):
  """A SentencePiece model whose pieces include the five special tokens.

  The special tokens must be pieces of the model itself (user-defined or control symbols), so that
  `[UNK]`, `[MASK]` and friends have ids and lookups never fail (the KeyError '[UNK]' of electra #8).
  """

  vocab_type = SENTENCEPIECE

  def __init__(self, model_proto: bytes, do_lower_case: bool, origin: str = "<memory>"):
    try:
      self._op = tf_text.SentencepieceTokenizer(model=model_proto, out_type=tf.int32)
      size = int(self._op.vocab_size())
      pieces = self._op.id_to_string(tf.range(size)).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.InternalError) as e:
      raise TokenizerError(f"{origin} is not a SentencePiece model ({e.message.splitlines()[0]})") from None
    super().__init__([p.decode("utf-8") for p in pieces], do_lower_case, origin)

  def tokenize_tensor(self, texts: tf.Tensor) -> tf.RaggedTensor:
    if self.do_lower_case:
      texts = tf_text.case_fold_utf8(texts)
    # The op emits only int32; int64 keeps both vocab types interchangeable downstream.
    ids = self._op.tokenize(texts)
    return ids.with_flat_values(tf.cast(ids.flat_values, tf.int64))

  @staticmethod
  def _continues_word(token: str) -> bool:
    # "▁" marks a piece that follows whitespace. Punctuation pieces count as words of their own,
    # as BERT's basic tokenizer splits punctuation off before WordPiece.
    if token.startswith(SENTENCEPIECE_WORD_START) or not token:
      return False
    return not all(unicodedata.category(c).startswith("P") for c in token)


def read_wordpiece_vocab(vocab_path: str) -> List[str]:
  """One token per line, the line number is the id (BERT's vocab.txt format)."""
  with tf.io.gfile.GFile(vocab_path, "r") as f:
    return [line.rstrip("\n").rstrip("\r") for line in f if line.strip()]


def load_tokenizer(vocab_path: str, vocab_type: str = WORDPIECE, do_lower_case: bool = True) -> Tokenizer:
  if not tf.io.gfile.exists(vocab_path):
    raise TokenizerError(f"vocab file {vocab_path!r} does not exist")
  if vocab_type == WORDPIECE:
    return WordpieceTokenizer(read_wordpiece_vocab(vocab_path), do_lower_case, origin=vocab_path)
  if vocab_type == SENTENCEPIECE:
    with tf.io.gfile.GFile(vocab_path, "rb") as f:
      return SentencepieceTokenizer(f.read(), do_lower_case, origin=vocab_path)
  raise TokenizerError(f"unknown vocab_type {vocab_type!r}; expected one of {list(VOCAB_TYPES)}")


def from_manifest(manifest: manifest_lib.Manifest, data_dir: str) -> Tokenizer:
  """The tokenizer the data in `data_dir` was built with, checked against the manifest's ids."""
  tokenizer = load_tokenizer(manifest.vocab_path(data_dir), manifest.vocab_type, manifest.do_lower_case)
  if tokenizer.vocab_size != manifest.vocab_size or tokenizer.special_token_ids != manifest.special_token_ids:
    raise manifest_lib.DataError(
        f"vocab {manifest.vocab_path(data_dir)!r} ({tokenizer.vocab_size} tokens, special ids "
        f"{tokenizer.special_token_ids}) does not match the manifest in {data_dir!r} ({manifest.vocab_size} tokens, "
        f"special ids {manifest.special_token_ids}); rebuild the data")
  return tokenizer
