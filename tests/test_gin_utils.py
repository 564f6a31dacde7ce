"""Strict gin: typos are errors that name the binding, never silent defaults."""
import gin
import pytest

import tpu_electra.pretrain  # noqa: F401  (registers the configurables)
from tpu_electra import gin_utils


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_files_resolve_relative_to_the_gin_directory():
  gin_utils.parse(["smoke/electra.gin"], ["TRAIN_STEPS = 7"])
  assert gin.query_parameter("pretrain.train_steps").scoped_selector == "TRAIN_STEPS/gin.macro"
  assert gin.query_parameter("TRAIN_STEPS/macro.value") == 7


def test_unknown_configurable_is_an_error_naming_it():
  with pytest.raises(gin_utils.GinConfigError, match=r"--gin_param 'Electraa.rtd_weight = 1.0'.*No configurable matching 'Electraa'"):
    gin_utils.parse(["smoke/electra.gin"], ["Electraa.rtd_weight = 1.0"])


def test_unknown_parameter_is_an_error_naming_it():
  with pytest.raises(gin_utils.GinConfigError, match="doesn't have a parameter named 'rtd_wieght'"):
    gin_utils.parse(["smoke/electra.gin"], ["Electra.rtd_wieght = 1.0"])


def test_a_macro_no_config_reads_is_an_error_naming_it():
  with pytest.raises(gin_utils.GinConfigError, match="sets macro TRAIN_STESP but no loaded gin file uses %TRAIN_STESP"):
    gin_utils.parse(["smoke/electra.gin"], ["TRAIN_STESP = 10"])


def test_missing_gin_file_is_an_error_naming_it():
  with pytest.raises(gin_utils.GinConfigError, match="gin file 'smoke/nope.gin' not found"):
    gin_utils.parse(["smoke/nope.gin"], [])


def test_every_shipped_experiment_and_smoke_config_parses():
  import glob, os  # pylint: disable=g-import-not-at-top,multiple-imports
  for path in sorted(glob.glob(os.path.join(gin_utils.GIN_DIR, "experiments", "*.gin")) +
                     glob.glob(os.path.join(gin_utils.GIN_DIR, "smoke", "*.gin"))):
    gin.clear_config()
    gin_utils.parse([path], [])
    assert gin.query_parameter("pretrain.objective") is not None, path
