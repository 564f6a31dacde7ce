"""The model side of each fine-tuning task: arrays for the model, the model, and scoring its outputs.

The readers, feature converters and official metrics live in `glue`, `squad`, `tagging` and `race`;
this module turns their features into numpy arrays keyed by the names `finetuning.models` reads
(`input_word_ids`, `input_mask`, `input_type_ids`, labels), chooses the task model, and maps the
model's per-row outputs back to predictions and metrics.

Tasks by name (what `finetune.task` takes): the nine GLUE tasks (cola, sst2, mrpc, stsb, qqp, mnli,
qnli, rte, wnli), squad_v1, squad_v2, pos (tagging, word accuracy), ner (tagging, entity F1) and
race (multiple choice).
"""
import collections
import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import gin
import numpy as np

from tpu_electra.finetuning import fileio
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import models
from tpu_electra.finetuning import race
from tpu_electra.finetuning import squad
from tpu_electra.finetuning import tagging

Arrays = Dict[str, np.ndarray]
# (per-row model outputs in row order) -> (metrics, files to write beside them: name -> JSON object)
ScoreFn = Callable[[Arrays], Tuple[Dict[str, float], Dict[str, Any]]]


@dataclasses.dataclass
class EvalSet:
  """One evaluation split: the model inputs and how to score the model's outputs on them."""
  name: str
  arrays: Arrays
  score: ScoreFn

  @property
  def num_rows(self) -> int:
    return len(self.arrays["input_word_ids"])


@dataclasses.dataclass
class TaskData:
  """Everything a run needs from a task once its data is read and converted."""
  name: str
  train: Arrays
  evals: List[EvalSet]
  build_model: Callable[..., models.TaskModel]
  # The flattened metric name that "best" and the learning-curve plot follow.
  primary_metric: str
  stats: Dict[str, int] = dataclasses.field(default_factory=dict)

  @property
  def num_train(self) -> int:
    return len(self.train["input_word_ids"])


def flatten_metrics(per_eval: Mapping[str, Mapping[str, float]]) -> Dict[str, float]:
  """{eval name: {metric: v}} -> {metric: v} for one eval set, {"name/metric": v} for several."""
  if len(per_eval) == 1:
    return dict(next(iter(per_eval.values())))
  return {f"{name}/{metric}": value for name, values in per_eval.items() for metric, value in values.items()}


def _encoder_arrays(rows: Sequence[Any]) -> Arrays:
  return {
      "input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
      "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
      "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32),
  }


def _require_rows(rows: Sequence[Any], what: str) -> None:
  if not rows:
    raise ValueError(f"{what} has no examples")


# ----------------------------------------------------------------------------------------------
# GLUE


@gin.configurable
class GlueTask:
  """One GLUE task from the standard directory layout under `data_dir` (`<data_dir>/<TASK>/*.tsv`)."""

  def __init__(self, name: str):
    self.task = glue.get_task(name)
    self.name = self.task.name

  @property
  def primary_metric(self) -> str:
    metric = {"cola": "mcc", "sts-b": "spearman"}.get(self.name, "accuracy")
    if len(self.task.eval_splits) > 1:
      return f"{glue.result_key(self.task, self.task.eval_splits[0])}/{metric}"
    return metric

  def _arrays(self, data_dir, split, tokenizer, max_seq_length) -> Tuple[Arrays, List[glue.GlueFeature]]:
    stats = collections.Counter()
    examples = glue.read_examples(data_dir, self.name, split, stats=stats)
    _require_rows(examples, glue.split_path(data_dir, self.task, split))
    rows = [glue.convert_example(e, self.task, tokenizer, max_seq_length) for e in examples]
    arrays = _encoder_arrays(rows)
    dtype = np.float32 if self.task.is_regression else np.int32
    arrays["label_ids"] = np.asarray([r.label_id for r in rows], dtype)
    return arrays, rows

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int) -> TaskData:
    train, _ = self._arrays(data_dir, "train", tokenizer, max_seq_length)
    evals = []
    for split in self.task.eval_splits:
      arrays, rows = self._arrays(data_dir, split, tokenizer, max_seq_length)
      evals.append(EvalSet(glue.result_key(self.task, split), arrays, self._scorer(rows)))
    num_labels = self.task.num_labels

    def build(encoder, dropout_rate=0.1):
      if self.task.is_regression:
        return models.RegressionModel(encoder, dropout_rate)
      return models.ClassificationModel(encoder, num_labels, dropout_rate)

    return TaskData(self.name, train, evals, build, self.primary_metric)

  def _scorer(self, rows: Sequence[glue.GlueFeature]) -> ScoreFn:
    gold = [r.label_id for r in rows]

    def score(outputs: Arrays):
      if self.task.is_regression:
        predictions = [float(x) for x in outputs["scores"]]
      else:
        predictions = [int(x) for x in np.argmax(outputs["logits"], axis=-1)]
      return glue.evaluate(self.name, predictions, gold), {}

    return score


