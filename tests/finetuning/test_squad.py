"""SQuAD: reading, windows and max-context flags, span decoding, and the official EM/F1."""
import collections
import json

import pytest

from tpu_electra.finetuning import squad
from tpu_electra.finetuning import squad_decode
from tpu_electra.finetuning import squad_metrics

CONTEXT = "Denver Broncos won Super Bowl 50 in 2016."


def _dataset(qas, context=CONTEXT):
  return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
      {"context": context, "qas": qas}]}]}


def test_whitespace_split_maps_every_character_to_its_word():
  words, char_to_word = squad.split_on_whitespace("a  bc\td")
  assert words == ["a", "bc", "d"]
  assert char_to_word == [0, 0, 0, 1, 1, 1, 2]
  assert squad.split_on_whitespace(" a")[1] == [-1, 0]


def test_training_reader_maps_answer_offsets_to_words(tmp_path):
  path = tmp_path / "train-v1.1.json"
  path.write_text(json.dumps(_dataset([{
      "id": "q1", "question": "Which game?",
      "answers": [{"text": "Super Bowl 50", "answer_start": CONTEXT.index("Super")}]}])))
  (example,) = squad.read_examples(str(path), is_training=True, version_2=False)
  assert example.doc_tokens[example.start_position:example.end_position + 1] == [
      "Super", "Bowl", "50"]
  assert example.answer_texts == ["Super Bowl 50"] and not example.is_impossible


def test_training_reader_skips_and_counts_answers_not_at_their_offset():
  stats = collections.Counter()
  dataset = _dataset([{"id": "q1", "question": "Who?",
                       "answers": [{"text": "Broncos", "answer_start": 0}]}])
  assert squad.examples_from_json(dataset, True, False, stats) == []
  assert stats["answer_mismatch"] == 1


def test_v2_reader_marks_impossible_questions_and_drops_plausible_answers():
  dataset = _dataset([{"id": "q2", "question": "Who lost?", "is_impossible": True, "answers": [],
                       "plausible_answers": [{"text": "Denver", "answer_start": 0}]}])
  (example,) = squad.examples_from_json(dataset, is_training=True, version_2=True)
  assert example.is_impossible
  assert (example.start_position, example.end_position, example.answer_texts) == (-1, -1, [])


def test_eval_reader_keeps_every_gold_answer():
  dataset = _dataset([{"id": "q1", "question": "When?", "answers": [
      {"text": "2016", "answer_start": 36}, {"text": "in 2016", "answer_start": 33}]}])
  (example,) = squad.examples_from_json(dataset, is_training=False, version_2=False)
  assert example.answer_texts == ["2016", "in 2016"]
  assert squad_metrics.gold_answers_from_json(dataset) == {"q1": ["2016", "in 2016"]}


@pytest.mark.parametrize("num_tokens,window,stride", [(12, 5, 2), (7, 7, 3), (10, 4, 4),
                                                       (9, 5, 7), (1, 3, 1)])
def test_doc_spans_cover_every_token_and_end_at_the_last(num_tokens, window, stride):
  spans = squad.doc_spans(num_tokens, window, stride)
  covered = set()
  for start, length in spans:
    assert 0 < length <= window
    covered.update(range(start, start + length))
  assert covered == set(range(num_tokens))
  assert spans[-1][0] + spans[-1][1] == num_tokens
  assert all(b[0] - a[0] == min(stride, a[1]) for a, b in zip(spans, spans[1:]))


def test_max_context_prefers_centred_windows_and_the_first_on_ties():
  spans = squad.doc_spans(9, 5, 2)
  assert spans == [(0, 5), (2, 5), (4, 5)]
  # Token 4: context min(4,0), min(2,2), min(0,4) → the middle window.
  assert [squad.is_max_context(spans, i, 4) for i in range(3)] == [False, True, False]
  # Token 3: min(3,1) = min(1,3) in windows 0 and 1 → the first wins.
  assert [squad.is_max_context(spans, i, 3) for i in range(3)] == [True, False, False]


def _word_example(num_words, answer_word=None):
  words = [f"t{i}" for i in range(num_words)]
  return squad.SquadExample(
      qas_id="q", question_text="q", doc_tokens=words,
      answer_texts=[] if answer_word is None else [words[answer_word]],
      start_position=-1 if answer_word is None else answer_word,
      end_position=-1 if answer_word is None else answer_word,
      is_impossible=answer_word is None)


