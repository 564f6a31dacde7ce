"""The adapters of the built-in fine-tuning tasks: GLUE, text classification, SQuAD, tagging and RACE.

Each turns the examples its task module reads (`glue`, `text_classification`, `squad`, `tagging`,
`race`) into cached features and scores the model's outputs with the task's official metric, as
`task_base.CachedFeaturesTask` says; `finetuning.tasks` registers them by name.
"""
import collections
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import gin
import numpy as np

from tpu_electra import fileio
from tpu_electra.finetuning import feature_cache
from tpu_electra.finetuning import feature_records
from tpu_electra.finetuning import features
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import models
from tpu_electra.finetuning import prefetch
from tpu_electra.finetuning import race
from tpu_electra.finetuning import squad
from tpu_electra.finetuning import squad_decode
from tpu_electra.finetuning import squad_metrics
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import task_base
from tpu_electra.finetuning import text_classification
from tpu_electra.finetuning import tfds_source

# ----------------------------------------------------------------------------------------------
# GLUE


@gin.configurable
class GlueTask(task_base.CachedFeaturesTask):
  """One GLUE task from the standard directory layout under `data_dir` (`<data_dir>/<TASK>/*.tsv`)."""

  def __init__(self, name: str):
    self.task = glue.get_task(name)
    self.name = self.task.name
    self.tfds_name = tfds_source.glue_name(self.task)

  @property
  def primary_metric(self) -> str:
    metric = {"cola": "mcc", "sts-b": "spearman"}.get(self.name, "accuracy")
    if len(self.task.eval_splits) > 1:
      return f"{glue.result_key(self.task, self.task.eval_splits[0])}/{metric}"
    return metric

  @property
  def splits(self) -> Tuple[str, ...]:
    return ("train",) + self.task.eval_splits

  def settings(self) -> Dict[str, Any]:
    return {"glue_task": self.name, "splits": list(self.splits)}

  def input_files(self, data_dir: str) -> Dict[str, str]:
    return {f"{self.task.directory}/{split}.tsv": glue.split_path(data_dir, self.task, split) for split in self.splits}

  def _record_format(self, tokenizer, max_seq_length: int) -> feature_records.RecordFormat:
    label = feature_records.scalar_spec("label_ids", "float32" if self.task.is_regression else "int32")
    return feature_records.RecordFormat(task_base.encoder_specs(tokenizer, [max_seq_length]) + [label])

  def _fields(self, data_dir: str, split: str, stats: collections.Counter,
              on_progress: Callable[[float], None]) -> Tuple[Iterator[glue.Fields], str]:
    """(`glue.Fields` of `split`, streamed, and where they come from): its TSV, or its TFDS split."""
    if tfds_source.is_tfds(data_dir):
      source = self.tfds_dataset(data_dir)
      return (tfds_source.glue_fields(source, self.task, split, on_progress=on_progress),
              f"{source} {tfds_source.GLUE_SPLITS[split]}")
    return (glue.iter_fields(data_dir, self.name, split, stats=stats, on_progress=on_progress),
            glue.split_path(data_dir, self.task, split))

  def write_features(self, data_dir, tokenizer, max_seq_length, builder) -> None:
    record_format = self._record_format(tokenizer, max_seq_length)
    stats = collections.Counter()
    for split in self.splits:
      writer = builder.split(split, record_format)
      progress = feature_cache.Progress(f"preparing {self.name} {split}", None)
      gold: List[np.ndarray] = []
      fields, where = self._fields(data_dir, split, stats,
                                   on_progress=lambda fraction: progress.update(writer.num_rows, fraction))
      converted = ((chunk, glue.convert_fields(chunk, self.task, tokenizer, max_seq_length))
                   for chunk in prefetch.in_background(task_base.chunks(fields, task_base.CHUNK_EXAMPLES)))
      for chunk, arrays in prefetch.in_background(converted):
        writer.write(arrays)
        if split != "train":
          labels = [f[3] for f in chunk]
          gold.append(np.asarray(labels, np.float64) if self.task.is_regression
                      else glue.label_ids_of(labels, self.task))
      builder.finish_split(writer)
      progress.finish(writer.num_rows)
      if not writer.num_rows:
        raise ValueError(f"{where} has no examples")
      if split != "train":
        builder.write_metadata(split, arrays={"gold": np.concatenate(gold)})
    builder.stats.update(stats)

  def task_data(self, cached: feature_cache.CachedTask) -> task_base.TaskData:
    evals = []
    for split in self.task.eval_splits:
      _, arrays = cached.metadata(split)
      evals.append(task_base.EvalSet(glue.result_key(self.task, split), cached.splits[split], self._scorer(arrays["gold"])))
    num_labels = self.task.num_labels

    def build(encoder, dropout_rate=0.1):
      if self.task.is_regression:
        return models.RegressionModel(encoder, dropout_rate)
      return models.ClassificationModel(encoder, num_labels, dropout_rate)

    return task_base.TaskData(self.name, cached.splits["train"], evals, build, self.primary_metric)

  def _scorer(self, gold_array: np.ndarray) -> task_base.ScoreFn:
    gold = gold_array.tolist()

    def score(outputs: task_base.Arrays):
      if self.task.is_regression:
        predictions = [float(x) for x in outputs["scores"]]
      else:
        predictions = [int(x) for x in np.argmax(outputs["logits"], axis=-1)]
      return glue.evaluate(self.name, predictions, gold), {}

    return score


