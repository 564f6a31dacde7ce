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
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tpu_electra import fileio

import collections
import dataclasses
import hashlib
import json
import multiprocessing
import os
import queue
import random
import shutil
import threading
import time
import zlib
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from data_prep import examples as examples_lib
from data_prep import segment
from data_prep import shards as shards_lib
from data_prep import sources
from data_prep import tfexample
from data_prep import vocab as vocab_lib
from data_prep import wordpiece
from tpu_electra.data import manifest as manifest_lib

DATA_PREP_VERSION = 3
WORK_DIR = "_work"
SHARD_PREFIX = "pretrain"
EVAL_SHARD_PREFIX = "eval"
# Enough buckets that the held-out share lands within about 1/4096 of the corpus of the flag's
# value, few enough that a part's byte counts per bucket stay a small JSON list.
HELD_OUT_BUCKETS = 4096
DEFAULT_HELD_OUT_FRACTION = 0.01
MB = 1 << 20
# Sentences per tokenizer call: large enough that op overhead vanishes, small enough to keep the
# token lists of one batch in a few MB.
TOKENIZE_BATCH_SENTENCES = 4096
# Examples serialized per numpy pass: large enough to amortize the passes, small enough that the
# padded [N, bytes] work arrays stay a few tens of MB.
SERIALIZE_BATCH = 4096
# Examples masked per call of the masking ops (bounds the [B, P, L] one-hot it builds).
MASK_BATCH = 512
PROGRESS_EVERY_S = 5.0


class BuildError(ValueError):
  """A build that cannot start or finish, in one line."""


@dataclasses.dataclass(frozen=True)
class BuildConfig:
  """Everything a build needs; all but num_workers, runner and the Beam options determine the output."""
  corpus: Tuple[str, ...]
  vocab: str
  do_lower_case: bool
  max_seq_length: int
  output_dir: str
  seed: int = 0
  held_out_fraction: float = DEFAULT_HELD_OUT_FRACTION
  target_shard_size_mb: float = 128.0
  min_shards: int = 64
  min_shard_size_mb: float = 8.0
  skip_bad_files: bool = False
  vocab_sample_sentences: int = vocab_lib.DEFAULT_SAMPLE_SENTENCES
  short_seq_prob: float = examples_lib.DEFAULT_SHORT_SEQ_PROB
  single_segment_prob: float = examples_lib.DEFAULT_SINGLE_SEGMENT_PROB
  next_sentence: bool = False
  static_masking: bool = False
  dupe_factor: int = 1
  mask_rate: float = 0.15
  max_predictions_per_seq: Optional[int] = None
  whole_word_masking: bool = False
  input_split_mb: float = sources.DEFAULT_SPLIT_BYTES / MB
  work_unit_mb: float = 4.0
  overwrite: bool = False
  keep_work: bool = False
  num_workers: int = 1
  runner: str = "local"
  beam_options: str = ""

  def check(self) -> None:
    if self.max_seq_length < 5:
      raise BuildError(f"--max_seq_length={self.max_seq_length} leaves no room for text next to [CLS] and two [SEP]")
    if self.num_workers < 1:
      raise BuildError(f"--num_workers={self.num_workers} must be at least 1")
    if self.min_shards < 1 or self.target_shard_size_mb <= 0 or self.work_unit_mb <= 0 or self.input_split_mb <= 0:
      raise BuildError("--min_shards, --target_shard_size_mb, --work_unit_mb and --input_split_mb must be positive")
    if self.dupe_factor < 1:
      raise BuildError(f"--dupe_factor={self.dupe_factor} must be at least 1")
    if not self.static_masking and (self.dupe_factor != 1 or self.whole_word_masking):
      raise BuildError("--dupe_factor and --whole_word_masking apply to masks written into the data: add "
                       "--static_masking (without it the input pipeline masks every batch anew)")
    if not 0 <= self.held_out_fraction < 1:
      raise BuildError(f"--held_out_fraction={self.held_out_fraction} must be at least 0 and below 1")
    if self.runner not in ("local", "beam"):
      raise BuildError(f"--runner={self.runner!r} is not local or beam")
    if self.static_masking or self.mask_rate != BuildConfig.mask_rate or self.max_predictions_per_seq is not None:
      self.masking_config()  # Checks the flags (the masking module imports TensorFlow: only when they matter).

  def masking_config(self) -> "masking.MaskingConfig":
    from tpu_electra.data import masking  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
    try:
      return masking.MaskingConfig(mask_rate=self.mask_rate, max_predictions_per_seq=self.max_predictions_per_seq)
    except ValueError as e:
      raise BuildError(f"masking flags: {str(e).splitlines()[0]}") from None