def test_features_window_the_document_and_flag_each_token_max_context_once(tokenizer):
  # One-token question: 9 - 1 - 3 = 5 document tokens per window, stride 2.
  features = squad.convert_examples_to_features(
      [_word_example(12, answer_word=9)], tokenizer, max_seq_length=9, doc_stride=2,
      max_query_length=4, is_training=True)
  assert [f.doc_span_index for f in features] == [0, 1, 2, 3, 4]
  starts = [0, 2, 4, 6, 8]
  for feature, start in zip(features, starts):
    for position, word in feature.token_to_orig_map.items():
      assert word == start + position - 3
  max_context_counts = collections.Counter(
      feature.token_to_orig_map[p] for feature in features
      for p, is_max in feature.token_is_max_context.items() if is_max)
  assert max_context_counts == {word: 1 for word in range(12)}
  # The answer (token 9) lies in windows starting at 6 and 8; elsewhere the target is [CLS].
  assert [(f.start_position, f.end_position) for f in features] == [
      (0, 0), (0, 0), (0, 0), (6, 6), (4, 4)]
  assert [f.is_impossible for f in features] == [True, True, True, False, False]


def test_features_lay_out_cls_question_sep_document_sep(tokenizer):
  (feature,) = squad.convert_examples_to_features(
      [_word_example(2)], tokenizer, max_seq_length=8, doc_stride=4, max_query_length=4,
      is_training=True)
  q, t0, t1 = (tokenizer.piece_id(w) for w in ("q", "t0", "t1"))
  assert feature.input_ids == [1, q, 2, t0, t1, 2, 0, 0]
  assert feature.segment_ids == [0, 0, 0, 1, 1, 1, 0, 0]
  assert feature.input_mask == [1, 1, 1, 1, 1, 1, 0, 0]
  assert (feature.start_position, feature.end_position, feature.is_impossible) == (0, 0, True)


def test_answer_span_narrows_to_matching_sub_tokens(tokenizer):
  # "abcdef" is three pieces ab|cd|ef; the answer "cd" is the middle piece only.
  context = "xx abcdef yy"
  dataset = _dataset([{"id": "q", "question": "q",
                       "answers": [{"text": "cd", "answer_start": 5}]}], context=context)
  (example,) = squad.examples_from_json(dataset, is_training=True, version_2=False)
  (feature,) = squad.convert_examples_to_features(
      [example], tokenizer, max_seq_length=16, doc_stride=8, max_query_length=4,
      is_training=True)
  assert [feature.token_to_orig_map[p] for p in range(3, 8)] == [0, 1, 1, 1, 2]
  assert (feature.start_position, feature.end_position) == (5, 5)


def _one_window_case(tokenizer):
  example = squad.SquadExample("q", "q", [f"a{i}" for i in range(6)], ["a1"])
  (feature,) = squad.convert_examples_to_features(
      [example], tokenizer, max_seq_length=10, doc_stride=4, max_query_length=4,
      is_training=False)
  # Document words 0..5 sit at positions 3..8.
  start = [0.0, -10, -10, -10, 5.0, 3.0, -10, -10, -10, -10]
  end = [0.0, -10, -10, -10, -10, -10, 3.0, -10, 5.0, -10]
  return example, feature, start, end


def test_decoding_picks_the_highest_scoring_valid_span(tokenizer):
  example, feature, start, end = _one_window_case(tokenizer)
  result = squad_decode.RawResult(feature.unique_id, start, end)
  predictions = squad_decode.decode_predictions([example], [feature], [result], n_best_size=5)
  assert predictions.answers == {"q": "a1 a2 a3 a4 a5"}
  nbest = predictions.nbest["q"]
  assert [e.text for e in nbest[:2]] == ["a1 a2 a3 a4 a5", "a1 a2 a3"]
  assert sum(e.probability for e in nbest) == pytest.approx(1.0)


def test_decoding_respects_max_answer_length(tokenizer):
  example, feature, start, end = _one_window_case(tokenizer)
  result = squad_decode.RawResult(feature.unique_id, start, end)
  predictions = squad_decode.decode_predictions([example], [feature], [result], n_best_size=5,
                                                max_answer_length=3)
  # (4, 8) spans 5 tokens and (5, 8) spans 4; (4, 6) is the best that fits in 3.
  assert predictions.answers == {"q": "a1 a2 a3"}
  assert all(len(e.text.split()) <= 3 for e in predictions.nbest["q"])


