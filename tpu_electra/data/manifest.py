"""The manifest that `data_prep` writes beside its TFRecord shards, and the checks the trainer runs.

A pretraining data directory holds `manifest.json`, the vocab file it names, and the shards it
lists: training shards (`shards`) and held-out shards (`eval_shards`, whole documents set aside by
`data_prep.build --held_out_fraction`). The trainer never guesses: vocab size, special-token ids and
sequence length come from here, and a model that disagrees with them is refused with a one-line
error.

Integrity: the manifest records, per shard, its byte size, record count and the sha256 of its
bytes (`shard_info`). `check_shard_sizes` compares sizes only (one stat per shard: cheap enough
for every start of a run), `verify_checksums` reads every byte (`python -m data_prep.verify`),
`check_vocab` compares the vocab file with the manifest's vocab size and special-token ids.
Manifests of format 1 (before held-out shards and integrity info) are still read: they have no
held-out shards, and the integrity checks log a warning instead of checking.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shlex
import struct
from typing import Callable, Dict, List, Optional, Tuple

from absl import logging

from tpu_electra import fileio

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2
# Format 1 lacks eval_shards, num_eval_*, shard_info; its fields mean the same.
READABLE_FORMAT_VERSIONS = (1, 2)
CHECKSUM_ALGORITHM = "sha256"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Features of every pretraining example, each an int64 list of length max_seq_length, zero-padded.
EXAMPLE_FEATURES = ("input_ids", "input_mask", "segment_ids")
# Optional scalar int64 features a builder may add (listed in Manifest.scalar_features):
# next_sentence_labels (BERT NSP; 0 = B follows A, 1 = B is random).
SCALAR_FEATURES = ("next_sentence_labels",)
# Written by a builder that masks ahead of time (data_prep --static_masking), as
# tpu_electra.data.masking returns them: masked_input_ids has max_seq_length values, the others
# Manifest.max_predictions_per_seq; masked_lm_weights is float, the rest int64.
MASKED_LM_FEATURES = ("masked_input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
READ_BLOCK = 4 << 20
# Shards stat-ed / read at once: on gs:// each request waits on the network, not on a core.
STAT_PARALLELISM = 16
VERIFY_PARALLELISM = 4
# A TFRecord: uint64 length, uint32 masked crc32c of the length, data, uint32 masked crc32c of the data.
_RECORD_HEADER = 12
_RECORD_FOOTER = 4
_LENGTH = struct.Struct("<Q")
NO_INTEGRITY_INFO = ("the manifest in {data_dir!r} records no shard sizes or checksums (data built by an older "
                     "data_prep); {what} skipped: rebuild the data with python -m data_prep.build to get these checks")


_REBUILD = "rebuild the data with python -m data_prep.build"


class DataError(ValueError):
  """Pretraining data that is missing, corrupt or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class ShardInfo:
  """What a shard was when written: enough to tell a truncated, damaged or swapped file."""
  num_bytes: int
  num_records: int
  sha256: str  # Hex digest of the whole file (CHECKSUM_ALGORITHM).


