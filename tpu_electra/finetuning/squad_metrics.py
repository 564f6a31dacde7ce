"""SQuAD 1.1 and 2.0 EM/F1, as the official evaluation scripts define them.

Answers are normalized by lower casing, removing punctuation, removing the articles a/an/the and
collapsing white space; EM and F1 take the maximum over the gold answers; in 2.0 an unanswerable
question's only gold answer is "" and an empty prediction or gold scores F1 1 when both are empty,
0 otherwise. Scores are percentages, as the scripts print them.
"""
import collections
import re
import string
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tpu_electra.finetuning.squad import SquadExample


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
