"""google-research/electra TF1 checkpoints: variable names renamed to Hugging Face ones as transformers'
own loader does, sizes from a bert_config.json beside the checkpoint or from the tensors' shapes."""
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.convert.common import VOCAB_NAME, ConversionError, Source, Vocab, check_vocab, read_lines


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


def tf1_checkpoint_prefix(path: str) -> str:
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
  prefix = tf1_checkpoint_prefix(path)
  directory = os.path.dirname(prefix) or "."
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise ConversionError(f"cannot read the TF checkpoint {prefix}: {errors.first_line(e)}") from None
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
  tokens = read_lines(vocab_path)
  check_vocab(tokens, vocab_path)
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

