"""Fine-tuning features prepared once: TFRecord shards keyed by what they were made from, streamed.

A task's tokenized, packed features are written once per key and every later run and seed reads
them back: nothing is tokenized again, nothing large is held in memory or becomes a graph constant.

Key. SHA-256 over: the task files' contents (SHA-256 each; `FileDigests` remembers them per size
and modification time), the vocab (every piece in order, plus a SentencePiece model's bytes), its
kind, casing and special ids, the sequence length, the task's settings (e.g. SQuAD's doc stride
and question length) and FORMAT_VERSION, which changes whenever feature conversion does.

Layout. Under the cache root (`--feature_cache_dir`; default `<data_dir>/tpu_electra_features/`,
or `~/.cache/tpu_electra/finetune_features/` when the data dir is read-only), one directory per
key, `<task>-<max_seq_length>-<key[:16]>/`:

    index.json                  the commit point: key, what it was made from, splits, shards,
                                sizes, CRC32s, task info and statistics
    build-<uuid>/train-00000.tfrecord ...     one TFRecord shard per ~SHARD_BYTES of features
    build-<uuid>/<eval split>-00000.tfrecord  evaluation features, in example order
    build-<uuid>/<eval split>.meta.json/.npz  what scoring needs outside the graph (gold labels,
                                SQuAD's example and window maps, ...), small

A build writes everything into a fresh `build-<uuid>/` and then writes `index.json` under a
temporary name and renames it (`tf.io.gfile`, so `gs://` works): a killed build leaves no index,
and a cache without an index, whose index does not parse or does not match the key, or whose
files differ in size or CRC32 from the index, is rebuilt with a warning.

Records. One record is one row's features as raw little-endian bytes, not a tf.train.Example
(building Example protos in Python costs ~35 us a row, more than tokenizing it): first the
fixed-size features (labels, positions), then the sequence features position-major
([S, C] for a [C, S] feature) stored as (value - pad) mod 2**bits, cut after the row's last
non-pad position. Decoding a batch reads the fixed part at fixed offsets and the sequence part
with `decode_raw(fixed_length=...)`, whose zero fill restores the padding. An MNLI pair of
Wikipedia sentences at 128 tokens takes ~230 bytes on disk instead of ~1.5 kB of padded int32.

Streaming. Training reads the shards with per-host sharding through `tf.distribute.InputContext`
(by file when there are at least as many files as input pipelines, else by record), shuffles the
file order and a window of records (the whole split when it fits in SHUFFLE_BUFFER_BYTES) with
seeds from the run's seed (so the order is a function of the seed alone), repeats, batches and
decodes. Evaluation reads each split in order.
"""
import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import uuid
import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import fileio

FORMAT_VERSION = 1
INDEX_NAME = "index.json"
DEFAULT_DIR_NAME = "tpu_electra_features"
CACHE_ENV = "TPU_ELECTRA_CACHE"
SHARD_BYTES = 16 << 20
# Bytes of serialized records a training shuffle buffer may hold (the buffer is never larger than
# the split, so a small task is shuffled whole).
SHUFFLE_BUFFER_BYTES = 64 << 20
# What one buffered element costs besides its bytes (tensor and string headers), for sizing it.
_BUFFER_OVERHEAD_BYTES = 128
_READ_BLOCK = 8 << 20
MAX_LISTED_FILES = 32
# The shortest bucket of length-bucketed batches (`bucket_lengths`): a question or a short sentence
# is 10-20 WordPiece tokens (TREC: 79% of its questions within 16 with [CLS] and [SEP]).
SMALLEST_BUCKET = 16

Arrays = Dict[str, np.ndarray]


class FeatureCacheError(ValueError):
  """A cache that cannot be used: corrupt, incomplete, or not the one asked for."""


# ----------------------------------------------------------------------------------------------
# Record format


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """One feature of a row.

  Attributes:
    name: the model-side name (`input_word_ids`, `label_ids`, ...).
    shape: per-row shape; a sequence feature's last dimension is the sequence length.
    storage: numpy dtype name of the stored values (a sequence feature's: unsigned).
    dtype: the dtype the model reads: "int32" or "float32".
    pad: the padding value of a sequence feature (None: a fixed-size feature).
    low: a sequence feature's smallest value; values lie in [low, low + 2**bits of storage).
  """
  name: str
  shape: Tuple[int, ...]
  storage: str
  dtype: str = "int32"
  pad: Optional[int] = None
  low: int = 0

  @property
  def is_sequence(self) -> bool:
    return self.pad is not None

  @property
  def itemsize(self) -> int:
    return np.dtype(self.storage).itemsize

  @property
  def size(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))

  @property
  def modulus(self) -> int:
    return 1 << (8 * self.itemsize)

  def to_json(self) -> Dict[str, Any]:
    return {"name": self.name, "shape": list(self.shape), "storage": self.storage, "dtype": self.dtype,
            "pad": self.pad, "low": self.low}

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> "FeatureSpec":
    return cls(name=value["name"], shape=tuple(value["shape"]), storage=value["storage"], dtype=value["dtype"],
               pad=value["pad"], low=value["low"])


