"""Single-text classification from any TSV: reader, label set, accuracy and macro-F1.

A file is tab-separated with no quoting (as GLUE's: quote characters are text), a header row first,
then one example per row with as many columns as the header. Two columns are read, named in the
header: the text and the label (the task's `text_column` and `label_column`); other columns are
ignored and empty lines are skipped.

The label set is every label of the train file, sorted: as numbers when every label is an integer
(so "2" comes before "10"), else as strings; label id i is the i-th. A dev label outside it is an
error, as is a file without the two columns, a row with another number of columns, an empty
label, and a file with no examples; each error is one line naming the file and the line.

Metrics: accuracy, and macro-F1, the unweighted mean of the per-class F1 over the classes that
occur in the gold labels or the predictions (scikit-learn's `f1_score(average="macro")`).
"""
import collections
import dataclasses
from typing import Dict, Iterable, Iterator, List, Mapping, Sequence

from tpu_electra import fileio
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import metrics

# Labels shown in an error message before it says how many more there are.
_LABELS_SHOWN = 20


@dataclasses.dataclass(frozen=True)
class Row:
  line: int  # 1-based line number in the file
  text: str
  label: str


def _column_index(header: Sequence[str], name: str, source: str) -> int:
  found = [i for i, column in enumerate(header) if column == name]
  if len(found) != 1:
    what = "no" if not found else f"{len(found)}"
    raise ValueError(f"{source}:1: {what} columns named {name!r} in the header (columns: {', '.join(header)})")
  return found[0]


def iter_rows(lines: Iterable[str], text_column: str, label_column: str, source: str = "<lines>") -> Iterator[Row]:
  """The examples of one file's lines, checked as the module docstring says; needs at least one."""
  if text_column == label_column:
    raise ValueError(f"{source}: the text and the label column are both {text_column!r}")
  rows = enumerate(glue.split_tsv_lines(lines), start=1)
  _, header = next(rows, (1, None))
  if not header:
    raise ValueError(f"{source}:1: {'empty file' if header is None else 'empty line'}; expected a tab-separated "
                     f"header naming the columns {text_column!r} and {label_column!r}")
  # A spreadsheet's UTF-8 export starts with a byte-order mark, which is not part of the first name.
  header[0] = header[0].lstrip("\ufeff")
  text_index = _column_index(header, text_column, source)
  label_index = _column_index(header, label_column, source)
  line = 1
  count = 0
  for line, fields in rows:
    if not fields:
      continue
    # Exactly the header's: a tab inside a text would otherwise shift the label column unnoticed.
    if len(fields) != len(header):
      raise ValueError(f"{source}:{line}: expected {len(header)} tab-separated columns as in the header, "
                       f"got {len(fields)}")
    label = fields[label_index]
    if not label:
      raise ValueError(f"{source}:{line}: empty {label_column!r}")
    count += 1
    yield Row(line, fields[text_index], label)
  if not count:
    raise ValueError(f"{source}:{line + 1}: no examples after the header")


def read_rows(path: str, text_column: str, label_column: str) -> Iterator[Row]:
  """`iter_rows` of a file, streamed."""
  with fileio.open_text(path) as f:
    yield from iter_rows(f, text_column, label_column, source=path)


def sort_labels(labels: Iterable[str]) -> List[str]:
  """The label list's order: numeric when every label is an integer, else by string."""
  unique = set(labels)
  try:
    # The string breaks ties ("1", "01"), so the order never depends on the set's.
    return sorted(unique, key=lambda label: (int(label), label))
  except ValueError:
    return sorted(unique)


def read_label_list(path: str, text_column: str, label_column: str) -> List[str]:
  """The sorted label set of a train file; classification needs two labels or more."""
  labels = sort_labels(row.label for row in read_rows(path, text_column, label_column))
  if len(labels) < 2:
    raise ValueError(f"{path}: every example has the label {labels[0]!r}; classification needs at least two")
  return labels


def label_id(row: Row, label_map: Mapping[str, int], source: str) -> int:
  """The row's label id; a label outside the train file's set is an error naming the row."""
  found = label_map.get(row.label)
  if found is None:
    labels = list(label_map)
    shown = ", ".join(labels[:_LABELS_SHOWN]) + (f", ... ({len(labels)} in all)" if len(labels) > _LABELS_SHOWN else "")
    raise ValueError(f"{source}:{row.line}: label {row.label!r} is not one of the train file's labels ({shown})")
  return found


def macro_f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
  """Mean per-class F1 over the classes seen in `labels` or `predictions`."""
  if len(predictions) != len(labels) or not labels:
    raise ValueError(f"need as many predictions as labels, at least one: got {len(predictions)} and {len(labels)}")
  predicted = collections.Counter(predictions)
  gold = collections.Counter(labels)
  correct = collections.Counter(p for p, y in zip(predictions, labels) if p == y)
  classes = set(predicted) | set(gold)
  return sum(metrics.f1_from_counts(correct[c], predicted[c], gold[c]) for c in classes) / len(classes)


def evaluate(predictions: Sequence[int], labels: Sequence[int]) -> Dict[str, float]:
  """Accuracy and macro-F1 of predicted label ids against gold ones."""
  return {"accuracy": metrics.accuracy(predictions, labels), "macro_f1": macro_f1(predictions, labels)}
