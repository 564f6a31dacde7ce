"""The equal-compute comparison: the data's held-out split, seeds, eval curves, the probe, the report end to end."""
import json
import math
import os

import gin
import numpy as np
import pytest

from benchmarks import compare_objectives
from benchmarks import heldout_probe
from benchmarks import study_stats
from tests.conftest import write_token_data
from tpu_electra import evaluate
from tpu_electra.data import manifest as manifest_lib

SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
# Tiny runs on the token data: BERT gets 6 steps and ELECTRA 5 of this budget.
BUDGET = 8e8
TINY = ["SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "train.steps_per_loop = 1",
        "train.log_every_secs = 0.0"]


def _rows(input_ids):
  return {tuple(row) for row in input_ids}


def test_data_without_a_heldout_split_is_refused_in_one_line_saying_how_to_rebuild(tmp_path):
  data_dir = write_token_data(str(tmp_path / "no_eval"), num_eval=0)
  with pytest.raises(manifest_lib.DataError) as error:
    compare_objectives.compare(data_dir, BUDGET, str(tmp_path / "out"), objectives=["bert"], gin_params=TINY)
  message = str(error.value)
  assert "\n" not in message and "no held-out split" in message and "python -m data_prep.build" in message
  assert not os.path.exists(tmp_path / "out" / "runs")


def test_the_probe_reads_exactly_the_datas_heldout_shards(token_data_dir):
  manifest = manifest_lib.read_manifest(token_data_dir)
  heldout = heldout_probe.read_heldout_examples(token_data_dir)
  assert heldout["input_ids"].shape == (manifest.num_eval_examples, manifest.max_seq_length) == (32, 32)
  training = heldout_probe.pretraining.parse_example(
      [r.numpy() for r in heldout_probe.tf.data.TFRecordDataset(manifest.shard_paths(token_data_dir))],
      manifest.max_seq_length)["input_ids"].numpy()
  assert len(training) == manifest.num_examples == 64
  assert not _rows(heldout["input_ids"]) & _rows(training)


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
  data = heldout_probe.corrupt_for_probe(
      {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}, SPECIAL_IDS, seed=0)
  assert data.fit_sequences == num_sequences // 2
  assert abs(data.labels[data.scored].mean() - heldout_probe.REPLACE_RATE) < 0.01
  assert not data.labels[~data.scored].any()
  features = np.eye(61, dtype=np.float32)[data.input_ids[data.scored]]
  labels = data.labels[data.scored]
  fit = np.nonzero(data.scored)[0] < data.fit_sequences
  probe = heldout_probe.fit_logistic_regression(features[fit], labels[fit])
  assert abs(heldout_probe.roc_auc(probe.logits(features[~fit]), labels[~fit]) - 0.5) < 0.03