@dataclasses.dataclass(frozen=True)
class VocabInfo:
  path: str  # Where tasks read it (the work dir for a learned vocab).
  file_name: str  # Its name in the output directory.
  vocab_type: str
  learned_from_sentences: int = 0


@dataclasses.dataclass(frozen=True)
class ExtractTask:
  index: int
  part: sources.Part
  work_dir: str
  skip_bad_files: bool
  unit_bytes: int


@dataclasses.dataclass(frozen=True)
class UnitTask:
  part_index: int
  block_index: int
  staged_path: str
  start: int
  end: int
  work_dir: str
  config: BuildConfig
  vocab: VocabInfo
  held_out_below: int = 0  # Documents of buckets below this are held out.


# Work directory.


def work_dir(output_dir: str) -> str:
  return os.path.join(output_dir, WORK_DIR)


def _write_json(path: str, value) -> None:
  fileio.write_atomic(path, json.dumps(value, sort_keys=True))


def _read_json(path: str):
  with fileio.open_file(path, "r") as f:
    return json.load(f)


def prepare_work_dir(output_dir: str, settings_hash: str) -> bool:
  """Makes `_work` ready for a build of these settings; True when it resumes an earlier one.

  Work of an interrupted build with the same settings is kept and reused. Anything else there, and
  shards without a manifest, are leftovers of other settings and are removed.
  """
  directory = work_dir(output_dir)
  marker = os.path.join(directory, "settings.json")
  if fileio.exists(marker):
    try:
      if _read_json(marker).get("settings_hash") == settings_hash:
        return True
    except (ValueError, *fileio.errors()):
      pass
  if fileio.exists(directory):
    fileio.rmtree(directory)
  for prefix in (SHARD_PREFIX, EVAL_SHARD_PREFIX):
    for leftover in fileio.glob(os.path.join(output_dir, f"{prefix}-*")):
      fileio.remove(leftover)
  for sub in ("text", "vocab", "examples", "shards"):
    fileio.makedirs(os.path.join(directory, sub))
  _write_json(marker, {"settings_hash": settings_hash})
  return False


# Stage 1: extract.


def extract_tasks(parts: Sequence[sources.Part], config: BuildConfig) -> List[ExtractTask]:
  # Without a held-out split, text that must never be trained on has nowhere to go.
  parts = [part for part in parts if config.held_out_fraction > 0 or not part.held_out]
  return [ExtractTask(i, part, work_dir(config.output_dir), config.skip_bad_files, int(config.work_unit_mb * MB))
          for i, part in enumerate(parts)]


def document_bucket(sentences: Sequence[str]) -> int:
  """The held-out bucket of a document: a hash of its text, the same wherever and whenever it is read."""
  return _bucket_of_bytes("\n".join(sentences).encode("utf-8"))


def _bucket_of_bytes(text: bytes) -> int:
  """document_bucket of the document whose sentences joined by newlines are `text` (UTF-8)."""
  digest = hashlib.sha256(text).digest()
  return int.from_bytes(digest[:8], "big") * HELD_OUT_BUCKETS >> 64


def staged_path(directory: str, index: int) -> str:
  return os.path.join(directory, "text", f"part-{index:05d}.txt")


