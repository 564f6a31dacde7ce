"""SQuAD 1.1 and 2.0: reader, doc-stride features, n-best span decoding and the official EM/F1.

Words are whitespace-separated runs of the context, as in BERT's run_squad; answers are mapped
from character offsets to word indices and from words to sub-tokens by tokenizing each word on its
own, which keeps the token → word map exact for any tokenizer that satisfies
`features.Tokenizer`. Predicted answers are the original words a span covers, joined by single
spaces: with an ids-only tokenizer there are no token strings to align a span inside a word, and
the official normalization makes the difference vanish in all but rare cases (an answer that is
only part of a whitespace word, e.g. "Steve" inside "Steve's").

Metrics follow the official evaluation scripts' definitions: answers are normalized by lower
casing, removing punctuation, removing the articles a/an/the and collapsing white space; EM and F1
take the maximum over the gold answers; in 2.0 an unanswerable question's only gold answer is ""
and an empty prediction or gold scores F1 1 when both are empty, 0 otherwise. Scores are
percentages, as the scripts print them.
"""
import collections
import dataclasses
import json
import math
import re
import string
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tpu_electra.finetuning import features
from tpu_electra import fileio


@dataclasses.dataclass
class SquadExample:
  """One question over one context.

  Attributes:
    qas_id: the question id predictions are keyed by.
    question_text: the question.
    doc_tokens: the context split on white space.
    answer_texts: every gold answer text (empty for an unanswerable 2.0 question).
    start_position: word index where the first answer starts (training only; -1 otherwise).
    end_position: word index where it ends, inclusive (training only; -1 otherwise).
    is_impossible: 2.0's unanswerable flag.
  """
  qas_id: str
  question_text: str
  doc_tokens: List[str]
  answer_texts: List[str]
  start_position: int = -1
  end_position: int = -1
  is_impossible: bool = False


# U+202F (narrow no-break space) occurs inside SQuAD contexts and separates words there.
_WORD = re.compile("[^ \t\r\n\u202f]+")


def split_on_whitespace(text: str) -> Tuple[List[str], List[int]]:
  """Words of `text` and, for each character, the index of the word it belongs to.

  A white-space character maps to the word before it (-1 before the first word), so an answer
  offset that lands on a space still resolves to a word.
  """
  matches = list(_WORD.finditer(text))
  starts = np.zeros(len(text) + 1, np.int64)
  starts[[m.start() for m in matches]] = 1
  return [m.group() for m in matches], (np.cumsum(starts[:len(text)]) - 1).tolist()


def _answer_word_span(words: Sequence[str], char_to_word: Sequence[int],
                      answer: Mapping) -> Optional[Tuple[int, int]]:
  """The answer's inclusive word span, or None when the words do not contain its text."""
  text = answer["text"]
  start_char = answer["answer_start"]
  if not text or start_char < 0 or start_char + len(text) > len(char_to_word):
    return None
  start = char_to_word[start_char]
  end = char_to_word[start_char + len(text) - 1]
  covered = " ".join(words[start:end + 1])
  # Annotation offsets are sometimes off; such answers would train the model on the wrong span.
  if " ".join(text.split()) not in covered:
    return None
  return start, end


def examples_from_json(dataset: Mapping, is_training: bool, version_2: bool,
                       stats: Optional[collections.Counter] = None) -> List[SquadExample]:
  """Examples from a parsed SQuAD file (the object with a "data" list).

  Args:
    dataset: the parsed JSON.
    is_training: compute the first answer's word span, and skip questions whose answer text is
      not found at its offset (counted as `stats["answer_mismatch"]`).
    version_2: read `is_impossible`; in 1.1 every question is answerable.
    stats: optional counter for skipped questions.
  """
  examples = []
  for article in dataset["data"]:
    for paragraph in article["paragraphs"]:
      words, char_to_word = split_on_whitespace(paragraph["context"])
      for qa in paragraph["qas"]:
        is_impossible = bool(version_2 and qa.get("is_impossible", False))
        answers = [] if is_impossible else list(qa.get("answers", []))
        start = end = -1
        if is_training and not is_impossible:
          if not answers:
            raise ValueError(f"training question {qa['id']} has no answer")
          span = _answer_word_span(words, char_to_word, answers[0])
          if span is None:
            if stats is not None:
              stats["answer_mismatch"] += 1
            continue
          start, end = span
        examples.append(SquadExample(
            qas_id=qa["id"], question_text=qa["question"], doc_tokens=words,
            answer_texts=[a["text"] for a in answers], start_position=start,
            end_position=end, is_impossible=is_impossible))
  return examples