def test_roc_auc_counts_ties_as_half_and_is_undefined_with_one_class():
  assert heldout_probe.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
  assert heldout_probe.roc_auc(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 0])) == 0.75
  assert math.isnan(heldout_probe.roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_summaries_are_mean_std_and_t_interval_over_seeds_and_curves_average_the_common_steps():
  summary = study_stats.summarize([1.0, 2.0, 4.0])
  assert summary["n"] == 3 and summary["mean"] == pytest.approx(7 / 3)
  assert summary["std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
  single = study_stats.summarize([0.5])
  assert single["mean"] == 0.5 and single["n"] == 1 and math.isnan(single["std"])
  # The t interval of the mean: 7/3 ± t(0.975, 2) * std / sqrt(3), t(0.975, 2) = 4.3027 (a t table).
  assert study_stats.format_mean(summary) == "2.33 [-1.46, 6.13] (n=3)"
  assert study_stats.format_mean(single) == "0.5 (n=1)"
  # Seed 1 was evaluated at one more step (say, resumed and evaluated again): only common steps count.
  curves = compare_objectives.mean_curves([{"loss": [[2, 4.0], [4, 3.0]], "only_here": [[2, 1.0]]},
                                           {"loss": [[2, 6.0], [3, 9.0], [4, 1.0]]}], flops_per_step=10.0)
  assert set(curves) == {"loss"}
  assert curves["loss"]["steps"] == [2, 4] and curves["loss"]["flops"] == [20.0, 40.0]
  assert curves["loss"]["mean"] == [5.0, 2.0] and curves["loss"]["n"] == 2
  assert curves["loss"]["std"] == pytest.approx([math.sqrt(2), math.sqrt(2)])


def test_reserved_bindings_are_refused(token_data_dir, tmp_path):
  for binding in ("SEED = 3", "EVAL_EVERY = 2", "TRAIN_STEPS = 5"):
    with pytest.raises(ValueError, match="set by this script"):
      compare_objectives.compare(token_data_dir, BUDGET, str(tmp_path), objectives=["bert"],
                                 gin_params=TINY + [binding])


def test_the_budget_defaults_to_the_configs_own_which_must_agree(token_data_dir):
  configs = {name: compare_objectives.gin_utils.resolve_gin_file(f"experiments/cpu_{name}.gin")
             for name in ("bert", "electra")}
  budget = compare_objectives.configured_train_flops(configs, token_data_dir, [])
  assert budget > 0
  configs["ale"] = compare_objectives.gin_utils.resolve_gin_file("smoke/ale.gin")  # Sized by TRAIN_STEPS.
  with pytest.raises(ValueError, match="pass --train_flops"):
    compare_objectives.configured_train_flops(configs, token_data_dir, [])


def test_eval_points_spread_evaluations_over_the_run_ending_at_its_last_step():
  def evaluated(steps, points):  # The trainer evaluates every EVAL_EVERY steps and at the last step.
    return _expected_eval_steps(steps, compare_objectives.eval_every_for(steps, points))
  assert evaluated(271, 5) == [55, 110, 165, 220, 271]
  assert evaluated(270, 5) == [54, 108, 162, 216, 270]
  assert evaluated(10, 4) == [3, 6, 9, 10]
  assert evaluated(3, 5) == [1, 2, 3]


def _expected_eval_steps(steps, eval_every):
  return sorted(set(range(eval_every, steps + 1, eval_every)) | {steps})


def test_every_objective_trains_several_seeds_at_the_budget_and_reports_means_intervals_and_eval_curves(
    token_data_dir, tmp_path):
  output_dir = str(tmp_path / "compare")
  results = compare_objectives.compare(token_data_dir, BUDGET, output_dir, objectives=["bert", "electra"], seeds=2,
                                       eval_points=2, num_bootstrap=20, gin_params=TINY)
  runs = results["objectives"]
  assert (runs["bert"]["steps"], runs["electra"]["steps"]) == (6, 5)  # ELECTRA's generator costs FLOPs too.
  for name, run in runs.items():
    assert run["steps"] == math.floor(BUDGET / run["flops_per_step"]) and run["train_flops"] <= BUDGET
    assert run["eval_every"] == math.ceil(run["steps"] / 2)
    assert run["eval_batches"] == 32 // 8  # Every complete batch of the fixture's 32 held-out examples.
    assert [r["seed"] for r in run["per_seed"]] == [0, 1]
    for seed, one in enumerate(run["per_seed"]):
      run_dir = os.path.join(output_dir, "runs", name, f"seed_{seed}")
      assert one["run_dir"] == run_dir
      with open(os.path.join(run_dir, compare_objectives.RUN_RECORD)) as f:
        record = json.load(f)
      assert record["finished"] and record["seed"] == seed and record["eval_every"] == run["eval_every"]
      with open(os.path.join(run_dir, "operative_config.gin")) as f:
        assert f"SEED = {seed}" in f.read()
      # The curve from the run's eval/ events: every eval_every steps and the last step.
      for tag, points in one["eval_curves"].items():
        assert [s for s, _ in points] == _expected_eval_steps(run["steps"], run["eval_every"]), tag
        # The final numbers (pretrain()'s eval/ entries) are the curve's last point.
        assert one["final_eval"][tag] == pytest.approx(points[-1][1], rel=1e-5)
      assert all(math.isfinite(v) for v in one["final_eval"].values())
      assert one["train_curves"]["loss"][-1][0] == run["steps"]
    # Other seeds, other runs: initialization, data order, masks and dropout all differ.
    first, second = run["per_seed"]
    assert first["final_eval"]["loss"] != second["final_eval"]["loss"]
    assert first["probe"]["auc"] != second["probe"]["auc"]
    # The summaries are over the seeds.
    for metric, summary in run["final_eval"].items():
      values = [one["final_eval"][metric] for one in run["per_seed"]]
      assert summary["values"] == values and summary["n"] == 2
      assert summary["mean"] == pytest.approx(np.mean(values))
      assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert run["probe_auc"]["values"] == [one["probe"]["auc"] for one in run["per_seed"]]
    curve = run["eval_curves"]["loss"]
    assert curve["steps"] == _expected_eval_steps(run["steps"], run["eval_every"])
    assert curve["flops"] == [s * run["flops_per_step"] for s in curve["steps"]]
    assert curve["mean"][-1] == pytest.approx(np.mean([one["eval_curves"]["loss"][-1][1] for one in run["per_seed"]]))
  assert runs["electra"]["eval_curves"]["loss"]["steps"] == [3, 5]
  assert {"rtd_loss", "discriminator_auc", "mlm_loss"} <= set(runs["electra"]["final_eval"])
  assert "mlm_accuracy" in runs["bert"]["final_eval"]

  # The final numbers are what tpu_electra.evaluate finds on the run's last checkpoint.
  bert_seed_1 = runs["bert"]["per_seed"][1]
  independent = evaluate.evaluate_run(bert_seed_1["run_dir"], eval_batches=4, batch_size=8,
                                      output=str(tmp_path / "eval.json"))
  for metric, value in bert_seed_1["final_eval"].items():
    assert independent["metrics"][metric] == pytest.approx(value, rel=1e-4), metric

  with open(os.path.join(output_dir, "results.json")) as f:
    assert json.load(f)["objectives"]["bert"]["final_eval"]["loss"]["n"] == 2
  with open(os.path.join(output_dir, "results.md")) as f:
    table = f.read()
  assert f"| bert | {runs['bert']['steps']} |" in table and f"| electra | {runs['electra']['steps']} |" in table
  loss = runs["bert"]["final_eval"]["loss"]
  assert f"| bert | loss | {loss['mean']:.4g} [{loss['low']:.4g}, {loss['high']:.4g}] (n=2) |" in table
  assert "| bert | " in table.split("cosine_final")[1]  # Representation health, which compares across objectives.
  with open(os.path.join(output_dir, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert results["timings"]["pretrain_seconds_per_run"]["values"] == [
      one["train_seconds"] for name in ("bert", "electra") for one in runs[name]["per_seed"]]

  # Re-running reuses the finished runs (nothing retrained, the same numbers) ...
  again = compare_objectives.compare(token_data_dir, BUDGET, output_dir, objectives=["bert"], seeds=2, eval_points=2,
                                     num_bootstrap=20, gin_params=TINY)
  assert again["objectives"]["bert"]["final_eval"] == runs["bert"]["final_eval"]
  assert again["objectives"]["bert"]["train_seconds"] == runs["bert"]["train_seconds"]
  # ... resumes an interrupted one from its last checkpoint, to the same numbers (seed 0: killed
  # before its last checkpoint; seed 1: killed after it, before the record was written) ...
  for seed in (0, 1):
    run_dir = runs["bert"]["per_seed"][seed]["run_dir"]
    record_path = os.path.join(run_dir, compare_objectives.RUN_RECORD)
    with open(record_path) as f:
      record = json.load(f)
    with open(record_path, "w") as f:
      json.dump({k: v for k, v in record.items() if k in ("objective", "config", "train_flops", "gin_params", "data",
                                                          "seed", "eval_every", "eval_batches", "config_sha256")}, f)
  seed_0 = runs["bert"]["per_seed"][0]["run_dir"]
  for name in os.listdir(seed_0):
    if name.startswith("ckpt-6."):
      os.remove(os.path.join(seed_0, name))
  compare_objectives.tf.compat.v1.train.update_checkpoint_state(seed_0, os.path.join(seed_0, "ckpt-3"))
  resumed = compare_objectives.compare(token_data_dir, BUDGET, output_dir, objectives=["bert"], seeds=2,
                                       eval_points=2, num_bootstrap=20, gin_params=TINY)["objectives"]["bert"]
  assert [one["resumed_from_step"] for one in resumed["per_seed"]] == [3, 6]
  for metric, summary in runs["bert"]["final_eval"].items():
    assert resumed["final_eval"][metric]["values"] == pytest.approx(summary["values"], rel=1e-5), metric
  assert resumed["eval_curves"]["loss"]["steps"] == [3, 6]
  # ... and refuses runs made under other settings.
  with pytest.raises(ValueError, match="trained with other settings"):
    compare_objectives.compare(token_data_dir, BUDGET, output_dir, objectives=["bert"], seeds=2, eval_points=3,
                               num_bootstrap=20, gin_params=TINY)
  # A recipe whose file kept its name but not its contents is another recipe: refused too.
  record_path = os.path.join(seed_0, compare_objectives.RUN_RECORD)
  with open(record_path) as f:
    record = json.load(f)
  with open(record_path, "w") as f:
    json.dump(dict(record, config_sha256="0" * 64), f)
  with pytest.raises(ValueError, match="trained with other settings"):
    compare_objectives.compare(token_data_dir, BUDGET, output_dir, objectives=["bert"], seeds=2, eval_points=2,
                               num_bootstrap=20, gin_params=TINY)


def test_the_cpu_recipes_share_one_budget_and_sample_replacements_at_temperature_3(token_data_dir):
  """The CPU study's recipes: one TRAIN_FLOPS for all five, and every generator-discriminator objective
  samples its replacements at 3 (at 1 the discriminator collapses at this budget; gin/schedules/cpu.gin)."""
  names = ("bert", "electra", "ale", "teams", "script")
  configs = {name: compare_objectives.gin_utils.resolve_gin_file(f"experiments/cpu_{name}.gin") for name in names}
  assert compare_objectives.configured_train_flops(configs, token_data_dir, []) == 3e13
  for name in names[1:]:
    gin.clear_config()
    try:
      compare_objectives.gin_utils.parse([configs[name]], [])
      objective = gin.query_parameter("pretrain.objective").scoped_configurable_fn
      assert objective.resolve_arguments()["temperature"] == 3.0, name
    finally:
      gin.clear_config()
