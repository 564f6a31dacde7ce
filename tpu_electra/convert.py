r"""Converts a released BERT/ELECTRA checkpoint into a tpu_electra run directory.

  python -m tpu_electra.convert --source=huggingface:DIR --output_dir=OUT
  python -m tpu_electra.convert --source=huggingface:DISCRIMINATOR_DIR --generator=huggingface:GENERATOR_DIR \
      --output_dir=OUT
  python -m tpu_electra.convert --source=electra:CHECKPOINT --output_dir=OUT
  python -m tpu_electra.convert --source=tf_models:CHECKPOINT --output_dir=OUT

Sources (KIND:PATH):
- `huggingface`: a directory with `config.json` and `model.safetensors` (or `pytorch_model.bin`,
  read without torch: it is a zip of one pickle and raw storages, unpickled with an allow-list) and
  `vocab.txt` or `tokenizer.json`. Architectures: BertModel, BertForMaskedLM, BertForPreTraining,
  ElectraModel, ElectraForPreTraining (with its replaced-token detector), ElectraForMaskedLM (a
  generator). `--generator=huggingface:DIR` adds an ElectraForMaskedLM generator to an
  ElectraForPreTraining discriminator (transformers ships the two as separate models).
- `electra`: a google-research/electra TF1 checkpoint (its model dir, or one checkpoint prefix),
  variable names as its `model/modeling.py` and `run_pretraining.py` create them (`electra/...`
  discriminator, `generator/...`, `discriminator_predictions/...`, `generator_predictions/...`),
  with `vocab.txt` beside it. Sizes come from a `bert_config.json`/`config.json` beside it when
  there is one, otherwise from the tensors' shapes, with ELECTRA's 64-wide attention heads.
- `tf_models`: a tf-models-official checkpoint (model dir or prefix): an ElectraPretrainer or
  BertPretrainerV2 run with its `params.yaml` (beside the checkpoint or one directory up), or a
  bare BertEncoder with `bert_config.json`; `vocab.txt` beside it. The network is rebuilt with
  tf-models-official's own classes and restored from its object graph, then mapped by name.
  tf-models' "gelu" is the tanh approximation: the EncoderConfig gets APPROXIMATE_GELU.

OUT becomes a run directory as `pretrain` leaves one: checkpoint items `encoder` (always) and
`model` (the objective, where the source has pretraining heads), `vocab.txt`, and `run.json`
recording the source (kind, path, architecture, sha256 of the weights file), the vocab's type and
casing, and what was converted, left out and freshly initialized. What each architecture becomes:

  BertModel, ElectraModel, BertEncoder    encoder only (a BERT pooler is left out); run.json names
                                          the bert / electra objective, heads "absent"
  BertForMaskedLM, ElectraForMaskedLM,    bert objective: encoder + tied MLM head
  BertPretrainerV2
  BertForPreTraining                      bert objective with next-sentence prediction
  ElectraForPreTraining                   encoder, and `model` holding the electra objective's
                                          discriminator, embeddings and RTD head (generator absent)
  ElectraForPreTraining + --generator,    electra objective (generator, discriminator, both heads)
  electra TF1 / ElectraPretrainer         (or discriminator only, from what the checkpoint holds)

Hugging Face and TF1 names are mapped through one table (`LAYER_TENSORS`, the per-layer names;
the TF1 names are first renamed to Hugging Face ones as transformers' own loader does). Dense
kernels: torch Linear weights [out, in] are transposed; attention kernels are reshaped to the
official layers' [H, heads, head_size] / [heads, head_size, H]. Unknown architectures, missing
tensors and shape mismatches are one-line errors naming the tensor.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils

KINDS = ("huggingface", "electra", "tf_models")


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("source", None, f"KIND:PATH, KIND one of {list(KINDS)}.", flag_values=flag_values)
  flags.DEFINE_string("generator", None, "huggingface:PATH of an ElectraForMaskedLM to pair with an "
                      "ElectraForPreTraining --source into an Electra objective.", flag_values=flag_values)
  cli_utils.define_output_flags(flag_values, "the run directory")


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "source", "output_dir")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.convert", check_flags)

import collections
import dataclasses
import os
import pickle
import re
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import safetensors
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra.modeling import EncoderConfig, ReplacedTokenDetectionHead, TransformerEncoder

SAFETENSORS_NAME = "model.safetensors"
TORCH_BIN_NAME = "pytorch_model.bin"
VOCAB_NAME = "vocab.txt"
WORDPIECE = "wordpiece"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# One transformer layer: tpu_electra's weight name below the layer (official
# TransformerEncoderBlock) ↔ the Hugging Face BERT/ELECTRA name below `encoder.layer.{i}.`.
# Names ending in "kernel" are Dense kernels (a torch Linear weight transposed, then reshaped).
LAYER_TENSORS: Tuple[Tuple[str, str], ...] = (
    ("self_attention/query/kernel", "attention.self.query.weight"),
    ("self_attention/query/bias", "attention.self.query.bias"),
    ("self_attention/key/kernel", "attention.self.key.weight"),
    ("self_attention/key/bias", "attention.self.key.bias"),
    ("self_attention/value/kernel", "attention.self.value.weight"),
    ("self_attention/value/bias", "attention.self.value.bias"),
    ("self_attention/attention_output/kernel", "attention.output.dense.weight"),
    ("self_attention/attention_output/bias", "attention.output.dense.bias"),
    ("self_attention_layer_norm/gamma", "attention.output.LayerNorm.weight"),
    ("self_attention_layer_norm/beta", "attention.output.LayerNorm.bias"),
    ("intermediate/kernel", "intermediate.dense.weight"),
    ("intermediate/bias", "intermediate.dense.bias"),
    ("output/kernel", "output.dense.weight"),
    ("output/bias", "output.dense.bias"),
    ("output_layer_norm/gamma", "output.LayerNorm.weight"),
    ("output_layer_norm/beta", "output.LayerNorm.bias"),
)

# GELU's tanh approximation (transformers' "gelu_new", tf-models-official's "gelu"), by the name
# under which tf-models-official registers it with Keras: Keras' own "gelu" is the exact (erf) one.
APPROXIMATE_GELU = "Text>gelu"
# Activations of transformers' config.json → the EncoderConfig.activation that computes the same.
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "tanh": "tanh", "silu": "swish", "swish": "swish",
                "gelu_new": APPROXIMATE_GELU, "gelu_pytorch_tanh": APPROXIMATE_GELU}


def huggingface_activation(activation: str) -> str:
  """The transformers `hidden_act` of an EncoderConfig.activation (the inverse of the table above)."""
  return {"gelu": "gelu", APPROXIMATE_GELU: "gelu_new", "swish": "silu"}.get(activation, activation)


# Tensors a source may hold that no tpu_electra model uses (buffers, not weights).
_BUFFERS = re.compile(r"(^|\.)(position_ids|token_type_ids)$")


class ConversionError(ValueError):
  """A source that cannot be converted as asked (one line, naming the tensor or file)."""


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
    raise ConversionError(f"{path} is not a valid safetensors file ({cli_utils.first_line(e)}); "
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


# ----------------------------------------------------------------------------------------------
# Vocab


@dataclasses.dataclass(frozen=True)
class Vocab:
  tokens: List[str]
  do_lower_case: bool
  origin: str
  vocab_type: str = WORDPIECE


def _check_vocab(tokens: List[str], origin: str) -> None:
  missing = [t for t in SPECIAL_TOKENS if t not in set(tokens)]
  if missing:
    raise ConversionError(f"vocab {origin} has no {missing}; tpu_electra needs {list(SPECIAL_TOKENS)}")
  bad = [i for i, t in enumerate(tokens) if not t.strip() or "\n" in t or "\r" in t]
  if bad:
    raise ConversionError(f"vocab {origin} has a blank or multi-line token at id {bad[0]}, which a vocab.txt "
                          "cannot hold")
  if len(set(tokens)) != len(tokens):
    raise ConversionError(f"vocab {origin} lists {len(tokens) - len(set(tokens))} token(s) twice")


def _read_lines(path: str) -> List[str]:
  with open(path, encoding="utf-8") as f:
    return [line.rstrip("\n").rstrip("\r") for line in f if line.strip()]


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
    tokens = _read_lines(vocab_path)
  _check_vocab(tokens, origin)
  return Vocab(tokens=tokens, do_lower_case=True if lower is None else lower, origin=origin)


# ----------------------------------------------------------------------------------------------
# Hugging Face names → tpu_electra layers


def _layers_of(encoder: TransformerEncoder) -> List[tf.keras.layers.Layer]:
  return list(encoder.transformer_layers)


def _relative_variables(layer) -> Dict[str, tf.Variable]:
  out = {}
  marker = layer.name + "/"
  for weight in layer.weights:
    name = weight.name.split(":")[0]
    if marker not in name:
      raise ConversionError(f"weight {weight.name} is not named under its layer {layer.name}")
    out[name.split(marker, 1)[1]] = weight
  return out


class _Tensors:
  """The source's tensors by Hugging Face name; remembers which were used."""

  def __init__(self, tensors: Dict[str, np.ndarray], origin: str):
    self.tensors = tensors
    self.origin = origin
    self.used: set = set()

  def __contains__(self, name: str) -> bool:
    return name in self.tensors

  def get(self, name: str) -> np.ndarray:
    if name not in self.tensors:
      raise ConversionError(f"{self.origin} has no tensor {name}")
    self.used.add(name)
    return self.tensors[name]

  def unused(self) -> List[str]:
    return sorted(n for n in self.tensors if n not in self.used and not _BUFFERS.search(n))


