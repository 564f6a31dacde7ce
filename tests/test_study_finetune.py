"""The study's fine-tuning half: cutting the train split, scratch baselines per encoder config, the study end
to end (pretraining, fine-tuning, gains and intervals, timings) and its reuse when re-run."""
import json
import os
import random

import pytest

from benchmarks import compare_objectives
from benchmarks import study_finetune
from benchmarks import study_report
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import text_classification

BUDGET = 8e8  # BERT gets 6 steps, ELECTRA 5 (tests/test_compare_objectives.py).
TINY = ["SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "train.steps_per_loop = 1",
        "train.log_every_secs = 0.0"]
TINY_FINETUNING = ["MAX_SEQ_LENGTH = 16", "BATCH_SIZE = 8", "EPOCHS = 1", "train_and_evaluate.log_every_secs = 0.0",
                   "train_and_evaluate.save_final_checkpoint = False"]
TREC_LABELS = ("HUM", "LOC", "NUM")


def _conll(rng, sentences):
  """CoNLL lines over the token data's vocab (w5..w59), as data_prep.embedded_tasks writes them."""
  lines = ["-DOCSTART- O", ""]
  for _ in range(sentences):
    for _ in range(rng.randint(2, 6)):
      word = rng.randint(5, 59)
      lines.append(f"w{word} {'B-PER' if word < 15 else 'B-LOC' if word < 25 else 'O'}")
    lines.append("")
  return "\n".join(lines) + "\n"


def _tsv(rng, rows):
  lines = ["text\tlabel"]
  for i in range(rows):
    lines.append(" ".join(f"w{rng.randint(5, 59)}" for _ in range(4)) + f" w{5 + i % 3}\t{TREC_LABELS[i % 3]}")
  return "\n".join(lines) + "\n"


def _write_tasks(root):
  rng = random.Random(0)
  for name, text in (("CoNLL03/train.txt", _conll(rng, 30)), ("CoNLL03/dev.txt", _conll(rng, 10)),
                     ("TREC/train.tsv", _tsv(rng, 30)), ("TREC/dev.tsv", _tsv(rng, 10))):
    os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    with open(os.path.join(root, name), "w") as f:
      f.write(text)
  return root


def test_the_cut_keeps_the_files_first_examples_as_the_task_readers_count_them():
  conll = ["-DOCSTART- O\n", "\n", "EU B-ORG\n", "rejects O\n", "\n", "\n", "Peter B-PER\n", "-DOCSTART- O\n",
           "Blackburn B-PER\n", "\n", "BRUSSELS B-LOC\n"]
  whole = tagging.parse_conll(conll)
  assert study_finetune.example_ends(conll, "sentences") == [4, 7, 9, 11]
  for limit in (1, 2, 3):
    cut = study_finetune.cut_lines(conll, "sentences", limit)
    assert conll[:len(cut)] == cut
    assert [e.words for e in tagging.parse_conll(cut)] == [e.words for e in whole[:limit]]
  assert study_finetune.cut_lines(conll, "sentences", 9) == conll
  tsv = ["text\tlabel\n", "a b\tHUM\n", "\n", "c\tLOC\n", "d e\tNUM\n"]
  cut = study_finetune.cut_lines(tsv, "rows", 2)
  assert cut == tsv[:4]
  assert [row.text for row in text_classification.iter_rows(cut, "text", "label")] == ["a b", "c"]


def test_train_example_caps_are_task_colon_n(tmp_path):
  assert study_finetune.parse_train_examples(["conll03:4000", "trec:2000"]) == {"conll03": 4000, "trec": 2000}
  for bad in (["conll03"], ["conll03:0"], ["trec:1", "trec:2"], ["trec:x"]):
    with pytest.raises(ValueError, match="is not task:N"):
      study_finetune.parse_train_examples(bad)
  with pytest.raises(ValueError, match="which --tasks does not list"):
    study_finetune.check_arguments(["trec"], str(tmp_path), 1, {"conll03": 5}, [])
  with pytest.raises(ValueError, match="SEED is set by this script"):
    study_finetune.check_arguments(["trec"], str(tmp_path), 1, {}, ["SEED = 3"])
  # A cut whose train rows lack a dev label would fail at the first fine-tuning, after the pretraining.
  with pytest.raises(ValueError, match="the first 2 rows of TREC/train.tsv lack the dev label"):
    study_finetune.prepare_task("trec", _write_tasks(str(tmp_path / "tasks")), str(tmp_path / "out"), 2, [])


