"""Held-out evaluation: each objective's own metrics, the same numbers from the trainer and the CLI."""
import json
import os

import numpy as np
import pytest

from tpu_electra import evaluate

OWN_METRICS = {
    "bert": {"loss", "mlm_loss", "mlm_accuracy"},
    "electra": {"loss", "mlm_loss", "rtd_loss", "generator_accuracy", "discriminator_accuracy", "discriminator_auc"},
    "teams": {"loss", "mlm_loss", "rtd_loss", "mws_loss", "mws_accuracy", "discriminator_auc"},
    "script": {"loss", "mlm_loss", "disc_loss", "mlm_accuracy", "discriminator_auc"},
}


@pytest.mark.parametrize("objective", sorted(OWN_METRICS))
def test_the_trainer_and_the_cli_report_each_objectives_own_held_out_metrics_alike(
    objective, pretrain_smoke_config, tmp_path, capsys):
  trained = pretrain_smoke_config(objective)  # 3 steps; evaluates at the last one.
  from_trainer = {k[len("eval/"):]: v for k, v in trained.items() if k.startswith("eval/")}
  assert OWN_METRICS[objective] <= set(from_trainer)
  if objective == "bert":
    assert "discriminator_auc" not in from_trainer
  assert all(np.isfinite(v) for v in from_trainer.values())

  model_dir = str(tmp_path / f"{objective}_model")
  assert evaluate.cli(["evaluate", f"--model_dir={model_dir}"]) == 0
  printed = json.loads(capsys.readouterr().out)
  with open(os.path.join(model_dir, "eval", "metrics-3.json")) as f:
    written = json.load(f)
  assert printed == written and written["step"] == 3
  # The same fixed batches, masks and sampling noise, the same weights: the same numbers.
  for name, value in from_trainer.items():
    assert written["metrics"][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_evaluating_a_missing_run_fails_in_one_line(tmp_path, capsys):
  assert evaluate.cli(["evaluate", f"--model_dir={tmp_path / 'nothing'}"]) == 1
  error = capsys.readouterr().err.strip()
  assert error.startswith("error: ") and "\n" not in error


def test_checkpoint_step_is_read_from_the_prefix():
  assert evaluate.checkpoint_step("/runs/x/ckpt-1200") == 1200