# ----------------------------------------------------------------------------------------------
# SQuAD


@gin.configurable
class SquadTask:
  """SQuAD 1.1 or 2.0 from `<data_dir>/<train_file>` and `<data_dir>/<dev_file>`.

  Defaults are BERT's and ELECTRA's: doc stride 128, questions cut to 64 tokens, 20-best spans of
  at most 30 tokens, and for 2.0 the null answer whenever null score - best span score > 0.
  """

  def __init__(self, version_2: bool = False, train_file: Optional[str] = None, dev_file: Optional[str] = None,
               doc_stride: int = 128, max_query_length: int = 64, n_best_size: int = 20,
               max_answer_length: int = 30, null_score_diff_threshold: float = 0.0):
    self.version_2 = version_2
    self.name = "squad_v2" if version_2 else "squad_v1"
    suffix = "v2.0" if version_2 else "v1.1"
    self.train_file = train_file or f"train-{suffix}.json"
    self.dev_file = dev_file or f"dev-{suffix}.json"
    self.doc_stride = doc_stride
    self.max_query_length = max_query_length
    self.n_best_size = n_best_size
    self.max_answer_length = max_answer_length
    self.null_score_diff_threshold = null_score_diff_threshold
    self.primary_metric = "f1"

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int) -> TaskData:
    stats = collections.Counter()
    train_path = fileio.join(data_dir, self.train_file)
    train_examples = squad.read_examples(train_path, is_training=True, version_2=self.version_2, stats=stats)
    _require_rows(train_examples, train_path)
    train_rows = squad.convert_examples_to_features(
        train_examples, tokenizer, max_seq_length, self.doc_stride, self.max_query_length, is_training=True)
    train = _encoder_arrays(train_rows)
    train["start_positions"] = np.asarray([r.start_position for r in train_rows], np.int32)
    train["end_positions"] = np.asarray([r.end_position for r in train_rows], np.int32)

    dev_path = fileio.join(data_dir, self.dev_file)
    dev_examples = squad.read_examples(dev_path, is_training=False, version_2=self.version_2)
    _require_rows(dev_examples, dev_path)
    dev_rows = squad.convert_examples_to_features(
        dev_examples, tokenizer, max_seq_length, self.doc_stride, self.max_query_length, is_training=False)
    evals = [EvalSet("dev", _encoder_arrays(dev_rows), self._scorer(dev_examples, dev_rows))]
    return TaskData(self.name, train, evals, lambda encoder, dropout_rate=0.1: models.SpanModel(encoder),
                    self.primary_metric, stats=dict(stats))

  def _scorer(self, examples, rows) -> ScoreFn:
    gold = squad.gold_answers_from_examples(examples)

    def score(outputs: Arrays):
      results = [squad.RawResult(row.unique_id, start.tolist(), end.tolist())
                 for row, start, end in zip(rows, outputs["start_logits"], outputs["end_logits"])]
      predicted = squad.decode_predictions(
          examples, rows, results, n_best_size=self.n_best_size, max_answer_length=self.max_answer_length,
          version_2=self.version_2, null_score_diff_threshold=self.null_score_diff_threshold)
      files = {"predictions.json": predicted.answers}
      if self.version_2:
        metrics = squad.evaluate_v2(gold, predicted.answers, na_probs=predicted.null_score_diffs,
                                    na_prob_threshold=self.null_score_diff_threshold)
        files["null_odds.json"] = predicted.null_score_diffs
      else:
        metrics = squad.evaluate_v1(gold, predicted.answers)
      return metrics, files

    return score


# ----------------------------------------------------------------------------------------------
# Tagging


