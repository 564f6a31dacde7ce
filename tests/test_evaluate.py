"""Held-out evaluation: each objective's own metrics and its encoder's health, the same numbers from the
trainer (its return value and its eval/ TensorBoard events) and the CLI."""
import glob
import json
import os

import numpy as np
import pytest

from tpu_electra import evaluate

OWN_METRICS = {
    "bert": {"loss", "mlm_loss", "mlm_accuracy"},
    "electra": {"loss", "mlm_loss", "rtd_loss", "generator_accuracy", "discriminator_accuracy", "discriminator_auc"},
    "ale": {"loss", "mlm_loss", "rtd_loss", "generator_accuracy", "discriminator_accuracy", "discriminator_auc"},
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
  # The kept encoder's health, for every objective: the embedding output, each of the smoke encoder's
  # layers and the top one again as "final".
  parts = ["embedding", "final"] + [f"layer_{i}" for i in range(_num_layers(tmp_path / f"{objective}_model"))]
  assert {f"health/{m}_{p}" for m in ("cosine", "effective_rank") for p in parts} <= set(from_trainer)
  for part in parts:
    assert -1.0 <= from_trainer[f"health/cosine_{part}"] <= 1.0
    assert 1.0 <= from_trainer[f"health/effective_rank_{part}"] <= 16  # The hidden size (8 for the embedding).
  assert from_trainer["health/effective_rank_final"] == from_trainer[f"health/effective_rank_{parts[-1]}"]
  # The trainer wrote them as TensorBoard scalars in eval/, as every metric the evaluator returns.
  assert {"health/cosine_final", "health/effective_rank_embedding"} <= _event_tags(tmp_path / f"{objective}_model")

  model_dir = str(tmp_path / f"{objective}_model")
  assert evaluate.cli(["evaluate", f"--model_dir={model_dir}"]) == 0
  printed = json.loads(capsys.readouterr().out)
  with open(os.path.join(model_dir, "eval", "metrics-3.json")) as f:
    written = json.load(f)
  assert printed == written and written["step"] == 3
  # The same fixed batches, masks and sampling noise, the same weights: the same numbers.
  for name, value in from_trainer.items():
    assert written["metrics"][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def _num_layers(model_dir):
  with open(os.path.join(model_dir, "run.json")) as f:
    return json.load(f)["encoder_config"]["num_layers"]


def _event_tags(model_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tags = set()
  for path in glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(value.tag for value in event.summary.value)
  return tags


def test_evaluating_a_missing_run_fails_in_one_line(tmp_path, capsys):
  assert evaluate.cli(["evaluate", f"--model_dir={tmp_path / 'nothing'}"]) == 1
  error = capsys.readouterr().err.strip()
  assert error.startswith("error: ") and "\n" not in error


def test_checkpoint_step_is_read_from_the_prefix():
  assert evaluate.checkpoint_step("/runs/x/ckpt-1200") == 1200
