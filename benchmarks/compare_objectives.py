r"""Equal-compute comparison: pretrain every objective at one FLOPs budget over several seeds, evaluate alike.

  python -m benchmarks.compare_objectives --data_dir=runs/data/enwiki_embedded --train_flops=1.5e12 \
      --output_dir=runs/compare [--objectives=bert,electra,ale,teams,script] [--config=smoke/{objective}.gin] \
      [--seeds=3] [--eval_points=5] [--eval_batches=N] [--bootstrap=1000] [--gin_param='BATCH_SIZE = 32']

Writes into --output_dir: `results.md` (the tables), `results.json` (every number: per seed, the
summaries over seeds, the curves), `curves.png` (held-out curves against FLOPs and the shared
measure) and `runs/<objective>/seed_<k>` (each pretraining model dir). Re-running the same command
reuses the finished runs, resumes an interrupted one from its last checkpoint (bit-identical to an
uninterrupted run: pretraining is seeded and resumable) and recomputes the report; a run dir
trained under other settings is refused.

Equal compute. Each objective trains from its gin config (--config, with `{objective}` replaced)
with `TRAIN_FLOPS = --train_flops`: `tpu_electra.flops` turns the budget into a step count,
counting FLOPs as the ELECTRA paper does (every network the objective runs, backward = forward), so
an objective that costs more per step gets fewer steps. Each run gets a full schedule (warmup,
then linear decay to 0 at its own last step). --gin_param bindings apply to every objective.

Seeds. Every objective is trained --seeds times, with `SEED = 0, 1, ..., seeds - 1`: the seed
decides initialization, data order, masks, sampling and dropout, so the spread over seeds is the
run-to-run noise that a difference between objectives has to exceed. The tables give, per
objective, the mean ± sample standard deviation (n = number of seeds) of every final number.

Held-out evaluation: the data dir's own held-out split (whole documents that `data_prep.build`
set aside, listed as `eval_shards` in its manifest; data without one is refused). Each run
evaluates itself during training with the trainer's evaluation (tpu_electra.evaluate): every
`EVAL_EVERY = ceil(steps / --eval_points)` steps and at its last step (at most --eval_points
evaluations, the last at the last step), on `EVAL_BATCHES` (--eval_batches; default: every complete
batch of the held-out split) fixed batches with fixed masks and sampling noise, the same for every
seed and objective. The curves are read back from
each run's `eval/` TensorBoard events; the final numbers are those of the last step (what
pretrain() returns as `eval/<metric>`). These are each objective's own metrics (its losses and
accuracies; the exact detection AUC where it has a detector), which do not compare across
objectives; hence the shared measure.

The shared held-out measure: a frozen-feature replaced-token-detection probe, on every example of
the held-out split.
  * Corruption, fixed and objective-independent: in every held-out example, each real token
    ([CLS]/[SEP]/padding excluded) is replaced with probability 0.15 by a token drawn from the
    unigram distribution of its half of the held-out set (the probe's fit or test half); one draw
    with a constant seed, the same inputs for every encoder and seed. A token is positive when it
    was drawn (about 1% of draws hit the original token by chance on the embedded corpus). Because
    the draws come from the same distribution as the originals, a token's identity carries no
    information about its label: a context-free detector scores AUC 0.5 in expectation, and
    anything above must come from context.
  * Features: the last layer of `objective.encoder` (the network fine-tuning and export load), in
    inference mode, on the corrupted inputs. In the smoke configs all five encoders have the same
    width, so the probe has the same capacity for each.
  * Probe: an L2-regularized logistic regression on standardized features, solved to convergence
    with Newton's method (no learning rate or step count that could suit one encoder better),
    fitted on the tokens of the first half of the held-out sequences and scored on the second
    half: ROC AUC (threshold-free; the classes are about 1:6). Per run, a 95% bootstrap interval
    over test sequences gives the sampling error of the held-out set (which the seeds do not
    resample); over runs, the mean ± std over seeds. The same probe on the freshly initialized
    network of each objective and seed gives its floor, so the gain from pretraining is visible.
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
  order, next sentence): one label per sequence gives too few held-out labels; the token-level
  probe has thousands.

What the numbers can show at the smoke scale (tiny encoders, minutes of CPU, about 400k words):
whether each objective trains, how its own held-out metrics move per FLOP, and a ranking on the
probe, with its spread over seeds and its held-out sampling error, once the budget is large enough
for the encoders to learn context; at small budgets every probe is at chance, and the report says
so. What they cannot show: that a ranking holds at the papers' scale (10^17-10^18 FLOPs, 100x
larger models, billions of words), or anything about GLUE. At this size the FLOPs count is
dominated by the embedding lookups and vocabulary projections (counted as dense matmuls, as in the
paper), not the transformer layers, and wall-clock time per FLOP differs between objectives.
"""
import dataclasses
import glob
import json
import math
import os
import sys
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import app, flags
import gin
import numpy as np
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from tpu_electra import evaluate
from tpu_electra import fileio
from tpu_electra import flops
from tpu_electra import gin_utils
from tpu_electra import pretrain as pretrain_lib
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.training import seeding
from tpu_electra.training import trainer

