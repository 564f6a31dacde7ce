"""`run.json`: what a run is, written beside its checkpoints and `operative_config.gin`.

Every pretraining and fine-tuning run writes one. Whatever loads a run later (fine-tuning, export,
scoring, evaluation, continued pretraining) reads this file, never the gin config: gin records how
a run was configured, run.json what it is (the objective and its resolved arguments, the encoder
actually built, the data, the seed and the library versions).
"""
import dataclasses
import hashlib
import importlib.metadata
import json
import platform
from typing import Any, Dict, Optional

from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib

RUN_INFO_NAME = "run.json"
PRETRAINING = "pretraining"
FORMAT_VERSION = 1
# The distributions whose versions decide what a checkpoint means and how it was trained.
_VERSIONED_DISTRIBUTIONS = ("tpu_electra", "tensorflow", "tf-keras", "tf-models-official", "tensorflow-text",
                            "gin-config", "numpy")


class RunInfoError(ValueError):
  """A run.json that is missing, unreadable, or of a format this tpu_electra does not read."""


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
  with fileio.open_text(path) as f:
    record = fileio.parse_json_object(f.read(), path, RunInfoError, "restore it from a copy of the run")
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
    with fileio.open_text(path) as f:
      text = f.read()
    manifest = manifest_lib.Manifest.from_json(text, origin=path)
    record.update(manifest_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
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