def _assign(variable: tf.Variable, value: np.ndarray, name: str, origin: str, linear: bool = False) -> None:
  """Assigns a Hugging Face tensor to a variable: a Linear weight [out, in] is transposed first."""
  value = np.asarray(value)
  if linear:
    if value.ndim != 2:
      raise ConversionError(f"tensor {name} in {origin} has shape {list(value.shape)}, not a 2-D Linear weight")
    value = value.T
  target = tuple(variable.shape)
  if value.size != int(np.prod(target)) or (not linear and value.ndim == len(target) and value.shape != target):
    raise ConversionError(f"tensor {name} in {origin} has shape {list(np.asarray(value).shape)}, the model needs "
                          f"{list(target)} (transposed: {linear})")
  variable.assign(np.ascontiguousarray(value, dtype=np.float32).reshape(target))


def assign_encoder(encoder: TransformerEncoder, tensors: _Tensors, prefix: str,
                   with_embeddings: bool = True) -> None:
  """Fills a built TransformerEncoder from Hugging Face ELECTRA/BERT names under `prefix`."""
  origin = tensors.origin
  if with_embeddings:
    embeddings = encoder.embeddings
    for variable, name in (
        (embeddings.word_embeddings.embeddings, "embeddings.word_embeddings.weight"),
        (embeddings.position_embeddings.weights[0], "embeddings.position_embeddings.weight"),
        (embeddings.type_embeddings.embeddings, "embeddings.token_type_embeddings.weight"),
        (embeddings.layer_norm.gamma, "embeddings.LayerNorm.weight"),
        (embeddings.layer_norm.beta, "embeddings.LayerNorm.bias")):
      _assign(variable, tensors.get(prefix + name), prefix + name, origin)
  if encoder.embedding_projection is not None:
    for variable, name, linear in ((encoder.embedding_projection.kernel, "embeddings_project.weight", True),
                                   (encoder.embedding_projection.bias, "embeddings_project.bias", False)):
      _assign(variable, tensors.get(prefix + name), prefix + name, origin, linear)
  elif prefix + "embeddings_project.weight" in tensors:
    raise ConversionError(f"{origin} has {prefix}embeddings_project.weight but its config says embedding_size = "
                          "hidden_size")
  layers = _layers_of(encoder)
  extra = f"{prefix}encoder.layer.{len(layers)}.attention.self.query.weight"
  if extra in tensors:
    raise ConversionError(f"{origin} has {extra}, more layers than its config's num_hidden_layers={len(layers)}")
  for index, layer in enumerate(layers):
    variables = _relative_variables(layer)
    for ours, theirs in LAYER_TENSORS:
      name = f"{prefix}encoder.layer.{index}.{theirs}"
      _assign(variables[ours], tensors.get(name), name, origin, linear=ours.endswith("kernel"))


def assign_rtd_head(head: ReplacedTokenDetectionHead, tensors: _Tensors, prefix: str = "discriminator_predictions."):
  for variable, name, linear in ((head.dense.kernel, "dense.weight", True), (head.dense.bias, "dense.bias", False),
                                 (head.logits.kernel, "dense_prediction.weight", True),
                                 (head.logits.bias, "dense_prediction.bias", False)):
    _assign(variable, tensors.get(prefix + name), prefix + name, tensors.origin, linear)


def _check_tied(tensors: _Tensors, name: str, table: np.ndarray) -> None:
  if name in tensors:
    value = tensors.get(name)
    if value.shape != table.shape or not np.array_equal(value, table):
      raise ConversionError(f"{tensors.origin}'s {name} is not tied to the word embeddings; tpu_electra's MLM head "
                            "always is")


def assign_masked_lm_head(head, tensors: _Tensors, dense: str, layer_norm: str, bias: str,
                          decoder: str, word_embeddings: np.ndarray) -> None:
  """Fills official's MaskedLM (dense + activation + layer norm, logits on the tied table, bias)."""
  origin = tensors.origin
  _assign(head.dense.kernel, tensors.get(dense + ".weight"), dense + ".weight", origin, linear=True)
  _assign(head.dense.bias, tensors.get(dense + ".bias"), dense + ".bias", origin)
  _assign(head.layer_norm.gamma, tensors.get(layer_norm + ".weight"), layer_norm + ".weight", origin)
  _assign(head.layer_norm.beta, tensors.get(layer_norm + ".bias"), layer_norm + ".bias", origin)
  _assign(head.bias, tensors.get(bias), bias, origin)
  _check_tied(tensors, decoder + ".weight", word_embeddings)
  if decoder + ".bias" in tensors:
    if not np.array_equal(tensors.get(decoder + ".bias"), tensors.get(bias)):
      raise ConversionError(f"{origin}'s {decoder}.bias differs from {bias}")


# ----------------------------------------------------------------------------------------------
# Configs