@dataclasses.dataclass
class Manifest:
  vocab_file: str  # Relative to the data directory (or absolute / gs://).
  vocab_size: int
  vocab_type: str  # "wordpiece" or "sentencepiece".
  do_lower_case: bool
  special_token_ids: Dict[str, int]  # Keys are SPECIAL_TOKENS.
  max_seq_length: int
  shards: List[str]  # Training shards: file names relative to the data directory, in order.
  num_documents: int  # Of the training shards (the held-out split's are num_eval_documents).
  num_examples: int  # Records of the training shards.
  num_tokens: int  # Non-padding tokens, [CLS]/[SEP] included, of the training shards.
  settings_hash: str
  settings: Dict[str, object] = dataclasses.field(default_factory=dict)
  sources: List[str] = dataclasses.field(default_factory=list)
  num_bad_files: int = 0
  scalar_features: List[str] = dataclasses.field(default_factory=list)
  # > 0 when every example carries MASKED_LM_FEATURES (static masking); the input pipeline then
  # uses those masks instead of masking on the fly.
  max_predictions_per_seq: int = 0
  # The held-out split: whole documents no training shard contains (settings["held_out_fraction"]).
  eval_shards: List[str] = dataclasses.field(default_factory=list)
  num_eval_documents: int = 0
  num_eval_examples: int = 0
  num_eval_tokens: int = 0
  # Per file name of `shards` and `eval_shards`; empty when the data predates integrity info.
  shard_info: Dict[str, ShardInfo] = dataclasses.field(default_factory=dict)
  format_version: int = FORMAT_VERSION

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

  @classmethod
  def from_json(cls, text: str, origin: str = "manifest") -> "Manifest":
    fields = fileio.parse_json_object(text, origin, DataError, _REBUILD)
    version = fields.get("format_version", FORMAT_VERSION)
    if version not in READABLE_FORMAT_VERSIONS:
      raise DataError(f"{origin} has format_version {version}, this tpu_electra reads "
                      f"{list(READABLE_FORMAT_VERSIONS)}; upgrade tpu_electra or rebuild the data")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
      raise DataError(f"{origin} has unknown fields {unknown}; it was written by a newer data_prep, upgrade tpu_electra")
    try:
      fields["shard_info"] = {name: ShardInfo(**info) for name, info in fields.get("shard_info", {}).items()}
      manifest = cls(**fields)
    except (TypeError, AttributeError) as e:
      raise DataError(f"{origin} is incomplete ({e}); rebuild the data with python -m data_prep.build") from None
    unknown_features = sorted(set(manifest.scalar_features) - set(SCALAR_FEATURES))
    if unknown_features:
      raise DataError(f"{origin} lists unknown scalar features {unknown_features}; upgrade tpu_electra or rebuild the data")
    missing = [t for t in SPECIAL_TOKENS if t not in manifest.special_token_ids]
    if missing:
      raise DataError(f"{origin} names no id for special tokens {missing}; rebuild the data with python -m data_prep.build")
    if manifest.shard_info:
      # All or nothing: a shard without info would silently escape the checks.
      uncovered = [s for s in manifest.all_shards() if s not in manifest.shard_info]
      if uncovered:
        raise DataError(f"{origin} records no size or checksum for shard {uncovered[0]}; rebuild the data")
    return manifest

  def path(self, data_dir: str, name: str) -> str:
    if "://" in name or os.path.isabs(name):
      return name
    return os.path.join(data_dir, name)

  def all_shards(self) -> List[str]:
    """Training shards, then held-out shards."""
    return list(self.shards) + list(self.eval_shards)

  def shard_paths(self, data_dir: str) -> List[str]:
    """The training shards."""
    return [self.path(data_dir, s) for s in self.shards]

  def eval_shard_paths(self, data_dir: str) -> List[str]:
    return [self.path(data_dir, s) for s in self.eval_shards]

  def vocab_path(self, data_dir: str) -> str:
    return self.path(data_dir, self.vocab_file)


def write_manifest(data_dir: str, manifest: Manifest) -> str:
  """Writes the manifest atomically (temporary name, then rename): it is the mark of finished data."""
  path = os.path.join(data_dir, MANIFEST_NAME)
  fileio.write_atomic(path, manifest.to_json())
  return path


def read_manifest(data_dir: str) -> Manifest:
  path = os.path.join(data_dir, MANIFEST_NAME)
  if not fileio.exists(path):
    # The command ends the line, so that it can be copied as it is.
    raise DataError(f"no {MANIFEST_NAME} in {data_dir!r}: build the data first (other corpora: README, Real "
                    f"corpora; --max_seq_length is the run's SEQ_LENGTH), e.g. from the embedded Wikipedia "
                    f"fragment: python -m data_prep.build --corpus=wikipedia:embedded --vocab=wordpiece:8192 "
                    f"--max_seq_length=128 --output_dir={shlex.quote(data_dir)}")
  with fileio.open_file(path, "rb") as f:
    return parse_manifest(f.read(), origin=path)


def parse_manifest(data: bytes, origin: str) -> Manifest:
  """A manifest file's bytes as a Manifest; a one-line DataError naming `origin` when they are not UTF-8
  JSON of one."""
  return Manifest.from_json(fileio.decode_utf8(data, origin, DataError, _REBUILD), origin=origin)


def record_counts(manifest: Manifest) -> Optional[List[int]]:
  """Records per training shard, in order; None when the manifest does not record them."""
  if not manifest.shard_info:
    return None
  return [manifest.shard_info[name].num_records for name in manifest.shards]


