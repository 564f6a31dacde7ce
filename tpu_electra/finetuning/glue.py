"""GLUE: readers for the standard data directory, the task registry, pair features and scores.

The directory layout is the one the usual GLUE download produces: `<data_dir>/<TASK>/<split>.tsv`
with TASK one of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI. Splits are `train`, `dev`,
`test`, except MNLI, whose evaluation splits are `dev_matched`, `dev_mismatched`, `test_matched`
and `test_mismatched`. Files are tab-separated with no quoting (quote characters are text).
The same tasks from TensorFlow Datasets (`--data_dir=tfds:`) come through `tfds_source`, which
turns each TFDS example into the fields this reader makes of the same row.

Two summary numbers are computed, and they are not the same thing:

* The ELECTRA-style average (Clark et al. 2020, §3.1; also TEAMS §4): the plain mean over 8 tasks
  of one metric each — CoLA Matthews correlation, STS-B Spearman, and accuracy for SST-2, MRPC,
  QQP, MNLI (matched dev only), QNLI and RTE; WNLI is left out. In particular MRPC and QQP count
  by accuracy, not F1: ELECTRA's fine-tuning code scores every classification task other than
  CoLA with its accuracy scorer, and the paper states "accuracy for the other GLUE tasks".
* The official GLUE score (Wang et al. 2018): the mean over the 9 tasks of a per-task score, where
  a task with two metrics scores their unweighted mean (MRPC and QQP: F1 and accuracy; STS-B:
  Pearson and Spearman) and MNLI scores the mean of matched and mismatched accuracy. WNLI is
  included; the AX diagnostic is not part of the score.

Both are reported on a 0–100 scale; per-task metrics elsewhere stay on their natural scale.
"""
import collections
import dataclasses
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from tpu_electra.finetuning import features
from tpu_electra import fileio
from tpu_electra.finetuning import metrics

Label = Union[str, float]
MetricFn = Callable[[Sequence, Sequence], Dict[str, float]]


@dataclasses.dataclass(frozen=True)
class GlueExample:
  guid: str
  text_a: str
  text_b: Optional[str]
  # A label string from the task's label list, a float score for STS-B, None for test splits.
  label: Optional[Label]


@dataclasses.dataclass(frozen=True)
class ColumnLayout:
  """Where the fields of one file kind are; negative indices count from the end of the row."""
  text_a: int
  text_b: Optional[int]
  label: Optional[int]
  has_header: bool

  def min_columns(self) -> int:
    """Columns a row needs so that every index here exists."""
    needed = 0
    for index in (self.text_a, self.text_b, self.label):
      if index is not None:
        needed = max(needed, index + 1 if index >= 0 else -index)
    return needed


def _classification_metrics(predictions: Sequence, labels: Sequence) -> Dict[str, float]:
  return {"accuracy": metrics.accuracy(predictions, labels)}


def _mcc_metrics(predictions: Sequence, labels: Sequence) -> Dict[str, float]:
  return {"mcc": metrics.matthews_corrcoef(predictions, labels)}


def _accuracy_and_f1(predictions: Sequence, labels: Sequence) -> Dict[str, float]:
  # Label id 1 is "1" (paraphrase / duplicate) in both MRPC and QQP: the class GLUE takes F1 of.
  return {
      "accuracy": metrics.accuracy(predictions, labels),
      "f1": metrics.binary_f1(predictions, labels, positive_label=1),
  }


def _correlations(predictions: Sequence, labels: Sequence) -> Dict[str, float]:
  return {
      "pearson": metrics.pearson(predictions, labels),
      "spearman": metrics.spearman(predictions, labels),
  }