DEFAULT_CONFIG = "smoke/{objective}.gin"
PROBE_REPLACE_RATE = 0.15
# Newton's method on a convex problem: the ridge only keeps the Hessian well conditioned.
PROBE_L2 = 1.0
# The probe's corruption and bootstrap: constant, so every run of every objective is probed alike.
PROBE_SEED = 0
RUN_RECORD = "compare_run.json"
EVAL_SUBDIR = trainer.EVAL_SUMMARY_DIR
# Set by this script for every run: a --gin_param binding them would break the budget, the seeds or
# the evaluation schedule.
RESERVED_BINDINGS = ("DATA_DIR", "TRAIN_FLOPS", "TRAIN_STEPS", "SEED", "EVAL_EVERY", "EVAL_BATCHES",
                     "pretrain.data_dir", "pretrain.train_flops", "pretrain.train_steps", "pretrain.seed",
                     "pretrain.eval_every", "pretrain.eval_batches")

FLAGS = flags.FLAGS


# ---------------------------------------------------------------------------------------------
# The held-out split (the data dir's own).


def _absolute(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


def heldout_manifest(data_dir: str) -> manifest_lib.Manifest:
  """The data's manifest, which must list a held-out split (else one line saying how to get one)."""
  manifest = manifest_lib.read_manifest(data_dir)
  if not manifest.eval_shard_paths(data_dir) or not manifest.num_eval_examples:
    raise manifest_lib.DataError(
        f"the data in {data_dir!r} has no held-out split; rebuild it with python -m data_prep.build "
        "(--held_out_fraction > 0; the default 0.01 sets one aside)")
  return manifest


def read_heldout_examples(data_dir: str) -> Dict[str, np.ndarray]:
  """Every example of the data's held-out split as int32 arrays [N, L]: input_ids, input_mask, segment_ids."""
  manifest = heldout_manifest(data_dir)
  records = [r.numpy() for r in tf.data.TFRecordDataset(manifest.eval_shard_paths(data_dir))]
  parsed = pretraining.parse_example(tf.constant(records), manifest.max_seq_length)
  return {name: parsed[name].numpy().astype(np.int32) for name in manifest_lib.EXAMPLE_FEATURES}


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


def read_scalars(run_dir: str, subdir: str = "train") -> Dict[str, List[Tuple[int, float]]]:
  """Every scalar the trainer wrote under run_dir/<subdir> (`train` or `eval`), by tag, sorted by step.

  A resumed run writes a second events file; where both hold a step, the later file's value wins.
  """
  curves: Dict[str, Dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(run_dir, subdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else float(value.simple_value)
        curves.setdefault(value.tag, {})[int(event.step)] = number
  return {tag: sorted(points.items()) for tag, points in curves.items()}


def summarize(values: Sequence[float]) -> Dict[str, object]:
  """Mean, sample standard deviation (ddof 1; NaN for one value) and n of per-seed values."""
  values = [float(v) for v in values]
  n = len(values)
  return {"mean": float(np.mean(values)) if n else float("nan"),
          "std": float(np.std(values, ddof=1)) if n > 1 else float("nan"), "n": n, "values": values}


def mean_curves(curves_per_seed: Sequence[Mapping[str, Sequence[Sequence[float]]]],
                flops_per_step: float) -> Dict[str, Dict[str, list]]:
  """Per tag, over the steps every seed evaluated: the mean and sample std over seeds, and the FLOPs."""
  result = {}
  tags = set.intersection(*(set(curves) for curves in curves_per_seed)) if curves_per_seed else set()
  for tag in sorted(tags):
    by_seed = [dict((int(s), v) for s, v in curves[tag]) for curves in curves_per_seed]
    steps = sorted(set.intersection(*(set(points) for points in by_seed)))
    stats = [summarize([points[s] for points in by_seed]) for s in steps]
    result[tag] = {"steps": steps, "flops": [s * flops_per_step for s in steps],
                   "mean": [x["mean"] for x in stats], "std": [x["std"] for x in stats], "n": len(by_seed)}
  return result


def eval_every_for(steps: int, eval_points: int) -> int:
  """EVAL_EVERY for `eval_points` evaluations, the last at the last step (the trainer always evaluates there).

  ceil, not floor: with floor, 271 steps and 5 points evaluate at 270 and again at 271.
  """
  return max(1, -(-steps // eval_points))


def _build(objective_cls, encoder_config, batch, seed: int) -> tf.keras.Model:
  seeding.seed_everything(seed)
  model = objective_cls(encoder_config=encoder_config)
  model(batch, training=False)
  return model


def _read_record(path: str) -> Optional[Dict[str, object]]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _parse(config: str, bindings: Sequence[str]) -> None:
  gin.clear_config()
  gin_utils.parse([config], list(bindings))


def run_seed(objective: str, config: str, data_dir: str, manifest: manifest_lib.Manifest, train_flops: float,
             run_dir: str, gin_params: Sequence[str], seed: int, eval_points: int, eval_batches: Optional[int],
             probe_data: "ProbeData", num_bootstrap: int) -> Dict[str, object]:
  """Pretrains one objective with one SEED within the budget (or reuses its finished run) and measures it."""
  base = [f"DATA_DIR = {data_dir!r}", f"TRAIN_FLOPS = {train_flops!r}", f"SEED = {seed}"]
  _parse(config, base + list(gin_params))
  report = flops.report_from_gin()
  steps = flops.steps_within(train_flops, report.per_step)
  eval_every = eval_every_for(steps, eval_points)
  num_eval = manifest.num_eval_examples
  batches = eval_batches or num_eval // report.batch_size
  if batches < 1 or batches * report.batch_size > num_eval:
    raise manifest_lib.DataError(
        f"the held-out split of {data_dir!r} has {num_eval} examples: too few for "
        f"{batches or 1} batch(es) of {report.batch_size}; lower --eval_batches or BATCH_SIZE, or rebuild the data "
        "with a larger --held_out_fraction")
  # A checkpoint at every evaluation: an interrupted run resumes from there (bit-identically).
  _parse(config, base + [f"EVAL_EVERY = {eval_every}", f"EVAL_BATCHES = {batches}",
                         f"CHECKPOINT_EVERY = {eval_every}"] + list(gin_params))
  objective_cls = gin.query_parameter("pretrain.objective").scoped_configurable_fn

  wanted = {"objective": objective, "config": config, "train_flops": train_flops, "gin_params": list(gin_params),
            "data": manifest.settings_hash, "seed": seed, "eval_every": eval_every, "eval_batches": batches}
  record_path = os.path.join(run_dir, RUN_RECORD)
  record = _read_record(record_path)
  if record is not None and {k: record.get(k) for k in wanted} != wanted:
    raise ValueError(f"{run_dir} was trained with other settings ({record_path}); use another --output_dir")
  if record is None and tf.train.latest_checkpoint(run_dir):
    raise ValueError(f"{run_dir} holds checkpoints of a run this comparison did not start (no {RUN_RECORD}); "
                     "use another --output_dir")
  if record is not None and record.get("finished"):
    print(f"{objective} seed {seed}: reusing the finished run in {run_dir}", flush=True)
  else:
    latest = tf.train.latest_checkpoint(run_dir)
    resumed_from = evaluate.checkpoint_step(latest) if latest else 0
    print(f"{objective} seed {seed}: {steps} steps of {report.per_step:.4g} FLOPs = {steps * report.per_step:.4g} "
          f"(budget {train_flops:.4g}); batch {report.batch_size} x seq {report.seq_length}; held-out evaluation "
          f"every {eval_every} steps on {batches} batches" + (f"; resuming at step {resumed_from}" if latest else ""),
          flush=True)
    fileio.make_output_dir(run_dir, "--output_dir")
    fileio.write_text_atomic(record_path, json.dumps(dict(wanted, finished=False), indent=2) + "\n")
    start = time.time()
    metrics = pretrain_lib.pretrain(model_dir=run_dir)
    train_seconds = time.time() - start
    prefix = EVAL_SUBDIR + "/"
    final_eval = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
    if not final_eval:
      # Nothing left to train (killed after the last checkpoint): the last evaluation is in the events.
      curves = read_scalars(run_dir, EVAL_SUBDIR)
      final_eval = {tag: points[-1][1] for tag, points in curves.items() if points[-1][0] == steps}
      if not final_eval:
        final_eval = evaluate.evaluate_run(run_dir, data_dir=data_dir, eval_batches=batches,
                                           batch_size=report.batch_size)["metrics"]
    record = dict(wanted, finished=True, steps=steps, resumed_from_step=resumed_from, train_seconds=train_seconds,
                  final_eval=final_eval)
    fileio.write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")

  start = time.time()
  first = next(iter(pretraining.evaluation_dataset(data_dir, report.batch_size, report.seq_length, 1)))
  model = _build(objective_cls, report.encoder_config, first, seed)
  status = tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(run_dir)).expect_partial()
  status.assert_existing_objects_matched()
  initial = _build(objective_cls, report.encoder_config, first, seed)
  train_curves = read_scalars(run_dir, "train")
  result = {
      "seed": seed,
      "run_dir": run_dir,
      "config": config,
      "steps": steps,
      "flops_per_step": report.per_step,
      "train_flops": steps * report.per_step,
      "batch_size": report.batch_size,
      "seq_length": report.seq_length,
      "eval_every": eval_every,
      "eval_batches": batches,
      "encoder_params": common.count_params(model.encoder.trainable_variables),
      "objective_params": common.count_params(model.trainable_variables),
      "train_seconds": record["train_seconds"],
      "resumed_from_step": record["resumed_from_step"],
      "final_eval": dict(record["final_eval"]),
      "eval_curves": {tag: [[s, v] for s, v in points] for tag, points in read_scalars(run_dir, EVAL_SUBDIR).items()},
      "train_curves": {tag: [[s, v] for s, v in points] for tag, points in train_curves.items()},
      "final_train_metrics": {tag: points[-1][1] for tag, points in train_curves.items()},
      "probe": run_probe(model.encoder, probe_data, num_bootstrap, PROBE_SEED),
      # No interval for the floor: it only anchors the gain, and resampling is not free.
      "probe_at_init": run_probe(initial.encoder, probe_data, 0, PROBE_SEED),
  }
  result["eval_seconds"] = time.time() - start
  return result


def compare_one(objective: str, config: str, data_dir: str, manifest: manifest_lib.Manifest, train_flops: float,
                output_dir: str, gin_params: Sequence[str], seeds: int, eval_points: int,
                eval_batches: Optional[int], probe_data: "ProbeData", num_bootstrap: int) -> Dict[str, object]:
  """Every seed of one objective, and the summaries over the seeds."""
  per_seed = []
  for seed in range(seeds):
    try:
      per_seed.append(run_seed(objective, config, data_dir, manifest, train_flops,
                               os.path.join(output_dir, "runs", objective, f"seed_{seed}"), gin_params, seed,
                               eval_points, eval_batches, probe_data, num_bootstrap))
    finally:
      gin.clear_config()
      tf.keras.backend.clear_session()
  first = per_seed[0]
  metrics = sorted(set().union(*(run["final_eval"] for run in per_seed)))
  train_metrics = sorted(set().union(*(run["final_train_metrics"] for run in per_seed)))
  result = {key: first[key] for key in ("config", "steps", "flops_per_step", "train_flops", "batch_size",
                                        "seq_length", "eval_every", "eval_batches", "encoder_params",
                                        "objective_params")}
  result.update({
      "seeds": list(range(seeds)),
      "train_seconds": summarize([run["train_seconds"] for run in per_seed]),
      "final_eval": {m: summarize([run["final_eval"][m] for run in per_seed if m in run["final_eval"]])
                     for m in metrics},
      "final_train_metrics": {m: summarize([run["final_train_metrics"][m] for run in per_seed
                                            if m in run["final_train_metrics"]]) for m in train_metrics},
      "eval_curves": mean_curves([run["eval_curves"] for run in per_seed], first["flops_per_step"]),
      "probe_auc": summarize([run["probe"]["auc"] for run in per_seed]),
      "probe_at_init_auc": summarize([run["probe_at_init"]["auc"] for run in per_seed]),
      "probe_gain": summarize([run["probe"]["auc"] - run["probe_at_init"]["auc"] for run in per_seed]),
      # A run is above chance when its probe's 95% bootstrap interval (held-out sampling) excludes 0.5.
      "probe_above_chance": sum(bool(run["probe"]["auc_low"] > 0.5) for run in per_seed),
      "per_seed": per_seed,
  })
  return result


# ---------------------------------------------------------------------------------------------
# Report.


def format_summary(summary: Mapping[str, object], digits: int = 4) -> str:
  """`mean ± std (n=k)`; the std is left out for a single seed."""
  mean, std, n = summary["mean"], summary["std"], summary["n"]
  if not n:
    return ""
  if n < 2 or not math.isfinite(std):
    return f"{mean:.{digits}g} (n={n})"
  return f"{mean:.{digits}g} ± {std:.2g} (n={n})"


def markdown_report(results: Mapping[str, object]) -> str:
  """results.md: the summary table with the shared measure, then every objective's own held-out metrics."""
  runs = results["objectives"]
  data = results["data"]
  lines = [f"# Objectives at equal compute: {results['train_flops']:.3g} training FLOPs each, "
           f"{results['num_seeds']} seed(s)", "",
           f"Data: {data['source']} ({data['num_train']} training examples; held-out split: "
           f"{data['num_eval_examples']} examples of {data['num_eval_documents']} whole documents); configs: "
           f"{results['config']}; SEED = 0..{results['num_seeds'] - 1}"
           + (f"; --gin_param {results['gin_params']}" if results["gin_params"] else "") + ".", "",
           "Every number is the mean ± sample standard deviation over the seeds (n = seeds) at the run's last "
           "step. Shared held-out measure: frozen-feature replaced-token-detection probe (15% of held-out tokens "
           "replaced by unigram draws; logistic regression on the encoder's last layer fitted on half the "
           "held-out sequences, ROC AUC on the other half; a context-free detector scores 0.5). \"above chance\": "
           "runs whose 95% bootstrap interval over test sequences excludes 0.5. See "
           "benchmarks/compare_objectives.py.", "",
           "| objective | steps | train FLOPs | encoder params | pretrain s per seed | probe AUC | above chance "
           "| AUC at init | gain |",
           "|---|---:|---:|---:|---:|---|---:|---:|---|"]
  for name, run in runs.items():
    lines.append(f"| {name} | {run['steps']} | {run['train_flops']:.3g} | {run['encoder_params']:,} "
                 f"| {run['train_seconds']['mean']:.0f} | {format_summary(run['probe_auc'], 3)} "
                 f"| {run['probe_above_chance']}/{run['probe_auc']['n']} "
                 f"| {run['probe_at_init_auc']['mean']:.3f} | {format_summary(run['probe_gain'], 2)} |")
  if not any(run["probe_above_chance"] for run in runs.values()):
    lines += ["", "**No run's probe AUC is above chance (every 95% interval reaches 0.5): at this budget no encoder "
              "has learned context that the probe can read, so this table ranks nothing. Raise --train_flops.**"]
  any_run = next(iter(runs.values()))["per_seed"][0]
  lines += ["", f"Probe: {any_run['probe']['fit_tokens']} fit tokens, {any_run['probe']['test_tokens']} test tokens, "
            f"{100 * any_run['probe']['test_replaced_fraction']:.1f}% replaced (majority-class accuracy "
            f"{any_run['probe']['majority_accuracy']:.3f}).", "",
            "Each objective's own metrics (they do not compare across objectives): on the held-out split at the "
            "last step (the trainer's evaluation: fixed batches, masks and sampling noise; "
            f"{any_run['eval_batches']} batches of {any_run['batch_size']}), and in the last training window "
            "(training batches; from the TensorBoard events). Held-out curves: every objective's `eval_every` "
            "steps, in results.json and curves.png.", "",
            "| objective | metric | held out, last step | last training window |", "|---|---|---|---|"]
  for name, run in runs.items():
    for metric, summary in run["final_eval"].items():
      train = run["final_train_metrics"].get(metric)
      lines.append(f"| {name} | {metric} | {format_summary(summary)} | {format_summary(train) if train else ''} |")
  lines += ["", "## What these numbers can and cannot show", "",
            "They can show whether each objective trains at this budget, how its own held-out metrics move per "
            "FLOP, and how the encoders rank on one context-sensitive probe, with the spread over seeds "
            "(initialization, data order, masks, sampling, dropout) and the probe's held-out sampling error. They "
            "cannot show that the ranking holds at the papers' scale (tiny encoders and minutes of compute against "
            "10^17-10^18 FLOPs), or anything about GLUE; a handful of seeds gives a rough standard deviation only. "
            "The probe is closer to the replaced-token detectors' training task than to BERT's. At this size the "
            "embedding lookups and vocabulary projections dominate the FLOPs count, and wall-clock time per FLOP "
            "differs by objective.", ""]
  return "\n".join(lines)


def plot_curves(results: Mapping[str, object], path: str) -> None:
  """Held-out loss, MLM loss and detection AUC against FLOPs (mean over seeds, ±1 std shaded); the probe."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  runs = results["objectives"]
  # One color per objective in every panel, although not every objective has every curve.
  colors = {name: f"C{i}" for i, name in enumerate(runs)}
  figure, axes = plt.subplots(2, 2, figsize=(12, 8))
  panels = ((axes[0, 0], "loss", "own loss, held out (log scale)"),
            (axes[0, 1], "mlm_loss", "MLM loss, held out (generator's for ELECTRA/ALE/TEAMS)"),
            (axes[1, 0], "discriminator_auc", "replaced-token detection AUC, held out"))
  for ax, tag, title in panels:
    for name, run in runs.items():
      curve = run["eval_curves"].get(tag)
      if not curve or not curve["steps"]:
        continue
      x, mean, std = np.array(curve["flops"]), np.array(curve["mean"]), np.array(curve["std"])
      ax.plot(x, mean, color=colors[name], marker="o", markersize=3, label=f"{name} (n={curve['n']})")
      if curve["n"] > 1:
        ax.fill_between(x, mean - std, mean + std, color=colors[name], alpha=0.2, linewidth=0)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("training FLOPs")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  if axes[0, 0].get_legend_handles_labels()[0]:
    axes[0, 0].set_yscale("log")
  names = list(runs)
  probe = np.array([runs[n]["probe_auc"]["mean"] for n in names])
  spread = np.nan_to_num(np.array([runs[n]["probe_auc"]["std"] for n in names]))
  at_init = np.array([runs[n]["probe_at_init_auc"]["mean"] for n in names])
  x = np.arange(len(names))
  ax = axes[1, 1]
  ax.bar(x - 0.2, at_init, width=0.4, color="lightgray")
  ax.bar(x + 0.2, probe, width=0.4, yerr=spread, capsize=4, color=[colors[n] for n in names])
  for n, name in enumerate(names):
    ax.scatter(np.full(runs[name]["probe_auc"]["n"], n + 0.2), runs[name]["probe_auc"]["values"], color="black", s=8,
               zorder=3)
  ax.axhline(0.5, color="black", linewidth=0.8, linestyle=":")
  ax.set_xticks(x)
  ax.set_xticklabels(names)
  ax.set_ylim(min(0.45, float(np.nanmin(np.concatenate([probe - spread, at_init]))) - 0.02),
              max(0.6, float(np.nanmax(np.concatenate([probe + spread, at_init]))) + 0.02))
  ax.set_title("shared held-out measure: probe ROC AUC\n(gray: at init; color: pretrained, mean ± std, dots: seeds)",
               fontsize="medium")
  figure.suptitle(f"{', '.join(names)} at {results['train_flops']:.3g} training FLOPs each, "
                  f"{results['num_seeds']} seed(s)")
  figure.tight_layout()
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb") as f:
    figure.savefig(f, format="png", dpi=100)
  plt.close(figure)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def compare(data_dir: str, train_flops: float, output_dir: str, objectives: Optional[Sequence[str]] = None,
            config_pattern: str = DEFAULT_CONFIG, gin_params: Sequence[str] = (), seeds: int = 3,
            eval_points: int = 5, eval_batches: Optional[int] = None, num_bootstrap: int = 1000) -> Dict[str, object]:
  """Runs the comparison and writes results.md, results.json and curves.png into `output_dir`."""
  for binding in gin_params:
    for line in binding.splitlines():
      name = line.split("=", 1)[0].strip()
      if "=" in line and name in RESERVED_BINDINGS:
        raise ValueError(f"--gin_param {line.strip()!r}: {name} is set by this script (--data_dir, --train_flops, "
                         "--seeds, --eval_points, --eval_batches)")
  if seeds < 1 or eval_points < 1 or (eval_batches is not None and eval_batches < 1):
    raise ValueError(f"--seeds ({seeds}), --eval_points ({eval_points}) and --eval_batches ({eval_batches}) "
                     "must be >= 1")
  start = time.time()
  objectives = list(objectives or common.objective_names())
  data_dir = _absolute(data_dir)
  manifest = heldout_manifest(data_dir)
  configs = {name: gin_utils.resolve_gin_file(config_pattern.format(objective=name)) for name in objectives}
  probe_data = corrupt_for_probe(read_heldout_examples(data_dir), manifest.special_token_ids, PROBE_SEED)
  results: Dict[str, object] = {
      "train_flops": train_flops, "config": config_pattern, "gin_params": list(gin_params), "num_seeds": seeds,
      "eval_points": eval_points,
      "data": {"source": data_dir, "settings_hash": manifest.settings_hash, "num_train": manifest.num_examples,
               "num_eval_examples": manifest.num_eval_examples, "num_eval_documents": manifest.num_eval_documents,
               "eval_shards": list(manifest.eval_shards)},
      "probe": {"replace_rate": PROBE_REPLACE_RATE, "l2": PROBE_L2, "seed": PROBE_SEED,
                "features": "encoder sequence_output", "fit_sequences": probe_data.fit_sequences,
                "test_sequences": len(probe_data.input_ids) - probe_data.fit_sequences},
      "objectives": {},
  }
  try:
    for name in objectives:
      results["objectives"][name] = compare_one(name, configs[name], data_dir, manifest, train_flops, output_dir,
                                                gin_params, seeds, eval_points, eval_batches, probe_data,
                                                num_bootstrap)
  finally:
    gin.clear_config()
  results["total_seconds"] = time.time() - start
  fileio.write_text_atomic(os.path.join(output_dir, "results.json"), json.dumps(results, indent=1) + "\n")
  report = markdown_report(results)
  fileio.write_text_atomic(os.path.join(output_dir, "results.md"), report)
  plot_curves(results, os.path.join(output_dir, "curves.png"))
  print(report)
  print(f"total {results['total_seconds']:.0f} s; wrote {output_dir}/results.md, results.json, curves.png")
  return results


def define_flags() -> None:
  """The CLI's flags; defined only when run as a script, so that importing this module (tests, or
  next to benchmarks.input_pipeline, which also has a --data_dir) defines none."""
  flags.DEFINE_string("data_dir", None, "Pretraining data dir (data_prep output with a held-out split).")
  flags.DEFINE_float("train_flops", None, "The training-FLOPs budget every objective gets (TRAIN_FLOPS).")
  flags.DEFINE_string("output_dir", None, "Where the runs and the report go.")
  flags.DEFINE_list("objectives", common.objective_names(), "Objectives to compare, by registered name.")
  flags.DEFINE_string("config", DEFAULT_CONFIG, "Gin file of each objective; {objective} is replaced by its name.")
  flags.DEFINE_integer("seeds", 3, "Runs per objective, with SEED = 0, ..., seeds - 1.")
  flags.DEFINE_integer("eval_points", 5, "Held-out evaluations per run (at most; the last at the last step): "
                       "EVAL_EVERY = ceil(steps / eval_points).")
  flags.DEFINE_integer("eval_batches", None, "Held-out batches per evaluation (EVAL_BATCHES; default: every "
                       "complete batch of the held-out split).")
  flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the test sequences for each probe's interval.")
  flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied to every objective's config, e.g. "
                            "'BATCH_SIZE = 32' (not the ones this script sets).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("data_dir", "train_flops", "output_dir"):
    if FLAGS[name].value is None:
      raise app.UsageError(f"--{name} is required")
  known = common.objective_names()
  unknown = [name for name in FLAGS.objectives if name not in known and FLAGS.config == DEFAULT_CONFIG]
  if unknown:
    raise app.UsageError(f"unknown objective(s) {unknown}; choose from {', '.join(known)}")
  try:
    compare(FLAGS.data_dir, FLAGS.train_flops, FLAGS.output_dir, FLAGS.objectives, FLAGS.config, FLAGS.gin_param,
            FLAGS.seeds, FLAGS.eval_points, FLAGS.eval_batches, FLAGS.bootstrap)
  except (ValueError, trainer.NonFiniteLossError) as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
