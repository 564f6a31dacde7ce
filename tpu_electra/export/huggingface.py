"""The Hugging Face export: config.json and model.safetensors in the layout of a transformers class."""
import json
import os
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra.convert import mapping as convert_mapping
from tpu_electra.convert import tf_models as convert_tf_models
from tpu_electra.data import tokenization
from tpu_electra.export.common import ExportError, write_bytes, write_text
from tpu_electra.finetuning import finetuned
from tpu_electra.finetuning import models as task_models
from tpu_electra.objectives import MaskedLanguageModel
from tpu_electra.objectives import ReplacedTokenDetector

SAFETENSORS_NAME = "model.safetensors"

def _linear(kernel: np.ndarray) -> np.ndarray:
  """A Keras Dense kernel [in, out] as a torch Linear weight [out, in]."""
  return np.ascontiguousarray(kernel.T)


def encoder_state_dict(encoder, prefix: str = "electra.") -> Dict[str, np.ndarray]:
  """Hugging Face ELECTRA tensor names → float32 arrays for a built TransformerEncoder."""
  embeddings = encoder.embeddings
  state = {
      f"{prefix}embeddings.word_embeddings.weight": embeddings.word_embeddings.embeddings.numpy(),
      f"{prefix}embeddings.position_embeddings.weight": embeddings.position_embeddings.weights[0].numpy(),
      f"{prefix}embeddings.token_type_embeddings.weight": embeddings.type_embeddings.embeddings.numpy(),
      f"{prefix}embeddings.LayerNorm.weight": embeddings.layer_norm.gamma.numpy(),
      f"{prefix}embeddings.LayerNorm.bias": embeddings.layer_norm.beta.numpy(),
  }
  if encoder.embedding_projection is not None:
    state[f"{prefix}embeddings_project.weight"] = _linear(encoder.embedding_projection.kernel.numpy())
    state[f"{prefix}embeddings_project.bias"] = encoder.embedding_projection.bias.numpy()
  for index, layer in enumerate(encoder.transformer_layers):
    state.update(convert_tf_models.layer_state_dict(layer, f"{prefix}encoder.layer.{index}."))
  return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def rtd_head_state_dict(rtd_head) -> Dict[str, np.ndarray]:
  """ELECTRA's discriminator head as `ElectraForPreTraining.discriminator_predictions`."""
  return {
      "discriminator_predictions.dense.weight": _linear(rtd_head.dense.kernel.numpy()),
      "discriminator_predictions.dense.bias": rtd_head.dense.bias.numpy(),
      "discriminator_predictions.dense_prediction.weight": _linear(rtd_head.logits.kernel.numpy()),
      "discriminator_predictions.dense_prediction.bias": rtd_head.logits.bias.numpy(),
  }


def huggingface_config(encoder_config, architecture: str, pad_token_id: int = 0) -> Dict[str, object]:
  """config.json of transformers' ELECTRA for an encoder of `encoder_config`."""
  return {
      "architectures": [architecture],
      "model_type": "electra",
      "vocab_size": encoder_config.vocab_size,
      "embedding_size": encoder_config.embedding_width,
      "hidden_size": encoder_config.hidden_size,
      "num_hidden_layers": encoder_config.num_layers,
      "num_attention_heads": encoder_config.num_heads,
      "intermediate_size": encoder_config.intermediate_size,
      "hidden_act": convert_mapping.huggingface_activation(encoder_config.activation),
      "hidden_dropout_prob": encoder_config.dropout_rate,
      "attention_probs_dropout_prob": encoder_config.attention_dropout_rate,
      "max_position_embeddings": encoder_config.max_position_embeddings,
      "type_vocab_size": encoder_config.type_vocab_size,
      "initializer_range": encoder_config.initializer_range,
      # The epsilon of every layer norm in tpu_electra.modeling (and BERT's).
      "layer_norm_eps": 1e-12,
      "pad_token_id": pad_token_id,
      "position_embedding_type": "absolute",
      "torch_dtype": "float32",
  }


_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}


def safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> bytes:
  """The safetensors serialization: u64-LE header size, JSON header, then the raw tensors.

  The header names each tensor's dtype, shape and [begin, end) byte range in the data that follows;
  ranges are contiguous in name order. The header is space-padded to a multiple of 8 bytes.
  """
  header: Dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
  chunks, offset = [], 0
  for name in sorted(tensors):
    array = np.ascontiguousarray(tensors[name])
    if array.dtype not in _SAFETENSORS_DTYPES:
      raise ExportError(f"tensor {name} has dtype {array.dtype}, which this writer does not handle")
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    header[name] = {"dtype": _SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                    "data_offsets": [offset, offset + len(data)]}
    chunks.append(data)
    offset += len(data)
  encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
  encoded += b" " * (-len(encoded) % 8)
  return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks)


