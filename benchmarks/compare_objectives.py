r"""Equal-compute comparison: pretrain every objective at one FLOPs budget, then probe them alike.

  python -m benchmarks.compare_objectives --data_dir=runs/data/enwiki_embedded --train_flops=1.5e12 \
      --output_dir=runs/compare [--objectives=bert,electra,ale,teams,script] [--config=smoke/{objective}.gin] \
      [--heldout_examples=512] [--seed=0] [--gin_param='BATCH_SIZE = 32']

Writes into --output_dir: `results.md` (the tables), `results.json` (every number, curves included),
`curves.png` (training curves against FLOPs and the shared measure), `data/{train,heldout}` (the
split) and `runs/<objective>` (each pretraining model dir). Re-running the same command reuses the
finished runs and recomputes the report; a run dir trained under other settings is refused.

Equal compute. Each objective trains from its gin config (--config, with `{objective}` replaced)
with `TRAIN_FLOPS = --train_flops`: `tpu_electra.flops` turns the budget into a step count,
counting FLOPs as the ELECTRA paper does (every network the objective runs, backward = forward), so
an objective that costs more per step gets fewer steps. Each run gets a full schedule (warmup,
then linear decay to 0 at its own last step). --gin_param bindings apply to every objective.

Held-out split. The pipeline reads every shard of a data dir, so the last --heldout_examples
examples (in manifest order) are moved out: `data/heldout` holds them, `data/train` lists the
untouched shards by path plus a copy of the head of the shard that was cut. data_prep shuffles
examples within a shard, so the held-out examples are a random sample of text chunks; every
sentence is in exactly one example, so no held-out text is ever trained on. Data masked ahead of
time with a dupe factor > 1 holds copies of each text and is refused. What cannot be separated:
data_prep keeps no document id, so a held-out chunk's document usually also has chunks in the
training split (same topic, names, vocabulary). That leak is the same for every objective, and it
makes absolute probe scores a little optimistic, not the ranking.

The shared held-out measure: a frozen-feature replaced-token-detection probe.
  * Corruption, fixed and objective-independent: in every held-out example, each real token
    ([CLS]/[SEP]/padding excluded) is replaced with probability 0.15 by a token drawn from the
    unigram distribution of its half of the held-out set (the probe's fit or test half); one seeded
    draw, the same inputs for every encoder. A token is positive when it was drawn (about 1% of
    draws hit the original token by chance on the embedded corpus). Because the draws come from the same distribution as
    the originals, a token's identity carries no information about its label: a context-free
    detector scores AUC 0.5 in expectation, and anything above must come from context.
  * Features: the last layer of `objective.encoder` (the network fine-tuning and export load), in
    inference mode, on the corrupted inputs. In the smoke configs all five encoders have the same
    width, so the probe has the same capacity for each.
  * Probe: an L2-regularized logistic regression on standardized features, solved to convergence
    with Newton's method (no learning rate or step count that could suit one encoder better),
    fitted on the tokens of the first half of the held-out sequences and scored on the second
    half: ROC AUC (threshold-free; the classes are about 1:6), with a 95% bootstrap interval over
    test sequences. The same probe on the freshly initialized network of each objective gives its
    floor, so the gain from pretraining is visible.
  Why this measure is fair to MLM-only and discriminative objectives alike: it needs no head that
  only some objectives train (it never uses the RTD, MWS, critic or MLM heads, only the encoder),
  and the corruption is nobody's training distribution: ELECTRA, ALE and TEAMS trained their
  detectors on their generator's plausible samples, SCRIPT on its own samples, BERT's MLM on
  [MASK]/random/kept tokens; all of them must encode "what fits at this position", which is what
  the probe reads. It is closer to the discriminative objectives' task than to BERT's, and that
  bias is stated next to the numbers.
  Why not held-out MLM perplexity: ELECTRA, ALE and TEAMS keep a discriminator with no MLM head
  (their generator's MLM loss is that of a separate, smaller network, not of the encoder kept), and
  SCRIPT's pseudo-log-likelihood exists only for SCRIPT. Why not a sentence-level probe (sentence
  order, next sentence): one label per sequence gives a few hundred held-out labels, whose sampling
  error (a standard error of 3 accuracy points at 256) would swamp the differences; the
  token-level probe has tens of thousands.
Each objective's own metrics (its losses and accuracies) are reported twice: the last training
window's (from the TensorBoard events) and on the held-out examples with fixed masks.

What the numbers can show at the smoke scale (tiny encoders, minutes of CPU, one seed, about
400k words): whether each objective trains, how its own metrics move per FLOP, and a ranking on
the probe with its sampling error, once the budget is large enough for the encoders to learn
context. On the embedded corpus, 1.5e12 FLOPs (about ten minutes for all five on two CPU cores)
is not: every MLM is still at the most-frequent-token level, every discriminator predicts
"original" everywhere, and every probe is at chance; 1.5e13 FLOPs takes BERT's probe clearly
above its floor. The report says so when no probe beats chance. What the numbers cannot show:
that a ranking holds at the papers' scale (10^17-10^18 FLOPs, 100x larger models, billions of
words), that it survives another seed (initialization and data order are not resampled; the
bootstrap interval covers the held-out sample only), or anything about GLUE. At this size the
FLOPs count is dominated by the embedding lookups and vocabulary projections (counted as dense
matmuls, as in the paper), not the transformer layers, and wall-clock time per FLOP differs
between objectives.
"""
import dataclasses
import glob
import hashlib
import json
import os
import sys
import time
from typing import Dict, List, Mapping, Sequence, Tuple

