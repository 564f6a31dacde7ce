"""Held-out evaluation: each objective's own metrics and its encoder's health, the same numbers from the
trainer (its return value and its eval/ TensorBoard events) and the CLI; the exact AUC."""
import glob
import json
import os

import numpy as np
import pytest
import tpu_electra  # noqa: F401
import tensorflow as tf

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


def _pairwise_auc(scores, labels, weights):
  """Mann-Whitney by brute force over all (positive, negative) pairs: win 1, tie 1/2."""
  pos = scores[(labels == 1) & (weights > 0)]
  neg = scores[(labels == 0) & (weights > 0)]
  if not len(pos) or not len(neg):
    return 0.5
  diff = pos[:, None].astype(np.float64) - neg[None, :]
  return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def _auc(scores, labels, weights=None):
  scores = np.asarray(scores, np.float32)
  weights = np.ones_like(scores) if weights is None else np.asarray(weights, np.float32)
  return float(evaluate.binary_auc(tf.constant(scores), tf.constant(np.asarray(labels, np.int32)),
                                     tf.constant(weights)).numpy())


def test_binary_auc_matches_pairwise_definition():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=200).astype(np.float32)
  labels = (rng.random(200) < 0.3).astype(np.float32)
  weights = (rng.random(200) < 0.8).astype(np.float32)
  auc = evaluate.binary_auc(tf.constant(scores), tf.constant(labels), tf.constant(weights)).numpy()
  assert abs(auc - _pairwise_auc(scores, labels, weights)) < 1e-5
  assert evaluate.binary_auc(tf.constant(scores), tf.zeros(200), tf.ones(200)).numpy() == 0.5


def test_binary_auc_of_a_constant_scorer_is_one_half():
  # Positives at the end of the sequence: ranking ties by position would give 1.0 here.
  labels = [0, 0, 0, 0, 0, 1, 1, 1]
  assert _auc(np.zeros(8), labels) == 0.5
  assert _auc(np.full(8, 3.25), labels[::-1]) == 0.5
  # Weight-0 entries with other scores do not break the tie among the valid ones.
  assert _auc([1.0, 1.0, 1.0, 1.0, 9.0, -9.0], [1, 0, 1, 0, 0, 1], [1, 1, 1, 1, 0, 0]) == 0.5


def test_binary_auc_counts_tied_pairs_as_half():
  # Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs: 0.9 beats both (2); each 0.5 positive
  # ties the 0.5 negative (1/2) and beats 0.1 (1): 2 + 2 * 1.5 = 5 of 3 * 2 = 6 pairs.
  # (The U statistic is an exact count; only the final division rounds, to float32.)
  assert _auc([0.5, 0.9, 0.1, 0.5, 0.5], [1, 1, 0, 0, 1]) == np.float32(5 / 6)
  # A tie group of two positives and two negatives between a lower negative and a higher
  # positive. Positives {1.0, 0.2, 0.2}, negatives {0.2, 0.2, 0.0}: 1.0 beats all three (3);
  # each 0.2 positive beats 0.0 (1) and ties two (2 * 1/2): 3 + 2 * 2 = 7 of 9 pairs.
  assert _auc([0.2, 1.0, 0.2, 0.0, 0.2, 0.2], [1, 1, 0, 0, 1, 0]) == np.float32(7 / 9)


def test_binary_auc_with_one_class_absent_is_one_half():
  assert _auc([0.1, 0.7, 0.3], [1, 1, 1]) == 0.5
  assert _auc([0.1, 0.7, 0.3], [0, 0, 0]) == 0.5
  # Present, but only with weight 0.
  assert _auc([0.1, 0.7, 0.3], [1, 0, 0], [0, 1, 1]) == 0.5
  assert _auc([], []) == 0.5


def test_binary_auc_agrees_with_pairwise_mann_whitney_on_heavily_tied_scores():
  for seed in range(8):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # Few distinct values (down to one), so most pairs tie; weights of either sign and zero.
    scores = rng.integers(0, int(rng.integers(1, 6)), size=n).astype(np.float32) / 4 - 0.5
    labels = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.int32)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0, -1.0], size=n).astype(np.float32)
    expected = _pairwise_auc(scores, labels, weights)
    assert abs(_auc(scores, labels, weights) - expected) < 1e-6, (seed, n)


def test_binary_auc_runs_under_xla_on_a_batch_shaped_input():
  rng = np.random.default_rng(3)
  scores = np.round(rng.normal(size=(4, 32)), 1).astype(np.float32)
  labels = (rng.random((4, 32)) < 0.2).astype(np.int32)
  weights = (rng.random((4, 32)) < 0.9).astype(np.float32)
  auc = tf.function(evaluate.binary_auc, jit_compile=True)(
      tf.constant(scores), tf.constant(labels), tf.constant(weights))
  assert abs(float(auc) - _pairwise_auc(scores.ravel(), labels.ravel(), weights.ravel())) < 1e-6
