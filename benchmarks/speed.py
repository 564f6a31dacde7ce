r"""Speed against the peers, in one run: pretraining step, fine-tuning step, end-to-end fine-tuning, serving.

  python -m benchmarks.speed --work_dir=/tmp/speed                       # every section, 3 seeds
  python -m benchmarks.speed --sections=finetune_step,serving --rounds=5

One printed table, every figure a median over interleaved rounds (each round runs every
implementation of a section in turn, so machine noise hits them alike), with the machine's load
average (os.getloadavg) read before and after each section:

- pretrain: ELECTRA's train step against tf-models-official's ElectraPretrainer at the same shapes,
  loss and optimizer (`benchmarks.train_step`'s code and its flags: --size, --batch_size, --seq_len,
  --steps, --warmup_steps, --jit_compile).
- finetune_step: a sequence-classification train step on the converted all-MiniLM-L6-v2 (the pinned
  wheel, `data_prep.embedded_models`), batch 32 x 128 tokens, AdamW, clip 1.0: ours (the runner's
  model, optimizer and train loop) against transformers' PyTorch `BertForSequenceClassification`
  (--torch_threads threads, torch.optim.AdamW, clip_grad_norm_ 1.0).
- end_to_end: `python -m tpu_electra.finetune` of finetune/trec.gin (TREC, written by
  `data_prep.embedded_tasks`) for --epochs epochs from the converted MiniLM, wall time of the whole
  command (TensorFlow import, features, tracing and evaluation included), length-bucketed and at a
  fixed 128 tokens; against transformers with dynamic padding (`DataCollatorWithPadding`, the same
  recipe without layer-wise decay: AdamW, --hf_learning_rate, 10% warmup, linear decay, clip 1.0,
  batch 32), timed from loading the model to the dev accuracy. Each with the dev accuracy reached,
  --seeds seeds each (interleaved: seed s of every implementation, then seed s + 1).
- serving: the text-in SavedModel (`tpu_electra.export.classification.TextServingModule`, the run's tokenizer op
  inside the graph) of the first bucketed TREC seed against a transformers `pipeline` on MiniLM
  (same encoder weights; its head is not ours), latency of one sentence and of a batch of 32.
"""
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

from absl import flags
import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import train_step  # Its flags (--size, --batch_size, --seq_len, --steps, --rounds, ...) too.
from data_prep import embedded_models
from tpu_electra import cli_utils

SECTIONS = ("pretrain", "finetune_step", "end_to_end", "serving")


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  train_step.define_flags(flag_values)  # --size, --batch_size, --seq_len, --steps, --rounds, --jit_compile, ...
  flags.DEFINE_string("work_dir", "/tmp/tpu_electra_speed", "Converted MiniLM, TREC files and fine-tuning runs go "
                      "here.", flag_values=flag_values)
  flags.DEFINE_list("sections", list(SECTIONS), f"Which of {', '.join(SECTIONS)} to run.", flag_values=flag_values)
  flags.DEFINE_integer("seeds", 3, "End-to-end fine-tunings per implementation.", flag_values=flag_values)
  flags.DEFINE_float("epochs", 3.0, "End-to-end fine-tuning epochs.", flag_values=flag_values)
  flags.DEFINE_float("hf_learning_rate", 1e-4, "transformers' learning rate (ours: finetune/base.gin's recipe).",
                     flag_values=flag_values)
  flags.DEFINE_integer("torch_threads", 2, "PyTorch intra-op threads.", flag_values=flag_values)
  flags.DEFINE_integer("serving_calls", 20, "Timed serving calls per round and input size.", flag_values=flag_values)
  flags.DEFINE_list("end_to_end", ["bucketed", "fixed", "peer"],
                    "End-to-end implementations: bucketed, fixed (ours at 128 tokens; the slowest), peer.",
                    flag_values=flag_values)


TREC_GIN = "finetune/trec.gin"
FINETUNE_LENGTH = 128


def _load() -> str:
  return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(values: Sequence[float]) -> float:
  return statistics.median(values)