from absl import app, flags
import gin
import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra import pretrain as pretrain_lib
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.training import trainer

OBJECTIVES = ("bert", "electra", "ale", "teams", "script")
DEFAULT_CONFIG = "smoke/{objective}.gin"
PROBE_REPLACE_RATE = 0.15
# Newton's method on a convex problem: the ridge only keeps the Hessian well conditioned.
PROBE_L2 = 1.0
RUN_RECORD = "compare_run.json"
# Set by this script for every run: a --gin_param binding them would break the split or the budget.
RESERVED_BINDINGS = ("DATA_DIR", "TRAIN_FLOPS", "TRAIN_STEPS", "pretrain.data_dir", "pretrain.train_flops",
                     "pretrain.train_steps")
HELDOUT_SHARD = "heldout.tfrecord"
TRAIN_HEAD_SHARD = "train-head.tfrecord"

FLAGS = flags.FLAGS


# ---------------------------------------------------------------------------------------------
# Held-out split.


@dataclasses.dataclass(frozen=True)
class Split:
  train_dir: str
  heldout_dir: str
  num_train: int
  num_heldout: int
  settings_hash: str


def _read_records(path: str) -> List[bytes]:
  return [r.numpy() for r in tf.data.TFRecordDataset(path)]


def _write_records(path: str, records: Sequence[bytes]) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)


def _num_tokens(records: Sequence[bytes]) -> int:
  return sum(sum(tf.train.Example.FromString(r).features.feature["input_mask"].int64_list.value) for r in records)


