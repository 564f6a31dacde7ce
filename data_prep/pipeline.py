"""The stages of a build as functions of files, shared by the local runner and the Beam runner.

  parts ──extract_part──▶ _work/text/part-N.txt (+ .json)         one task per input part (with
                                                                   several local workers, one per
                                                                   file of a part, then joined)
        ──learn_vocab───▶ _work/vocab/<vocab>                      one task (probes in parallel)
        ──write_unit────▶ _work/examples/unit-N-B.rec,             one task per ~work_unit text
                          held-out-N-B.rec (+ .json)
        ──write_shard───▶ pretrain-I-of-K.tfrecord,                one task per shard
                          eval-I-of-K.tfrecord
        ──finish────────▶ vocab copied in, manifest.json, _work removed

The held-out split is made of whole documents, chosen by the content of each document: a
document's bucket is a hash of its sentences (one of HELD_OUT_BUCKETS), and the documents of the
lowest buckets, up to --held_out_fraction of the corpus text, are held out. Extraction counts the
text bytes per bucket, so the cut-off bucket is known before the vocab is learned (from training
documents only) and before any example is written; every unit then sends each of its documents to
the training or the held-out examples. Nothing of this depends on which worker reads a document or
when, and an exact duplicate of a held-out document is held out too. A part of text that must never
be trained on (sources.Part.held_out: PTB's valid and test splits) goes to the held-out split whole;
its text does not count towards --held_out_fraction, and with --held_out_fraction=0 it is left out.

Every task writes under a temporary name and renames when complete, and returns what a later
stage needs; a task whose output exists returns it without redoing the work, which is what makes
a killed build resumable. Every random choice is seeded from the build seed and the task's own
identity (part, block, shard), never from the order or the process tasks run in, so the output
is the same for any number of workers and for either runner.

A unit's examples are made in batches, with no Python step per token: with a WordPiece vocab its
staged bytes go to data_prep.wordpiece whole (the ids of tensorflow_text's FastBertTokenizer,
computed with numpy and a table of the tokens seen, without TensorFlow) and stay numpy arrays (ids,
sentence lengths); SentencePiece goes through its tensorflow_text op a few thousand sentences at
a time. Packing (examples.pack_documents) walks sentence lengths only, and the records of
thousands of examples are written by numpy (data_prep.tfexample). A build with a WordPiece vocab
and without --static_masking never imports TensorFlow (tpu_electra.fileio does the file
operations): every process would pay for that import, which costs more CPU than a small build's
own work (README, "Benchmarks").

The modules: data_prep.build_config (the settings, task records, work directory), data_prep.extract
(stage 1), this one (the held-out split, stages 2 to 5), data_prep.executor (running tasks).
"""
import dataclasses
import os
import random
import time
import zlib
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from data_prep import corpus_readers
from data_prep import examples as examples_lib
from data_prep import extract as extract_lib
from data_prep import shards as shards_lib
from data_prep import tfexample
from data_prep import vocab as vocab_lib
from data_prep import wordpiece
from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib
from data_prep.build_config import (EVAL_SHARD_PREFIX, HELD_OUT_BUCKETS, MB, SHARD_PREFIX, BuildConfig, UnitTask, VocabInfo,
                                    read_json, work_dir, write_json)
from data_prep.extract import document_bucket

# Sentences per tokenizer call: large enough that op overhead vanishes, small enough to keep the
# token lists of one batch in a few MB.
TOKENIZE_BATCH_SENTENCES = 4096
# Examples serialized per numpy pass: large enough to amortize the passes, small enough that the
# padded [N, bytes] work arrays stay a few tens of MB.
SERIALIZE_BATCH = 4096
# Examples masked per call of the masking ops (bounds the [B, P, L] one-hot it builds).
MASK_BATCH = 512


