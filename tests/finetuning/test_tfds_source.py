"""Task data from TensorFlow Datasets gives the features and scores of the same data read from files.

Offline (`tfds_mock`): TFDS serves, for each split, the examples its own GLUE and SQuAD builders
generate from the very files the file readers read, so the two sources hold the same data and must
agree row for row.
"""
import json
import os
import random

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.finetuning import tfds_mock
from tpu_electra.data import tokenization
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import tasks
from tpu_electra.finetuning import tfds_source

WORDS = [f"w{i}" for i in range(10, 60)]


def _tokenizer():
  return tokenization.WordpieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##s"],
                                         do_lower_case=True)


def _sentence(rng, low=1, high=14):
  return " ".join(rng.choice(WORDS) + ("s" if rng.random() < 0.2 else "") for _ in range(rng.randint(low, high)))


def _write_tsv(path, header, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(["\t".join(header)] + ["\t".join(row) for row in rows]) + "\n")


def _write_glue(root, task_name, rng):
  """A few rows of each split of one task, in the GLUE download's layout; {TFDS split: file}."""
  task = glue.get_task(task_name)
  splits = {}
  for split in ("train",) + task.eval_splits:
    path = glue.split_path(root, task, split)
    n = 12 if split == "train" else 7
    if task_name == "sst-2":
      _write_tsv(path, ["sentence", "label"], [[_sentence(rng), str(i % 2)] for i in range(n)])
    elif task_name == "sts-b":
      header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
                "score"]
      _write_tsv(path, header, [[str(i), "g", "f", "y", "0", "s", "s", _sentence(rng), _sentence(rng),
                                 f"{rng.randint(0, 5000) / 1000:.3f}"] for i in range(n)])
    else:  # MNLI
      header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
      _write_tsv(path, header, [[str(i), "0", "0", "g", "()", "()", "()", "()", _sentence(rng), _sentence(rng),
                                 "x", task.label_list[(i * 7) % 3]] for i in range(n)])
    splits[tfds_source.GLUE_SPLITS[split]] = path
  return splits


def _write_squad(root, version_2, rng):
  """Three paragraphs of three questions (2.0: one unanswerable each), as train and dev JSON; {TFDS split: file}."""
  paragraphs = []
  for p in range(3):
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 30))]
    qas = []
    for q in range(3):
      first = rng.randrange(len(words) - 2)
      answer = {"text": " ".join(words[first:first + 2]), "answer_start": len(" ".join(words[:first])) + bool(first)}
      qa = {"id": f"{p}-{q}", "question": _sentence(rng, 1, 5), "answers": [answer]}
      if version_2:
        qa["is_impossible"] = q == 2
        if q == 2:
          qa["answers"], qa["plausible_answers"] = [], [answer]
      qas.append(qa)
    paragraphs.append({"context": " ".join(words), "qas": qas})
  suffix = "v2.0" if version_2 else "v1.1"
  os.makedirs(root, exist_ok=True)
  splits = {}
  for split, name in (("train", f"train-{suffix}.json"), ("validation", f"dev-{suffix}.json")):
    with open(os.path.join(root, name), "w", encoding="utf-8") as f:
      json.dump({"version": suffix, "data": [{"title": f"article {split}", "paragraphs": paragraphs}]}, f)
    splits[split] = os.path.join(root, name)
  return splits


def _outputs(task_data, eval_set, rng):
  """Fixed random model outputs for an eval set, of the shape its scorer takes."""
  rows = eval_set.num_rows
  if task_data.name.startswith("squad"):
    length = eval_set.features.read_all()["input_word_ids"].shape[1]
    return {"start_logits": rng.normal(size=(rows, length)), "end_logits": rng.normal(size=(rows, length))}
  if task_data.name == "sts-b":
    return {"scores": rng.uniform(0, 5, size=rows)}
  return {"logits": rng.normal(size=(rows, glue.get_task(task_data.name).num_labels))}