def extract_part(task: ExtractTask) -> Dict:
  """Writes the sentences of one part (one per line, a blank line after each document).

  Returns the part's summary: counts, bad files skipped, the byte offsets at which the work
  units of the examples stage start (document boundaries about `unit_bytes` apart), and the text
  bytes per held-out bucket ([bucket, bytes] pairs).
  """
  path = staged_path(task.work_dir, task.index)
  summary_path = path[:-len(".txt")] + ".json"
  if fileio.exists(summary_path):
    return _read_json(summary_path)
  bad: Optional[List[str]] = [] if task.skip_bad_files else None
  summary = {"index": task.index, "path": path, "documents": 0, "sentences": 0, "blocks": [0], "bytes": 0,
             "bad_files": [], "input_bytes": task.part.size, "buckets": [], "held_out": task.part.held_out}
  buckets: Dict[int, int] = {}
  tmp = path + shards_lib.TMP_SUFFIX
  try:
    with sources.open_file(tmp, "wb") as out:
      staged = _stage_documents(sources.read_part(task.part, bad), out)
    summary.update(documents=len(staged.sizes), sentences=staged.sentences, bytes=sum(staged.sizes),
                   blocks=_block_starts(staged.sizes, task.unit_bytes))
    buckets = staged.buckets
  except sources.SourceError as e:
    if not task.skip_bad_files:
      fileio.remove(tmp)
      raise
    # The whole part is dropped: what it wrote before the error is not kept.
    logging.warning("skipping bad input: %s", e)
    with sources.open_file(tmp, "wb"):
      pass
    summary.update(documents=0, sentences=0, blocks=[0], bytes=0)
    buckets = {}
    bad = list(bad or []) + [task.part.paths[0]]
  except BaseException:
    if fileio.exists(tmp):
      fileio.remove(tmp)
    raise
  else:
    for name in bad or []:
      logging.warning("skipped bad input %s", name)
  summary["bad_files"] = sorted(set(bad or []))
  summary["buckets"] = sorted([b, n] for b, n in buckets.items())
  fileio.rename(tmp, path)
  _write_json(summary_path, summary)
  return summary


@dataclasses.dataclass
class _Staged:
  sizes: List[int]  # Bytes of each document staged.
  sentences: int
  buckets: Dict[int, int]  # Held-out bucket -> bytes.


def _stage_documents(documents: Iterable[sources.Document], out) -> _Staged:
  """Writes the sentences of each document, a newline after each and a blank line after the document."""
  staged = _Staged([], 0, {})
  for document in documents:
    sentences = segment.split_document(document.paragraphs)
    if not sentences:
      continue
    data = ("\n".join(sentences) + "\n\n").encode("utf-8")
    out.write(data)
    staged.sizes.append(len(data))
    staged.sentences += len(sentences)
    bucket = _bucket_of_bytes(data[:-2])
    staged.buckets[bucket] = staged.buckets.get(bucket, 0) + len(data)
  return staged


def _block_starts(sizes: Sequence[int], unit_bytes: int) -> List[int]:
  """Offsets of the work units: a unit ends at the first document boundary at least unit_bytes after its start."""
  blocks = [0]
  offset = 0
  for size in sizes:
    if offset - blocks[-1] >= unit_bytes:
      blocks.append(offset)
    offset += size
  return blocks


@dataclasses.dataclass(frozen=True)
class ExtractPiece:
  """One file of a part of several files: extracted on its own, then joined with the others (join_pieces)."""
  task: ExtractTask
  file_index: int


def extract_work(tasks: Sequence[ExtractTask]) -> List:
  """What run_extract hands to workers: a part of one file whole, a part of several files file by file.

  Small files are grouped into parts of --input_split_mb, so a corpus of a few dozen files has few
  parts of very different sizes; file by file, workers share the work evenly. The staged text and
  summary of a part are the same bytes either way (tests/data_prep/test_pipeline.py).
  """
  work: List = []
  for task in tasks:
    if len(task.part.paths) > 1 and not fileio.exists(_summary_path(task)):
      work.extend(ExtractPiece(task, i) for i in range(len(task.part.paths)))
    else:
      work.append(task)
  return work


def _summary_path(task: ExtractTask) -> str:
  return staged_path(task.work_dir, task.index)[:-len(".txt")] + ".json"


def _piece_path(piece: ExtractPiece) -> str:
  return staged_path(piece.task.work_dir, piece.task.index)[:-len(".txt")] + f".file-{piece.file_index:05d}.txt"


def extract_work_item(item) -> Dict:
  """extract_part of an ExtractTask, extract_piece of an ExtractPiece (a top-level function: workers run it)."""
  return extract_piece(item) if isinstance(item, ExtractPiece) else extract_part(item)