def test_objectives_share_a_from_scratch_baseline_exactly_when_their_encoder_configs_are_equal(monkeypatch):
  configs = {"bert": {"num_layers": 4, "hidden_size": 128}, "electra": {"num_layers": 4, "hidden_size": 128},
             "ale": {"num_layers": 4, "hidden_size": 128, "share_layers": True}}

  class Run:
    def __init__(self, path):
      self.info = {"encoder_config": configs[path.split("/")[0]]}

  monkeypatch.setattr(study_finetune.runs_lib, "read_run", Run)
  groups = study_finetune.scratch_groups({name: [f"{name}/seed_0", f"{name}/seed_1"] for name in configs})
  assert [g["objectives"] for g in groups.values()] == [["bert", "electra"], ["ale"]]
  assert [g["init_checkpoint"] for g in groups.values()] == ["bert/seed_0", "ale/seed_0"]
  names = list(groups)
  assert names[0].startswith("scratch_4x128_") and names[1].startswith("scratch_4x128_shared_")


def _mtimes(root, name):
  return {os.path.join(d, name): os.path.getmtime(os.path.join(d, name)) for d, _, files in os.walk(root)
          if name in files}


def test_the_study_fine_tunes_every_pretraining_run_and_the_scratch_baseline_and_reuses_them(
    token_data_dir, tmp_path, capsys):
  tasks_dir = _write_tasks(str(tmp_path / "tasks"))
  output_dir = str(tmp_path / "study")

  def study(caps=(("conll03", 20), ("trec", 12))):
    return compare_objectives.compare(
        token_data_dir, BUDGET, output_dir, objectives=["bert", "electra"], seeds=1, eval_points=1, gin_params=TINY,
        probe=False, tasks=["conll03", "trec"], task_data_dir=tasks_dir, finetune_seeds=2,
        finetune_train_examples=dict(caps), finetune_gin_params=TINY_FINETUNING)

  results = study()
  assert "probe" not in results and "probe_auc" not in results["objectives"]["bert"]
  finetune = results["finetune"]
  assert finetune["reference"] == "bert" and (finetune["num_pretrain_seeds"], finetune["num_finetune_seeds"]) == (1, 2)
  (scratch, group), = finetune["scratch_groups"].items()  # BERT's encoder and ELECTRA's discriminator: one config.
  assert group["objectives"] == ["bert", "electra"]
  for task, metric, unit in (("conll03", "f1", "sentences"), ("trec", "accuracy", "rows")):
    one = finetune["tasks"][task]
    assert one["primary_metric"] == metric
    assert {k: one["data"][k] for k in ("unit", "train_kept", "train_total", "dev_total")} == {
        "unit": unit, "train_kept": 20 if task == "conll03" else 12, "train_total": 30, "dev_total": 10}
    for name in ("bert", "electra"):
      runs = one["pretrained"][name]["runs"]
      assert [(r["pretrain_seed"], r["finetune_seed"]) for r in runs] == [(0, 0), (0, 1)]
      model_dir = os.path.join(output_dir, "finetune", task, name, "pretrain_seed_0")
      with open(os.path.join(model_dir, "results.json")) as f:
        runner_results = json.load(f)
      assert not runner_results["from_scratch"]
      assert runner_results["init_checkpoint"].startswith(os.path.join(output_dir, "runs", name, "seed_0"))
      assert [r["score"] for r in runs] == [s["metrics"][metric] for s in runner_results["per_seed"]]
      assert one["pretrained"][name]["score"]["values"] == [r["score"] for r in runs]
      assert all(r["seconds"] > 0 for r in runs)
      gain = one["gain_over_scratch"][name]
      scratch_scores = one["scratch"][scratch]["score"]["values"]
      assert gain["n_a"] == gain["n_b"] == 2  # Equal n on both sides: 1 pretraining x 2 fine-tuning seeds.
      assert gain["difference"] == pytest.approx(sum(r["score"] for r in runs) / 2 - sum(scratch_scores) / 2)
      assert gain["low"] <= gain["difference"] <= gain["high"]
    assert [r["finetune_seed"] for r in one["scratch"][scratch]["runs"]] == [0, 1]
    with open(os.path.join(output_dir, "finetune", task, scratch, "results.json")) as f:
      assert json.load(f)["from_scratch"]
    assert set(one["minus_reference"]) == {"electra"}
  # The cut train file is the first sentences of the given one; dev is copied whole.
  cut_dir = os.path.join(output_dir, "finetune", "conll03", "data", "CoNLL03")
  given = tagging.read_examples(os.path.join(tasks_dir, "CoNLL03", "train.txt"))
  assert [e.words for e in tagging.read_examples(os.path.join(cut_dir, "train.txt"))] == [e.words for e in given[:20]]
  with open(os.path.join(cut_dir, "dev.txt")) as f, open(os.path.join(tasks_dir, "CoNLL03", "dev.txt")) as g:
    assert f.read() == g.read()

  times = results["timings"]
  assert times["pretrain_seconds_per_run"]["n"] == 2 and set(times["phase_seconds"]) == {"pretraining", "fine-tuning"}
  assert {side: s["n"] for side, s in times["finetune_seconds_per_run"]["trec"].items()} == {"pretrained": 4,
                                                                                              "scratch": 2}
  assert times["peak_rss_mb"] > 0 and times["compute_seconds"] > 0 and results["machine"]["cpu_cores"] >= 1
  with open(os.path.join(output_dir, "results.md")) as f:
    report = f.read()
  for text in ("### conll03: dev f1", "### trec: dev accuracy", "first 20 of 30 sentences", "| electra | ",
               "## Time and memory", "cosine_final", "not independent"):
    assert text in report, text
  with open(os.path.join(output_dir, "finetune.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"

  # Re-running trains nothing and reports the same numbers; a seed lost (killed before its
  # metrics.json) is the only one trained again, to the same score.
  capsys.readouterr()
  before = {**_mtimes(output_dir, "metrics.json"), **_mtimes(output_dir, compare_objectives.RUN_RECORD)}
  again = study()
  assert "started" not in capsys.readouterr().out
  assert {**_mtimes(output_dir, "metrics.json"), **_mtimes(output_dir, compare_objectives.RUN_RECORD)} == before
  assert again["finetune"]["tasks"] == finetune["tasks"]
  lost = os.path.join(output_dir, "finetune", "trec", "electra", "pretrain_seed_0", "seed_1", "metrics.json")
  os.remove(lost)
  resumed = study()
  started = [line for line in capsys.readouterr().out.splitlines() if "started" in line]
  assert len(started) == 1 and "trec: electra pretraining seed 0" in started[0] and "(1 to compute" in started[0]
  assert {k: v for k, v in _mtimes(output_dir, "metrics.json").items() if k != lost} == {
      k: v for k, v in before.items() if k.endswith("metrics.json") and k != lost}
  assert resumed["finetune"]["tasks"]["trec"]["pretrained"]["electra"]["score"] == pytest.approx(
      finetune["tasks"]["trec"]["pretrained"]["electra"]["score"])
  # Other settings for a task (here its cut) are refused before anything trains.
  with pytest.raises(ValueError, match="fine-tuned under other settings"):
    study(caps=(("conll03", 10), ("trec", 12)))


def test_learning_rate_grids_are_positive_distinct_rates_and_own_the_learning_rate_binding(tmp_path):
  assert study_finetune.parse_learning_rates(["1e-3", "0.003"]) == [1e-3, 3e-3]
  for bad in (["x"], ["0"], ["-1e-3"], ["1e-3", "0.001"], ["nan"]):
    with pytest.raises(ValueError, match="is not a learning rate > 0"):
      study_finetune.parse_learning_rates(bad)
  with pytest.raises(ValueError, match="LEARNING_RATE is set by this script"):
    study_finetune.check_arguments(["trec"], str(tmp_path), 1, {}, ["LEARNING_RATE = 1e-3"], [1e-3, 3e-3])
  study_finetune.check_arguments(["trec"], str(tmp_path), 1, {}, ["LEARNING_RATE = 1e-3"])  # No grid: the recipe's.


def test_each_encoder_is_reported_at_the_rate_with_its_best_mean_dev_score(monkeypatch, tmp_path):
  """A fake runner scores (encoder, rate): the pretrained encoder is best at the higher rate, the scratch one
  at the lower; every gain compares the two sides' chosen runs, and every rate's runs are kept and counted."""
  monkeypatch.setattr(study_finetune, "scratch_groups", lambda runs: {
      "scratch_2x8_abc": {"objectives": list(runs), "encoder_config": {}, "init_checkpoint": "bert/seed_0"}})
  best = {False: 3e-3, True: 1e-3}  # from_scratch -> its best rate
  calls = []

  def fake_run(job, features_dir, gin_params, progress):
    calls.append((job.name, job.learning_rate, job.model_dir))
    score = 0.5 if job.learning_rate == best[job.from_scratch] else 0.1
    score += 0.05 * (job.name == "electra")
    return {"primary_metric": "f1", "per_seed": [
        {"seed": k, "metrics": {"f1": score + 0.01 * k}, "timings": {"total_s": 2.0}} for k in range(job.num_seeds)]}

  monkeypatch.setattr(study_finetune, "_run", fake_run)
  setup = study_finetune.TaskSetup("conll03", str(tmp_path), {"data": {
      "unit": "sentences", "train_kept": 3, "train_total": 3, "dev_total": 2, "source_dir": "tasks"}})
  runs = {"bert": ["bert/seed_0", "bert/seed_1"], "electra": ["electra/seed_0", "electra/seed_1"]}
  out = study_finetune.finetune_all([setup], runs, str(tmp_path), 2, ["EPOCHS = 1"], [1e-3, 3e-3])
  assert out["learning_rates"] == [1e-3, 3e-3]
  # Every encoder at every rate, each rate in its own dir.
  assert {(name, rate) for name, rate, _ in calls} == {(n, r) for n in ("bert", "electra", "scratch_2x8_abc")
                                                      for r in (1e-3, 3e-3)}
  assert os.path.join(str(tmp_path), "finetune", "conll03", "electra", "lr_0.003", "pretrain_seed_1") in [
      d for *_, d in calls]
  assert os.path.join(str(tmp_path), "finetune", "conll03", "scratch_2x8_abc", "lr_0.001") in [d for *_, d in calls]
  one = out["tasks"]["conll03"]
  for name in ("bert", "electra"):
    side = one["pretrained"][name]
    assert side["learning_rate"] == 3e-3 and len(side["runs"]) == 4 and len(side["runs_at_other_rates"]) == 4
    assert set(side["by_learning_rate"]) == {"0.001", "0.003"}
    assert side["by_learning_rate"]["0.001"]["mean"] < side["score"]["mean"] == side["by_learning_rate"]["0.003"]["mean"]
  scratch = one["scratch"]["scratch_2x8_abc"]
  assert scratch["learning_rate"] == 1e-3 and scratch["score"]["n"] == 4
  gain = one["gain_over_scratch"]["electra"]
  # ELECTRA 0.55 + 0.01 k over 2 x 2 seeds (mean 0.555); scratch 0.5 + 0.01 k over its 4 seeds (0.515).
  assert gain["difference"] == pytest.approx(0.04) and (gain["n_a"], gain["n_b"]) == (4, 4)
  assert one["minus_reference"]["electra"]["difference"] == pytest.approx(0.05)
  # results.md names the grid, each side's chosen rate and every rate's mean.
  report = "\n".join(study_report._finetuning_section({"finetune": out}))
  assert "fine-tuned at each of 0.001, 0.003 and reported at the rate with its best mean dev score" in report
  assert "| electra | 0.555 [" in report and "| 0.003 / 0.001 |" in report
  assert "| scratch_2x8_abc | **0.515 [" in report
  # A tie goes to the first rate of the grid.
  assert study_finetune.choose_rate({3e-3: [0.2, 0.4], 1e-3: [0.3, 0.3]}) == 3e-3
