"""`run.json`: what a run is, written beside its checkpoints and `operative_config.gin`.

Every pretraining and fine-tuning run writes one. Whatever loads a run later (fine-tuning, export,
scoring, evaluation, continued pretraining) reads this file, never the gin config: gin records how
a run was configured, run.json what it is (the objective and its resolved arguments, the encoder
actually built, the data, the seed, the optimizer, the masking, the input pipeline and the library
versions).

A pretraining record describes every checkpoint of its model dir. A re-run of the dir compares its
settings with the recorded ones (`changes`): what changes training (all but FREE_SETTINGS) may only
change with the re-run's explicit consent, and every change, consented or free, is kept in the
record's `history` with the step it applies from (`continued_record`).
"""
import dataclasses
import hashlib
import importlib.metadata
import inspect
import json
import platform
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import gin

from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib

RUN_INFO_NAME = "run.json"
PRETRAINING = "pretraining"
FORMAT_VERSION = 1
# The distributions whose versions decide what a checkpoint means and how it was trained.
_VERSIONED_DISTRIBUTIONS = ("tpu_electra", "tensorflow", "tf-keras", "tf-models-official", "tensorflow-text",
                            "gin-config", "numpy")


# Settings a re-run may change without consent (the change is still recorded in `history`): they
# decide when the run stops, evaluates and where it finds its data, not what a step computes.
# TRAIN_STEPS / TRAIN_FLOPS extend a run (raise TRAIN_STEPS to train further), which moves the end
# of the learning-rate decay: the history says from which step.
FREE_SETTINGS = ("train_steps", "train_flops", "eval_every", "eval_batches", "data.data_dir")
# What the record says about itself or about where the run started, not how it trains.
_NOT_SETTINGS = ("format_version", "versions", "history", "init_checkpoint", "upgraded_from")
# Kept from the previous record when a re-run rewrites it.
_CARRIED = ("init_checkpoint", "upgraded_from")


class RunInfoError(ValueError):
  """A run.json that is missing, unreadable, or of a format this tpu_electra does not read."""


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
  return fileio.join(model_dir, RUN_INFO_NAME)


def write_run_info(model_dir: str, info: Dict[str, Any]) -> str:
  """Writes `info` (JSON-serializable), with the format version and library versions, atomically."""
  record = {"format_version": FORMAT_VERSION, **info, "versions": library_versions()}
  path = path_of(model_dir)
  fileio.write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
  return path


def read_run_info(model_dir: str) -> Optional[Dict[str, Any]]:
  """The run.json of `model_dir`, or None when it has none."""
  path = path_of(model_dir)
  if not fileio.exists(path):
    return None
  record = fileio.read_json_object(path, RunInfoError, "restore it from a copy of the run")
  if record.get("format_version") != FORMAT_VERSION:
    raise RunInfoError(f"{path} has format_version {record.get('format_version')!r}, this tpu_electra reads "
                       f"{FORMAT_VERSION}; use the tpu_electra version that wrote it")
  return record


def objective_record(objective) -> Dict[str, Any]:
  """A registered objective (tpu_electra.objectives) as run.json records it: its registry name, where
  its class lives (so an objective defined outside tpu_electra is found again), its resolved arguments."""
  cls = type(objective)
  return {"name": objective.registry_name, "module": cls.__module__, "class": cls.__qualname__,
          "arguments": objective.arguments}


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
  `settings` (seed, batch_size, seq_length, train_steps, precision, ...)."""
  try:
    json.dumps(objective.arguments)
  except TypeError as e:
    raise ValueError(f"{type(objective).__name__}'s arguments must be JSON values to be recorded in "
                     f"{RUN_INFO_NAME}: {e}") from None
  return {"kind": PRETRAINING, "objective": objective_record(objective),
          "encoder_config": dataclasses.asdict(objective.encoder_config), "data": data_record(data_dir), **settings}


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