def read_examples(path: str, is_training: bool, version_2: bool,
                  stats: Optional[collections.Counter] = None) -> List[SquadExample]:
  """Reads a SQuAD 1.1 or 2.0 JSON file (local or gs://)."""
  with fileio.open_text(path) as f:
    dataset = json.load(f)
  return examples_from_json(dataset, is_training, version_2, stats)


@dataclasses.dataclass
class SquadFeature:
  """One window of one example, as the model sees it.

  Attributes:
    unique_id: key that ties a model output back to this feature.
    example_index: index of the example in the list that was converted.
    doc_span_index: which window of the example this is.
    input_ids, input_mask, segment_ids: `[CLS] question [SEP] window [SEP]`, padded.
    token_to_orig_map: input position → word index of the example, for window positions.
    token_is_max_context: input position → whether this window gives that token its most
      context (more tokens on its narrower side) of all windows containing it.
    start_position, end_position: answer span in input positions; 0 (the [CLS] position) when the
      example is unanswerable or its answer is not wholly inside this window.
    is_impossible: whether this feature's target is the [CLS] position.
  """
  unique_id: int
  example_index: int
  doc_span_index: int
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]
  token_to_orig_map: Dict[int, int]
  token_is_max_context: Dict[int, bool]
  start_position: int = 0
  end_position: int = 0
  is_impossible: bool = False


def doc_spans(num_tokens: int, max_tokens_per_span: int,
              doc_stride: int) -> List[Tuple[int, int]]:
  """(start, length) windows over `num_tokens` tokens, each starting `doc_stride` after the last.

  The last window ends at the last token; every token is in at least one window. An empty
  document still gets one empty window so that every example has a feature (and, in 2.0, a
  null-answer score).
  """
  if max_tokens_per_span <= 0 or doc_stride <= 0:
    raise ValueError("window length and doc_stride must be positive")
  if num_tokens == 0:
    return [(0, 0)]
  spans = []
  start = 0
  while True:
    length = min(num_tokens - start, max_tokens_per_span)
    spans.append((start, length))
    if start + length >= num_tokens:
      return spans
    start += min(length, doc_stride)


def is_max_context(spans: Sequence[Tuple[int, int]], span_index: int, position: int) -> bool:
  """Whether window `span_index` is the best of those containing token `position`.

  A window's score for a token is the smaller of its left and right context plus 1% of the
  window's length (to prefer longer windows on a tie); the first window wins an exact tie.
  """
  best_score, best_index = None, None
  for index, (start, length) in enumerate(spans):
    end = start + length - 1
    if position < start or position > end:
      continue
    score = min(position - start, end - position) + 0.01 * length
    if best_score is None or score > best_score:
      best_score, best_index = score, index
  return best_index == span_index


def max_context_windows(spans: Sequence[Tuple[int, int]], num_tokens: int) -> np.ndarray:
  """For every token, the window `is_max_context` picks for it (-1 for a token in no window)."""
  best = np.full([num_tokens], -1, np.int64)
  best_score = np.full([num_tokens], -np.inf)
  for index, (start, length) in enumerate(spans):
    end = start + length - 1
    positions = np.arange(start, start + length)
    score = np.minimum(positions - start, end - positions) + 0.01 * length
    better = score > best_score[start:start + length]
    best[start:start + length][better] = index
    best_score[start:start + length][better] = score[better]
  return best


def _improve_answer_span(doc_ids: Sequence[int], start: int, end: int,
                         answer_ids: Sequence[int]) -> Tuple[int, int]:
  """Narrows a word-aligned token span to the sub-tokens of the answer text, if found inside.

  When the answer is "1895" and the word is "(1895)", the word's sub-tokens include the brackets;
  the tokenized answer, if it appears as a contiguous run inside the span, is the better target.
  """
  n = len(answer_ids)
  if n == 0:
    return start, end
  target = list(answer_ids)
  for new_start in range(start, end - n + 2):
    if list(doc_ids[new_start:new_start + n]) == target:
      return new_start, new_start + n - 1
  return start, end