def test_null_answer_is_predicted_only_above_the_threshold(tokenizer):
  example, feature, start, end = _one_window_case(tokenizer)
  start[0], end[0] = 6.0, 6.0  # null score 12 vs best span 10: diff 2.
  result = squad_decode.RawResult(feature.unique_id, start, end)

  def decode(threshold):
    return squad_decode.decode_predictions([example], [feature], [result], n_best_size=5,
                                           version_2=True, null_score_diff_threshold=threshold)
  strict = decode(0.0)
  assert strict.answers == {"q": ""}
  assert strict.null_score_diffs == {"q": pytest.approx(2.0)}
  assert "" in [e.text for e in strict.nbest["q"]]
  assert decode(2.0).answers == {"q": "a1 a2 a3 a4 a5"}
  assert decode(3.0).answers == {"q": "a1 a2 a3 a4 a5"}


def test_decoding_judges_a_token_only_in_its_max_context_window(tokenizer):
  example = squad.SquadExample("q", "q", [f"a{i}" for i in range(8)], ["a5"])
  features = squad.convert_examples_to_features(
      [example], tokenizer, max_seq_length=9, doc_stride=2, max_query_length=4,
      is_training=False)
  assert [len(f.token_to_orig_map) for f in features] == [5, 5, 4]
  low = [-10.0] * 9
  # Window 0 loves token 4 (position 7), but token 4's max context is window 1.
  first_start, first_end = list(low), list(low)
  first_start[7] = first_end[7] = 50.0
  # Window 1 (tokens 2..6) mildly prefers token 5, at position 6.
  second_start, second_end = list(low), list(low)
  second_start[6] = second_end[6] = 1.0
  results = [squad_decode.RawResult(features[0].unique_id, first_start, first_end),
             squad_decode.RawResult(features[1].unique_id, second_start, second_end),
             squad_decode.RawResult(features[2].unique_id, low, low)]
  predictions = squad_decode.decode_predictions([example], features, results, n_best_size=3)
  assert predictions.answers == {"q": "a5"}


@pytest.mark.parametrize("raw,normalized", [
    ("The  Cat!", "cat"),
    ("an apple, a pear", "apple pear"),
    ("the-end", "theend"),
    ("Theatre", "theatre"),
    ("A", ""),
    ("  Denver\tBroncos. ", "denver broncos"),
])
def test_normalize_answer_follows_the_official_steps(raw, normalized):
  assert squad_metrics.normalize_answer(raw) == normalized


def test_f1_is_bag_of_tokens_overlap_after_normalization():
  # pred [cat, sat, on, mat], gold [cat, on, mat]: P = 3/4, R = 1.
  assert squad_metrics.f1("the cat sat on mat", "a cat on the mat") == pytest.approx(6 / 7)
  assert squad_metrics.f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_empty_answers_score_differently_in_v1_and_v2():
  assert squad_metrics.f1("", "", version_2=True) == 1.0
  assert squad_metrics.f1("", "", version_2=False) == 0.0
  assert squad_metrics.f1("a", "", version_2=True) == 1.0  # "a" normalizes to nothing too.
  assert squad_metrics.f1("cat", "", version_2=True) == 0.0


def test_v1_takes_the_max_over_golds_and_counts_missing_predictions_as_zero():
  gold = {"a": ["Denver Broncos", "Broncos"], "b": ["x"]}
  scores = squad_metrics.evaluate_v1(gold, {"a": "the Broncos."})
  assert scores == {"exact_match": pytest.approx(50.0), "f1": pytest.approx(50.0)}