def held_out_below(config: BuildConfig, summaries: Sequence[Dict]) -> int:
  """The first bucket that is not held out: the lowest buckets hold --held_out_fraction of the text.

  At least one document is held out when the flag is above 0, but never all of them: when the cut
  would take every document (a corpus of one), nothing is held out, with a warning. Held-out parts
  are held out whole and count for nothing here.
  """
  if config.held_out_fraction <= 0:
    return 0
  counts = [0] * HELD_OUT_BUCKETS
  for summary in _trainable(summaries):
    for bucket, size in summary["buckets"]:
      counts[bucket] += size
  total = sum(counts)
  target = config.held_out_fraction * total
  held = 0
  for bucket, size in enumerate(counts):
    held += size
    if size and held >= target:
      if held < total:
        return bucket + 1
      logging.warning("--held_out_fraction=%s would hold out every document of this corpus; no held-out split",
                      config.held_out_fraction)
      return 0
  return 0


def _trainable(summaries: Sequence[Dict]) -> List[Dict]:
  """The summaries of the parts that are not held out whole (a summary of an older build has no "held_out")."""
  return [summary for summary in summaries if not summary.get("held_out")]


def staged_sentences(summaries: Sequence[Dict], held_out: int = 0) -> Iterator[str]:
  """Sentences of the training documents (buckets from `held_out` on), in order."""
  for summary in sorted(_trainable(summaries), key=lambda s: s["index"]):
    for document in corpus_readers.read_text_documents(summary["path"]):
      if document_bucket(document.paragraphs) >= held_out:
        yield from document.paragraphs


# Stage 2: vocab.


def learn_vocab(config: BuildConfig, summaries: Sequence[Dict], map_fn: Callable = map,
                parallelism: int = 1) -> VocabInfo:
  """The vocab the examples use: an existing one, or one learned from a seeded sample of sentences."""
  spec = vocab_lib.parse_vocab_spec(config.vocab)
  if not spec.learned:
    return VocabInfo(spec.path, os.path.basename(spec.path), spec.vocab_type)
  directory = os.path.join(work_dir(config.output_dir), "vocab")
  info_path = os.path.join(directory, "vocab.json")
  if fileio.exists(info_path):
    return VocabInfo(**read_json(info_path))
  sample = vocab_lib.SentenceSample(config.vocab_sample_sentences, config.seed)
  # Learned from training documents only: held-out text must not shape the vocab either.
  for sentence in staged_sentences(summaries, held_out_below(config, summaries)):
    sample.add(sentence)
  start = time.monotonic()
  logging.info("vocab: learning %d %s tokens from %d of %d sentences", spec.size, spec.model_type or spec.vocab_type,
               len(sample.sentences), sample.seen)
  if spec.vocab_type == vocab_lib.SENTENCEPIECE:
    name = vocab_lib.SENTENCEPIECE_FILE_NAME
    model = vocab_lib.learn_sentencepiece(sample.sentences, spec.size, config.do_lower_case, spec.model_type)
    vocab_lib.write_bytes(model, os.path.join(directory, name))
  else:
    name = vocab_lib.VOCAB_FILE_NAME
    vocab = vocab_lib.learn_wordpiece(sample.sentences, spec.size, config.do_lower_case, map_fn, parallelism)
    vocab_lib.write_vocab(vocab, os.path.join(directory, name))
    logging.info("vocab: %d [unused] tokens pad it to the requested size", sum(t.startswith("[unused") for t in vocab))
  logging.info("vocab: %s learned in %.0f s", name, time.monotonic() - start)
  info = VocabInfo(os.path.join(directory, name), name, spec.vocab_type, len(sample.sentences))
  write_json(info_path, dataclasses.asdict(info))
  return info


# Stage 3: examples.


def unit_tasks(config: BuildConfig, summaries: Sequence[Dict], vocab: VocabInfo) -> List[UnitTask]:
  tasks = []
  held_out = held_out_below(config, summaries)
  for summary in sorted(summaries, key=lambda s: s["index"]):
    bounds = list(summary["blocks"]) + [summary["bytes"]]
    # Every bucket is below HELD_OUT_BUCKETS: each document of a held-out part is held out.
    below = HELD_OUT_BUCKETS if summary.get("held_out") else held_out
    for block, (start, end) in enumerate(zip(bounds, bounds[1:])):
      if end > start:
        tasks.append(UnitTask(summary["index"], block, summary["path"], start, end, work_dir(config.output_dir),
                              config, vocab, below))
  return tasks


