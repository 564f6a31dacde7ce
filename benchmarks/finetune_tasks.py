r"""Every fine-tuning task config, a few steps each from one pretraining model dir: CPU time per task.

  python -m benchmarks.finetune_tasks --init_checkpoint=runs/smoke_electra --steps=10

For each `finetune/<task>.gin` (its own sequence length, batch size and recipe) the benchmark
writes small files in the task's real layout, fine-tunes `--steps` steps through the same code as
`python -m tpu_electra.finetune`, evaluates once, and prints a table: rows, sequence length,
preparation, build + restore, first loop (tracing included), steady steps/s, evaluation, total,
and the task's primary metric (which, after a few steps on these files, only shows that the
scoring ran: the labels of everything but SST-2 are assigned in turn, not annotated).

  python -m benchmarks.finetune_tasks --init_checkpoint=runs/smoke_electra --mnli_sized --steps=20

instead writes an MNLI-sized task (393,702 training pairs of real Wikipedia sentences, from the
embedded fragment, in MNLI's TSV layout with every column filled) and fine-tunes finetune/mnli.gin
on it `--mnli_runs` times (default 2), each run a process of its own: the first prepares the
task's features, the others find them in the feature cache. Its table: preparation seconds,
steady steps/s, evaluation seconds, the run's wall seconds and peak RSS.

The text is real: the 200 polarity sentences of Pang and Lee (`data_prep.embedded`), spread over
every layout: GLUE's nine TSV kinds, SQuAD 1.1/2.0 JSON (contexts of five sentences, answers cut
from them, every third 2.0 question unanswerable), CoNLL `word TAG` lines (tags from a small
suffix rule — layout, not linguistics) and RACE's JSON files.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from absl import flags
from absl import logging

from benchmarks import common
from data_prep import corpus_readers
from data_prep import embedded
from data_prep import embedded_tasks
from data_prep import segment
from tpu_electra import cli_utils
from tpu_electra import fileio
from tpu_electra import gin_utils
from tpu_electra.finetuning import feature_cache
from tpu_electra.finetuning import runner

TASK_CONFIGS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "squad_v1", "squad_v2",
                "pos", "race")
MNLI_HEADER = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")


def polarity_sentences() -> List[str]:
  with open(embedded.fetch(embedded.PANG_LEE_POLARITY), "rb") as f:
    return [sentence for sentence, _ in embedded_tasks.parse_polarity(f.read())]


def wikipedia_sentences() -> List[str]:
  """Every sentence of the embedded Wikipedia fragment (about 18,000, 22 words on average)."""
  documents = corpus_readers.read_wikipedia_dump(embedded.fetch(embedded.WIKIPEDIA_FRAGMENT))
  return [s for document in documents for s in segment.split_document(document.paragraphs)]


def _write(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


def _tsv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["\t".join(header)] if header else []
  return "\n".join(lines + ["\t".join(str(c) for c in row) for row in rows]) + "\n"


def _glue_rows(task: str, rng: random.Random, sentences: Sequence[str], n: int) -> str:
  pick = lambda: rng.choice(sentences)  # noqa: E731
  if task == "CoLA":  # source, label, original mark, sentence; no header.
    return _tsv([], [("pl04", i % 2, "" if i % 2 else "*", pick()) for i in range(n)])
  if task == "SST-2":
    return _tsv(["sentence", "label"], [(pick(), i % 2) for i in range(n)])
  if task == "MRPC":
    return _tsv(["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                [(i % 2, 100 + i, 200 + i, pick(), pick()) for i in range(n)])
  if task == "STS-B":
    return _tsv(["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
                 "score"], [(i, "main-forums", "f", "2015", i, "s", "s", pick(), pick(), f"{(i % 11) / 2:.1f}")
                            for i in range(n)])
  if task == "QQP":
    return _tsv(["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                [(i, 2 * i, 2 * i + 1, pick(), pick(), i % 2) for i in range(n)])
  if task == "MNLI":
    labels = ("contradiction", "entailment", "neutral")
    return _tsv(MNLI_HEADER, [(i, i, f"{i}e", "fiction", "()", "()", "()", "()", pick(), pick(), labels[i % 3],
                               labels[i % 3]) for i in range(n)])
  if task == "QNLI":
    return _tsv(["index", "question", "sentence", "label"],
                [(i, pick(), pick(), ("entailment", "not_entailment")[i % 2]) for i in range(n)])
  if task == "RTE":
    return _tsv(["index", "sentence1", "sentence2", "label"],
                [(i, pick(), pick(), ("entailment", "not_entailment")[i % 2]) for i in range(n)])
  if task == "WNLI":
    return _tsv(["index", "sentence1", "sentence2", "label"], [(i, pick(), pick(), i % 2) for i in range(n)])
  raise ValueError(task)


def _squad(rng: random.Random, sentences: Sequence[str], n: int, version_2: bool) -> str:
  paragraphs = []
  for p in range((n + 2) // 3):
    context = " ".join(rng.choice(sentences) for _ in range(5))
    words = context.split()
    qas = []
    for q in range(3):
      qid = f"{'v2' if version_2 else 'v1'}-{p}-{q}"
      if version_2 and q == 2:
        qas.append({"id": qid, "question": rng.choice(sentences), "answers": [], "is_impossible": True})
        continue
      first = rng.randrange(len(words) - 3)
      answer = " ".join(words[first:first + 1 + q])
      start = len(" ".join(words[:first])) + (1 if first else 0)
      qas.append({"id": qid, "question": rng.choice(sentences), "answers": [{"text": answer, "answer_start": start}],
                  **({"is_impossible": False} if version_2 else {})})
    paragraphs.append({"context": context, "qas": qas})
  return json.dumps({"version": "v2.0" if version_2 else "1.1", "data": [{"title": "polarity", "paragraphs": paragraphs}]})


def _tag(word: str) -> str:
  if not any(c.isalnum() for c in word):
    return "."
  for suffix, tag in (("ing", "VBG"), ("ed", "VBD"), ("ly", "RB"), ("s", "NNS")):
    if word.endswith(suffix):
      return tag
  return "DT" if word in ("a", "an", "the") else "NN"


def _conll(rng: random.Random, sentences: Sequence[str], n: int) -> str:
  blocks = []
  for _ in range(n):
    blocks.append("\n".join(f"{w} {_tag(w)}" for w in rng.choice(sentences).split()))
  return "\n\n".join(blocks) + "\n"


def _race_file(rng: random.Random, sentences: Sequence[str]) -> str:
  return json.dumps({"article": " ".join(rng.choice(sentences) for _ in range(8)),
                     "questions": [rng.choice(sentences) for _ in range(2)],
                     "options": [[rng.choice(sentences) for _ in range(4)] for _ in range(2)],
                     "answers": [rng.choice("ABCD") for _ in range(2)], "id": "polarity"})


def write_task_files(root: str, sentences: Sequence[str], train_rows: int = 64, dev_rows: int = 32,
                     seed: int = 0) -> str:
  """Files for every task config under one data dir: `<root>/<GLUE TASK>/*.tsv`, SQuAD JSON,
  CoNLL `train.txt`/`dev.txt` and RACE `{train,dev}/{middle,high}/*.txt`. Returns `root`."""
  rng = random.Random(seed)
  for task in ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"):
    dev_splits = ("dev_matched", "dev_mismatched") if task == "MNLI" else ("dev",)
    _write(os.path.join(root, task, "train.tsv"), _glue_rows(task, rng, sentences, train_rows))
    for split in dev_splits:
      _write(os.path.join(root, task, f"{split}.tsv"), _glue_rows(task, rng, sentences, dev_rows))
  for version_2, suffix in ((False, "v1.1"), (True, "v2.0")):
    for split, n in (("train", train_rows), ("dev", dev_rows)):
      _write(os.path.join(root, f"{split}-{suffix}.json"), _squad(rng, sentences, n, version_2))
  for split, n in (("train", train_rows), ("dev", dev_rows)):
    _write(os.path.join(root, f"{split}.txt"), _conll(rng, sentences, n))
    for level in ("middle", "high"):
      for i in range(max(1, n // 4)):  # Two questions a file, half the rows per level.
        _write(os.path.join(root, split, level, f"{i}.txt"), _race_file(rng, sentences))
  return root


# MNLI 1.0 as GLUE ships it (the figure for the training set, GLUE's for the two devs).
MNLI_TRAIN_ROWS = 393702
MNLI_DEV_ROWS = {"dev_matched": 9815, "dev_mismatched": 9832}
MNLI_DEV_HEADER = MNLI_HEADER[:-1] + ("label2", "label3", "label4", "label5", "gold_label")
_MNLI_GENRES = {"train": ("fiction", "government", "slate", "telephone", "travel"),
                "dev_matched": ("fiction", "government", "slate", "telephone", "travel"),
                "dev_mismatched": ("facetoface", "letters", "nineeleven", "oup", "verbatim")}
_MNLI_LABELS = ("contradiction", "entailment", "neutral")


def _binary_parse(words: Sequence[str]) -> str:
  return "( " * (len(words) - 1) + " ".join(words[:1] + [w + " )" for w in words[1:]]) if words else ""


def _parse(words: Sequence[str]) -> str:
  return "(ROOT (S " + " ".join(f"(NN {w})" for w in words) + "))"


def write_mnli_sized(root: str, sentences: Sequence[str], train_rows: int = MNLI_TRAIN_ROWS,
                     dev_rows: Optional[Dict[str, int]] = None, seed: int = 0) -> str:
  """An MNLI-sized task of real sentences in MNLI's TSV layout: `<root>/MNLI/{train,dev_*}.tsv`.

  Every column MNLI has is filled (ids, genre, binary and full parses of both sentences, the
  annotators' labels and the gold label), so that reading costs what it costs on MNLI (GLUE's
  train.tsv is 333 MB; this one is about 330 MB). The premise is any sentence, the hypothesis one
  of 16 words or fewer (MNLI's hypotheses are about half as long as its premises); labels cycle,
  as there is no annotation. Returns `root`.
  """
  dev_rows = dict(MNLI_DEV_ROWS if dev_rows is None else dev_rows)
  rng = random.Random(seed)
  short = [s for s in sentences if len(s.split()) <= 16] or list(sentences)
  for split, rows in [("train", train_rows)] + sorted(dev_rows.items()):
    path = os.path.join(root, "MNLI", f"{split}.tsv")
    header = MNLI_HEADER if split == "train" else MNLI_DEV_HEADER
    genres = _MNLI_GENRES[split]
    with fileio.atomic_writer(path) as f:
      f.write("\t".join(header) + "\n")
      for i in range(rows):
        premise, hypothesis = rng.choice(sentences), rng.choice(short)
        words_p, words_h = premise.split(), hypothesis.split()
        label = _MNLI_LABELS[i % 3]
        labels = (label,) if split == "train" else (label,) * 5
        f.write("\t".join((str(i), str(i // 3), f"{i // 3}{label[0]}", genres[i % len(genres)], _binary_parse(words_p),
                           _binary_parse(words_h), _parse(words_p), _parse(words_h), premise, hypothesis) + labels
                          + (label,)) + "\n")
  return root


def run_task(task_config: str, init_checkpoint: str, data_dir: str, model_dir: str, steps: int,
             extra_params: Sequence[str] = ()) -> Dict[str, float]:
  """Fine-tunes one task config for `steps` steps and returns its timings, sizes and primary metric."""
  gin_utils.clear()
  # As many epochs as it takes to make `steps` steps; one step per loop, so that the first loop
  # (tracing) is one step and the others time the steady state.
  gin_utils.parse([f"finetune/{task_config}.gin"],
                  [f"train_and_evaluate.max_train_steps = {steps}", "EPOCHS = 1e6",
                   "train_and_evaluate.steps_per_loop = 1", "train_and_evaluate.eval_every_epoch = False",
                   "train_and_evaluate.save_final_checkpoint = False"] + list(extra_params))
  import gin  # pylint: disable=g-import-not-at-top
  max_seq_length = gin.query_parameter("MAX_SEQ_LENGTH/macro.value")
  batch_size = gin.query_parameter("BATCH_SIZE/macro.value")
  tick = time.time()
  results = runner.finetune(init_checkpoint=init_checkpoint, data_dir=data_dir, model_dir=model_dir)
  total = time.time() - tick
  seed = results["per_seed"][0]
  timings = seed["timings"]
  metrics = seed["metrics"]
  return {
      "task": task_config, "train_rows": results["hyperparameters"]["num_train_rows"], "seq": max_seq_length,
      "batch": batch_size, "steps": timings["train_steps"], "prepare_s": results["prepare_s"],
      "build_s": timings["build_and_restore_s"], "first_loop_s": timings["first_loop_s"],
      "steps_per_s": timings.get("steps_per_s", float("nan")), "eval_s": timings["eval_s"], "total_s": total,
      "metric": results["primary_metric"], "value": metrics.get(results["primary_metric"], float("nan")),
  }


def format_table(rows: Sequence[Dict[str, float]]) -> str:
  return common.markdown_table(
      ["task", "train rows", "seq", "batch", "steps", "prepare s", "build+restore s", "first loop s (tracing)",
       "steps/s after", "eval s", "total s", "primary metric"],
      [[r["task"], r["train_rows"], r["seq"], r["batch"], r["steps"], f"{r['prepare_s']:.1f}", f"{r['build_s']:.1f}",
        f"{r['first_loop_s']:.1f}", f"{r['steps_per_s']:.2f}", f"{r['eval_s']:.1f}", f"{r['total_s']:.1f}",
        f"{r['metric']} = {r['value']:.3f}"] for r in rows])


REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_measured(argv: Sequence[str], log_path: str) -> Dict[str, float]:
  """Runs a command with its output in `log_path`; its exit status, wall seconds and peak RSS (bytes)."""
  tick = time.time()
  with open(log_path, "w", encoding="utf-8") as log:
    process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR)
    _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  # ru_maxrss is in KiB on Linux: the peak resident set of that process alone.
  return {"returncode": process.returncode, "wall_s": time.time() - tick, "peak_rss": usage.ru_maxrss * 1024}


def run_mnli_sized(init_checkpoint: str, data_dir: str, work_dir: str, steps: int, runs: int = 2,
                   extra_params: Sequence[str] = ()) -> List[Dict[str, float]]:
  """`runs` fine-tunings of finetune/mnli.gin on `data_dir`, each in a process of its own, one after another.

  The first prepares the task's features (or finds them prepared); every later one is a rerun of
  the same command into a fresh model dir. Each row: preparation seconds, the whole run's wall
  seconds and peak RSS, steady steps/s (after the first loop, which traces), evaluation seconds.
  """
  rows = []
  # The first run prepares the features: drop any a previous invocation left beside the data.
  cache_dir = os.path.join(data_dir, feature_cache.DEFAULT_DIR_NAME)
  if os.path.exists(cache_dir):
    shutil.rmtree(cache_dir)
  for number in range(runs):
    model_dir = os.path.join(work_dir, "runs", f"mnli_sized_{number}")
    if os.path.exists(model_dir):  # A finished seed in it would be skipped, not timed.
      shutil.rmtree(model_dir)
    argv = [sys.executable, "-m", "tpu_electra.finetune", "--gin_file=finetune/mnli.gin",
            f"--init_checkpoint={init_checkpoint}", f"--data_dir={data_dir}", f"--model_dir={model_dir}"]
    for param in [f"train_and_evaluate.max_train_steps = {steps}", "train_and_evaluate.steps_per_loop = 1",
                  "train_and_evaluate.eval_every_epoch = False",
                  "train_and_evaluate.save_final_checkpoint = False"] + list(extra_params):
      argv.append(f"--gin_param={param}")
    log_path = os.path.join(work_dir, f"mnli_sized_{number}.log")
    os.makedirs(work_dir, exist_ok=True)
    measured = _run_measured(argv, log_path)
    if measured["returncode"] != 0:
      with open(log_path, encoding="utf-8") as f:
        tail = f.read()[-3000:]
      raise RuntimeError(f"fine-tuning run {number} failed (exit {measured['returncode']}; log {log_path}):\n{tail}")
    with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
      results = json.load(f)
    timings = results["per_seed"][0]["timings"]
    cache = results.get("features", {})
    rows.append({
        "run": "first" if number == 0 else f"rerun {number}", "train_rows": results["hyperparameters"]["num_train_rows"],
        "prepare_s": results["prepare_s"], "features": cache.get("source", "in memory"),
        "steps": timings["train_steps"], "steps_per_s": timings.get("steps_per_s", float("nan")),
        "eval_s": timings["eval_s"], "total_s": measured["wall_s"], "peak_rss_gb": measured["peak_rss"] / 1e9,
        "metric": results["primary_metric"],
        "value": results["per_seed"][0]["metrics"].get(results["primary_metric"], float("nan")),
    })
  return rows


def format_mnli_table(rows: Sequence[Dict[str, float]]) -> str:
  return common.markdown_table(
      ["run", "train rows", "features", "prepare s", "steps", "steps/s after", "eval s", "total s", "peak RSS GB",
       "primary metric"],
      [[r["run"], f"{r['train_rows']:,}", r["features"], f"{r['prepare_s']:.1f}", r["steps"],
        f"{r['steps_per_s']:.2f}", f"{r['eval_s']:.1f}", f"{r['total_s']:.1f}", f"{r['peak_rss_gb']:.2f}",
        f"{r['metric']} = {r['value']:.3f}"] for r in rows])


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("init_checkpoint", None, "Pretraining model dir to fine-tune from.", flag_values=flag_values)
  flags.DEFINE_list("tasks", list(TASK_CONFIGS), "Task configs under tpu_electra/gin/finetune/ to run.",
                    flag_values=flag_values)
  flags.DEFINE_integer("steps", 10, "Training steps per task.", flag_values=flag_values)
  flags.DEFINE_integer("train_rows", 64, "Training rows (questions, sentences) written per task.",
                       flag_values=flag_values)
  flags.DEFINE_integer("dev_rows", 32, "Evaluation rows written per task.", flag_values=flag_values)
  flags.DEFINE_string("work_dir", None, "Where data and runs go (default: a temporary directory).",
                      flag_values=flag_values)
  flags.DEFINE_boolean("mnli_sized", False, "Instead of the per-task table: write an MNLI-sized task of real "
                       "Wikipedia sentences (--mnli_train_rows pairs) and fine-tune finetune/mnli.gin on it "
                       "--mnli_runs times, each in its own process; prints preparation and rerun preparation "
                       "time, peak RSS and steps/s.", flag_values=flag_values)
  flags.DEFINE_integer("mnli_train_rows", MNLI_TRAIN_ROWS, "Training pairs of the MNLI-sized task.",
                       flag_values=flag_values)
  flags.DEFINE_integer("mnli_runs", 2, "Runs of the MNLI-sized benchmark: the first, then reruns.",
                       flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors found before any task runs (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "init_checkpoint")


@cli_utils.one_line_errors()
def run(flag_values: flags.FlagValues) -> int:
  check_flags(flag_values)
  unknown = [t for t in flag_values.tasks if t not in TASK_CONFIGS]
  if unknown:
    print(f"error: unknown task config(s) {unknown}; choose from {', '.join(TASK_CONFIGS)}", file=sys.stderr)
    return 1
  work_dir = flag_values.work_dir or tempfile.mkdtemp(prefix="finetune_tasks_")
  if flag_values.mnli_sized:
    return _run_mnli_sized(flag_values, work_dir)
  data_dir = write_task_files(os.path.join(work_dir, "data"), polarity_sentences(), flag_values.train_rows,
                              flag_values.dev_rows)
  rows = []
  for task_config in flag_values.tasks:
    logging.info("fine-tuning %s", task_config)
    rows.append(run_task(task_config, flag_values.init_checkpoint, data_dir,
                         os.path.join(work_dir, "runs", task_config), flag_values.steps))
    print(format_table(rows[-1:]).splitlines()[-1], flush=True)
  print(f"\nfine-tuning from {flag_values.init_checkpoint}, {flag_values.steps} steps per task, data in {data_dir}")
  print(format_table(rows))
  return 0


def _run_mnli_sized(flag_values: flags.FlagValues, work_dir: str) -> int:
  data_dir = os.path.join(work_dir, f"mnli_sized_{flag_values.mnli_train_rows}")
  if not os.path.exists(os.path.join(data_dir, "MNLI", "train.tsv")):
    logging.info("writing the MNLI-sized task to %s", data_dir)
    write_mnli_sized(data_dir, wikipedia_sentences(), train_rows=flag_values.mnli_train_rows)
  rows = []
  for row in run_mnli_sized(flag_values.init_checkpoint, data_dir, work_dir, flag_values.steps,
                            runs=flag_values.mnli_runs):
    rows.append(row)
    print(format_mnli_table(rows[-1:]).splitlines()[-1], flush=True)
  print(f"\nMNLI-sized task ({flag_values.mnli_train_rows:,} training pairs of real Wikipedia sentences, "
        f"MNLI's layout) in {data_dir}; fine-tuned from {flag_values.init_checkpoint}, {flag_values.steps} steps, "
        "each run a process of its own")
  print(format_mnli_table(rows))
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.finetune_tasks", check_flags)