def _absolute(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


def split_heldout(data_dir: str, output_dir: str, num_heldout: int) -> Split:
  """Moves the last `num_heldout` examples of `data_dir` into `output_dir/data/heldout`.

  `output_dir/data/train` is a data dir of everything else: the shards before the cut, listed by
  absolute path (nothing is copied), and the head of the cut shard, rewritten. Only the shards
  that hold held-out examples are read.
  """
  data_dir = _absolute(data_dir)
  manifest = manifest_lib.read_manifest(data_dir)
  static = manifest.settings.get("static_masking")
  if isinstance(static, dict) and int(static.get("dupe_factor", 1)) > 1:
    raise ValueError(f"the data in {data_dir!r} holds {static['dupe_factor']} copies of every text (static masking "
                     "with a dupe factor): a held-out example would also be trained on; build it with --dupe_factor=1")
  if not 0 < num_heldout < manifest.num_examples:
    raise ValueError(f"--heldout_examples={num_heldout} must be between 1 and the data's {manifest.num_examples - 1}")
  shard_paths = manifest.shard_paths(data_dir)
  heldout: List[bytes] = []
  cut_shard, head = len(shard_paths), []
  while len(heldout) < num_heldout:
    cut_shard -= 1
    records = _read_records(shard_paths[cut_shard])
    take = min(len(records), num_heldout - len(heldout))
    heldout = records[len(records) - take:] + heldout
    head = records[:len(records) - take]

  settings_hash = hashlib.sha256(f"{manifest.settings_hash}:{num_heldout}".encode()).hexdigest()[:16]
  train_dir = os.path.join(output_dir, "data", "train")
  heldout_dir = os.path.join(output_dir, "data", "heldout")
  heldout_tokens = _num_tokens(heldout)

  def write(directory, part, shards, num_examples, num_tokens):
    settings = dict(manifest.settings)
    # num_documents stays the source's: data_prep keeps no document id, and documents straddle the cut.
    settings["heldout_split"] = {"source": data_dir, "source_settings_hash": manifest.settings_hash,
                                 "part": part, "num_heldout": num_heldout}
    manifest_lib.write_manifest(directory, dataclasses.replace(
        manifest, vocab_file=manifest.vocab_path(data_dir), shards=shards, num_examples=num_examples,
        num_tokens=num_tokens, settings=settings, settings_hash=f"{settings_hash}-{part}"))

  tf.io.gfile.makedirs(heldout_dir)
  _write_records(os.path.join(heldout_dir, HELDOUT_SHARD), heldout)
  write(heldout_dir, "heldout", [HELDOUT_SHARD], num_heldout, heldout_tokens)
  train_shards = list(shard_paths[:cut_shard])
  tf.io.gfile.makedirs(train_dir)
  if head:
    _write_records(os.path.join(train_dir, TRAIN_HEAD_SHARD), head)
    train_shards.append(TRAIN_HEAD_SHARD)
  num_train = manifest.num_examples - num_heldout
  write(train_dir, "train", train_shards, num_train, manifest.num_tokens - heldout_tokens)
  return Split(train_dir, heldout_dir, num_train, num_heldout, settings_hash)


def read_examples(data_dir: str) -> Dict[str, np.ndarray]:
  """Every example of a data dir as int32 arrays [N, L]: input_ids, input_mask, segment_ids."""
  manifest = manifest_lib.read_manifest(data_dir)
  records = [r for path in manifest.shard_paths(data_dir) for r in _read_records(path)]
  parsed = pretraining.parse_example(tf.constant(records), manifest.max_seq_length)
  return {name: parsed[name].numpy() for name in manifest_lib.EXAMPLE_FEATURES}


# ---------------------------------------------------------------------------------------------
# The shared probe.


@dataclasses.dataclass
class ProbeData:
  """Held-out examples with the fixed corruption, and which tokens the probe fits and scores."""
  input_ids: np.ndarray  # [N, L] corrupted ids.
  input_mask: np.ndarray
  segment_ids: np.ndarray
  labels: np.ndarray  # [N, L] 1 where the token is a draw.
  scored: np.ndarray  # [N, L] bool: real, non-special tokens.
  fit_sequences: int  # Sequences [0, fit_sequences) fit the probe; the rest test it.


def corrupt_for_probe(examples: Mapping[str, np.ndarray], special_token_ids: Mapping[str, int], seed: int,
                      replace_rate: float = PROBE_REPLACE_RATE) -> ProbeData:
  """Replaces `replace_rate` of the real tokens by draws from the unigram distribution of their half.

  A token is labelled positive when it was drawn, even when the draw happens to be the original
  token (as often as two random tokens of the text coincide: about 1% of draws on the embedded
  corpus).
  Labelled by "differs from the original" instead, frequent tokens would be positive less often
  than rare ones and token identity alone would score above chance. Each half (the probe's fit
  sequences, its test sequences) draws from its own tokens: drawn from all held-out tokens, a token
  that happens to be common in the fit half is rare in the test half, and the probe would learn
  "this token is seldom replaced" and find the opposite on the test half. With both choices the
  originals and the draws of a half have the same distribution, so a detector that sees only the
  token has an AUC of 0.5 in expectation.
  """
  input_ids = examples["input_ids"]
  special = [special_token_ids[t] for t in ("[PAD]", "[CLS]", "[SEP]")]
  scored = (examples["input_mask"] > 0) & ~np.isin(input_ids, special)
  rng = np.random.default_rng(seed)
  fit_sequences = len(input_ids) // 2
  corrupted = input_ids.copy()
  chosen = scored & (rng.random(input_ids.shape) < replace_rate)
  for half in (slice(0, fit_sequences), slice(fit_sequences, len(input_ids))):
    values, counts = np.unique(input_ids[half][scored[half]], return_counts=True)
    replacements = rng.choice(values, size=input_ids[half].shape, p=counts / counts.sum())
    corrupted[half] = np.where(chosen[half], replacements, input_ids[half])
  return ProbeData(corrupted.astype(np.int32), examples["input_mask"], examples["segment_ids"],
                   chosen.astype(np.int32), scored, fit_sequences)


def encoder_features(encoder: tf.keras.Model, data: ProbeData, batch_size: int = 64) -> np.ndarray:
  """The encoder's last-layer vectors of the scored tokens, [num_scored, H], in row-major order."""
  outputs = []
  for start in range(0, len(data.input_ids), batch_size):
    part = slice(start, start + batch_size)
    sequence = encoder({"input_word_ids": tf.constant(data.input_ids[part]),
                        "input_mask": tf.constant(data.input_mask[part]),
                        "input_type_ids": tf.constant(data.segment_ids[part])}, training=False)["sequence_output"]
    outputs.append(tf.cast(sequence, tf.float32).numpy()[data.scored[part]])
  return np.concatenate(outputs)


@dataclasses.dataclass
class LogisticRegression:
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray  # [H + 1], the bias last.

  def logits(self, features: np.ndarray) -> np.ndarray:
    x = (features.astype(np.float64) - self.mean) / self.scale
    return x @ self.weights[:-1] + self.weights[-1]


def fit_logistic_regression(features: np.ndarray, labels: np.ndarray, l2: float = PROBE_L2,
                            max_iterations: int = 100, tolerance: float = 1e-9) -> LogisticRegression:
  """The minimizer of the summed log loss + l2/2 |w|^2 on standardized features (bias unpenalized)."""
  mean = features.mean(axis=0, dtype=np.float64)
  scale = features.std(axis=0, dtype=np.float64) + 1e-6
  x = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
  y = labels.astype(np.float64)
  ridge = np.full(x.shape[1], l2)
  ridge[-1] = 0.0
  w = np.zeros(x.shape[1])
  for _ in range(max_iterations):
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    gradient = x.T @ (p - y) + ridge * w
    hessian = (x.T * (p * (1.0 - p))) @ x + np.diag(ridge)
    step = np.linalg.solve(hessian, gradient)
    w -= step
    if np.max(np.abs(step)) < tolerance:
      break
  return LogisticRegression(mean, scale, w)


def _tie_groups(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """The ascending order of `scores` and, along it, the index of each score's group of equal scores."""
  order = np.argsort(scores, kind="mergesort")
  return order, np.concatenate([[0], np.cumsum(np.diff(scores[order]) != 0)])


def _weighted_auc(groups: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> float:
  """Mann-Whitney AUC along a sorted order: every positive against every negative, each counted
  `weights` times, ties as half; NaN when a class has no weight."""
  positives = np.bincount(groups, weights=weights * positive)
  negatives = np.bincount(groups, weights=weights * ~positive)
  total = positives.sum() * negatives.sum()
  if not total:
    return float("nan")
  below = np.cumsum(negatives) - negatives
  return float(np.sum(positives * (below + 0.5 * negatives)) / total)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
  """ROC AUC (Mann-Whitney), ties counted as half; NaN when a class is absent."""
  order, groups = _tie_groups(np.asarray(scores))
  return _weighted_auc(groups, np.asarray(labels)[order] > 0, np.ones(len(order)))


def bootstrap_auc(scores: np.ndarray, labels: np.ndarray, sequence_ids: np.ndarray, num_resamples: int,
                  seed: int) -> Tuple[float, float]:
  """95% interval of the AUC over resamples of whole sequences (their tokens share context)."""
  if num_resamples < 1:
    return float("nan"), float("nan")
  order, groups = _tie_groups(scores)
  positive = labels[order] > 0
  _, sequence_of = np.unique(sequence_ids[order], return_inverse=True)
  num_sequences = int(sequence_of.max()) + 1
  rng = np.random.default_rng(seed)
  aucs = [_weighted_auc(groups, positive, np.bincount(rng.integers(0, num_sequences, num_sequences),
                                                      minlength=num_sequences)[sequence_of].astype(np.float64))
          for _ in range(num_resamples)]
  low, high = np.nanpercentile(aucs, [2.5, 97.5])
  return float(low), float(high)


def run_probe(encoder: tf.keras.Model, data: ProbeData, num_bootstrap: int, seed: int) -> Dict[str, float]:
  """Fits the probe on the first half of the sequences and scores the second half."""
  features = encoder_features(encoder, data)
  labels = data.labels[data.scored]
  sequence_of_token = np.nonzero(data.scored)[0]
  fit = sequence_of_token < data.fit_sequences
  probe = fit_logistic_regression(features[fit], labels[fit])
  logits, test_labels = probe.logits(features[~fit]), labels[~fit]
  low, high = bootstrap_auc(logits, test_labels, sequence_of_token[~fit], num_bootstrap, seed)
  return {"auc": roc_auc(logits, test_labels), "auc_low": low, "auc_high": high,
          "accuracy": float(np.mean((logits > 0) == (test_labels > 0))),
          "majority_accuracy": float(max(test_labels.mean(), 1.0 - test_labels.mean())),
          "fit_tokens": int(fit.sum()), "test_tokens": int((~fit).sum()),
          "test_replaced_fraction": float(test_labels.mean())}


# ---------------------------------------------------------------------------------------------
# Runs.


def read_scalars(run_dir: str) -> Dict[str, List[Tuple[int, float]]]:
  """Every scalar the trainer wrote under run_dir/train, by tag, sorted by step."""
  curves: Dict[str, Dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(run_dir, "train", "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else float(value.simple_value)
        curves.setdefault(value.tag, {})[int(event.step)] = number
  return {tag: sorted(points.items()) for tag, points in curves.items()}


def _build(objective_cls, encoder_config, batch, seed: int) -> tf.keras.Model:
  tf.keras.utils.set_random_seed(seed)
  model = objective_cls(encoder_config=encoder_config)
  model(batch, training=False)
  return model


def heldout_metrics(model: tf.keras.Model, dataset: tf.data.Dataset, seed: int) -> Dict[str, float]:
  """The objective's own outputs on every held-out batch, averaged by batch size."""
  tf.keras.utils.set_random_seed(seed)
  sums: Dict[str, float] = {}
  count = 0
  for batch in dataset:
    size = int(batch["input_ids"].shape[0])
    for name, value in model(batch, training=False).items():
      sums[name] = sums.get(name, 0.0) + float(value) * size
    count += size
  return {name: total / count for name, total in sums.items()}


def _run_record(objective: str, config: str, train_flops: float, gin_params: Sequence[str], split: Split,
                seed: int) -> Dict[str, object]:
  return {"objective": objective, "config": config, "train_flops": train_flops, "gin_params": list(gin_params),
          "data": split.settings_hash, "seed": seed}


def compare_one(objective: str, config: str, split: Split, train_flops: float, run_dir: str,
                gin_params: Sequence[str], probe_data: ProbeData, seed: int, num_bootstrap: int) -> Dict[str, object]:
  """Pretrains one objective within the budget (or reuses its finished run) and measures it."""
  gin.clear_config()
  gin_utils.parse([config], [f"DATA_DIR = {split.train_dir!r}", f"TRAIN_FLOPS = {train_flops!r}",
                             "CHECKPOINT_EVERY = 1000000000"] + list(gin_params))
  report = flops.report_from_gin()
  steps = flops.steps_within(train_flops, report.per_step)
  objective_cls = gin.query_parameter("pretrain.objective").scoped_configurable_fn
  print(f"{objective}: {steps} steps of {report.per_step:.4g} FLOPs = {steps * report.per_step:.4g} "
        f"(budget {train_flops:.4g}); batch {report.batch_size} x seq {report.seq_length}", flush=True)

  wanted = _run_record(objective, config, train_flops, gin_params, split, seed)
  record_path = os.path.join(run_dir, RUN_RECORD)
  if tf.io.gfile.exists(record_path):
    with tf.io.gfile.GFile(record_path) as f:
      record = json.load(f)
    if {k: record.get(k) for k in wanted} != wanted:
      raise ValueError(f"{run_dir} was trained with other settings ({record_path}); use another --output_dir")
  else:
    latest = tf.train.latest_checkpoint(run_dir)
    resumed_from = int(latest.rsplit("-", 1)[1]) if latest else 0
    tf.keras.utils.set_random_seed(seed)
    start = time.time()
    pretrain_lib.pretrain(model_dir=run_dir)
    record = dict(wanted, steps=steps, resumed_from_step=resumed_from, train_seconds=time.time() - start)
    trainer.write_text_atomically(record_path, json.dumps(record, indent=2) + "\n")

  start = time.time()
  # The masks' op seeds pair with the global seed: set it here so that a reused run gets the masks
  # a freshly trained one got.
  tf.keras.utils.set_random_seed(seed)
  dataset = pretraining.pretraining_dataset(data_dir=split.heldout_dir, global_batch_size=report.batch_size,
                                            seq_length=report.seq_length, is_training=False, seed=seed)
  first = next(iter(dataset))
  model = _build(objective_cls, report.encoder_config, first, seed)
  status = tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(run_dir)).expect_partial()
  status.assert_existing_objects_matched()
  initial = _build(objective_cls, report.encoder_config, first, seed)
  result = {
      "config": config,
      "steps": steps,
      "flops_per_step": report.per_step,
      "train_flops": steps * report.per_step,
      "batch_size": report.batch_size,
      "seq_length": report.seq_length,
      "encoder_params": common.count_params(model.encoder.trainable_variables),
      "objective_params": common.count_params(model.trainable_variables),
      "train_seconds": record["train_seconds"],
      "resumed_from_step": record["resumed_from_step"],
      "curves": {tag: [[s, v] for s, v in points] for tag, points in read_scalars(run_dir).items()},
      "heldout_metrics": heldout_metrics(model, dataset, seed),
      "probe": run_probe(model.encoder, probe_data, num_bootstrap, seed),
      # No interval for the floor: it only anchors the gain, and resampling is not free.
      "probe_at_init": run_probe(initial.encoder, probe_data, 0, seed),
  }
  result["final_train_metrics"] = {tag: points[-1][1] for tag, points in result["curves"].items()}
  result["eval_seconds"] = time.time() - start
  gin.clear_config()
  return result


# ---------------------------------------------------------------------------------------------
# Report.

def markdown_report(results: Mapping[str, object]) -> str:
  """results.md: the summary table with the shared measure, then every objective's own metrics."""
  runs = results["objectives"]
  lines = [f"# Objectives at equal compute: {results['train_flops']:.3g} training FLOPs each", "",
           f"Data: {results['data']['source']} ({results['data']['num_train']} training examples, "
           f"{results['data']['num_heldout']} held out); configs: {results['config']}; seed {results['seed']}"
           + (f"; --gin_param {results['gin_params']}" if results["gin_params"] else "") + ".", "",
           "Shared held-out measure: frozen-feature replaced-token-detection probe (15% of held-out tokens "
           "replaced by unigram draws; logistic regression on the encoder's last layer fitted on half the "
           "held-out sequences, ROC AUC on the other half, 95% bootstrap interval over test sequences; a "
           "context-free detector scores 0.5). See benchmarks/compare_objectives.py.", "",
           "| objective | steps | train FLOPs | encoder params | pretrain s (tracing incl.) | probe AUC [95% CI] "
           "| AUC at init | gain |",
           "|---|---:|---:|---:|---:|---|---:|---:|"]
  for name, run in runs.items():
    probe, init = run["probe"], run["probe_at_init"]
    lines.append(f"| {name} | {run['steps']} | {run['train_flops']:.3g} | {run['encoder_params']:,} "
                 f"| {run['train_seconds']:.0f} | {probe['auc']:.3f} [{probe['auc_low']:.3f}, {probe['auc_high']:.3f}] "
                 f"| {init['auc']:.3f} | {probe['auc'] - init['auc']:+.3f} |")
  any_run = next(iter(runs.values()))
  if all(not run["probe"]["auc_low"] > 0.5 for run in runs.values()):
    lines += ["", "**No encoder's probe AUC is above chance (every 95% interval reaches 0.5): at this budget none "
              "has learned context that the probe can read, so this table ranks nothing. Raise --train_flops.**"]
  lines += ["", f"Probe: {any_run['probe']['fit_tokens']} fit tokens, {any_run['probe']['test_tokens']} test tokens, "
            f"{100 * any_run['probe']['test_replaced_fraction']:.1f}% replaced (majority-class accuracy "
            f"{any_run['probe']['majority_accuracy']:.3f}).", "",
            "Each objective's own metrics: held out (fixed masks, every held-out example) and the last "
            "training window (training batches; from the TensorBoard events).", "",
            "| objective | metric | held out | last training window |", "|---|---|---:|---:|"]
  for name, run in runs.items():
    for metric, value in run["heldout_metrics"].items():
      train = run["final_train_metrics"].get(metric)
      lines.append(f"| {name} | {metric} | {value:.4g} | {'' if train is None else f'{train:.4g}'} |")
  lines += ["", "## What these numbers can and cannot show", "",
            "They can show whether each objective trains at this budget, how its own losses move per FLOP, "
            "and how the encoders rank on one context-sensitive probe, with the probe's sampling error. "
            "They cannot show that the ranking holds at the papers' scale (tiny encoders and minutes of "
            "compute against 10^17-10^18 FLOPs), that it survives another seed (initialization and data "
            "order are not resampled: the interval covers the held-out sample only), or anything about "
            "GLUE. The probe is closer to the replaced-token detectors' training task than to BERT's; "
            "the held-out chunks share documents with the training data (data_prep keeps no document id), "
            "which flatters every encoder alike. At this size the embedding lookups and vocabulary "
            "projections dominate the FLOPs count, and wall-clock time per FLOP differs by objective.", ""]
  return "\n".join(lines)


def plot_curves(results: Mapping[str, object], path: str) -> None:
  """Training loss, MLM loss and training-batch detection AUC against FLOPs; the probe's AUC."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  runs = results["objectives"]
  # One color per objective in every panel, although not every objective has every curve.
  colors = {name: f"C{i}" for i, name in enumerate(runs)}
  figure, axes = plt.subplots(2, 2, figsize=(12, 8))
  panels = ((axes[0, 0], "loss", "own training loss (log scale)"),
            (axes[0, 1], "mlm_loss", "MLM loss (generator's for ELECTRA/ALE/TEAMS)"),
            (axes[1, 0], "discriminator_auc", "replaced-token detection AUC, training batches"))
  for ax, tag, title in panels:
    for name, run in runs.items():
      points = run["curves"].get(tag)
      if points:
        ax.plot([s * run["flops_per_step"] for s, _ in points], [v for _, v in points], color=colors[name],
                label=name)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("training FLOPs")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  axes[0, 0].set_yscale("log")
  names = list(runs)
  probe = np.array([runs[n]["probe"]["auc"] for n in names])
  errors = np.array([[runs[n]["probe"]["auc"] - runs[n]["probe"]["auc_low"] for n in names],
                     [runs[n]["probe"]["auc_high"] - runs[n]["probe"]["auc"] for n in names]])
  at_init = np.array([runs[n]["probe_at_init"]["auc"] for n in names])
  x = np.arange(len(names))
  ax = axes[1, 1]
  ax.bar(x - 0.2, at_init, width=0.4, color="lightgray")
  ax.bar(x + 0.2, probe, width=0.4, yerr=errors, capsize=4, color=[colors[n] for n in names])
  ax.axhline(0.5, color="black", linewidth=0.8, linestyle=":")
  ax.set_xticks(x)
  ax.set_xticklabels(names)
  ax.set_ylim(min(0.45, float(np.nanmin(np.concatenate([probe - errors[0], at_init]))) - 0.02),
              max(0.6, float(np.nanmax(np.concatenate([probe + errors[1], at_init]))) + 0.02))
  ax.set_title("shared held-out measure: probe ROC AUC\n(gray: at init; color: pretrained, 95% CI)",
               fontsize="medium")
  figure.suptitle(f"{', '.join(names)} at {results['train_flops']:.3g} training FLOPs each")
  figure.tight_layout()
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb") as f:
    figure.savefig(f, format="png", dpi=100)
  plt.close(figure)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def compare(data_dir: str, train_flops: float, output_dir: str, objectives: Sequence[str] = OBJECTIVES,
            config_pattern: str = DEFAULT_CONFIG, gin_params: Sequence[str] = (), heldout_examples: int = 512,
            seed: int = 0, num_bootstrap: int = 1000) -> Dict[str, object]:
  """Runs the comparison and writes results.md, results.json and curves.png into `output_dir`."""
  for binding in gin_params:
    for line in binding.splitlines():
      name = line.split("=", 1)[0].strip()
      if "=" in line and name in RESERVED_BINDINGS:
        raise ValueError(f"--gin_param {line.strip()!r}: {name} is set by this script (--data_dir minus the held-out "
                         "examples, --train_flops)")
  start = time.time()
  configs = {name: gin_utils.resolve_gin_file(config_pattern.format(objective=name)) for name in objectives}
  split = split_heldout(data_dir, output_dir, heldout_examples)
  manifest = manifest_lib.read_manifest(split.heldout_dir)
  probe_data = corrupt_for_probe(read_examples(split.heldout_dir), manifest.special_token_ids, seed)
  results: Dict[str, object] = {
      "train_flops": train_flops, "config": config_pattern, "gin_params": list(gin_params), "seed": seed,
      "data": {"source": data_dir, "train_dir": split.train_dir, "heldout_dir": split.heldout_dir,
               "num_train": split.num_train, "num_heldout": split.num_heldout},
      "probe": {"replace_rate": PROBE_REPLACE_RATE, "l2": PROBE_L2, "features": "encoder sequence_output",
                "fit_sequences": probe_data.fit_sequences,
                "test_sequences": len(probe_data.input_ids) - probe_data.fit_sequences},
      "objectives": {},
  }
  try:
    for name in objectives:
      results["objectives"][name] = compare_one(
          name, configs[name], split, train_flops, os.path.join(output_dir, "runs", name), gin_params,
          probe_data, seed, num_bootstrap)
  finally:
    gin.clear_config()
  results["total_seconds"] = time.time() - start
  trainer.write_text_atomically(os.path.join(output_dir, "results.json"), json.dumps(results, indent=1) + "\n")
  report = markdown_report(results)
  trainer.write_text_atomically(os.path.join(output_dir, "results.md"), report)
  plot_curves(results, os.path.join(output_dir, "curves.png"))
  print(report)
  print(f"total {results['total_seconds']:.0f} s; wrote {output_dir}/results.md, results.json, curves.png")
  return results


def define_flags() -> None:
  """The CLI's flags; defined only when run as a script, so that importing this module (tests, or
  next to benchmarks.input_pipeline, which also has a --data_dir) defines none."""
  flags.DEFINE_string("data_dir", None, "Pretraining data dir (data_prep output with manifest.json).")
  flags.DEFINE_float("train_flops", None, "The training-FLOPs budget every objective gets (TRAIN_FLOPS).")
  flags.DEFINE_string("output_dir", None, "Where the split, the runs and the report go.")
  flags.DEFINE_list("objectives", list(OBJECTIVES), "Objectives to compare, by gin name.")
  flags.DEFINE_string("config", DEFAULT_CONFIG, "Gin file of each objective; {objective} is replaced by its name.")
  flags.DEFINE_integer("heldout_examples", 512, "Examples moved out of pretraining for the held-out measures.")
  flags.DEFINE_integer("seed", 0, "Seed of initialization, data order, masks and the probe's corruption.")
  flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the test sequences for the probe's interval.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("data_dir", "train_flops", "output_dir"):
    if FLAGS[name].value is None:
      raise app.UsageError(f"--{name} is required")
  # tpu_electra.pretrain defines these on the same FLAGS; here each objective's file and model dir
  # come from --config and --output_dir, so a value given for them would be silently ignored.
  for name in ("gin_file", "model_dir"):
    if FLAGS[name].present:
      raise app.UsageError(f"--{name} is not used here: see --config and --output_dir")
  unknown = [name for name in FLAGS.objectives if name not in OBJECTIVES and FLAGS.config == DEFAULT_CONFIG]
  if unknown:
    raise app.UsageError(f"unknown objective(s) {unknown}; choose from {', '.join(OBJECTIVES)}")
  try:
    compare(FLAGS.data_dir, FLAGS.train_flops, FLAGS.output_dir, FLAGS.objectives, FLAGS.config, FLAGS.gin_param,
            FLAGS.heldout_examples, FLAGS.seed, FLAGS.bootstrap)
  except (ValueError, trainer.NonFiniteLossError) as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