def _minilm_run(work_dir: str) -> str:
  """The converted all-MiniLM-L6-v2 run dir (converted once)."""
  out = os.path.join(work_dir, "minilm")
  if not os.path.exists(os.path.join(out, "run.json")):
    source = f"--source=huggingface:{embedded_models.fetch_minilm()}"
    subprocess.run([sys.executable, "-m", "tpu_electra.convert", source, f"--output_dir={out}"], check=True)
  return out


def _trec_dir(work_dir: str) -> str:
  out = os.path.join(work_dir, "tasks")
  if not os.path.exists(os.path.join(out, "TREC", "dev.tsv")):
    subprocess.run([sys.executable, "-m", "data_prep.embedded_tasks", f"--output_dir={out}"], check=True)
  return out


def _rounds(runners: Dict[str, Callable[[], float]], rounds: int) -> Dict[str, List[float]]:
  """Each runner's seconds per call over `rounds` interleaved rounds (a first untimed call each)."""
  for run in runners.values():
    run()
  times: Dict[str, List[float]] = {name: [] for name in runners}
  for index in range(rounds):
    for name, run in runners.items():
      times[name].append(run())
      print(f"round {index + 1}/{rounds} {name}: {times[name][-1]:.4f} s", flush=True)
  return times


# ----------------------------------------------------------------------------------------------
# Sections: each returns table rows [section, implementation, median, unit, speed-up vs the peer, note]


def pretrain_rows(flag_values: flags.FlagValues) -> List[List[str]]:
  batch = common.synthetic_batch(flag_values.batch_size, flag_values.seq_len)
  ours, _, _ = train_step.ours("electra", flag_values.size, batch, flag_values.jit_compile)
  peer, _ = train_step.tf_models_electra(flag_values.size, batch, flag_values.jit_compile)
  times = _rounds({name: _timed_steps(flag_values, run) for name, run in (("ours", ours), ("peer", peer))},
                  flag_values.rounds)
  ours_s, peer_s = _median(times["ours"]), _median(times["peer"])
  shape = f"ELECTRA-{flag_values.size}, {flag_values.batch_size} x {flag_values.seq_len}"
  return [["pretrain step", "tpu_electra ELECTRA", f"{ours_s:.3f}", "s/step", f"{peer_s / ours_s:.2f}x", shape],
          ["pretrain step", "tf-models-official ElectraPretrainer", f"{peer_s:.3f}", "s/step", "1.00x", shape]]


def _timed_steps(flag_values: flags.FlagValues, run_steps) -> Callable[[], float]:
  def run() -> float:
    return common.time_steps(run_steps, flag_values.steps, warmup_steps=1)[0]
  return run


def _finetune_batch(vocab_size: int) -> Dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  ids = rng.integers(1000, vocab_size, size=(32, FINETUNE_LENGTH)).astype(np.int32)
  ids[:, 0], ids[:, -1] = 101, 102
  return {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids),
          "label_ids": (np.arange(32) % 6).astype(np.int32)}


def ours_finetune_step(flag_values: flags.FlagValues, minilm_run: str,
                       batch: Dict[str, np.ndarray]) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """Our fine-tuning train loop (runner's model, optimizer and `trainer.make_train_loop`) over one batch."""
  # pylint: disable=g-import-not-at-top
  from tpu_electra import runs as runs_lib
  from tpu_electra.finetuning import models
  from tpu_electra.training import layerwise_decay, trainer
  # pylint: enable=g-import-not-at-top
  strategy = tf.distribute.get_strategy()
  encoder = runs_lib.load_encoder(runs_lib.read_run(minilm_run))
  model = models.ClassificationModel(encoder, 6)
  tensors = {k: tf.constant(v) for k, v in batch.items()}
  model(tensors, training=False)
  optimizer = layerwise_decay.create_finetuning_optimizer(model, encoder, 10**6, learning_rate=1e-4, clip_norm=1.0)
  trainer.build_variables(model, optimizer, strategy, tensors)
  loop = trainer.make_train_loop(model, optimizer, strategy, jit_compile=flag_values.jit_compile)
  iterator = iter(tf.data.Dataset.from_tensors(tensors).repeat())
  return lambda n: loop(iterator, n)


