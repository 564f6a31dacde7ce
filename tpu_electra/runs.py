"""A run directory, written and read: `run.json` beside the checkpoints and `operative_config.gin`.

Every pretraining, fine-tuning and converted run writes run.json here, and whatever loads a run later
(fine-tuning, export, scoring, evaluation, continued pretraining) reads it here, never the gin config:
gin records how a run was configured, run.json what it is.

run.json (VERSION 2), one spelling per field; every record has

  version            VERSION (a record without it was written before 2: read as version 1, below)
  kind               "pretraining" (pretraining and converted runs) or "finetuning"
  encoder_config     the EncoderConfig of the encoder actually built (ALE's forced sharing included)
  versions           Python's and the libraries' versions (library_versions)

a pretraining run (`pretraining_record`) adds
  objective          {name, module, class, arguments}: the registered objective and its resolved arguments
  data               {data_dir, and from its manifest: manifest_sha256, settings_hash, vocab_size, vocab_type,
                      do_lower_case, num_examples, vocab_sha256}
  seed, batch_size, seq_length, train_steps, train_flops, precision, eval_every, eval_batches
  optimizer, masking (MaskingConfig: mask_rate, ...), input_pipeline, train_loop   (gin's resolved arguments)
  init_checkpoint    continued pretraining: the init run's identity and what was restored (optional)
  history            [{from_step, changes: {"a.b": [old, new]}, previous_operative_config}] (optional)

a converted run (`converted_record`, tpu_electra.convert) is a pretraining run whose `data` carries
its vocab (vocab_file, vocab_type, do_lower_case, vocab_size) plus `source`, `conversion` and step 0;
a fine-tuning run (`finetuning_record`) adds task, seed (the base seed), seeds, init_checkpoint (the
pretraining checkpoint), from_scratch, max_seq_length, precision, data_dir, features, label_list,
task_serving, tokenizer and the gin arguments of its training.

Version 1 (`format_version: 1`, fine-tuning's base seed spelled "SEED") is read as version 2.

A pretraining record describes every checkpoint of its model dir. A re-run of the dir compares its
settings with the recorded ones (`changes`): what changes training (all but FREE_SETTINGS) may only
change with the re-run's explicit consent, and every change, consented or free, is kept in the
record's `history` with the step it applies from (`continued_record`).

Reading back (`read_run`): a PretrainingRun says what the run is (objective, encoder config, data dir
and vocab found here); `load_encoder` / `fresh_encoder` / `load_objective` / `load_tokenizer` build
what fine-tuning, export, scoring and evaluation use from it, without parsing gin.
"""
import dataclasses
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import shlex
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from absl import logging
import gin
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import objectives
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization
from tpu_electra.modeling import EncoderConfig, TransformerEncoder

RUN_JSON = "run.json"
VERSION = 2
PRETRAINING = "pretraining"
FINETUNING = "finetuning"
# The distributions whose versions decide what a checkpoint means and how it was trained.
_VERSIONED_DISTRIBUTIONS = ("tpu_electra", "tensorflow", "tf-keras", "tf-models-official", "tensorflow-text",
                            "gin-config", "numpy")
# Where a relative DATA_DIR in run.json is looked for after the current directory (a checkout's data/).
_REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Version 1's spellings of fields version 2 spells otherwise.
_RENAMED_IN_2 = {"SEED": "seed"}


# Settings a re-run may change without consent (the change is still recorded in `history`): they
# decide when the run stops, evaluates and where it finds its data, not what a step computes.
# TRAIN_STEPS / TRAIN_FLOPS extend a run (raise TRAIN_STEPS to train further), which moves the end
# of the learning-rate decay: the history says from which step.
FREE_SETTINGS = ("train_steps", "train_flops", "eval_every", "eval_batches", "data.data_dir")
# What the record says about itself or about where the run started, not how it trains
# ("upgraded_from": records written from an operative_config.gin by tpu_electra before VERSION 2).
_NOT_SETTINGS = ("version", "versions", "history", "init_checkpoint", "upgraded_from")
# Kept from the previous record when a re-run rewrites it.
_CARRIED = ("init_checkpoint", "upgraded_from")


