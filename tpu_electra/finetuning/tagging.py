"""Token classification: CoNLL-style reader, first-sub-token features, word accuracy, chunk F1.

Input is one word per line with its tag in the last white-space-separated column (so both
`word TAG` and the four-column CoNLL-2003 layout read the same), a blank line between sentences,
and `-DOCSTART-` lines ignored.

Each word is labelled on its first sub-token; its other sub-tokens, [CLS], [SEP] and padding get
`features.IGNORE_LABEL`, so the loss and the prediction are per word.

Entity-level scores are those of the CoNLL `conlleval` script (its 2004 perl version, the one the
CoNLL-2000 and CoNLL-2003 shared tasks scored with). A tag is split at its first hyphen into a
prefix and a type (`B-PER`: B and PER; a bare `B`: B and no type). With B-, I- and O tags, that is
BIO (IOB2), IOB1 and any mix of them, well-formed or not, the chunks are exactly conlleval's: a
chunk starts at B-, at an I- that follows O, and wherever the type changes; it ends before B- or
O and where the type changes (so an I- after O, or an I-X after B-Y, starts a chunk, and in IOB1 a
B- splits two adjacent chunks of one type). A chunk runs at most to the end of its sentence, and
it is correct only when its type and both boundaries match; precision, recall and F1 are
micro-averaged over all chunks, as conlleval's overall line.

Beyond what conlleval reads: E- and S- (IOBES) follow the IOBES reading of its rules that later
ports of it use (a chunk also ends after E- or S- and starts at S-, and after E- or S- an I- or E-
starts one); the perl script knows no S- and lets a B-X after an E-X continue the chunk. L- and U-
(BILOU) are read as E- and S-, and a bare tag that is not a prefix, such as `PER`, as `I-PER`
(IO tagging), which conlleval does not read as PER chunks.
"""
import collections
import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tpu_electra.finetuning import features
from tpu_electra import fileio
from tpu_electra.finetuning import metrics

OUTSIDE = "O"
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class TaggingExample:
  guid: str
  words: List[str]
  tags: List[str]


def parse_conll(lines: Iterable[str], split: str = "data",
                source: str = "<lines>") -> List[TaggingExample]:
  """Sentences from CoNLL-style lines; guids are `<split>-<n>` with n counting sentences."""
  examples = []
  words: List[str] = []
  tags: List[str] = []

  def flush():
    if words:
      examples.append(TaggingExample(f"{split}-{len(examples)}", list(words), list(tags)))
      words.clear()
      tags.clear()

  for line_number, line in enumerate(lines, start=1):
    columns = line.split()
    if not columns:
      flush()
      continue
    if columns[0] == DOCSTART:
      # A document boundary is also a sentence boundary, blank line or not.
      flush()
      continue
    if len(columns) < 2:
      raise ValueError(f"{source}:{line_number}: expected a word and a tag, got {line.strip()!r}")
    words.append(columns[0])
    tags.append(columns[-1])
  flush()
  return examples


def read_examples(path: str, split: str = "data") -> List[TaggingExample]:
  with fileio.open_text(path) as f:
    return parse_conll(f, split=split, source=path)


def label_list_from_examples(examples: Iterable[TaggingExample]) -> List[str]:
  """Every tag seen, O first (so label id 0 is the safe fallback) and the rest sorted."""
  seen = {tag for example in examples for tag in example.tags}
  rest = sorted(seen - {OUTSIDE})
  return [OUTSIDE] + rest


@dataclasses.dataclass
class TaggingFeature:
  """One sentence as model input.

  Attributes:
    guid: the example's guid.
    input_ids, input_mask, segment_ids: `[CLS] sub-tokens [SEP]`, padded.
    label_ids: the word's label id on its first sub-token, IGNORE_LABEL everywhere else.
    word_positions: for each word, the input position of its first sub-token, or -1 when the
      word has no token in the sequence (it tokenized to nothing or was cut off).
  """
  guid: str
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]
  label_ids: List[int]
  word_positions: List[int]


def convert_example(example: TaggingExample, label_list: Sequence[str],
                    tokenizer: features.Tokenizer, max_seq_length: int,
                    stats: Optional[collections.Counter] = None) -> TaggingFeature:
  """Tokenizes word by word and labels first sub-tokens.

  Words that do not fit in `max_seq_length - 2` tokens are dropped whole (counted as
  `stats["truncated_sentences"]`); words that tokenize to nothing are counted as
  `stats["words_without_tokens"]`. Both get position -1 and the fallback tag at prediction time.
  """
  ids = features.special_ids(tokenizer)
  label_map = {label: i for i, label in enumerate(label_list)}
  budget = max_seq_length - 2
  token_ids: List[int] = []
  labels: List[int] = [features.IGNORE_LABEL]  # [CLS]
  positions = []
  truncated = False
  word_pieces = features.tokenize_each(tokenizer, example.words)
  for tag, pieces in zip(example.tags, word_pieces):
    if tag not in label_map:
      raise ValueError(f"{example.guid}: tag {tag!r} is not in the label list {list(label_list)}")
    if truncated or len(token_ids) + len(pieces) > budget:
      truncated = True
      positions.append(-1)
      continue
    if not pieces:
      if stats is not None:
        stats["words_without_tokens"] += 1
      positions.append(-1)
      continue
    positions.append(1 + len(token_ids))
    labels.append(label_map[tag])
    labels.extend([features.IGNORE_LABEL] * (len(pieces) - 1))
    token_ids.extend(pieces)
  if truncated and stats is not None:
    stats["truncated_sentences"] += 1
  packed = features.pack_segments([token_ids], [0], max_seq_length, ids)
  labels.append(features.IGNORE_LABEL)  # [SEP]
  return TaggingFeature(
      guid=example.guid, input_ids=packed.input_ids, input_mask=packed.input_mask,
      segment_ids=packed.segment_ids,
      label_ids=features.pad(labels, max_seq_length, features.IGNORE_LABEL),
      word_positions=positions)