def torch_finetune_step(flag_values: flags.FlagValues, minilm_dir: str,
                        batch: Dict[str, np.ndarray]) -> Callable[[tf.Tensor], Dict[str, float]]:
  """transformers' BertForSequenceClassification train steps (dropout on, AdamW, clip 1.0) over one batch."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(flag_values.torch_threads)
  torch.manual_seed(0)
  model = transformers.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=6).train()
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.0)
  inputs = {"input_ids": torch.from_numpy(batch["input_word_ids"]).long(),
            "attention_mask": torch.from_numpy(batch["input_mask"]).long(),
            "token_type_ids": torch.from_numpy(batch["input_type_ids"]).long(),
            "labels": torch.from_numpy(batch["label_ids"]).long()}

  def run_steps(n):
    for _ in range(int(n)):
      loss = model(**inputs).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      optimizer.step()
      optimizer.zero_grad(set_to_none=True)
    return {"loss": tf.constant(float(loss.detach()))}
  return run_steps


def finetune_step_rows(flag_values: flags.FlagValues, minilm_run: str, minilm_dir: str) -> List[List[str]]:
  batch = _finetune_batch(30522)
  runners = {"ours": _timed_steps(flag_values, ours_finetune_step(flag_values, minilm_run, batch)),
             "peer": _timed_steps(flag_values, torch_finetune_step(flag_values, minilm_dir, batch))}
  times = _rounds(runners, flag_values.rounds)
  ours_s, peer_s = _median(times["ours"]), _median(times["peer"])
  note = f"MiniLM-L6, 32 x {FINETUNE_LENGTH}, AdamW, clip 1.0"
  return [["fine-tune step", "tpu_electra", f"{32 / ours_s:.1f}", "examples/s", f"{peer_s / ours_s:.2f}x", note],
          ["fine-tune step", f"transformers BertForSequenceClassification (torch, {flag_values.torch_threads} threads)",
           f"{32 / peer_s:.1f}", "examples/s", "1.00x", note]]


def ours_end_to_end(flag_values: flags.FlagValues, minilm_run: str, data_dir: str, model_dir: str, seed: int,
                    buckets: bool) -> Dict[str, float]:
  """Wall seconds and dev accuracy of `python -m tpu_electra.finetune` of TREC at 128 tokens."""
  command = [sys.executable, "-m", "tpu_electra.finetune", f"--gin_file={TREC_GIN}", f"--init_checkpoint={minilm_run}",
             f"--data_dir={data_dir}", f"--model_dir={model_dir}", f"--gin_param=SEED = {seed}",
             f"--gin_param=MAX_SEQ_LENGTH = {FINETUNE_LENGTH}", f"--gin_param=EPOCHS = {flag_values.epochs}",
             f"--gin_param=train_and_evaluate.length_buckets = {buckets}",
             "--gin_param=train_and_evaluate.eval_every_epoch = False"]
  tick = time.time()
  subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=open(model_dir + ".log", "w"))
  wall = time.time() - tick
  with open(os.path.join(model_dir, "results.json")) as f:
    results = json.load(f)
  return {"wall_s": wall, "accuracy": results["per_seed"][0]["metrics"]["accuracy"]}


def _trec_rows(path: str):
  with open(path, encoding="utf-8") as f:
    return [(row["text"], row["label"]) for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def torch_end_to_end(flag_values: flags.FlagValues, minilm_dir: str, data_dir: str, seed: int) -> Dict[str, float]:
  """transformers fine-tuning of TREC with dynamic padding: wall seconds from loading to dev accuracy."""
  # pylint: disable=g-import-not-at-top
  import torch
  import transformers
  # pylint: enable=g-import-not-at-top
  torch.set_num_threads(flag_values.torch_threads)
  tick = time.time()
  train, dev = (_trec_rows(os.path.join(data_dir, "TREC", f"{split}.tsv")) for split in ("train", "dev"))
  labels = sorted({label for _, label in train})
  label_id = {label: i for i, label in enumerate(labels)}
  tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
  transformers.set_seed(seed)
  model = transformers.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=len(labels))
  collator = transformers.DataCollatorWithPadding(tokenizer)

  def encode(rows):
    encoded = tokenizer([text for text, _ in rows], truncation=True, max_length=FINETUNE_LENGTH)
    return [{"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": label_id[label]}
            for ids, types, mask, (_, label) in zip(encoded["input_ids"], encoded["token_type_ids"],
                                                    encoded["attention_mask"], rows)]

  train_features, dev_features = encode(train), encode(dev)
  generator = torch.Generator().manual_seed(seed)
  loader = torch.utils.data.DataLoader(train_features, batch_size=32, shuffle=True, drop_last=True,
                                       collate_fn=collator, generator=generator)
  steps = int(len(train_features) * flag_values.epochs / 32)
  optimizer = torch.optim.AdamW(model.parameters(), lr=flag_values.hf_learning_rate, eps=1e-6, weight_decay=0.0)
  schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
  model.train()
  done = 0
  while done < steps:
    for batch in loader:
      loss = model(**batch).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      optimizer.step()
      schedule.step()
      optimizer.zero_grad(set_to_none=True)
      done += 1
      if done == steps:
        break
  model.eval()
  correct = 0
  with torch.no_grad():
    for start in range(0, len(dev_features), 32):
      batch = collator(dev_features[start:start + 32])
      predicted = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1)
      correct += int((predicted == batch["labels"]).sum())
  return {"wall_s": time.time() - tick, "accuracy": correct / len(dev_features)}


def end_to_end_rows(flag_values: flags.FlagValues, minilm_run: str, minilm_dir: str, data_dir: str) -> List[List[str]]:
  runs_dir = os.path.join(flag_values.work_dir, "runs")
  os.makedirs(runs_dir, exist_ok=True)
  results: Dict[str, List[Dict[str, float]]] = {name: [] for name in flag_values.end_to_end}
  for seed in range(flag_values.seeds):
    for name in results:
      model_dir = os.path.join(runs_dir, f"trec-{name}-{flag_values.epochs:g}ep-seed{seed}")
      if name == "peer":
        result = torch_end_to_end(flag_values, minilm_dir, data_dir, seed)
      else:
        if os.path.exists(model_dir):
          subprocess.run(["rm", "-rf", model_dir], check=True)
        result = ours_end_to_end(flag_values, minilm_run, data_dir, model_dir, seed, buckets=name == "bucketed")
      results[name].append(result)
      print(f"end to end seed {seed} {name}: {result['wall_s']:.1f} s, accuracy {result['accuracy']:.4f} "
            f"(load {_load()})", flush=True)
  peer_s = _median([r["wall_s"] for r in results["peer"]]) if results.get("peer") else float("nan")
  labels = {"bucketed": "tpu_electra, length buckets (16/32/64/128)", "fixed": "tpu_electra, fixed 128 tokens",
            "peer": "transformers, dynamic padding"}
  rows = []
  for name, runs in results.items():
    wall = _median([r["wall_s"] for r in runs])
    accuracy = [r["accuracy"] for r in runs]
    rows.append([f"TREC {flag_values.epochs:g} epochs", labels[name], f"{wall:.0f}", "s wall",
                 f"{peer_s / wall:.2f}x" if math.isfinite(peer_s) else "peer not run",
                 f"dev accuracy {np.mean(accuracy):.4f} ± {np.std(accuracy):.4f} (n={len(runs)}: "
                 f"{', '.join(f'{a:.3f}' for a in accuracy)})"])
  return rows


def _serving_sources(flag_values: flags.FlagValues) -> Tuple[str, str]:
  """(the end_to_end section's first bucketed TREC run, the SavedModel serving exports from it)."""
  return (os.path.join(flag_values.work_dir, "runs", f"trec-bucketed-{flag_values.epochs:g}ep-seed0"),
          os.path.join(flag_values.work_dir, "trec_saved_model"))


def serving_rows(flag_values: flags.FlagValues, minilm_dir: str) -> List[List[str]]:
  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel holds)
  import torch
  import transformers
  from tpu_electra.export import classification as export
  from tpu_electra.finetuning import finetuned
  # pylint: enable=g-import-not-at-top
  torch.set_num_threads(flag_values.torch_threads)
  run_dir, saved = _serving_sources(flag_values)
  if not os.path.exists(saved):
    # The serving module `python -m tpu_electra.export --format=saved_model` writes for classification runs.
    run = finetuned.read_finetuning_run(run_dir, None)
    module = export.TextServingModule(finetuned.load_task_model(run), run.load_tokenizer(), run.max_seq_length,
                                      run.label_list)
    tf.saved_model.save(module, saved, signatures={"serving_default": module.serve_text})
  serve = tf.saved_model.load(saved).signatures["serving_default"]
  pipeline = transformers.pipeline("text-classification",
                                   model=transformers.BertForSequenceClassification.from_pretrained(minilm_dir,
                                                                                                    num_labels=6),
                                   tokenizer=transformers.AutoTokenizer.from_pretrained(minilm_dir), device=-1)
  questions = [text for text, _ in _trec_rows(os.path.join(flag_values.work_dir, "tasks", "TREC", "dev.tsv"))[:32]]

  def timed(call) -> Callable[[], float]:
    def run() -> float:
      tick = time.perf_counter()
      for _ in range(flag_values.serving_calls):
        call()
      return (time.perf_counter() - tick) / flag_values.serving_calls
    return run

  runners = {
      "ours 1": timed(lambda: serve(text=tf.constant(questions[:1]))),
      "peer 1": timed(lambda: pipeline(questions[:1])),
      "ours 32": timed(lambda: serve(text=tf.constant(questions))),
      "peer 32": timed(lambda: pipeline(questions, batch_size=32)),
  }
  times = _rounds(runners, flag_values.rounds)
  rows = []
  for size in (1, 32):
    ours_s, peer_s = _median(times[f"ours {size}"]), _median(times[f"peer {size}"])
    what = "one question" if size == 1 else "batch of 32 questions"
    rows.append([f"serving, {what}", "tpu_electra text-in SavedModel", f"{1000 * ours_s:.1f}", "ms",
                 f"{peer_s / ours_s:.2f}x", f"pads to the batch's length bucket (<= {FINETUNE_LENGTH})"])
    rows.append([f"serving, {what}", "transformers pipeline (torch)", f"{1000 * peer_s:.1f}", "ms", "1.00x",
                 "pads to the longest"])
  return rows