def encoder_config_from_huggingface(config: Dict[str, Any], origin: str = "config.json") -> EncoderConfig:
  """The EncoderConfig of a transformers BERT/ELECTRA config.json."""
  model_type = config.get("model_type")
  if model_type not in ("bert", "electra"):
    raise ConversionError(f"{origin} has model_type {model_type!r}; tpu_electra converts bert and electra")
  position = config.get("position_embedding_type", "absolute")
  if position != "absolute":
    raise ConversionError(f"{origin} has position_embedding_type {position!r}; tpu_electra's encoder has absolute "
                          "position embeddings only")
  act = str(config.get("hidden_act", "gelu"))
  if act not in _ACTIVATIONS:
    raise ConversionError(f"{origin} has hidden_act {act!r}; tpu_electra converts {sorted(_ACTIVATIONS)}")
  missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                         "intermediate_size") if k not in config]
  if missing:
    raise ConversionError(f"{origin} has no {missing[0]}")
  hidden = int(config["hidden_size"])
  embedding = config.get("embedding_size") if model_type == "electra" else None
  try:
    return EncoderConfig(
        vocab_size=int(config["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        intermediate_size=int(config["intermediate_size"]),
        embedding_size=None if embedding in (None, hidden) else int(embedding),
        max_position_embeddings=int(config.get("max_position_embeddings", 512)),
        type_vocab_size=int(config.get("type_vocab_size", 2)),
        dropout_rate=float(config.get("hidden_dropout_prob", 0.1)),
        attention_dropout_rate=float(config.get("attention_probs_dropout_prob", 0.1)),
        activation=_ACTIVATIONS[act],
        initializer_range=float(config.get("initializer_range", 0.02)))
  except ValueError as e:
    raise ConversionError(f"{origin}: {cli_utils.first_line(e)}") from None


def generator_fraction(discriminator: EncoderConfig, generator: EncoderConfig) -> float:
  """The `Electra.generator_fraction` whose scaled config is exactly `generator` (else an error)."""
  fraction = generator.hidden_size / discriminator.hidden_size
  want = (generator.hidden_size, generator.num_heads, generator.intermediate_size, generator.num_layers,
          generator.embedding_width, generator.vocab_size)
  if 0.0 < fraction <= 1.0:
    scaled = discriminator.scaled(fraction)
    got = (scaled.hidden_size, scaled.num_heads, scaled.intermediate_size, scaled.num_layers,
           scaled.embedding_width, scaled.vocab_size)
    if got == want:
      return fraction
  raise ConversionError(
      f"the generator (hidden {generator.hidden_size}, {generator.num_heads} heads, FFN {generator.intermediate_size}, "
      f"{generator.num_layers} layers, embedding width {generator.embedding_width}) is not a scaled copy of the "
      f"discriminator (hidden {discriminator.hidden_size}, {discriminator.num_heads} heads, FFN "
      f"{discriminator.intermediate_size}, {discriminator.num_layers} layers, embedding width "
      f"{discriminator.embedding_width}), which tpu_electra's Electra objective requires")


# ----------------------------------------------------------------------------------------------
# Conversion


BERT_ARCHITECTURES = ("BertModel", "BertForMaskedLM", "BertForPreTraining")
ELECTRA_ARCHITECTURES = ("ElectraModel", "ElectraForPreTraining", "ElectraForMaskedLM")


@dataclasses.dataclass
class Converted:
  """A converted model: what goes into the run directory's checkpoint and run.json."""
  encoder_config: EncoderConfig
  encoder: TransformerEncoder
  # The registry name and constructor arguments (besides encoder_config) of the objective the
  # weights belong to; `model` is what is saved as the `model` checkpoint item: the objective, a
  # PartialElectra holding what the source has, or None (encoder only). `absent`: the parts of the
  # objective the source does not have.
  objective_name: str = "bert"
  objective_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  model: Any = None
  converted: List[str] = dataclasses.field(default_factory=list)
  absent: List[str] = dataclasses.field(default_factory=list)
  unused_tensors: List[str] = dataclasses.field(default_factory=list)
  rtd_head: Optional[ReplacedTokenDetectionHead] = None


class PartialElectra(tf.Module):
  """What an ELECTRA discriminator-only source has of the Electra objective, under its attribute
  names (`embeddings`, `discriminator`, `rtd_head`), so the `model` item restores into an Electra
  objective by name and leaves only the generator and its MLM head to initialize."""

  def __init__(self, encoder: TransformerEncoder, rtd_head: ReplacedTokenDetectionHead):
    super().__init__(name="electra")
    self.embeddings = encoder.embeddings
    self.discriminator = encoder
    self.rtd_head = rtd_head

  @property
  def encoder(self) -> TransformerEncoder:
    return self.discriminator


def _build(encoder: TransformerEncoder) -> None:
  encoder(encoder.dummy_inputs(batch_size=1, seq_length=2), training=False)


def _strip_prefix(tensors: Dict[str, np.ndarray], base: str) -> Tuple[Dict[str, np.ndarray], str]:
  """Tensors saved by a headless model (BertModel) have no `bert.`/`electra.` prefix; add it."""
  if any(name.startswith(base) for name in tensors):
    return tensors, base
  return {base + name: value for name, value in tensors.items()}, base


def convert_tensors(config: Dict[str, Any], tensors: Dict[str, np.ndarray], origin: str,
                    architecture: Optional[str] = None,
                    generator: Optional[Tuple[Dict[str, Any], Dict[str, np.ndarray], str]] = None) -> Converted:
  """Builds tpu_electra's model for a transformers config.json + state dict (Hugging Face names).

  `generator`: (config, tensors, origin) of an ElectraForMaskedLM to pair with an
  ElectraForPreTraining discriminator into an Electra objective.
  """
  from tpu_electra.objectives import bert as bert_lib  # pylint: disable=g-import-not-at-top
  from tpu_electra.objectives import electra as electra_lib  # pylint: disable=g-import-not-at-top

  architectures = config.get("architectures") or []
  architecture = architecture or (architectures[0] if architectures else None)
  if architecture is None:
    # No `architectures` entry: decide by the heads present.
    model_type = config.get("model_type")
    if model_type == "electra":
      architecture = ("ElectraForPreTraining" if any(n.startswith("discriminator_predictions.") for n in tensors)
                      else "ElectraForMaskedLM" if any(n.startswith("generator_predictions.") for n in tensors)
                      else "ElectraModel")
    elif model_type == "bert":
      architecture = ("BertForPreTraining" if any(n.startswith("cls.seq_relationship.") for n in tensors)
                      else "BertForMaskedLM" if any(n.startswith("cls.predictions.") for n in tensors)
                      else "BertModel")
  if architecture not in BERT_ARCHITECTURES + ELECTRA_ARCHITECTURES:
    raise ConversionError(f"{origin} is a {architecture}; tpu_electra converts "
                          f"{', '.join(BERT_ARCHITECTURES + ELECTRA_ARCHITECTURES)}")
  encoder_config = encoder_config_from_huggingface(config, os.path.join(origin, "config.json"))
  base = "bert." if architecture.startswith("Bert") else "electra."
  tensors, prefix = _strip_prefix(tensors, base)
  source = _Tensors(tensors, origin)
  if generator is not None and architecture != "ElectraForPreTraining":
    raise ConversionError(f"--generator pairs an ElectraForMaskedLM with an ElectraForPreTraining, but {origin} is a "
                          f"{architecture}")

  if architecture in ("BertModel", "ElectraModel"):
    encoder = TransformerEncoder(encoder_config, name="encoder")
    _build(encoder)
    assign_encoder(encoder, source, prefix)
    unused = source.unused()
    bert = architecture == "BertModel"
    return Converted(encoder_config, encoder, objective_name="bert" if bert else "electra", converted=["encoder"],
                     absent=["mlm_head"] if bert else ["generator", "mlm_head", "rtd_head"], unused_tensors=unused)

  if architecture in ("BertForMaskedLM", "BertForPreTraining", "ElectraForMaskedLM"):
    nsp = architecture == "BertForPreTraining"
    objective = bert_lib.Bert(encoder_config=encoder_config, next_sentence_prediction=nsp)
    encoder = objective.encoder
    _build(encoder)
    assign_encoder(encoder, source, prefix)
    sequence = tf.zeros([1, 1, encoder_config.hidden_size])
    objective.mlm_head(sequence, masked_positions=tf.zeros([1, 1], tf.int32))
    table = source.get(prefix + "embeddings.word_embeddings.weight")
    if architecture == "ElectraForMaskedLM":
      assign_masked_lm_head(objective.mlm_head, source, "generator_predictions.dense",
                            "generator_predictions.LayerNorm", "generator_lm_head.bias", "generator_lm_head", table)
    else:
      assign_masked_lm_head(objective.mlm_head, source, "cls.predictions.transform.dense",
                            "cls.predictions.transform.LayerNorm", "cls.predictions.bias", "cls.predictions.decoder",
                            table)
    converted = ["encoder", "mlm_head"]
    if nsp:
      objective.nsp_head(sequence)
      for variable, name, linear in (
          (objective.nsp_head.pooler.kernel, "bert.pooler.dense.weight", True),
          (objective.nsp_head.pooler.bias, "bert.pooler.dense.bias", False),
          (objective.nsp_head.classifier.kernel, "cls.seq_relationship.weight", True),
          (objective.nsp_head.classifier.bias, "cls.seq_relationship.bias", False)):
        _assign(variable, source.get(name), name, origin, linear)
      converted.append("nsp_head")
    return Converted(encoder_config, encoder, objective_name="bert",
                     objective_kwargs={"next_sentence_prediction": nsp}, model=objective, converted=converted,
                     unused_tensors=source.unused())

  # ElectraForPreTraining: the discriminator and its replaced-token detector.
  if generator is None:
    encoder = TransformerEncoder(encoder_config, name="discriminator")
    _build(encoder)
    assign_encoder(encoder, source, prefix)
    head = ReplacedTokenDetectionHead(encoder_config.hidden_size, activation=encoder_config.activation,
                                      initializer_range=encoder_config.initializer_range)
    head(tf.zeros([1, 1, encoder_config.hidden_size]))
    assign_rtd_head(head, source)
    return Converted(encoder_config, encoder, objective_name="electra", model=PartialElectra(encoder, head),
                     converted=["embeddings", "discriminator", "rtd_head"], absent=["generator", "mlm_head"],
                     unused_tensors=source.unused(), rtd_head=head)

  gen_config_json, gen_tensors, gen_origin = generator
  gen_architecture = (gen_config_json.get("architectures") or ["ElectraForMaskedLM"])[0]
  if gen_architecture != "ElectraForMaskedLM":
    raise ConversionError(f"the generator {gen_origin} is a {gen_architecture}, not an ElectraForMaskedLM")
  gen_config = encoder_config_from_huggingface(gen_config_json, os.path.join(gen_origin, "config.json"))
  fraction = generator_fraction(encoder_config, gen_config)
  gen_tensors, gen_prefix = _strip_prefix(gen_tensors, "electra.")
  gen_source = _Tensors(gen_tensors, gen_origin)
  objective = electra_lib.Electra(encoder_config=encoder_config, generator_fraction=fraction)
  _build(objective.discriminator)
  _build(objective.generator)
  assign_encoder(objective.discriminator, source, prefix)
  # One embedding table serves both networks in tpu_electra (and in google-research/electra, whose
  # released generators hold a copy of the discriminator's): the copies must agree.
  for name in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
               "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"):
    ours, theirs = source.get(prefix + name), gen_source.get(gen_prefix + name)
    if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
      raise ConversionError(f"the generator's {gen_prefix}{name} ({gen_origin}) differs from the discriminator's "
                            f"({origin}); tpu_electra's Electra shares one set of embeddings")
  assign_encoder(objective.generator, gen_source, gen_prefix, with_embeddings=False)
  objective.mlm_head(tf.zeros([1, 1, gen_config.hidden_size]), masked_positions=tf.zeros([1, 1], tf.int32))
  assign_masked_lm_head(objective.mlm_head, gen_source, "generator_predictions.dense",
                        "generator_predictions.LayerNorm", "generator_lm_head.bias", "generator_lm_head",
                        gen_source.get(gen_prefix + "embeddings.word_embeddings.weight"))
  objective.rtd_head(tf.zeros([1, 1, encoder_config.hidden_size]))
  assign_rtd_head(objective.rtd_head, source)
  unused = source.unused() + [f"generator:{n}" for n in gen_source.unused()]
  return Converted(encoder_config, objective.discriminator, objective_name="electra",
                   objective_kwargs={"generator_fraction": fraction}, model=objective,
                   converted=["embeddings", "discriminator", "rtd_head", "generator", "mlm_head"],
                   unused_tensors=unused, rtd_head=objective.rtd_head)


@dataclasses.dataclass
class Source:
  """What was read: where from, the config, the tensors (Hugging Face names) and the vocab."""
  kind: str
  path: str
  config: Dict[str, Any]
  tensors: Dict[str, np.ndarray]
  weights_file: str
  vocab: Vocab
  architecture: Optional[str] = None
  notes: List[str] = dataclasses.field(default_factory=list)

  def record(self) -> Dict[str, Any]:
    return {"kind": self.kind, "path": os.path.abspath(self.path), "architecture": self.architecture,
            "weights_file": os.path.basename(self.weights_file), "sha256": fileio.file_sha256(self.weights_file)}


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


# ----------------------------------------------------------------------------------------------
# google-research/electra TF1 checkpoints


# TF1 scope → Hugging Face prefix (what transformers' load_tf_weights_in_electra does by walking
# attributes). The discriminator is `electra/`, the generator `generator/` (its embeddings are the
# discriminator's `electra/embeddings`, tied).
_TF1_HEADS = (
    ("discriminator_predictions/dense_1/", "discriminator_predictions.dense_prediction."),
    ("discriminator_predictions/dense/", "discriminator_predictions.dense."),
    ("generator_predictions/dense/", "generator_predictions.dense."),
    ("generator_predictions/LayerNorm/", "generator_predictions.LayerNorm."),
)
_TF1_SKIP = re.compile(r"(^|/)(global_step|adam_m|adam_v|Adam(_1)?|temperature)$|/(adam_m|adam_v|Adam|Adam_1)$"
                       r"|^(beta1_power|beta2_power)$")


def tf1_to_huggingface_name(name: str) -> Tuple[Optional[str], bool]:
  """(Hugging Face name, whether the value is a Dense kernel to transpose) of a TF1 variable name,
  or (None, False) for variables no model holds (optimizer slots, global_step)."""
  if _TF1_SKIP.search(name):
    return None, False
  if name == "generator_predictions/output_bias":
    return "generator_lm_head.bias", False
  for theirs, ours in _TF1_HEADS:
    if name.startswith(theirs):
      rest = name[len(theirs):]
      return ours + {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}[rest], rest == "kernel"
  match = re.match(r"^(electra|generator)/(.*)$", name)
  if not match:
    return name.replace("/", "."), False  # Unknown: reported as unused by name.
  prefix = "electra." if match.group(1) == "electra" else "generator."
  parts = []
  for part in match.group(2).split("/"):
    layer = re.fullmatch(r"layer_(\d+)", part)
    parts.append(f"layer.{layer.group(1)}" if layer else part)
  leaf = parts[-1]
  is_kernel = leaf == "kernel"
  if leaf.endswith("_embeddings"):
    parts.append("weight")
  else:
    parts[-1] = {"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(leaf, leaf)
  return prefix + ".".join(parts), is_kernel


def _tf1_checkpoint_prefix(path: str) -> str:
  if os.path.isdir(path):
    prefix = tf.train.latest_checkpoint(path)
    if prefix is None:
      indexes = sorted(n[:-len(".index")] for n in os.listdir(path) if n.endswith(".index"))
      if len(indexes) != 1:
        raise ConversionError(f"{path} has no `checkpoint` file and {len(indexes)} *.index files: pass one checkpoint "
                              "prefix")
      prefix = os.path.join(path, indexes[0])
    return prefix
  if os.path.exists(path + ".index"):
    return path
  raise ConversionError(f"electra source {path!r} is neither a directory with a checkpoint nor a checkpoint prefix")


def _tf1_config(shapes: Dict[str, List[int]], directory: str, scope: str,
                explicit: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """A transformers-style config for the `scope` network, from explicit values and the shapes."""
  layers = sorted({int(m.group(1)) for n in shapes for m in [re.match(rf"^{scope}/encoder/layer_(\d+)/", n)] if m})
  if not layers:
    raise ConversionError(f"the checkpoint in {directory} has no {scope}/encoder/layer_0 variables")
  hidden = shapes[f"{scope}/encoder/layer_0/attention/self/query/kernel"][1]
  vocab, embedding = shapes["electra/embeddings/word_embeddings"]
  config = {
      "model_type": "electra", "vocab_size": vocab, "embedding_size": embedding, "hidden_size": hidden,
      "num_hidden_layers": len(layers), "num_attention_heads": max(1, hidden // 64),
      "intermediate_size": shapes[f"{scope}/encoder/layer_0/intermediate/dense/kernel"][1],
      "max_position_embeddings": shapes["electra/embeddings/position_embeddings"][0],
      "type_vocab_size": shapes["electra/embeddings/token_type_embeddings"][0], "hidden_act": "gelu",
  }
  if explicit:
    config.update({k: v for k, v in explicit.items() if k in ("num_attention_heads", "hidden_act",
                                                              "hidden_dropout_prob", "attention_probs_dropout_prob",
                                                              "initializer_range")})
  return config


def read_electra_tf1(path: str) -> Tuple[Source, Optional[Tuple[Dict[str, Any], Dict[str, np.ndarray], str]]]:
  """Reads a google-research/electra checkpoint: (discriminator Source, generator or None)."""
  prefix = _tf1_checkpoint_prefix(path)
  directory = os.path.dirname(prefix) or "."
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise ConversionError(f"cannot read the TF checkpoint {prefix}: {cli_utils.first_line(e)}") from None
  shapes = reader.get_variable_to_shape_map()
  if "electra/embeddings/word_embeddings" not in shapes:
    if any(n.startswith("generator/embeddings/") for n in shapes):
      raise ConversionError(f"{prefix} has untied generator embeddings (generator/embeddings/...); tpu_electra's "
                            "Electra shares one set")
    raise ConversionError(f"{prefix} has no electra/embeddings/word_embeddings: not a google-research/electra "
                          "checkpoint")
  explicit = None
  for name in ("bert_config.json", "config.json"):
    if os.path.exists(os.path.join(directory, name)):
      explicit = fileio.read_json_object(os.path.join(directory, name), ConversionError, "fix or remove it")
      break
  disc: Dict[str, np.ndarray] = {}
  gen: Dict[str, np.ndarray] = {}
  for name in sorted(shapes):
    hf_name, is_kernel = tf1_to_huggingface_name(name)
    if hf_name is None:
      continue
    value = reader.get_tensor(name)
    if is_kernel:
      value = np.ascontiguousarray(value.T)
    if hf_name.startswith("generator."):
      gen["electra." + hf_name[len("generator."):]] = value
    elif hf_name.startswith(("generator_predictions.", "generator_lm_head.")):
      gen[hf_name] = value
    else:
      disc[hf_name] = value
  vocab_path = os.path.join(directory, VOCAB_NAME)
  if not os.path.exists(vocab_path):
    raise ConversionError(f"{directory} has no vocab.txt beside the checkpoint")
  tokens = _read_lines(vocab_path)
  _check_vocab(tokens, vocab_path)
  lower = explicit.get("do_lower_case", True) if explicit else True
  vocab = Vocab(tokens=tokens, do_lower_case=bool(lower), origin=vocab_path)
  config = _tf1_config(shapes, directory, "electra", explicit)
  has_rtd = "discriminator_predictions/dense/kernel" in shapes
  config["architectures"] = ["ElectraForPreTraining" if has_rtd else "ElectraModel"]
  notes = []
  if not explicit or "num_attention_heads" not in explicit:
    notes.append("attention heads inferred as hidden_size // 64 (ELECTRA's head size); put a bert_config.json "
                 "beside the checkpoint to say otherwise")
  source = Source(kind="electra", path=path, config=config, tensors=disc, weights_file=prefix + ".index",
                  vocab=vocab, architecture=config["architectures"][0], notes=notes)
  generator = None
  if any(n.startswith("generator/encoder/") for n in shapes) and not has_rtd:
    notes.append("generator not converted: the checkpoint has no discriminator_predictions, so there is no "
                 "Electra objective to put it in")
  if any(n.startswith("generator/encoder/") for n in shapes) and has_rtd:
    gen_config = _tf1_config(shapes, directory, "generator", None)
    if explicit and "hidden_act" in explicit:
      gen_config["hidden_act"] = explicit["hidden_act"]
    gen_config["architectures"] = ["ElectraForMaskedLM"]
    for name in ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                 "LayerNorm.weight", "LayerNorm.bias"):
      gen["electra.embeddings." + name] = disc["electra.embeddings." + name]
    generator = (gen_config, gen, prefix)
  return source, generator


# ----------------------------------------------------------------------------------------------
# tf-models-official checkpoints


def layer_state_dict(layer, prefix: str) -> Dict[str, np.ndarray]:
  """One built TransformerEncoderBlock (ours or tf-models-official's: the same class) as Hugging Face
  tensors named `prefix` + LAYER_TENSORS' names: the forward direction of `assign_encoder`."""
  variables = _relative_variables(layer)
  out = {}
  for ours, theirs in LAYER_TENSORS:
    value = variables[ours].numpy()
    if ours.endswith("kernel"):
      # [H, heads, d] (query/key/value) and [heads, d, H] (attention output) as [in, out], transposed.
      value = value.reshape(-1, value.shape[-1]) if "attention_output" in ours else value.reshape(value.shape[0], -1)
      value = value.T
    else:
      value = value.reshape(-1)
    out[prefix + theirs] = np.ascontiguousarray(value)
  return out


def _official_mlm_head_tensors(masked_lm, transform_prefix: str, bias_name: str) -> Dict[str, np.ndarray]:
  """tf-models-official's MaskedLM layer (dense, layer norm, output bias) under Hugging Face names."""
  return {f"{transform_prefix}dense.weight": masked_lm.dense.kernel.numpy().T,
          f"{transform_prefix}dense.bias": masked_lm.dense.bias.numpy(),
          f"{transform_prefix}LayerNorm.weight": masked_lm.layer_norm.gamma.numpy(),
          f"{transform_prefix}LayerNorm.bias": masked_lm.layer_norm.beta.numpy(),
          bias_name: masked_lm.bias.numpy()}


def official_encoder_tensors(network, prefix: str = "electra.") -> Dict[str, np.ndarray]:
  """A tf-models-official BertEncoder / BertEncoderV2 (built) as Hugging Face ELECTRA tensors."""
  # pylint: disable=protected-access
  position, token_type, norm = (network._position_embedding_layer, network._type_embedding_layer,
                                network._embedding_norm_layer)
  layers = network._transformer_layers
  # pylint: enable=protected-access
  out = {
      prefix + "embeddings.word_embeddings.weight": network.get_embedding_table().numpy(),
      prefix + "embeddings.position_embeddings.weight": position.weights[0].numpy(),
      prefix + "embeddings.token_type_embeddings.weight": token_type.embeddings.numpy(),
      prefix + "embeddings.LayerNorm.weight": norm.gamma.numpy(),
      prefix + "embeddings.LayerNorm.bias": norm.beta.numpy(),
  }
  projection = getattr(network, "_embedding_projection", None)
  if projection is not None:
    out[prefix + "embeddings_project.weight"] = np.ascontiguousarray(projection.kernel.numpy().T)
    out[prefix + "embeddings_project.bias"] = projection.bias.numpy()
  for index, layer in enumerate(layers):
    out.update(layer_state_dict(layer, f"{prefix}encoder.layer.{index}."))
  return out


def _official_activation(name: str) -> str:
  """tf-models-official's activation name (tf_utils.get_activation) as a transformers hidden_act."""
  name = str(name).lower()
  if name == "gelu":
    return "gelu_new"  # official.modeling.activations.gelu is the tanh approximation.
  if name in ("relu", "tanh", "swish"):
    return name
  raise ConversionError(f"tf-models-official activation {name!r} has no tpu_electra equivalent")


def _official_config(bert: Dict[str, Any], architecture: str) -> Dict[str, Any]:
  """A transformers-style config.json of a tf-models-official BertEncoderConfig (as a dict)."""
  if bert.get("norm_first"):
    raise ConversionError("the tf-models-official encoder is pre-layer-norm (norm_first: true); tpu_electra's "
                          "is post-layer-norm")
  return {
      "model_type": "electra", "architectures": [architecture], "vocab_size": bert["vocab_size"],
      "embedding_size": bert.get("embedding_size") or bert["hidden_size"], "hidden_size": bert["hidden_size"],
      "num_hidden_layers": bert["num_layers"], "num_attention_heads": bert["num_attention_heads"],
      "intermediate_size": bert["intermediate_size"],
      "hidden_act": _official_activation(bert.get("hidden_activation", "gelu")),
      "hidden_dropout_prob": bert.get("dropout_rate", 0.1),
      "attention_probs_dropout_prob": bert.get("attention_dropout_rate", 0.1),
      "max_position_embeddings": bert.get("max_position_embeddings", 512),
      "type_vocab_size": bert.get("type_vocab_size", 2), "initializer_range": bert.get("initializer_range", 0.02),
  }


# tf-models-official's BertEncoderConfig defaults (official.nlp.configs.encoders, which is not
# imported: it pulls in tensorflow_hub).
_OFFICIAL_BERT_DEFAULTS = {
    "vocab_size": 30522, "hidden_size": 768, "num_layers": 12, "num_attention_heads": 12,
    "hidden_activation": "gelu", "intermediate_size": 3072, "dropout_rate": 0.1, "attention_dropout_rate": 0.1,
    "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02, "embedding_size": None,
    "norm_first": False,
}


def _bert_encoder_section(section: Dict[str, Any], what: str, origin: str) -> Tuple[str, Dict[str, Any]]:
  """(encoder type, its BertEncoderConfig values) of a params.yaml encoder section."""
  kind = section.get("type", "bert")
  if kind not in ("bert", "bert_v2") or not isinstance(section.get(kind), dict):
    raise ConversionError(f"{origin}: the {what} is a {kind!r} encoder; tpu_electra converts tf-models-official "
                          "'bert' and 'bert_v2' encoders")
  bert = dict(_OFFICIAL_BERT_DEFAULTS)
  bert.update(section[kind])
  return kind, bert


def _official_bert_encoder(kind: str, bert: Dict[str, Any], embedding_layer=None):
  """The network official.nlp.configs.encoders.build_encoder builds for a 'bert'/'bert_v2' config."""
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  cls = networks.BertEncoderV2 if kind == "bert_v2" else networks.BertEncoder
  return cls(
      vocab_size=bert["vocab_size"], hidden_size=bert["hidden_size"], num_layers=bert["num_layers"],
      num_attention_heads=bert["num_attention_heads"], intermediate_size=bert["intermediate_size"],
      activation=tf_utils.get_activation(bert["hidden_activation"]), dropout_rate=bert["dropout_rate"],
      attention_dropout_rate=bert["attention_dropout_rate"], max_sequence_length=bert["max_position_embeddings"],
      type_vocab_size=bert["type_vocab_size"],
      initializer=tf.keras.initializers.TruncatedNormal(stddev=bert["initializer_range"]),
      embedding_width=bert["embedding_size"], embedding_layer=embedding_layer, dict_outputs=True,
      norm_first=bert["norm_first"])


def _restore_official(prefix: str, what: str, **items) -> None:
  try:
    # `read`, not `restore`: a checkpoint written with `write` has no save counter to match.
    status = tf.train.Checkpoint(**items).read(prefix).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ConversionError(f"checkpoint {prefix} does not fit the {what} described beside it: "
                          f"{cli_utils.first_line(e)}") from None


def _find_beside(prefix: str, names: Sequence[str]) -> Optional[str]:
  directory = os.path.dirname(prefix) or "."
  for folder in (directory, os.path.dirname(os.path.abspath(directory))):
    for name in names:
      if os.path.exists(os.path.join(folder, name)):
        return os.path.join(folder, name)
  return None


def read_tf_models(path: str) -> Tuple[Source, Optional[Tuple[Dict[str, Any], Dict[str, np.ndarray], str]]]:
  """Reads a tf-models-official checkpoint: an ElectraPretrainer or BertPretrainerV2 run (its
  `params.yaml` beside the checkpoint or one level up), or a bare BertEncoder with `bert_config.json`."""
  prefix = _tf1_checkpoint_prefix(path)
  params_path = _find_beside(prefix, ("params.yaml",))
  vocab_path = _find_beside(prefix, (VOCAB_NAME,))
  if vocab_path is None:
    raise ConversionError(f"no vocab.txt beside {prefix} (or one directory up)")
  tokens = _read_lines(vocab_path)
  _check_vocab(tokens, vocab_path)
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  notes: List[str] = []
  dummy = {"input_word_ids": tf.zeros([1, 2], tf.int32), "input_mask": tf.ones([1, 2], tf.int32),
           "input_type_ids": tf.zeros([1, 2], tf.int32)}
  generator = None
  lower = True
  if params_path is not None:
    import yaml  # pylint: disable=g-import-not-at-top
    with open(params_path, encoding="utf-8") as f:
      params = yaml.safe_load(f) or {}
    model = (params.get("task") or {}).get("model") or {}
    lower = bool(((params.get("task") or {}).get("train_data") or {}).get("do_lower_case", True))
    if "generator_encoder" in model:
      from official.nlp.modeling import models as official_models  # pylint: disable=g-import-not-at-top
      disc_kind, disc_bert = _bert_encoder_section(model["discriminator_encoder"], "discriminator", params_path)
      gen_kind, gen_bert = _bert_encoder_section(model["generator_encoder"], "generator", params_path)
      # As official.nlp.tasks.electra_task._build_pretrainer builds it.
      disc_net = _official_bert_encoder(disc_kind, disc_bert)
      gen_net = _official_bert_encoder(
          gen_kind, gen_bert, disc_net.get_embedding_layer() if model.get("tie_embeddings", True) else None)
      pretrainer = official_models.ElectraPretrainer(
          generator_network=gen_net, discriminator_network=disc_net, vocab_size=gen_bert["vocab_size"],
          num_classes=model.get("num_classes", 2), num_token_predictions=model.get("num_masked_tokens", 76),
          mlm_activation=tf_utils.get_activation(gen_bert["hidden_activation"]))
      disc_out = disc_net([dummy["input_word_ids"], dummy["input_mask"], dummy["input_type_ids"]])["sequence_output"]
      gen_out = gen_net([dummy["input_word_ids"], dummy["input_mask"], dummy["input_type_ids"]])["sequence_output"]
      pretrainer.masked_lm(gen_out, tf.zeros([1, 1], tf.int32))
      pretrainer.discriminator_head(pretrainer.discriminator_projection(disc_out))
      _restore_official(prefix, "ElectraPretrainer", model=pretrainer)
      if _official_activation(gen_bert["hidden_activation"]) != _official_activation(disc_bert["hidden_activation"]):
        raise ConversionError(f"{params_path}: the generator's hidden_activation (its heads' too) differs from the "
                              "discriminator's; tpu_electra's heads use the discriminator's")
      tensors = official_encoder_tensors(disc_net)
      tensors.update({
          "discriminator_predictions.dense.weight": pretrainer.discriminator_projection.kernel.numpy().T,
          "discriminator_predictions.dense.bias": pretrainer.discriminator_projection.bias.numpy(),
          "discriminator_predictions.dense_prediction.weight": pretrainer.discriminator_head.kernel.numpy().T,
          "discriminator_predictions.dense_prediction.bias": pretrainer.discriminator_head.bias.numpy()})
      config_json = _official_config(disc_bert, "ElectraForPreTraining")
      gen_tensors = official_encoder_tensors(gen_net)
      same = all(np.array_equal(tensors[n], gen_tensors[n]) for n in tensors if n.startswith("electra.embeddings."))
      if same:
        gen_tensors.update(_official_mlm_head_tensors(pretrainer.masked_lm, "generator_predictions.",
                                                      "generator_lm_head.bias"))
        generator = (_official_config(gen_bert, "ElectraForMaskedLM"), gen_tensors, prefix)
      else:
        # tf-models ties only the word embeddings; tpu_electra's Electra shares all of them.
        notes.append("generator not converted: its position/type embeddings or embedding layer norm differ from "
                     "the discriminator's (tf-models-official ties only the word embeddings; tpu_electra's Electra "
                     "shares all); continued pretraining builds a fresh generator")
      architecture = "ElectraPretrainer"
    elif "encoder" in model:
      from official.nlp.modeling import models as official_models  # pylint: disable=g-import-not-at-top
      kind, bert = _bert_encoder_section(model["encoder"], "encoder", params_path)
      network = _official_bert_encoder(kind, bert)
      pretrainer = official_models.BertPretrainerV2(
          encoder_network=network, mlm_activation=tf_utils.get_activation(model.get("mlm_activation", "gelu")))
      out = network([dummy["input_word_ids"], dummy["input_mask"], dummy["input_type_ids"]])["sequence_output"]
      pretrainer.masked_lm(out, tf.zeros([1, 1], tf.int32))
      _restore_official(prefix, "BertPretrainerV2", model=pretrainer)
      if _official_activation(model.get("mlm_activation", "gelu")) != _official_activation(
          bert.get("hidden_activation", "gelu")):
        raise ConversionError(f"{params_path}: mlm_activation differs from the encoder's hidden_activation; "
                              "tpu_electra's MLM head uses the encoder's")
      tensors = official_encoder_tensors(network, "bert.")
      tensors.update(_official_mlm_head_tensors(pretrainer.masked_lm, "cls.predictions.transform.",
                                                "cls.predictions.bias"))
      config_json = dict(_official_config(bert, "BertForMaskedLM"), model_type="bert")
      architecture = "BertPretrainerV2"
    else:
      raise ConversionError(f"{params_path} describes neither an ELECTRA pretrainer (generator_encoder) nor a BERT "
                            "one (encoder)")
  else:
    config_path = _find_beside(prefix, ("bert_config.json",))
    if config_path is None:
      raise ConversionError(f"no params.yaml or bert_config.json beside {prefix}: cannot tell the encoder's sizes")
    bert_config = fileio.read_json_object(config_path, ConversionError, "fix or remove it")
    bert = {"vocab_size": bert_config["vocab_size"], "hidden_size": bert_config["hidden_size"],
            "num_layers": bert_config["num_hidden_layers"], "num_attention_heads": bert_config["num_attention_heads"],
            "intermediate_size": bert_config["intermediate_size"],
            "hidden_activation": bert_config.get("hidden_act", "gelu"),
            "max_position_embeddings": bert_config.get("max_position_embeddings", 512),
            "type_vocab_size": bert_config.get("type_vocab_size", 2),
            "embedding_size": bert_config.get("embedding_size"),
            "initializer_range": bert_config.get("initializer_range", 0.02)}
    network = networks.BertEncoder(
        vocab_size=bert["vocab_size"], hidden_size=bert["hidden_size"], num_layers=bert["num_layers"],
        num_attention_heads=bert["num_attention_heads"], inner_dim=bert["intermediate_size"],
        inner_activation=tf_utils.get_activation(bert["hidden_activation"]),
        max_sequence_length=bert["max_position_embeddings"], type_vocab_size=bert["type_vocab_size"],
        embedding_width=bert["embedding_size"])
    network([dummy["input_word_ids"], dummy["input_mask"], dummy["input_type_ids"]])
    keys = [name for name, _ in tf.train.list_variables(prefix)]
    root = "encoder" if any(k.startswith("encoder/") for k in keys) else "model"
    _restore_official(prefix, "BertEncoder", **{root: network})
    tensors = official_encoder_tensors(network, "bert.")
    config_json = dict(_official_config(bert, "BertModel"), model_type="bert")
    architecture = "BertEncoder"
    lower = bool(bert_config.get("do_lower_case", True))
  source = Source(kind="tf_models", path=path, config=config_json, tensors=tensors, weights_file=prefix + ".index",
                  vocab=Vocab(tokens=tokens, do_lower_case=lower, origin=vocab_path), architecture=architecture,
                  notes=notes)
  return source, generator


# ----------------------------------------------------------------------------------------------
# Entry points


def parse_source(text: str) -> Tuple[str, str]:
  kind, sep, path = (text or "").partition(":")
  if not sep or not path:
    raise ConversionError(f"--source={text!r}: expected KIND:PATH with KIND one of {list(KINDS)}")
  if kind not in KINDS:
    raise ConversionError(f"unknown source kind {kind!r}; expected one of {list(KINDS)}")
  return kind, os.path.expanduser(path)


def convert_source(source: str, generator: Optional[str] = None) -> Tuple[Converted, Source]:
  """Reads and converts KIND:PATH (and an optional huggingface:PATH generator)."""
  kind, path = parse_source(source)
  if kind == "huggingface":
    read = read_huggingface(path)
    gen = None
    if generator:
      gen_kind, gen_path = parse_source(generator)
      if gen_kind != "huggingface":
        raise ConversionError(f"--generator must be huggingface:PATH, got {gen_kind}")
      gen_read = read_huggingface(gen_path)
      gen = (gen_read.config, gen_read.tensors, gen_path)
    converted = convert_tensors(read.config, read.tensors, path, read.architecture, gen)
    if gen is not None:
      read.architecture = f"{read.architecture}+{gen_read.architecture}"
    return converted, read
  if generator:
    raise ConversionError(f"--generator is for huggingface sources; a {kind} checkpoint holds its generator")
  if kind == "electra":
    read, gen = read_electra_tf1(path)
    converted = convert_tensors(read.config, read.tensors, path, read.architecture, gen)
    if gen is not None:
      read.architecture = "ElectraForPreTraining+ElectraForMaskedLM"
    return converted, read
  read, gen = read_tf_models(path)
  converted = convert_tensors(read.config, read.tensors, path, read.config["architectures"][0], gen)
  return converted, read


def _objective_record(converted: Converted) -> Dict[str, Any]:
  """run.json's objective entry, also for an objective the source has only part of: its registry name,
  class, resolved arguments."""
  from tpu_electra import objectives  # pylint: disable=g-import-not-at-top
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top
  if isinstance(converted.model, objectives.PretrainingObjective):
    return runs.objective_record(type(converted.model), converted.model.arguments)
  cls = objectives.get(converted.objective_name)
  return runs.objective_record(cls, cls.resolve_arguments(converted.objective_kwargs))


def run_record(converted: Converted, source: Source, vocab_size: int) -> Dict[str, Any]:
  """run.json of a converted run (tpu_electra.runs.converted_record): a pretraining run that carries its
  vocab, plus `source` (where it came from) and `conversion` (what the checkpoint holds)."""
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top
  items = ["encoder"] + (["model"] if converted.model is not None else [])
  return runs.converted_record(
      objective=_objective_record(converted), encoder_config=converted.encoder_config,
      vocab={"vocab_file": VOCAB_NAME, "vocab_type": source.vocab.vocab_type,
             "do_lower_case": source.vocab.do_lower_case, "vocab_size": vocab_size},
      source=source.record(),
      conversion={
          "checkpoint_items": items,
          "converted": list(converted.converted),
          # Parts of the recorded objective the source does not have (initialized afresh when it is built).
          "absent": list(converted.absent),
          "unused_tensors": list(converted.unused_tensors),
          "vocab_origin": os.path.basename(source.vocab.origin),
          "notes": list(source.notes),
      })


def write_run_dir(converted: Converted, source: Source, output_dir: str, overwrite: bool = False,
                  tmp_dir: Optional[str] = None) -> str:
  """Writes the converted model as a run directory (local or gs://): into a temporary sibling
  (`tmp_dir`, created here when not given) renamed into place at the end, so a failed conversion
  never leaves a half-written run behind."""
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top

  fileio.check_new_output_dir(output_dir, overwrite)
  tokens = list(source.vocab.tokens)
  rows = converted.encoder_config.vocab_size
  if len(tokens) > rows:
    raise ConversionError(f"vocab {source.vocab.origin} has {len(tokens)} tokens but the word embeddings have "
                          f"{rows} rows")
  if len(tokens) < rows:
    # Embedding rows past the vocab (padded to a multiple of 8 or 128) get placeholder tokens, so the
    # vocab's size is the table's, as a tokenizer loaded with the run requires.
    tokens += [f"[unused_row_{i}]" for i in range(len(tokens), rows)]
    source.notes.append(f"vocab padded from {len(source.vocab.tokens)} to {rows} tokens (the embedding rows) with "
                        "[unused_row_N] placeholders")
  output_dir = output_dir.rstrip("/")
  tmp_dir = tmp_dir or fileio.temporary_sibling(output_dir)
  try:
    fileio.make_output_dir(tmp_dir, "--output_dir")
    items = {"encoder": converted.encoder}
    if converted.model is not None:
      items["model"] = converted.model
    checkpoint = tf.train.Checkpoint(**items)
    tf.train.CheckpointManager(checkpoint, tmp_dir, max_to_keep=1).save(checkpoint_number=0)
    fileio.write_atomic(fileio.join(tmp_dir, VOCAB_NAME), "".join(token + "\n" for token in tokens))
    runs.write_record(tmp_dir, run_record(converted, source, rows))
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


def convert(source: str, output_dir: str, generator: Optional[str] = None, overwrite: bool = False) -> str:
  """Converts KIND:PATH into the run directory `output_dir`; returns its path."""
  fileio.check_new_output_dir(output_dir, overwrite)
  # The output's temporary sibling is created first: an unwritable --output_dir fails before any work.
  tmp_dir = fileio.temporary_sibling(output_dir)
  try:
    fileio.make_output_dir(tmp_dir, "--output_dir")
    converted, read = convert_source(source, generator)
    return write_run_dir(converted, read, output_dir, overwrite=overwrite, tmp_dir=tmp_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the conversion the parsed flags ask for; returns the exit status (errors: one line)."""
  check_flags(flag_values)
  path = convert(flag_values.source, flag_values.output_dir, generator=flag_values.generator,
                 overwrite=flag_values.overwrite)
  print(f"wrote converted run directory {path}")
  return 0


cli = cli_utils.command_line(define_flags, run)

