"""Vocab specs, a seeded sentence sample to learn from, and vocab learning to an exact size.

`--vocab` is one of
  wordpiece:SIZE                 BERT WordPiece (cased or uncased, as --do_lower_case says)
  sentencepiece:SIZE             SentencePiece unigram, as ALBERT (same as sentencepiece_unigram:SIZE)
  sentencepiece_bpe:SIZE         SentencePiece BPE
or the path of an existing vocab (`*.model` is a SentencePiece model, anything else a WordPiece
`vocab.txt`). A learned vocab has the special tokens at ids 0..4 and exactly SIZE entries, so a
model's VOCAB_SIZE is known before the data is built.
"""
import collections
import dataclasses
import io
import os
import random
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import wordpiece
from tpu_electra import fileio

# TensorFlow, tensorflow_text and sentencepiece are imported by the functions that learn a vocab:
# a build with a given vocab never needs them (see data_prep.storage).

WORDPIECE = "wordpiece"  # tpu_electra.data.tokenization.WORDPIECE
SENTENCEPIECE = "sentencepiece"  # tpu_electra.data.tokenization.SENTENCEPIECE
RESERVED_TOKENS = list(wordpiece.SPECIAL_TOKENS)
UNUSED_TOKEN = "[unused{}]"
VOCAB_FILE_NAME = "vocab.txt"
SENTENCEPIECE_FILE_NAME = "spm.model"
SENTENCEPIECE_SUFFIX = ".model"
# Learning needs word counts, not every sentence: a million sentences pin down an English
# WordPiece vocab of 30k as well as the full corpus does, at a fraction of the time.
DEFAULT_SAMPLE_SENTENCES = 1_000_000
# The lowest count threshold the WordPiece search tries (a piece seen fewer times never gets in).
# The learner's default (10) starves small corpora; 2 still drops typos seen once.
LEARN_LOWER_THRESHOLD = 2
# SentencePiece model types by --vocab prefix; the plain `sentencepiece` is ALBERT's unigram.
SENTENCEPIECE_MODEL_TYPES = {
    "sentencepiece": "unigram",
    "sentencepiece_unigram": "unigram",
    "sentencepiece_bpe": "bpe",
}
WORDPIECE_PREFIXES = ("wordpiece",)
# How fast the learned vocab shrinks with the count threshold (size ~ threshold^-0.7 on English
# Wikipedia); only steers the search, the result does not depend on it.
ZIPF_EXPONENT = 0.7


class VocabError(ValueError):
  """A vocab spec or vocab file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class VocabSpec:
  vocab_type: str
  size: Optional[int]  # Set when the vocab is learned from the corpus.
  path: Optional[str]  # Set when an existing vocab is reused.
  model_type: Optional[str] = None  # SentencePiece's "unigram" or "bpe" when learned.

  @property
  def learned(self) -> bool:
    return self.path is None


def parse_vocab_spec(spec: str) -> VocabSpec:
  kind, sep, rest = spec.partition(":")
  if sep and (kind in WORDPIECE_PREFIXES or kind in SENTENCEPIECE_MODEL_TYPES) and rest.isdigit():
    size = int(rest)
    if size <= len(RESERVED_TOKENS):
      raise VocabError(f"--vocab={spec}: a vocab needs more than the {len(RESERVED_TOKENS)} special tokens")
    if kind in SENTENCEPIECE_MODEL_TYPES:
      return VocabSpec(SENTENCEPIECE, size, None, SENTENCEPIECE_MODEL_TYPES[kind])
    return VocabSpec(WORDPIECE, size, None)
  if not fileio.exists(spec):
    raise VocabError(f"--vocab={spec!r} is neither wordpiece:SIZE, sentencepiece[_bpe|_unigram]:SIZE nor an "
                     "existing vocab file")
  vocab_type = SENTENCEPIECE if spec.endswith(SENTENCEPIECE_SUFFIX) else WORDPIECE
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


def _is_character(token: str) -> bool:
  return len(token) == 1 or (len(token) == 3 and token.startswith("##"))


def fit_to_size(vocab: Sequence[str], size: int) -> List[str]:
  """Pads with [unusedN] or drops the rarest learned pieces, to exactly `size` entries.

  The learner orders its output as reserved tokens, single characters, then pieces by falling
  count, with the word-continuing characters ("##c") it adds for completeness last. Truncation
  drops pieces from the end but keeps the special tokens and both forms of every character, so
  that every word still tokenizes without [UNK]; only a size below that alphabet cuts into it.
  """
  vocab = list(vocab)
  if len(vocab) >= size:
    excess = len(vocab) - size
    kept_reversed = []
    for index in range(len(vocab) - 1, -1, -1):
      token = vocab[index]
      if excess and index >= len(RESERVED_TOKENS) and not _is_character(token):
        excess -= 1
        continue
      kept_reversed.append(token)
    return kept_reversed[::-1][:size]
  present = set(vocab)
  padding = []
  index = 0
  while len(vocab) + len(padding) < size:
    token = UNUSED_TOKEN.format(index)
    if token not in present:
      padding.append(token)
    index += 1
  return vocab + padding


def count_words(sentences: Sequence[str], do_lower_case: bool, batch_size: int = 1024) -> collections.Counter:
  """Words as BERT's basic tokenizer splits them (the same split FastBertTokenizer applies)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_text.python.ops import bert_tokenizer  # pylint: disable=g-import-not-at-top
  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(sentences), dtype=tf.string)).batch(batch_size)
  splitter = bert_tokenizer.BasicTokenizer(lower_case=do_lower_case)
  return _learner().count_words(dataset.map(splitter.tokenize))


