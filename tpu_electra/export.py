r"""Exports a pretrained encoder: a TensorFlow SavedModel, or Hugging Face ELECTRA weights.

  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=saved_model --output_dir=OUT
  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=huggingface --output_dir=OUT

--model_dir is a pretraining model dir (its latest checkpoint) or one checkpoint prefix in it; the
objective is rebuilt from the dir's run.json.

saved_model: one serving signature taking `input_word_ids`, `input_mask`, `input_type_ids`
(int32 [batch, length]) and returning `sequence_output` [batch, length, H] and, for an objective
that is a ReplacedTokenDetector (ELECTRA, ALE, TEAMS), `rtd_logits` [batch, length] (the detector's
logits; for TEAMS those of its RTD branch, which has a top layer of its own).

huggingface: `config.json` and `model.safetensors` in the layout of transformers' ELECTRA classes:
`ElectraForPreTraining` when the detector is exactly its discriminator head on the last layer
(ELECTRA/ALE), `ElectraModel` otherwise (BERT, SCRIPT, TEAMS: the encoder alone, as no transformers
class holds TEAMS' RTD branch with its own layer; ELECTRA's architecture also covers an embedding
projection E != H, which BertModel cannot hold). Cross-layer sharing (ALE) is written out as L
copies of the shared layer. The WordPiece vocab is copied as `vocab.txt` with a tokenizer config
when the pretraining data's manifest is reachable.

Mapping, per transformer layer i (official TransformerEncoderBlock → Hugging Face):
  self_attention/{query,key,value}/kernel [H, heads, d] → attention.self.{query,key,value}.weight [H, H]
  self_attention/attention_output/kernel [heads, d, H]  → attention.output.dense.weight [H, H]
  self_attention_layer_norm                             → attention.output.LayerNorm
  intermediate, output                                  → intermediate.dense, output.dense
  output_layer_norm                                     → output.LayerNorm
Dense kernels [in, out] become torch Linear weights [out, in]. Output goes to a temporary directory
renamed into place at the end, so a failed export never leaves a half-written OUT.
"""
import json
import os
import struct
import uuid
from typing import Dict, Mapping, Optional

from absl import flags
import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import cli_utils
from tpu_electra import convert
from tpu_electra.data import tokenization
from tpu_electra.finetuning import pretrained
from tpu_electra.objectives import ReplacedTokenDetector

FORMATS = ("saved_model", "huggingface")
SAFETENSORS_NAME = "model.safetensors"


class ExportError(ValueError):
  """An export that cannot be done as asked."""


class ServingModule(tf.Module):
  """The encoder (and the objective's replaced-token detector when it has one) behind one serving function."""

  def __init__(self, encoder, detector: Optional[ReplacedTokenDetector] = None):
    super().__init__()
    self.encoder = encoder
    self.detector_logits = detector.detector_logits if detector is not None else None
    # Tracked so that the detector's variables (its head, TEAMS' branch layers) are saved, and not
    # the generator's.
    self.detector_layers = list(detector.detector_layers()) if detector is not None else []

  @tf.function(input_signature=[{
      "input_word_ids": tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
      "input_mask": tf.TensorSpec([None, None], tf.int32, name="input_mask"),
      "input_type_ids": tf.TensorSpec([None, None], tf.int32, name="input_type_ids"),
  }])
  def serve(self, inputs):
    encoder_output = self.encoder(inputs, training=False)
    outputs = {"sequence_output": tf.cast(encoder_output["sequence_output"], tf.float32)}
    if self.detector_logits is not None:
      outputs["rtd_logits"] = tf.cast(
          self.detector_logits(encoder_output, inputs["input_mask"], training=False), tf.float32)
    return outputs


def _temporary_sibling(output_dir: str) -> str:
  return f"{output_dir.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"


def _check_output_dir(output_dir: str, overwrite: bool) -> None:
  if tf.io.gfile.exists(output_dir):
    if not overwrite:
      raise ExportError(f"{output_dir!r} already exists; choose another --output_dir or pass --overwrite")


def _move_into_place(tmp_dir: str, output_dir: str) -> None:
  if tf.io.gfile.exists(output_dir):
    tf.io.gfile.rmtree(output_dir)
  tf.io.gfile.rename(tmp_dir, output_dir)