def _assert_same_task_data(from_files, from_tfds):
  assert from_tfds.features["source"] == from_files.features["source"] == "built"
  assert from_tfds.features["key"] != from_files.features["key"]  # Keyed by the TFDS dataset, not by files.
  assert from_tfds.primary_metric == from_files.primary_metric
  assert from_tfds.serving == from_files.serving
  splits = [("train", from_files.train, from_tfds.train)]
  splits += [(a.name, a.features, b.features) for a, b in zip(from_files.evals, from_tfds.evals, strict=True)]
  for name, a, b in splits:
    expected, got = a.read_all(), b.read_all()
    assert sorted(got) == sorted(expected), name
    for feature in expected:
      np.testing.assert_array_equal(got[feature], expected[feature], err_msg=f"{name} {feature}")
  for a, b in zip(from_files.evals, from_tfds.evals):
    assert a.name == b.name
    outputs = _outputs(from_files, a, np.random.default_rng(0))
    assert b.score(outputs) == a.score(outputs)


@pytest.mark.parametrize("task_name", ["sst-2", "mnli", "sts-b"])
def test_glue_from_tfds_gives_the_features_and_metrics_of_the_tsv_files(task_name, tmp_path):
  glue_dir = str(tmp_path / "glue")
  splits = _write_glue(glue_dir, task_name, random.Random(task_name))
  name = tfds_source.glue_name(glue.get_task(task_name))
  tok = _tokenizer()
  from_files = tasks.get_task(task_name).prepare(glue_dir, tok, 24, cache_dir=str(tmp_path / "cache_files"))
  with tfds_mock.mock_tfds(name, splits):
    from_tfds = tasks.get_task(task_name).prepare("tfds:", tok, 24, cache_dir=str(tmp_path / "cache_tfds"))
    again = tasks.get_task(task_name).prepare("tfds:", tok, 24, cache_dir=str(tmp_path / "cache_tfds"))
  _assert_same_task_data(from_files, from_tfds)
  assert again.features["source"] == "cache" and again.features["key"] == from_tfds.features["key"]
  if task_name == "mnli":  # Both dev sets, scored under their GLUE names.
    assert [e.name for e in from_tfds.evals] == ["mnli-m", "mnli-mm"]


@pytest.mark.parametrize("version_2", [False, True])
def test_squad_from_tfds_gives_the_features_answers_and_metrics_of_the_json_files(version_2, tmp_path):
  squad_dir = str(tmp_path / "squad")
  splits = _write_squad(squad_dir, version_2, random.Random(int(version_2)))
  tok = _tokenizer()

  def prepare(data_dir, cache):
    adapter = adapters.SquadTask(version_2=version_2, doc_stride=4, max_query_length=6)
    return adapter.prepare(data_dir, tok, 20, cache_dir=str(tmp_path / cache))

  from_files = prepare(squad_dir, "cache_files")
  with tfds_mock.mock_tfds(tfds_source.squad_name(version_2), splits):
    from_tfds = prepare("tfds:", "cache_tfds")
  _assert_same_task_data(from_files, from_tfds)
  assert from_tfds.num_train > 9  # Every question, several windows each.


def test_every_glue_task_maps_tfds_label_names_and_text_features_onto_its_tsv_fields():
  for task in glue.TASKS.values():
    source = tfds_source.GLUE[task.name]
    features = tfds.builder(tfds_source.glue_name(task)).info.features
    assert {name for name in source.text_features if name} <= set(features), task.name
    if task.is_regression:
      assert source.labels is None
    else:
      assert sorted(source.labels) == sorted(features["label"].names), task.name
      assert sorted(source.labels.values()) == sorted(task.label_list), task.name


def test_a_dataset_tfds_has_not_prepared_is_one_line_with_the_command_that_prepares_it(tmp_path):
  with pytest.raises(ValueError) as error:
    tasks.get_task("sst2").prepare(f"tfds:{tmp_path}", _tokenizer(), 24)
  message = str(error.value)
  command = ("import tensorflow_datasets as tfds; "
             f"tfds.builder('glue/sst2', data_dir='{tmp_path}').download_and_prepare()")
  assert message.startswith(f"TFDS glue/sst2 is not prepared in {tmp_path}: run `python -c \"{command}\"` where")
  assert "\n" not in message
  assert os.listdir(tmp_path) == []


def test_a_task_without_a_tfds_source_refuses_tfds_in_one_line():
  for name in ("pos", "race", "text_classification"):
    with pytest.raises(ValueError, match=rf"^task {name} reads files only \(--data_dir=tfds: serves the GLUE tasks"):
      tasks.get_task(name).prepare("tfds:", _tokenizer(), 24)
