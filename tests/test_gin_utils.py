"""Strict gin: typos are errors that name the binding, never silent defaults."""
import os

import gin
import pytest

import tpu_electra
import tpu_electra.pretrainer  # noqa: F401  (registers the configurables)
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


def test_a_misspelt_macro_names_the_closest_known_one_and_not_itself():
  with pytest.raises(gin_utils.GinConfigError) as error:
    gin_utils.parse(["smoke/electra.gin"], ["TRAIN_STEP = 5"])
  message = str(error.value)
  assert "sets macro TRAIN_STEP but no loaded gin file uses %TRAIN_STEP; did you mean TRAIN_STEPS?" in message
  listed = message.split("(macros the loaded files use: ")[1].rstrip(")").split(", ")
  assert "TRAIN_STEPS" in listed and "TRAIN_STEP" not in listed


def test_shipped_names_and_absolute_paths_resolve(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # any directory: the configs ship inside the package
  expected = os.path.join(gin_utils.GIN_DIR, "smoke", "electra.gin")
  assert gin_utils.resolve_gin_file("smoke/electra.gin") == expected
  assert gin_utils.resolve_gin_file(expected) == expected
  own = tmp_path / "own.gin"
  own.write_text("include 'smoke/electra.gin'\nTRAIN_STEPS = 3\n")
  gin_utils.parse([str(own)], [])  # its include is found on the search path
  assert gin.query_parameter("TRAIN_STEPS/macro.value") == 3


def test_configs_are_package_data():
  assert gin_utils.GIN_DIR == os.path.join(os.path.dirname(tpu_electra.__file__), "gin")
  for name in ("smoke/electra.gin", "experiments/electra_small.gin", "finetune/cola.gin", "pretrain.gin"):
    assert os.path.isfile(os.path.join(gin_utils.GIN_DIR, name)), name


def test_missing_gin_file_is_an_error_naming_it():
  with pytest.raises(gin_utils.GinConfigError, match="gin file 'smoke/nope.gin' not found"):
    gin_utils.parse(["smoke/nope.gin"], [])


def test_every_shipped_experiment_and_smoke_config_parses():
  import glob  # pylint: disable=g-import-not-at-top
  for path in sorted(glob.glob(os.path.join(gin_utils.GIN_DIR, "experiments", "*.gin")) +
                     glob.glob(os.path.join(gin_utils.GIN_DIR, "smoke", "*.gin"))):
    gin.clear_config()
    gin_utils.parse([path], [])
    assert gin.query_parameter("pretrain.objective") is not None, path
