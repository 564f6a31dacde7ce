"""A pretraining model directory, read back: its configuration, its encoder, its tokenizer.

`python -m tpu_electra.pretrain` leaves in its model dir the checkpoints (items `model` = the
objective, `optimizer`, `encoder` = the network fine-tuning keeps) and `operative_config.gin`, every
binding the run used. This module rebuilds the objective from that file, without touching the
process's global gin configuration (fine-tuning has its own), and restores the parts it needs:

- `load_encoder` restores only the `encoder` item, for fine-tuning;
- `load_objective` restores the whole `model` item, for export and scoring (heads included).

The operative config is read with gin's own parser; `%MACRO` references are resolved against the
file's macros, and only literal values are used (a `@reference` is left to the default).
"""
import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import gin
from gin import config_parser
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization
from tpu_electra.modeling import EncoderConfig
import tpu_electra.objectives  # noqa: F401  (registers every objective with gin)

OPERATIVE_CONFIG_NAME = "operative_config.gin"
# The checkpoint key of the encoder's word-embedding table (the authoritative vocab size).
WORD_EMBEDDINGS_KEY = "encoder/embeddings/word_embeddings/embeddings/.ATTRIBUTES/VARIABLE_VALUE"


class PretrainedModelError(ValueError):
  """A pretraining model dir that is missing, incomplete, or does not fit what it is used with."""


@dataclasses.dataclass(frozen=True)
class _Reference:
  name: str
  evaluate: bool


@dataclasses.dataclass(frozen=True)
class _Macro:
  name: str


class _Delegate(config_parser.ParserDelegate):
  """Keeps references as plain markers instead of looking them up in the global registry."""

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return _Reference(scoped_configurable_name, evaluate)

  def macro(self, macro_name):
    return _Macro(macro_name)


def parse_bindings(text: str, origin: str = "<config>") -> Dict[Tuple[str, str], Any]:
  """{(configurable, parameter): value} of a gin config, macros resolved; scoped bindings skipped."""
  bindings: Dict[Tuple[str, str], Any] = {}
  macros: Dict[str, Any] = {}
  try:
    for statement in config_parser.ConfigParser(text, _Delegate()):
      if not isinstance(statement, config_parser.BindingStatement) or statement.scope:
        continue
      if statement.arg_name:
        bindings[(statement.selector, statement.arg_name)] = statement.value
      else:
        macros[statement.selector] = statement.value
  except SyntaxError as e:
    raise PretrainedModelError(f"{origin} is not a valid gin config: {str(e).splitlines()[0]}") from None

  def resolve(value, depth=0):
    if isinstance(value, _Macro):
      if value.name not in macros or depth > 20:
        raise PretrainedModelError(f"{origin} uses macro %{value.name} but does not define it")
      return resolve(macros[value.name], depth + 1)
    return value

  return {key: resolve(value) for key, value in bindings.items()}


def _is_literal(value) -> bool:
  if isinstance(value, (_Reference, _Macro)):
    return False
  if isinstance(value, (list, tuple)):
    return all(_is_literal(v) for v in value)
  if isinstance(value, dict):
    return all(_is_literal(v) for v in value.values())
  return True