def check_compatible(manifest: Manifest, data_dir: str, vocab_size: Optional[int], seq_length: int) -> None:
  """Refuses a model whose vocab size or sequence length does not fit the data, in one line."""
  if vocab_size is not None and vocab_size != manifest.vocab_size:
    raise DataError(
        f"model vocab_size={vocab_size} but the data in {data_dir!r} uses a vocab of {manifest.vocab_size} "
        f"({manifest.vocab_file}); set VOCAB_SIZE = {manifest.vocab_size} (or None to take it from the data) or rebuild the data")
  if seq_length != manifest.max_seq_length:
    raise DataError(
        f"SEQ_LENGTH={seq_length} but the data in {data_dir!r} was built with max_seq_length={manifest.max_seq_length}; "
        f"set SEQ_LENGTH = {manifest.max_seq_length} or rebuild the data with --max_seq_length={seq_length}")
  missing = [p for p in manifest.shard_paths(data_dir) if not fileio.exists(p)]
  if missing:
    raise DataError(f"{len(missing)} shard(s) listed in the manifest are missing from {data_dir!r}, e.g. {missing[0]}; rebuild the data")


# Integrity.


def _how_to_fix(data_dir: str) -> str:
  return (f"re-copy it or rebuild the data (python -m data_prep.verify --data_dir={data_dir} checks every "
          "shard's checksum)")


def _stat_size(path: str) -> Optional[int]:
  try:
    return fileio.size(path)
  except fileio.not_found_errors():
    return None


def check_shard_sizes(manifest: Manifest, data_dir: str) -> None:
  """Every shard, training and held-out, exists with the size the manifest records (a stat each).

  Catches a truncated or partly copied shard before training reads into it; a shard damaged in
  place (same size) needs `verify_checksums`. Raises DataError naming the first bad shard.
  """
  if not manifest.shard_info:
    logging.warning(NO_INTEGRITY_INFO.format(data_dir=data_dir, what="shard size check"))
    return
  names = manifest.all_shards()
  paths = [manifest.path(data_dir, name) for name in names]
  with concurrent.futures.ThreadPoolExecutor(min(STAT_PARALLELISM, max(1, len(paths)))) as pool:
    sizes = list(pool.map(_stat_size, paths))
  for name, path, size in zip(names, paths, sizes):
    expected = manifest.shard_info[name].num_bytes
    if size is None:
      raise DataError(f"shard {path} listed in the manifest is missing; {_how_to_fix(data_dir)}")
    if size != expected:
      raise DataError(f"shard {path} has {size} bytes but the manifest says {expected} (truncated or replaced); "
                      f"{_how_to_fix(data_dir)}")
  logging.info("%d shard(s) in %s have the sizes the manifest records", len(names), data_dir)


class _RecordCounter:
  """Counts TFRecords in a byte stream fed block by block, from the length field of each header."""

  def __init__(self):
    self.num_records = 0
    self._skip = 0  # Bytes of the current record (data and footer) still to pass.
    self._header = b""

  def update(self, block: bytes) -> None:
    position = 0
    while position < len(block):
      if self._skip:
        step = min(self._skip, len(block) - position)
        self._skip -= step
        position += step
        continue
      take = block[position:position + _RECORD_HEADER - len(self._header)]
      self._header += take
      position += len(take)
      if len(self._header) == _RECORD_HEADER:
        (length,) = _LENGTH.unpack(self._header[:_LENGTH.size])
        self._skip = length + _RECORD_FOOTER
        self._header = b""
        self.num_records += 1

  @property
  def whole_records(self) -> int:
    """Records the stream holds completely so far (a record cut off at the end does not count)."""
    return self.num_records - (1 if self._skip else 0)


def shard_info(path: str) -> ShardInfo:
  """Size, record count and sha256 of a TFRecord file, read once from start to end."""
  digest = hashlib.sha256()
  counter = _RecordCounter()
  size = 0
  with fileio.open_file(path, "rb") as f:
    while True:
      block = f.read(READ_BLOCK)
      if not block:
        break
      digest.update(block)
      counter.update(block)
      size += len(block)
  return ShardInfo(size, counter.whole_records, digest.hexdigest())