@dataclasses.dataclass(frozen=True)
class GlueTask:
  """One GLUE task: where its files are, how to read them, its labels and its metrics.

  Attributes:
    name: registry key (lower case, as in `TASKS`).
    directory: the task's folder under the GLUE data directory.
    label_list: label strings in label-id order; None for regression.
    metric_fn: (predicted label ids or scores, gold label ids or scores) -> metric dict.
    labelled_layout: columns of the train/dev files.
    test_layout: columns of the test files.
    eval_splits: the dev splits a run evaluates on.
    test_splits: the splits whose predictions go to the GLUE server.
    skip_malformed: skip (and count) rows with too few columns instead of failing; only QQP,
      whose released files have a handful of broken rows.
  """
  name: str
  directory: str
  label_list: Optional[Tuple[str, ...]]
  metric_fn: MetricFn
  labelled_layout: ColumnLayout
  test_layout: ColumnLayout
  eval_splits: Tuple[str, ...] = ("dev",)
  test_splits: Tuple[str, ...] = ("test",)
  skip_malformed: bool = False

  @property
  def is_regression(self) -> bool:
    return self.label_list is None

  @property
  def num_labels(self) -> int:
    return 1 if self.label_list is None else len(self.label_list)

  @property
  def splits(self) -> Tuple[str, ...]:
    return ("train",) + self.eval_splits + self.test_splits

  def label_id(self, label: Label) -> Union[int, float]:
    """Maps a label to what the model is trained against: an index, or the score itself."""
    if self.label_list is None:
      return float(label)
    return self.label_list.index(label)


_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")
# index, sentence1, sentence2[, label]: QNLI, RTE and WNLI share this shape.
_PAIR_LABELLED = ColumnLayout(text_a=1, text_b=2, label=3, has_header=True)
_PAIR_TEST = ColumnLayout(text_a=1, text_b=2, label=None, has_header=True)

TASKS: Dict[str, GlueTask] = {
    task.name: task for task in (
        GlueTask(
            name="cola", directory="CoLA", label_list=_BINARY, metric_fn=_mcc_metrics,
            # source, label, original mark, sentence; no header on train/dev.
            labelled_layout=ColumnLayout(text_a=3, text_b=None, label=1, has_header=False),
            test_layout=ColumnLayout(text_a=1, text_b=None, label=None, has_header=True)),
        GlueTask(
            name="sst-2", directory="SST-2", label_list=_BINARY,
            metric_fn=_classification_metrics,
            labelled_layout=ColumnLayout(text_a=0, text_b=None, label=1, has_header=True),
            test_layout=ColumnLayout(text_a=1, text_b=None, label=None, has_header=True)),
        GlueTask(
            name="mrpc", directory="MRPC", label_list=_BINARY, metric_fn=_accuracy_and_f1,
            # Quality, #1 ID, #2 ID, #1 String, #2 String.
            labelled_layout=ColumnLayout(text_a=3, text_b=4, label=0, has_header=True),
            test_layout=ColumnLayout(text_a=3, text_b=4, label=None, has_header=True)),
        GlueTask(
            name="sts-b", directory="STS-B", label_list=None, metric_fn=_correlations,
            # index, genre, filename, year, old_index, source1, source2, sentence1, sentence2,
            # score.
            labelled_layout=ColumnLayout(text_a=7, text_b=8, label=9, has_header=True),
            test_layout=ColumnLayout(text_a=7, text_b=8, label=None, has_header=True)),
        GlueTask(
            name="qqp", directory="QQP", label_list=_BINARY, metric_fn=_accuracy_and_f1,
            # id, qid1, qid2, question1, question2, is_duplicate; test: id, question1, question2.
            labelled_layout=ColumnLayout(text_a=3, text_b=4, label=5, has_header=True),
            test_layout=ColumnLayout(text_a=1, text_b=2, label=None, has_header=True),
            skip_malformed=True),
        GlueTask(
            name="mnli", directory="MNLI", label_list=("contradiction", "entailment", "neutral"),
            metric_fn=_classification_metrics,
            # sentence1 and sentence2 are columns 8 and 9; gold_label is the last column.
            labelled_layout=ColumnLayout(text_a=8, text_b=9, label=-1, has_header=True),
            test_layout=ColumnLayout(text_a=8, text_b=9, label=None, has_header=True),
            eval_splits=("dev_matched", "dev_mismatched"),
            test_splits=("test_matched", "test_mismatched")),
        GlueTask(
            name="qnli", directory="QNLI", label_list=_ENTAILMENT,
            metric_fn=_classification_metrics,
            labelled_layout=_PAIR_LABELLED, test_layout=_PAIR_TEST),
        GlueTask(
            name="rte", directory="RTE", label_list=_ENTAILMENT,
            metric_fn=_classification_metrics,
            labelled_layout=_PAIR_LABELLED, test_layout=_PAIR_TEST),
        GlueTask(
            name="wnli", directory="WNLI", label_list=_BINARY,
            metric_fn=_classification_metrics,
            labelled_layout=_PAIR_LABELLED, test_layout=_PAIR_TEST),
    )
}


