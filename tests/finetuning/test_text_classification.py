"""The general single-text classification task: TSV reader, label set, metrics, cached features, a run."""
import json
import os

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import finetune
from tpu_electra import gin_utils
from tpu_electra import runs
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import tasks
from tpu_electra.finetuning import text_classification
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import electra

TRAIN = "id\ttext\tlabel\n1\tw10 w11 w12\tHUM\n2\tw13\tLOC\n\n3\tw14 w15\tABBR\n4\tw16 w17 w18 w19\tLOC\n"
DEV = "id\ttext\tlabel\n1\tw12 w11\tLOC\n2\tw19\tABBR\n"


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return path


@pytest.fixture
def data_dir(tmp_path):
  _write(str(tmp_path / "data" / "train.tsv"), TRAIN)
  _write(str(tmp_path / "data" / "dev.tsv"), DEV)
  return str(tmp_path / "data")


def test_rows_are_read_by_header_name_skipping_empty_lines_and_other_columns():
  lines = ["\ufefflabel\tnote\ttext", "b\tx\tfirst text", "", "a\ty\t\"quoted\" text"]
  rows = list(text_classification.iter_rows(lines, "text", "label"))
  assert rows == [text_classification.Row(2, "first text", "b"), text_classification.Row(4, '"quoted" text', "a")]


def test_labels_sort_as_numbers_when_all_are_integers_else_as_strings():
  assert text_classification.sort_labels(["10", "2", "-1", "2", "02"]) == ["-1", "02", "2", "10"]
  assert text_classification.sort_labels(["pos", "neg", "10", "2"]) == ["10", "2", "neg", "pos"]


def test_the_label_list_is_the_train_files_sorted_and_needs_two_labels(tmp_path, data_dir):
  train = os.path.join(data_dir, "train.tsv")
  assert text_classification.read_label_list(train, "text", "label") == ["ABBR", "HUM", "LOC"]
  one = _write(str(tmp_path / "one.tsv"), "text\tlabel\na\tx\nb\tx\n")
  with pytest.raises(ValueError, match="every example has the label 'x'; classification needs at least two"):
    text_classification.read_label_list(one, "text", "label")


def test_macro_f1_is_the_mean_of_per_class_f1_over_the_classes_seen():
  predictions = [0, 0, 0, 1, 2]
  labels = [0, 0, 1, 1, 1]
  # Class 0: P 2/3, R 1 -> F1 0.8; class 1: P 1, R 1/3 -> 0.5; class 2, only predicted: 0. Class 3,
  # neither predicted nor gold, does not count.
  assert text_classification.macro_f1(predictions, labels) == pytest.approx((0.8 + 0.5 + 0.0) / 3)
  assert text_classification.evaluate(predictions, labels)["accuracy"] == pytest.approx(3 / 5)
  assert text_classification.macro_f1([1, 1], [1, 1]) == 1.0
  with pytest.raises(ValueError, match="as many predictions as labels"):
    text_classification.macro_f1([1], [1, 0])


def _one_line_error(call, match):
  with pytest.raises(ValueError, match=match) as raised:
    call()
  assert "\n" not in str(raised.value)
  return str(raised.value)


@pytest.mark.parametrize("train,dev,message", [
    # No label column in the train file (the header names another).
    ("text\tcategory\na\tx\n", DEV, r"train.tsv:1: no columns named 'label' in the header \(columns: text, category\)"),
    # No text column in the dev file.
    (TRAIN, "sentence\tlabel\na\tLOC\n",
     r"dev.tsv:1: no columns named 'text' in the header \(columns: sentence, label\)"),
    # A dev label the train file does not have.
    (TRAIN, DEV + "3\tw10\tNUM\n", r"dev.tsv:4: label 'NUM' is not one of the train file's labels \(ABBR, HUM, LOC\)"),
    # An empty file, a file with only its header, a row without its label, a text holding a tab, an empty label.
    ("", DEV, "train.tsv:1: empty file; expected a tab-separated header naming the columns 'text' and 'label'"),
    (TRAIN, "text\tlabel\n", "dev.tsv:2: no examples after the header"),
    (TRAIN, "text\tlabel\na\tLOC\nb\n", "dev.tsv:3: expected 2 tab-separated columns as in the header, got 1"),
    ("text\tlabel\na\tb\tLOC\n", DEV, "train.tsv:2: expected 2 tab-separated columns as in the header, got 3"),
    ("text\tlabel\na\tx\nb\t\n", DEV, "train.tsv:3: empty 'label'"),
])
def test_a_bad_file_stops_preparation_with_one_line_naming_the_file_and_line(tmp_path, tokenizer, train, dev, message):
  root = str(tmp_path / "data")
  _write(os.path.join(root, "train.tsv"), train)
  _write(os.path.join(root, "dev.tsv"), dev)
  error = _one_line_error(lambda: adapters.TextClassificationTask().prepare(root, tokenizer, 16), message)
  assert error.startswith(root)


def test_a_conll_line_without_a_tag_names_the_file_and_line(tmp_path, tokenizer):
  root = str(tmp_path / "data")
  _write(os.path.join(root, "train.txt"), "EU B-ORG\nrejects\n")
  _write(os.path.join(root, "dev.txt"), "EU B-ORG\n")
  _one_line_error(lambda: tasks.get_task("ner").prepare(root, tokenizer, 16),
                  f"{os.path.join(root, 'train.txt')}:2: expected a word and a tag, got 'rejects'")
  with pytest.raises(ValueError, match="<lines>:2: expected a word and a tag"):
    tagging.parse_conll(["EU B-ORG", "rejects"])