def tokenize_document(tokenizer: features.Tokenizer,
                      words: Sequence[str]) -> Tuple[List[int], List[int], List[int]]:
  """(sub-token ids, sub-token → word index, word → index of its first sub-token).

  A word that tokenizes to nothing maps to the index of the next word's first sub-token.
  """
  doc_ids, tok_to_orig, orig_to_tok = [], [], []
  for word_index, word_ids in enumerate(features.tokenize_each(tokenizer, words)):
    orig_to_tok.append(len(doc_ids))
    tok_to_orig.extend([word_index] * len(word_ids))
    doc_ids.extend(word_ids)
  return doc_ids, tok_to_orig, orig_to_tok


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer: features.Tokenizer,
                                 max_seq_length: int, doc_stride: int, max_query_length: int,
                                 is_training: bool,
                                 first_unique_id: int = 1000000000,
                                 first_example_index: int = 0) -> List[SquadFeature]:
  """Tokenizes and windows every example.

  Args:
    examples: from `read_examples`.
    tokenizer: the ids-only tokenizer protocol.
    max_seq_length: length of every feature.
    doc_stride: tokens between the starts of consecutive windows.
    max_query_length: questions are cut to this many tokens.
    is_training: set start/end positions (otherwise they stay 0).
    first_unique_id: unique ids count up from here.
    first_example_index: the `example_index` of `examples[0]` (when converting a chunk of a list).
  """
  ids = features.special_ids(tokenizer)
  result = []
  unique_id = first_unique_id
  last_words = None
  for example_index, example in enumerate(examples, start=first_example_index):
    query_ids = tokenizer.tokenize(example.question_text)[:max_query_length]
    # [CLS] query [SEP] ... [SEP]
    max_tokens_for_doc = max_seq_length - len(query_ids) - 3
    if max_tokens_for_doc <= 0:
      raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the document after a "
                       f"{len(query_ids)}-token question")
    # Questions on one paragraph share its word list and arrive together: tokenize it once.
    if last_words is not example.doc_tokens:
      last_words = example.doc_tokens
      doc_ids, tok_to_orig, orig_to_tok = tokenize_document(tokenizer, example.doc_tokens)

    tok_start = tok_end = -1
    if is_training and not example.is_impossible:
      tok_start = orig_to_tok[example.start_position]
      if example.end_position < len(example.doc_tokens) - 1:
        tok_end = orig_to_tok[example.end_position + 1] - 1
      else:
        tok_end = len(doc_ids) - 1
      tok_start, tok_end = _improve_answer_span(
          doc_ids, tok_start, tok_end, tokenizer.tokenize(example.answer_texts[0]))

    spans = doc_spans(len(doc_ids), max_tokens_for_doc, doc_stride)
    best_window = max_context_windows(spans, len(doc_ids))
    doc_offset = len(query_ids) + 2
    for span_index, (span_start, span_length) in enumerate(spans):
      window = doc_ids[span_start:span_start + span_length]
      packed = features.pack_segments([query_ids, window], [0, 1], max_seq_length, ids)
      positions = range(doc_offset, doc_offset + span_length)
      token_to_orig = dict(zip(positions, tok_to_orig[span_start:span_start + span_length]))
      max_context = dict(zip(positions, (best_window[span_start:span_start + span_length] == span_index).tolist()))
      start_position = end_position = 0
      impossible = True
      if is_training and not example.is_impossible:
        span_end = span_start + span_length - 1
        if span_start <= tok_start and tok_end <= span_end:
          start_position = tok_start - span_start + doc_offset
          end_position = tok_end - span_start + doc_offset
          impossible = False
      elif not is_training:
        impossible = example.is_impossible
      result.append(SquadFeature(
          unique_id=unique_id, example_index=example_index, doc_span_index=span_index,
          input_ids=packed.input_ids, input_mask=packed.input_mask,
          segment_ids=packed.segment_ids, token_to_orig_map=token_to_orig,
          token_is_max_context=max_context, start_position=start_position,
          end_position=end_position, is_impossible=impossible))
      unique_id += 1
  return result