def get_task(name: str) -> GlueTask:
  """Registry lookup that accepts the directory spelling too ("SST-2", "sst2", "STS-B")."""
  key = name.lower()
  for task in TASKS.values():
    if key in (task.name, task.name.replace("-", ""), task.directory.lower()):
      return task
  raise ValueError(f"unknown GLUE task {name!r}; known: {sorted(TASKS)}")


def result_key(task: GlueTask, split: str) -> str:
  """Name of one evaluation's results: the task, or mnli-m / mnli-mm for the two MNLI devs."""
  if task.name == "mnli":
    return "mnli-mm" if split.endswith("mismatched") else "mnli-m"
  return task.name


def split_path(data_dir: str, task: GlueTask, split: str) -> str:
  if split not in task.splits:
    raise ValueError(f"{task.name} has splits {task.splits}, not {split!r}")
  return fileio.join(data_dir, task.directory, split + ".tsv")


def split_tsv_lines(lines: Iterable[str]) -> Iterator[List[str]]:
  """Rows of TSV lines with no quoting, as `csv.reader(delimiter="\t", quoting=csv.QUOTE_NONE)` reads them.

  GLUE text contains bare quote characters, so a row is its line without the line end, split at
  every tab; an empty line is a row of no fields. Twice as fast as the csv module on MNLI.
  """
  for line in lines:
    line = line.rstrip("\r\n")
    yield line.split("\t") if line else []


def read_tsv_rows(path: str) -> List[List[str]]:
  """All rows of a GLUE TSV (see `split_tsv_lines`)."""
  with fileio.open_text(path) as f:
    return list(split_tsv_lines(f))


def parse_label(task: GlueTask, raw: str, where: str) -> Label:
  """A label as a file spells it (`raw`), checked: the score of a regression task, else a label of its list."""
  if task.is_regression:
    try:
      return float(raw)
    except ValueError as e:
      raise ValueError(f"{where}: {task.name} score {raw!r} is not a number") from e
  if raw not in task.label_list:
    raise ValueError(f"{where}: {task.name} label {raw!r} is not one of {task.label_list}")
  return raw


Fields = Tuple[int, str, Optional[str], Optional[Label]]


def iter_row_fields(task: GlueTask, split: str, rows: Iterable[Sequence[str]], source: str = "<rows>",
                    stats: Optional[collections.Counter] = None) -> Iterator[Fields]:
  """(row number n, text_a, text_b or None, label or None) of each data row, checked as `rows_to_examples` says."""
  layout = task.test_layout if split.startswith("test") else task.labelled_layout
  first_line = 2 if layout.has_header else 1
  needed = layout.min_columns()
  text_a, text_b, label_column = layout.text_a, layout.text_b, layout.label
  labels = frozenset(task.label_list or ())
  rows = iter(rows)
  if layout.has_header:
    next(rows, None)
  for n, row in enumerate(rows):
    if len(row) < needed:
      if task.skip_malformed:
        if stats is not None:
          stats["malformed_rows"] += 1
        continue
      raise ValueError(f"{source}:{first_line + n}: expected at least {needed} columns, got {len(row)}")
    label = None
    if label_column is not None:
      label = row[label_column]
      if task.is_regression or label not in labels:
        label = parse_label(task, label, f"{source}:{first_line + n}")
    yield n, row[text_a], row[text_b] if text_b is not None else None, label


