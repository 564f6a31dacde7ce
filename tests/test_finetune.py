"""Fine-tuning end to end: a pretraining-style dir read back, the CLI over seeds, every task kind."""
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from benchmarks import finetune_tasks
from data_prep import embedded_tasks
from data_prep import vocab as vocab_lib
from tests.finetuning import tfds_mock
from tpu_electra import finetune
from tpu_electra import gin_utils
from tpu_electra import runs
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import prediction
from tpu_electra.finetuning import runner
from tpu_electra.finetuning import tasks
from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.objectives import electra
from tpu_electra.training import seeding

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = {"input_word_ids": tf.constant([[2, 10, 11, 12, 3, 0]]), "input_mask": tf.constant([[1, 1, 1, 1, 1, 0]]),
         "input_type_ids": tf.zeros([1, 6], tf.int32)}


@pytest.fixture(scope="module")
def pretrained_dir(token_data_dir, tmp_path_factory):
  """A dir as `pretrain` leaves it, plus the encoder's output on PROBE before saving."""
  tf.keras.utils.set_random_seed(1)
  objective = electra.Electra(CONFIG, generator_fraction=0.5)
  expected = objective.encoder(PROBE, training=False)["sequence_output"].numpy()
  model_dir = str(tmp_path_factory.mktemp("pretrained"))
  runs.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir,
                                  objective_arguments={"generator_fraction": 0.5}, step=7)
  return model_dir, expected


def _words(rng, n):
  return " ".join(f"w{rng.randint(10, 40)}" for _ in range(n))


def _write_glue(root):
  rng = random.Random(0)
  os.makedirs(os.path.join(root, "SST-2"), exist_ok=True)
  for split, n in (("train", 16), ("dev", 8)):
    rows = ["sentence\tlabel"]
    for i in range(n):
      label = i % 2
      rows.append(f"{_words(rng, 4)} {'w7' if label else 'w8'} {_words(rng, 2)}\t{label}")
    with open(os.path.join(root, "SST-2", f"{split}.tsv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  return root


def _write_squad(root):
  context = "w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21"
  qas = [
      {"id": "a", "question": "w30 w31", "answers": [{"text": "w13 w14", "answer_start": context.index("w13")}]},
      {"id": "b", "question": "w32 w33", "answers": [{"text": "w18", "answer_start": context.index("w18")}]},
      {"id": "c", "question": "w34", "is_impossible": True, "answers": []},
  ]
  data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
  os.makedirs(root, exist_ok=True)
  for name in ("train-v2.0.json", "dev-v2.0.json"):
    with open(os.path.join(root, name), "w") as f:
      json.dump(data, f)
  return root


@pytest.fixture(autouse=True)
def _clean_gin():
  gin_utils.clear()
  yield
  gin_utils.clear()


def test_run_rebuilds_encoder_shape_and_vocab_from_the_model_dir(pretrained_dir):
  model_dir, _ = pretrained_dir
  run = runs.read_run(model_dir)
  assert run.checkpoint.endswith("ckpt-7")
  assert run.objective_class_name == "Electra"
  assert run.encoder_config() == CONFIG
  assert runs.load_tokenizer(run).vocab_size == 60


def test_restored_encoder_reproduces_the_pretrained_encoder(pretrained_dir):
  model_dir, expected = pretrained_dir
  tf.keras.utils.set_random_seed(99)
  encoder = runs.load_encoder(runs.read_run(model_dir))
  np.testing.assert_allclose(encoder(PROBE, training=False)["sequence_output"].numpy(), expected, atol=1e-6)


def test_dir_without_checkpoint_is_a_one_line_error(tmp_path):
  with pytest.raises(runs.RunError, match="no checkpoint in") as error:
    runs.read_run(str(tmp_path))
  assert "\n" not in str(error.value)


def test_vocab_of_another_size_is_refused(pretrained_dir, tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"x{i}" for i in range(45)]) + "\n")
  run = runs.read_run(pretrained_dir[0])
  message = "has 50 tokens but the checkpoint's embedding table has 60"
  with pytest.raises(runs.RunError, match=message):
    runs.load_tokenizer(run, vocab=str(vocab))


def test_checkpoint_that_does_not_fit_the_config_is_refused(pretrained_dir, tmp_path):
  copy = str(tmp_path / "edited")
  shutil.copytree(pretrained_dir[0], copy)
  info = runs.read_record(copy)
  info["encoder_config"]["intermediate_size"] = 48
  with open(runs.path_of(copy), "w") as f:
    json.dump(info, f)
  with pytest.raises(runs.RunError, match="does not fit the encoder") as error:
    runs.load_encoder(runs.read_run(copy))
  assert "\n" not in str(error.value)