def extract_piece(piece: ExtractPiece) -> Dict:
  """Stages the documents of one file of a part, as extract_part would within the part."""
  path = _piece_path(piece)
  summary_path = path[:-len(".txt")] + ".json"
  if fileio.exists(summary_path):
    return _read_json(summary_path)
  task = piece.task
  name = task.part.paths[piece.file_index]
  bad: Optional[List[str]] = [] if task.skip_bad_files else None
  try:
    # As sources.read_part reads a file of a part of several: whole, or skipped when bad.
    documents = list(sources.read_part(sources.Part(task.part.kind, (name,), held_out=task.part.held_out), bad))
  except sources.SourceError:
    if bad is None:
      raise
    bad.append(name)
    documents = []
  tmp = path + shards_lib.TMP_SUFFIX
  try:
    with sources.open_file(tmp, "wb") as out:
      staged = _stage_documents(documents, out)
  except BaseException:
    if fileio.exists(tmp):
      fileio.remove(tmp)
    raise
  fileio.rename(tmp, path)
  summary = {"piece": path, "part": task.index, "file_index": piece.file_index, "documents": len(staged.sizes),
             "sentences": staged.sentences, "sizes": staged.sizes, "bad_files": bad or [],
             "buckets": sorted([b, n] for b, n in staged.buckets.items())}
  _write_json(summary_path, summary)
  return summary


def join_pieces(task: ExtractTask, pieces: Sequence[Dict]) -> Dict:
  """The staged text and summary of a part from those of its files, as extract_part writes them."""
  path = staged_path(task.work_dir, task.index)
  if fileio.exists(_summary_path(task)):
    return _read_json(_summary_path(task))
  pieces = sorted(pieces, key=lambda p: p["file_index"])
  tmp = path + shards_lib.TMP_SUFFIX
  with sources.open_file(tmp, "wb") as out:
    for piece in pieces:
      _append_file(piece["piece"], out, local=not fileio.is_url(tmp))
  sizes = [size for piece in pieces for size in piece["sizes"]]
  buckets: Dict[int, int] = {}
  for piece in pieces:
    for bucket, size in piece["buckets"]:
      buckets[bucket] = buckets.get(bucket, 0) + size
  bad = [name for piece in pieces for name in piece["bad_files"]]
  for name in bad:
    logging.warning("skipped bad input %s", name)
  summary = {"index": task.index, "path": path, "documents": len(sizes), "sentences": sum(p["sentences"] for p in pieces),
             "blocks": _block_starts(sizes, task.unit_bytes), "bytes": sum(sizes), "bad_files": sorted(set(bad)),
             "input_bytes": task.part.size, "buckets": sorted([b, n] for b, n in buckets.items()),
             "held_out": task.part.held_out}
  fileio.rename(tmp, path)
  _write_json(_summary_path(task), summary)
  for piece in pieces:
    fileio.remove(piece["piece"])
    fileio.remove(piece["piece"][:-len(".txt")] + ".json")
  return summary


def _append_file(source: str, out, local: bool) -> None:
  """Appends the bytes of `source` to the open file `out`; between local files inside the kernel
  (sendfile), which copies faster than reading and writing them through Python."""
  if not (local and not fileio.is_url(source) and hasattr(os, "sendfile")):
    with sources.open_file(source, "rb") as f:
      shutil.copyfileobj(f, out, 1 << 20)
    return
  out.flush()
  with open(source, "rb") as f:
    size, offset = os.fstat(f.fileno()).st_size, 0
    while offset < size:
      sent = os.sendfile(out.fileno(), f.fileno(), offset, size - offset)
      if not sent:
        raise OSError(f"{source} ended at byte {offset} of {size} while being copied")
      offset += sent


def _join_item(item: Tuple["ExtractTask", List[Dict]]) -> Dict:
  """join_pieces of (task, pieces) (a top-level function: workers run it)."""
  return join_pieces(*item)


