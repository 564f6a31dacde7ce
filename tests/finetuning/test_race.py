"""RACE: reading the released layout, per-option sequences, article-only truncation, accuracy."""
import collections
import json
import os

import pytest

from tpu_electra.finetuning import race


def _write_article(root, split, level, name, record):
  directory = root / split / level
  os.makedirs(directory, exist_ok=True)
  (directory / f"{name}.txt").write_text(json.dumps(record))


@pytest.fixture
def race_dir(tmp_path):
  _write_article(tmp_path, "dev", "high", "9", {
      "id": "high9.txt", "article": "Tom has a red car .",
      "questions": ["What colour is it ?", "Who has it ?"],
      "options": [["red", "blue", "green", "grey"], ["Ann", "Tom", "Bob", "Sue"]],
      "answers": ["A", "B"]})
  _write_article(tmp_path, "dev", "middle", "1", {
      "id": "middle1.txt", "article": "It rains .", "questions": ["Is it dry ?"],
      "options": [["yes", "no", "maybe", "never"]], "answers": ["B"]})
  return str(tmp_path)


def test_reader_gives_one_example_per_question_middle_first(race_dir):
  examples = race.read_examples(race_dir, "dev")
  assert [(e.guid, e.level, e.question, e.label) for e in examples] == [
      ("dev-middle-1-0", "middle", "Is it dry ?", 1),
      ("dev-high-9-0", "high", "What colour is it ?", 0),
      ("dev-high-9-1", "high", "Who has it ?", 1)]
  assert examples[2].options == ["Ann", "Tom", "Bob", "Sue"]
  assert examples[2].article == "Tom has a red car ."


def test_answer_letters_must_name_an_option():
  assert race.answer_index("d", 4) == 3
  with pytest.raises(ValueError, match="does not name"):
    race.answer_index("E", 4)


def test_each_option_is_packed_after_article_and_question(tokenizer):
  example = race.RaceExample("g", "high", "a b", "q ?", ["x", "y"], label=1)
  feature = race.convert_example(example, tokenizer, max_seq_length=10)
  a, b, q, mark, x, y = (tokenizer.piece_id(w) for w in ("a", "b", "q", "?", "x", "y"))
  assert feature.input_ids == [[1, a, b, 2, q, mark, 2, x, 2, 0],
                               [1, a, b, 2, q, mark, 2, y, 2, 0]]
  assert feature.segment_ids[0] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
  assert feature.input_mask[1] == [1] * 9 + [0]
  assert feature.label == 1


def test_truncation_cuts_only_the_article(tokenizer):
  article = " ".join(f"w{i}" for i in range(20))
  options = ["so it is", "no"]
  example = race.RaceExample("g", "high", article, "why is it so ?", options, 0)
  stats = collections.Counter()
  feature = race.convert_example(example, tokenizer, max_seq_length=14, stats=stats)
  question = tokenizer.tokenize("why is it so ?")
  sep = tokenizer.special_token_ids["[SEP]"]
  for row, option in zip(feature.input_ids, options):
    seps = [i for i, t in enumerate(row) if t == sep]
    assert row[seps[0] + 1:seps[1]] == question
    assert row[seps[1] + 1:seps[2]] == tokenizer.tokenize(option)
  # 14 - 4 specials - 5 question tokens = 5: the 3-token option leaves 2 article tokens, the
  # 1-token option 4; both rows are full.
  article_ids = tokenizer.tokenize(article)
  assert feature.input_ids[0][1:4] == article_ids[:2] + [sep]
  assert feature.input_ids[1][1:6] == article_ids[:4] + [sep]
  assert all(mask == [1] * 14 for mask in feature.input_mask)
  assert stats == {"article_truncated": 2}


def test_option_is_cut_only_when_question_and_option_alone_do_not_fit(tokenizer):
  example = race.RaceExample("g", "high", "some article", "q", ["o1 o2 o3 o4 o5 o6"], 0)
  stats = collections.Counter()
  feature = race.convert_example(example, tokenizer, max_seq_length=8, stats=stats)
  # 8 - 4 specials = 4: the question (1) stays whole, the option keeps 3, the article none.
  o1, o2, o3 = (tokenizer.piece_id(w) for w in ("o1", "o2", "o3"))
  assert feature.input_ids[0] == [1, 2, tokenizer.piece_id("q"), 2, o1, o2, o3, 2]
  assert stats == {"article_truncated": 1, "option_truncated": 1}


def test_fit_lengths_gives_way_article_then_option_then_question():
  assert race.fit_lengths(100, 5, 3, 20) == (12, 5, 3)
  assert race.fit_lengths(100, 5, 30, 20) == (0, 5, 15)
  assert race.fit_lengths(100, 25, 3, 20) == (0, 20, 0)


def test_option_probabilities_are_a_softmax_and_prediction_its_argmax():
  probabilities = race.option_probabilities([1000.0, 1001.0, 999.0, 1000.0])
  assert sum(probabilities) == pytest.approx(1.0)
  assert probabilities[1] == pytest.approx(1 / (1 + 2 / 2.718281828459045 + 1 / 7.38905609893065))
  assert race.predict_option([0.1, 0.7, 0.7, 0.2]) == 1


def test_accuracy_is_reported_overall_and_per_level(race_dir):
  examples = race.read_examples(race_dir, "dev")
  predictions = {"dev-middle-1-0": 1, "dev-high-9-0": 0, "dev-high-9-1": 3}
  assert race.evaluate(examples, predictions) == {
      "accuracy": pytest.approx(2 / 3), "accuracy_middle": 1.0, "accuracy_high": 0.5}