class RunError(ValueError):
  """A run dir that is missing, unreadable, of a version this tpu_electra does not read, or that does not
  fit what it is used with."""


class ChangedSettingsError(ValueError):
  """A re-run of a model dir with checkpoints whose settings differ from its run.json in what changes training."""


def library_versions() -> Dict[str, Optional[str]]:
  """Python's version and the installed versions of the libraries a run depends on (None: not installed)."""
  versions: Dict[str, Optional[str]] = {"python": platform.python_version()}
  for name in _VERSIONED_DISTRIBUTIONS:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def path_of(model_dir: str) -> str:
  return fileio.join(model_dir, RUN_JSON)


def write_record(model_dir: str, record: Dict[str, Any]) -> str:
  """Writes `record` (JSON-serializable, with a `kind`) as run.json, with the version and the library
  versions, atomically; returns its path."""
  if record.get("kind") not in (PRETRAINING, FINETUNING):
    raise ValueError(f"a run record's kind is {PRETRAINING!r} or {FINETUNING!r}, not {record.get('kind')!r}")
  record = {**record, "version": VERSION, "versions": library_versions()}
  path = path_of(model_dir)
  fileio.write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
  return path


def read_record(model_dir: str) -> Optional[Dict[str, Any]]:
  """The run.json of `model_dir` as version VERSION spells it (an older one read as it would be written
  now), or None when it has none."""
  path = path_of(model_dir)
  if not fileio.exists(path):
    return None
  record = fileio.read_json_object(path, RunError, "restore it from a copy of the run")
  version = record.get("version")
  if version is None:
    return _from_version_1(record, path)
  if not isinstance(version, int) or isinstance(version, bool) or version < 2:
    raise RunError(f"{path} has version {version!r}, which no tpu_electra wrote (this one writes {VERSION}); "
                   "restore it from a copy of the run")
  if version > VERSION:
    raise RunError(f"{path} is run.json version {version}, newer than this tpu_electra reads ({VERSION}); "
                   "upgrade tpu_electra to the version that wrote it")
  return record


def _from_version_1(record: Dict[str, Any], path: str) -> Dict[str, Any]:
  """A version-1 record (no `version`; `format_version` 1, or none before that) as version 2 spells it."""
  if record.get("format_version", 1) != 1:
    raise RunError(f"{path} has format_version {record.get('format_version')!r}, which no tpu_electra wrote "
                   f"(version 1 wrote 1); restore it from a copy of the run")
  upgraded = {_RENAMED_IN_2.get(key, key): value for key, value in record.items() if key != "format_version"}
  upgraded["version"] = VERSION
  return upgraded


def objective_record(objective_class, arguments: Dict[str, Any]) -> Dict[str, Any]:
  """A registered objective class (tpu_electra.objectives) as run.json records it: its registry name,
  where it lives (so an objective defined outside tpu_electra is found again), its resolved arguments."""
  try:
    json.dumps(arguments)
  except TypeError as e:
    raise ValueError(f"{objective_class.__name__}'s arguments must be JSON values to be recorded in "
                     f"{RUN_JSON}: {e}") from None
  return {"name": objective_class.registry_name, "module": objective_class.__module__,
          "class": objective_class.__qualname__, "arguments": arguments}


def data_record(data_dir: Optional[str]) -> Dict[str, Any]:
  """The pretraining data: the dir as given and, when it has a manifest, the manifest's identity."""
  record: Dict[str, Any] = {"data_dir": data_dir}
  path = fileio.join(data_dir, manifest_lib.MANIFEST_NAME) if data_dir else None
  if path and fileio.exists(path):
    with fileio.open_file(path, "rb") as f:
      data = f.read()
    manifest = manifest_lib.parse_manifest(data, origin=path)
    record.update(manifest_sha256=hashlib.sha256(data).hexdigest(),
                  settings_hash=manifest.settings_hash, vocab_size=manifest.vocab_size,
                  vocab_type=manifest.vocab_type, do_lower_case=manifest.do_lower_case,
                  num_examples=manifest.num_examples)
    vocab_path = manifest.vocab_path(data_dir)
    if fileio.exists(vocab_path):
      # Which tokens the embedding rows stand for (continued pretraining compares it with its data's).
      record["vocab_sha256"] = fileio.file_sha256(vocab_path)
  return record


