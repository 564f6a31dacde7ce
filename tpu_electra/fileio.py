"""The file operations the library shares, for local paths and for `gs://`-style URLs: atomic writes,
output directories checked before any work, and the readers fine-tuning needs.

Local paths go through the standard library so that readers, metrics and reports work (and are
tested) without TensorFlow. Paths with a URL scheme go through `tf.io.gfile`, imported only then,
because on a TPU VM the data and the run directory usually live in a bucket.
"""
import contextlib
import errno
import glob as _glob
import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from typing import IO, Any, Dict, Iterator, List, TextIO, Tuple, Type, Union

_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: str) -> bool:
  return bool(_URL_SCHEME.match(path))


def _gfile():
  import tensorflow as tf
  return tf.io.gfile


def open_text(path: str) -> TextIO:
  """Opens a UTF-8 text file for reading, keeping tabs and line ends as they are."""
  if is_url(path):
    return _gfile().GFile(path, "r")
  # newline="" keeps "\r" inside TSV fields from being taken for a line end by csv.
  return open(path, "r", encoding="utf-8", newline="")


def glob(pattern: str) -> List[str]:
  """Sorted matches, so that readers see files in the same order on every host; locally, as
  tf.io.gfile.glob, `*` matches hidden names too."""
  if is_url(pattern):
    return sorted(_gfile().glob(pattern))
  return sorted(_glob.glob(pattern, include_hidden=True))


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


def file_sha256(path: str) -> str:
  """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with (_gfile().GFile(path, "rb") if is_url(path) else open(path, "rb")) as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _tf_errors():
  """tf.errors once TensorFlow is imported (only then can its file operations have raised), else None."""
  return getattr(sys.modules.get("tensorflow"), "errors", None)


def errors() -> Tuple[type, ...]:
  """The exceptions a failed read or write raises: OSError, and TensorFlow's once it is imported."""
  tf_errors = _tf_errors()
  return (OSError,) if tf_errors is None else (OSError, tf_errors.OpError)


def is_disk_full(error: BaseException) -> bool:
  """Whether a write failed for want of space: ENOSPC or a quota (TensorFlow reports both as
  ResourceExhaustedError)."""
  tf_errors = _tf_errors()
  if tf_errors is not None and isinstance(error, tf_errors.ResourceExhaustedError):
    return True
  return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def not_found_errors() -> Tuple[type, ...]:
  """The exceptions a missing file raises: FileNotFoundError, and TensorFlow's once it is imported."""
  tf_errors = _tf_errors()
  return (FileNotFoundError,) if tf_errors is None else (FileNotFoundError, tf_errors.NotFoundError)


def open_file(path: str, mode: str = "rb") -> IO:
  """Python's own file for local paths (faster line reading), tf.io.gfile for gs:// and friends."""
  if is_url(path):
    return _gfile().GFile(path, mode)
  if "b" in mode:
    return open(path, mode)  # pylint: disable=unspecified-encoding
  # As GFile: UTF-8, and lines end at "\n" only.
  return open(path, mode, encoding="utf-8", newline="" if "r" in mode else "\n")


def isdir(path: str) -> bool:
  return _gfile().isdir(path) if is_url(path) else os.path.isdir(path)


def listdir(path: str) -> List[str]:
  return _gfile().listdir(path) if is_url(path) else os.listdir(path)


def walk(directory: str) -> Iterator[Tuple[str, List[str], List[str]]]:
  """(root, dirs, files) top-down; editing `dirs` in place prunes the walk."""
  if is_url(directory):
    return _gfile().walk(directory)
  return os.walk(directory, followlinks=True)


