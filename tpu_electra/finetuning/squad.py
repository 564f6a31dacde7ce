"""SQuAD 1.1 and 2.0: the reader and the doc-stride features the model sees.

Words are whitespace-separated runs of the context, as in BERT's run_squad; answers are mapped
from character offsets to word indices and from words to sub-tokens by tokenizing each word on its
own, which keeps the token → word map exact for any tokenizer that satisfies
`features.Tokenizer`. The model's outputs go back to answers in `squad_decode` and are scored in
`squad_metrics`.
"""
import collections
import dataclasses
import json
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

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
