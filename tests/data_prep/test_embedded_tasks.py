"""The real labelled data of the pinned wheels, written in the SST-2 and SQuAD layouts the readers take."""
import collections
import os

import pytest

from data_prep import embedded_tasks
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import squad


@pytest.fixture(scope="module")
def task_dir(embedded_cache, tmp_path_factory):  # pylint: disable=unused-argument
  output_dir = str(tmp_path_factory.mktemp("tasks_embedded"))
  assert embedded_tasks.cli(["embedded_tasks", f"--output_dir={output_dir}"]) == 0
  return output_dir


def test_polarity_lines_parse_to_labels_and_windows_1252_text():
  rows = embedded_tasks.parse_polarity(b"__label__pos a fine film \x97 really .\n\n__label__neg  dull  .\n")
  assert rows == [("a fine film \u2014 really .", 1), ("dull .", 0)]


def test_polarity_line_without_a_label_is_a_one_line_error():
  with pytest.raises(embedded_tasks.TaskDataError, match="line 2 .* starts with 'good'") as raised:
    embedded_tasks.parse_polarity(b"__label__pos fine\ngood film\n")
  assert "\n" not in str(raised.value)


def test_split_holds_out_every_fourth_sentence_of_each_class():
  rows = [(f"n{i}", 0) for i in range(8)] + [(f"p{i}", 1) for i in range(8)]
  splits = embedded_tasks.split_polarity(rows)
  assert [s for s, _ in splits["dev"]] == ["n3", "n7", "p3", "p7"]
  assert len(splits["train"]) == 12


def test_real_polarity_sentences_read_back_as_balanced_sst2_splits(task_dir):
  counts = {}
  for split in ("train", "dev"):
    examples = glue.read_examples(task_dir, "sst2", split)
    counts[split] = collections.Counter(e.label for e in examples)
    assert all(e.text_a and "\t" not in e.text_a for e in examples)
  assert counts == {"train": {"0": 75, "1": 75}, "dev": {"0": 25, "1": 25}}
  train = {e.text_a for e in glue.read_examples(task_dir, "sst2", "train")}
  assert not train & {e.text_a for e in glue.read_examples(task_dir, "sst2", "dev")}


def test_real_squad_excerpt_reads_back_with_every_answer_located(task_dir):
  stats = collections.Counter()
  path = os.path.join(task_dir, "SQuAD", "train-v1.1.json")
  examples = squad.read_examples(path, is_training=True, version_2=False, stats=stats)
  assert len(examples) == 5
  for example in examples:
    start, end = example.start_position, example.end_position
    assert 0 <= start <= end < len(example.doc_tokens)
  answers = {e.qas_id: " ".join(e.doc_tokens[e.start_position:e.end_position + 1]) for e in examples}
  assert answers["5733b1da4776f41900661068"] == "1882,"
  assert answers["5733be284776f41900661182"] == "Saint Bernadette Soubirous"


def test_missing_output_dir_flag_is_refused():
  with pytest.raises(Exception, match="output_dir"):
    embedded_tasks.cli(["embedded_tasks"])