# ----------------------------------------------------------------------------------------------
# Text classification


@gin.configurable
class TextClassificationTask(task_base.CachedFeaturesTask):
  """Any single-text classification TSV: `<data_dir>/<train_file>` and `<data_dir>/<dev_file>`.

  The columns are named in each file's header (`text_column`, `label_column`); the labels are those
  of the train file, sorted (`text_classification.sort_labels`), and recorded in the feature cache's
  info (so in the run's run.json). Features are GLUE's single-sentence ones, `[CLS] text [SEP]`.
  """

  def __init__(self, train_file: str = "train.tsv", dev_file: str = "dev.tsv", text_column: str = "text",
               label_column: str = "label"):
    self.name = "text_classification"
    self.train_file = train_file
    self.dev_file = dev_file
    self.text_column = text_column
    self.label_column = label_column
    self.primary_metric = "accuracy"
    self._label_list: Optional[List[str]] = None

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int, cache_dir: Optional[str] = None,
              verify_checksums: bool = True) -> task_base.TaskData:
    if tfds_source.is_tfds(data_dir):
      self.tfds_dataset(data_dir)  # Refuses it in one line: this task has no TFDS source.
    # The label set is part of what the features are keyed by, so it is read before the cache is looked up.
    train_path = task_base.require_files(self.input_files(data_dir))["train"]
    self._label_list = text_classification.read_label_list(train_path, self.text_column, self.label_column)
    return super().prepare(data_dir, tokenizer, max_seq_length, cache_dir, verify_checksums)

  def settings(self) -> Dict[str, Any]:
    return {"text_column": self.text_column, "label_column": self.label_column, "labels": list(self._label_list)}

  def input_files(self, data_dir: str) -> Dict[str, str]:
    return {"train": fileio.join(data_dir, self.train_file), "dev": fileio.join(data_dir, self.dev_file)}

  def write_features(self, data_dir, tokenizer, max_seq_length, builder) -> None:
    label_map = {label: i for i, label in enumerate(self._label_list)}
    record_format = feature_records.RecordFormat(
        task_base.encoder_specs(tokenizer, [max_seq_length]) + [feature_records.scalar_spec("label_ids")])
    gold: List[np.ndarray] = []
    for split, path in self.input_files(data_dir).items():
      writer = builder.split(split, record_format)
      progress = feature_cache.Progress(f"preparing {self.name} {split}", None)
      rows = text_classification.read_rows(path, self.text_column, self.label_column)
      labelled = ((row.text, text_classification.label_id(row, label_map, path)) for row in rows)
      converted = ((chunk, glue.pack_texts([text for text, _ in chunk], None, tokenizer, max_seq_length))
                   for chunk in prefetch.in_background(task_base.chunks(labelled, task_base.CHUNK_EXAMPLES)))
      for chunk, arrays in prefetch.in_background(converted):
        arrays["label_ids"] = np.asarray([label for _, label in chunk], np.int32)
        writer.write(arrays)
        if split == "dev":
          gold.append(arrays["label_ids"])
        progress.update(writer.num_rows)
      builder.finish_split(writer)
      progress.finish(writer.num_rows)
    builder.write_metadata("dev", arrays={"gold": np.concatenate(gold)})
    builder.info["label_list"] = list(self._label_list)

  def task_data(self, cached: feature_cache.CachedTask) -> task_base.TaskData:
    _, arrays = cached.metadata("dev")
    gold = arrays["gold"].tolist()
    num_labels = len(cached.info["label_list"])

    def score(outputs: task_base.Arrays):
      return text_classification.evaluate(np.argmax(outputs["logits"], axis=-1).tolist(), gold), {}

    return task_base.TaskData(self.name, cached.splits["train"], [task_base.EvalSet("dev", cached.splits["dev"], score)],
                    lambda encoder, dropout_rate=0.1: models.ClassificationModel(encoder, num_labels, dropout_rate),
                    self.primary_metric)


