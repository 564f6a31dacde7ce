"""Tagging: CoNLL reading, first-sub-token labels, word accuracy and conlleval-style chunk F1."""
import collections

import pytest

from tpu_electra.finetuning import tagging

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_reader_takes_the_last_column_and_skips_docstart(tmp_path):
  path = tmp_path / "train.txt"
  path.write_text(CONLL_2003)
  examples = tagging.read_examples(str(path), split="train")
  assert [(e.guid, e.words, e.tags) for e in examples] == [
      ("train-0", ["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"]),
      ("train-1", ["Peter", "Blackburn"], ["B-PER", "I-PER"])]


def test_reader_accepts_two_columns_and_repeated_blank_lines():
  lines = ["John B-PER", "runs O", "", "", "Paris B-LOC", "-DOCSTART- O", "Rome B-LOC"]
  examples = tagging.parse_conll(lines)
  assert [e.words for e in examples] == [["John", "runs"], ["Paris"], ["Rome"]]


def test_reader_rejects_a_line_without_a_tag():
  with pytest.raises(ValueError, match="<lines>:2"):
    tagging.parse_conll(["John B-PER", "runs"])


def test_label_list_puts_outside_first():
  examples = tagging.parse_conll(["a I-PER", "b O", "c B-LOC"])
  assert tagging.label_list_from_examples(examples) == ["O", "B-LOC", "I-PER"]


def test_only_the_first_sub_token_of_each_word_is_labelled(tokenizer):
  # "Blackburn" (9 characters) becomes five 2-character pieces; "Al" and "runs" stay whole.
  example = tagging.TaggingExample("s", ["Al", "Blackburn", "runs"], ["B-PER", "I-PER", "O"])
  labels = ["O", "B-PER", "I-PER"]
  feature = tagging.convert_example(example, labels, tokenizer, max_seq_length=12)
  ignore = -1
  assert feature.label_ids == [ignore, 1, 2, ignore, ignore, ignore, ignore, 0, ignore,
                               ignore, ignore, ignore]
  assert feature.word_positions == [1, 2, 7]
  assert feature.input_mask == [1] * 9 + [0] * 3


def test_words_that_do_not_fit_are_dropped_whole_and_counted(tokenizer):
  example = tagging.TaggingExample("s", ["a", "Blackburn", "b"], ["O", "B-PER", "O"])
  stats = collections.Counter()
  feature = tagging.convert_example(example, ["O", "B-PER"], tokenizer, max_seq_length=6,
                                    stats=stats)
  # 4 slots: "a" fits, the 5 pieces of "Blackburn" do not, and "b" after it is dropped too.
  assert feature.word_positions == [1, -1, -1]
  assert stats["truncated_sentences"] == 1
  assert tagging.word_tags(feature, [0, 0, 1, 1, 1, 1], ["O", "B-PER"]) == ["O", "O", "O"]


def test_word_tags_read_predictions_at_first_sub_tokens(tokenizer):
  example = tagging.TaggingExample("s", ["Al", "Blackburn", "runs"], ["B-PER", "I-PER", "O"])
  labels = ["O", "B-PER", "I-PER"]
  feature = tagging.convert_example(example, labels, tokenizer, max_seq_length=12)
  predicted_ids = [0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  assert tagging.word_tags(feature, predicted_ids, labels) == ["B-PER", "I-PER", "O"]


@pytest.mark.parametrize("tags,chunks", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    # An I- after O starts a chunk (IOB1, or an ill-formed BIO prediction).
    (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),
    # A change of type starts a new chunk even under I-.
    (["B-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),
    # IOB1: B- only separates adjacent chunks of one type.
    (["I-PER", "I-PER", "B-PER"], [("PER", 0, 1), ("PER", 2, 2)]),
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
     [("PER", 0, 0), ("LOC", 1, 3), ("LOC", 4, 4)]),
    (["B-ORG", "B-ORG", "I-ORG"], [("ORG", 0, 0), ("ORG", 1, 2)]),
    (["O", "O"], []),
])
def test_chunks_follow_conlleval_rules(tags, chunks):
  assert tagging.extract_chunks(tags) == chunks


def test_chunk_f1_counts_a_chunk_only_with_exact_boundaries_and_type():
  gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
  predicted = [["B-PER", "O", "O", "B-LOC"], ["B-LOC"]]
  # Gold chunks 3, predicted 3, correct 1 (the LOC at 3).
  scores = tagging.evaluate(gold, predicted)
  assert scores["precision"] == pytest.approx(1 / 3)
  assert scores["recall"] == pytest.approx(1 / 3)
  assert scores["f1"] == pytest.approx(1 / 3)
  assert scores["accuracy"] == pytest.approx(3 / 5)


def test_chunk_f1_is_zero_when_nothing_is_predicted():
  scores = tagging.chunk_scores([["B-PER"]], [["O"]])
  assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_evaluate_examples_requires_every_sentence():
  examples = tagging.parse_conll(["a B-PER", "", "b O"])
  assert tagging.evaluate_examples(examples, {"data-0": ["B-PER"], "data-1": ["O"]})["f1"] == 1.0
  with pytest.raises(ValueError, match="no prediction"):
    tagging.evaluate_examples(examples, {"data-0": ["B-PER"]})


def test_pos_style_tags_can_skip_chunk_scores():
  assert tagging.evaluate([["NN", "VB"]], [["NN", "NN"]], chunked=False) == {"accuracy": 0.5}
