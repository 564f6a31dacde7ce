"""GLUE readers on hand-written files in the real layouts, task metrics, and the two summaries."""
import collections
import os

import pytest

from tpu_electra.finetuning import glue


def _write_tsv(root, task_dir, split, rows):
  os.makedirs(root / task_dir, exist_ok=True)
  text = "\n".join("\t".join(row) for row in rows) + "\n"
  (root / task_dir / f"{split}.tsv").write_text(text, encoding="utf-8")


MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
               "sentence2"]


def _mnli_row(index, premise, hypothesis, votes, gold):
  return [str(index), "31193", f"{index}n", "government", "( ( x ) )", "( ( y ) )", "(ROOT x)",
          "(ROOT y)", premise, hypothesis] + votes + [gold]


@pytest.fixture
def glue_dir(tmp_path):
  _write_tsv(tmp_path, "CoLA", "train", [
      ["gj04", "1", "", "Our friends won't buy this analysis."],
      ["gj04", "0", "*", "They drank the pub."],
  ])
  _write_tsv(tmp_path, "CoLA", "test", [
      ["index", "sentence"], ["0", "Bill whistled past the house."]])
  _write_tsv(tmp_path, "SST-2", "dev", [
      ["sentence", "label"], ["it 's a charming journey . ", "1"], ['a "bad" film', "0"]])
  _write_tsv(tmp_path, "MRPC", "train", [
      ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
      ["1", "702876", "702977", "Amrozi accused his brother .", "Referring to him , Amrozi ."]])
  _write_tsv(tmp_path, "STS-B", "dev", [
      ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
       "sentence2", "score"],
      ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man plays.",
       "A man is playing.", "5.000"]])
  _write_tsv(tmp_path, "STS-B", "test", [
      ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
       "sentence2"],
      ["0", "main-captions", "MSRvid", "2012test", "0024", "none", "none", "A girl sings.",
       "A girl is singing."]])
  _write_tsv(tmp_path, "QQP", "train", [
      ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
      ["133273", "213221", "213222", "How is the life?", "How is life?", "1"],
      ["402555", "536040", "How do I"],
      ["360472", "364011", "490273", "What is X?", "What is Y?", "0"]])
  _write_tsv(tmp_path, "MNLI", "dev_matched", [
      MNLI_HEADER + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
      _mnli_row(0, "The new rights are nice enough", "Everyone really likes the rights",
                ["neutral", "entailment", "neutral", "neutral", "neutral"], "neutral")])
  _write_tsv(tmp_path, "MNLI", "dev_mismatched", [
      MNLI_HEADER + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
      _mnli_row(0, "Your gift is appreciated", "Hundreds of students benefit",
                ["contradiction"] * 5, "contradiction")])
  _write_tsv(tmp_path, "MNLI", "test_matched", [
      MNLI_HEADER, _mnli_row(0, "Premise here", "Hypothesis here", [], "")[:10]])
  _write_tsv(tmp_path, "QNLI", "dev", [
      ["index", "question", "sentence", "label"],
      ["0", "What came into force?", "The treaty came into force.", "entailment"]])
  _write_tsv(tmp_path, "RTE", "train", [
      ["index", "sentence1", "sentence2", "label"],
      ["0", "No weapons were found.", "Weapons were found.", "not_entailment"]])
  _write_tsv(tmp_path, "WNLI", "dev", [
      ["index", "sentence1", "sentence2", "label"],
      ["0", "The drain is clogged with hair.", "The hair has to be cleaned.", "1"]])
  return str(tmp_path)


def test_cola_train_has_no_header_and_reads_sentence_and_label(glue_dir):
  examples = glue.read_examples(glue_dir, "cola", "train")
  assert [(e.guid, e.text_a, e.text_b, e.label) for e in examples] == [
      ("train-0", "Our friends won't buy this analysis.", None, "1"),
      ("train-1", "They drank the pub.", None, "0")]


def test_cola_test_skips_its_header_and_has_no_label(glue_dir):
  examples = glue.read_examples(glue_dir, "CoLA", "test")
  assert [(e.guid, e.text_a, e.label) for e in examples] == [
      ("test-0", "Bill whistled past the house.", None)]