def run(flag_values: flags.FlagValues) -> int:
  unknown = set(flag_values.sections) - set(SECTIONS)
  if unknown:
    print(f"error: unknown --sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
    return 1
  run_dir, saved = _serving_sources(flag_values)
  if ("serving" in flag_values.sections and "end_to_end" not in flag_values.sections and not os.path.exists(saved)
      and not os.path.exists(os.path.join(run_dir, "run.json"))):
    print(f"error: the serving section serves the TREC model the end_to_end section fine-tunes ({run_dir} does not "
          "exist yet): run --sections=end_to_end,serving once with this --work_dir", file=sys.stderr)
    return 1
  os.makedirs(flag_values.work_dir, exist_ok=True)
  print(f"machine: {os.cpu_count()} CPUs, TensorFlow {tf.__version__}; load average {_load()}", flush=True)
  needs_minilm = set(flag_values.sections) - {"pretrain"}
  minilm_dir = embedded_models.fetch_minilm() if needs_minilm else None
  minilm_run = _minilm_run(flag_values.work_dir) if needs_minilm else None
  rows = []
  for section in SECTIONS:
    if section not in flag_values.sections:
      continue
    before = _load()
    if section == "pretrain":
      section_rows = pretrain_rows(flag_values)
    elif section == "finetune_step":
      section_rows = finetune_step_rows(flag_values, minilm_run, minilm_dir)
    elif section == "end_to_end":
      section_rows = end_to_end_rows(flag_values, minilm_run, minilm_dir, _trec_dir(flag_values.work_dir))
    else:
      section_rows = serving_rows(flag_values, minilm_dir)
    after = _load()
    rows.extend(row + [f"{before} / {after}"] for row in section_rows)
    print(common.markdown_table(["what", "implementation", "median", "unit", "vs peer", "setting",
                                 "load 1/5/15 min before / after"], rows), flush=True)
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.speed")
