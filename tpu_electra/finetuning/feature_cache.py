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

The records' format is `feature_records`; reading the shards back for training and evaluation,
`feature_streams`.
"""
import dataclasses
import hashlib
import io
import json
import os
import time
import uuid
import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.finetuning.feature_records import FeatureCacheError, RecordFormat
from tpu_electra.finetuning.feature_streams import SplitFeatures

FORMAT_VERSION = 1
INDEX_NAME = "index.json"
DEFAULT_DIR_NAME = "tpu_electra_features"
CACHE_ENV = "TPU_ELECTRA_CACHE"
SHARD_BYTES = 16 << 20
_READ_BLOCK = 8 << 20
MAX_LISTED_FILES = 32


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
    raise FeatureCacheError(f"no space left to write features into {directory} ({errors.first_line(e)}); a "
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
