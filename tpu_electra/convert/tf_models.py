"""tf-models-official checkpoints: the network is rebuilt with tf-models-official's own classes, restored
from its object graph, then read out under Hugging Face names."""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.convert.common import VOCAB_NAME, ConversionError, Source, Vocab, check_vocab, read_lines
from tpu_electra.convert.electra_tf1 import tf1_checkpoint_prefix
from tpu_electra.convert.mapping import LAYER_TENSORS, relative_variables

def layer_state_dict(layer, prefix: str) -> Dict[str, np.ndarray]:
  """One built TransformerEncoderBlock (ours or tf-models-official's: the same class) as Hugging Face
  tensors named `prefix` + LAYER_TENSORS' names: the forward direction of `assign_encoder`."""
  variables = relative_variables(layer)
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


def official_mlm_head_tensors(masked_lm, transform_prefix: str, bias_name: str) -> Dict[str, np.ndarray]:
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
                          f"{errors.first_line(e)}") from None


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
  prefix = tf1_checkpoint_prefix(path)
  params_path = _find_beside(prefix, ("params.yaml",))
  vocab_path = _find_beside(prefix, (VOCAB_NAME,))
  if vocab_path is None:
    raise ConversionError(f"no vocab.txt beside {prefix} (or one directory up)")
  tokens = read_lines(vocab_path)
  check_vocab(tokens, vocab_path)
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
      tensors, config_json, generator = _read_electra_pretrainer(model, params_path, prefix, dummy, notes)
      architecture = "ElectraPretrainer"
    elif "encoder" in model:
      tensors, config_json = _read_bert_pretrainer(model, params_path, prefix, dummy)
      architecture = "BertPretrainerV2"
    else:
      raise ConversionError(f"{params_path} describes neither an ELECTRA pretrainer (generator_encoder) nor a BERT "
                            "one (encoder)")
  else:
    tensors, config_json, lower = _read_bert_encoder(prefix, dummy)
    architecture = "BertEncoder"
  source = Source(kind="tf_models", path=path, config=config_json, tensors=tensors, weights_file=prefix + ".index",
                  vocab=Vocab(tokens=tokens, do_lower_case=lower, origin=vocab_path), architecture=architecture,
                  notes=notes)
  return source, generator


def _read_electra_pretrainer(model: Dict[str, Any], params_path: str, prefix: str, dummy: Dict[str, tf.Tensor],
                             notes: List[str]) -> Tuple[Dict[str, np.ndarray], Dict[str, Any], Optional[Tuple]]:
  """(discriminator tensors, its config.json, the generator or None) of an ElectraPretrainer run."""
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import models as official_models  # pylint: disable=g-import-not-at-top
  generator = None
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
    gen_tensors.update(official_mlm_head_tensors(pretrainer.masked_lm, "generator_predictions.",
                                                 "generator_lm_head.bias"))
    generator = (_official_config(gen_bert, "ElectraForMaskedLM"), gen_tensors, prefix)
  else:
    # tf-models ties only the word embeddings; tpu_electra's Electra shares all of them.
    notes.append("generator not converted: its position/type embeddings or embedding layer norm differ from "
                 "the discriminator's (tf-models-official ties only the word embeddings; tpu_electra's Electra "
                 "shares all); continued pretraining builds a fresh generator")
  return tensors, config_json, generator


def _read_bert_pretrainer(model: Dict[str, Any], params_path: str, prefix: str,
                          dummy: Dict[str, tf.Tensor]) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
  """(tensors, config.json) of a BertPretrainerV2 run: the encoder and its MLM head."""
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
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
  tensors.update(official_mlm_head_tensors(pretrainer.masked_lm, "cls.predictions.transform.",
                                           "cls.predictions.bias"))
  config_json = dict(_official_config(bert, "BertForMaskedLM"), model_type="bert")
  return tensors, config_json


def _read_bert_encoder(prefix: str,
                       dummy: Dict[str, tf.Tensor]) -> Tuple[Dict[str, np.ndarray], Dict[str, Any], bool]:
  """(tensors, config.json, do_lower_case) of a bare BertEncoder with its bert_config.json."""
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
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
  lower = bool(bert_config.get("do_lower_case", True))
  return tensors, config_json, lower