@gin.configurable
class TaggingTask:
  """CoNLL-style tagging from `<data_dir>/<train_file>` and `<data_dir>/<dev_file>`.

  `chunked=False` (POS) scores word accuracy only; `chunked=True` (NER, chunking) adds entity-level
  precision, recall and F1. The label list is every tag of train and dev, O first.
  """

  def __init__(self, name: str = "pos", chunked: bool = False, train_file: str = "train.txt",
               dev_file: str = "dev.txt"):
    self.name = name
    self.chunked = chunked
    self.train_file = train_file
    self.dev_file = dev_file
    self.primary_metric = "f1" if chunked else "accuracy"

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int) -> TaskData:
    train_path = fileio.join(data_dir, self.train_file)
    dev_path = fileio.join(data_dir, self.dev_file)
    train_examples = tagging.read_examples(train_path, "train")
    dev_examples = tagging.read_examples(dev_path, "dev")
    _require_rows(train_examples, train_path)
    _require_rows(dev_examples, dev_path)
    label_list = tagging.label_list_from_examples(list(train_examples) + list(dev_examples))
    stats = collections.Counter()
    train_rows = [tagging.convert_example(e, label_list, tokenizer, max_seq_length, stats) for e in train_examples]
    dev_rows = [tagging.convert_example(e, label_list, tokenizer, max_seq_length, stats) for e in dev_examples]
    train = _encoder_arrays(train_rows)
    train["label_ids"] = np.asarray([r.label_ids for r in train_rows], np.int32)
    dev = _encoder_arrays(dev_rows)

    def score(outputs: Arrays):
      positions = np.argmax(outputs["logits"], axis=-1)
      predicted = {row.guid: tagging.word_tags(row, positions[i].tolist(), label_list)
                   for i, row in enumerate(dev_rows)}
      return tagging.evaluate_examples(dev_examples, predicted, chunked=self.chunked), {}

    num_labels = len(label_list)
    return TaskData(self.name, train, [EvalSet("dev", dev, score)],
                    lambda encoder, dropout_rate=0.1: models.TaggingModel(encoder, num_labels, dropout_rate),
                    self.primary_metric, stats=dict(stats))


# ----------------------------------------------------------------------------------------------
# RACE


@gin.configurable
class RaceTask:
  """RACE multiple choice from `<data_dir>/{train,dev}/{middle,high}/*.txt`."""

  def __init__(self, levels: Sequence[str] = race.LEVELS, eval_split: str = "dev"):
    self.name = "race"
    self.levels = tuple(levels)
    self.eval_split = eval_split
    self.primary_metric = "accuracy"

  def _rows(self, data_dir, split, tokenizer, max_seq_length, stats):
    examples = race.read_examples(data_dir, split, self.levels)
    _require_rows(examples, fileio.join(data_dir, split))
    rows = [race.convert_example(e, tokenizer, max_seq_length, stats) for e in examples]
    counts = {len(r.input_ids) for r in rows}
    if len(counts) != 1:
      raise ValueError(f"RACE {split} questions have different numbers of options {sorted(counts)}; "
                       "the model scores a fixed number per question")
    arrays = {
        "input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
        "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
        "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32),
        "label_ids": np.asarray([r.label for r in rows], np.int32),
    }
    return examples, rows, arrays

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int) -> TaskData:
    stats = collections.Counter()
    _, _, train = self._rows(data_dir, "train", tokenizer, max_seq_length, stats)
    dev_examples, dev_rows, dev = self._rows(data_dir, self.eval_split, tokenizer, max_seq_length, stats)
    num_choices = train["input_word_ids"].shape[1]
    if dev["input_word_ids"].shape[1] != num_choices:
      raise ValueError(f"RACE train has {num_choices} options per question but {self.eval_split} has "
                       f"{dev['input_word_ids'].shape[1]}")

    def score(outputs: Arrays):
      predicted = {row.guid: race.predict_option(logits.tolist()) for row, logits in zip(dev_rows, outputs["logits"])}
      return race.evaluate(dev_examples, predicted), {}

    return TaskData(self.name, train, [EvalSet(self.eval_split, dev, score)],
                    lambda encoder, dropout_rate=0.1: models.MultipleChoiceModel(encoder, num_choices, dropout_rate),
                    self.primary_metric, stats=dict(stats))


# ----------------------------------------------------------------------------------------------

TASK_NAMES = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "squad_v1", "squad_v2",
              "pos", "ner", "race")


def get_task(name: str):
  """A task adapter by name; GLUE names also accept the directory spelling ("SST-2", "sts-b")."""
  key = name.lower().replace("-", "").replace(".", "")
  if key in ("squad_v1", "squad1", "squadv1", "squad_v11", "squad11"):
    return SquadTask(version_2=False)
  if key in ("squad_v2", "squad2", "squadv2", "squad_v20", "squad20"):
    return SquadTask(version_2=True)
  if key == "pos":
    return TaggingTask(name="pos", chunked=False)
  if key == "ner":
    return TaggingTask(name="ner", chunked=True)
  if key == "race":
    return RaceTask()
  try:
    return GlueTask(name)
  except ValueError:
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}") from None