def test_v2_breaks_down_has_answer_and_no_answer():
  gold = {"q1": ["cat"], "q2": [], "q3": ["dog", "a dog"], "q4": []}
  predictions = {"q1": "the cat", "q2": "", "q3": "big dog", "q4": "dog"}
  scores = squad_metrics.evaluate_v2(gold, predictions)
  assert scores["exact"] == pytest.approx(50.0)
  # F1: q1 1, q2 1, q3 2/3 (P 1/2, R 1), q4 0.
  assert scores["f1"] == pytest.approx(100 * (2 + 2 / 3) / 4)
  assert scores["HasAns_exact"] == pytest.approx(50.0)
  assert scores["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
  assert scores["NoAns_exact"] == scores["NoAns_f1"] == pytest.approx(50.0)
  assert scores["HasAns_total"] == scores["NoAns_total"] == 2


def test_v2_gold_answers_that_normalize_to_nothing_mean_no_answer():
  exact, f1s = squad_metrics.raw_scores_v2({"q": ["the"]}, {"q": ""})
  assert exact == {"q": 1.0} and f1s == {"q": 1.0}


def test_best_threshold_search_matches_a_hand_sweep():
  gold = {"q1": ["cat"], "q2": [], "q3": ["dog"], "q4": []}
  predictions = {"q1": "cat", "q2": "dog", "q3": "x", "q4": ""}
  na_probs = {"q1": 0.1, "q4": 0.2, "q3": 0.3, "q2": 0.5}
  scores = squad_metrics.evaluate_v2(gold, predictions, na_probs, na_prob_threshold=1.0)
  # All null: q2, q4 right (2). Answer q1 (+1) → 3 at 0.1; q4 (+0); q3 (+0); q2 (−1).
  assert scores["best_exact"] == pytest.approx(75.0)
  assert scores["best_exact_thresh"] == pytest.approx(0.1)
  # Applying 0.1 as the threshold reproduces the best score.
  assert squad_metrics.evaluate_v2(gold, predictions, na_probs, 0.1)["exact"] == pytest.approx(75.0)
  # At threshold 1.0 nothing is forced null: q1 and q4 (empty prediction, no answer) score.
  assert scores["exact"] == pytest.approx(50.0)


def test_logits_peaked_at_training_targets_decode_to_the_gold_answers(tokenizer):
  context = "In 1895 the lighthouse keeper Abernathy moved north to Aberdeenshire with family ."
  qas = [
      {"id": "who", "question": "Who moved?",
       "answers": [{"text": "Abernathy", "answer_start": context.index("Abernathy")}]},
      {"id": "where", "question": "Where to?",
       "answers": [{"text": "Aberdeenshire", "answer_start": context.index("Aberdeenshire")}]},
      {"id": "none", "question": "Why?", "is_impossible": True, "answers": []},
  ]
  dataset = _dataset(qas, context=context)
  examples = squad.examples_from_json(dataset, is_training=True, version_2=True)
  features = squad.convert_examples_to_features(
      examples, tokenizer, max_seq_length=16, doc_stride=3, max_query_length=4,
      is_training=True)
  assert len(features) > len(examples)  # the context needs several windows
  results = []
  for feature in features:
    start, end = [-5.0] * 16, [-5.0] * 16
    start[feature.start_position] += 10.0
    end[feature.end_position] += 10.0
    results.append(squad_decode.RawResult(feature.unique_id, start, end))
  predictions = squad_decode.decode_predictions(examples, features, results, version_2=True)
  assert predictions.answers == {"who": "Abernathy", "where": "Aberdeenshire", "none": ""}
  gold = squad_metrics.gold_answers_from_json(dataset)
  assert squad_metrics.evaluate_v2(gold, predictions.answers)["exact"] == 100.0


def _split_one_character_at_a_time(text):
  words, char_to_word, previous_was_space = [], [], True
  for c in text:
    if c in " \t\r\n\u202f":
      previous_was_space = True
    else:
      if previous_was_space:
        words.append(c)
      else:
        words[-1] += c
      previous_was_space = False
    char_to_word.append(len(words) - 1)
  return words, char_to_word


def test_whitespace_split_is_the_character_loop_on_random_text():
  import random  # pylint: disable=g-import-not-at-top
  rng = random.Random(0)
  for _ in range(200):
    text = "".join(rng.choice(["a", "b", "é", " ", "  ", "\t", "\n", "\r", "\u202f", "\u00a0"])
                   for _ in range(rng.randint(0, 30)))
    assert squad.split_on_whitespace(text) == _split_one_character_at_a_time(text)


def test_max_context_windows_agree_with_is_max_context():
  for num_tokens, window, stride in [(12, 5, 2), (7, 7, 3), (10, 4, 4), (9, 5, 7), (1, 3, 1), (30, 8, 3), (0, 3, 1)]:
    spans = squad.doc_spans(num_tokens, window, stride)
    best = squad.max_context_windows(spans, num_tokens)
    for index in range(len(spans)):
      for position in range(num_tokens):
        assert (best[position] == index) == squad.is_max_context(spans, index, position)
