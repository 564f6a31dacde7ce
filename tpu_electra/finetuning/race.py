"""Multiple choice on RACE: reader, one sequence per option, softmax over options, accuracy.

RACE ships as `<data_dir>/<split>/<level>/*.txt` with split in train/dev/test and level in
middle/high; each file is one JSON object for one article: `article`, a `questions` list, an
`options` list holding each question's options, and an `answers` list of letters ("A" = option 0).

Each option becomes `[CLS] article [SEP] question [SEP] option [SEP]`, the article in segment 0
and question and option in segment 1 (they are read together, as the answer to the question).
When the three do not fit, only the article is cut (from its end): the question and the option are
what the choice is between, while an article is long and mostly redundant for any one question.
Only if question and option alone do not fit is the option cut from its end, and only if the
question alone does not fit is the question cut; both cases are counted in `stats`.
"""
import collections
import dataclasses
import json
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tpu_electra.finetuning import features
from tpu_electra import fileio
from tpu_electra.finetuning import metrics

LEVELS = ("middle", "high")


@dataclasses.dataclass(frozen=True)
class RaceExample:
  guid: str
  level: str
  article: str
  question: str
  options: List[str]
  # Index of the correct option; None when the file carries no answers.
  label: Optional[int]


def answer_index(letter: str, num_options: int) -> int:
  index = ord(letter.strip().upper()) - ord("A")
  if not 0 <= index < num_options:
    raise ValueError(f"answer {letter!r} does not name one of {num_options} options")
  return index


def examples_from_json(record: Mapping, guid_prefix: str, level: str) -> List[RaceExample]:
  """One example per question of one article record; guid `<guid_prefix>-<question index>`."""
  questions = record["questions"]
  options = record["options"]
  answers = record.get("answers")
  if len(options) != len(questions) or (answers is not None and len(answers) != len(questions)):
    raise ValueError(f"{guid_prefix}: questions, options and answers differ in length")
  examples = []
  for i, (question, choices) in enumerate(zip(questions, options)):
    label = None if answers is None else answer_index(answers[i], len(choices))
    examples.append(RaceExample(
        guid=f"{guid_prefix}-{i}", level=level, article=record["article"], question=question,
        options=list(choices), label=label))
  return examples


def read_examples(data_dir: str, split: str,
                  levels: Sequence[str] = LEVELS) -> List[RaceExample]:
  """All questions of one split, middle school before high school, files in sorted order."""
  examples = []
  for level in levels:
    paths = fileio.glob(fileio.join(data_dir, split, level, "*.txt"))
    for path in paths:
      with fileio.open_text(path) as f:
        record = json.load(f)
      name = os.path.splitext(os.path.basename(path))[0]
      examples.extend(examples_from_json(record, f"{split}-{level}-{name}", level))
  return examples


def fit_lengths(article_length: int, question_length: int, option_length: int,
                budget: int) -> Tuple[int, int, int]:
  """Lengths to keep of (article, question, option) so that they sum to at most `budget`.

  The article gives way first, then the option, then the question.
  """
  question = min(question_length, budget)
  option = min(option_length, budget - question)
  article = min(article_length, budget - question - option)
  return article, question, option


@dataclasses.dataclass
class RaceFeature:
  """One question with all its options, each a row of [num_options, max_seq_length]."""
  guid: str
  input_ids: List[List[int]]
  input_mask: List[List[int]]
  segment_ids: List[List[int]]
  label: int


def convert_example(example: RaceExample, tokenizer: features.Tokenizer, max_seq_length: int,
                    stats: Optional[collections.Counter] = None) -> RaceFeature:
  """Packs every option with the article and question; see the module docstring for truncation.

  `stats`, if given, counts per option sequence: "article_truncated", "option_truncated",
  "question_truncated".
  """
  ids = features.special_ids(tokenizer)
  # [CLS] article [SEP] question [SEP] option [SEP]
  budget = max_seq_length - 4
  if budget <= 0:
    raise ValueError(f"max_seq_length {max_seq_length} leaves no room after 4 special tokens")
  article_ids, question_ids, *all_option_ids = features.tokenize_each(
      tokenizer, [example.article, example.question] + list(example.options))
  rows = []
  for option_ids in all_option_ids:
    kept = fit_lengths(len(article_ids), len(question_ids), len(option_ids), budget)
    if stats is not None:
      for name, full, keep in zip(("article", "question", "option"),
                                  (article_ids, question_ids, option_ids), kept):
        if keep < len(full):
          stats[f"{name}_truncated"] += 1
    rows.append(features.pack_segments(
        [article_ids[:kept[0]], question_ids[:kept[1]], option_ids[:kept[2]]], [0, 1, 1],
        max_seq_length, ids))
  label = features.IGNORE_LABEL if example.label is None else example.label
  return RaceFeature(
      guid=example.guid, input_ids=[r.input_ids for r in rows],
      input_mask=[r.input_mask for r in rows], segment_ids=[r.segment_ids for r in rows],
      label=label)


def option_probabilities(logits: Sequence[float]) -> List[float]:
  """Softmax over one question's option scores (shifted by the max, so large logits are safe)."""
  top = max(logits)
  exps = [math.exp(x - top) for x in logits]
  total = sum(exps)
  return [e / total for e in exps]


def predict_option(logits: Sequence[float]) -> int:
  """The chosen option; the first one on a tie."""
  return max(range(len(logits)), key=lambda i: (logits[i], -i))


def evaluate(examples: Sequence[RaceExample], predictions: Mapping[str, int]) -> Dict[str, float]:
  """Accuracy overall and per level (RACE-M / RACE-H), from predicted option indices by guid."""
  missing = [e.guid for e in examples if e.guid not in predictions]
  if missing:
    raise ValueError(f"{len(missing)} questions have no prediction, e.g. {missing[0]}")
  out = {"accuracy": metrics.accuracy([predictions[e.guid] for e in examples],
                                      [e.label for e in examples])}
  for level in LEVELS:
    subset = [e for e in examples if e.level == level]
    if subset:
      out[f"accuracy_{level}"] = metrics.accuracy([predictions[e.guid] for e in subset],
                                                  [e.label for e in subset])
  return out