def iter_rows_to_examples(task: GlueTask, split: str, rows: Iterable[Sequence[str]],
                          source: str = "<rows>",
                          stats: Optional[collections.Counter] = None) -> Iterator[GlueExample]:
  """`rows_to_examples` one row at a time, for files too large to hold as rows."""
  for n, text_a, text_b, label in iter_row_fields(task, split, rows, source, stats):
    yield GlueExample(guid=f"{split}-{n}", text_a=text_a, text_b=text_b, label=label)


def rows_to_examples(task: GlueTask, split: str, rows: Sequence[Sequence[str]],
                     source: str = "<rows>",
                     stats: Optional[collections.Counter] = None) -> List[GlueExample]:
  """Turns TSV rows into examples using the task's column layout for `split`.

  guid is `<split>-<n>`, n counting data rows from 0 (header excluded, skipped rows included), so
  that a test guid's n is the row's index in the file, which the GLUE server expects.

  Args:
    task: the task.
    split: a split of the task; test splits have no label.
    rows: the file's rows, header included.
    source: file name for error messages.
    stats: if given, `stats["malformed_rows"]` counts rows skipped for having too few columns.
  """
  return list(iter_rows_to_examples(task, split, rows, source, stats))


def read_examples(data_dir: str, task_name: str, split: str,
                  stats: Optional[collections.Counter] = None) -> List[GlueExample]:
  """Reads one split of one task from the standard GLUE directory layout."""
  task = get_task(task_name)
  path = split_path(data_dir, task, split)
  return rows_to_examples(task, split, read_tsv_rows(path), source=path, stats=stats)


def iter_fields(data_dir: str, task_name: str, split: str, stats: Optional[collections.Counter] = None,
                on_progress: Optional[Callable[[float], None]] = None) -> Iterator[Fields]:
  """`iter_row_fields` of one split's file, streamed: one row in memory at a time (MNLI, QQP).

  `on_progress(fraction of the file read)` is called every 8192 rows when the position is known.
  """
  task = get_task(task_name)
  path = split_path(data_dir, task, split)
  size = max(1, fileio.size(path))
  with fileio.open_text(path) as f:
    raw = getattr(f, "buffer", None)
    fields = iter_row_fields(task, split, split_tsv_lines(f), source=path, stats=stats)
    for count, row in enumerate(fields, 1):
      if on_progress is not None and raw is not None and count % 8192 == 0:
        on_progress(min(1.0, raw.tell() / size))
      yield row


@dataclasses.dataclass
class GlueFeature:
  guid: str
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]
  # Label index (classification) or score (regression); IGNORE_LABEL / 0.0 when unlabelled.
  label_id: Union[int, float]
  has_label: bool


def truncate_pair(tokens_a: List[int], tokens_b: List[int], max_length: int) -> Tuple[int, int]:
  """Shortens the longer sequence one token at a time until the pair fits; returns new lengths.

  Taking from the longer side keeps as much as possible of a short sentence, whose every token is
  proportionally more informative, which is BERT's and ELECTRA's choice.
  """
  len_a, len_b = len(tokens_a), len(tokens_b)
  while len_a + len_b > max_length:
    if len_a > len_b:
      len_a -= 1
    else:
      len_b -= 1
  return len_a, len_b


