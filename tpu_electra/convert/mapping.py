"""Hugging Face BERT/ELECTRA names → tpu_electra's models: every source reader's tensors are renamed to
transformers' names first, then assigned here through one table (`LAYER_TENSORS`)."""
import dataclasses
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra import errors
from tpu_electra.convert.common import ConversionError
from tpu_electra.modeling import EncoderConfig, ReplacedTokenDetectionHead, TransformerEncoder

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


def _layers_of(encoder: TransformerEncoder) -> List[tf.keras.layers.Layer]:
  return list(encoder.transformer_layers)


def relative_variables(layer) -> Dict[str, tf.Variable]:
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
    variables = relative_variables(layer)
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
    raise ConversionError(f"{origin}: {errors.first_line(e)}") from None


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
  objective: str = "bert"
  objective_arguments: Dict[str, Any] = dataclasses.field(default_factory=dict)
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


def _architecture_of(config: Dict[str, Any], tensors: Dict[str, np.ndarray],
                     architecture: Optional[str]) -> Optional[str]:
  """`architecture`, else config.json's first `architectures` entry, else the one the heads present make."""
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
  return architecture


def convert_tensors(config: Dict[str, Any], tensors: Dict[str, np.ndarray], origin: str,
                    architecture: Optional[str] = None,
                    generator: Optional[Tuple[Dict[str, Any], Dict[str, np.ndarray], str]] = None) -> Converted:
  """Builds tpu_electra's model for a transformers config.json + state dict (Hugging Face names).

  `generator`: (config, tensors, origin) of an ElectraForMaskedLM to pair with an
  ElectraForPreTraining discriminator into an Electra objective.
  """
  architecture = _architecture_of(config, tensors, architecture)
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
    return _convert_encoder(architecture, encoder_config, source, prefix)
  if architecture in ("BertForMaskedLM", "BertForPreTraining", "ElectraForMaskedLM"):
    return _convert_masked_lm(architecture, encoder_config, source, prefix)
  # ElectraForPreTraining: the discriminator and its replaced-token detector.
  if generator is None:
    return _convert_discriminator(encoder_config, source, prefix)
  return _convert_electra(encoder_config, source, prefix, generator)


def _convert_encoder(architecture: str, encoder_config: EncoderConfig, source: _Tensors, prefix: str) -> Converted:
  """BertModel, ElectraModel: the encoder alone."""
  encoder = TransformerEncoder(encoder_config, name="encoder")
  _build(encoder)
  assign_encoder(encoder, source, prefix)
  unused = source.unused()
  bert = architecture == "BertModel"
  return Converted(encoder_config, encoder, objective="bert" if bert else "electra", converted=["encoder"],
                   absent=["mlm_head"] if bert else ["generator", "mlm_head", "rtd_head"], unused_tensors=unused)


def _convert_masked_lm(architecture: str, encoder_config: EncoderConfig, source: _Tensors, prefix: str) -> Converted:
  """BertForMaskedLM, BertForPreTraining, ElectraForMaskedLM: the bert objective (with NSP for BertForPreTraining)."""
  from tpu_electra.objectives import bert as bert_lib  # pylint: disable=g-import-not-at-top
  origin = source.origin
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
  return Converted(encoder_config, encoder, objective="bert",
                   objective_arguments={"next_sentence_prediction": nsp}, model=objective, converted=converted,
                   unused_tensors=source.unused())


def _convert_discriminator(encoder_config: EncoderConfig, source: _Tensors, prefix: str) -> Converted:
  """ElectraForPreTraining alone: what the Electra objective has of it (PartialElectra)."""
  encoder = TransformerEncoder(encoder_config, name="discriminator")
  _build(encoder)
  assign_encoder(encoder, source, prefix)
  head = ReplacedTokenDetectionHead(encoder_config.hidden_size, activation=encoder_config.activation,
                                    initializer_range=encoder_config.initializer_range)
  head(tf.zeros([1, 1, encoder_config.hidden_size]))
  assign_rtd_head(head, source)
  return Converted(encoder_config, encoder, objective="electra", model=PartialElectra(encoder, head),
                   converted=["embeddings", "discriminator", "rtd_head"], absent=["generator", "mlm_head"],
                   unused_tensors=source.unused(), rtd_head=head)


def _convert_electra(encoder_config: EncoderConfig, source: _Tensors, prefix: str,
                     generator: Tuple[Dict[str, Any], Dict[str, np.ndarray], str]) -> Converted:
  """ElectraForPreTraining + its ElectraForMaskedLM generator: the whole Electra objective."""
  from tpu_electra.objectives import electra as electra_lib  # pylint: disable=g-import-not-at-top
  origin = source.origin
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
  return Converted(encoder_config, objective.discriminator, objective="electra",
                   objective_arguments={"generator_fraction": fraction}, model=objective,
                   converted=["embeddings", "discriminator", "rtd_head", "generator", "mlm_head"],
                   unused_tensors=unused, rtd_head=objective.rtd_head)