def masked_lm_state_dict(mlm_head, bert: bool) -> Dict[str, np.ndarray]:
  """Our tied MLM head (dense + activation + layer norm, logits on the word embeddings + bias) under
  BertForMaskedLM's (`cls.predictions.*`) or ElectraForMaskedLM's (`generator_predictions.*`,
  `generator_lm_head.bias`) names; the decoder weight is the tied word-embedding table."""
  if bert:
    # pylint: disable-next=protected-access
    state = convert_tf_models.official_mlm_head_tensors(mlm_head, "cls.predictions.transform.", "cls.predictions.bias")
  else:
    # pylint: disable-next=protected-access
    state = convert_tf_models.official_mlm_head_tensors(mlm_head, "generator_predictions.", "generator_lm_head.bias")
  return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def bert_config(encoder_config, architecture: str, pad_token_id: int = 0) -> Dict[str, object]:
  """config.json of transformers' BERT for an encoder with E = H."""
  config = huggingface_config(encoder_config, architecture, pad_token_id)
  config["model_type"] = "bert"
  config.pop("embedding_size")
  return config


def _require_gelu(encoder_config, architecture: str) -> None:
  # transformers' ELECTRA heads (generator predictions, classifier) apply exact GELU whatever hidden_act says.
  if encoder_config.activation != "gelu":
    raise ExportError(f"{architecture}'s head always applies GELU, but this model's head uses "
                      f"{encoder_config.activation!r}; export --format=saved_model instead")


def _pretraining_state(objective, encoder) -> Tuple[str, Dict[str, np.ndarray], bool]:
  """(architecture, tensors, is BERT-named) of a pretraining objective's Hugging Face export."""
  if isinstance(objective, ReplacedTokenDetector):
    state = encoder_state_dict(encoder)
    head = objective.electra_discriminator_head()
    if head is None:
      # TEAMS: its detector reads layer L - 1 through a layer of its own, which no transformers class holds.
      return "ElectraModel", state, False
    head(tf.zeros([1, 1, encoder.config.hidden_size]))
    state.update(rtd_head_state_dict(head))
    return "ElectraForPreTraining", state, False
  if isinstance(objective, MaskedLanguageModel):
    network, mlm_head = objective.masked_lm()
    if network is encoder:
      mlm_head(tf.zeros([1, 1, encoder.config.hidden_size]), masked_positions=tf.zeros([1, 1], tf.int32))
      if encoder.embedding_projection is None:
        state = encoder_state_dict(encoder, prefix="bert.")
        state.update(masked_lm_state_dict(mlm_head, bert=True))
        return "BertForMaskedLM", state, True
      _require_gelu(encoder.config, "ElectraForMaskedLM")
      state = encoder_state_dict(encoder)
      state.update(masked_lm_state_dict(mlm_head, bert=False))
      return "ElectraForMaskedLM", state, False
  return "ElectraModel", encoder_state_dict(encoder), False


def _finetuned_state(model, encoder) -> Tuple[str, Dict[str, np.ndarray], Dict[str, object]]:
  """(architecture, tensors, extra config) of a fine-tuned task model's Hugging Face export."""
  state = encoder_state_dict(encoder)
  if isinstance(model, (task_models.ClassificationModel, task_models.RegressionModel)):
    # ElectraClassificationHead: dropout, dense, GELU, dropout, out_proj on [CLS] = our ClassificationHead
    # at inference. BertForSequenceClassification (pooler dense + tanh) computes something else.
    _require_gelu(encoder.config, "ElectraForSequenceClassification")
    head = model.head
    state.update({"classifier.dense.weight": _linear(head.dense.kernel.numpy()),
                  "classifier.dense.bias": head.dense.bias.numpy(),
                  "classifier.out_proj.weight": _linear(head.out_proj.kernel.numpy()),
                  "classifier.out_proj.bias": head.out_proj.bias.numpy()})
    regression = isinstance(model, task_models.RegressionModel)
    extra = {"num_labels": head.num_outputs,
             "problem_type": "regression" if regression else "single_label_classification"}
    return "ElectraForSequenceClassification", state, extra
  if isinstance(model, task_models.TaggingModel):
    # Dropout + one dense layer per position, as ElectraForTokenClassification.
    logits = model.head.logits
    state.update({"classifier.weight": _linear(logits.kernel.numpy()), "classifier.bias": logits.bias.numpy()})
    return "ElectraForTokenClassification", state, {"num_labels": int(logits.kernel.shape[-1])}
  if isinstance(model, task_models.SpanModel):
    # One dense layer to (start, end) per position, as ElectraForQuestionAnswering; ours also pushes
    # padding positions to -10000, which transformers leaves to the caller (logits at real tokens agree).
    logits = model.head.logits
    state.update({"qa_outputs.weight": _linear(logits.kernel.numpy()), "qa_outputs.bias": logits.bias.numpy()})
    return "ElectraForQuestionAnswering", state, {"num_labels": 2}
  if isinstance(model, task_models.MultipleChoiceModel):
    # ElectraForMultipleChoice: its sequence summary (first token, dense H -> H, activation, dropout) and
    # classifier (H -> 1) are our [CLS] scorer's dense + activation, dropout and out_proj.
    scorer = model.head.scorer
    state.update({"sequence_summary.summary.weight": _linear(scorer.dense.kernel.numpy()),
                  "sequence_summary.summary.bias": scorer.dense.bias.numpy(),
                  "classifier.weight": _linear(scorer.out_proj.kernel.numpy()),
                  "classifier.bias": scorer.out_proj.bias.numpy()})
    return "ElectraForMultipleChoice", state, {
        "summary_type": "first", "summary_use_proj": True, "summary_proj_to_labels": False,
        "summary_activation": convert_mapping.huggingface_activation(encoder.config.activation),
        "summary_last_dropout": encoder.config.dropout_rate}
  raise ExportError(f"no transformers class computes {type(model).__name__}'s head as ours does; "
                    "export --format=saved_model instead")