def convert_example(example: GlueExample, task: GlueTask, tokenizer: features.Tokenizer,
                    max_seq_length: int) -> GlueFeature:
  """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with a in segment 0 and b in segment 1."""
  ids = features.special_ids(tokenizer)
  texts = [example.text_a] if example.text_b is None else [example.text_a, example.text_b]
  tokenized = features.tokenize_each(tokenizer, texts)
  tokens_a = tokenized[0]
  if example.text_b is None:
    segments = [tokens_a[:max_seq_length - 2]]
  else:
    tokens_b = tokenized[1]
    len_a, len_b = truncate_pair(tokens_a, tokens_b, max_seq_length - 3)
    segments = [tokens_a[:len_a], tokens_b[:len_b]]
  packed = features.pack_segments(segments, list(range(len(segments))), max_seq_length, ids)
  if example.label is None:
    label_id = 0.0 if task.is_regression else features.IGNORE_LABEL
  else:
    label_id = task.label_id(example.label)
  return GlueFeature(
      guid=example.guid, input_ids=packed.input_ids, input_mask=packed.input_mask,
      segment_ids=packed.segment_ids, label_id=label_id, has_label=example.label is not None)


def label_ids_of(labels: Sequence[Optional[Label]], task: GlueTask) -> np.ndarray:
  """What `convert_example` puts in `label_id`, for many labels: float32 scores or int32 ids."""
  if task.is_regression:
    return np.asarray([0.0 if label is None else float(label) for label in labels], np.float32)
  label_map = {label: i for i, label in enumerate(task.label_list)}
  return np.asarray([features.IGNORE_LABEL if label is None else label_map[label] for label in labels], np.int32)


def pack_texts(texts_a: Sequence[str], texts_b: Optional[Sequence[Optional[str]]], tokenizer: features.Tokenizer,
               max_seq_length: int) -> Dict[str, np.ndarray]:
  """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` for many rows at once: two tokenizer calls and array arithmetic.

  `texts_b` is None for single-text rows, or one second text (None: none) per row. Returns
  `input_word_ids`, `input_mask`, `input_type_ids` ([rows, max_seq_length] int32), equal row for row
  to `convert_example`; the longer text of a pair gives way (`truncate_pair`).
  """
  ids = features.special_ids(tokenizer)
  a_flat, a_splits = features.tokenize_ragged(tokenizer, texts_a)
  if texts_b is None:
    texts_b = [None] * len(texts_a)
  has_b = np.asarray([b is not None for b in texts_b], bool)
  if has_b.any():
    b_flat, b_splits = features.tokenize_ragged(tokenizer, [b or "" for b in texts_b])
  else:
    b_flat, b_splits = np.zeros([0], np.int64), np.zeros([len(texts_a) + 1], np.int64)
  len_a, len_b = np.diff(a_splits), np.diff(b_splits)
  pair_a, pair_b = features.truncate_pair_lengths(len_a, len_b, max_seq_length - 3)
  kept_a = np.where(has_b, pair_a, np.minimum(len_a, max(0, max_seq_length - 2)))
  kept_b = np.where(has_b, pair_b, -1)
  return features.pack_ragged([(a_flat, a_splits, kept_a), (b_flat, b_splits, kept_b)], max_seq_length, ids)


def convert_fields(fields: Sequence[Fields], task: GlueTask, tokenizer: features.Tokenizer,
                   max_seq_length: int) -> Dict[str, np.ndarray]:
  """`convert_example` for many rows at once (`iter_fields` tuples): `pack_texts` and the label ids.

  Returns `input_word_ids`, `input_mask`, `input_type_ids` ([rows, max_seq_length] int32) and
  `label_ids` ([rows], int32 or float32 for regression), equal row for row to `convert_example`.
  """
  arrays = pack_texts([f[1] for f in fields], [f[2] for f in fields], tokenizer, max_seq_length)
  arrays["label_ids"] = label_ids_of([f[3] for f in fields], task)
  return arrays


def convert_examples(examples: Sequence[GlueExample], task: GlueTask, tokenizer: features.Tokenizer,
                     max_seq_length: int) -> Dict[str, np.ndarray]:
  """`convert_fields` for examples."""
  return convert_fields([(0, e.text_a, e.text_b, e.label) for e in examples], task, tokenizer, max_seq_length)


def evaluate(task_name: str, predictions: Sequence, label_ids: Sequence) -> Dict[str, float]:
  """The task's GLUE metrics from predicted label ids (or scores for STS-B) and gold ones."""
  return get_task(task_name).metric_fn(predictions, label_ids)