def export_saved_model(model_dir: str, output_dir: str, overwrite: bool = False) -> str:
  """Writes the serving SavedModel of the pretraining run in `model_dir` to `output_dir`."""
  _check_output_dir(output_dir, overwrite)
  run = pretrained.read_run(model_dir)
  objective = pretrained.load_objective(run)
  detector = objective if isinstance(objective, ReplacedTokenDetector) else None
  if detector is not None:
    # Heads are built on first use; build them eagerly so the checkpoint's values land in them
    # before the serving function is traced.
    dummy = objective.encoder.dummy_inputs(batch_size=1, seq_length=2)
    detector.detector_logits(objective.encoder(dummy, training=False), dummy["input_mask"], training=False)
  module = ServingModule(objective.encoder, detector)
  tmp_dir = _temporary_sibling(output_dir)
  try:
    tf.saved_model.save(module, tmp_dir, signatures={"serving_default": module.serve})
    _move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


# ----------------------------------------------------------------------------------------------
# Hugging Face


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
    state.update(convert.layer_state_dict(layer, f"{prefix}encoder.layer.{index}."))
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
      "hidden_act": convert.huggingface_activation(encoder_config.activation),
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


def read_safetensors(data: bytes) -> Dict[str, np.ndarray]:
  """Inverse of `safetensors_bytes` (for checking an export without torch)."""
  (size,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + size])
  header.pop("__metadata__", None)
  body = data[8 + size:]
  names = {v: k for k, v in _SAFETENSORS_DTYPES.items()}
  out = {}
  for name, entry in header.items():
    begin, end = entry["data_offsets"]
    out[name] = np.frombuffer(body[begin:end], dtype=names[entry["dtype"]].newbyteorder("<")).reshape(entry["shape"])
  return out


def _write_bytes(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _write_text(path: str, text: str) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)


def export_huggingface(model_dir: str, output_dir: str, overwrite: bool = False) -> str:
  """Writes config.json, model.safetensors (and the vocab when reachable) to `output_dir`."""
  _check_output_dir(output_dir, overwrite)
  run = pretrained.read_run(model_dir)
  objective = pretrained.load_objective(run)
  encoder = objective.encoder
  state = encoder_state_dict(encoder)
  architecture = "ElectraModel"
  head = objective.electra_discriminator_head() if isinstance(objective, ReplacedTokenDetector) else None
  if head is not None:
    head(tf.zeros([1, 1, encoder.config.hidden_size]))
    state.update(rtd_head_state_dict(head))
    architecture = "ElectraForPreTraining"
  manifest = run.manifest()
  pad_id = manifest.special_token_ids["[PAD]"] if manifest else 0
  tmp_dir = _temporary_sibling(output_dir)
  tf.io.gfile.makedirs(tmp_dir)
  try:
    _write_text(os.path.join(tmp_dir, "config.json"),
                json.dumps(huggingface_config(encoder.config, architecture, pad_id), indent=2) + "\n")
    _write_bytes(os.path.join(tmp_dir, SAFETENSORS_NAME), safetensors_bytes(state))
    if manifest is not None and manifest.vocab_type == tokenization.WORDPIECE:
      data_dir = run.resolved_data_dir()
      tf.io.gfile.copy(manifest.vocab_path(data_dir), os.path.join(tmp_dir, "vocab.txt"), overwrite=True)
      _write_text(os.path.join(tmp_dir, "tokenizer_config.json"), json.dumps({
          "tokenizer_class": "ElectraTokenizer", "do_lower_case": manifest.do_lower_case,
          "model_max_length": encoder.config.max_position_embeddings}, indent=2) + "\n")
    _move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("model_dir", None, "Pretraining model dir, or a checkpoint prefix inside one.",
                      flag_values=flag_values)
  flags.DEFINE_enum("format", "saved_model", list(FORMATS), "What to write.", flag_values=flag_values)
  cli_utils.define_output_flags(flag_values, "the export")


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the export the parsed flags ask for; returns the exit status (errors: one line)."""
  cli_utils.require(flag_values, "model_dir", "output_dir")
  exporter = export_saved_model if flag_values.format == "saved_model" else export_huggingface
  path = exporter(flag_values.model_dir, flag_values.output_dir, overwrite=flag_values.overwrite)
  print(f"wrote {flag_values.format} export to {path}")
  return 0


cli = cli_utils.command_line(define_flags, run)


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, run)
