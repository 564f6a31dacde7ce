"""Task data from TensorFlow Datasets: `--data_dir=tfds:` (TFDS's data dir) or `--data_dir=tfds:DIR`.

GLUE's nine tasks (`glue/cola`, `glue/sst2`, ..., MNLI's matched and mismatched dev sets from
`glue/mnli`) and SQuAD 1.1 and 2.0 (`squad/v1.1`, `squad/v2.0`) are read through
`tensorflow_datasets` (`pip install -e '.[tfds]'`) from the data dir they were prepared in: DIR,
else TFDS's own (`$TFDS_DATA_DIR`, default `~/tensorflow_datasets`). Nothing is downloaded here: a
dataset that is not prepared is a one-line error giving the `download_and_prepare` command to run
where TensorFlow Datasets can download (the `tfds build` CLI of tensorflow-datasets 4.9.10 would
also need mlcroissant).

Each TFDS example becomes what the file readers make of the same row, so that features, the
feature cache and scoring are one code path for both sources: a GLUE example becomes `glue.Fields`
(its row index `idx`, its texts, and its label as the TSV spells it, parsed by
`glue.parse_label`); a SQuAD split becomes the SQuAD JSON layout (articles by title, paragraphs by
context, questions in the order first seen) that `squad.examples_from_json` reads. Rows come in
TFDS's stored order (TFDS shuffles examples when it prepares a dataset), so a seed's training order
differs from the files' while every example's features and every dev set's metrics are the same.
The feature cache is keyed by the dataset's name, version and split sizes (a TFDS version never
changes its data) instead of file digests, and by default lives beside the prepared data, in
`<TFDS data dir>/tpu_electra_features`.
"""
import dataclasses
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from tpu_electra.finetuning import glue

PREFIX = "tfds:"
# Fraction-of-split progress is reported every this many examples, as `glue.iter_fields` does.
_PROGRESS_EVERY = 8192


@dataclasses.dataclass(frozen=True)
class GlueSource:
  """Where a GLUE task is in TFDS and how its examples map onto the TSV's fields.

  Attributes:
    config: the `glue/<config>` builder config.
    text_features: the features that are the TSV's first and second text (None: single text).
    labels: TFDS class name -> the label as the task's TSV spells it (None: STS-B's float score).
      Mapped by name, not by class id, because TFDS orders some label sets differently (MNLI).
  """
  config: str
  text_features: Tuple[str, Optional[str]]
  labels: Optional[Mapping[str, str]]


_NLI = {"entailment": "entailment", "not_entailment": "not_entailment"}
GLUE: Dict[str, GlueSource] = {
    "cola": GlueSource("cola", ("sentence", None), {"unacceptable": "0", "acceptable": "1"}),
    "sst-2": GlueSource("sst2", ("sentence", None), {"negative": "0", "positive": "1"}),
    "mrpc": GlueSource("mrpc", ("sentence1", "sentence2"), {"not_equivalent": "0", "equivalent": "1"}),
    "sts-b": GlueSource("stsb", ("sentence1", "sentence2"), None),
    "qqp": GlueSource("qqp", ("question1", "question2"), {"not_duplicate": "0", "duplicate": "1"}),
    "mnli": GlueSource("mnli", ("premise", "hypothesis"),
                       {name: name for name in ("entailment", "neutral", "contradiction")}),
    "qnli": GlueSource("qnli", ("question", "sentence"), _NLI),
    "rte": GlueSource("rte", ("sentence1", "sentence2"), _NLI),
    "wnli": GlueSource("wnli", ("sentence1", "sentence2"), {"not_entailment": "0", "entailment": "1"}),
}
# The GLUE files' split names -> TFDS's.
GLUE_SPLITS = {"train": "train", "dev": "validation", "dev_matched": "validation_matched",
               "dev_mismatched": "validation_mismatched"}
SQUAD_SPLITS = {"train": "train", "dev": "validation"}


def is_tfds(data_dir: str) -> bool:
  """Whether `data_dir` names TensorFlow Datasets (`tfds:` or `tfds:DIR`) rather than a directory of files."""
  return data_dir.startswith(PREFIX)


def glue_name(task: glue.GlueTask) -> str:
  return f"glue/{GLUE[task.name].config}"


def squad_name(version_2: bool) -> str:
  return "squad/v2.0" if version_2 else "squad/v1.1"


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (2 s, only for tfds: data)
  except ImportError:
    raise ValueError("--data_dir=tfds: reads TensorFlow Datasets, which is not installed: "
                     "pip install -e '.[tfds]'") from None
  return tfds


