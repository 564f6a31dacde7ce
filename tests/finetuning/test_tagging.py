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


# Each case worked by hand from conlleval's startOfChunk / endOfChunk (its 2004 perl source).
@pytest.mark.parametrize("tags,chunks", [
    # BIO (IOB2): every chunk opens with B-.
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    # IOB1: an I- after O starts a chunk (in BIO, an ill-formed prediction that is read the same way).
    (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),
    (["I-PER", "O", "I-PER"], [("PER", 0, 0), ("PER", 2, 2)]),
    # An I-X after B-Y starts a new chunk: a change of type always does.
    (["B-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),
    (["I-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
    # IOB1: B- only separates adjacent chunks of one type.
    (["I-PER", "I-PER", "B-PER"], [("PER", 0, 1), ("PER", 2, 2)]),
    (["I-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    (["B-ORG", "B-ORG", "I-ORG"], [("ORG", 0, 0), ("ORG", 1, 2)]),
    # A chunk that runs to the end of the sentence is closed there.
    (["O", "B-ORG", "I-ORG"], [("ORG", 1, 2)]),
    (["I-MISC"], [("MISC", 0, 0)]),
    # The type is everything after the first hyphen.
    (["B-MISC-X", "I-MISC-X", "I-MISC"], [("MISC-X", 0, 1), ("MISC", 2, 2)]),
    # Untyped chunk tags (a bare B or I): chunks with an empty type.
    (["B", "I", "O", "I", "B"], [("", 0, 1), ("", 3, 3), ("", 4, 4)]),
    (["O", "O"], []),
    # IOBES (beyond conlleval, see the module docstring): E- and S- close a chunk.
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"], [("PER", 0, 0), ("LOC", 1, 3), ("LOC", 4, 4)]),
    (["B-LOC", "E-LOC", "B-LOC", "E-LOC"], [("LOC", 0, 1), ("LOC", 2, 3)]),
    # BILOU as IOBES, bare types as IO tags.
    (["U-PER", "B-LOC", "L-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
    (["PER", "PER", "O", "LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
])
def test_chunks_follow_conlleval_rules(tags, chunks):
  assert tagging.extract_chunks(tags) == chunks


def test_a_tag_with_an_unknown_prefix_is_refused():
  with pytest.raises(ValueError, match="tag 'X-PER' has prefix 'X'"):
    tagging.extract_chunks(["X-PER"])


# (gold, predicted, conlleval's "N phrases; found: M phrases; correct: K"), each also run through the perl script.
@pytest.mark.parametrize("gold,predicted,counts", [
    # An IOB1 prediction of IOB2 gold: the same chunks, so every chunk is right though 2 of 5 tags differ.
    ([["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]], [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]], (3, 3, 3)),
    # Right boundaries, wrong type.
    ([["B-PER", "I-PER", "O"]], [["B-ORG", "I-ORG", "O"]], (1, 1, 0)),
    # Boundary errors: ends too early, ends too late, starts too late.
    ([["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"]],
     [["B-PER", "O", "O", "B-LOC", "I-LOC", "O", "B-ORG"]], (3, 3, 0)),
    ([["B-MISC", "I-MISC", "I-MISC"]], [["O", "B-MISC", "I-MISC"]], (1, 1, 0)),
    # A type change inside a predicted chunk splits it in two, neither of them right.
    ([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]], (1, 2, 0)),
    # A chunk running to the end of a sentence does not go on into the next one.
    ([["O", "B-ORG", "I-ORG"], ["I-ORG", "O"]], [["O", "B-ORG", "I-ORG"], ["B-ORG", "O"]], (2, 2, 2)),
])
def test_chunk_counts_are_conllevals(gold, predicted, counts):
  assert tagging.chunk_counts(gold, predicted) == counts


def test_chunk_f1_counts_a_chunk_only_with_exact_boundaries_and_type():
  gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
  predicted = [["B-PER", "O", "O", "B-LOC"], ["B-LOC"]]
  # Gold chunks 3, predicted 3, correct 1 (the LOC at 3).
  scores = tagging.evaluate(gold, predicted)
  assert scores["precision"] == pytest.approx(1 / 3)
  assert scores["recall"] == pytest.approx(1 / 3)
  assert scores["f1"] == pytest.approx(1 / 3)
  assert scores["accuracy"] == pytest.approx(3 / 5)


def test_chunk_scores_over_sentences_match_conlleval_by_hand():
  # conlleval: "9 tokens with 4 phrases; found: 4 phrases; correct: 2", precision = recall = FB1 = 50.00.
  gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"]]
  predicted = [["B-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "I-ORG", "O", "O", "B-PER"]]
  assert tagging.chunk_scores(gold, predicted) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
  assert tagging.word_accuracy(gold, predicted) == pytest.approx(6 / 9)


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
