"""Adding an objective touches no library file: a class module, a gin file and this test."""
import json
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from tpu_electra import evaluate
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra import objectives
from tpu_electra import pretrainer
from tpu_electra.export import cli as export_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GIN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sixth.gin")


@pytest.fixture(autouse=True)
def _importable_and_clean(monkeypatch):
  if REPO not in sys.path:  # The gin file imports tests.objectives.sixth_objective.
    monkeypatch.syspath_prepend(REPO)
  gin.clear_config()
  yield
  gin.clear_config()


def _parse(data_dir, *params):
  gin.clear_config()
  gin_utils.parse([GIN_FILE], [f"DATA_DIR = '{data_dir}'", *params])


def test_the_flops_cli_counts_it_and_the_benchmarks_list_it(token_data_dir, capsys):
  assert flops.cli(["flops", f"--gin_file={GIN_FILE}", f"--gin_param=DATA_DIR = '{token_data_dir}'",
                    "--train_flops=1e12"]) == 0
  out = capsys.readouterr().out
  assert "objective random_rtd (RandomReplacementDetection)" in out and "steps within TRAIN_FLOPS=1e+12" in out
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  assert "random_rtd" in common.objective_names() and "random_rtd" in objectives.names()


def test_it_pretrains_within_a_flops_budget_then_exports_and_evaluates(token_data_dir, tmp_path, capsys):
  _parse(token_data_dir)
  per_step = flops.report_from_gin().per_step
  model_dir = str(tmp_path / "run")
  # TRAIN_FLOPS decides the steps: 2.5 steps' worth is 2 steps.
  _parse(token_data_dir, "TRAIN_STEPS = None", f"TRAIN_FLOPS = {2.5 * per_step!r}", "EVAL_EVERY = 2",
         "CHECKPOINT_EVERY = 2")
  metrics = pretrainer.pretrain(model_dir=model_dir)
  gin.clear_config()
  assert np.isfinite(metrics["loss"]) and "eval/discriminator_auc" in metrics
  with open(os.path.join(model_dir, "run.json")) as f:
    info = json.load(f)
  assert info["train_steps"] == 2 and info["objective"]["name"] == "random_rtd"
  assert info["objective"]["arguments"] == {"rtd_weight": 1.0, "name": "random_rtd"}

  out = str(tmp_path / "saved")
  assert export_cli.cli(["export", f"--model_dir={model_dir}", "--format=saved_model", f"--output_dir={out}"]) == 0
  ids = tf.constant([[2, 10, 11, 3, 0]])
  served = tf.saved_model.load(out).signatures["serving_default"](
      input_word_ids=ids, input_mask=tf.cast(ids > 0, tf.int32), input_type_ids=tf.zeros_like(ids))
  assert served["rtd_logits"].shape == (1, 5)
  assert export_cli.cli(["export", f"--model_dir={model_dir}", "--format=huggingface",
                     f"--output_dir={tmp_path / 'hf'}"]) == 0
  with open(tmp_path / "hf" / "config.json") as f:
    assert json.load(f)["architectures"] == ["ElectraForPreTraining"]

  capsys.readouterr()
  assert evaluate.cli(["evaluate", f"--model_dir={model_dir}"]) == 0
  result = json.loads(capsys.readouterr().out)
  assert result["step"] == 2 and result["eval_batches"] == 1 and result["batch_size"] == 4
  assert {"loss", "rtd_loss", "discriminator_auc"} <= set(result["metrics"])