# (result key, metric) pairs, in the order ELECTRA's tables list them.
ELECTRA_AVERAGE_COMPONENTS: Tuple[Tuple[str, str], ...] = (
    ("cola", "mcc"), ("sst-2", "accuracy"), ("mrpc", "accuracy"), ("sts-b", "spearman"),
    ("qqp", "accuracy"), ("mnli-m", "accuracy"), ("qnli", "accuracy"), ("rte", "accuracy"),
)

# Per GLUE task, the (result key, metric) pairs whose mean is the task's score.
GLUE_SCORE_COMPONENTS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "cola": (("cola", "mcc"),),
    "sst-2": (("sst-2", "accuracy"),),
    "mrpc": (("mrpc", "f1"), ("mrpc", "accuracy")),
    "sts-b": (("sts-b", "pearson"), ("sts-b", "spearman")),
    "qqp": (("qqp", "f1"), ("qqp", "accuracy")),
    "mnli": (("mnli-m", "accuracy"), ("mnli-mm", "accuracy")),
    "qnli": (("qnli", "accuracy"),),
    "rte": (("rte", "accuracy"),),
    "wnli": (("wnli", "accuracy"),),
}

ELECTRA_AVERAGE_LABEL = (
    "ELECTRA-style average (8 tasks, WNLI excluded): CoLA MCC, SST-2 acc, MRPC acc, "
    "STS-B Spearman, QQP acc, MNLI-m acc, QNLI acc, RTE acc")
GLUE_SCORE_LABEL = (
    "Official GLUE score (9 tasks incl. WNLI, AX excluded): mean of task scores; MRPC/QQP = "
    "mean(F1, acc), STS-B = mean(Pearson, Spearman), MNLI = mean(m acc, mm acc)")


@dataclasses.dataclass
class GlueSummary:
  """The two GLUE summary numbers (0–100), and what was missing for either to be computed."""
  electra_average: Optional[float]
  electra_missing: List[str]
  glue_score: Optional[float]
  glue_missing: List[str]
  # Official per-task scores (0–100) for the tasks whose metrics were all present.
  glue_task_scores: Dict[str, float]


def _lookup(results: Mapping[str, Mapping[str, float]], key: str, metric: str) -> Optional[float]:
  value = results.get(key, {}).get(metric)
  return None if value is None else float(value)


def summarize(results: Mapping[str, Mapping[str, float]]) -> GlueSummary:
  """Both summary numbers from per-evaluation metrics keyed as `result_key` names them.

  Args:
    results: e.g. {"cola": {"mcc": 0.6}, "mnli-m": {"accuracy": 0.85}, ...}, metrics on their
      natural scale (fractions and correlations), as the task metric functions return them.

  Returns:
    A GlueSummary; a number is None when any of its components is missing, and the missing
    "key/metric" names are listed, so a partial run never passes for a full one.
  """
  electra_values, electra_missing = [], []
  for key, metric in ELECTRA_AVERAGE_COMPONENTS:
    value = _lookup(results, key, metric)
    if value is None:
      electra_missing.append(f"{key}/{metric}")
    else:
      electra_values.append(value)
  task_scores, glue_missing = {}, []
  for task_name, components in GLUE_SCORE_COMPONENTS.items():
    values = [_lookup(results, key, metric) for key, metric in components]
    missing = [f"{key}/{metric}" for (key, metric), v in zip(components, values) if v is None]
    if missing:
      glue_missing.extend(missing)
    else:
      task_scores[task_name] = 100.0 * sum(values) / len(values)
  electra_average = (100.0 * sum(electra_values) / len(electra_values)
                     if not electra_missing else None)
  glue_score = (sum(task_scores.values()) / len(task_scores) if not glue_missing else None)
  return GlueSummary(
      electra_average=electra_average, electra_missing=electra_missing,
      glue_score=glue_score, glue_missing=glue_missing, glue_task_scores=task_scores)
