"""The manifest that `data_prep` writes beside its TFRecord shards, and the checks the trainer runs.

A pretraining data directory holds `manifest.json`, the vocab file it names, and the shards it
lists. The trainer never guesses: vocab size, special-token ids and sequence length come from here,
and a model that disagrees with them is refused with a one-line error.
"""
import dataclasses
import json
import os
from typing import Dict, List, Optional

import tensorflow as tf

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
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


class DataError(ValueError):
  """Pretraining data that is missing, corrupt or does not fit the model."""


@dataclasses.dataclass
class Manifest:
  vocab_file: str  # Relative to the data directory (or absolute / gs://).
  vocab_size: int
  vocab_type: str  # "wordpiece" or "sentencepiece".
  do_lower_case: bool
  special_token_ids: Dict[str, int]  # Keys are SPECIAL_TOKENS.
  max_seq_length: int
  shards: List[str]  # File names relative to the data directory, in order.
  num_documents: int
  num_examples: int
  num_tokens: int  # Non-padding tokens, [CLS]/[SEP] included.
  settings_hash: str
  settings: Dict[str, object] = dataclasses.field(default_factory=dict)
  sources: List[str] = dataclasses.field(default_factory=list)
  num_bad_files: int = 0
  scalar_features: List[str] = dataclasses.field(default_factory=list)
  # > 0 when every example carries MASKED_LM_FEATURES (static masking); the input pipeline then
  # uses those masks instead of masking on the fly.
  max_predictions_per_seq: int = 0
  format_version: int = FORMAT_VERSION

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

  @classmethod
  def from_json(cls, text: str, origin: str = "manifest") -> "Manifest":
    try:
      fields = json.loads(text)
    except json.JSONDecodeError as e:
      raise DataError(f"{origin} is not valid JSON ({e}); rebuild the data with python -m data_prep.build") from None
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
      raise DataError(f"{origin} has unknown fields {unknown}; it was written by a newer data_prep, upgrade tpu_electra")
    try:
      manifest = cls(**fields)
    except TypeError as e:
      raise DataError(f"{origin} is incomplete ({e}); rebuild the data with python -m data_prep.build") from None
    if manifest.format_version != FORMAT_VERSION:
      raise DataError(f"{origin} has format_version {manifest.format_version}, this tpu_electra reads {FORMAT_VERSION}; rebuild the data")
    unknown_features = sorted(set(manifest.scalar_features) - set(SCALAR_FEATURES))
    if unknown_features:
      raise DataError(f"{origin} lists unknown scalar features {unknown_features}; upgrade tpu_electra or rebuild the data")
    missing = [t for t in SPECIAL_TOKENS if t not in manifest.special_token_ids]
    if missing:
      raise DataError(f"{origin} names no id for special tokens {missing}; rebuild the data with python -m data_prep.build")
    return manifest

  def path(self, data_dir: str, name: str) -> str:
    if "://" in name or os.path.isabs(name):
      return name
    return os.path.join(data_dir, name)

  def shard_paths(self, data_dir: str) -> List[str]:
    return [self.path(data_dir, s) for s in self.shards]

  def vocab_path(self, data_dir: str) -> str:
    return self.path(data_dir, self.vocab_file)


def write_manifest(data_dir: str, manifest: Manifest) -> str:
  """Writes the manifest atomically (temporary name, then rename): it is the mark of finished data."""
  path = os.path.join(data_dir, MANIFEST_NAME)
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(manifest.to_json())
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path


def read_manifest(data_dir: str) -> Manifest:
  path = os.path.join(data_dir, MANIFEST_NAME)
  if not tf.io.gfile.exists(path):
    raise DataError(f"no {MANIFEST_NAME} in {data_dir!r}: build the data first with python -m data_prep.build --output_dir={data_dir} ...")
  with tf.io.gfile.GFile(path) as f:
    return Manifest.from_json(f.read(), origin=path)


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
  missing = [p for p in manifest.shard_paths(data_dir) if not tf.io.gfile.exists(p)]
  if missing:
    raise DataError(f"{len(missing)} shard(s) listed in the manifest are missing from {data_dir!r}, e.g. {missing[0]}; rebuild the data")