def _learner():
  """tensorflow_text's WordPiece learner (imports TensorFlow)."""
  from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib  # pylint: disable=g-import-not-at-top
  return wordpiece_tokenizer_learner_lib


def _learner_params(size: int) -> "learner.Params":
  return _learner().Params(
      upper_thresh=None, lower_thresh=LEARN_LOWER_THRESHOLD, num_iterations=4, max_input_tokens=int(5e6),
      max_token_length=50, max_unique_chars=1000, vocab_size=size, slack_ratio=0.0, include_joiner_token=True,
      joiner="##", reserved_tokens=RESERVED_TOKENS)


def wordpiece_probe(job: Tuple[Sequence[Tuple[str, int]], int, int]) -> List[str]:
  """The learner's vocab at one count threshold; a top-level function so that workers can run it."""
  word_counts, threshold, size = job
  return _learner().learn_with_thresh(word_counts, threshold, _learner_params(size))


def learn_wordpiece(sentences: Sequence[str], size: int, do_lower_case: bool,
                    map_fn: Callable = map, parallelism: int = 1) -> List[str]:
  """A WordPiece vocab of exactly `size` tokens, special tokens first.

  tensorflow_text's learner makes a vocab from the pieces seen at least `threshold` times, one
  pass over the distinct words per threshold (seconds to minutes each). We want the largest
  threshold whose vocab still has `size` tokens, then drop its rarest extra pieces (the learner
  orders pieces by falling count). The vocab shrinks as the threshold grows, so a bracketing
  search from an estimate finds it: in English text the threshold sits near words / (8 * size),
  and the search usually needs two or three probes. `map_fn` runs `parallelism` probes at once (the next
  one on the search path and its neighbours, speculatively); the search path, and so the vocab,
  is the same whatever the parallelism.
  """
  if not sentences:
    raise VocabError("no sentences to learn a vocab from: the corpus produced no text")
  start = time.monotonic()
  counts = count_words(sentences, do_lower_case)
  logging.info("vocab: %d distinct words counted in %.0f s; searching the count threshold that gives %d tokens",
               len(counts), time.monotonic() - start, size)
  params = _learner_params(size)
  learner = _learner()
  words = learner.get_input_words(counts.items(), params.reserved_tokens, params.max_token_length)
  allowed = learner.get_allowed_chars(words, params.max_unique_chars)
  words = learner.filter_input_words(words, allowed, params.max_input_tokens)
  if not words:
    raise VocabError("no words to learn a vocab from: the corpus produced no usable text")
  highest = max(LEARN_LOWER_THRESHOLD, max(count for _, count in words))
  estimate = -(-sum(counts.values()) // (8 * size))
  vocab = _largest_threshold_vocab(words, size, LEARN_LOWER_THRESHOLD, highest, estimate, map_fn, parallelism)
  vocab = fit_to_size(vocab, size)
  if vocab[:len(RESERVED_TOKENS)] != RESERVED_TOKENS:
    raise VocabError(f"the learned vocab does not start with {RESERVED_TOKENS}: {vocab[:len(RESERVED_TOKENS)]}")
  return vocab


def _largest_threshold_vocab(words, size: int, lowest: int, highest: int, estimate: int, map_fn: Callable,
                             parallelism: int) -> List[str]:
  """The vocab of the largest threshold in [lowest, highest] with at least `size` tokens.

  When even `lowest` gives fewer, its vocab (which fit_to_size pads). Each next threshold is
  interpolated from the last vocab size, as if the vocab shrank like threshold^-ZIPF_EXPONENT
  (about what English shows), and kept strictly inside the bracket found so far.
  """
  probed: Dict[int, List[str]] = {}

  def vocab_at(threshold: int) -> List[str]:
    if threshold not in probed:
      # Speculation: the answer is usually next to the threshold probed now, and the estimate (a
      # ceiling) tends to land just above it.
      wanted = [threshold, threshold - 1, threshold + 1][:max(1, parallelism)]
      wanted = [t for t in wanted if lowest <= t <= highest and t not in probed]
      start = time.monotonic()
      for t, vocab in zip(wanted, map_fn(wordpiece_probe, [(words, t, size) for t in wanted])):
        probed[t] = vocab
      # A probe is a pass over the distinct words (seconds to minutes): each one reports.
      logging.info("vocab: count threshold %s gives %s tokens (want %d; %.0f s)", "/".join(map(str, wanted)),
                   "/".join(str(len(probed[t])) for t in wanted), size, time.monotonic() - start)
    return probed[threshold]

  good, bad = lowest - 1, highest + 1  # Largest threshold known big enough, smallest known too small.
  threshold = min(max(estimate, lowest), highest)
  while bad - good > 1:
    found = len(vocab_at(threshold))
    if found >= size:
      good = threshold
    else:
      bad = threshold
    guess = int(round(threshold * (found / size) ** (1.0 / ZIPF_EXPONENT)))
    threshold = min(max(guess, good + 1), bad - 1)
  return probed[good] if good >= lowest else probed[lowest]


def write_vocab(vocab: Sequence[str], path: str) -> None:
  fileio.write_atomic(path, "".join(token + "\n" for token in vocab))


def learn_sentencepiece(sentences: Sequence[str], size: int, do_lower_case: bool, model_type: str = "unigram") -> bytes:
  """A SentencePiece model (unigram or BPE) of exactly `size` pieces, special tokens at ids 0..4.

  [PAD] and [UNK] take SentencePiece's pad and unk slots; [CLS], [SEP] and [MASK] are control
  symbols: they have ids but are never produced from text, so a literal "[MASK]" in the corpus
  cannot pose as a mask. BOS/EOS are off because the packer adds [CLS]/[SEP] itself.
  """
  if not sentences:
    raise VocabError("no sentences to learn a vocab from: the corpus produced no text")
  if do_lower_case:
    # The tokenizer case-folds its input, so the model must be learned on case-folded text too.
    sentences = [s.casefold() for s in sentences]
  import sentencepiece  # pylint: disable=g-import-not-at-top
  model = io.BytesIO()
  try:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=size, model_type=model_type,
        pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=-1, eos_id=-1,
        control_symbols=RESERVED_TOKENS[2:], character_coverage=0.9995, num_threads=os.cpu_count() or 1,
        minloglevel=2)
  except RuntimeError as e:
    reason = str(e).strip().splitlines()[-1]
    raise VocabError(f"SentencePiece could not learn {size} pieces ({reason}); ask for a smaller size or give more text") from None
  return model.getvalue()


def write_bytes(data: bytes, path: str) -> None:
  fileio.write_atomic(path, data)
