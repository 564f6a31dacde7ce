"""The equal-compute comparison: held-out split, the probe's corruption, and the report end to end."""
import json
import math
import os

import numpy as np

from benchmarks import compare_objectives

SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}


def _rows(examples):
  return [tuple(row) for row in examples["input_ids"]]


def test_heldout_split_moves_examples_out_of_training_without_losing_or_copying_any(token_data_dir, tmp_path):
  # 40 of 64 examples in two shards of 32: the last shard is held out whole and the first is cut.
  split = compare_objectives.split_heldout(token_data_dir, str(tmp_path), num_heldout=40)
  train = _rows(compare_objectives.read_examples(split.train_dir))
  heldout = _rows(compare_objectives.read_examples(split.heldout_dir))
  everything = _rows(compare_objectives.read_examples(token_data_dir))
  assert (len(train), len(heldout), split.num_train, split.num_heldout) == (24, 40, 24, 40)
  assert not set(train) & set(heldout)
  assert sorted(train + heldout) == sorted(everything)
  assert heldout == everything[-40:]


def test_a_detector_that_sees_only_the_token_scores_chance_on_the_probe_corruption():
  # The halves differ in vocabulary (as held-out text does by topic) and one token is very
  # frequent: drawing from all held-out tokens would make identity anti-informative on the test
  # half (AUC about 0.36 here), labelling by "differs from the original" would make a frequent
  # token look original (about 0.55). Token identity alone must score chance.
  rng = np.random.default_rng(0)
  num_sequences, length = 300, 48
  shape = (num_sequences // 2, length)
  fit_half = np.where(rng.random(shape) < 0.4, 5, rng.integers(6, 41, shape))
  test_half = np.where(rng.random(shape) < 0.4, 5, rng.integers(25, 61, shape))
  ids = np.concatenate([fit_half, test_half]).astype(np.int32)
  ids[:, 0], ids[:, -1] = SPECIAL_IDS["[CLS]"], SPECIAL_IDS["[SEP]"]
  data = compare_objectives.corrupt_for_probe(
      {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}, SPECIAL_IDS, seed=0)
  assert data.fit_sequences == num_sequences // 2
  assert abs(data.labels[data.scored].mean() - compare_objectives.PROBE_REPLACE_RATE) < 0.01
  assert not data.labels[~data.scored].any()
  features = np.eye(61, dtype=np.float32)[data.input_ids[data.scored]]
  labels = data.labels[data.scored]
  fit = np.nonzero(data.scored)[0] < data.fit_sequences
  probe = compare_objectives.fit_logistic_regression(features[fit], labels[fit])
  assert abs(compare_objectives.roc_auc(probe.logits(features[~fit]), labels[~fit]) - 0.5) < 0.03


def test_roc_auc_counts_ties_as_half_and_is_undefined_with_one_class():
  assert compare_objectives.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
  assert compare_objectives.roc_auc(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 0])) == 0.75
  assert math.isnan(compare_objectives.roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_equal_budget_comparison_gives_each_objective_its_steps_and_writes_table_json_and_plot(token_data_dir,
                                                                                            tmp_path):
  output_dir = str(tmp_path / "compare")
  budget = 5e8
  results = compare_objectives.compare(
      token_data_dir, budget, output_dir, objectives=["bert", "electra"], heldout_examples=16, num_bootstrap=20,
      gin_params=["SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "train.steps_per_loop = 1",
                  "train.log_every_secs = 0.0"])

  runs = results["objectives"]
  for run in runs.values():
    assert run["steps"] == math.floor(budget / run["flops_per_step"]) >= 2
    assert run["train_flops"] <= budget
    numbers = [run["probe"]["auc"], run["probe"]["auc_low"], run["probe"]["auc_high"], run["probe_at_init"]["auc"]]
    numbers += list(run["heldout_metrics"].values()) + list(run["final_train_metrics"].values())
    assert all(math.isfinite(x) for x in numbers)
    assert run["curves"]["loss"][-1][0] == run["steps"]
  # ELECTRA runs a generator as well: it costs more per step, so it gets fewer steps.
  assert runs["electra"]["steps"] < runs["bert"]["steps"]
  assert {"rtd_loss", "discriminator_auc"} <= set(runs["electra"]["heldout_metrics"])

  with open(os.path.join(output_dir, "results.json")) as f:
    assert json.load(f)["objectives"]["bert"]["steps"] == runs["bert"]["steps"]
  with open(os.path.join(output_dir, "results.md")) as f:
    table = f.read()
  assert f"| bert | {runs['bert']['steps']} |" in table and f"| electra | {runs['electra']['steps']} |" in table
  with open(os.path.join(output_dir, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
