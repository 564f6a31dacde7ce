"""tf.train.Example records for a whole batch of examples at once, built with numpy.

Building one `tf.train.Example` proto per example costs about 25 µs of Python, most of a corpus
build's time once tokenizing is a batched op. The wire format of the Examples data_prep writes
is simple and fixed, so this writes it directly for [N, width] arrays, vectorised over all
examples and values, byte for byte what `Example.SerializeToString(deterministic=True)` gives
(tests/data_prep/test_tfexample.py pins that against the proto library on awkward values):

  Example   = 0x0A varint(len) Features
  Features  = for each feature name in sorted order: 0x0A varint(len) Entry     (the map)
  Entry     = 0x0A varint(len) name  0x12 varint(len) Feature                   (key, value)
  Feature   = 0x1A varint(len) Int64List | 0x12 varint(len) FloatList         (the oneof)
  Int64List = 0x0A varint(len) varint(v0) varint(v1) ...   (packed; nothing when empty)
  FloatList = 0x0A varint(len) float32-le(v0) ...           (packed; nothing when empty)

A batch of records is returned as one flat uint8 buffer and the length of each record
(`RecordBatch`); with `length_prefix` each record comes after its length as 4 little-endian bytes,
the framing of data_prep's unit record files, added in the same pass.
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

_FEATURES_TAG = 0x0A  # Example.features, Features.feature (map entries), *List.value: field 1, length-delimited.
_KEY_TAG = 0x0A  # Map entry key: field 1.
_VALUE_TAG = 0x12  # Map entry value: field 2.
_FLOAT_LIST_TAG = 0x12  # Feature.float_list: field 2.
_INT64_LIST_TAG = 0x1A  # Feature.int64_list: field 3.
_MAX_VARINT_BYTES = 10


LENGTH_PREFIX_DTYPE = "<u4"
LENGTH_PREFIX_BYTES = 4


@dataclasses.dataclass(frozen=True)
class RecordBatch:
  """Records back to back in `data` (uint8), record i `lengths[i]` bytes long, each after its length
  as LENGTH_PREFIX_BYTES little-endian bytes when `length_prefixed`."""
  data: np.ndarray
  lengths: np.ndarray
  length_prefixed: bool = False

  def __len__(self) -> int:
    return len(self.lengths)

  @property
  def num_bytes(self) -> int:
    """Bytes of the records themselves, prefixes not counted."""
    return int(self.lengths.sum())

  def records(self) -> List[bytes]:
    """The records as Python bytes (for callers that need them one by one)."""
    blob = self.data.tobytes()
    prefix = LENGTH_PREFIX_BYTES if self.length_prefixed else 0
    ends = np.cumsum(self.lengths + prefix).tolist()
    return [blob[a + prefix:b] for a, b in zip([0] + ends[:-1], ends)]


# Part of every row: [N, W] bytes, which of them are kept ([N, W] bool) and how many per row ([N]).
# Keeping the parts padded to a fixed width and dropping the padding with one boolean index at the
# end is cheaper than compacting each part on its own and scattering it into place.
_Part = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _unsigned(values: np.ndarray) -> Tuple[np.ndarray, int]:
  """The values as protobuf encodes them (negative int64 as 64-bit two's complement), and the largest."""
  signed = np.asarray(values, np.int64)
  if not signed.size:
    return signed.astype(np.uint32), 0
  if signed.min() < 0:
    unsigned = signed.view(np.uint64)
    return unsigned, int(unsigned.max())
  largest = int(signed.max())
  # The narrowest unsigned type that holds them keeps the shifts below cheap.
  for kind in (np.uint8, np.uint16, np.uint32):
    if largest < (1 << (8 * np.dtype(kind).itemsize)):
      return signed.astype(kind), largest
  return signed.view(np.uint64), largest


def _sizes(unsigned: np.ndarray, largest: int) -> np.ndarray:
  sizes = np.ones(unsigned.shape, np.uint8)
  for k in range(1, max(1, (largest.bit_length() + 6) // 7)):
    sizes += unsigned >= unsigned.dtype.type(1 << (7 * k))
  return sizes


def _varint_part(values: np.ndarray) -> Tuple[_Part, np.ndarray]:
  """The varints of [N, k] values as a part (each value in a slot as wide as the widest), and their sizes."""
  unsigned, largest = _unsigned(values)
  num_rows, count = unsigned.shape
  if largest < 0x80:  # All below 128: a varint is the value's own byte.
    data = unsigned.astype(np.uint8)
    return (data, np.broadcast_to(True, data.shape), np.full(num_rows, count, np.int64)), None
  sizes = _sizes(unsigned, largest)
  width = int(sizes.max())
  if width <= 8:
    return _packed_varint_part(unsigned, sizes, width), sizes
  groups = np.empty((num_rows, count, width), np.uint8)
  kind = unsigned.dtype.type
  for k in range(width):
    groups[:, :, k] = (unsigned >> kind(7 * k)) & kind(0x7F)
    if k < width - 1:
      groups[:, :, k] |= (sizes > k + 1).view(np.uint8) << 7  # The continuation bit: more bytes follow.
  keep = np.arange(width, dtype=np.uint8) < sizes[:, :, None]
  shape = (num_rows, count * width)
  return (groups.reshape(shape), keep.reshape(shape), sizes.sum(axis=1, dtype=np.int64)), sizes


def _packed_varint_part(unsigned: np.ndarray, sizes: np.ndarray, width: int) -> _Part:
  """_varint_part for varints of up to 8 bytes: each value's bytes packed into one little-endian
  integer of 2, 4 or 8 bytes, which numpy builds with whole-array operations and which are then
  read as bytes (the slot is as wide as the container; bytes past a varint's end are not kept)."""
  num_rows, count = unsigned.shape
  slot = 2 if width <= 2 else 4 if width <= 4 else 8
  kind = np.dtype(f"<u{slot}")
  values = unsigned.astype(kind, copy=False)
  packed = np.zeros(values.shape, kind)
  kept = np.zeros(values.shape, kind)
  for k in range(width):
    byte = (values >> kind.type(7 * k)) & kind.type(0x7F)
    if k < width - 1:
      byte |= (sizes > k + 1).astype(kind) << kind.type(7)  # The continuation bit: more bytes follow.
    packed |= byte << kind.type(8 * k)
    kept |= (sizes > k).astype(kind) << kind.type(8 * k)
  shape = (num_rows, count * slot)
  return packed.view(np.uint8).reshape(shape), kept.view(np.bool_).reshape(shape), sizes.sum(axis=1, dtype=np.int64)


def _length_part(lengths: np.ndarray) -> _Part:
  part, _ = _varint_part(lengths[:, None])
  return part


def _constant_part(constant: bytes, num_rows: int) -> _Part:
  data = np.broadcast_to(np.frombuffer(constant, np.uint8), (num_rows, len(constant)))
  return data, np.broadcast_to(True, data.shape), np.full(num_rows, len(constant), np.int64)


def _size(parts: Sequence[_Part]) -> np.ndarray:
  return sum(part[2] for part in parts)


def _entry(name: str, values: np.ndarray, is_float: bool) -> List[_Part]:
  """The map entry of one feature, as parts of every row."""
  num_rows = values.shape[0]
  if is_float:
    data = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(num_rows, -1)
    payload = (data, np.broadcast_to(True, data.shape), np.full(num_rows, data.shape[1], np.int64))
  else:
    payload, _ = _varint_part(values)
  value_list: List[_Part] = []
  if values.shape[1]:  # An empty packed list is left out altogether.
    value_list = [_constant_part(bytes([_FEATURES_TAG]), num_rows), _length_part(payload[2]), payload]
  list_size = _size(value_list) if value_list else np.zeros(num_rows, np.int64)
  kind = _FLOAT_LIST_TAG if is_float else _INT64_LIST_TAG
  feature = [_constant_part(bytes([kind]), num_rows), _length_part(list_size)] + value_list
  key = name.encode("utf-8")
  key_part = bytes([_KEY_TAG]) + _varint_bytes(len(key)) + key + bytes([_VALUE_TAG])
  entry = [_constant_part(key_part, num_rows), _length_part(_size(feature))] + feature
  return [_constant_part(bytes([_FEATURES_TAG]), num_rows), _length_part(_size(entry))] + entry


def _varint_bytes(value: int) -> bytes:
  (data, keep, _), _ = _varint_part(np.array([[value]]))
  return data[keep].tobytes()


def serialize_batch(features: Dict[str, np.ndarray], float_features: Sequence[str] = (),
                    length_prefix: bool = False) -> RecordBatch:
  """Serialized tf.train.Examples of N examples (each after its length, with `length_prefix`).

  `features` maps each name to an [N, width] array (every example has `width` values; a width of
  one written as a 1-D [N] array is the same thing: a one-value feature) of integers, or of floats
  for the names in `float_features`.
  """
  arrays = {name: np.asarray(values) for name, values in features.items()}
  arrays = {name: values[:, None] if values.ndim == 1 else values for name, values in arrays.items()}
  num_rows = {values.shape[0] for values in arrays.values()}
  if len(num_rows) != 1:
    raise ValueError(f"features of different batch sizes: { {n: v.shape for n, v in arrays.items()} }")
  (count,) = num_rows
  if not count:
    return RecordBatch(np.zeros(0, np.uint8), np.zeros(0, np.int64), length_prefix)
  entries: List[_Part] = []
  # Deterministic serialization writes map entries sorted by key (bytewise, as sorted() does for these names).
  for name in sorted(arrays, key=lambda n: n.encode("utf-8")):
    entries += _entry(name, arrays[name], name in float_features)
  parts = [_constant_part(bytes([_FEATURES_TAG]), count), _length_part(_size(entries))] + entries
  lengths = _size(parts)
  if length_prefix:
    prefix = lengths.astype(LENGTH_PREFIX_DTYPE).view(np.uint8).reshape(count, LENGTH_PREFIX_BYTES)
    parts.insert(0, (prefix, np.broadcast_to(True, prefix.shape), None))
  keep = np.concatenate([part[1] for part in parts], axis=1)
  data = np.concatenate([part[0] for part in parts], axis=1)[keep]
  return RecordBatch(data, lengths, length_prefix)