def _cli(argv):
  return finetune.cli(["finetune"] + argv)


def test_cli_fine_tunes_over_two_seeds_and_writes_json_markdown_and_plot(pretrained_dir, tmp_path, capsys):
  glue_dir = _write_glue(str(tmp_path / "glue"))
  run_dir = str(tmp_path / "run")
  argv = ["--gin_file=finetune/sst2.gin", f"--init_checkpoint={pretrained_dir[0]}", f"--data_dir={glue_dir}",
          f"--model_dir={run_dir}", "--seeds=2", "--gin_param=BATCH_SIZE = 4", "--gin_param=MAX_SEQ_LENGTH = 16",
          "--gin_param=EPOCHS = 2", "--gin_param=LEARNING_RATE = 1e-3"]
  assert _cli(argv) == 0
  with open(os.path.join(run_dir, "results.json")) as f:
    results = json.load(f)
  assert results["seeds"] == [0, 1]
  accuracy = results["aggregate"]["accuracy"]
  assert accuracy["n"] == 2 and 0.0 <= accuracy["min"] <= accuracy["mean"] <= accuracy["max"] <= 1.0
  assert results["glue"]["tasks"]["sst-2"]["accuracy"]["n"] == 2
  with open(os.path.join(run_dir, "seed_0", "metrics.json")) as f:
    seed_record = json.load(f)
  # 16 rows x 2 epochs / batch 4 = 8 steps, evaluated after each epoch.
  assert [p["step"] for p in seed_record["eval_curve"]] == [4, 8]
  assert seed_record["train_curve"][-1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)
  with open(os.path.join(run_dir, "results.md")) as f:
    markdown = f.read()
  assert "| metric | mean | median | std | max | min | n |" in markdown
  with open(os.path.join(run_dir, "learning_curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.path.exists(os.path.join(run_dir, "seed_1", "final", "model.index"))
  assert "accuracy" in capsys.readouterr().out

  # Re-running resumes: the seeds already done are read back, not trained again.
  stamp = os.path.getmtime(os.path.join(run_dir, "seed_0", "metrics.json"))
  assert _cli(argv) == 0
  assert os.path.getmtime(os.path.join(run_dir, "seed_0", "metrics.json")) == stamp

  # Task runs combine into the GLUE report; with one task the summaries list what is missing.
  summary_dir = str(tmp_path / "glue_summary")
  assert _cli([f"--glue_runs={run_dir}", f"--model_dir={summary_dir}", "--glue_statistic=mean"]) == 0
  with open(os.path.join(summary_dir, "glue_results.json")) as f:
    glue_results = json.load(f)
  assert glue_results["tasks"]["sst-2"]["accuracy"]["mean"] == pytest.approx(100.0 * accuracy["mean"])
  assert glue_results["electra_average"]["value"] is None
  assert "cola/mcc" in glue_results["electra_average"]["missing"]


def _seed_argv(pretrained_dir, glue_dir, run_dir, *extra):
  return ["--gin_file=finetune/sst2.gin", f"--init_checkpoint={pretrained_dir}", f"--data_dir={glue_dir}",
          f"--model_dir={run_dir}", "--gin_param=BATCH_SIZE = 4", "--gin_param=MAX_SEQ_LENGTH = 16",
          "--gin_param=EPOCHS = 1", "--gin_param=LEARNING_RATE = 1e-3", *extra]


def _checkpoint_tensors(seed_dir):
  reader = tf.train.load_checkpoint(os.path.join(seed_dir, "final", "model"))
  return {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}


def _assert_bit_identical(a, b):
  assert sorted(a) == sorted(b)
  for name in a:
    assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name


def _trained_weights_that_differ(a, b):
  weights = [n for n in a if "/.OPTIMIZER_SLOT/" not in n and a[n].dtype.kind == "f" and a[n].size > 1]
  return weights, [n for n in weights if not np.array_equal(a[n], b[n])]


def test_seed_decides_every_fine_tuning_bit_for_bit(pretrained_dir, tmp_path, caplog):
  glue_dir = _write_glue(str(tmp_path / "glue"))
  run_dirs = {name: str(tmp_path / name) for name in ("a", "b", "c")}
  # Some entry points lower absl's verbosity when run in the same process (the whole suite): set it here.
  caplog.set_level("INFO", logger="absl")
  # Same command twice (default SEED = 0) with --seeds=2: seeds 0 and 1, bit-identical across the runs.
  for name in ("a", "b"):
    assert _cli(_seed_argv(pretrained_dir[0], glue_dir, run_dirs[name], "--seeds=2")) == 0
  for seed in (0, 1):
    _assert_bit_identical(_checkpoint_tensors(os.path.join(run_dirs["a"], f"seed_{seed}")),
                          _checkpoint_tensors(os.path.join(run_dirs["b"], f"seed_{seed}")))
  # Run a prepared the features, run b streamed the same ones back from the cache.
  with open(os.path.join(run_dirs["b"], "results.json")) as f:
    assert json.load(f)["features"]["source"] == "cache"
  with open(os.path.join(run_dirs["a"], "results.json")) as f:
    results = json.load(f)
  assert results["features"]["source"] == "built"
  assert results["features"]["dir"].startswith(os.path.join(glue_dir, "tpu_electra_features", "sst-2-16-"))
  assert results["seeds"] == [0, 1] and results["hyperparameters"]["seed"] == 0
  for seed in (0, 1):
    with open(os.path.join(run_dirs["a"], f"seed_{seed}", "metrics.json")) as f:
      assert json.load(f)["seed"] == seed
  with open(os.path.join(run_dirs["a"], "operative_config.gin")) as f:
    operative = f.read()
  assert "finetune.seed = %SEED" in operative and "SEED = 0" in operative
  assert "SEED=0: fine-tuning sst-2 with seed(s) 0, 1" in caplog.text
  assert "seed 1 (SEED=0 + 1, 2 of 2)" in caplog.text
  # The two seeds of one run differ: head initialisation, dropout and data order all changed.
  weights, differ = _trained_weights_that_differ(_checkpoint_tensors(os.path.join(run_dirs["a"], "seed_0")),
                                                 _checkpoint_tensors(os.path.join(run_dirs["a"], "seed_1")))
  assert len(differ) == len(weights) > 0

  # SEED = 1: its one seed is seed 1, trained first in its process and equal to seed 1 above;
  # its operative config, results and log line say so.
  assert _cli(_seed_argv(pretrained_dir[0], glue_dir, run_dirs["c"], "--gin_param=SEED = 1")) == 0
  assert sorted(os.listdir(run_dirs["c"])) == sorted(
      ["seed_1", "results.json", "results.md", "learning_curves.png", "operative_config.gin", "run.json"])
  info = runs.read_record(run_dirs["c"])
  assert info["kind"] == "finetuning" and info["task"] == "sst-2" and info["seed"] == 1 and info["seeds"] == [1]
  assert info["max_seq_length"] == 16 and info["precision"] == "float32"
  assert info["init_checkpoint"] == runs.read_run(pretrained_dir[0]).checkpoint
  assert info["encoder_config"] == dataclasses.asdict(CONFIG)
  assert info["features"]["dir"] == results["features"]["dir"] and info["features"]["key"]
  assert info["train_and_evaluate"]["batch_size"] == 4 and info["train_and_evaluate"]["epochs"] == 1
  assert info["create_finetuning_optimizer"]["learning_rate"] == 1e-3
  assert info["versions"]["tensorflow"] == tf.__version__
  _assert_bit_identical(_checkpoint_tensors(os.path.join(run_dirs["a"], "seed_1")),
                        _checkpoint_tensors(os.path.join(run_dirs["c"], "seed_1")))
  with open(os.path.join(run_dirs["c"], "results.json")) as f:
    results = json.load(f)
  assert results["seeds"] == [1] and results["hyperparameters"]["seed"] == 1
  with open(os.path.join(run_dirs["c"], "results.md")) as f:
    assert "- seeds: 1 (n = 1; SEED = 1, seed k = SEED + k)" in f.read()
  with open(os.path.join(run_dirs["c"], "operative_config.gin")) as f:
    assert "SEED = 1" in f.read()
  assert "SEED=1: fine-tuning sst-2 with seed(s) 1" in caplog.text


def test_another_seed_gives_other_weights(pretrained_dir, tmp_path):
  glue_dir = _write_glue(str(tmp_path / "glue"))
  for seed in (0, 7):
    assert _cli(_seed_argv(pretrained_dir[0], glue_dir, str(tmp_path / "run"), f"--gin_param=SEED = {seed}")) == 0
  weights, differ = _trained_weights_that_differ(_checkpoint_tensors(str(tmp_path / "run" / "seed_0")),
                                                 _checkpoint_tensors(str(tmp_path / "run" / "seed_7")))
  assert len(differ) == len(weights) > 0
  with open(os.path.join(tmp_path, "run", "results.json")) as f:
    assert json.load(f)["seeds"] == [7]


def test_length_bucketed_fine_tuning_is_bit_identical_per_seed_and_trains_on_other_batches(pretrained_dir, tmp_path):
  # Sentences of 2 to 28 words at MAX_SEQ_LENGTH 32: batches in buckets 16 and 32.
  rng = random.Random(2)
  glue_dir = str(tmp_path / "glue")
  os.makedirs(os.path.join(glue_dir, "SST-2"))
  for split, n in (("train", 24), ("dev", 10)):
    rows = ["sentence\tlabel"] + [f"{_words(rng, rng.randint(1, 27))} w{7 + i % 2}\t{i % 2}" for i in range(n)]
    with open(os.path.join(glue_dir, "SST-2", f"{split}.tsv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  run_dirs = {name: str(tmp_path / name) for name in ("a", "b", "unbucketed")}
  for name, buckets in (("a", True), ("b", True), ("unbucketed", False)):
    assert _cli(_seed_argv(pretrained_dir[0], glue_dir, run_dirs[name], "--gin_param=MAX_SEQ_LENGTH = 32",
                           f"--gin_param=train_and_evaluate.length_buckets = {buckets}")) == 0
  _assert_bit_identical(_checkpoint_tensors(os.path.join(run_dirs["a"], "seed_0")),
                        _checkpoint_tensors(os.path.join(run_dirs["b"], "seed_0")))
  assert runs.read_record(run_dirs["a"])["train_and_evaluate"]["length_buckets"] is True
  # Other batches (rows of one bucket together, at its length): another trajectory from the same seed.
  weights, differ = _trained_weights_that_differ(_checkpoint_tensors(os.path.join(run_dirs["a"], "seed_0")),
                                                 _checkpoint_tensors(os.path.join(run_dirs["unbucketed"], "seed_0")))
  assert differ and len(weights) > 0


def _weights(network):
  return [v.numpy() for v in network.weights]


def _drawn(network):
  """The weights an initializer drew (not LayerNorm's ones or the biases' zeros, equal for any seed)."""
  return [w for w in _weights(network) if np.unique(w).size > 1]


def test_fresh_encoder_is_the_runs_shape_with_weights_drawn_from_the_seed_not_the_checkpoint(pretrained_dir):
  run = runs.read_run(pretrained_dir[0])
  seeding.seed_everything(3)
  fresh = runs.fresh_encoder(run)
  assert fresh.config == CONFIG
  # The same seed draws the same encoder, bit for bit, as any encoder of that config built after it...
  seeding.seed_everything(3)
  again = TransformerEncoder(CONFIG, name="encoder")
  again(again.dummy_inputs(batch_size=1, seq_length=2))
  for a, b in zip(_weights(fresh), _weights(again), strict=True):
    assert a.tobytes() == b.tobytes()
  # ...not the checkpoint's weights (which load_encoder restores after building the same way)...
  seeding.seed_everything(3)
  restored = runs.load_encoder(run)
  assert not any(np.array_equal(a, b) for a, b in zip(_drawn(fresh), _drawn(restored), strict=True))
  np.testing.assert_allclose(restored(PROBE, training=False)["sequence_output"].numpy(), pretrained_dir[1], atol=1e-6)
  # ...and another seed draws another encoder.
  seeding.seed_everything(4)
  other = runs.fresh_encoder(run)
  assert not any(np.array_equal(a, b) for a, b in zip(_drawn(fresh), _drawn(other), strict=True))
  # Both ways draw the same numbers, so what is drawn next (a task head) starts the same either way.
  seeding.seed_everything(3)
  runs.fresh_encoder(run)
  after_fresh = tf.random.uniform([4]).numpy()
  seeding.seed_everything(3)
  runs.load_encoder(run)
  np.testing.assert_array_equal(after_fresh, tf.random.uniform([4]).numpy())


def _without_weights_and_carrying_its_vocab(pretrained_dir, token_data_dir, copy):
  """A copy of the pretraining dir whose checkpoint files are all emptied (any read of them fails), laid out
  as tpu_electra.convert leaves a run: the vocab carried inside, no pretraining data dir."""
  shutil.copytree(pretrained_dir, copy)
  for name in os.listdir(copy):
    if name.startswith("ckpt-"):
      open(os.path.join(copy, name), "w").close()
  shutil.copy(os.path.join(token_data_dir, "vocab.txt"), os.path.join(copy, "vocab.txt"))
  info = runs.read_record(copy)
  info["data"] = {"data_dir": None, "vocab_file": "vocab.txt", "vocab_type": "wordpiece", "do_lower_case": True,
                  "vocab_size": CONFIG.vocab_size}
  with open(runs.path_of(copy), "w") as f:
    json.dump(info, f)
  return copy


def test_from_scratch_fine_tunes_the_runs_encoder_from_seeded_fresh_weights_without_reading_them(
    pretrained_dir, token_data_dir, tmp_path, capsys):
  glue_dir = _write_glue(str(tmp_path / "glue"))
  weightless = _without_weights_and_carrying_its_vocab(pretrained_dir[0], token_data_dir, str(tmp_path / "weightless"))
  with pytest.raises(runs.RunError, match="does not fit the encoder"):
    runs.load_encoder(runs.read_run(weightless))
  run_dirs = {name: str(tmp_path / name) for name in ("intact", "weightless")}
  for name, init in (("intact", pretrained_dir[0]), ("weightless", weightless)):
    assert _cli(_seed_argv(init, glue_dir, run_dirs[name], "--seeds=2", "--from_scratch")) == 0
  # The same seeds give bit-identical runs from either dir: nothing of the weights was read.
  for seed in (0, 1):
    _assert_bit_identical(_checkpoint_tensors(os.path.join(run_dirs["intact"], f"seed_{seed}")),
                          _checkpoint_tensors(os.path.join(run_dirs["weightless"], f"seed_{seed}")))
  weights, differ = _trained_weights_that_differ(_checkpoint_tensors(os.path.join(run_dirs["intact"], "seed_0")),
                                                 _checkpoint_tensors(os.path.join(run_dirs["intact"], "seed_1")))
  assert len(differ) == len(weights) > 0
  checkpoint = runs.read_run(pretrained_dir[0]).checkpoint
  info = runs.read_record(run_dirs["intact"])
  assert info["from_scratch"] is True and info["init_checkpoint"] == checkpoint
  assert info["encoder_config"] == dataclasses.asdict(CONFIG)
  with open(os.path.join(run_dirs["intact"], "results.json")) as f:
    results = json.load(f)
  assert results["from_scratch"] is True and results["init_checkpoint"] == checkpoint
  with open(os.path.join(run_dirs["intact"], "seed_1", "metrics.json")) as f:
    assert json.load(f)["from_scratch"] is True
  with open(os.path.join(run_dirs["intact"], "results.md")) as f:
    header = f.read().split("\n\n")[:2]
  assert header == ["# Fine-tuning sst-2 from scratch",
                    f"- from scratch (no pretraining): fresh encoder weights drawn from each seed; the encoder's "
                    f"shape and vocab are those of `{checkpoint}`\n- seeds: 0, 1 (n = 2; SEED = 0, seed k = SEED + k)"
                    "\n- primary metric: accuracy"]
  capsys.readouterr()

  # A dir with from-scratch seeds is not resumed as a pretrained fine-tuning (nor the other way round).
  assert _cli(_seed_argv(pretrained_dir[0], glue_dir, run_dirs["intact"], "--seeds=2")) == 1
  err = capsys.readouterr().err.strip()
  assert "holds a fine-tuning from scratch" in err and "use another --model_dir" in err and "\n" not in err
  # The GLUE report of from-scratch runs says so, and refuses to mix them with pretrained ones.
  assert _cli([f"--glue_runs={run_dirs['intact']}", f"--model_dir={tmp_path / 'glue_scratch'}"]) == 0
  with open(tmp_path / "glue_scratch" / "glue_results.md") as f:
    assert f.read().startswith("## GLUE (dev), fine-tuned from scratch (no pretraining)")
  pretrained_run = str(tmp_path / "pretrained_run")
  assert _cli(_seed_argv(pretrained_dir[0], glue_dir, pretrained_run)) == 0
  assert runs.read_record(pretrained_run)["from_scratch"] is False
  capsys.readouterr()
  assert _cli([f"--glue_runs={run_dirs['intact']},{pretrained_run}", f"--model_dir={tmp_path / 'glue_mixed'}"]) == 1
  assert "combine runs of one kind" in capsys.readouterr().err


def test_from_scratch_without_init_checkpoint_says_what_to_pass(tmp_path, capsys):
  assert _cli(["--gin_file=finetune/sst2.gin", "--from_scratch", f"--data_dir={tmp_path}",
               f"--model_dir={tmp_path / 'run'}"]) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: --init_checkpoint is required (--from_scratch takes the encoder's shape and vocab")
  assert "\n" not in err


def test_seed_out_of_range_is_a_one_line_error_before_any_work(pretrained_dir, tmp_path, capsys):
  assert runner.run_seeds(5, 3) == [5, 6, 7]
  argv = _seed_argv(pretrained_dir[0], str(tmp_path / "no_data"), str(tmp_path / "run"), "--gin_param=SEED = -1")
  assert _cli(argv) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: SEED must be an integer with 0 <= SEED") and "\n" not in err
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("glue_runs", [False, True])
def test_unwritable_model_dir_is_a_one_line_error(pretrained_dir, tmp_path, glue_runs):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory\n")
  model_dir = str(blocker / "run")
  if glue_runs:
    args = [f"--glue_runs={tmp_path}", f"--model_dir={model_dir}"]
  else:
    args = _seed_argv(pretrained_dir[0], _write_glue(str(tmp_path / "glue")), model_dir)
  process = subprocess.run([sys.executable, "-m", "tpu_electra.finetune"] + args, capture_output=True, text=True,
                           cwd=REPO_ROOT, check=False)
  assert process.returncode == 1, process.stderr[-2000:]
  assert process.stdout == ""
  last = process.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: cannot write to --model_dir={model_dir!r}") and "Traceback" not in process.stderr


def test_a_failed_run_leaves_no_run_dir_behind_and_an_existing_one_as_it_was(pretrained_dir, tmp_path, capsys):
  run_dir = tmp_path / "runs" / "sst2"
  argv = _seed_argv(pretrained_dir[0], str(tmp_path / "no_such_data"), str(run_dir))
  assert _cli(argv) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "no_such_data" in err and "\n" not in err
  assert not (tmp_path / "runs").exists()  # Neither the run dir nor the parent made for it.
  run_dir.mkdir(parents=True)
  assert _cli(argv) == 1
  assert run_dir.is_dir() and not any(run_dir.iterdir())


def test_a_failed_glue_report_leaves_no_output_dir(tmp_path, capsys):
  out = tmp_path / "glue_report"
  assert _cli([f"--glue_runs={tmp_path / 'not_a_run'}", f"--model_dir={out}"]) == 1
  assert capsys.readouterr().err.strip().startswith("error: no results.json in")
  assert not out.exists()


def test_tfds_data_dir_fine_tunes_exactly_as_the_same_data_from_files(pretrained_dir, tmp_path):
  glue_dir = _write_glue(str(tmp_path / "glue"))
  assert _cli(_seed_argv(pretrained_dir[0], glue_dir, str(tmp_path / "from_files"))) == 0
  splits = {"train": os.path.join(glue_dir, "SST-2", "train.tsv"),
            "validation": os.path.join(glue_dir, "SST-2", "dev.tsv")}
  with tfds_mock.mock_tfds("glue/sst2", splits):
    assert _cli(_seed_argv(pretrained_dir[0], "tfds:", str(tmp_path / "from_tfds"),
                           f"--feature_cache_dir={tmp_path / 'cache'}")) == 0
  seed_metrics = {}
  for name in ("from_files", "from_tfds"):
    with open(tmp_path / name / "seed_0" / "metrics.json") as f:
      seed_metrics[name] = json.load(f)
  # The same rows in the same order under the same seed: the same training and the same scores.
  assert seed_metrics["from_tfds"]["metrics"] == seed_metrics["from_files"]["metrics"]
  losses = {name: [(point["step"], point["loss"]) for point in run["train_curve"]]
            for name, run in seed_metrics.items()}
  assert losses["from_tfds"] == losses["from_files"]
  info = runs.read_record(str(tmp_path / "from_tfds"))
  assert info["data_dir"] == "tfds:" and info["features"]["dir"].startswith(str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def polarity_run(embedded_cache, tmp_path_factory):  # pylint: disable=unused-argument
  """The real polarity sentences in SST-2 layout, and a tiny ELECTRA whose WordPiece vocab was learned on them."""
  task_dir = str(tmp_path_factory.mktemp("tasks_embedded"))
  embedded_tasks.write(task_dir)
  sentences = [e.text_a for e in glue.read_examples(task_dir, "sst2", "train")]
  data_dir = str(tmp_path_factory.mktemp("polarity_vocab"))
  vocab = vocab_lib.learn_wordpiece(sentences, 300, do_lower_case=True)
  vocab_lib.write_vocab(vocab, os.path.join(data_dir, "vocab.txt"))
  manifest_lib.write_manifest(data_dir, manifest_lib.Manifest(
      vocab_file="vocab.txt", vocab_size=len(vocab), vocab_type="wordpiece", do_lower_case=True,
      special_token_ids={t: vocab.index(t) for t in manifest_lib.SPECIAL_TOKENS}, max_seq_length=32, shards=[],
      num_documents=0, num_examples=0, num_tokens=0, settings_hash="test"))
  tf.keras.utils.set_random_seed(2)
  config = EncoderConfig(vocab_size=len(vocab), hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                         embedding_size=32, max_position_embeddings=64)
  model_dir = str(tmp_path_factory.mktemp("polarity_pretrained"))
  runs.save_pretraining_dir(electra.Electra(config, generator_fraction=0.5), model_dir, data_dir=data_dir,
                                  objective_arguments={"generator_fraction": 0.5})
  return task_dir, model_dir


def test_cli_fine_tunes_on_real_polarity_sentences_and_fits_them(polarity_run, tmp_path):
  task_dir, model_dir = polarity_run
  run_dir = str(tmp_path / "polarity")
  assert _cli(["--gin_file=finetune/sst2.gin", f"--init_checkpoint={model_dir}", f"--data_dir={task_dir}",
               f"--model_dir={run_dir}", "--gin_param=BATCH_SIZE = 30", "--gin_param=MAX_SEQ_LENGTH = 64",
               "--gin_param=EPOCHS = 20", "--gin_param=LEARNING_RATE = 3e-3", "--gin_param=LAYERWISE_DECAY = 1.0"]) == 0
  with open(os.path.join(run_dir, "seed_0", "metrics.json")) as f:
    record = json.load(f)
  # 150 real sentences / batch 30 = 5 steps an epoch; the 50 held-out sentences are scored after each.
  assert [p["step"] for p in record["eval_curve"]] == [5 * e for e in range(1, 21)]
  assert 0.0 <= record["metrics"]["accuracy"] <= 1.0
  # A randomly initialised 2-layer encoder cannot generalise from 150 sentences, but it must fit
  # them: the loss leaves ln 2 and the training batches end up almost all right (0.98 measured).
  losses = [point["loss"] for point in record["train_curve"]]
  accuracies = [point["accuracy"] for point in record["train_curve"]]
  assert np.mean(losses[-3:]) < 0.5 * np.log(2.0), losses
  assert np.mean(accuracies[-3:]) > 0.85, accuracies


def test_cli_error_is_one_line(tmp_path, capsys):
  status = _cli(["--gin_file=finetune/cola.gin", f"--init_checkpoint={tmp_path}", f"--data_dir={tmp_path}",
                  f"--model_dir={tmp_path / 'run'}"])
  assert status == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: no checkpoint in") and "\n" not in err


def test_squad_v2_run_decodes_answers_and_scores_them(pretrained_dir, tmp_path):
  squad_dir = _write_squad(str(tmp_path / "squad"))
  run_dir = str(tmp_path / "squad_run")
  gin_utils.parse(["finetune/squad_v2.gin"], ["BATCH_SIZE = 2", "MAX_SEQ_LENGTH = 16", "EPOCHS = 1",
                                              "SquadTask.doc_stride = 4", "train_and_evaluate.keep_best = True"])
  results = runner.finetune(init_checkpoint=pretrained_dir[0], data_dir=squad_dir, model_dir=run_dir)
  metrics = results["per_seed"][0]["metrics"]
  for name in ("exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1"):
    assert 0.0 <= metrics[name] <= 100.0
  assert metrics["total"] == 3.0
  with open(os.path.join(run_dir, "seed_0", "predictions.json")) as f:
    assert set(json.load(f)) == {"a", "b", "c"}
  assert os.path.exists(os.path.join(run_dir, "seed_0", "null_odds.json"))
  assert os.path.exists(os.path.join(run_dir, "seed_0", "best", "model.index"))


@pytest.mark.parametrize("task_config", finetune_tasks.TASK_CONFIGS)
def test_every_task_config_fine_tunes_from_a_pretrained_dir_and_reports_its_metric(polarity_run, tmp_path_factory,
                                                                                   task_config):
  _, model_dir = polarity_run
  data_dir = str(tmp_path_factory.getbasetemp() / "every_task_data")
  if not os.path.exists(data_dir):
    finetune_tasks.write_task_files(data_dir, finetune_tasks.polarity_sentences(), train_rows=12, dev_rows=6)
  row = finetune_tasks.run_task(task_config, model_dir, data_dir, str(tmp_path_factory.mktemp(task_config)), steps=2,
                                extra_params=["MAX_SEQ_LENGTH = 64", "BATCH_SIZE = 4"] + (
                                    ["SquadTask.max_query_length = 24"] if task_config.startswith("squad") else []))
  assert row["steps"] == 2 and row["seq"] == 64
  assert row["train_rows"] >= 12  # SQuAD windows and RACE questions can outnumber the rows written.
  assert np.isfinite(row["value"]), row
  low = -100.0 if task_config in ("cola", "stsb") else 0.0
  assert low <= row["value"] <= 100.0, row


def test_mnli_sized_benchmark_task_is_real_sentences_in_mnli_layout(tmp_path):
  sentences = ["The first sentence is here.", "A short one.", "Another sentence of Wikipedia text, longer still."]
  root = finetune_tasks.write_mnli_sized(str(tmp_path), sentences, train_rows=7,
                                         dev_rows={"dev_matched": 3, "dev_mismatched": 2})
  train = glue.read_examples(root, "mnli", "train")
  assert len(train) == 7 and {e.text_a for e in train} <= set(sentences) and {e.label for e in train} == set(
      glue.get_task("mnli").label_list)
  assert [len(glue.read_examples(root, "mnli", s)) for s in ("dev_matched", "dev_mismatched")] == [3, 2]
  rows = glue.read_tsv_rows(os.path.join(root, "MNLI", "dev_matched.tsv"))
  assert rows[0] == list(finetune_tasks.MNLI_DEV_HEADER) and {len(r) for r in rows} == {16}
  assert {len(r) for r in glue.read_tsv_rows(os.path.join(root, "MNLI", "train.tsv"))} == {12}


def test_mnli_sized_benchmark_times_a_first_run_and_a_rerun_that_reuses_the_features(pretrained_dir, tmp_path):
  sentences = [" ".join(f"w{10 + (i * 7 + j) % 30}" for j in range(3 + i % 9)) for i in range(40)]
  data_dir = finetune_tasks.write_mnli_sized(str(tmp_path / "data"), sentences, train_rows=24,
                                             dev_rows={"dev_matched": 5, "dev_mismatched": 6})
  rows = finetune_tasks.run_mnli_sized(pretrained_dir[0], data_dir, str(tmp_path / "work"), steps=2, runs=2,
                                       extra_params=["MAX_SEQ_LENGTH = 32", "BATCH_SIZE = 4"])
  assert [(r["run"], r["features"], r["train_rows"], r["steps"]) for r in rows] == [
      ("first", "built", 24, 2), ("rerun 1", "cache", 24, 2)]
  assert all(r["peak_rss_gb"] > 0.1 and r["prepare_s"] >= 0 for r in rows)
  assert "| rerun 1 | 24 | cache |" in finetune_tasks.format_mnli_table(rows)


def test_eval_rows_are_padded_to_whole_batches_and_marked():
  arrays = {"input_word_ids": np.arange(10).reshape(5, 2)}
  padded = prediction.pad_rows(arrays, 4)
  assert padded["input_word_ids"].shape == (8, 2)
  assert padded[prediction.INDEX].tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
  assert runner.eval_points(num_train=10, batch_size=4, epochs=3, train_steps=7, every_epoch=True) == [2, 5, 7]
  assert runner.eval_points(num_train=10, batch_size=4, epochs=3, train_steps=7, every_epoch=False) == [7]


def test_every_task_gin_file_names_a_task_and_the_papers_recipe():
  gin_dir = os.path.join(gin_utils.GIN_DIR, "finetune")
  epochs = {}
  for name in sorted(os.listdir(gin_dir)):
    if name in ("base.gin", "base_size.gin"):
      continue
    gin_utils.clear()
    gin_utils.parse([f"finetune/{name}"], [])
    task = gin.query_parameter("TASK/macro.value")
    assert tasks.get_task(task).name in (task, task.replace("sst2", "sst-2").replace("stsb", "sts-b")), name
    epochs[task] = gin.query_parameter("EPOCHS/macro.value")
    assert gin.query_parameter("create_finetuning_optimizer.warmup_fraction") == 0.1
  assert {tasks.get_task(t).name for t in epochs} == {tasks.get_task(n).name for n in tasks.task_names()}
  # SCRIPT Table 5: 10 epochs for RTE and STS, 2 for SQuAD, 3 for the other tasks.
  assert {t for t, e in epochs.items() if e == 10} == {"rte", "stsb"}
  assert {t for t, e in epochs.items() if e == 2} == {"squad_v1", "squad_v2"}