@dataclasses.dataclass(frozen=True)
class RawResult:
  """The model's start and end logits over one feature's positions."""
  unique_id: int
  start_logits: Sequence[float]
  end_logits: Sequence[float]


@dataclasses.dataclass(frozen=True)
class NbestEntry:
  text: str
  probability: float
  start_logit: float
  end_logit: float


@dataclasses.dataclass
class SquadPredictions:
  """Decoded answers.

  Attributes:
    answers: question id → predicted answer text ("" for a null prediction).
    nbest: question id → the n best distinct answers, best first, with softmax probabilities.
    null_score_diffs: (2.0) question id → null score − best non-null span score; the null answer
      is predicted when this exceeds the threshold. +inf when no valid span exists. Pass these as
      `na_probs` to `evaluate_v2` to search for the best threshold.
  """
  answers: Dict[str, str]
  nbest: Dict[str, List[NbestEntry]]
  null_score_diffs: Dict[str, float]


def _top_indexes(logits: Sequence[float], n: int) -> List[int]:
  return sorted(range(len(logits)), key=lambda i: logits[i], reverse=True)[:n]


def _softmax(scores: Sequence[float]) -> List[float]:
  if not scores:
    return []
  top = max(scores)
  exps = [math.exp(s - top) for s in scores]
  total = sum(exps)
  return [e / total for e in exps]


@dataclasses.dataclass(frozen=True)
class _Candidate:
  text: str
  start_logit: float
  end_logit: float

  @property
  def score(self) -> float:
    return self.start_logit + self.end_logit


def _span_candidates(example: SquadExample, feature: SquadFeature, result: RawResult,
                     n_best_size: int, max_answer_length: int) -> List[_Candidate]:
  """Valid spans among the top start × top end positions of one feature."""
  candidates = []
  for start in _top_indexes(result.start_logits, n_best_size):
    for end in _top_indexes(result.end_logits, n_best_size):
      # Positions outside the window (question, specials, padding) cannot hold an answer, and a
      # token is judged only in the window that gives it the most context.
      if start not in feature.token_to_orig_map or end not in feature.token_to_orig_map:
        continue
      if not feature.token_is_max_context.get(start, False):
        continue
      if end < start or end - start + 1 > max_answer_length:
        continue
      first_word = feature.token_to_orig_map[start]
      last_word = feature.token_to_orig_map[end]
      text = " ".join(example.doc_tokens[first_word:last_word + 1])
      candidates.append(_Candidate(text, float(result.start_logits[start]),
                                   float(result.end_logits[end])))
  return candidates


def _nbest(candidates: Sequence[_Candidate], n_best_size: int,
           null: Optional[_Candidate]) -> List[_Candidate]:
  """Best-scoring distinct texts; in 2.0 the null answer competes and is kept even if outranked."""
  pool = list(candidates) + ([null] if null is not None else [])
  pool.sort(key=lambda c: c.score, reverse=True)
  chosen, seen = [], set()
  for candidate in pool:
    if len(chosen) >= n_best_size:
      break
    if candidate.text in seen:
      continue
    seen.add(candidate.text)
    chosen.append(candidate)
  if null is not None and null.text not in seen:
    chosen.append(null)
  if not chosen:
    chosen.append(_Candidate("", 0.0, 0.0))
  return chosen


