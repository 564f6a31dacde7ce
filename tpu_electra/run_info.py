"""`run.json`: what a run is, written beside its checkpoints and `operative_config.gin`.

Every pretraining and fine-tuning run writes one. Whatever loads a run later (fine-tuning, export,
scoring, evaluation, continued pretraining) reads this file, never the gin config: gin records how
a run was configured, run.json what it is (the objective and its resolved arguments, the encoder
actually built, the data, the seed and the library versions).
"""
import importlib.metadata
import json
import platform
from typing import Any, Dict, Optional

from tpu_electra import fileio

RUN_INFO_NAME = "run.json"
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
    text = f.read()
  try:
    record = json.loads(text)
  except json.JSONDecodeError as e:
    raise RunInfoError(f"{path} is not valid JSON ({e}); restore it from a copy of the run") from None
  if not isinstance(record, dict):
    raise RunInfoError(f"{path} is not a JSON object; restore it from a copy of the run")
  if record.get("format_version") != FORMAT_VERSION:
    raise RunInfoError(f"{path} has format_version {record.get('format_version')!r}, this tpu_electra reads "
                       f"{FORMAT_VERSION}; use the tpu_electra version that wrote it")
  return record
