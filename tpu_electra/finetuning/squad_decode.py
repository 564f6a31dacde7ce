"""SQuAD n-best span decoding: per-feature start/end logits back to one answer per question.

Predicted answers are the original words a span covers, joined by single spaces: with an ids-only
tokenizer there are no token strings to align a span inside a word, and the official normalization
makes the difference vanish in all but rare cases (an answer that is only part of a whitespace
word, e.g. "Steve" inside "Steve's").
"""
import collections
import dataclasses
import math
from typing import Dict, Iterable, List, Optional, Sequence

from tpu_electra.finetuning.squad import SquadExample, SquadFeature


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
