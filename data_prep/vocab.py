"""Vocab specs, a seeded sentence sample to learn from, and WordPiece learning to an exact size.

`--vocab` is `wordpiece:SIZE` or `sentencepiece:SIZE` (learn one from the corpus) or the path of an
existing vocab (`*.model` is a SentencePiece model, anything else a WordPiece `vocab.txt`). A
learned vocab has the special tokens at ids 0..4 and exactly SIZE entries, so a model's VOCAB_SIZE
is known before the data is built.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import dataclasses
import io
import os
import random
from typing import List, Optional, Sequence

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset
import sentencepiece

from tpu_electra.data import tokenization

RESERVED_TOKENS = list(tokenization.SPECIAL_TOKENS)
UNUSED_TOKEN = "[unused{}]"
VOCAB_FILE_NAME = "vocab.txt"
SENTENCEPIECE_FILE_NAME = "spm.model"
SENTENCEPIECE_SUFFIX = ".model"
# Learning needs word counts, not every sentence: a million sentences pin down an English
# WordPiece vocab of 30k as well as the full corpus does, at a fraction of the time.
DEFAULT_SAMPLE_SENTENCES = 1_000_000
# The learner drops words seen fewer times than this before searching its count threshold.
# Its default (10) starves small corpora; 2 still drops typos seen once.
LEARN_LOWER_THRESHOLD = 2


class VocabError(ValueError):
  """A vocab spec or vocab file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class VocabSpec:
  vocab_type: str
  size: Optional[int]  # Set when the vocab is learned from the corpus.
  path: Optional[str]  # Set when an existing vocab is reused.

  @property
  def learned(self) -> bool:
    return self.path is None


def parse_vocab_spec(spec: str) -> VocabSpec:
  kind, sep, rest = spec.partition(":")
  if sep and kind in tokenization.VOCAB_TYPES and rest.isdigit():
    size = int(rest)
    if size <= len(RESERVED_TOKENS):
      raise VocabError(f"--vocab={spec}: a vocab needs more than the {len(RESERVED_TOKENS)} special tokens")
    return VocabSpec(kind, size, None)
  if not tf.io.gfile.exists(spec):
    raise VocabError(f"--vocab={spec!r} is neither wordpiece:SIZE nor an existing vocab file")
  vocab_type = tokenization.SENTENCEPIECE if spec.endswith(SENTENCEPIECE_SUFFIX) else tokenization.WORDPIECE
  return VocabSpec(vocab_type, None, spec)


class SentenceSample:
  """A uniform, seeded sample of at most `capacity` sentences from a stream (reservoir sampling)."""

  def __init__(self, capacity: int, seed: int):
    self.capacity = capacity
    self.seen = 0
    self.sentences: List[str] = []
    self._rng = random.Random(seed)

  def add(self, sentence: str) -> None:
    self.seen += 1
    if len(self.sentences) < self.capacity:
      self.sentences.append(sentence)
      return
    slot = self._rng.randrange(self.seen)
    if slot < self.capacity:
      self.sentences[slot] = sentence


def fit_to_size(vocab: Sequence[str], size: int) -> List[str]:
  """Pads with [unusedN] or drops the rarest learned tokens, to exactly `size` entries.

  The learner orders its output as reserved tokens, single characters, then pieces by falling
  count, so truncation removes the rarest pieces and never a character or a special token.
  """
  vocab = list(vocab)
  if len(vocab) >= size:
    return vocab[:size]
  present = set(vocab)
  padding = []
  index = 0
  while len(vocab) + len(padding) < size:
    token = UNUSED_TOKEN.format(index)
    if token not in present:
      padding.append(token)
    index += 1
  return vocab + padding


def learn_wordpiece(sentences: Sequence[str], size: int, do_lower_case: bool, batch_size: int = 1024) -> List[str]:
  """A WordPiece vocab of exactly `size` tokens, special tokens first."""
  if not sentences:
    raise VocabError("no sentences to learn a vocab from: the corpus produced no text")
  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(sentences), dtype=tf.string)).batch(batch_size)
  # The learner binary-searches a count threshold between these bounds, one full pass over the
  # distinct words per probe (about 5 s for the embedded corpus). Its default bounds (10 to 10^7)
  # cost a dozen probes. In English text the threshold that yields `size` pieces sits near
  # words / (8 * size), so the search starts at words / (4 * size): four probes on the embedded
  # corpus. A bound that is too low only makes the vocab too large, and fit_to_size then drops
  # its rarest pieces.
  num_words = sum(len(s.split()) for s in sentences)
  upper = max(LEARN_LOWER_THRESHOLD + 1, num_words // (4 * size))
  learned = bert_vocab_from_dataset.bert_vocab_from_dataset(
      dataset,
      vocab_size=size,
      reserved_tokens=RESERVED_TOKENS,
      bert_tokenizer_params={"lower_case": do_lower_case},
      learn_params={"lower_thresh": LEARN_LOWER_THRESHOLD, "upper_thresh": upper})
  vocab = fit_to_size(learned, size)
  if vocab[:len(RESERVED_TOKENS)] != RESERVED_TOKENS:
    raise VocabError(f"the learned vocab does not start with {RESERVED_TOKENS}: {vocab[:len(RESERVED_TOKENS)]}")
  return vocab


def write_vocab(vocab: Sequence[str], path: str) -> None:
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write("".join(token + "\n" for token in vocab))
  tf.io.gfile.rename(tmp, path, overwrite=True)


def learn_sentencepiece(sentences: Sequence[str], size: int, do_lower_case: bool) -> bytes:
  """A unigram SentencePiece model of exactly `size` pieces, special tokens at ids 0..4.

  [PAD] and [UNK] take SentencePiece's pad and unk slots; [CLS], [SEP] and [MASK] are control
  symbols: they have ids but are never produced from text, so a literal "[MASK]" in the corpus
  cannot pose as a mask. BOS/EOS are off because the packer adds [CLS]/[SEP] itself.
  """
  if not sentences:
    raise VocabError("no sentences to learn a vocab from: the corpus produced no text")
  if do_lower_case:
    # The tokenizer case-folds its input, so the model must be learned on case-folded text too.
    sentences = [s.casefold() for s in sentences]
  model = io.BytesIO()
  try:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=size, model_type="unigram",
        pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=-1, eos_id=-1,
        control_symbols=RESERVED_TOKENS[2:], character_coverage=0.9995, num_threads=os.cpu_count() or 1,
        minloglevel=2)
  except RuntimeError as e:
    reason = str(e).strip().splitlines()[-1]
    raise VocabError(f"SentencePiece could not learn {size} pieces ({reason}); ask for a smaller size or give more text") from None
  return model.getvalue()


def write_bytes(data: bytes, path: str) -> None:
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb") as f:
    f.write(data)
  tf.io.gfile.rename(tmp, path, overwrite=True)