@dataclasses.dataclass
class PretrainingRun:
  """What fine-tuning and export need to know about one pretraining run."""
  model_dir: str
  checkpoint: str
  bindings: Dict[Tuple[str, str], Any]

  def parameters(self, configurable: str) -> Dict[str, Any]:
    """The literal bindings of one configurable, as keyword arguments."""
    return {arg: value for (selector, arg), value in self.bindings.items()
            if selector == configurable and _is_literal(value)}

  @property
  def objective_name(self) -> str:
    objective = self.bindings.get(("pretrain", "objective"))
    if not isinstance(objective, _Reference):
      raise PretrainedModelError(f"{self.config_path} binds no pretrain.objective; is it a pretraining model dir?")
    return objective.name

  @property
  def config_path(self) -> str:
    return os.path.join(self.model_dir, OPERATIVE_CONFIG_NAME)

  @property
  def data_dir(self) -> Optional[str]:
    value = self.bindings.get(("pretrain", "data_dir"))
    return value if isinstance(value, str) else None

  def vocab_size(self) -> int:
    """Rows of the encoder's word-embedding table in the checkpoint."""
    shapes = tf.train.load_checkpoint(self.checkpoint).get_variable_to_shape_map()
    if WORD_EMBEDDINGS_KEY in shapes:
      return int(shapes[WORD_EMBEDDINGS_KEY][0])
    manifest = self.manifest()
    if manifest is None:
      raise PretrainedModelError(f"checkpoint {self.checkpoint} has no {WORD_EMBEDDINGS_KEY} and the data dir "
                                 f"{self.data_dir!r} has no manifest: cannot tell the vocab size")
    return manifest.vocab_size

  def encoder_config(self) -> EncoderConfig:
    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    values = {k: v for k, v in self.parameters("EncoderConfig").items() if k in fields}
    values["vocab_size"] = self.vocab_size()
    return EncoderConfig(**values)

  def resolved_data_dir(self) -> Optional[str]:
    """DATA_DIR as written, or relative to the current directory or the repository root."""
    data_dir = self.data_dir
    if not data_dir:
      return None
    candidates = [data_dir]
    if not os.path.isabs(data_dir) and "://" not in data_dir:
      from tpu_electra import gin_utils  # pylint: disable=g-import-not-at-top
      candidates.append(os.path.join(gin_utils.REPO_DIR, data_dir))
    for candidate in candidates:
      if tf.io.gfile.exists(os.path.join(candidate, manifest_lib.MANIFEST_NAME)):
        return candidate
    return None

  def manifest(self) -> Optional[manifest_lib.Manifest]:
    data_dir = self.resolved_data_dir()
    return manifest_lib.read_manifest(data_dir) if data_dir else None

  def build_objective(self) -> tf.keras.Model:
    """The objective of the run, with its literal bindings and the checkpoint's vocab size."""
    name = self.objective_name
    try:
      objective_cls = gin.get_configurable(name)
    except (ValueError, KeyError):
      raise PretrainedModelError(f"{self.config_path} names objective {name!r}, which this tpu_electra does not "
                                 "have") from None
    kwargs = self.parameters(name)
    kwargs.pop("encoder_config", None)
    return objective_cls(encoder_config=self.encoder_config(), **kwargs)


def resolve_checkpoint(path: str) -> Tuple[str, str]:
  """(model dir, checkpoint prefix) for a model dir (its latest checkpoint) or a checkpoint prefix."""
  if tf.io.gfile.isdir(path):
    checkpoint = tf.train.latest_checkpoint(path)
    if checkpoint is None:
      raise PretrainedModelError(f"no checkpoint in {path!r}: pretrain first (python -m tpu_electra.pretrain "
                                 f"--model_dir={path} ...) or pass a directory that has one")
    return path, checkpoint
  if tf.io.gfile.exists(path + ".index"):
    return os.path.dirname(path), path
  raise PretrainedModelError(f"{path!r} is neither a model dir nor a checkpoint prefix (no {path}.index)")


def read_run(path: str) -> PretrainingRun:
  """Reads a pretraining model dir (or one checkpoint prefix inside it) and its operative config."""
  model_dir, checkpoint = resolve_checkpoint(path)
  config_path = os.path.join(model_dir, OPERATIVE_CONFIG_NAME)
  if not tf.io.gfile.exists(config_path):
    raise PretrainedModelError(f"no {OPERATIVE_CONFIG_NAME} in {model_dir!r}: cannot rebuild the model that wrote "
                               f"{checkpoint}")
  with tf.io.gfile.GFile(config_path) as f:
    bindings = parse_bindings(f.read(), origin=config_path)
  return PretrainingRun(model_dir=model_dir, checkpoint=checkpoint, bindings=bindings)


def _restore_error(run: PretrainingRun, what: str, error: Exception) -> PretrainedModelError:
  first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  return PretrainedModelError(f"checkpoint {run.checkpoint} does not fit the {what} rebuilt from {run.config_path}: "
                              f"{first}")


def _restore(run: PretrainingRun, objective_encoder: tf.keras.Model, what: str, **items) -> None:
  """Builds the encoder, then restores the checkpoint's `items`, strictly for what exists."""
  objective_encoder(objective_encoder.dummy_inputs(batch_size=1, seq_length=2))
  try:
    status = tf.train.Checkpoint(**items).restore(run.checkpoint).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise _restore_error(run, what, e) from None


