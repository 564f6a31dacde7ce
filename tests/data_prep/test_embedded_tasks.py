"""The real labelled data of the pinned wheels, written in the SST-2, SQuAD, CoNLL and TSV layouts the readers take."""
import collections
import os

import pytest

from data_prep import embedded_tasks
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import squad
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import text_classification


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


def test_conll_lines_keep_the_word_and_the_ner_tag_only():
  data = b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
  assert embedded_tasks.conll_word_and_ner(data, "train.txt") == "-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\n"


def test_conll_line_with_another_number_of_columns_is_a_one_line_error():
  with pytest.raises(embedded_tasks.TaskDataError, match="line 2 of train.txt has 3 columns, not CoNLL-2003's 4"):
    embedded_tasks.conll_word_and_ner(b"EU NNP B-NP B-ORG\nrejects VBZ O\n", "train.txt")


def test_trec_takes_the_last_lines_and_their_coarse_labels(monkeypatch):
  monkeypatch.setattr(embedded_tasks, "TREC_TRAIN_5500_LINES", 2)
  data = "NUM:date Skipped ?\nHUM:ind Who was  sister\ufffdcity ?\nLOC:city Where is it ?\n".encode("utf-8")
  assert embedded_tasks.parse_trec(data) == [("Who was sister city ?", "HUM"), ("Where is it ?", "LOC")]
  with pytest.raises(embedded_tasks.TaskDataError, match="line 3 of the TREC file is not 'COARSE:fine question'"):
    embedded_tasks.parse_trec(b"NUM:date a ?\nHUM:ind b ?\nPERSON:ind c ?\n")


def test_trec_split_keeps_equal_questions_together_and_the_label_mix():
  rows = [(f"Question {i} ?", "A" if i % 4 else "B") for i in range(40)]
  rows += [("What is X ?", "A"), ("what is  x ?", "A"), ("What is X ?", "A")]
  splits = embedded_tasks.split_trec(rows, dev_size=10)
  assert len(splits["dev"]) == 10 and len(splits["train"]) == 33
  # 30 + 3 rows of A and 10 of B: shares 7.67 and 2.33 of the 10 dev rows, rounded to 8 and 2.
  assert collections.Counter(label for _, label in splits["dev"]) == {"A": 8, "B": 2}
  normalized = {side: {embedded_tasks.normalize_question(t) for t, _ in rows} for side, rows in splits.items()}
  assert not normalized["train"] & normalized["dev"]
  assert embedded_tasks.split_trec(list(reversed(rows)), dev_size=10)["dev"] == list(reversed(splits["dev"]))


def test_real_conll03_has_the_shared_tasks_sentences_as_word_and_bio_tag(task_dir):
  counts = {}
  for split in ("train", "dev", "test"):
    path = os.path.join(task_dir, "CoNLL03", f"{split}.txt")
    with open(path) as f:
      assert {len(line.split()) for line in f} == {0, 2}
    examples = tagging.read_examples(path, split)
    counts[split] = len(examples)
    tags = [t for e in examples for t in e.tags]
    assert set(tags) == {"O"} | {f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG", "MISC")}
    # BIO (IOB2): an I- tag only ever continues an entity of its own type.
    for e in examples:
      for previous, tag in zip(["O"] + e.tags, e.tags):
        assert not tag.startswith("I-") or previous[2:] == tag[2:], (e.guid, e.tags)
    if split == "train":
      assert examples[0].words[:3] == ["EU", "rejects", "German"]
      # The shared task's train entity count.
      assert sum(len(tagging.extract_chunks(e.tags)) for e in examples) == 23499
  assert counts == {"train": 14041, "dev": 3250, "test": 3453}


def test_real_trec_questions_are_split_by_question_with_train_label_mix(task_dir):
  rows = {}
  for split in ("train", "dev"):
    path = os.path.join(task_dir, "TREC", f"{split}.tsv")
    rows[split] = list(text_classification.read_rows(path, "text", "label"))
  assert [len(rows["train"]), len(rows["dev"])] == [4952, 500]
  labels = text_classification.read_label_list(os.path.join(task_dir, "TREC", "train.tsv"), "text", "label")
  assert labels == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
  assert collections.Counter(r.label for r in rows["dev"]) == {
      "ABBR": 8, "DESC": 106, "ENTY": 115, "HUM": 112, "LOC": 77, "NUM": 82}
  questions = {s: {embedded_tasks.normalize_question(r.text) for r in rows[s]} for s in rows}
  assert not questions["train"] & questions["dev"]
  # The duplicates the module docstring counts: 64 questions asked more than once, on 136 lines.
  asked = collections.Counter(embedded_tasks.normalize_question(r.text) for r in rows["train"] + rows["dev"])
  repeated = [n for n in asked.values() if n > 1]
  assert (len(repeated), sum(repeated)) == (64, 136)
  assert rows["train"][0].text == "How did serfdom develop in and then leave Russia ?"


def test_missing_output_dir_flag_is_refused():
  with pytest.raises(Exception, match="output_dir"):
    embedded_tasks.cli(["embedded_tasks"])