def run_extract(executor: "Executor", tasks: Sequence[ExtractTask], timings: Optional[Dict[str, float]] = None
                ) -> List[Dict]:
  """The summaries of all parts, in order; several workers share the parts of several files file by file."""
  work = extract_work(tasks) if executor.num_workers > 1 else list(tasks)
  weights = [w.part.size if isinstance(w, ExtractTask) else sources.file_size(w.task.part.paths[w.file_index])
             for w in work]
  results = run_stage("extract", executor, extract_work_item, work, weights, "B",
                      lambda s: {"documents": s["documents"], "sentences": s["sentences"]}, timings)
  pieces: Dict[int, List[Dict]] = {}
  summaries: Dict[int, Dict] = {}
  for item, result in zip(work, results):
    if isinstance(item, ExtractPiece):
      pieces.setdefault(item.task.index, []).append(result)
    else:
      summaries[item.index] = result
  start = time.monotonic()
  # Parts are joined from their files' pieces in parallel (each join writes only its own part).
  joins = [(task, pieces[task.index]) for task in tasks if task.index in pieces]
  for summary in executor.imap_unordered(_join_item, joins):
    summaries[summary["index"]] = summary
  if timings is not None:
    timings["extract"] += time.monotonic() - start
  return [summaries[task.index] for task in tasks]


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
    for document in sources.read_text_documents(summary["path"]):
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
    return VocabInfo(**_read_json(info_path))
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
  _write_json(info_path, dataclasses.asdict(info))
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
    return _read_json(summary_path)
  config = task.config
  tokenizer = _tokenizer(task.vocab, config.do_lower_case)
  if hasattr(tokenizer, "tokenize_text"):
    training, held_out = _tokenize_staged_text(task, tokenizer)
  else:
    texts = [d.paragraphs for d in sources.read_text_documents(task.staged_path, task.start, task.end)]
    held = [document_bucket(text) < task.held_out_below for text in texts]
    training = tokenize_documents([t for t, h in zip(texts, held) if not h], tokenizer)
    held_out = tokenize_documents([t for t, h in zip(texts, held) if h], tokenizer)
  summary = _write_examples(path, training, task, tokenizer, held_out=False)
  # One copy of each held-out example: evaluation gains nothing from differently masked copies.
  summary["eval"] = _write_examples(unit_path(task, held_out=True), held_out, task, tokenizer, held_out=True)
  _write_json(summary_path, summary)
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

  What tokenize_documents gives for the documents of sources.read_text_documents, without a Python
  step per sentence: the staged text is each document's sentences, a newline after each, then a
  blank line (extract_part), so a blank line ends a document and every other line is a sentence.
  """
  with fileio.open_file(task.staged_path, "rb") as f:
    f.seek(task.start)
    data = f.read(task.end - task.start)
  documents = [d for d in data.split(b"\n\n") if d]
  held = np.array([_bucket_of_bytes(d) < task.held_out_below for d in documents], bool)
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


# Running tasks.


class Progress:
  """Logs a stage's progress every few seconds: done / total, rate, ETA and running counts."""

  def __init__(self, stage: str, total: float, unit: str, every_s: float = PROGRESS_EVERY_S):
    self._stage = stage
    self._total = total
    self._unit = unit
    self._every_s = every_s
    self._start = time.monotonic()
    self._last = self._start
    self._logged = None
    self.done = 0.0

  def _amount(self, value: float) -> str:
    if self._unit != "B":
      return f"{value:.0f} {self._unit}"
    return f"{value / MB:.1f} MB" if value >= MB else f"{value / 1024:.1f} kB"

  def advance(self, amount: float, force: bool = False, **counts: int) -> None:
    self.done += amount
    now = time.monotonic()
    if force and self._logged == (self.done, counts):
      return  # The last line already said it.
    if not force and now - self._last < self._every_s:
      return
    self._last = now
    self._logged = (self.done, dict(counts))
    elapsed = max(now - self._start, 1e-9)
    rate = self.done / elapsed
    share = self.done / self._total if self._total else 1.0
    eta = (self._total - self.done) / rate if rate > 0 else float("inf")
    extra = "".join(f", {k}={v}" for k, v in counts.items())
    logging.info("%s: %s of %s (%.0f%%), %s/s, ETA %s, %.0f s so far%s", self._stage, self._amount(self.done),
                 self._amount(self._total), 100 * share, self._amount(rate), _duration(eta), elapsed, extra)