def load_encoder(run: PretrainingRun, objective: Optional[tf.keras.Model] = None) -> tf.keras.Model:
  """The objective's encoder with the checkpoint's `encoder` item restored into it.

  Restoration is deferred for variables that do not exist yet (Keras builds layers on first use);
  `check_restored` verifies after the first call that every encoder variable was matched.
  """
  objective = objective if objective is not None else run.build_objective()
  _restore(run, objective.encoder, "encoder", encoder=objective.encoder)
  return objective.encoder


def load_objective(run: PretrainingRun) -> tf.keras.Model:
  """The whole objective (encoder and pretraining heads), restored from the `model` item."""
  objective = run.build_objective()
  _restore(run, objective.encoder, "objective", model=objective)
  return objective


def operative_config_text(objective_name: str, encoder_config: EncoderConfig, data_dir: Optional[str] = None,
                          objective_kwargs: Optional[Dict[str, Any]] = None) -> str:
  """The bindings `read_run` needs, in the layout of gin's operative config."""
  lines = ["# Macros:", f"DATA_DIR = {data_dir!r}", "",
           "# Parameters for EncoderConfig:"]
  for field in dataclasses.fields(EncoderConfig):
    lines.append(f"EncoderConfig.{field.name} = {getattr(encoder_config, field.name)!r}")
  lines += ["", f"# Parameters for {objective_name}:"]
  for name, value in sorted((objective_kwargs or {}).items()):
    lines.append(f"{objective_name}.{name} = {value!r}")
  lines += ["", "# Parameters for pretrain:", "pretrain.data_dir = %DATA_DIR",
            f"pretrain.objective = @{objective_name}", ""]
  return "\n".join(lines)


def save_pretraining_dir(objective: tf.keras.Model, model_dir: str, data_dir: Optional[str] = None,
                         objective_kwargs: Optional[Dict[str, Any]] = None, step: int = 0) -> str:
  """Writes a model dir as `pretrain` leaves it (checkpoint items `model` and `encoder`, config).

  For an objective built in Python, e.g. converted from elsewhere or in tests; returns the
  checkpoint path. `objective_kwargs` are the constructor arguments besides `encoder_config`.
  Keras builds layers on first use: the encoder is built here, heads are saved only if the
  objective has been called (trained) before.
  """
  objective.encoder(objective.encoder.dummy_inputs(batch_size=1, seq_length=2))
  tf.io.gfile.makedirs(model_dir)
  checkpoint = tf.train.Checkpoint(model=objective, encoder=objective.encoder)
  path = tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1).save(checkpoint_number=step)
  text = operative_config_text(type(objective).__name__, objective.encoder.config, data_dir, objective_kwargs)
  with tf.io.gfile.GFile(os.path.join(model_dir, OPERATIVE_CONFIG_NAME), "w") as f:
    f.write(text)
  return path


def load_tokenizer(run: PretrainingRun, vocab: Optional[str] = None, vocab_type: Optional[str] = None,
                   do_lower_case: Optional[bool] = None) -> tokenization.Tokenizer:
  """The pretraining data's tokenizer (DATA_DIR's manifest), or `vocab` when given.

  Either way its size must equal the checkpoint's embedding rows: token ids from another vocab
  would index the wrong embeddings without any error.
  """
  manifest = None
  data_dir = run.resolved_data_dir()
  if data_dir is not None:
    manifest = manifest_lib.read_manifest(data_dir)
  if vocab:
    tokenizer = tokenization.load_tokenizer(
        vocab,
        vocab_type or (manifest.vocab_type if manifest else tokenization.WORDPIECE),
        do_lower_case if do_lower_case is not None else (manifest.do_lower_case if manifest else True))
    origin = vocab
  elif manifest is not None:
    tokenizer = tokenization.from_manifest(manifest, data_dir)
    origin = manifest.vocab_path(data_dir)
  else:
    raise PretrainedModelError(f"the pretraining data dir {run.data_dir!r} named in {run.config_path} has no "
                               "manifest here; pass --vocab=<the vocab file the model was pretrained with>")
  vocab_size = run.vocab_size()
  if tokenizer.vocab_size != vocab_size:
    raise PretrainedModelError(f"vocab {origin} has {tokenizer.vocab_size} tokens but the checkpoint's embedding "
                               f"table has {vocab_size} rows; use the vocab the model was pretrained with")
  return tokenizer
