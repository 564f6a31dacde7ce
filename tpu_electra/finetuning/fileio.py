"""The few file operations fine-tuning needs, for local paths and for `gs://`-style URLs.

Local paths go through the standard library so that readers, metrics and reports work (and are
tested) without TensorFlow. Paths with a URL scheme go through `tf.io.gfile`, imported only then,
because on a TPU VM the data and the run directory usually live in a bucket.
"""
import glob as _glob
import os
import re
import uuid
from typing import List, TextIO

_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: str) -> bool:
  return bool(_URL_SCHEME.match(path))


def _gfile():
  import tpu_electra  # noqa: F401  (sets the Keras environment before TensorFlow loads)
  import tensorflow as tf
  return tf.io.gfile


def open_text(path: str) -> TextIO:
  """Opens a UTF-8 text file for reading, keeping tabs and line ends as they are."""
  if is_url(path):
    return _gfile().GFile(path, "r")
  # newline="" keeps "\r" inside TSV fields from being taken for a line end by csv.
  return open(path, "r", encoding="utf-8", newline="")


def glob(pattern: str) -> List[str]:
  """Sorted matches, so that readers see files in the same order on every host."""
  if is_url(pattern):
    return sorted(_gfile().glob(pattern))
  return sorted(_glob.glob(pattern))


def exists(path: str) -> bool:
  if is_url(path):
    return _gfile().exists(path)
  return os.path.exists(path)


def size(path: str) -> int:
  """Bytes in a file."""
  if is_url(path):
    return _gfile().stat(path).length
  return os.path.getsize(path)


def join(*parts: str) -> str:
  # os.path.join is also right for URLs on POSIX, where the separator is "/".
  return os.path.join(*parts)


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to a temporary file beside `path` and renames it over `path`.

  A reader never sees a half-written report, and a preempted job leaves the previous version
  intact rather than a truncated one.
  """
  directory = os.path.dirname(path)
  tmp_path = os.path.join(directory, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
  if is_url(path):
    gfile = _gfile()
    if directory:
      gfile.makedirs(directory)
    with gfile.GFile(tmp_path, "w") as f:
      f.write(text)
    gfile.rename(tmp_path, path, overwrite=True)
    return
  if directory:
    os.makedirs(directory, exist_ok=True)
  try:
    with open(tmp_path, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp_path, path)
  finally:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