def test_sst2_keeps_quote_characters_as_text(glue_dir):
  examples = glue.read_examples(glue_dir, "SST-2", "dev")
  assert [(e.text_a, e.label) for e in examples] == [
      ("it 's a charming journey . ", "1"), ('a "bad" film', "0")]


def test_mrpc_reads_quality_as_label_and_both_strings(glue_dir):
  (example,) = glue.read_examples(glue_dir, "mrpc", "train")
  assert (example.text_a, example.text_b, example.label) == (
      "Amrozi accused his brother .", "Referring to him , Amrozi .", "1")


def test_stsb_reads_columns_7_8_and_a_float_score(glue_dir):
  (dev,) = glue.read_examples(glue_dir, "sts-b", "dev")
  assert (dev.text_a, dev.text_b, dev.label) == ("A man plays.", "A man is playing.", 5.0)
  (test,) = glue.read_examples(glue_dir, "STS-B", "test")
  assert (test.text_a, test.text_b, test.label) == ("A girl sings.", "A girl is singing.", None)


def test_qqp_skips_and_counts_malformed_rows_keeping_row_numbers(glue_dir):
  stats = collections.Counter()
  examples = glue.read_examples(glue_dir, "qqp", "train", stats=stats)
  assert stats["malformed_rows"] == 1
  assert [(e.guid, e.text_a, e.text_b, e.label) for e in examples] == [
      ("train-0", "How is the life?", "How is life?", "1"),
      ("train-2", "What is X?", "What is Y?", "0")]


def test_mnli_reads_matched_and_mismatched_dev_with_gold_label_last(glue_dir):
  (matched,) = glue.read_examples(glue_dir, "mnli", "dev_matched")
  (mismatched,) = glue.read_examples(glue_dir, "mnli", "dev_mismatched")
  assert (matched.text_a, matched.text_b, matched.label) == (
      "The new rights are nice enough", "Everyone really likes the rights", "neutral")
  assert mismatched.label == "contradiction"
  (test,) = glue.read_examples(glue_dir, "mnli", "test_matched")
  assert (test.text_a, test.text_b, test.label) == ("Premise here", "Hypothesis here", None)


def test_mnli_has_no_plain_dev_split(glue_dir):
  with pytest.raises(ValueError, match="dev_matched"):
    glue.read_examples(glue_dir, "mnli", "dev")


def test_qnli_rte_wnli_read_index_sentence_sentence_label(glue_dir):
  (qnli,) = glue.read_examples(glue_dir, "qnli", "dev")
  (rte,) = glue.read_examples(glue_dir, "rte", "train")
  (wnli,) = glue.read_examples(glue_dir, "wnli", "dev")
  assert (qnli.text_a, qnli.text_b, qnli.label) == (
      "What came into force?", "The treaty came into force.", "entailment")
  assert rte.label == "not_entailment"
  assert (wnli.text_b, wnli.label) == ("The hair has to be cleaned.", "1")


