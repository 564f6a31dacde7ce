r"""Builds pretraining data: corpus text -> sentences -> vocab -> packed examples -> TFRecord shards.

  python -m data_prep.build --corpus=wikipedia:embedded --vocab=wordpiece:8192 \
      --max_seq_length=128 --output_dir=/tmp/enwiki_embedded

The run has three stages, each a function of files so that later versions can spread them over
workers: (1) extract: every input file becomes one staged text file of sentences (one per line,
blank line between documents) under `_work/`; (2) vocab: learned from a seeded sample of the staged
sentences, or an existing one copied in; (3) examples: the staged text is tokenized in batches,
packed and written into shards. `manifest.json` is written last and marks the data complete; a
second run with the same settings finds it and stops.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from data_prep import embedded
from data_prep import examples as examples_lib
from data_prep import segment
from data_prep import shards as shards_lib
from data_prep import sources
from data_prep import vocab as vocab_lib
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization

DATA_PREP_VERSION = 1
WORK_DIR = "_work"
SHARD_PREFIX = "pretrain"
MB = 1 << 20
# Sentences per tokenizer call: large enough that op overhead vanishes, small enough to keep the
# token lists of one batch in a few MB.
TOKENIZE_BATCH_SENTENCES = 4096
PROGRESS_EVERY_S = 5.0

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("corpus", None, "KIND:PATH, repeatable: wikipedia:PATH|embedded, text:PATH (file, dir or glob).")
flags.DEFINE_string("vocab", "wordpiece:30522", "wordpiece:SIZE or sentencepiece:SIZE to learn a vocab of exactly SIZE "
                    "tokens, or the path of an existing vocab (vocab.txt for WordPiece, *.model for SentencePiece).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents before WordPiece (uncased model).")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example, [CLS] and [SEP] included.")
flags.DEFINE_string("output_dir", None, "Where the vocab, shards and manifest.json go (local or gs://).")
flags.DEFINE_integer("seed", 0, "Seed of every random choice (vocab sample, packing, shuffling).")
flags.DEFINE_float("target_shard_size_mb", 128.0, "Approximate size of one shard; the shard count follows from it.")
flags.DEFINE_integer("min_shards", 1, "At least this many shards (e.g. the number of hosts that will read them).")
flags.DEFINE_bool("skip_bad_files", False, "Skip a truncated or corrupt input file (counted in the manifest) "
                  "instead of stopping.")
flags.DEFINE_integer("vocab_sample_sentences", vocab_lib.DEFAULT_SAMPLE_SENTENCES,
                     "Learn the vocab from a seeded uniform sample of at most this many sentences.")
flags.DEFINE_integer("shuffle_buffer", 10000, "Examples shuffled together before they are written.")
flags.DEFINE_float("short_seq_prob", examples_lib.DEFAULT_SHORT_SEQ_PROB, "Share of examples with a random shorter target length.")
flags.DEFINE_float("single_segment_prob", examples_lib.DEFAULT_SINGLE_SEGMENT_PROB,
                   "Share of multi-sentence examples kept as one segment instead of A/B.")
flags.DEFINE_bool("overwrite", False, "Replace data built with other settings in --output_dir.")
flags.DEFINE_bool("keep_text", False, "Keep the staged sentence text under OUTPUT_DIR/_work.")


class BuildError(ValueError):
  """A build that cannot start or finish, in one line."""


@dataclasses.dataclass(frozen=True)
class BuildConfig:
  corpus: Tuple[str, ...]
  vocab: str
  do_lower_case: bool
  max_seq_length: int
  output_dir: str
  seed: int = 0
  target_shard_size_mb: float = 128.0
  min_shards: int = 1
  skip_bad_files: bool = False
  vocab_sample_sentences: int = vocab_lib.DEFAULT_SAMPLE_SENTENCES
  shuffle_buffer: int = 10000
  short_seq_prob: float = examples_lib.DEFAULT_SHORT_SEQ_PROB
  single_segment_prob: float = examples_lib.DEFAULT_SINGLE_SEGMENT_PROB
  overwrite: bool = False
  keep_text: bool = False


@dataclasses.dataclass(frozen=True)
class InputFile:
  kind: str
  path: str
  spec: str


class Progress:
  """Logs counters every few seconds, with the rate of the first one."""

  def __init__(self, stage: str, every_s: float = PROGRESS_EVERY_S):
    self._stage = stage
    self._every_s = every_s
    self._start = time.monotonic()
    self._last = self._start

  def update(self, force: bool = False, **counts: int) -> None:
    now = time.monotonic()
    if not force and now - self._last < self._every_s:
      return
    self._last = now
    elapsed = max(now - self._start, 1e-9)
    first_name, first_value = next(iter(counts.items()))
    text = ", ".join(f"{k}={v}" for k, v in counts.items())
    logging.info("%s: %s (%.0f %s/s, %.0f s)", self._stage, text, first_value / elapsed, first_name, elapsed)


def resolve_inputs(corpus: Sequence[str]) -> List[InputFile]:
  if not corpus:
    raise BuildError("no --corpus given; e.g. --corpus=wikipedia:embedded or --corpus=text:/data/books")
  inputs = []
  for spec_text in corpus:
    spec = sources.parse_corpus_spec(spec_text)
    inputs.extend(InputFile(spec.kind, path, str(spec)) for path in sources.resolve_files(spec))
  return inputs


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def settings_of(config: BuildConfig, inputs: Sequence[InputFile]) -> Dict[str, object]:
  """Everything that determines the output; its hash tells whether existing data can be reused."""
  settings = {
      "data_prep_version": DATA_PREP_VERSION,
      "corpus": list(config.corpus),
      # Names and sizes rather than full paths, so the embedded cache location does not matter.
      "inputs": [{"spec": f.spec, "name": os.path.basename(f.path), "bytes": tf.io.gfile.stat(f.path).length}
                 for f in inputs],
      "vocab": config.vocab,
      "do_lower_case": config.do_lower_case,
      "max_seq_length": config.max_seq_length,
      "seed": config.seed,
      "target_shard_size_mb": config.target_shard_size_mb,
      "min_shards": config.min_shards,
      "skip_bad_files": config.skip_bad_files,
      "vocab_sample_sentences": config.vocab_sample_sentences,
      "shuffle_buffer": config.shuffle_buffer,
      "short_seq_prob": config.short_seq_prob,
      "single_segment_prob": config.single_segment_prob,
      "sentence_splitter": "data_prep.segment (regex + abbreviations)",
  }
  if not config.vocab.startswith(tuple(f"{t}:" for t in tokenization.VOCAB_TYPES)):
    settings["vocab_sha256"] = _file_digest(config.vocab)
  return settings


def settings_hash(settings: Dict[str, object]) -> str:
  return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _read_existing(output_dir: str) -> Optional[manifest_lib.Manifest]:
  try:
    return manifest_lib.read_manifest(output_dir)
  except manifest_lib.DataError:
    return None


def _complete(manifest: manifest_lib.Manifest, output_dir: str) -> bool:
  paths = manifest.shard_paths(output_dir) + [manifest.vocab_path(output_dir)]
  return all(tf.io.gfile.exists(p) for p in paths)


def _same_file(a: str, b: str) -> bool:
  local = "://" not in a and "://" not in b
  return os.path.abspath(a) == os.path.abspath(b) if local else a == b


def _remove_previous(manifest: manifest_lib.Manifest, output_dir: str, keep: str) -> None:
  """Deletes finished data of other settings, except `keep` (a vocab the new build reuses)."""
  # The manifest goes first: a directory without one is never mistaken for finished data.
  tf.io.gfile.remove(os.path.join(output_dir, manifest_lib.MANIFEST_NAME))
  for path in manifest.shard_paths(output_dir) + [manifest.vocab_path(output_dir)]:
    if tf.io.gfile.exists(path) and not _same_file(path, keep):
      tf.io.gfile.remove(path)


# Stage 1: extract.


def stage_name(index: int) -> str:
  return f"text-{index:05d}.txt"


def extract_file(source: InputFile, staged_path: str, progress: Progress, totals: Dict[str, int]) -> int:
  """Writes the sentences of one input file to `staged_path`; returns its number of documents."""
  num_documents = 0
  tmp = staged_path + shards_lib.TMP_SUFFIX
  try:
    with tf.io.gfile.GFile(tmp, "w") as out:
      for document in sources.read_documents(source.kind, source.path):
        sentences = segment.split_document(document.paragraphs)
        if not sentences:
          continue
        out.write("\n".join(sentences) + "\n\n")
        num_documents += 1
        totals["documents"] += 1
        totals["sentences"] += len(sentences)
        progress.update(**totals)
  except BaseException:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
    raise
  tf.io.gfile.rename(tmp, staged_path, overwrite=True)
  return num_documents


def extract(inputs: Sequence[InputFile], work_dir: str, skip_bad_files: bool) -> Tuple[List[str], int, int]:
  """Stage 1 over all inputs: (staged files, documents, bad files skipped)."""
  progress = Progress("extract")
  totals = {"documents": 0, "sentences": 0}
  staged, bad = [], 0
  for index, source in enumerate(inputs):
    path = os.path.join(work_dir, stage_name(index))
    try:
      extract_file(source, path, progress, totals)
    except sources.SourceError as e:
      if not skip_bad_files:
        raise
      bad += 1
      logging.warning("skipping bad input: %s", e)
      continue
    staged.append(path)
  progress.update(force=True, **totals)
  return staged, totals["documents"], bad


def staged_documents(staged: Sequence[str]) -> Iterator[List[str]]:
  for path in staged:
    for document in sources.read_text_documents(path):
      yield list(document.paragraphs)


# Stage 2: vocab.


def build_vocab(config: BuildConfig, staged: Sequence[str]) -> Tuple[str, str, int]:
  """Writes the vocab into the output dir: (file name, vocab type, sentences it was learned from)."""
  spec = vocab_lib.parse_vocab_spec(config.vocab)
  if not spec.learned:
    name = os.path.basename(spec.path)
    destination = os.path.join(config.output_dir, name)
    if not _same_file(spec.path, destination):
      tf.io.gfile.copy(spec.path, destination, overwrite=True)
    return name, spec.vocab_type, 0
  sample = vocab_lib.SentenceSample(config.vocab_sample_sentences, config.seed)
  for sentences in staged_documents(staged):
    for sentence in sentences:
      sample.add(sentence)
  start = time.monotonic()
  logging.info("vocab: learning %d %s tokens from %d of %d sentences", spec.size, spec.vocab_type,
               len(sample.sentences), sample.seen)
  if spec.vocab_type == tokenization.SENTENCEPIECE:
    name = vocab_lib.SENTENCEPIECE_FILE_NAME
    model = vocab_lib.learn_sentencepiece(sample.sentences, spec.size, config.do_lower_case)
    vocab_lib.write_bytes(model, os.path.join(config.output_dir, name))
  else:
    name = vocab_lib.VOCAB_FILE_NAME
    vocab = vocab_lib.learn_wordpiece(sample.sentences, spec.size, config.do_lower_case)
    vocab_lib.write_vocab(vocab, os.path.join(config.output_dir, name))
    logging.info("vocab: %d [unused] tokens pad it to the requested size", sum(t.startswith("[unused") for t in vocab))
  logging.info("vocab: %s learned in %.0f s", name, time.monotonic() - start)
  return name, spec.vocab_type, len(sample.sentences)


# Stage 3: examples.


def _document_batches(staged: Sequence[str]) -> Iterator[List[List[str]]]:
  batch, size = [], 0
  for sentences in staged_documents(staged):
    batch.append(sentences)
    size += len(sentences)
    if size >= TOKENIZE_BATCH_SENTENCES:
      yield batch
      batch, size = [], 0
  if batch:
    yield batch


def tokenized_documents(staged: Sequence[str], tokenizer: tokenization.Tokenizer) -> Iterator[List[List[int]]]:
  """Each staged document as lists of token ids, one tokenizer call per batch of documents."""
  for batch in _document_batches(staged):
    ids = tokenizer.tokenize_batch([s for document in batch for s in document])
    start = 0
    for document in batch:
      yield ids[start:start + len(document)]
      start += len(document)


def write_examples(config: BuildConfig, staged: Sequence[str], tokenizer: tokenization.Tokenizer) -> Tuple[List[str], int, int]:
  """Stage 3: (shard names, examples, non-padding tokens)."""
  packing = examples_lib.PackingConfig(
      max_seq_length=config.max_seq_length,
      cls_id=tokenizer.special_token_ids["[CLS]"],
      sep_id=tokenizer.special_token_ids["[SEP]"],
      short_seq_prob=config.short_seq_prob,
      single_segment_prob=config.single_segment_prob)
  rng = random.Random(config.seed)
  writer = shards_lib.ShardWriter(
      config.output_dir, SHARD_PREFIX, target_bytes=int(config.target_shard_size_mb * MB),
      min_shards=config.min_shards, shuffle_buffer=config.shuffle_buffer, seed=config.seed + 1)
  progress = Progress("examples")
  totals = {"documents": 0, "examples": 0, "tokens": 0}
  for document in tokenized_documents(staged, tokenizer):
    for example in examples_lib.pack_document(document, packing, rng):
      writer.add(example.serialize())
      totals["examples"] += 1
      totals["tokens"] += example.num_tokens
    totals["documents"] += 1
    progress.update(**totals)
  names = writer.close()
  progress.update(force=True, **totals)
  return names, totals["examples"], totals["tokens"]


def build(config: BuildConfig) -> manifest_lib.Manifest:
  """Runs all stages, or returns the existing manifest when the same settings were built before."""
  inputs = resolve_inputs(config.corpus)
  settings = settings_of(config, inputs)
  digest = settings_hash(settings)
  tf.io.gfile.makedirs(config.output_dir)
  existing = _read_existing(config.output_dir)
  if existing is not None:
    same_settings = existing.settings_hash == digest
    if same_settings and _complete(existing, config.output_dir):
      logging.info("%s already holds this data (settings hash %s); nothing to do", config.output_dir, digest)
      return existing
    if not same_settings and not config.overwrite:
      raise BuildError(f"{config.output_dir} holds data built with other settings (hash {existing.settings_hash}, now "
                       f"{digest}); pick another --output_dir or pass --overwrite")
    _remove_previous(existing, config.output_dir, keep=config.vocab)
  # Without a manifest, shards of an interrupted run are leftovers, and a smaller corpus would
  # not overwrite all of them.
  for leftover in tf.io.gfile.glob(os.path.join(config.output_dir, f"{SHARD_PREFIX}-*")):
    tf.io.gfile.remove(leftover)
  work_dir = os.path.join(config.output_dir, WORK_DIR)
  tf.io.gfile.makedirs(work_dir)
  staged, num_documents, num_bad = extract(inputs, work_dir, config.skip_bad_files)
  if num_documents == 0:
    raise BuildError(f"the corpus {list(config.corpus)} produced no documents")
  vocab_file, vocab_type, vocab_sentences = build_vocab(config, staged)
  tokenizer = tokenization.load_tokenizer(os.path.join(config.output_dir, vocab_file), vocab_type, config.do_lower_case)
  shard_names, num_examples, num_tokens = write_examples(config, staged, tokenizer)
  if vocab_sentences:
    settings = dict(settings, vocab_learned_from_sentences=vocab_sentences)
  manifest = manifest_lib.Manifest(
      vocab_file=vocab_file,
      vocab_size=tokenizer.vocab_size,
      vocab_type=vocab_type,
      do_lower_case=config.do_lower_case,
      special_token_ids=dict(tokenizer.special_token_ids),
      max_seq_length=config.max_seq_length,
      shards=shard_names,
      num_documents=num_documents,
      num_examples=num_examples,
      num_tokens=num_tokens,
      settings_hash=digest,
      settings=settings,
      sources=list(config.corpus),
      num_bad_files=num_bad)
  manifest_lib.write_manifest(config.output_dir, manifest)
  if not config.keep_text:
    tf.io.gfile.rmtree(work_dir)
  logging.info("wrote %d examples (%d tokens) from %d documents into %d shard(s) in %s", num_examples, num_tokens,
               num_documents, len(shard_names), config.output_dir)
  return manifest


def config_from_flags() -> BuildConfig:
  if not FLAGS.output_dir:
    raise BuildError("--output_dir is required")
  return BuildConfig(
      corpus=tuple(FLAGS.corpus or ()),
      vocab=FLAGS.vocab,
      do_lower_case=FLAGS.do_lower_case,
      max_seq_length=FLAGS.max_seq_length,
      output_dir=FLAGS.output_dir,
      seed=FLAGS.seed,
      target_shard_size_mb=FLAGS.target_shard_size_mb,
      min_shards=FLAGS.min_shards,
      skip_bad_files=FLAGS.skip_bad_files,
      vocab_sample_sentences=FLAGS.vocab_sample_sentences,
      shuffle_buffer=FLAGS.shuffle_buffer,
      short_seq_prob=FLAGS.short_seq_prob,
      single_segment_prob=FLAGS.single_segment_prob,
      overwrite=FLAGS.overwrite,
      keep_text=FLAGS.keep_text)


EXPECTED_ERRORS = (BuildError, sources.SourceError, embedded.EmbeddedCorpusError, vocab_lib.VocabError,
                   tokenization.TokenizerError, manifest_lib.DataError)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {list(argv[1:])}")
  try:
    build(config_from_flags())
  except EXPECTED_ERRORS as e:
    sys.exit(f"data_prep.build: {e}")


if __name__ == "__main__":
  app.run(main)
