"""Hugging Face model dirs: config.json, model.safetensors or pytorch_model.bin (read without torch: a zip
of one pickle and raw storages, unpickled with an allow-list), and vocab.txt or tokenizer.json."""
import collections
import dataclasses
import os
import pickle
import zipfile
from typing import Dict, Optional

import numpy as np
import safetensors
import tensorflow as tf

from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.convert.common import (SAFETENSORS_NAME, TORCH_BIN_NAME, VOCAB_NAME, ConversionError, Source, Vocab,
                                        check_vocab, read_lines)

# ----------------------------------------------------------------------------------------------
# Reading weights files without torch


# safetensors dtypes this converter reads: numpy's own, and BF16 (numpy has none), widened to float32.
_SAFETENSORS_NUMPY_DTYPES = ("F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8", "BOOL")
_SAFETENSORS_BF16 = "BF16"
_REDOWNLOAD = "re-download it, or re-save it with transformers' save_pretrained"


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
  return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors_file(path: str) -> Dict[str, np.ndarray]:
  """Tensors of a .safetensors file as numpy arrays (bfloat16 becomes float32), read with the
  `safetensors` package, which validates the header: an object of entries whose dtype, shape and
  data_offsets agree with each other and cover the file exactly. Anything else is one
  ConversionError naming the file."""
  try:
    with safetensors.safe_open(path, framework="np") as f:
      dtypes = {name: f.get_slice(name).get_dtype() for name in f.keys()}
      unreadable = [(n, d) for n, d in dtypes.items() if d not in _SAFETENSORS_NUMPY_DTYPES + (_SAFETENSORS_BF16,)]
      if unreadable:
        name, dtype = unreadable[0]
        raise ConversionError(f"tensor {name} in {path} has dtype {dtype}, which this converter does not read")
      out = {name: f.get_tensor(name) for name, dtype in dtypes.items() if dtype != _SAFETENSORS_BF16}
    bfloat16 = [name for name, dtype in dtypes.items() if dtype == _SAFETENSORS_BF16]
    if bfloat16:
      # TensorFlow's tensors carry bfloat16, which numpy lacks.
      with safetensors.safe_open(path, framework="tf") as f:
        out.update({name: tf.cast(f.get_tensor(name), tf.float32).numpy() for name in bfloat16})
  except safetensors.SafetensorError as e:
    raise ConversionError(f"{path} is not a valid safetensors file ({errors.first_line(e)}); "
                          f"{_REDOWNLOAD}") from None
  return out


_TORCH_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  del unused_args  # requires_grad, backward hooks, metadata.
  if not size:
    return np.array(storage[storage_offset])
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=tuple(size),
                                         strides=tuple(s * itemsize for s in stride))
  return np.array(view)


def _rebuild_parameter(data, *unused_args):
  return data


class _TorchUnpickler(pickle.Unpickler):
  """Unpickles a torch state dict into numpy arrays; anything but tensors and dicts is refused."""

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: str):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix
    self._path = path
    self._storages: Dict[str, np.ndarray] = {}

  def find_class(self, module, name):
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in _TORCH_STORAGE_DTYPES:
      return _StorageType(name)
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    raise ConversionError(f"{self._path} holds a {module}.{name}, which a plain state dict does not; convert it "
                          "to model.safetensors with transformers first")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise ConversionError(f"{self._path} has a storage reference this reader does not know ({pid[:1]!r})")
    storage_type, key = pid[1], str(pid[2])
    if key not in self._storages:
      dtype = _TORCH_STORAGE_DTYPES[storage_type.name]
      data = self._archive.read(f"{self._prefix}data/{key}")
      if dtype == "bfloat16":
        self._storages[key] = _bfloat16_to_float32(np.frombuffer(data, dtype="<u2"))
      else:
        self._storages[key] = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))
    return self._storages[key]


def read_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
  """A `torch.save`d state dict (the zip format of torch >= 1.6) as numpy arrays, without torch."""
  try:
    archive = zipfile.ZipFile(path)
  except zipfile.BadZipFile:
    raise ConversionError(f"{path} is not in torch's zip format (saved by torch < 1.6?); re-save it with a recent "
                          "torch or as model.safetensors") from None
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if len(pickles) != 1:
      raise ConversionError(f"{path} is a zip but not a torch checkpoint (no single data.pkl)")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = prefix + "byteorder"
    if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
      raise ConversionError(f"{path} was saved big-endian, which this reader does not handle")
    with archive.open(pickles[0]) as f:
      state = _TorchUnpickler(f, archive, prefix, path).load()
  if not isinstance(state, dict):
    raise ConversionError(f"{path} holds a {type(state).__name__}, not a state dict")
  return {str(k): v for k, v in state.items() if isinstance(v, np.ndarray)}


