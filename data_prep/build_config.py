"""What a build is: its settings (BuildConfig), the records its tasks run on, and its work directory.

Every stage (data_prep.extract, data_prep.pipeline) and both runners (local, Beam) share these.
"""
import dataclasses
import json
import os
from typing import Optional, Tuple

from data_prep import examples as examples_lib
from data_prep import sources
from data_prep import vocab as vocab_lib
from tpu_electra import fileio

DATA_PREP_VERSION = 3
WORK_DIR = "_work"
SHARD_PREFIX = "pretrain"
EVAL_SHARD_PREFIX = "eval"
# Enough buckets that the held-out share lands within about 1/4096 of the corpus of the flag's
# value, few enough that a part's byte counts per bucket stay a small JSON list.
HELD_OUT_BUCKETS = 4096
DEFAULT_HELD_OUT_FRACTION = 0.01
MB = 1 << 20


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


def write_json(path: str, value) -> None:
  fileio.write_atomic(path, json.dumps(value, sort_keys=True))


def read_json(path: str):
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
      if read_json(marker).get("settings_hash") == settings_hash:
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
  write_json(marker, {"settings_hash": settings_hash})
  return False