class Dataset:
  """One TFDS dataset (`name` = `dataset/config`) in the data dir that `data_dir` (`tfds:[DIR]`) names."""

  def __init__(self, name: str, data_dir: str):
    self._tfds = _import_tfds()
    self.name = name
    self.given_dir = data_dir[len(PREFIX):] or None
    self.builder = self._tfds.builder(name, data_dir=self.given_dir)

  @property
  def root(self) -> str:
    """The TFDS data dir read from: DIR, else TFDS's default."""
    return self.given_dir or self._tfds.core.constants.get_default_data_dir()

  def __str__(self) -> str:
    return f"TFDS {self.name}"

  def identity(self) -> Dict[str, Any]:
    """What the feature cache is keyed by instead of file digests: name, version and split sizes.

    Fails (in one line) when the dataset is not prepared, before a cache dir is made for it.
    """
    self._open("train")  # Every GLUE and SQuAD dataset has one; opening it is TFDS's "is it prepared" check.
    info = self.builder.info
    return {"name": self.name, "version": str(info.version),
            "num_examples": {split: info.splits[split].num_examples for split in sorted(info.splits)}}

  def num_examples(self, split: str) -> Optional[int]:
    splits = self.builder.info.splits
    return splits[split].num_examples if split in splits else None

  def _prepare_command(self) -> str:
    data_dir = f", data_dir={self.given_dir!r}" if self.given_dir else ""
    return (f"python -c \"import tensorflow_datasets as tfds; tfds.builder({self.name!r}{data_dir})"
            ".download_and_prepare()\"")

  def _open(self, split: str):
    try:
      return self.builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError:  # What TFDS raises for a dataset that was never prepared.
      raise ValueError(f"{self} is not prepared in {self.root}: run `{self._prepare_command()}` where TensorFlow "
                       "Datasets can download (or pass --data_dir=tfds:<a data dir that holds it>)") from None

  def examples(self, split: str) -> Iterator[Dict[str, Any]]:
    """A split's examples as NumPy values (text as UTF-8 bytes), in TFDS's stored order."""
    return iter(self._tfds.as_numpy(self._open(split)))


def _text(value: bytes) -> str:
  return value.decode("utf-8")


def _score_text(value: np.floating) -> str:
  """STS-B's float32 score as the TSV spells it ("3.800" is stored as float32 3.8 and printed "3.8")."""
  return np.format_float_positional(np.float32(value), unique=True, trim="-")


def glue_fields(dataset: Dataset, task: glue.GlueTask, split: str,
                on_progress: Optional[Callable[[float], None]] = None) -> Iterator[glue.Fields]:
  """`glue.iter_fields` of one split (a GLUE file split name: train, dev, dev_matched, ...) from TFDS.

  The row number is the example's `idx` (its data row in the GLUE file); the label is spelled as
  the file spells it and parsed by `glue.parse_label`, so it is the label the TSV reader gives.
  `on_progress(fraction of the split read)` is called every 8192 examples.
  """
  source = GLUE[task.name]
  tfds_split = GLUE_SPLITS[split]
  label_of_class: Optional[List[str]] = None
  if source.labels is not None:
    names = dataset.builder.info.features["label"].names
    unknown = [name for name in names if name not in source.labels]
    if unknown:
      raise ValueError(f"{dataset} has label names {names}; {task.name} maps only {sorted(source.labels)}")
    label_of_class = [source.labels[name] for name in names]
  text_a, text_b = source.text_features
  total = dataset.num_examples(tfds_split)
  for count, example in enumerate(dataset.examples(tfds_split), 1):
    n = int(example["idx"])
    where = f"{dataset} {tfds_split} idx {n}"
    raw_label = example["label"]
    if label_of_class is None:
      label = glue.parse_label(task, _score_text(raw_label), where)
    elif 0 <= raw_label < len(label_of_class):
      label = glue.parse_label(task, label_of_class[raw_label], where)
    else:
      raise ValueError(f"{where}: label {int(raw_label)} is not a class of {task.name} (an unlabelled test split?)")
    yield n, _text(example[text_a]), _text(example[text_b]) if text_b else None, label
    if on_progress is not None and total and count % _PROGRESS_EVERY == 0:
      on_progress(min(1.0, count / total))


def squad_json(dataset: Dataset, split: str, version_2: bool) -> Dict[str, Any]:
  """One split (train or dev) in the layout of SQuAD's JSON files, for `squad.examples_from_json`.

  TFDS keeps one example per question, each with its title and context; they are grouped back into
  articles (by title) and paragraphs (by context), each in the order first seen, with the questions
  in TFDS's order inside them. The questions of one paragraph share its words, as in the file.
  """
  articles: Dict[str, Dict[str, Dict[str, Any]]] = {}
  for example in dataset.examples(SQUAD_SPLITS[split]):
    context = _text(example["context"])
    paragraphs = articles.setdefault(_text(example["title"]), {})
    paragraph = paragraphs.setdefault(context, {"context": context, "qas": []})
    answers = example["answers"]
    qa = {"id": _text(example["id"]), "question": _text(example["question"]),
          "answers": [{"text": _text(text), "answer_start": int(start)}
                      for text, start in zip(answers["text"], answers["answer_start"])]}
    if version_2:
      qa["is_impossible"] = bool(example["is_impossible"])
    paragraph["qas"].append(qa)
  return {"data": [{"title": title, "paragraphs": list(paragraphs.values())}
                   for title, paragraphs in articles.items()]}