def pretraining_record(objective, data_dir: Optional[str], **settings) -> Dict[str, Any]:
  """run.json of a pretraining run: the objective, the kept encoder's config, the data, and
  `settings` (seed, batch_size, seq_length, train_steps, precision, masking, ...)."""
  return {"kind": PRETRAINING, "objective": objective_record(type(objective), objective.arguments),
          "encoder_config": dataclasses.asdict(objective.encoder_config), "data": data_record(data_dir), **settings}


def converted_record(objective: Dict[str, Any], encoder_config: EncoderConfig, vocab: Dict[str, Any],
                     source: Dict[str, Any], conversion: Dict[str, Any]) -> Dict[str, Any]:
  """run.json of a run converted from another framework (tpu_electra.convert): a pretraining run's
  entries, so that everything reading runs reads it, whose data is the vocab it carries (`vocab`:
  vocab_file, vocab_type, do_lower_case, vocab_size), plus where it came from and what the checkpoint holds."""
  return {"kind": PRETRAINING, "objective": objective, "encoder_config": dataclasses.asdict(encoder_config),
          "data": {"data_dir": None, **vocab}, "source": source, "conversion": conversion, "step": 0}


def finetuning_record(task: str, seed: int, seeds: List[int], init_checkpoint: str, encoder_config: EncoderConfig,
                      **settings) -> Dict[str, Any]:
  """run.json of a fine-tuning run: the task, the base seed and the seeds run, the pretraining checkpoint
  and the encoder config it fine-tunes, and `settings` (max_seq_length, label_list, tokenizer, ...)."""
  return {"kind": FINETUNING, "task": task, "seed": seed, "seeds": list(seeds), "init_checkpoint": init_checkpoint,
          "encoder_config": dataclasses.asdict(encoder_config), **settings}


def configured_arguments(configurable: Callable, exclude: Iterable[str] = ()) -> Dict[str, Any]:
  """A gin configurable's keyword arguments as a call without them now gets them: its defaults, then
  what gin binds (macros resolved); required ones left unbound and `exclude`d ones are not listed."""
  arguments = {name: p.default for name, p in inspect.signature(configurable).parameters.items()
               if p.default is not inspect.Parameter.empty and p.default is not gin.REQUIRED}
  try:
    arguments.update(gin.get_bindings(configurable))
  except ValueError:  # Not registered with gin (a stand-in for one, in tests): its defaults.
    pass
  return {name: value for name, value in sorted(arguments.items()) if name not in exclude}