def _duration(seconds: float) -> str:
  if seconds == float("inf"):
    return "unknown"
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Executor:
  """Runs tasks in this process (one worker) or in a pool of local worker processes.

  Workers come from a fork server that has imported this module once, so a worker starts without
  importing anything itself; the fork server never runs a TensorFlow op (nor, for WordPiece
  builds, imports TensorFlow), so no runtime threads are forked. The command line starts the fork
  server before its own imports (data_prep.fork_server), so that both import at once; otherwise the
  pool starts in the background on first use. Until it is up, this process runs a stage's tasks
  itself rather than wait. Which process runs a task never changes its output.
  """

  def __init__(self, num_workers: int):
    self.num_workers = num_workers
    self._pool = None
    self._lock = threading.Lock()
    self._warming: Optional[threading.Thread] = None

  def __enter__(self) -> "Executor":
    return self

  def warm_up(self) -> None:
    """Starts the pool in the background (the fork server imports TensorFlow meanwhile)."""
    if self.num_workers > 1 and self._warming is None:
      self._warming = threading.Thread(target=self._get_pool, daemon=True)
      self._warming.start()

  def __exit__(self, *exc_info) -> None:
    if self._warming is not None:
      self._warming.join()
    with self._lock:
      if self._pool is not None:
        # terminate(), not close(): after an error, queued tasks must not keep running.
        self._pool.terminate()
        self._pool.join()
        self._pool = None

  def _get_pool(self):
    with self._lock:
      if self._pool is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self._pool = context.Pool(self.num_workers)
      return self._pool

  def imap_unordered(self, fn: Callable, tasks: Sequence) -> Iterable:
    if self.num_workers == 1 or len(tasks) <= 1:
      return map(fn, tasks)
    return self._shared(fn, tasks)

  def _shared(self, fn: Callable, tasks: Sequence) -> Iterator:
    """Results of fn over tasks as they finish: the pool's, and this process's own while the pool starts."""
    pending = collections.deque(tasks)
    finished: "queue.Queue[Tuple[bool, object]]" = queue.Queue()

    def feed(pool) -> None:
      # Hands every task not yet taken to the pool, at once: from here on this process only waits.
      while True:
        try:
          task = pending.popleft()
        except IndexError:
          return
        try:
          pool.apply_async(fn, (task,), callback=lambda r: finished.put((True, r)),
                           error_callback=lambda e: finished.put((False, e)))
        except ValueError as e:  # The pool was terminated: the build is stopping.
          finished.put((False, e))
          return

    if self._pool is not None:
      feed(self._pool)
    else:
      self.warm_up()
      threading.Thread(target=lambda: feed(self._get_pool()), daemon=True).start()
    for _ in range(len(tasks)):
      try:
        task = pending.popleft()
      except IndexError:
        ok, result = finished.get()
        if not ok:
          raise result
        yield result
      else:
        yield fn(task)

  def map(self, fn: Callable, tasks: Sequence) -> List:
    if self.num_workers == 1 or len(tasks) <= 1:
      return [fn(t) for t in tasks]
    return self._get_pool().map(fn, tasks)


def run_stage(stage: str, executor: Executor, fn: Callable, tasks: Sequence, weights: Sequence[float], unit: str,
              counts: Callable[[object], Dict[str, int]] = lambda result: {},
              timings: Optional[Dict[str, float]] = None) -> List:
  """Results of fn over tasks, in task order, with progress lines as tasks finish; its seconds in `timings`."""
  start = time.monotonic()
  progress = Progress(stage, sum(weights), unit)
  totals: Dict[str, int] = {}
  results = [None] * len(tasks)
  indexed = [(i, t) for i, t in enumerate(tasks)]
  for index, result in executor.imap_unordered(_IndexedCall(fn), indexed):
    results[index] = result
    for key, value in counts(result).items():
      totals[key] = totals.get(key, 0) + value
    progress.advance(weights[index], **totals)
  progress.advance(0, force=True, **totals)
  if timings is not None:
    timings[stage] = time.monotonic() - start
  return results


class _IndexedCall:
  """fn(task) tagged with the task's index; a class, not a closure, so that it pickles."""

  def __init__(self, fn: Callable):
    self._fn = fn

  def __call__(self, indexed):
    index, task = indexed
    return index, self._fn(task)