_TOKENIZERS: Dict[Tuple[str, str, bool], "tokenization.Tokenizer"] = {}


def _tokenizer(vocab: VocabInfo, do_lower_case: bool) -> "tokenization.Tokenizer":
  """One tokenizer per process and vocab: workers run many units.

  WordPiece: data_prep.wordpiece (the ids of tensorflow_text's op, without TensorFlow); SentencePiece:
  the tensorflow_text op of tpu_electra.data.tokenization.
  """
  key = (vocab.path, vocab.vocab_type, do_lower_case)
  if key not in _TOKENIZERS:
    if vocab.vocab_type == vocab_lib.WORDPIECE:
      _TOKENIZERS[key] = wordpiece.load_tokenizer(vocab.path, do_lower_case)
    else:
      from tpu_electra.data import tokenization  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
      _TOKENIZERS[key] = tokenization.load_tokenizer(vocab.path, vocab.vocab_type, do_lower_case)
  return _TOKENIZERS[key]


@dataclasses.dataclass(frozen=True)
class TokenizedDocuments:
  """Token ids of documents, flat: all `tokens` back to back, then the token count of every sentence
  (`sentence_lengths`) and the sentence count of every document (`document_sizes`)."""
  tokens: np.ndarray
  sentence_lengths: np.ndarray
  document_sizes: np.ndarray

  def __len__(self) -> int:
    return len(self.document_sizes)

  def as_lists(self) -> List[List[List[int]]]:
    """Per document, per sentence, the ids (for the next-sentence packer, which works on lists)."""
    sentences = np.split(self.tokens, np.cumsum(self.sentence_lengths)[:-1]) if len(self.sentence_lengths) else []
    sentences = [s.tolist() for s in sentences]
    bounds = np.concatenate([[0], np.cumsum(self.document_sizes)]).tolist()
    return [sentences[a:b] for a, b in zip(bounds, bounds[1:])]


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer: "tokenization.Tokenizer") -> TokenizedDocuments:
  """All sentences through the tokenizer, TOKENIZE_BATCH_SENTENCES per call, kept as flat arrays.

  data_prep.wordpiece gives arrays itself; the ragged result of a tensorflow_text op is taken apart
  with numpy (values and row lengths) instead of becoming Python lists, which cost as much as the
  tokenizing itself.
  """
  sentences = [s for document in documents for s in document]
  tokens, lengths = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
  tokenize = getattr(tokenizer, "tokenize_sentences", None) or (lambda batch: _tokenize_with_op(tokenizer, batch))
  for start in range(0, len(sentences), TOKENIZE_BATCH_SENTENCES):
    ids, counts = tokenize(sentences[start:start + TOKENIZE_BATCH_SENTENCES])
    tokens.append(ids)
    lengths.append(counts)
  sizes = np.array([len(document) for document in documents], np.int64)
  return TokenizedDocuments(np.concatenate(tokens), np.concatenate(lengths), sizes)