def _verify_one(job: Tuple[str, str, ShardInfo, str]) -> Optional[str]:
  """The problem with one shard, in one line, or None."""
  name, path, expected, data_dir = job
  try:
    found = shard_info(path)
  except fileio.not_found_errors():
    return f"shard {path} listed in the manifest is missing; {_how_to_fix(data_dir)}"
  except fileio.errors() as e:
    message = getattr(e, "message", None) or str(e)
    return f"shard {path} cannot be read ({type(e).__name__}: {message.splitlines()[0] if message else ''})"
  if found.num_bytes != expected.num_bytes:
    return (f"shard {path} has {found.num_bytes} bytes but the manifest says {expected.num_bytes} (truncated or "
            f"replaced); {_how_to_fix(data_dir)}")
  if found.sha256 != expected.sha256:
    return (f"shard {path} is corrupt: its {CHECKSUM_ALGORITHM} differs from the manifest's (bytes changed, size "
            f"unchanged); {_how_to_fix(data_dir)}")
  if found.num_records != expected.num_records:
    return (f"shard {path} holds {found.num_records} records but the manifest says {expected.num_records}; the "
            "manifest does not belong to this data: rebuild the data")
  return None


def verify_checksums(manifest: Manifest, data_dir: str,
                     progress: Optional[Callable[[int, int, str, ShardInfo], None]] = None) -> None:
  """Reads every shard, training and held-out, and checks its size, sha256 and record count.

  `progress(done, total, name, info)` is called after each good shard, in manifest order. Raises
  DataError naming the first bad shard (in manifest order).
  """
  if not manifest.shard_info:
    logging.warning(NO_INTEGRITY_INFO.format(data_dir=data_dir, what="checksum verification"))
    return
  names = manifest.all_shards()
  jobs = [(name, manifest.path(data_dir, name), manifest.shard_info[name], data_dir) for name in names]
  pool = concurrent.futures.ThreadPoolExecutor(min(VERIFY_PARALLELISM, max(1, len(jobs))))
  try:
    for done, (job, problem) in enumerate(zip(jobs, pool.map(_verify_one, jobs)), start=1):
      if problem:
        raise DataError(problem)
      if progress is not None:
        progress(done, len(jobs), job[0], job[2])
  finally:
    # After a problem, shards not yet started are not read.
    pool.shutdown(wait=True, cancel_futures=True)


# Vocab.


def _wordpiece_tokens(path: str) -> List[str]:
  # As tokenization.read_wordpiece_vocab reads it (blank lines are skipped): ids must agree.
  try:
    with fileio.open_file(path, "rb") as f:
      text = f.read().decode("utf-8")
    # Lines end at "\n" only (as tf.io.gfile reads them); a "\r" before it is dropped.
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]
  except UnicodeDecodeError as e:
    raise DataError(f"vocab {path} is not UTF-8 text ({e.reason} at byte {e.start}); re-copy it or rebuild the "
                    "data") from None


def _sentencepiece_tokens(path: str) -> List[str]:
  import sentencepiece  # pylint: disable=g-import-not-at-top  (only SentencePiece data needs it)
  with fileio.open_file(path, "rb") as f:
    proto = f.read()
  processor = sentencepiece.SentencePieceProcessor()
  try:
    processor.LoadFromSerializedProto(proto)
  except (RuntimeError, OSError) as e:
    raise DataError(f"vocab {path} is not a SentencePiece model ({str(e).splitlines()[0] if str(e) else e!r}); "
                    "re-copy it or rebuild the data") from None
  return [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]


def check_vocab(manifest: Manifest, data_dir: str) -> None:
  """The vocab file has manifest.vocab_size entries and the special tokens at the manifest's ids."""
  path = manifest.vocab_path(data_dir)
  name = os.path.basename(path)
  if not fileio.exists(path):
    raise DataError(f"vocab {path} named by the manifest is missing; re-copy it or rebuild the data")
  if manifest.vocab_type == "wordpiece":
    tokens, unit = _wordpiece_tokens(path), "entries"
  elif manifest.vocab_type == "sentencepiece":
    tokens, unit = _sentencepiece_tokens(path), "pieces"
  else:
    raise DataError(f"the manifest in {data_dir!r} has vocab_type {manifest.vocab_type!r}, not wordpiece or "
                    "sentencepiece; rebuild the data")
  if len(tokens) != manifest.vocab_size:
    raise DataError(f"manifest says vocab_size {manifest.vocab_size} but {name} ({path}) has {len(tokens)} {unit}; "
                    "rebuild the data or fix the manifest")
  ids = {}
  for index, token in enumerate(tokens):
    ids.setdefault(token, index)
  for token in SPECIAL_TOKENS:
    expected = manifest.special_token_ids[token]
    if ids.get(token) != expected:
      where = "is missing" if token not in ids else f"has id {ids[token]}"
      raise DataError(f"manifest says {token} has id {expected} but in {name} ({path}) it {where}; rebuild the data "
                      "or fix the manifest")