# ----------------------------------------------------------------------------------------------
# SQuAD


class _WindowMap(collections.abc.Mapping):
  """A SQuAD window's input position -> value map, as one offset and an array (no dict per feature)."""

  def __init__(self, start: int, values: np.ndarray, convert: Callable[[Any], Any]):
    self._start, self._values, self._convert = start, values, convert

  def __contains__(self, position) -> bool:
    return isinstance(position, (int, np.integer)) and 0 <= position - self._start < len(self._values)

  def __getitem__(self, position):
    if position not in self:
      raise KeyError(position)
    return self._convert(self._values[position - self._start])

  def __iter__(self):
    return iter(range(self._start, self._start + len(self._values)))

  def __len__(self) -> int:
    return len(self._values)


@gin.configurable
class SquadTask(task_base.CachedFeaturesTask):
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
    self.tfds_name = tfds_source.squad_name(version_2)

  def settings(self) -> Dict[str, Any]:
    # n-best size, answer length and the null threshold act on outputs, not on features.
    return {"version_2": self.version_2, "doc_stride": self.doc_stride, "max_query_length": self.max_query_length}

  def input_files(self, data_dir: str) -> Dict[str, str]:
    return {"train": fileio.join(data_dir, self.train_file), "dev": fileio.join(data_dir, self.dev_file)}

  def _read_examples(self, data_dir: str, split: str, stats: Optional[collections.Counter] = None):
    """(examples of `split`, where they came from): its JSON file, or TFDS's examples in that file's layout."""
    is_training = split == "train"
    if tfds_source.is_tfds(data_dir):
      source = self.tfds_dataset(data_dir)
      dataset = tfds_source.squad_json(source, split, self.version_2)
      return (squad.examples_from_json(dataset, is_training, self.version_2, stats),
              f"{source} {tfds_source.SQUAD_SPLITS[split]}")
    path = fileio.join(data_dir, self.train_file if is_training else self.dev_file)
    return squad.read_examples(path, is_training, self.version_2, stats), path

  def _convert(self, examples, tokenizer, max_seq_length, is_training, writer, progress, on_features=None):
    """Windows `examples` chunk by chunk against a batched memo of the chunk's texts; writes them."""
    unique_id = 1000000000
    for start in range(0, len(examples), task_base.CHUNK_EXAMPLES // 8):
      chunk = examples[start:start + task_base.CHUNK_EXAMPLES // 8]
      texts = [e.question_text for e in chunk]
      if is_training:
        texts += [e.answer_texts[0] for e in chunk if not e.is_impossible and e.answer_texts]
      seen_docs = set()
      for e in chunk:
        if id(e.doc_tokens) not in seen_docs:
          seen_docs.add(id(e.doc_tokens))
          texts.extend(e.doc_tokens)
      memo = features.MemoTokenizer(tokenizer, texts)
      rows = squad.convert_examples_to_features(
          chunk, memo, max_seq_length, self.doc_stride, self.max_query_length, is_training=is_training,
          first_unique_id=unique_id, first_example_index=start)
      unique_id += len(rows)
      arrays = task_base.encoder_arrays(rows)
      if is_training:
        arrays["start_positions"] = np.asarray([r.start_position for r in rows], np.int32)
        arrays["end_positions"] = np.asarray([r.end_position for r in rows], np.int32)
      writer.write(arrays)
      if on_features is not None:
        on_features(rows)
      progress.update(start + len(chunk))

  def write_features(self, data_dir, tokenizer, max_seq_length, builder) -> None:
    stats = collections.Counter()
    encoder = task_base.encoder_specs(tokenizer, [max_seq_length])
    train_examples, train_source = self._read_examples(data_dir, "train", stats)
    task_base.require_rows(train_examples, train_source)
    writer = builder.split("train", feature_records.RecordFormat(
        encoder + [feature_records.scalar_spec("start_positions"), feature_records.scalar_spec("end_positions")]))
    progress = feature_cache.Progress(f"preparing {self.name} train", len(train_examples), "questions")
    self._convert(train_examples, tokenizer, max_seq_length, True, writer, progress)
    builder.finish_split(writer)
    progress.finish(len(train_examples))
    del train_examples

    dev_examples, dev_source = self._read_examples(data_dir, "dev")
    task_base.require_rows(dev_examples, dev_source)
    writer = builder.split("dev", feature_records.RecordFormat(encoder))
    progress = feature_cache.Progress(f"preparing {self.name} dev", len(dev_examples), "questions")
    maps = collections.defaultdict(list)

    def keep_maps(rows):
      for row in rows:
        positions = sorted(row.token_to_orig_map)
        maps["unique_id"].append(row.unique_id)
        maps["example_index"].append(row.example_index)
        maps["doc_span_index"].append(row.doc_span_index)
        maps["map_start"].append(positions[0] if positions else 0)
        maps["map_length"].append(len(positions))
        maps["orig"].extend(row.token_to_orig_map[p] for p in positions)
        maps["max_context"].extend(bool(row.token_is_max_context[p]) for p in positions)

    self._convert(dev_examples, tokenizer, max_seq_length, False, writer, progress, keep_maps)
    builder.finish_split(writer)
    progress.finish(len(dev_examples))
    # Scoring needs the examples' words and answers and each window's position -> word map.
    paragraphs, paragraph_of = [], {}
    examples_meta = []
    for e in dev_examples:
      if id(e.doc_tokens) not in paragraph_of:
        paragraph_of[id(e.doc_tokens)] = len(paragraphs)
        paragraphs.append(e.doc_tokens)
      examples_meta.append([e.qas_id, paragraph_of[id(e.doc_tokens)], e.answer_texts, e.is_impossible])
    builder.write_metadata("dev", {"paragraphs": paragraphs, "examples": examples_meta}, {
        "unique_id": np.asarray(maps["unique_id"], np.int64),
        "example_index": np.asarray(maps["example_index"], np.int32),
        "doc_span_index": np.asarray(maps["doc_span_index"], np.int32),
        "map_start": np.asarray(maps["map_start"], np.int32),
        "map_length": np.asarray(maps["map_length"], np.int32),
        "orig": np.asarray(maps["orig"], np.int32),
        "max_context": np.asarray(maps["max_context"], np.bool_)})
    builder.stats.update(stats)

  def task_data(self, cached: feature_cache.CachedTask) -> task_base.TaskData:
    meta, arrays = cached.metadata("dev")
    paragraphs = meta["paragraphs"]
    examples = [squad.SquadExample(qas_id=qas_id, question_text="", doc_tokens=paragraphs[p], answer_texts=answers,
                                   is_impossible=impossible)
                for qas_id, p, answers, impossible in meta["examples"]]
    offsets = np.concatenate([[0], np.cumsum(arrays["map_length"])]).astype(np.int64)
    rows = []
    for i in range(len(arrays["unique_id"])):
      orig = arrays["orig"][offsets[i]:offsets[i + 1]]
      max_context = arrays["max_context"][offsets[i]:offsets[i + 1]]
      start = int(arrays["map_start"][i])
      rows.append(squad.SquadFeature(
          unique_id=int(arrays["unique_id"][i]), example_index=int(arrays["example_index"][i]),
          doc_span_index=int(arrays["doc_span_index"][i]), input_ids=[], input_mask=[], segment_ids=[],
          token_to_orig_map=_WindowMap(start, orig, int), token_is_max_context=_WindowMap(start, max_context, bool)))
    evals = [task_base.EvalSet("dev", cached.splits["dev"], self._scorer(examples, rows))]
    serving = {"version_2": self.version_2, "doc_stride": self.doc_stride, "max_query_length": self.max_query_length,
               "n_best_size": self.n_best_size, "max_answer_length": self.max_answer_length,
               "null_score_diff_threshold": self.null_score_diff_threshold}
    return task_base.TaskData(self.name, cached.splits["train"], evals,
                    lambda encoder, dropout_rate=0.1: models.SpanModel(encoder), self.primary_metric,
                    serving=serving)

  def _scorer(self, examples, rows) -> task_base.ScoreFn:
    gold = squad_metrics.gold_answers_from_examples(examples)

    def score(outputs: task_base.Arrays):
      results = [squad_decode.RawResult(row.unique_id, start.tolist(), end.tolist())
                 for row, start, end in zip(rows, outputs["start_logits"], outputs["end_logits"])]
      predicted = squad_decode.decode_predictions(
          examples, rows, results, n_best_size=self.n_best_size, max_answer_length=self.max_answer_length,
          version_2=self.version_2, null_score_diff_threshold=self.null_score_diff_threshold)
      files = {"predictions.json": predicted.answers}
      if self.version_2:
        metrics = squad_metrics.evaluate_v2(gold, predicted.answers, na_probs=predicted.null_score_diffs,
                                            na_prob_threshold=self.null_score_diff_threshold)
        files["null_odds.json"] = predicted.null_score_diffs
      else:
        metrics = squad_metrics.evaluate_v1(gold, predicted.answers)
      return metrics, files

    return score


# ----------------------------------------------------------------------------------------------
# Tagging


@gin.configurable
class TaggingTask(task_base.CachedFeaturesTask):
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

  def settings(self) -> Dict[str, Any]:
    return {"tagging": self.name}

  def input_files(self, data_dir: str) -> Dict[str, str]:
    return {"train": fileio.join(data_dir, self.train_file), "dev": fileio.join(data_dir, self.dev_file)}

  def write_features(self, data_dir, tokenizer, max_seq_length, builder) -> None:
    train_path = fileio.join(data_dir, self.train_file)
    dev_path = fileio.join(data_dir, self.dev_file)
    train_examples = tagging.read_examples(train_path, "train")
    dev_examples = tagging.read_examples(dev_path, "dev")
    task_base.require_rows(train_examples, train_path)
    task_base.require_rows(dev_examples, dev_path)
    label_list = tagging.label_list_from_examples(list(train_examples) + list(dev_examples))
    stats = collections.Counter()
    encoder = task_base.encoder_specs(tokenizer, [max_seq_length])
    labels = feature_records.sequence_spec("label_ids", [max_seq_length], pad=features.IGNORE_LABEL,
                                         low=features.IGNORE_LABEL, high=len(label_list) - 1)
    word_positions: List[List[int]] = []
    for split, examples, record_format in (("train", train_examples, encoder + [labels]), ("dev", dev_examples, encoder)):
      writer = builder.split(split, feature_records.RecordFormat(record_format))
      progress = feature_cache.Progress(f"preparing {self.name} {split}", len(examples), "sentences")
      done = 0
      for chunk in task_base.chunks(examples, task_base.CHUNK_EXAMPLES):
        memo = features.MemoTokenizer(tokenizer, (w for e in chunk for w in e.words))
        rows = [tagging.convert_example(e, label_list, memo, max_seq_length, stats) for e in chunk]
        arrays = task_base.encoder_arrays(rows)
        if split == "train":
          arrays["label_ids"] = np.asarray([r.label_ids for r in rows], np.int32)
        else:
          word_positions.extend(r.word_positions for r in rows)
        writer.write(arrays)
        done += len(chunk)
        progress.update(done)
      builder.finish_split(writer)
      progress.finish(done)
    builder.info["label_list"] = list(label_list)
    builder.write_metadata("dev", {"examples": [[e.guid, e.words, e.tags] for e in dev_examples]}, {
        "word_positions": np.asarray([p for row in word_positions for p in row], np.int32),
        "num_words": np.asarray([len(row) for row in word_positions], np.int32)})
    builder.stats.update(stats)

  def task_data(self, cached: feature_cache.CachedTask) -> task_base.TaskData:
    label_list = cached.info["label_list"]
    meta, arrays = cached.metadata("dev")
    dev_examples = [tagging.TaggingExample(guid, words, tags) for guid, words, tags in meta["examples"]]
    offsets = np.concatenate([[0], np.cumsum(arrays["num_words"])]).astype(np.int64)
    positions = [arrays["word_positions"][offsets[i]:offsets[i + 1]].tolist() for i in range(len(dev_examples))]

    def score(outputs: task_base.Arrays):
      predicted_ids = np.argmax(outputs["logits"], axis=-1)
      predicted = {}
      for i, example in enumerate(dev_examples):
        row = tagging.TaggingFeature(example.guid, [], [], [], [], positions[i])
        predicted[example.guid] = tagging.word_tags(row, predicted_ids[i].tolist(), label_list)
      return tagging.evaluate_examples(dev_examples, predicted, chunked=self.chunked), {}

    num_labels = len(label_list)
    return task_base.TaskData(self.name, cached.splits["train"], [task_base.EvalSet("dev", cached.splits["dev"], score)],
                    lambda encoder, dropout_rate=0.1: models.TaggingModel(encoder, num_labels, dropout_rate),
                    self.primary_metric)


# ----------------------------------------------------------------------------------------------
# RACE


@gin.configurable
class RaceTask(task_base.CachedFeaturesTask):
  """RACE multiple choice from `<data_dir>/{train,dev}/{middle,high}/*.txt`."""

  def __init__(self, levels: Sequence[str] = race.LEVELS, eval_split: str = "dev"):
    self.name = "race"
    self.levels = tuple(levels)
    self.eval_split = eval_split
    self.primary_metric = "accuracy"

  def settings(self) -> Dict[str, Any]:
    return {"levels": list(self.levels), "eval_split": self.eval_split}

  def input_files(self, data_dir: str) -> Dict[str, str]:
    files = {}
    for split in ("train", self.eval_split):
      for level in self.levels:
        for path in fileio.glob(fileio.join(data_dir, split, level, "*.txt")):
          files[f"{split}/{level}/{path.rsplit('/', 1)[-1]}"] = path
    return files

  def _write_split(self, data_dir, split, tokenizer, max_seq_length, builder, stats):
    examples = race.read_examples(data_dir, split, self.levels)
    task_base.require_rows(examples, fileio.join(data_dir, split))
    num_choices = {len(e.options) for e in examples}
    if len(num_choices) != 1:
      raise ValueError(f"RACE {split} questions have different numbers of options {sorted(num_choices)}; "
                       "the model scores a fixed number per question")
    shape = [num_choices.pop(), max_seq_length]
    writer = builder.split(split, feature_records.RecordFormat(
        task_base.encoder_specs(tokenizer, shape) + [feature_records.scalar_spec("label_ids")]))
    progress = feature_cache.Progress(f"preparing race {split}", len(examples), "questions")
    done = 0
    for chunk in task_base.chunks(examples, task_base.CHUNK_EXAMPLES // 8):
      texts = [t for e in chunk for t in [e.article, e.question] + list(e.options)]
      memo = features.MemoTokenizer(tokenizer, texts)
      rows = [race.convert_example(e, memo, max_seq_length, stats) for e in chunk]
      writer.write({
          "input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
          "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
          "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32),
          "label_ids": np.asarray([r.label for r in rows], np.int32),
      })
      done += len(chunk)
      progress.update(done)
    builder.finish_split(writer)
    progress.finish(done)
    return examples, shape[0]

  def write_features(self, data_dir, tokenizer, max_seq_length, builder) -> None:
    stats = collections.Counter()
    _, num_choices = self._write_split(data_dir, "train", tokenizer, max_seq_length, builder, stats)
    dev_examples, dev_choices = self._write_split(data_dir, self.eval_split, tokenizer, max_seq_length, builder, stats)
    if dev_choices != num_choices:
      raise ValueError(f"RACE train has {num_choices} options per question but {self.eval_split} has {dev_choices}")
    builder.info["num_choices"] = num_choices
    builder.write_metadata(self.eval_split, {"examples": [[e.guid, e.level, e.label] for e in dev_examples]})
    builder.stats.update(stats)

  def task_data(self, cached: feature_cache.CachedTask) -> task_base.TaskData:
    meta, _ = cached.metadata(self.eval_split)
    dev_examples = [race.RaceExample(guid=guid, level=level, article="", question="", options=[], label=label)
                    for guid, level, label in meta["examples"]]
    num_choices = cached.info["num_choices"]

    def score(outputs: task_base.Arrays):
      predicted = {e.guid: race.predict_option(logits.tolist()) for e, logits in zip(dev_examples, outputs["logits"])}
      return race.evaluate(dev_examples, predicted), {}

    return task_base.TaskData(self.name, cached.splits["train"], [task_base.EvalSet(self.eval_split, cached.splits[self.eval_split], score)],
                    lambda encoder, dropout_rate=0.1: models.MultipleChoiceModel(encoder, num_choices, dropout_rate),
                    self.primary_metric, serving={"num_choices": num_choices})