def read_huggingface_vocab(directory: str, default_lower_case: Optional[bool] = None) -> Vocab:
  """The WordPiece vocab of a Hugging Face model dir: `vocab.txt`, or the one in `tokenizer.json`.

  Casing: `tokenizer.json`'s normalizer, else `tokenizer_config.json`'s `do_lower_case`, else
  `default_lower_case` (BERT's and ELECTRA's own default: lower case).
  """
  lower = default_lower_case
  config_path = os.path.join(directory, "tokenizer_config.json")
  if os.path.exists(config_path):
    value = fileio.read_json_object(config_path, ConversionError, _REDOWNLOAD).get("do_lower_case")
    if isinstance(value, bool):
      lower = value
  tokenizer_path = os.path.join(directory, "tokenizer.json")
  vocab_path = os.path.join(directory, VOCAB_NAME)
  tokens = None
  origin = vocab_path
  if os.path.exists(tokenizer_path):
    spec = fileio.read_json_object(tokenizer_path, ConversionError, _REDOWNLOAD)
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece" and not os.path.exists(vocab_path):
      raise ConversionError(f"{tokenizer_path} is a {model.get('type')} tokenizer; tpu_electra converts WordPiece "
                            "vocabs only")
    if model.get("type") == "WordPiece":
      if model.get("continuing_subword_prefix", "##") != "##":
        raise ConversionError(f"{tokenizer_path} marks word continuations with "
                              f"{model.get('continuing_subword_prefix')!r}, tpu_electra's WordPiece with '##'")
      by_id = {int(i): t for t, i in model["vocab"].items()}
      if sorted(by_id) != list(range(len(by_id))):
        raise ConversionError(f"{tokenizer_path}'s vocab ids are not 0..{len(by_id) - 1}")
      tokens = [by_id[i] for i in range(len(by_id))]
      origin = tokenizer_path
      normalizer = spec.get("normalizer") or {}
      if normalizer.get("type") == "BertNormalizer" and isinstance(normalizer.get("lowercase"), bool):
        lower = normalizer["lowercase"]
  if tokens is None:
    if not os.path.exists(vocab_path):
      raise ConversionError(f"{directory} has neither vocab.txt nor tokenizer.json: no vocab to convert")
    tokens = read_lines(vocab_path)
  check_vocab(tokens, origin)
  return Vocab(tokens=tokens, do_lower_case=True if lower is None else lower, origin=origin)


def read_huggingface(path: str) -> Source:
  """Reads a transformers model dir: config.json, the weights (safetensors or torch zip), the vocab."""
  if not os.path.isdir(path):
    raise ConversionError(f"huggingface source {path!r} is not a directory")
  config_path = os.path.join(path, "config.json")
  if not os.path.exists(config_path):
    raise ConversionError(f"{path} has no config.json")
  config = fileio.read_json_object(config_path, ConversionError, _REDOWNLOAD)
  safetensors = os.path.join(path, SAFETENSORS_NAME)
  torch_bin = os.path.join(path, TORCH_BIN_NAME)
  if os.path.exists(safetensors):
    weights_file, tensors = safetensors, read_safetensors_file(safetensors)
  elif os.path.exists(torch_bin):
    weights_file, tensors = torch_bin, read_torch_state_dict(torch_bin)
  elif any(n.endswith(".index.json") for n in os.listdir(path)):
    raise ConversionError(f"{path} holds a sharded checkpoint (*.index.json); tpu_electra converts a single "
                          f"{SAFETENSORS_NAME} or {TORCH_BIN_NAME}")
  else:
    raise ConversionError(f"{path} has neither {SAFETENSORS_NAME} nor {TORCH_BIN_NAME}")
  architectures = config.get("architectures") or [None]
  return Source(kind="huggingface", path=path, config=config, tensors=tensors, weights_file=weights_file,
                vocab=read_huggingface_vocab(path), architecture=architectures[0])