def sequence_spec(name: str, shape: Sequence[int], pad: int, low: int = 0, high: int = 2**31 - 1) -> FeatureSpec:
  """A sequence feature with values in [low, high] and padding `pad`: the narrowest unsigned storage.

  Stored values are (value - pad) mod 2**bits, so padding is stored as 0 and cut off the record.
  """
  if not low <= pad <= high:
    raise ValueError(f"{name}: pad {pad} outside [{low}, {high}]")
  for storage in ("uint8", "uint16", "uint32"):
    if high - low < (1 << (8 * np.dtype(storage).itemsize)):
      return FeatureSpec(name, tuple(shape), storage, "int32", pad, low)
  raise ValueError(f"{name}: values in [{low}, {high}] do not fit in 32 bits")


def scalar_spec(name: str, dtype: str = "int32", shape: Sequence[int] = ()) -> FeatureSpec:
  return FeatureSpec(name, tuple(shape), dtype, dtype, None)


class RecordFormat:
  """Encodes rows of numpy features as record bytes and decodes batches of records as tensors."""

  def __init__(self, specs: Sequence[FeatureSpec]):
    if sys.byteorder != "little":
      raise FeatureCacheError("the feature cache's records are little-endian; this host is not")
    self.specs = list(specs)
    self.fixed = [s for s in self.specs if not s.is_sequence]
    self.sequences = [s for s in self.specs if s.is_sequence]
    lengths = {s.shape[-1] for s in self.sequences}
    if len(lengths) > 1:
      raise ValueError(f"sequence features of one format share one length, got {sorted(lengths)}")
    self.seq_length = lengths.pop() if lengths else 0
    self.fixed_bytes = sum(s.size * s.itemsize for s in self.fixed)
    # Bytes per sequence position: every sequence feature's values at that position.
    self.position_bytes = sum((s.size // s.shape[-1]) * s.itemsize for s in self.sequences)

  def to_json(self) -> List[Dict[str, Any]]:
    return [s.to_json() for s in self.specs]

  @classmethod
  def from_json(cls, value: Sequence[Mapping[str, Any]]) -> "RecordFormat":
    return cls([FeatureSpec.from_json(v) for v in value])

  def encode(self, arrays: Mapping[str, np.ndarray]) -> List[bytes]:
    """One record per row of `arrays` (every spec's name, with a leading row dimension)."""
    missing = [s.name for s in self.specs if s.name not in arrays]
    if missing:
      raise ValueError(f"rows lack features {missing}")
    num_rows = len(arrays[self.specs[0].name])
    parts = []
    for spec in self.fixed:
      value = self._checked(spec, arrays[spec.name], num_rows)
      stored = value.astype(np.dtype(spec.storage).newbyteorder("<"))
      if stored.dtype.kind in "iu" and not np.array_equal(stored, value):
        raise ValueError(f"{spec.name}: values do not fit {spec.storage}")
      parts.append(np.ascontiguousarray(stored.reshape(num_rows, -1)).view(np.uint8))
    nonzero = np.zeros([num_rows, self.seq_length], bool)  # Positions holding anything but padding.
    for spec in self.sequences:
      value = self._checked(spec, arrays[spec.name], num_rows)
      value = value.reshape(num_rows, -1, self.seq_length)
      if value.size and (value.min() < spec.low or value.max() >= spec.low + spec.modulus):
        raise ValueError(f"{spec.name}: values outside [{spec.low}, {spec.low + spec.modulus - 1}]")
      if spec.pad or spec.low < 0:  # (value - pad) mod 2**bits: padding is stored as 0.
        value = (value.astype(np.int64) - spec.pad) % spec.modulus
      stored = value.astype(np.dtype(spec.storage).newbyteorder("<"), copy=False)
      if stored.shape[1] > 1:  # [rows, C, S] -> [rows, S, C]: position-major.
        stored = stored.transpose(0, 2, 1)
      stored = np.ascontiguousarray(stored).reshape(num_rows, self.seq_length, -1)
      nonzero |= stored[:, :, 0] != 0 if stored.shape[2] == 1 else stored.any(axis=2)
      parts.append(stored.view(np.uint8).reshape(num_rows, -1))
    # A row's length: up to its last non-pad position over all sequence features.
    length = np.zeros([num_rows], np.int64)
    if self.sequences:
      length = np.where(nonzero.any(axis=1), self.seq_length - np.argmax(nonzero[:, ::-1], axis=1), 0)
    if self.sequences and len(self.sequences) > 1:
      # Interleave the features position by position: [rows, S, bytes of all features at a position].
      sequence = np.concatenate([p.reshape(num_rows, self.seq_length, -1) for p in parts[len(self.fixed):]], axis=2)
      parts = parts[:len(self.fixed)] + [sequence.reshape(num_rows, -1)]
    table = np.concatenate(parts, axis=1) if parts else np.zeros([num_rows, 0], np.uint8)
    width = table.shape[1]
    # Each row's bytes: the fixed part and the sequences up to the row's length.
    ends = (self.fixed_bytes + length * self.position_bytes).tolist()
    data = table.tobytes()
    return [data[i * width:i * width + ends[i]] for i in range(num_rows)]

  @staticmethod
  def _checked(spec: FeatureSpec, value, num_rows: int) -> np.ndarray:
    value = np.asarray(value)
    if value.shape != (num_rows,) + spec.shape:
      raise ValueError(f"{spec.name}: expected shape {(num_rows,) + spec.shape}, got {value.shape}")
    return value

  def row_lengths(self, records: tf.Tensor) -> tf.Tensor:
    """Each record's length in positions (int64): up to its last non-pad position over every sequence
    feature, as `encode` cut it. Past it every sequence feature is padding, so a batch decoded at any
    length at least its rows' lengths holds all there is, for every task (labels and positions included)."""
    return tf.cast((tf.strings.length(records) - self.fixed_bytes) // self.position_bytes, tf.int64)

  def decode(self, records: tf.Tensor, length=None) -> Dict[str, tf.Tensor]:
    """A batch of records ([B] strings) as the model's tensors ([B, *shape]).

    `length` (a scalar tensor, at least every record's `row_lengths`): the sequence features are
    decoded to that many positions instead of the format's `seq_length`.
    """
    length = self.seq_length if length is None else tf.cast(length, tf.int32)
    # The batch size as a number wherever it is one: a decoded length is not, and -1 would hide it.
    rows = records.shape[0] if records.shape[0] is not None else -1
    out = {}
    offset = 0
    for spec in self.fixed:
      nbytes = spec.size * spec.itemsize
      raw = tf.io.decode_raw(tf.strings.substr(records, offset, nbytes), tf.as_dtype(spec.storage))
      value = tf.reshape(raw, [rows, *spec.shape])
      out[spec.name] = tf.cast(value, spec.dtype) if spec.storage != spec.dtype else value
      offset += nbytes
    if self.sequences:
      tail = tf.strings.substr(records, self.fixed_bytes, length * self.position_bytes)
      raw = tf.io.decode_raw(tail, tf.uint8, fixed_length=length * self.position_bytes)
      raw = tf.reshape(raw, [rows, length, self.position_bytes])
      start = 0
      for spec in self.sequences:
        channels = spec.size // spec.shape[-1]
        width = channels * spec.itemsize
        part = raw[:, :, start:start + width]
        start += width
        if spec.itemsize > 1:
          part = tf.bitcast(tf.reshape(part, [rows, length, channels, spec.itemsize]),
                            tf.as_dtype(spec.storage))
        value = tf.cast(tf.reshape(part, [rows, length, channels]), tf.int64)
        value = tf.math.floormod(value + (spec.pad - spec.low), spec.modulus) + spec.low
        value = tf.transpose(value, [0, 2, 1])
        out[spec.name] = tf.cast(tf.reshape(value, [rows, *spec.shape[:-1], length]), spec.dtype)
    return out


# ----------------------------------------------------------------------------------------------
# Splits: what a run reads


@dataclasses.dataclass
class SplitFeatures:
  """One split's features on disk: shards in row order, their row count and record format."""
  name: str
  files: List[str]
  num_rows: int
  record_format: RecordFormat
  num_bytes: int = 0

  @property
  def mean_record_bytes(self) -> float:
    return self.num_bytes / max(1, self.num_rows)

  def records(self) -> tf.data.Dataset:
    """Every record in row order (files in order, each read through)."""
    return tf.data.TFRecordDataset(self.files)

  def decode(self, records: tf.Tensor, length=None) -> Dict[str, tf.Tensor]:
    return self.record_format.decode(records, length)

  def read_all(self) -> Arrays:
    """Every row as numpy arrays: for tests and small splits, never for training."""
    chunks: Dict[str, List[np.ndarray]] = {}
    for batch in self.records().batch(4096):
      for name, value in self.decode(batch).items():
        chunks.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in chunks.items()}


def _derived_seed(seed: int, salt: int) -> int:
  digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
  return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def bucket_lengths(seq_length: int, smallest: int = SMALLEST_BUCKET) -> List[int]:
  """The lengths of length-bucketed batches of rows of at most `seq_length` positions: `smallest`
  doubled while below `seq_length`, then `seq_length` (16, 32, 64, 128 for 128; 16, 32, 64, 128,
  256, 512 for 512): a handful of static shapes, each compiled once (XLA, TPU), padding under half."""
  lengths = []
  while smallest < seq_length:
    lengths.append(smallest)
    smallest *= 2
  return lengths + [seq_length]


def _bucket_batches(dataset: tf.data.Dataset, split: SplitFeatures, lengths: Sequence[int],
                    batch_rows: int, pad_last: bool) -> tf.data.Dataset:
  """(records, extra...) elements -> (batch of `batch_rows` records, extra..., its bucket's length).

  A record goes to the first bucket whose length holds its `row_lengths` (`group_by_window`, keyed
  by bucket); a bucket's batch is emitted when it is full, so the batch order is a function of the
  record order. `pad_last` (a finite dataset): a bucket's last, partial batch is emitted too,
  filled up with copies of its first element whose last extra (the row index) is -1; otherwise
  partial batches are dropped (an endless stream never has one).
  """
  bucket_length = tf.constant(lengths, tf.int64)

  def key(record, *unused_extra):
    return tf.searchsorted(bucket_length, tf.reshape(split.record_format.row_lengths(record), [1]),
                           out_type=tf.int64)[0]

  def fill(*batch):
    extra = batch_rows - tf.shape(batch[0])[0]
    filled = [tf.concat([value, tf.repeat(value[:1], extra, axis=0)], 0) for value in batch[:-1]]
    filled.append(tf.concat([batch[-1], -tf.ones([extra], batch[-1].dtype)], 0))
    return tuple(tf.ensure_shape(value, [batch_rows]) for value in filled)

  def batches(bucket, window):
    window = window.batch(batch_rows, drop_remainder=not pad_last)
    if pad_last:
      window = window.map(fill)
    return window.map(lambda *batch: (*batch, bucket_length[bucket]))

  return dataset.group_by_window(key, batches, window_size=batch_rows)


def training_dataset(split: SplitFeatures, per_replica_batch_size: int, seed: int,
                     input_context: Optional[tf.distribute.InputContext] = None,
                     shuffle_buffer_bytes: int = SHUFFLE_BUFFER_BYTES,
                     lengths: Optional[Sequence[int]] = None) -> tf.data.Dataset:
  """Endless shuffled batches of `split` for one input pipeline, in an order decided by `seed`.

  The shuffles take `seed` (and seeds derived from it) as op seeds; TensorFlow pairs them with the
  global seed, which the runner sets from the same seed (`seeding.seed_everything`) just before, so
  a run's order is a function of its seed alone.

  Files are this pipeline's share when there are at least as many as pipelines, else every
  pipeline reads every file and keeps every n-th record. Each epoch reshuffles the file order and
  a window of records (all of them when they fit in `shuffle_buffer_bytes`).

  With bucket `lengths` (`bucket_lengths`), the shuffled records are grouped into batches of one
  bucket each (`_bucket_batches`), decoded to that bucket's length. All replicas of a step must get
  one length (a TPU step is one program), so the grouping is done over whole steps (per-replica
  batch x replicas) on the same stream in every pipeline: each pipeline then reads every file, in
  the same seeded order, and keeps its replicas' rows of each step.
  """
  num_pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  files = list(split.files)
  share = num_pipelines > 1 and not lengths
  by_file = share and len(files) >= num_pipelines
  if by_file:
    files = files[pipeline_id::num_pipelines]
  dataset = tf.data.Dataset.from_tensor_slices(files)
  dataset = dataset.shuffle(len(files), seed=_derived_seed(seed, 1), reshuffle_each_iteration=True)
  dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4), block_length=1)
  if share and not by_file:
    dataset = dataset.shard(num_pipelines, pipeline_id)
  rows = -(-split.num_rows // num_pipelines) if share else split.num_rows
  buffer = int(max(1, min(rows, shuffle_buffer_bytes // (split.mean_record_bytes + _BUFFER_OVERHEAD_BYTES))))
  # The run's seed itself: a split that fits the buffer is shuffled exactly as the in-memory
  # arrays of earlier versions were (`from_tensor_slices(...).shuffle(rows, seed)`).
  dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  if lengths:
    replicas = input_context.num_replicas_in_sync if input_context else 1
    local = replicas // num_pipelines  # This pipeline's replicas: its per-replica batches of each step.
    first = pipeline_id * local * per_replica_batch_size
    dataset = _bucket_batches(dataset, split, lengths, per_replica_batch_size * replicas, pad_last=False)
    dataset = dataset.map(lambda records, length: (
        tf.reshape(records[first:first + local * per_replica_batch_size], [local, per_replica_batch_size]),
        tf.fill([local], length))).unbatch()
    dataset = dataset.map(split.decode)
  else:
    dataset = dataset.batch(per_replica_batch_size, drop_remainder=True).map(split.decode)
  # Reading a few shards needs no tuning, and tf.data's autotuning thread made deleting the
  # iterator at the end of each seed wait up to tens of seconds (36 s of an 83 s RACE run).
  options = tf.data.Options()
  options.autotune.enabled = False
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return dataset.prefetch(2).with_options(options)


def evaluation_dataset(split: SplitFeatures, global_batch_size: int, index_name: str,
                       lengths: Optional[Sequence[int]] = None) -> tf.data.Dataset:
  """Every row of `split` once, in whole batches, with its row index as `index_name`.

  Rows come in row order, the last batch filled up with copies of row 0 whose index is -1; with
  bucket `lengths`, in batches of one bucket each decoded to its length (`_bucket_batches`; rows in
  row order within a bucket, each bucket's last batch filled up with index -1 copies).
  """
  records = split.records()
  indexed = tf.data.Dataset.zip((records, tf.data.Dataset.range(split.num_rows)))

  def decode(batch, index, length=None):
    features = split.decode(batch, length)
    features[index_name] = tf.cast(index, tf.int32)
    return features

  if lengths:
    batches = _bucket_batches(indexed, split, lengths, global_batch_size, pad_last=True)
  else:
    extra = -(-split.num_rows // global_batch_size) * global_batch_size - split.num_rows
    if extra:
      indexed = indexed.concatenate(tf.data.Dataset.zip((records.take(1).repeat(extra),
                                                         tf.data.Dataset.from_tensors(tf.constant(-1, tf.int64))
                                                         .repeat(extra))))
    batches = indexed.batch(global_batch_size, drop_remainder=True)
  options = tf.data.Options()
  options.autotune.enabled = False
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return batches.map(decode).prefetch(2).with_options(options)


# ----------------------------------------------------------------------------------------------
# Keys


def file_crc32(path: str) -> Tuple[int, int]:
  """(CRC32, size in bytes) of a file, read in blocks."""
  crc, size = 0, 0
  with tf.io.gfile.GFile(path, "rb") as f:
    while True:
      block = f.read(_READ_BLOCK)
      if not block:
        break
      crc = zlib.crc32(block, crc)
      size += len(block)
  return crc, size


def tokenizer_fingerprint(tokenizer) -> Dict[str, Any]:
  """What decides the token ids: the vocab (every piece, in order), its kind, casing, special ids.

  A SentencePiece model's scores and normalization decide ids too, so its serialized model is
  hashed when the tokenizer exposes it.
  """
  vocab_size = getattr(tokenizer, "vocab_size", None)
  convert = getattr(tokenizer, "convert_ids_to_tokens", None)
  vocab = convert(range(vocab_size)) if vocab_size and convert else None
  digest = hashlib.sha256()
  if vocab is not None:
    digest.update("\n".join(vocab).encode("utf-8"))
  else:
    digest.update(repr(type(tokenizer)).encode("utf-8"))
  model = getattr(getattr(getattr(tokenizer, "_op", None), "_model_resource", None), "_model", None)
  if isinstance(model, bytes):
    digest.update(b"\0model\0" + model)
  return {"vocab_sha256": digest.hexdigest(),
          "vocab_size": len(vocab) if vocab is not None else None,
          "vocab_type": getattr(tokenizer, "vocab_type", type(tokenizer).__name__),
          "do_lower_case": getattr(tokenizer, "do_lower_case", None),
          "special_token_ids": dict(sorted(dict(tokenizer.special_token_ids).items()))}


class FileDigests:
  """SHA-256 of task files, remembered per (path, size, modification time) in `<root>/file_digests.json`.

  Hashing MNLI's 330 MB train.tsv takes most of a second (more from a bucket); a rerun that finds the
  file with the size and modification time it had when hashed reuses the digest. A digest is
  remembered only for a file that was already 2 s old when hashed, so a rewrite within the
  timestamp granularity of the file system cannot keep its old digest (git's "racy" rule).
  """

  RACY_NS = 2_000_000_000

  def __init__(self, root: Optional[str]):
    self.path = fileio.join(root, "file_digests.json") if root else None
    self.entries: Dict[str, Dict[str, Any]] = {}
    self.changed = False
    if self.path and tf.io.gfile.exists(self.path):
      try:
        with tf.io.gfile.GFile(self.path, "r") as f:
          loaded = json.loads(f.read())
        if isinstance(loaded, dict):
          self.entries = loaded
      except (ValueError, tf.errors.OpError):
        self.entries = {}  # A broken memo only costs hashing again.

  def sha256(self, path: str) -> str:
    stat = tf.io.gfile.stat(path)
    name = path if fileio.is_url(path) else os.path.abspath(path)
    entry = self.entries.get(name)
    if (isinstance(entry, dict) and entry.get("size") == stat.length and entry.get("mtime_ns") == stat.mtime_nsec
        and isinstance(entry.get("sha256"), str)):
      return entry["sha256"]
    hashed_at = time.time_ns()
    digest = fileio.file_sha256(path)
    if stat.mtime_nsec + self.RACY_NS < hashed_at and tf.io.gfile.stat(path).mtime_nsec == stat.mtime_nsec:
      self.entries[name] = {"size": stat.length, "mtime_ns": stat.mtime_nsec, "sha256": digest}
      self.changed = True
    return digest

  def save(self) -> None:
    if self.path and self.changed:
      try:
        fileio.write_text_atomic(self.path, json.dumps(self.entries, indent=0, sort_keys=True) + "\n")
      except (OSError, tf.errors.OpError) as e:
        logging.warning("could not write %s: %s", self.path, e)
      self.changed = False


def cache_key(task_name: str, settings: Mapping[str, Any], input_files: Mapping[str, str], tokenizer,
              max_seq_length: int, digests: Optional[FileDigests] = None) -> Tuple[str, Dict[str, Any]]:
  """(hex key, what it hashes): the task, its settings, its files' contents, the tokenizer and length."""
  digests = digests or FileDigests(None)
  files = {name: digests.sha256(path) for name, path in sorted(input_files.items())}
  digests.save()
  if len(files) > MAX_LISTED_FILES:  # RACE: tens of thousands of files; the index lists one digest of them.
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode("utf-8")).hexdigest()
    files = {f"{len(files)} files": digest}
  material = {
      "format_version": FORMAT_VERSION,
      "task": task_name,
      "settings": dict(settings),
      "max_seq_length": max_seq_length,
      "tokenizer": tokenizer_fingerprint(tokenizer),
      "files": files,
  }
  text = json.dumps(material, sort_keys=True, default=str)
  return hashlib.sha256(text.encode("utf-8")).hexdigest(), material


# ----------------------------------------------------------------------------------------------
# Progress


class Progress:
  """Logs `what: done/total unit (p%), rate, ETA` at most every `every_s` seconds, and a last line."""

  def __init__(self, what: str, total: Optional[float], unit: str = "rows", every_s: float = 5.0,
               clock: Callable[[], float] = time.time):
    self.what, self.total, self.unit, self.every_s, self.clock = what, total, unit, every_s, clock
    self.start = clock()
    self.last = self.start

  def line(self, done: float, fraction: Optional[float] = None) -> str:
    elapsed = max(1e-9, self.clock() - self.start)
    if fraction is None and self.total:
      fraction = done / self.total
    text = f"{self.what}: {done:,.0f} {self.unit}"
    if fraction is not None:
      text += f" ({100.0 * fraction:.0f}%)"
    text += f", {done / elapsed:,.0f} {self.unit}/s"
    if fraction:
      text += f", ETA {elapsed * (1.0 - fraction) / fraction:.0f} s"
    return text

  def update(self, done: float, fraction: Optional[float] = None) -> None:
    now = self.clock()
    if now - self.last >= self.every_s:
      self.last = now
      logging.info("%s", self.line(done, fraction))

  def finish(self, done: float) -> None:
    logging.info("%s: %s %s in %.1f s", self.what, f"{done:,.0f}", self.unit, self.clock() - self.start)


# ----------------------------------------------------------------------------------------------
# Writing


@dataclasses.dataclass
class _Shard:
  name: str
  num_records: int
  num_bytes: int = 0
  crc32: int = 0


class SplitWriter:
  """Writes one split's rows, chunk by chunk, into shards of about `shard_bytes`."""

  def __init__(self, directory: str, name: str, record_format: RecordFormat, shard_bytes: Optional[int] = None):
    self.directory, self.name, self.record_format = directory, name, record_format
    self.shard_bytes = shard_bytes or SHARD_BYTES
    self.shards: List[_Shard] = []
    self.num_rows = 0
    self._writer = None
    self._shard_bytes = 0

  def _open(self) -> None:
    shard = _Shard(f"{self.name}-{len(self.shards):05d}.tfrecord", 0)
    self.shards.append(shard)
    self._writer = tf.io.TFRecordWriter(fileio.join(self.directory, shard.name))
    self._shard_bytes = 0

  def write(self, arrays: Mapping[str, np.ndarray]) -> int:
    """Appends the rows of `arrays`; returns how many."""
    records = self.record_format.encode(arrays)
    for record in records:
      if self._writer is None or self._shard_bytes >= self.shard_bytes:
        self._close_shard()
        self._open()
      self._writer.write(record)
      self.shards[-1].num_records += 1
      self._shard_bytes += len(record) + 16
    self.num_rows += len(records)
    return len(records)

  def _close_shard(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def close(self) -> Dict[str, Any]:
    self._close_shard()
    if not self.shards:  # An empty split still has one (empty) shard, so it reads as zero rows.
      self._open()
      self._close_shard()
    for shard in self.shards:
      shard.crc32, shard.num_bytes = file_crc32(fileio.join(self.directory, shard.name))
    return {"num_rows": self.num_rows, "format": self.record_format.to_json(),
            "shards": [dataclasses.asdict(s) for s in self.shards]}


class CacheBuilder:
  """What a task's `write_features` writes through: splits, per-split metadata and task info."""

  def __init__(self, directory: str, shard_bytes: Optional[int] = None):
    self.directory = directory
    self.shard_bytes = shard_bytes
    self.splits: Dict[str, Dict[str, Any]] = {}
    self.metadata: Dict[str, Dict[str, Any]] = {}
    self.info: Dict[str, Any] = {}
    self.stats: Dict[str, int] = {}

  def split(self, name: str, record_format: RecordFormat) -> SplitWriter:
    if name in self.splits:
      raise ValueError(f"split {name!r} written twice")
    self.splits[name] = {}
    return SplitWriter(self.directory, name, record_format, self.shard_bytes)

  def finish_split(self, writer: SplitWriter) -> None:
    self.splits[writer.name] = writer.close()

  def write_metadata(self, split: str, meta: Optional[Mapping[str, Any]] = None,
                     arrays: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """JSON-able `meta` and numpy `arrays` that scoring `split` needs, kept beside its features."""
    entry: Dict[str, Any] = {}
    if meta is not None:
      name = f"{split}.meta.json"
      with tf.io.gfile.GFile(fileio.join(self.directory, name), "w") as f:
        f.write(json.dumps(meta))
      entry["json"] = name
    if arrays:
      name = f"{split}.meta.npz"
      buffer = io.BytesIO()
      np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
      with tf.io.gfile.GFile(fileio.join(self.directory, name), "wb") as f:
        f.write(buffer.getvalue())
      entry["npz"] = name
    for kind in ("json", "npz"):
      if kind in entry:
        crc, size = file_crc32(fileio.join(self.directory, entry[kind]))
        entry[f"{kind}_crc32"], entry[f"{kind}_bytes"] = crc, size
    self.metadata[split] = entry


# ----------------------------------------------------------------------------------------------
# Reading back


@dataclasses.dataclass
class CachedTask:
  """A committed cache, read back: its splits, metadata and the task's own info."""
  directory: str
  index: Dict[str, Any]
  splits: Dict[str, SplitFeatures]
  source: str  # "built" (this run made it) or "cache" (an earlier run did)

  @property
  def info(self) -> Dict[str, Any]:
    return self.index.get("info", {})

  @property
  def stats(self) -> Dict[str, int]:
    return self.index.get("stats", {})

  def metadata(self, split: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(JSON metadata, numpy metadata) of `split`, empty when none was written."""
    entry = self.index.get("metadata", {}).get(split, {})
    build = fileio.join(self.directory, self.index["build"])
    meta, arrays = {}, {}
    if "json" in entry:
      with tf.io.gfile.GFile(fileio.join(build, entry["json"]), "r") as f:
        meta = json.loads(f.read())
    if "npz" in entry:
      with tf.io.gfile.GFile(fileio.join(build, entry["npz"]), "rb") as f:
        buffer = io.BytesIO(f.read())
      with np.load(buffer, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


def _read_index(directory: str) -> Optional[Dict[str, Any]]:
  path = fileio.join(directory, INDEX_NAME)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, "r") as f:
    text = f.read()
  return fileio.parse_json_object(text, path, FeatureCacheError)


def _check_file(path: str, num_bytes: int, crc32: Optional[int], verify_checksums: bool) -> None:
  if not tf.io.gfile.exists(path):
    raise FeatureCacheError(f"{path} is missing")
  size = tf.io.gfile.stat(path).length
  if size != num_bytes:
    raise FeatureCacheError(f"{path} has {size} bytes, the index says {num_bytes}")
  if verify_checksums and crc32 is not None:
    actual, _ = file_crc32(path)
    if actual != crc32:
      raise FeatureCacheError(f"{path} fails its CRC32 check ({actual:08x}, the index says {crc32:08x})")


def load(directory: str, key: str, verify_checksums: bool = True, source: str = "cache") -> Optional[CachedTask]:
  """The committed cache in `directory`, checked; None when there is none; FeatureCacheError when broken."""
  index = _read_index(directory)
  if index is None:
    return None
  try:
    if index.get("format_version") != FORMAT_VERSION or index.get("key") != key:
      raise FeatureCacheError(f"{fileio.join(directory, INDEX_NAME)} is for another key or format "
                              f"({index.get('key')!r}, version {index.get('format_version')!r})")
    build = fileio.join(directory, index["build"])
    splits = {}
    for name, entry in index["splits"].items():
      files = []
      total = 0
      for shard in entry["shards"]:
        path = fileio.join(build, shard["name"])
        _check_file(path, shard["num_bytes"], shard["crc32"], verify_checksums)
        files.append(path)
        total += shard["num_bytes"]
      if sum(s["num_records"] for s in entry["shards"]) != entry["num_rows"]:
        raise FeatureCacheError(f"{directory}: split {name} shards do not add up to {entry['num_rows']} rows")
      splits[name] = SplitFeatures(name, files, entry["num_rows"], RecordFormat.from_json(entry["format"]), total)
    for name, entry in index.get("metadata", {}).items():
      for kind in ("json", "npz"):
        if kind in entry:
          _check_file(fileio.join(build, entry[kind]), entry[f"{kind}_bytes"], entry[f"{kind}_crc32"],
                      verify_checksums)
  except (KeyError, TypeError, ValueError) as e:
    if isinstance(e, FeatureCacheError):
      raise
    raise FeatureCacheError(f"{fileio.join(directory, INDEX_NAME)} is incomplete ({type(e).__name__}: {e})") from None
  return CachedTask(directory, index, splits, source)


def _remove_tree(path: str) -> None:
  try:
    if tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
  except tf.errors.OpError as e:
    logging.warning("could not remove %s: %s", path, e)


def build(directory: str, key: str, material: Mapping[str, Any],
          write_features: Callable[[CacheBuilder], None], shard_bytes: Optional[int] = None) -> CachedTask:
  """Runs `write_features` into a fresh build dir of `directory` and commits it by writing the index."""
  build_name = f"build-{uuid.uuid4().hex}"
  build_dir = fileio.join(directory, build_name)
  tf.io.gfile.makedirs(build_dir)
  builder = CacheBuilder(build_dir, shard_bytes)
  tick = time.time()
  try:
    write_features(builder)
  except BaseException:
    _remove_tree(build_dir)
    raise
  index = {
      "format_version": FORMAT_VERSION,
      "key": key,
      "made_from": material,
      "build": build_name,
      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "build_seconds": round(time.time() - tick, 3),
      "splits": builder.splits,
      "metadata": builder.metadata,
      "info": builder.info,
      "stats": dict(builder.stats),
  }
  # The commit point: until this rename there is no index, so a killed build is never used.
  fileio.write_text_atomic(fileio.join(directory, INDEX_NAME), json.dumps(index, indent=1, sort_keys=True) + "\n")
  cached = load(directory, key, verify_checksums=False, source="built")
  assert cached is not None
  return cached


def default_root(data_dir: str) -> str:
  """Where a task's features go by default: beside its data."""
  return fileio.join(data_dir, DEFAULT_DIR_NAME)


def fallback_root() -> str:
  base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tpu_electra")
  return os.path.join(base, "finetune_features")


def _writable(root: str) -> bool:
  try:
    fileio.make_output_dir(root, "--feature_cache_dir")
    return True
  except fileio.OutputPathError:
    return False


def get_or_build(directory: str, key: str, material: Mapping[str, Any],
                 write_features: Callable[[CacheBuilder], None], verify_checksums: bool = True,
                 shard_bytes: Optional[int] = None) -> CachedTask:
  """The features of `key` in `directory`: read back when a good cache is there, else built and committed."""
  stale_build = None
  try:
    cached = load(directory, key, verify_checksums=verify_checksums)
    if cached is not None:
      logging.info("features: reusing %s (prepared %s)", directory, cached.index.get("created"))
      return cached
  except FeatureCacheError as e:
    logging.warning("feature cache %s is corrupt or incomplete (%s); rebuilding it", directory, e)
    try:
      stale_build = _read_index(directory).get("build")
    except (FeatureCacheError, AttributeError, tf.errors.OpError):
      stale_build = None
  logging.info("features: preparing them once into %s", directory)
  try:
    cached = build(directory, key, material, write_features, shard_bytes)
  except fileio.errors() as e:
    if not fileio.is_disk_full(e):
      raise
    raise FeatureCacheError(f"no space left to write features into {directory} ({cli_utils.first_line(e)}); a "
                            "build without its index is never used: free space there or pass "
                            "--feature_cache_dir=<a dir with room>") from None
  if isinstance(stale_build, str) and stale_build.startswith("build-") and stale_build != cached.index["build"]:
    _remove_tree(fileio.join(directory, stale_build))
  return cached


def prepare(name: str, data_dir: str, cache_dir: Optional[str],
            make_key: Callable[[FileDigests], Tuple[str, Dict[str, Any]]],
            write_features: Callable[[CacheBuilder], None], verify_checksums: bool = True) -> CachedTask:
  """Finds or builds the features `make_key(digests)` names, for a task whose files are in `data_dir`.

  The cache root is `cache_dir` when given; else `<data_dir>/tpu_electra_features`, where a cache
  prepared earlier is read even when the data dir is read-only, and a new one is written when it
  is writable; else the user's cache dir (`$TPU_ELECTRA_CACHE` or ~/.cache/tpu_electra, under
  `finetune_features/`). The cache itself is `<root>/<name>-<key[:16]>`.
  """
  root = cache_dir or default_root(data_dir)
  writable = bool(cache_dir) or _writable(root)
  key, material = make_key(FileDigests(root if writable else fallback_root()))
  directory = fileio.join(root, f"{name}-{key[:16]}")
  if not writable and not tf.io.gfile.exists(fileio.join(directory, INDEX_NAME)):
    fallback = fallback_root()
    logging.warning("cannot write features beside the data (%s); using %s (pass --feature_cache_dir to choose)",
                    root, fallback)
    directory = fileio.join(fallback, f"{name}-{key[:16]}")
  return get_or_build(directory, key, material, write_features, verify_checksums)
