"""Shared pieces of the benchmarks: machine peak, synthetic batches, model building, timing."""
import time
from typing import Callable, Dict, List, Sequence, Tuple

import gin
import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tpu_electra import gin_utils
from tpu_electra import objectives
from tpu_electra.data import masking
# Every benchmark prints its tables with the one Markdown table formatter of the reports.
from tpu_electra.finetuning.report import markdown_table  # noqa: F401  pylint: disable=unused-import
from tpu_electra.modeling import EncoderConfig

SPECIAL_TOKEN_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
BERT_VOCAB_SIZE = 30522


def matmul_peak_flops(dtype=tf.float32, size: int = 2048, repeats: int = 10) -> float:
  """Measured dense matmul FLOP/s of this machine: the denominator of model-FLOPs utilization."""
  a = tf.random.normal([size, size], dtype=tf.float32)
  a = tf.cast(a, dtype)

  @tf.function
  def chain(x):
    for _ in range(repeats):
      x = tf.matmul(x, a) * tf.cast(1e-3, dtype)
    return x

  chain(a).numpy()
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    chain(a).numpy()
    best = min(best, time.perf_counter() - start)
  return 2.0 * size ** 3 * repeats / best


def synthetic_batch(batch_size: int, seq_length: int, vocab_size: int = BERT_VOCAB_SIZE, seed: int = 0,
                    masking_config: masking.MaskingConfig = masking.MaskingConfig()) -> Dict[str, tf.Tensor]:
  """A full-length `[CLS] A [SEP] B [SEP]` batch of random ids, masked as the input pipeline does."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(1000, vocab_size, size=(batch_size, seq_length)).astype(np.int32)
  ids[:, 0] = SPECIAL_TOKEN_IDS["[CLS]"]
  ids[:, seq_length // 2] = SPECIAL_TOKEN_IDS["[SEP]"]
  ids[:, -1] = SPECIAL_TOKEN_IDS["[SEP]"]
  segments = (np.arange(seq_length)[None, :] > seq_length // 2).astype(np.int32).repeat(batch_size, 0)
  batch = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids), "segment_ids": tf.constant(segments)}
  batch.update(masking.mask_tokens(batch["input_ids"], batch["input_mask"], masking_config, SPECIAL_TOKEN_IDS,
                                   vocab_size, seed=seed))
  return batch


def objective_names() -> List[str]:
  """Every registered objective (tpu_electra.objectives.register), in registration order."""
  return objectives.names()


def objective_and_config(objective: str, size: str, vocab_size: int = BERT_VOCAB_SIZE) -> Tuple[type, EncoderConfig]:
  """The registered objective class and the encoder config of models/<size>.gin, with the bindings of
  objectives/<objective>.gin when there is one (an objective registered elsewhere runs on its defaults)."""
  import tpu_electra.pretrainer  # noqa: F401  pylint: disable=g-import-not-at-top  (registers configurables)
  objective_class = objectives.get(objective)
  files = [f"models/{size}.gin"]
  try:
    files.append(gin_utils.resolve_gin_file(f"objectives/{objective}.gin"))
  except gin_utils.GinConfigError:
    pass
  gin.clear_config()
  gin_utils.parse(files, [])
  config = EncoderConfig().with_vocab_size(vocab_size)
  return objective_class, config


def time_steps(run_steps: Callable[[tf.Tensor], Dict[str, tf.Tensor]], steps: int, warmup_steps: int,
               rounds: int = 1) -> List[float]:
  """Seconds per step of `run_steps(n)` (which runs n steps in one call), after a warmup call."""
  run_steps(tf.constant(warmup_steps))["loss"].numpy()
  per_step = []
  for _ in range(rounds):
    start = time.perf_counter()
    run_steps(tf.constant(steps))["loss"].numpy()
    per_step.append((time.perf_counter() - start) / steps)
  return per_step


def count_params(variables: Sequence[tf.Variable]) -> int:
  unique = {id(v): v for v in variables}
  return int(sum(np.prod(v.shape) for v in unique.values()))
