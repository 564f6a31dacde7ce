"""The record format of the fine-tuning feature cache: rows of numpy features as record bytes, and back.

One record is one row's features as raw little-endian bytes, not a tf.train.Example
(building Example protos in Python costs more than tokenizing the row): first the
fixed-size features (labels, positions), then the sequence features position-major
([S, C] for a [C, S] feature) stored as (value - pad) mod 2**bits, cut after the row's last
non-pad position. Decoding a batch reads the fixed part at fixed offsets and the sequence part
with `decode_raw(fixed_length=...)`, whose zero fill restores the padding. An MNLI pair of
Wikipedia sentences at 128 tokens takes ~230 bytes on disk instead of ~1.5 kB of padded int32.
"""
import dataclasses
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf


class FeatureCacheError(ValueError):
  """A cache that cannot be used: corrupt, incomplete, or not the one asked for."""


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