def makedirs(path: str) -> None:
  if is_url(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
  if is_url(path):
    _gfile().remove(path)
  else:
    os.remove(path)


def rename(source: str, destination: str) -> None:
  """Replaces `destination` if it exists."""
  if is_url(source) or is_url(destination):
    _gfile().rename(source, destination, overwrite=True)
  else:
    os.replace(source, destination)


def copy(source: str, destination: str) -> None:
  """Replaces `destination` if it exists."""
  if is_url(source) or is_url(destination):
    _gfile().copy(source, destination, overwrite=True)
  else:
    shutil.copyfile(source, destination)


def rmtree(path: str) -> None:
  if is_url(path):
    _gfile().rmtree(path)
  else:
    shutil.rmtree(path)


@contextlib.contextmanager
def atomic_writer(path: str, mode: str = "w") -> Iterator[IO]:
  """A file opened for writing (`mode` "w" or "wb", as open_file) under a temporary name beside `path`,
  renamed over `path` when the block ends without an error and removed when it raises.

  A reader never sees a half-written file, and a preempted job leaves the previous version intact
  rather than a truncated one. The temporary name is unique, so concurrent writers never share one.
  """
  directory = os.path.dirname(path)
  tmp_path = os.path.join(directory, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
  if directory:
    makedirs(directory)
  try:
    with open_file(tmp_path, mode) as f:
      yield f
    rename(tmp_path, path)
  finally:
    if exists(tmp_path):
      remove(tmp_path)


def write_atomic(path: str, data: Union[str, bytes]) -> None:
  """Writes `data` (text as UTF-8, or bytes) to `path` through atomic_writer."""
  with atomic_writer(path, "wb" if isinstance(data, bytes) else "w") as f:
    f.write(data)


def write_text_atomic(path: str, text: str) -> None:
  write_atomic(path, text)


class OutputPathError(ValueError):
  """An output directory that cannot be created or written."""


def check_new_output_dir(output_dir: str, overwrite: bool) -> None:
  """An output written whole (export, conversion) goes to a directory that does not exist yet."""
  if exists(output_dir) and not overwrite:
    raise OutputPathError(f"{output_dir!r} already exists; choose another --output_dir or pass --overwrite")


def temporary_sibling(output_dir: str) -> str:
  """Where a directory is written before `move_into_place` renames it: a failed write leaves nothing."""
  return f"{output_dir.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"


def move_into_place(tmp_dir: str, output_dir: str) -> None:
  """Replaces `output_dir` (if any) by the finished `tmp_dir`."""
  if exists(output_dir):
    rmtree(output_dir)
  rename(tmp_dir, output_dir)


def make_output_dir(path: str, flag: str = "--model_dir") -> None:
  """Creates `path` and checks that it takes a file, or raises OutputPathError in one line naming `flag`.

  An unusable output path then fails before any work, not after an hour of it.
  """
  # A name of its own: the workers of a multi-worker run probe the same directory at once.
  probe = join(path, f".write_probe.{uuid.uuid4().hex}")
  try:
    if is_url(path):
      gfile = _gfile()
      gfile.makedirs(path)
      with gfile.GFile(probe, "w") as f:
        f.write("")
      gfile.remove(probe)
    else:
      os.makedirs(path, exist_ok=True)
      with open(probe, "w", encoding="utf-8"):
        pass
      os.remove(probe)
  except Exception as e:  # pylint: disable=broad-except  (OSError, or tf.errors.OpError for URLs)
    reason = (getattr(e, "message", None) or str(e)).strip()
    reason = reason.splitlines()[0] if reason else type(e).__name__
    raise OutputPathError(f"cannot write to {flag}={path!r} ({reason}); choose a directory you can create and "
                          "write (local or gs://), or fix its permissions") from None


def parse_json_object(text: str, origin: str, error: Type[Exception], remedy: str = "") -> Dict[str, Any]:
  """The JSON object in `text`, or `error` in one line: what is wrong with `origin`, then `remedy`."""
  remedy = f"; {remedy}" if remedy else ""
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise error(f"{origin} is not valid JSON ({e}){remedy}") from None
  except RecursionError:
    raise error(f"{origin} is not valid JSON (nested too deeply){remedy}") from None
  if not isinstance(value, dict):
    raise error(f"{origin} is not a JSON object{remedy}")
  return value


def decode_utf8(data: bytes, origin: str, error: Type[Exception], remedy: str = "") -> str:
  """`data` as text, or `error` in one line naming `origin` and the first byte that is not UTF-8."""
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    problem = f"{origin} is not UTF-8 text (byte {data[e.start:e.start + 1]!r} at offset {e.start})"
    raise error(f"{problem}; {remedy}" if remedy else problem) from None


def read_json_object(path: str, error: Type[Exception], remedy: str = "") -> Dict[str, Any]:
  """The JSON object in the file `path` (local or a URL), or `error` in one line naming it: not UTF-8,
  not JSON, or not an object; then `remedy`. A file that cannot be read raises errors() as they are."""
  with open_file(path, "rb") as f:
    data = f.read()
  return parse_json_object(decode_utf8(data, path, error, remedy), path, error, remedy)