def _flatten(record: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  flat = {}
  for key, value in record.items():
    if isinstance(value, dict) and value:
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _settings(record: Dict[str, Any]) -> Dict[str, Any]:
  return _flatten({k: v for k, v in record.items() if k not in _NOT_SETTINGS})


def _is_free(name: str) -> bool:
  return any(name == free or name.startswith(free + ".") for free in FREE_SETTINGS)


def changes(recorded: Dict[str, Any], current: Dict[str, Any]) -> Tuple[Dict[str, List[Any]], Dict[str, List[Any]]]:
  """(changes of training settings, other changes) from `recorded` to `current`, each {"a.b": [old, new]}.

  A setting the recorded run did not record (written by an older tpu_electra) is an other change, from None.
  """
  # Through JSON, as `recorded` was read: tuples become lists.
  old, new = _settings(recorded), _settings(json.loads(json.dumps(current)))
  training, free = {}, {}
  for name in sorted(set(old) | set(new)):
    if old.get(name) != new.get(name):
      (free if _is_free(name) or name not in old else training)[name] = [old.get(name), new.get(name)]
  return training, free


def _shown(value: Any) -> str:
  text = json.dumps(value)
  return text if len(text) <= 24 else text[:20] + "…"


def describe_changes(changed: Dict[str, List[Any]]) -> str:
  return ", ".join(f"{name} {_shown(old)} -> {_shown(new)}" for name, (old, new) in changed.items())


def continued_record(recorded: Dict[str, Any], current: Dict[str, Any], step: int,
                     changed: Dict[str, List[Any]], operative_config: Optional[str]) -> Dict[str, Any]:
  """The record of a run continued from `step` with `current`'s settings: `recorded`'s history with
  `changed` appended (`operative_config`: where the configuration of the steps before was kept).

  Changes at the step of the last entry merge into it: no step was trained with that entry's settings.
  """
  record = dict(current, **{key: recorded[key] for key in _CARRIED if key in recorded})
  history = [dict(entry) for entry in recorded.get("history", [])]
  if history and history[-1]["from_step"] == step:
    merged = dict(history[-1]["changes"])
    for name, (old, new) in changed.items():
      merged[name] = [merged[name][0] if name in merged else old, new]
    history[-1]["changes"] = {name: pair for name, pair in sorted(merged.items()) if pair[0] != pair[1]}
    if not history[-1]["changes"]:
      history.pop()
  elif changed:
    entry: Dict[str, Any] = {"from_step": step, "changes": changed}
    if operative_config:
      entry["previous_operative_config"] = operative_config
    history.append(entry)
  if history:
    record["history"] = history
  return record


@dataclasses.dataclass
class PretrainingRun:
  """What fine-tuning, export, scoring and evaluation need to know about one pretraining run."""
  model_dir: str
  checkpoint: str
  info: Dict[str, Any]

  @property
  def info_path(self) -> str:
    return path_of(self.model_dir)

  @property
  def objective(self) -> str:
    """The objective's registry name ("electra")."""
    return self.info["objective"]["name"]

  @property
  def objective_class_name(self) -> str:
    """The objective's class name ("Electra")."""
    return self.info["objective"]["class"]

  @property
  def arguments(self) -> Dict[str, Any]:
    return dict(self.info["objective"]["arguments"])

  @property
  def data_dir(self) -> Optional[str]:
    return self.info["data"]["data_dir"]

  def setting(self, name: str, default: Any = None) -> Any:
    """A recorded setting of the run (seed, batch_size, seq_length, train_steps, eval_batches, ...)."""
    value = self.info.get(name)
    return default if value is None else value

  def encoder_config(self) -> EncoderConfig:
    return EncoderConfig(**self.info["encoder_config"])

  def vocab_size(self) -> int:
    return self.encoder_config().vocab_size

  def resolved_data_dir(self) -> Optional[str]:
    """DATA_DIR as written, or relative to the current directory or the repository root."""
    data_dir = self.data_dir
    if not data_dir:
      return None
    candidates = [data_dir]
    if not os.path.isabs(data_dir) and "://" not in data_dir:
      candidates.append(os.path.join(_REPOSITORY_ROOT, data_dir))
    for candidate in candidates:
      if tf.io.gfile.exists(os.path.join(candidate, manifest_lib.MANIFEST_NAME)):
        return candidate
    return None

  def manifest(self) -> Optional[manifest_lib.Manifest]:
    data_dir = self.resolved_data_dir()
    return manifest_lib.read_manifest(data_dir) if data_dir else None

  def objective_class(self):
    """The registered class of the run's objective; its module is imported when it is not yet
    registered (an objective defined outside tpu_electra)."""
    record = self.info["objective"]
    if record["name"] not in objectives.names():
      try:
        importlib.import_module(record["module"])
      except ImportError as e:
        raise RunError(f"{self.info_path} names objective {record['name']!r} of module "
                                   f"{record['module']!r}, which cannot be imported here ({e})") from None
    try:
      return objectives.get(record["name"])
    except ValueError as e:
      raise RunError(f"{self.info_path}: {e}") from None

  def build_objective(self) -> objectives.PretrainingObjective:
    """The run's objective with its recorded arguments and encoder config (not restored)."""
    return self.objective_class()(encoder_config=self.encoder_config(), **self.arguments)

  def vocab_path(self) -> Optional[str]:
    """The vocab the run's embeddings index: the one it carries (a converted run's vocab.txt), else
    its pretraining data's (DATA_DIR's manifest, when found here); None when neither is at hand."""
    carried = self.info["data"].get("vocab_file")
    if carried and tf.io.gfile.exists(os.path.join(self.model_dir, carried)):
      return os.path.join(self.model_dir, carried)
    data_dir = self.resolved_data_dir()
    if data_dir is not None:
      path = manifest_lib.read_manifest(data_dir).vocab_path(data_dir)
      if tf.io.gfile.exists(path):
        return path
    return None

  def identity(self) -> Dict[str, Any]:
    """Which run this is, as another run's run.json records it (e.g. its init_checkpoint)."""
    record = {"model_dir": self.model_dir, "checkpoint": self.checkpoint, "objective": self.objective,
              "encoder_config": self.info["encoder_config"]}
    for key in ("source", "init_checkpoint"):
      if self.info.get(key):
        record[key] = self.info[key]
    return record


def resolve_checkpoint(path: str) -> Tuple[str, str]:
  """(model dir, checkpoint prefix) for a model dir (its latest checkpoint) or a checkpoint prefix."""
  if tf.io.gfile.isdir(path):
    checkpoint = tf.train.latest_checkpoint(path)
    if checkpoint is None:
      raise RunError(f"no checkpoint in {path!r}: pass a directory that has one, or pretrain into it "
                                 f"first, e.g. python -m tpu_electra.pretrain --gin_file=smoke/electra.gin "
                                 f"--model_dir={shlex.quote(path)}")
    return path, checkpoint
  if tf.io.gfile.exists(path + ".index"):
    return os.path.dirname(path), path
  raise RunError(f"{path!r} is neither a model dir nor a checkpoint prefix (no {path}.index)")


def read_run(path: str) -> PretrainingRun:
  """Reads a pretraining model dir (or one checkpoint prefix inside it) and its run.json."""
  model_dir, checkpoint = resolve_checkpoint(path)
  info = read_record(model_dir)
  if info is None:
    raise RunError(f"no {RUN_JSON} in {model_dir!r}: cannot tell what wrote {checkpoint}; pass a run dir that "
                   "python -m tpu_electra.pretrain or tpu_electra.convert wrote")
  if info.get("kind") != PRETRAINING:
    raise RunError(f"{path_of(model_dir)} describes a {info.get('kind')!r} run, not a pretraining run")
  return PretrainingRun(model_dir=model_dir, checkpoint=checkpoint, info=info)


def _restore(run: PretrainingRun, network: tf.keras.Model, what: str, **items) -> None:
  """Builds the encoder, then restores the checkpoint's `items`, strictly for what exists."""
  network(network.dummy_inputs(batch_size=1, seq_length=2))
  try:
    status = tf.train.Checkpoint(**items).restore(run.checkpoint).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise RunError(f"checkpoint {run.checkpoint} does not fit the {what} described by {run.info_path}: "
                               f"{first}") from None


def fresh_encoder(run: PretrainingRun) -> TransformerEncoder:
  """An encoder of the recorded EncoderConfig, built, with the fresh weights its initializers draw from
  the global generators (seed them first: `seeding.seed_everything`); nothing of the checkpoint is read.

  Fine-tuning `--from_scratch` starts from it: the no-pretraining baseline of the same shape and vocab.
  """
  encoder = TransformerEncoder(run.encoder_config(), name="encoder")
  encoder(encoder.dummy_inputs(batch_size=1, seq_length=2))
  return encoder


def load_encoder(run: PretrainingRun) -> TransformerEncoder:
  """An encoder of the recorded EncoderConfig with the checkpoint's `encoder` item restored into it.

  Built as `fresh_encoder` builds it, so both draw the same numbers from the global generators and
  whatever is drawn after them (a task head's initial weights) is the same either way.
  """
  encoder = fresh_encoder(run)
  _restore(run, encoder, "encoder", encoder=encoder)
  return encoder


def absent_parts(run: PretrainingRun) -> List[str]:
  """The parts of the run's objective its checkpoint does not hold (a converted encoder-only dir: the heads)."""
  return list((run.info.get("conversion") or {}).get("absent") or [])


def load_objective(run: PretrainingRun) -> objectives.PretrainingObjective:
  """The whole objective (encoder and pretraining heads), restored from the `model` item; from the
  `encoder` item alone when the checkpoint has no `model` (e.g. a converted encoder)."""
  objective = run.build_objective()
  absent = absent_parts(run)
  if absent:
    logging.warning("%s was converted without %s (run.json conversion.absent): those parts of the %s objective "
                    "keep their fresh initial weights", run.model_dir, ", ".join(absent), run.objective)
  keys = tf.train.load_checkpoint(run.checkpoint).get_variable_to_shape_map()
  if any(key.startswith("model/") for key in keys):
    _restore(run, objective.encoder, "objective", model=objective)
  else:
    _restore(run, objective.encoder, "encoder", encoder=objective.encoder)
  return objective



def save_pretraining_dir(objective: objectives.PretrainingObjective, model_dir: str, data_dir: Optional[str] = None,
                         objective_arguments: Optional[Dict[str, Any]] = None, step: int = 0, **settings) -> str:
  """Writes a model dir as `pretrain` leaves it (checkpoint items `model` and `encoder`, run.json).

  For an objective built in Python, e.g. converted from elsewhere or in tests; returns the
  checkpoint path. Its arguments are those it recorded itself (`objective_arguments`, when given, must
  agree with them); `settings` are extra run.json entries (seq_length, batch_size, ...). Keras
  builds layers on first use: the encoder is built here, heads are saved only if the objective has
  been called (trained) before.
  """
  arguments = objective.arguments
  differing = {k: v for k, v in (objective_arguments or {}).items() if arguments.get(k) != v}
  if differing:
    raise ValueError(f"objective_arguments {differing} differ from the arguments the objective was built with")
  objective.encoder(objective.encoder.dummy_inputs(batch_size=1, seq_length=2))
  tf.io.gfile.makedirs(model_dir)
  checkpoint = tf.train.Checkpoint(model=objective, encoder=objective.encoder)
  path = tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1).save(checkpoint_number=step)
  write_record(model_dir, pretraining_record(objective, data_dir, **settings))
  return path


