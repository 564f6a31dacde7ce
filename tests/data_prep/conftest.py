"""Fixtures for data_prep tests: the embedded Wikipedia fragment, fetched once per machine."""
import os

import pytest

from data_prep import embedded


@pytest.fixture(scope="session")
def embedded_dump(request):
  """Path of the real dump fragment; cached under the pytest cache unless TPU_ELECTRA_CACHE is set.

  The first run on a machine fetches the gensim wheel from PyPI (about 28 MB), later runs are offline.
  """
  with pytest.MonkeyPatch.context() as patch:
    if not os.environ.get(embedded.CACHE_ENV):
      patch.setenv(embedded.CACHE_ENV, str(request.config.cache.mkdir("tpu_electra_embedded")))
    yield embedded.fetch()