def _tokenize_with_op(tokenizer: "tokenization.Tokenizer", sentences: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (loaded by the tokenizer already)
  ragged = tokenizer.tokenize_tensor(tf.constant(list(sentences), tf.string))
  return (ragged.flat_values.numpy().astype(np.int64, copy=False),
          ragged.row_lengths().numpy().astype(np.int64, copy=False))


def _stable_seed(*parts) -> int:
  return zlib.crc32(":".join(str(p) for p in parts).encode("utf-8"))


def unit_path(task: UnitTask, held_out: bool = False) -> str:
  name = "held-out" if held_out else "unit"
  return os.path.join(task.work_dir, "examples", f"{name}-{task.part_index:05d}-{task.block_index:05d}.rec")


def write_unit(task: UnitTask) -> Dict:
  """Tokenizes, packs and (with static masking) masks the documents of one unit into its record files.

  Training documents go to one record file, held-out documents to another (summary["eval"]); each
  split is packed on its own, so no example (nor a next-sentence partner) mixes the two.
  """
  path = unit_path(task)
  summary_path = path[:-len(".rec")] + ".json"
  if fileio.exists(summary_path):
    return read_json(summary_path)
  config = task.config
  tokenizer = _tokenizer(task.vocab, config.do_lower_case)
  if hasattr(tokenizer, "tokenize_text"):
    training, held_out = _tokenize_staged_text(task, tokenizer)
  else:
    texts = [d.paragraphs for d in corpus_readers.read_text_documents(task.staged_path, task.start, task.end)]
    held = [document_bucket(text) < task.held_out_below for text in texts]
    training = tokenize_documents([t for t, h in zip(texts, held) if not h], tokenizer)
    held_out = tokenize_documents([t for t, h in zip(texts, held) if h], tokenizer)
  summary = _write_examples(path, training, task, tokenizer, held_out=False)
  # One copy of each held-out example: evaluation gains nothing from differently masked copies.
  summary["eval"] = _write_examples(unit_path(task, held_out=True), held_out, task, tokenizer, held_out=True)
  write_json(summary_path, summary)
  return summary


def _pack(documents: TokenizedDocuments, packing: examples_lib.PackingConfig, next_sentence: bool,
          rng: random.Random) -> examples_lib.ExampleBatch:
  if not next_sentence:
    return examples_lib.pack_documents(documents.tokens, documents.sentence_lengths.tolist(),
                                       documents.document_sizes.tolist(), packing, rng)
  # Next-sentence pairs draw B from other documents: still the per-example packer, on lists.
  lists = documents.as_lists()
  packed = [e for index in range(len(lists)) for e in examples_lib.pack_next_sentence(lists, index, packing, rng)]
  return examples_lib.ExampleBatch.from_examples(packed, packing.max_seq_length, next_sentence=True)


def _tokenize_staged_text(task: UnitTask, tokenizer: wordpiece.WordpieceTokenizer
                          ) -> Tuple[TokenizedDocuments, TokenizedDocuments]:
  """The training and the held-out documents of a unit, tokenized straight from the bytes of its staged text.

  What tokenize_documents gives for the documents of corpus_readers.read_text_documents, without a Python
  step per sentence: the staged text is each document's sentences, a newline after each, then a
  blank line (extract_part), so a blank line ends a document and every other line is a sentence.
  """
  with fileio.open_file(task.staged_path, "rb") as f:
    f.seek(task.start)
    data = f.read(task.end - task.start)
  documents = [d for d in data.split(b"\n\n") if d]
  held = np.array([extract_lib.bucket_of_bytes(d) < task.held_out_below for d in documents], bool)
  ids, per_line = tokenizer.tokenize_text(data)
  text = np.frombuffer(data, np.uint8)
  line_ends = np.append(np.flatnonzero(text == 10), len(text))
  blank = np.diff(line_ends, prepend=-1) == 1  # Lines of no bytes.
  document_of_sentence = np.cumsum(blank)[~blank]
  sentence_lengths = per_line[~blank]
  document_sizes = np.bincount(document_of_sentence, minlength=len(documents))[:len(documents)]
  if document_sizes.sum() != len(sentence_lengths):
    raise ValueError(f"{task.staged_path}[{task.start}:{task.end}] is not staged text of whole documents")

  def split(in_split: np.ndarray) -> TokenizedDocuments:
    sentences = in_split[document_of_sentence]
    return TokenizedDocuments(ids[np.repeat(sentences, sentence_lengths)], sentence_lengths[sentences],
                              document_sizes[in_split])

  return split(~held), split(held)


def _write_examples(path: str, documents: TokenizedDocuments, task: UnitTask, tokenizer: "tokenization.Tokenizer",
                    held_out: bool) -> Dict:
  config = task.config
  packing = examples_lib.PackingConfig(
      max_seq_length=config.max_seq_length, cls_id=tokenizer.special_token_ids["[CLS]"],
      sep_id=tokenizer.special_token_ids["[SEP]"], short_seq_prob=config.short_seq_prob,
      single_segment_prob=config.single_segment_prob)
  stream = "held-out-examples" if held_out else "examples"
  rng = random.Random(f"{config.seed}:{stream}:{task.part_index}:{task.block_index}")
  packed = _pack(documents, packing, config.next_sentence, rng)
  dupe_factor = 1 if held_out else config.dupe_factor
  writer = shards_lib.RecordWriter(path)
  try:
    if config.static_masking:
      for records in _masked_records(packed, task, tokenizer, dupe_factor, held_out):
        writer.write_batch(records)
    else:
      for start in range(0, len(packed), SERIALIZE_BATCH):
        features = packed.rows(start, start + SERIALIZE_BATCH).features()
        writer.write_batch(tfexample.serialize_batch(features, length_prefix=True))
  except BaseException:
    writer.abort()
    raise
  writer.close()
  return {"path": path, "documents": len(documents), "examples": len(packed), "records": writer.num_records,
          "bytes": writer.num_bytes, "tokens": packed.num_tokens * dupe_factor}


def _masked_records(packed: examples_lib.ExampleBatch, task: UnitTask, tokenizer: "tokenization.Tokenizer",
                    dupe_factor: int, held_out: bool) -> Iterator[tfexample.RecordBatch]:
  """Each example `dupe_factor` times, each copy with masks of its own (stateless seeds: reproducible).

  Records come MASK_BATCH examples at a time, every copy of a batch before the next batch.
  """
  from tpu_electra.data import masking  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  config = task.config
  continuation = np.array(tokenizer.word_continuation(), bool) if config.whole_word_masking else None
  masking_cfg = config.masking_config()
  # The training stream keeps the seeds it had before there was a held-out split.
  stream = ("held-out",) if held_out else ()
  for batch_index, start in enumerate(range(0, len(packed), MASK_BATCH)):
    batch = packed.rows(start, start + MASK_BATCH)
    for dupe in range(dupe_factor):
      seed = [config.seed, _stable_seed(*stream, task.part_index, task.block_index, batch_index, dupe)]
      masked = masking.mask_tokens(batch.input_ids, batch.input_mask, masking_cfg, tokenizer.special_token_ids,
                                   tokenizer.vocab_size, stateless_seed=seed, word_continuation=continuation)
      columns = {name: masked[name].numpy() for name in examples_lib.MASKED_LM_FEATURES}
      yield tfexample.serialize_batch({**batch.features(), **columns}, examples_lib.FLOAT_FEATURES, length_prefix=True)


# Stage 4: shards.


def shard_tasks(config: BuildConfig, unit_summaries: Sequence[Dict]) -> List[shards_lib.ShardTask]:
  """Training shards, then held-out shards; the same sizing rule for both."""
  tasks = []
  for prefix, summaries in ((SHARD_PREFIX, unit_summaries), (EVAL_SHARD_PREFIX, [s["eval"] for s in unit_summaries])):
    units = sorted((shards_lib.UnitRecords(s["path"], s["records"], s["bytes"]) for s in summaries),
                   key=lambda u: u.path)
    tasks += shards_lib.plan_shards(units, prefix, int(config.target_shard_size_mb * MB), config.min_shards,
                                    int(config.min_shard_size_mb * MB), config.seed)
  return tasks


class ShardWriter:
  """shards.write_shard bound to the output dir; a class, not a closure, so that it pickles."""

  def __init__(self, output_dir: str):
    self._output_dir = output_dir

  def __call__(self, task: shards_lib.ShardTask) -> Tuple[str, manifest_lib.ShardInfo]:
    return shards_lib.write_shard(self._output_dir, task, os.path.join(work_dir(self._output_dir), "shards"))


# Stage 5: manifest.


def masking_settings(config: BuildConfig, max_seq_length: int) -> Optional[Dict]:
  if not config.static_masking:
    return None
  masking_cfg = config.masking_config()
  return {
      "dupe_factor": config.dupe_factor,
      "mask_rate": masking_cfg.mask_rate,
      "mask_token_fraction": masking_cfg.mask_token_fraction,
      "random_token_fraction": masking_cfg.random_token_fraction,
      "max_predictions_per_seq": masking_cfg.num_predictions(max_seq_length),
      "whole_word_masking": config.whole_word_masking,
      "features": list(examples_lib.MASKED_LM_FEATURES),
  }


def finish(config: BuildConfig, settings: Dict, settings_hash: str, part_summaries: Sequence[Dict], vocab: VocabInfo,
           unit_summaries: Sequence[Dict],
           written: Sequence[Tuple[str, manifest_lib.ShardInfo]]) -> manifest_lib.Manifest:
  """Copies the vocab in and writes the manifest, the mark of finished data; then drops `_work`.

  `written` is (name, info) of every shard, training and held-out, in any order.
  """
  manifest_path = os.path.join(config.output_dir, manifest_lib.MANIFEST_NAME)
  if fileio.exists(manifest_path):
    # A retried final step (Beam may retry a bundle): the first attempt finished the data.
    existing = manifest_lib.read_manifest(config.output_dir)
    if existing.settings_hash == settings_hash:
      return existing
  destination = os.path.join(config.output_dir, vocab.file_name)
  if not _same_file(vocab.path, destination):
    fileio.copy(vocab.path, destination)
  tokenizer = _tokenizer(vocab, config.do_lower_case)
  bad_files = sorted({name for s in part_summaries for name in s["bad_files"]})
  settings = dict(settings)
  if vocab.learned_from_sentences:
    settings["vocab_learned_from_sentences"] = vocab.learned_from_sentences
  if bad_files:
    settings["bad_files"] = bad_files
  held_out = held_out_below(config, part_summaries)
  if config.held_out_fraction:
    settings["held_out_buckets"] = [held_out, HELD_OUT_BUCKETS]
  info = dict(written)
  training = sorted(n for n in info if n.startswith(f"{SHARD_PREFIX}-"))
  evaluation = sorted(n for n in info if n.startswith(f"{EVAL_SHARD_PREFIX}-"))
  eval_units = [s["eval"] for s in unit_summaries]
  manifest = manifest_lib.Manifest(
      vocab_file=vocab.file_name,
      vocab_size=tokenizer.vocab_size,
      vocab_type=vocab.vocab_type,
      do_lower_case=config.do_lower_case,
      special_token_ids=dict(tokenizer.special_token_ids),
      max_seq_length=config.max_seq_length,
      shards=training,
      num_documents=sum(s["documents"] for s in unit_summaries),
      num_examples=sum(s["records"] for s in unit_summaries),
      num_tokens=sum(s["tokens"] for s in unit_summaries),
      settings_hash=settings_hash,
      settings=settings,
      sources=list(config.corpus),
      num_bad_files=len(bad_files),
      scalar_features=[examples_lib.NEXT_SENTENCE_LABEL] if config.next_sentence else [],
      max_predictions_per_seq=(config.masking_config().num_predictions(config.max_seq_length)
                               if config.static_masking else 0),
      eval_shards=evaluation,
      num_eval_documents=sum(s["documents"] for s in eval_units),
      num_eval_examples=sum(s["records"] for s in eval_units),
      num_eval_tokens=sum(s["tokens"] for s in eval_units),
      shard_info={name: info[name] for name in training + evaluation})
  manifest_lib.write_manifest(config.output_dir, manifest)
  if not config.keep_work:
    fileio.rmtree(work_dir(config.output_dir))
  return manifest


def _same_file(a: str, b: str) -> bool:
  local = "://" not in a and "://" not in b
  return os.path.abspath(a) == os.path.abspath(b) if local else a == b