def load_tokenizer(run: PretrainingRun, vocab: Optional[str] = None, vocab_type: Optional[str] = None,
                   do_lower_case: Optional[bool] = None) -> tokenization.Tokenizer:
  """The pretraining data's tokenizer (DATA_DIR's manifest), or `vocab` when given.

  Either way its size must equal the encoder's embedding rows: token ids from another vocab
  would index the wrong embeddings without any error.
  """
  manifest = None
  data_dir = run.resolved_data_dir()
  if data_dir is not None:
    manifest = manifest_lib.read_manifest(data_dir)
  recorded = run.info["data"]
  if vocab:
    tokenizer = tokenization.load_tokenizer(
        vocab,
        vocab_type or (manifest.vocab_type if manifest else recorded.get("vocab_type", tokenization.WORDPIECE)),
        do_lower_case if do_lower_case is not None else (manifest.do_lower_case if manifest
                                                          else recorded.get("do_lower_case", True)))
    origin = vocab
  elif manifest is not None:
    tokenizer = tokenization.from_manifest(manifest, data_dir)
    origin = manifest.vocab_path(data_dir)
  elif recorded.get("vocab_file") and tf.io.gfile.exists(os.path.join(run.model_dir, recorded["vocab_file"])):
    # A run that carries its vocab (e.g. converted from another framework).
    origin = os.path.join(run.model_dir, recorded["vocab_file"])
    tokenizer = tokenization.load_tokenizer(origin, recorded.get("vocab_type", tokenization.WORDPIECE),
                                            recorded.get("do_lower_case", True))
  else:
    raise RunError(f"the pretraining data dir {run.data_dir!r} named in {run.info_path} has no "
                               "manifest here; pass --vocab=<the vocab file the model was pretrained with>")
  vocab_size = run.vocab_size()
  if tokenizer.vocab_size != vocab_size:
    raise RunError(f"vocab {origin} has {tokenizer.vocab_size} tokens but the checkpoint's embedding "
                               f"table has {vocab_size} rows; use the vocab the model was pretrained with")
  return tokenizer