def decode_predictions(examples: Sequence[SquadExample], features_list: Sequence[SquadFeature],
                       results: Iterable[RawResult], n_best_size: int = 20,
                       max_answer_length: int = 30, version_2: bool = False,
                       null_score_diff_threshold: float = 0.0) -> SquadPredictions:
  """Turns per-feature logits into one answer per question.

  For each example, every feature proposes spans from its `n_best_size` best start and end
  positions; spans longer than `max_answer_length` tokens, reversed, outside the window or not in
  their max-context window are dropped. In 2.0 the null score is the smallest [CLS] start+end
  score over the example's features, and "" is predicted when null score − best span score
  exceeds `null_score_diff_threshold`.
  """
  results_by_id = {r.unique_id: r for r in results}
  features_by_example = collections.defaultdict(list)
  for feature in features_list:
    features_by_example[feature.example_index].append(feature)

  answers, nbest_out, null_diffs = {}, {}, {}
  for example_index, example in enumerate(examples):
    candidates = []
    null = None
    for feature in features_by_example.get(example_index, []):
      if feature.unique_id not in results_by_id:
        raise ValueError(f"no model output for feature {feature.unique_id}")
      result = results_by_id[feature.unique_id]
      candidates.extend(_span_candidates(example, feature, result, n_best_size,
                                         max_answer_length))
      if version_2:
        feature_null = _Candidate("", float(result.start_logits[0]), float(result.end_logits[0]))
        if null is None or feature_null.score < null.score:
          null = feature_null
    chosen = _nbest(candidates, n_best_size, null)
    probabilities = _softmax([c.score for c in chosen])
    nbest_out[example.qas_id] = [
        NbestEntry(c.text, p, c.start_logit, c.end_logit) for c, p in zip(chosen, probabilities)]
    if not version_2:
      answers[example.qas_id] = chosen[0].text
      continue
    best_non_null = next((c for c in chosen if c.text), None)
    if best_non_null is None or null is None:
      null_diffs[example.qas_id] = math.inf
      answers[example.qas_id] = ""
      continue
    diff = null.score - best_non_null.score
    null_diffs[example.qas_id] = diff
    answers[example.qas_id] = "" if diff > null_score_diff_threshold else best_non_null.text
  return SquadPredictions(answers=answers, nbest=nbest_out, null_score_diffs=null_diffs)


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
  """Lower case, drop punctuation, drop the articles a/an/the, collapse white space.

  The order is the official scripts': punctuation goes first, so "the-end" becomes "theend" and
  keeps its article, while "the end" loses it.
  """
  text = text.lower()
  text = "".join(c for c in text if c not in _PUNCTUATION)
  text = _ARTICLES.sub(" ", text)
  return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
  return int(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str, version_2: bool = True) -> float:
  """Bag-of-tokens F1 between normalized answers.

  The two scripts differ only when a side normalizes to nothing: 2.0 scores 1 if both are empty
  and 0 if one is; 1.1 has no such rule and scores 0 whenever no token is shared.
  """
  pred_tokens = normalize_answer(prediction).split()
  gold_tokens = normalize_answer(gold).split()
  if version_2 and (not pred_tokens or not gold_tokens):
    return float(pred_tokens == gold_tokens)
  common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
  num_same = sum(common.values())
  if num_same == 0:
    return 0.0
  precision = num_same / len(pred_tokens)
  recall = num_same / len(gold_tokens)
  return 2.0 * precision * recall / (precision + recall)


def gold_answers_from_examples(examples: Iterable[SquadExample]) -> Dict[str, List[str]]:
  """question id → gold answer texts (empty list for an unanswerable question)."""
  return {e.qas_id: list(e.answer_texts) for e in examples}


def gold_answers_from_json(dataset: Mapping) -> Dict[str, List[str]]:
  """question id → gold answer texts, straight from a parsed SQuAD file as the scripts read it."""
  gold = {}
  for article in dataset["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        gold[qa["id"]] = [a["text"] for a in qa.get("answers", [])]
  return gold


def evaluate_v1(gold_answers: Mapping[str, Sequence[str]],
                predictions: Mapping[str, str]) -> Dict[str, float]:
  """SQuAD 1.1 EM and F1 (percent); a question without a prediction scores 0 but still counts."""
  exact_total = f1_total = 0.0
  for qid, golds in gold_answers.items():
    if not golds:
      raise ValueError(f"SQuAD 1.1 question {qid} has no gold answer")
    if qid not in predictions:
      continue
    prediction = predictions[qid]
    exact_total += max(exact_match(prediction, g) for g in golds)
    f1_total += max(f1(prediction, g, version_2=False) for g in golds)
  total = len(gold_answers)
  return {"exact_match": 100.0 * exact_total / total, "f1": 100.0 * f1_total / total}


def raw_scores_v2(gold_answers: Mapping[str, Sequence[str]],
                  predictions: Mapping[str, str]) -> Tuple[Dict[str, float], Dict[str, float]]:
  """Per-question EM and F1 before any threshold; questions without a prediction are left out.

  Gold answers that normalize to nothing are dropped, and a question left with none has the
  single gold answer "".
  """
  exact, f1s = {}, {}
  for qid, golds in gold_answers.items():
    if qid not in predictions:
      continue
    kept = [g for g in golds if normalize_answer(g)] or [""]
    prediction = predictions[qid]
    exact[qid] = float(max(exact_match(prediction, g) for g in kept))
    f1s[qid] = max(f1(prediction, g, version_2=True) for g in kept)
  return exact, f1s


def apply_no_answer_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                              has_answer: Mapping[str, bool],
                              threshold: float) -> Dict[str, float]:
  """Where na_prob > threshold the prediction is taken as null: 1 if the question has no answer."""
  missing = [qid for qid in scores if qid not in na_probs]
  if missing:
    raise ValueError(f"{len(missing)} questions have no no-answer score, e.g. {missing[0]}")
  return {qid: (float(not has_answer[qid]) if na_probs[qid] > threshold else s)
          for qid, s in scores.items()}


