"""What every fine-tuning task adapter shares: the contract (`CachedFeaturesTask`), what a run gets from a task
(`TaskData`, its `EvalSet`s) and the helpers the adapters write their features with.

An adapter converts a task's splits into the features `finetuning.models` reads (`input_word_ids`,
`input_mask`, `input_type_ids`, labels) in batches, writes them once into the feature cache
(`feature_cache`: TFRecord shards keyed by the task files, vocab, casing, sequence length and task
settings), and builds the run's `TaskData` from the cache, whether this run wrote it or an earlier
one did: training and evaluation stream the shards, and scoring maps the model's per-row outputs
back to examples with the small metadata kept beside them. The adapters of the built-in tasks are
in `finetuning.adapters`; `finetuning.tasks` names them.
"""
import dataclasses
import itertools
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tpu_electra import fileio
from tpu_electra.finetuning import feature_cache
from tpu_electra.finetuning import feature_records
from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import features
from tpu_electra.finetuning import models
from tpu_electra.finetuning import tfds_source

Arrays = Dict[str, np.ndarray]
# (per-row model outputs in row order) -> (metrics, files to write beside them: name -> JSON object)
ScoreFn = Callable[[Arrays], Tuple[Dict[str, float], Dict[str, Any]]]
SplitFeatures = feature_streams.SplitFeatures
# Examples converted per batch: one or two tokenizer calls, arrays of a few MB.
CHUNK_EXAMPLES = 8192


@dataclasses.dataclass
class EvalSet:
  """One evaluation split: its features (streamed in row order) and how to score the model's outputs."""
  name: str
  features: SplitFeatures
  score: ScoreFn

  @property
  def num_rows(self) -> int:
    return self.features.num_rows


@dataclasses.dataclass
class TaskData:
  """Everything a run needs from a task once its features are prepared."""
  name: str
  train: SplitFeatures
  evals: List[EvalSet]
  build_model: Callable[..., models.TaskModel]
  # The flattened metric name that "best" and the learning-curve plot follow.
  primary_metric: str
  stats: Dict[str, int] = dataclasses.field(default_factory=dict)
  # Where the features came from: {"source": "built" | "cache", "dir": ...}.
  features: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # What serving the fine-tuned model needs beyond the features (recorded in the run's run.json):
  # SQuAD's windowing and decoding arguments, RACE's options per question.
  serving: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def num_train(self) -> int:
    return self.train.num_rows


def flatten_metrics(per_eval: Mapping[str, Mapping[str, float]]) -> Dict[str, float]:
  """{eval name: {metric: v}} -> {metric: v} for one eval set, {"name/metric": v} for several."""
  if len(per_eval) == 1:
    return dict(next(iter(per_eval.values())))
  return {f"{name}/{metric}": value for name, values in per_eval.items() for metric, value in values.items()}




def encoder_arrays(rows: Sequence[Any]) -> Arrays:
  return {
      "input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
      "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
      "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32),
  }


def require_rows(rows: Sequence[Any], what: str) -> None:
  if not rows:
    raise ValueError(f"{what} has no examples")


def chunks(items: Iterable[Any], size: int) -> Iterator[List[Any]]:
  iterator = iter(items)
  while True:
    chunk = list(itertools.islice(iterator, size))
    if not chunk:
      return
    yield chunk


def encoder_specs(tokenizer, shape: Sequence[int]) -> List[feature_records.FeatureSpec]:
  """Ids in [0, vocab size), mask and type ids in {0, 1}, padded as `features.pack_segments` pads."""
  ids = features.special_ids(tokenizer)
  vocab_size = getattr(tokenizer, "vocab_size", None)
  high = vocab_size - 1 if vocab_size else 2**31 - 1
  return [feature_records.sequence_spec("input_word_ids", shape, pad=ids.pad, high=max(high, ids.pad)),
          feature_records.sequence_spec("input_mask", shape, pad=0, high=1),
          feature_records.sequence_spec("input_type_ids", shape, pad=0, high=1)]


def require_files(paths: Mapping[str, str]) -> Dict[str, str]:
  for path in paths.values():
    if not fileio.exists(path):
      raise FileNotFoundError(f"{path} does not exist")
  return dict(paths)


class CachedFeaturesTask:
  """What every task adapter shares: `prepare` = find or build the task's features, then read them back.

  A subclass says what its features are made from (`settings`, `input_files`), how to write them
  (`write_features`, through a `feature_cache.CacheBuilder`) and how to turn the committed cache
  into `TaskData` (`task_data`). A task with a TensorFlow Datasets source names it (`tfds_name`);
  `--data_dir=tfds:[DIR]` then keys the cache by that dataset instead of files.
  """
  name: str
  tfds_name: Optional[str] = None

  def settings(self) -> Dict[str, Any]:
    raise NotImplementedError

  def input_files(self, data_dir: str) -> Dict[str, str]:
    raise NotImplementedError

  def write_features(self, data_dir: str, tokenizer, max_seq_length: int,
                     builder: feature_cache.CacheBuilder) -> None:
    raise NotImplementedError

  def task_data(self, cached: feature_cache.CachedTask) -> TaskData:
    raise NotImplementedError

  def tfds_dataset(self, data_dir: str) -> tfds_source.Dataset:
    """The TensorFlow Datasets dataset that `data_dir` (`tfds:[DIR]`) names for this task."""
    if self.tfds_name is None:
      raise ValueError(f"task {self.name} reads files only (--data_dir=tfds: serves the GLUE tasks, squad_v1 and "
                       "squad_v2): pass --data_dir=<the directory with its files>")
    return tfds_source.Dataset(self.tfds_name, data_dir)

  def prepare(self, data_dir: str, tokenizer, max_seq_length: int, cache_dir: Optional[str] = None,
              verify_checksums: bool = True) -> TaskData:
    """The task's features for this tokenizer and length: from the cache, or prepared once into it."""
    settings = self.settings()
    if tfds_source.is_tfds(data_dir):
      dataset = self.tfds_dataset(data_dir)
      files, settings["tfds"], data_root = {}, dataset.identity(), dataset.root
    else:
      files, data_root = require_files(self.input_files(data_dir)), data_dir
    cached = feature_cache.prepare(
        f"{self.name}-{max_seq_length}", data_root, cache_dir,
        lambda digests: feature_cache.cache_key(self.name, settings, files, tokenizer, max_seq_length, digests),
        lambda builder: self.write_features(data_dir, tokenizer, max_seq_length, builder),
        verify_checksums=verify_checksums)
    data = self.task_data(cached)
    data.stats = dict(cached.stats)
    data.features = {"source": cached.source, "dir": cached.directory, "key": cached.index["key"]}
    return data