def test_a_label_outside_the_label_list_is_an_error():
  task = glue.get_task("rte")
  rows = [["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "neutral"]]
  with pytest.raises(ValueError, match="not one of"):
    glue.rows_to_examples(task, "dev", rows, source="RTE/dev.tsv")


def test_a_short_row_is_an_error_outside_qqp():
  task = glue.get_task("rte")
  with pytest.raises(ValueError, match=r"RTE/dev.tsv:2: expected at least 4 columns"):
    glue.rows_to_examples(task, "dev", [["index"], ["0", "a"]], source="RTE/dev.tsv")


def test_registry_knows_labels_regression_and_aliases():
  assert glue.get_task("SST-2") is glue.get_task("sst2") is glue.TASKS["sst-2"]
  assert glue.get_task("STS-B").is_regression and glue.get_task("sts-b").num_labels == 1
  assert glue.get_task("mnli").label_list == ("contradiction", "entailment", "neutral")
  assert not glue.get_task("qnli").is_regression
  assert glue.result_key(glue.get_task("mnli"), "dev_mismatched") == "mnli-mm"
  with pytest.raises(ValueError, match="unknown GLUE task"):
    glue.get_task("ax")


def test_task_metrics_follow_glue_definitions():
  assert glue.evaluate("cola", [1, 1, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 1, 0]) == {
      "mcc": pytest.approx(0.5)}
  assert glue.evaluate("mrpc", [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == {
      "accuracy": pytest.approx(0.6), "f1": pytest.approx(2 / 3)}
  sts = glue.evaluate("sts-b", [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
  assert set(sts) == {"pearson", "spearman"}
  assert glue.evaluate("qnli", [0, 1], [0, 0]) == {"accuracy": 0.5}


def test_pair_feature_truncates_the_longer_side_and_sets_segments(tokenizer):
  example = glue.GlueExample("dev-0", "a b c d e", "x y", "entailment")
  feature = glue.convert_example(example, glue.get_task("rte"), tokenizer, max_seq_length=8)
  a, b, c, x, y = (tokenizer.piece_id(w) for w in "abcxy")
  cls, sep = tokenizer.special_token_ids["[CLS]"], tokenizer.special_token_ids["[SEP]"]
  # 8 - 3 specials leaves 5 tokens: only the 5-token first sentence gives any up.
  assert feature.input_ids == [cls, a, b, c, sep, x, y, sep]
  assert feature.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]
  assert feature.input_mask == [1] * 8
  assert feature.label_id == 0 and feature.has_label


def test_truncate_pair_takes_from_the_longer_sequence():
  assert glue.truncate_pair(list(range(10)), list(range(2)), 6) == (4, 2)
  assert glue.truncate_pair(list(range(3)), list(range(3)), 4) == (2, 2)


def test_unlabelled_features_are_marked(tokenizer):
  example = glue.GlueExample("test-0", "a b", None, None)
  cls_feature = glue.convert_example(example, glue.get_task("cola"), tokenizer, 6)
  sts_feature = glue.convert_example(example, glue.get_task("sts-b"), tokenizer, 6)
  pad = tokenizer.special_token_ids["[PAD]"]
  assert cls_feature.input_ids[-2:] == [pad, pad] and cls_feature.input_mask == [1] * 4 + [0, 0]
  assert (cls_feature.label_id, cls_feature.has_label) == (-1, False)
  assert (sts_feature.label_id, sts_feature.has_label) == (0.0, False)


FULL_RESULTS = {
    "cola": {"mcc": 0.60},
    "sst-2": {"accuracy": 0.90},
    "mrpc": {"accuracy": 0.86, "f1": 0.90},
    "sts-b": {"pearson": 0.88, "spearman": 0.86},
    "qqp": {"accuracy": 0.89, "f1": 0.85},
    "mnli-m": {"accuracy": 0.82},
    "mnli-mm": {"accuracy": 0.80},
    "qnli": {"accuracy": 0.88},
    "rte": {"accuracy": 0.66},
    "wnli": {"accuracy": 0.56},
}


def test_electra_average_uses_accuracy_for_mrpc_qqp_and_spearman_for_sts():
  summary = glue.summarize(FULL_RESULTS)
  # 60 + 90 + 86 + 86 + 89 + 82 + 88 + 66 = 647 over 8 tasks.
  assert summary.electra_average == pytest.approx(647 / 8)
  assert summary.electra_missing == []


def test_glue_score_averages_two_metric_tasks_and_includes_wnli():
  summary = glue.summarize(FULL_RESULTS)
  # CoLA 60, SST 90, MRPC 88, STS 87, QQP 87, MNLI 81, QNLI 88, RTE 66, WNLI 56 → 703 / 9.
  assert summary.glue_task_scores["mrpc"] == pytest.approx(88.0)
  assert summary.glue_task_scores["mnli"] == pytest.approx(81.0)
  assert summary.glue_score == pytest.approx(703 / 9)


def test_missing_tasks_leave_a_summary_undefined_and_named():
  results = {k: v for k, v in FULL_RESULTS.items() if k not in ("wnli", "mnli-mm")}
  summary = glue.summarize(results)
  assert summary.electra_average == pytest.approx(647 / 8)
  assert summary.glue_score is None
  assert summary.glue_missing == ["mnli-mm/accuracy", "wnli/accuracy"]