def find_best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                        na_probs: Mapping[str, float],
                        has_answer: Mapping[str, bool]) -> Tuple[float, float]:
  """The threshold on na_prob that maximizes the total score, and that score (percent).

  Starts from "every question null" (each unanswerable one scores 1) and lowers the bar one
  question at a time in increasing na_prob: answering an answerable question adds its score,
  answering an unanswerable one with a non-empty prediction costs 1. This is the official
  script's sweep, including its starting threshold of 0.0.
  """
  current = sum(1 for qid in scores if not has_answer[qid])
  best, best_threshold = current, 0.0
  for qid in sorted(scores, key=lambda q: na_probs[q]):
    if has_answer[qid]:
      current += scores[qid]
    elif predictions[qid]:
      current -= 1
    if current > best:
      best, best_threshold = current, na_probs[qid]
  return 100.0 * best / len(scores), best_threshold


def _mean_percent(scores: Mapping[str, float], qids: Sequence[str]) -> float:
  return 100.0 * sum(scores[q] for q in qids) / len(qids)


def evaluate_v2(gold_answers: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
                na_probs: Optional[Mapping[str, float]] = None,
                na_prob_threshold: float = 1.0) -> Dict[str, float]:
  """SQuAD 2.0 EM/F1 (percent) overall and split into HasAns / NoAns, as the official script.

  Questions without a prediction are left out of every total (the script skips them too). With
  `na_probs` (e.g. `SquadPredictions.null_score_diffs`), predictions whose na_prob exceeds
  `na_prob_threshold` count as null, and best_exact / best_f1 with their thresholds are added.
  """
  exact_raw, f1_raw = raw_scores_v2(gold_answers, predictions)
  if not exact_raw:
    raise ValueError("no question has a prediction")
  has_answer = {qid: bool(gold_answers[qid]) for qid in exact_raw}
  exact, f1s = exact_raw, f1_raw
  if na_probs is not None:
    exact = apply_no_answer_threshold(exact_raw, na_probs, has_answer, na_prob_threshold)
    f1s = apply_no_answer_threshold(f1_raw, na_probs, has_answer, na_prob_threshold)
  all_qids = list(exact)
  out = {
      "exact": _mean_percent(exact, all_qids),
      "f1": _mean_percent(f1s, all_qids),
      "total": float(len(all_qids)),
  }
  for prefix, wanted in (("HasAns", True), ("NoAns", False)):
    qids = [q for q in all_qids if has_answer[q] == wanted]
    if qids:
      out[f"{prefix}_exact"] = _mean_percent(exact, qids)
      out[f"{prefix}_f1"] = _mean_percent(f1s, qids)
      out[f"{prefix}_total"] = float(len(qids))
  if na_probs is not None:
    out["best_exact"], out["best_exact_thresh"] = find_best_threshold(
        predictions, exact_raw, na_probs, has_answer)
    out["best_f1"], out["best_f1_thresh"] = find_best_threshold(
        predictions, f1_raw, na_probs, has_answer)
  return out