def word_tags(feature: TaggingFeature, position_predictions: Sequence[int],
              label_list: Sequence[str], fallback: str = OUTSIDE) -> List[str]:
  """One tag per word from per-position predicted label ids (read at first sub-tokens)."""
  return [label_list[position_predictions[p]] if p >= 0 else fallback
          for p in feature.word_positions]


_PREFIXES = ("B", "I", "E", "S")


def _split_tag(tag: str) -> Tuple[str, str]:
  """(prefix, type) with prefix in B/I/E/S/O; split at the first hyphen, as conlleval splits."""
  if tag == OUTSIDE:
    return OUTSIDE, ""
  prefix, sep, chunk_type = tag.partition("-")
  prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
  if not sep:
    # A bare B, I, E or S is a chunk tag without a type (untyped BIO chunking); any other bare tag
    # names a type (IO tagging).
    return (prefix, "") if prefix in _PREFIXES else ("I", tag)
  if prefix not in _PREFIXES:
    raise ValueError(f"tag {tag!r} has prefix {prefix!r}, not one of B I E S (or L U)")
  return prefix, chunk_type


def _ends_chunk(previous: Tuple[str, str], current: Tuple[str, str]) -> bool:
  prev_prefix, prev_type = previous
  cur_prefix, cur_type = current
  if prev_prefix in ("E", "S"):
    return True
  if prev_prefix in ("B", "I") and cur_prefix in ("B", "S", OUTSIDE):
    return True
  return prev_prefix != OUTSIDE and prev_type != cur_type


def _starts_chunk(previous: Tuple[str, str], current: Tuple[str, str]) -> bool:
  prev_prefix, prev_type = previous
  cur_prefix, cur_type = current
  if cur_prefix in ("B", "S"):
    return True
  if prev_prefix in ("E", "S", OUTSIDE) and cur_prefix in ("I", "E"):
    return True
  return cur_prefix != OUTSIDE and prev_type != cur_type


def extract_chunks(tags: Sequence[str]) -> List[Tuple[str, int, int]]:
  """(type, first word, last word) of every chunk in one sentence's tags."""
  chunks = []
  start = None
  previous = (OUTSIDE, "")
  # A trailing O closes a chunk that runs to the end of the sentence.
  for i, tag in enumerate(list(tags) + [OUTSIDE]):
    current = _split_tag(tag)
    if start is not None and _ends_chunk(previous, current):
      chunks.append((previous[1], start, i - 1))
      start = None
    if _starts_chunk(previous, current):
      start = i
    previous = current
  return chunks


def _check_aligned(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
  if len(gold) != len(predicted):
    raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
  for i, (g, p) in enumerate(zip(gold, predicted)):
    if len(g) != len(p):
      raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")


def word_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
  """Fraction of words, over all sentences, whose predicted tag is the gold tag."""
  _check_aligned(gold, predicted)
  flat_gold = [t for sentence in gold for t in sentence]
  flat_pred = [t for sentence in predicted for t in sentence]
  return metrics.accuracy(flat_pred, flat_gold)


def chunk_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> Tuple[int, int, int]:
  """(gold chunks, predicted chunks, correct chunks): conlleval's "N phrases; found: M; correct: K"."""
  _check_aligned(gold, predicted)
  num_gold = num_predicted = num_correct = 0
  for gold_tags, predicted_tags in zip(gold, predicted):
    gold_chunks = set(extract_chunks(gold_tags))
    predicted_chunks = set(extract_chunks(predicted_tags))
    num_gold += len(gold_chunks)
    num_predicted += len(predicted_chunks)
    num_correct += len(gold_chunks & predicted_chunks)
  return num_gold, num_predicted, num_correct


def chunk_scores(gold: Sequence[Sequence[str]],
                 predicted: Sequence[Sequence[str]]) -> Dict[str, float]:
  """Entity-level precision, recall and F1 (micro-averaged over chunks of all types)."""
  num_gold, num_predicted, num_correct = chunk_counts(gold, predicted)
  return {
      "precision": num_correct / num_predicted if num_predicted else 0.0,
      "recall": num_correct / num_gold if num_gold else 0.0,
      "f1": metrics.f1_from_counts(num_correct, num_predicted, num_gold),
  }


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
             chunked: bool = True) -> Dict[str, float]:
  """Word accuracy, plus entity precision/recall/F1 when the tags are chunk tags (not POS)."""
  out = {"accuracy": word_accuracy(gold, predicted)}
  if chunked:
    out.update(chunk_scores(gold, predicted))
  return out


def evaluate_examples(examples: Sequence[TaggingExample],
                      predicted: Mapping[str, Sequence[str]],
                      chunked: bool = True) -> Dict[str, float]:
  """`evaluate` with predictions keyed by guid."""
  missing = [e.guid for e in examples if e.guid not in predicted]
  if missing:
    raise ValueError(f"{len(missing)} sentences have no prediction, e.g. {missing[0]}")
  return evaluate([e.tags for e in examples], [predicted[e.guid] for e in examples], chunked)