def test_features_are_glues_single_sentence_ones_with_sorted_label_ids(data_dir, tokenizer):
  data = tasks.get_task("text_classification").prepare(data_dir, tokenizer, 8)
  assert data.name == "text_classification" and data.primary_metric == "accuracy"
  assert data.features["source"] == "built"
  train = data.train.read_all()
  examples = [glue.GlueExample("", text, None, None) for text in ("w10 w11 w12", "w13", "w14 w15", "w16 w17 w18 w19")]
  expected = [glue.convert_example(e, glue.get_task("sst2"), tokenizer, 8) for e in examples]
  assert train["input_word_ids"].tolist() == [f.input_ids for f in expected]
  assert train["input_mask"].tolist() == [f.input_mask for f in expected]
  assert train["label_ids"].tolist() == [1, 2, 0, 2]  # ABBR, HUM, LOC.
  (dev,) = data.evals
  assert dev.num_rows == 2
  # Dev gold: LOC (2), ABBR (0).
  metrics, files = dev.score({"logits": np.asarray([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])})
  assert metrics == {"accuracy": 0.5, "macro_f1": pytest.approx((1.0 + 0.0 + 0.0) / 3)} and files == {}


def test_the_cache_is_keyed_by_the_columns_and_the_label_set(data_dir, tokenizer):
  first = adapters.TextClassificationTask().prepare(data_dir, tokenizer, 8)
  assert adapters.TextClassificationTask().prepare(data_dir, tokenizer, 8).features["source"] == "cache"
  with open(os.path.join(first.features["dir"], "index.json")) as f:
    index = json.load(f)
  assert index["info"]["label_list"] == ["ABBR", "HUM", "LOC"]
  assert index["made_from"]["settings"] == {"text_column": "text", "label_column": "label",
                                            "labels": ["ABBR", "HUM", "LOC"]}
  # The same files read through another text column: other features, under another key.
  other = adapters.TextClassificationTask(text_column="id").prepare(data_dir, tokenizer, 8)
  assert other.features["source"] == "built" and other.features["key"] != first.features["key"]


# ----------------------------------------------------------------------------------------------
# A run through tpu_electra.finetune


CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)


@pytest.fixture(scope="module")
def pretrained_dir(token_data_dir, tmp_path_factory):
  tf.keras.utils.set_random_seed(1)
  model_dir = str(tmp_path_factory.mktemp("pretrained"))
  runs.save_pretraining_dir(electra.Electra(CONFIG, generator_fraction=0.5), model_dir, data_dir=token_data_dir,
                                  objective_arguments={"generator_fraction": 0.5})
  return model_dir


@pytest.fixture
def _clean_gin():
  gin_utils.clear()
  yield
  gin_utils.clear()


def _question_tsv(rows, labels):
  return "question\tcategory\n" + "".join(
      f"w{10 + i % 20} w{20 + (i * 7) % 30} w{30 + i % 11}\t{labels[i % len(labels)]}\n" for i in range(rows))


def _argv(pretrained_dir, data_dir, run_dir):
  return ["finetune", "--gin_file=finetune/trec.gin", f"--init_checkpoint={pretrained_dir}", f"--data_dir={data_dir}",
          f"--model_dir={run_dir}", "--gin_param=TextClassificationTask.train_file = 'q/train.tsv'",
          "--gin_param=TextClassificationTask.dev_file = 'q/dev.tsv'",
          "--gin_param=TextClassificationTask.text_column = 'question'",
          "--gin_param=TextClassificationTask.label_column = 'category'", "--gin_param=MAX_SEQ_LENGTH = 16",
          "--gin_param=BATCH_SIZE = 4", "--gin_param=EPOCHS = 1"]


@pytest.mark.usefixtures("_clean_gin")
def test_trec_config_fine_tunes_any_tsv_and_records_its_labels(pretrained_dir, tmp_path):
  data_dir = str(tmp_path / "data")
  _write(os.path.join(data_dir, "q", "train.tsv"), _question_tsv(8, ["10", "9", "x-ray"]))
  _write(os.path.join(data_dir, "q", "dev.tsv"), _question_tsv(6, ["9", "x-ray"]))
  run_dir = str(tmp_path / "run")
  assert finetune.cli(_argv(pretrained_dir, data_dir, run_dir)) == 0
  info = runs.read_record(run_dir)
  assert info["task"] == "text_classification" and info["max_seq_length"] == 16
  assert info["label_list"] == ["10", "9", "x-ray"]
  with open(os.path.join(run_dir, "results.json")) as f:
    results = json.load(f)
  assert results["primary_metric"] == "accuracy"
  metrics = results["per_seed"][0]["metrics"]
  assert set(metrics) == {"accuracy", "macro_f1"} and all(0.0 <= v <= 1.0 for v in metrics.values())
  with open(os.path.join(run_dir, "seed_0", "metrics.json")) as f:
    assert [p["step"] for p in json.load(f)["eval_curve"]] == [2]  # 8 rows / batch 4, one epoch.


@pytest.mark.usefixtures("_clean_gin")
def test_a_dev_label_outside_the_train_labels_is_one_line_from_the_command(pretrained_dir, tmp_path, capsys):
  data_dir = str(tmp_path / "data")
  _write(os.path.join(data_dir, "q", "train.tsv"), _question_tsv(4, ["a", "b"]))
  _write(os.path.join(data_dir, "q", "dev.tsv"), _question_tsv(3, ["a", "c"]))
  assert finetune.cli(_argv(pretrained_dir, data_dir, str(tmp_path / "run"))) == 1
  err = capsys.readouterr().err.strip()
  assert err == (f"error: {os.path.join(data_dir, 'q', 'dev.tsv')}:3: label 'c' is not one of the train file's "
                 "labels (a, b)")