def _write_huggingface_dir(output_dir: str, config: Dict[str, object], state: Dict[str, np.ndarray],
                           vocab_path: Optional[str], do_lower_case: bool, bert: bool, max_length: int) -> None:
  tmp_dir = fileio.temporary_sibling(output_dir)
  tf.io.gfile.makedirs(tmp_dir)
  try:
    write_text(os.path.join(tmp_dir, "config.json"), json.dumps(config, indent=2) + "\n")
    write_bytes(os.path.join(tmp_dir, SAFETENSORS_NAME), safetensors_bytes(state))
    if vocab_path is not None:
      tf.io.gfile.copy(vocab_path, os.path.join(tmp_dir, "vocab.txt"), overwrite=True)
      write_text(os.path.join(tmp_dir, "tokenizer_config.json"), json.dumps({
          "tokenizer_class": "BertTokenizer" if bert else "ElectraTokenizer", "do_lower_case": do_lower_case,
          "model_max_length": max_length}, indent=2) + "\n")
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)


def export_huggingface(model_dir: str, output_dir: str, overwrite: bool = False, seed: Optional[int] = None) -> str:
  """Writes config.json, model.safetensors (and the vocab when reachable) to `output_dir`.

  Pretraining runs: ElectraForPreTraining (ELECTRA, ALE), BertForMaskedLM (BERT, SCRIPT with E = H),
  ElectraForMaskedLM (BERT, SCRIPT with E != H), ElectraModel (TEAMS). Fine-tuning runs:
  ElectraForSequenceClassification (GLUE, regression included), ElectraForTokenClassification
  (tagging), ElectraForQuestionAnswering (SQuAD), ElectraForMultipleChoice (RACE).
  """
  fileio.check_new_output_dir(output_dir, overwrite)
  if finetuned.is_finetuning_dir(model_dir):
    return _export_finetuned_huggingface(model_dir, output_dir, seed)
  run = runs.read_run(model_dir)
  objective = runs.load_objective(run)
  encoder = objective.encoder
  architecture, state, bert = _pretraining_state(objective, encoder)
  manifest = run.manifest()
  pad_id = manifest.special_token_ids["[PAD]"] if manifest else 0
  config = (bert_config if bert else huggingface_config)(encoder.config, architecture, pad_id)
  vocab_path = None
  if manifest is not None and manifest.vocab_type == tokenization.WORDPIECE:
    vocab_path = manifest.vocab_path(run.resolved_data_dir())
  _write_huggingface_dir(output_dir, config, state, vocab_path, manifest.do_lower_case if manifest else True, bert,
                         encoder.config.max_position_embeddings)
  return output_dir


def _export_finetuned_huggingface(model_dir: str, output_dir: str, seed: Optional[int]) -> str:
  run = finetuned.read_finetuning_run(model_dir, seed)
  model = finetuned.load_task_model(run)
  encoder = model.encoder
  architecture, state, extra = _finetuned_state(model, encoder)
  tokenizer = run.load_tokenizer()
  config = huggingface_config(encoder.config, architecture, tokenizer.special_token_ids["[PAD]"])
  config.update(extra)
  labels = run.label_list
  if labels and len(labels) == config.get("num_labels"):
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
  vocab_path = run.vocab_path() if tokenizer.vocab_type == tokenization.WORDPIECE else None
  _write_huggingface_dir(output_dir, config, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
                         vocab_path, tokenizer.do_lower_case, False, run.max_seq_length)
  return output_dir

