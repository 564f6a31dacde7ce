"""Fine-tuning end to end: a pretraining-style dir read back, the CLI over seeds, every task kind."""
import json
import os
import random
import shutil

import gin
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import finetune
from tpu_electra import gin_utils
from tpu_electra.finetuning import pretrained
from tpu_electra.finetuning import runner
from tpu_electra.finetuning import tasks
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import electra

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)
PROBE = {"input_word_ids": tf.constant([[2, 10, 11, 12, 3, 0]]), "input_mask": tf.constant([[1, 1, 1, 1, 1, 0]]),
         "input_type_ids": tf.zeros([1, 6], tf.int32)}


@pytest.fixture(scope="module")
def pretrained_dir(token_data_dir, tmp_path_factory):
  """A dir as `pretrain` leaves it, plus the encoder's output on PROBE before saving."""
  tf.keras.utils.set_random_seed(1)
  objective = electra.Electra(CONFIG, generator_fraction=0.5)
  expected = objective.encoder(PROBE, training=False)["sequence_output"].numpy()
  model_dir = str(tmp_path_factory.mktemp("pretrained"))
  pretrained.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir,
                                  objective_kwargs={"generator_fraction": 0.5}, step=7)
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
  os.makedirs(os.path.join(root, "STS-B"), exist_ok=True)
  for split in ("train", "dev"):
    rows = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"]
    for i in range(6):
      rows.append(f"{i}\tg\tf\ty\t{i}\ts1\ts2\t{_words(rng, 5)}\t{_words(rng, 4)}\t{i * 0.9:.1f}")
    with open(os.path.join(root, "STS-B", f"{split}.tsv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  os.makedirs(os.path.join(root, "MNLI"), exist_ok=True)
  header = "\t".join(["index", "promptID", "pairID", "genre", "s1bp", "s2bp", "s1p", "s2p", "sentence1",
                      "sentence2", "label1", "gold_label"])
  labels = ("contradiction", "entailment", "neutral")
  for split in ("train", "dev_matched", "dev_mismatched"):
    rows = [header] + [f"{i}\tp\tq\tg\tb\tb\tp\tp\t{_words(rng, 5)}\t{_words(rng, 3)}\tx\t{labels[i % 3]}"
                       for i in range(6)]
    with open(os.path.join(root, "MNLI", f"{split}.tsv"), "w") as f:
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


def _write_conll(root):
  rng = random.Random(1)
  os.makedirs(root, exist_ok=True)
  for name in ("train.txt", "dev.txt"):
    lines = []
    for _ in range(4):
      for _ in range(5):
        word = f"w{rng.randint(10, 40)}"
        lines.append(f"{word} {'NN' if int(word[1:]) % 2 else 'VB'}")
      lines.append("")
    with open(os.path.join(root, name), "w") as f:
      f.write("\n".join(lines))
  return root


def _write_race(root):
  rng = random.Random(2)
  for split in ("train", "dev"):
    directory = os.path.join(root, split, "middle")
    os.makedirs(directory, exist_ok=True)
    for n in range(2):
      record = {"article": _words(rng, 12), "questions": [_words(rng, 3), _words(rng, 2)],
                "options": [[_words(rng, 2) for _ in range(4)] for _ in range(2)], "answers": ["A", "C"]}
      with open(os.path.join(directory, f"{n}.txt"), "w") as f:
        json.dump(record, f)
  return root


@pytest.fixture(autouse=True)
def _clean_gin():
  gin_utils.clear()
  yield
  gin_utils.clear()


def test_run_rebuilds_encoder_shape_and_vocab_from_the_model_dir(pretrained_dir):
  model_dir, _ = pretrained_dir
  run = pretrained.read_run(model_dir)
  assert run.checkpoint.endswith("ckpt-7")
  assert run.objective_name == "Electra"
  assert run.encoder_config() == CONFIG
  assert pretrained.load_tokenizer(run).vocab_size == 60


def test_restored_encoder_reproduces_the_pretrained_encoder(pretrained_dir):
  model_dir, expected = pretrained_dir
  tf.keras.utils.set_random_seed(99)
  encoder = pretrained.load_encoder(pretrained.read_run(model_dir))
  np.testing.assert_allclose(encoder(PROBE, training=False)["sequence_output"].numpy(), expected, atol=1e-6)


def test_dir_without_checkpoint_is_a_one_line_error(tmp_path):
  with pytest.raises(pretrained.PretrainedModelError, match="no checkpoint in") as error:
    pretrained.read_run(str(tmp_path))
  assert "\n" not in str(error.value)


def test_vocab_of_another_size_is_refused(pretrained_dir, tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"x{i}" for i in range(45)]) + "\n")
  run = pretrained.read_run(pretrained_dir[0])
  message = "has 50 tokens but the checkpoint's embedding table has 60"
  with pytest.raises(pretrained.PretrainedModelError, match=message):
    pretrained.load_tokenizer(run, vocab=str(vocab))


def test_checkpoint_that_does_not_fit_the_config_is_refused(pretrained_dir, tmp_path):
  copy = str(tmp_path / "edited")
  shutil.copytree(pretrained_dir[0], copy)
  config_path = os.path.join(copy, "operative_config.gin")
  with open(config_path) as f:
    text = f.read()
  with open(config_path, "w") as f:
    f.write(text.replace("EncoderConfig.intermediate_size = 32", "EncoderConfig.intermediate_size = 48"))
  with pytest.raises(pretrained.PretrainedModelError, match="does not fit the encoder") as error:
    pretrained.load_encoder(pretrained.read_run(copy))
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


@pytest.mark.parametrize("task_name,writer,metric,gin_params", [
    ("pos", _write_conll, "accuracy", []),
    ("race", _write_race, "accuracy_middle", []),
    ("stsb", _write_glue, "spearman", []),
    ("mnli", _write_glue, "mnli-mm/accuracy", []),
])
def test_each_task_kind_converts_predicts_and_scores(pretrained_dir, tmp_path, task_name, writer, metric,
                                                     gin_params):
  gin_utils.parse([], gin_params)
  run = pretrained.read_run(pretrained_dir[0])
  data_dir = writer(str(tmp_path / task_name))
  task_data = tasks.get_task(task_name).prepare(data_dir, pretrained.load_tokenizer(run), 32)
  model = task_data.build_model(pretrained.load_encoder(run), dropout_rate=0.0)
  batch = {name: tf.constant(value[:2]) for name, value in task_data.train.items()}
  assert np.isfinite(model(batch, training=True)["loss"].numpy())
  per_eval = {}
  for eval_set in task_data.evals:
    outputs = {k: v.numpy() for k, v in model.task_outputs(
        {name: tf.constant(value) for name, value in eval_set.arrays.items()}).items()}
    per_eval[eval_set.name] = eval_set.score(outputs)[0]
  flat = tasks.flatten_metrics(per_eval)
  assert -1.0 <= flat[metric] <= 1.0
  assert task_data.primary_metric in flat


def test_eval_rows_are_padded_to_whole_batches_and_marked():
  arrays = {"input_word_ids": np.arange(10).reshape(5, 2)}
  padded = runner.pad_rows(arrays, 4)
  assert padded["input_word_ids"].shape == (8, 2)
  assert padded[runner.INDEX].tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
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
  assert set(epochs) == set(tasks.TASK_NAMES) - {"ner"}
  # SCRIPT Table 5: 10 epochs for RTE and STS, 2 for SQuAD, 3 for the other tasks.
  assert {t for t, e in epochs.items() if e == 10} == {"rte", "stsb"}
  assert {t for t, e in epochs.items() if e == 2} == {"squad_v1", "squad_v2"}
