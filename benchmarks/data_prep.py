r"""Corpus build throughput: data_prep.build stage by stage, 1 and 2 workers, against google-research/electra.

  python -m benchmarks.data_prep --corpus_mb=40 --workers=1,2 --rounds=3 \
      [--reference_dir=/path/to/a/checkout/of/google-research/electra]

The corpus: the embedded Wikipedia fragment (data_prep.embedded), cut into sentences as a build
cuts it, in builder text format (a sentence per line, a blank line after each document), repeated
until it holds --corpus_mb MiB and spread over --corpus_files files (a `text:DIR` corpus). Copy k
rotates the sentences of every document by k, so that the copies of a document differ (one-sentence
documents aside) and the held-out split stays about 1% of the text. It is written once under
--work_dir and reused.

Every build is a process of its own, `python -m data_prep.build` as a user runs it (interpreter
start and the TensorFlow import included), with a given WordPiece vocab (--vocab; the README's
first command makes runs/data/enwiki_embedded/vocab.txt) and the default flags otherwise. The end
to end time is that process's wall time; the stage times are the ones its "stage times" log line
reports; "startup" is the rest (interpreter, imports, planning, manifest, exit). Rounds alternate
between the configurations so that machine noise hits them alike; the tables show medians. The
outputs of every worker count are compared byte for byte.

The peer, with --reference_dir, is google-research/electra's build_pretraining_dataset.py on the
same files and vocab (its pure-Python WordPiece tokenizer and per-example protos), with
--num-processes equal to the worker count; run from its own checkout, nothing of it is copied here.
It is slow (about a minute for 40 MB on 2 cores), so it runs --reference_rounds times.

With --profile, a table of where one process spends its CPU seconds follows: a build of the same
corpus, and one of the embedded Wikipedia dump (bz2 decompression, XML, wikitext cleaning), each in
a process of its own with every stage's parts timed (exclusive CPU seconds: a part's own time,
without the parts it calls). Timing the parts costs a little; the end-to-end tables are untouched.
"""
import hashlib
import multiprocessing
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from absl import flags

from tpu_electra import cli_utils
from tpu_electra.finetuning.report import markdown_table


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_float("corpus_mb", 40.0, "Corpus size in MiB (at least; whole copies of the fragment).",
                     flag_values=flag_values)
  flags.DEFINE_integer("corpus_files", 8, "Files the corpus is spread over.", flag_values=flag_values)
  flags.DEFINE_string("vocab", "runs/data/enwiki_embedded/vocab.txt", "WordPiece vocab.txt both builders use.",
                      flag_values=flag_values)
  flags.DEFINE_integer("max_seq_length", 128, "Tokens per example.", flag_values=flag_values)
  flags.DEFINE_list("workers", ["1", "2"], "Worker counts (--num_workers) to time.", flag_values=flag_values)
  flags.DEFINE_integer("rounds", 3, "Alternating rounds of every worker count.", flag_values=flag_values)
  flags.DEFINE_string("work_dir", "/tmp/tpu_electra_data_prep_bench", "Where the corpus and the outputs go.",
                      flag_values=flag_values)
  flags.DEFINE_string("reference_dir", None, "A checkout of google-research/electra: also time its builder.",
                      flag_values=flag_values)
  flags.DEFINE_integer("reference_rounds", 1, "Rounds of the reference builder per worker count.",
                       flag_values=flag_values)
  flags.DEFINE_bool("profile", False, "Also print where one process spends its CPU time, stage by stage.",
                    flag_values=flag_values)
  flags.DEFINE_string("profile_child", None, "Internal: profile one build of this --corpus spec and print its JSON.",
                      flag_values=flag_values)

STAGES = ("extract", "examples", "shards")
STAGE_LINE = re.compile(r"stage times: [0-9.]+ s after startup \((.*)\)")
COUNTS_LINE = re.compile(r"wrote (\d+) examples .* and (\d+) held-out examples")
MB = 1 << 20
# Between runs: a worker pool's fork server shuts down (a second of CPU) after its build has exited.
PAUSE_S = 3.0


def corpus_documents() -> List[List[str]]:
  """Sentences of the embedded fragment's articles, split as data_prep.build splits them."""
  from data_prep import corpus_readers  # pylint: disable=g-import-not-at-top
  from data_prep import embedded  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  from data_prep import segment  # pylint: disable=g-import-not-at-top
  documents = [segment.split_document(d.paragraphs) for d in corpus_readers.read_wikipedia_dump(embedded.fetch())]
  return [d for d in documents if d]


def make_corpus(directory: str, min_mb: float, num_files: int) -> int:
  """Writes the corpus (see the module docstring) unless it is there; returns its size in bytes."""
  marker = directory.rstrip("/") + ".complete"  # Beside it: the reference builder reads every file inside.
  if os.path.exists(marker):
    with open(marker) as f:
      return int(f.read())
  shutil.rmtree(directory, ignore_errors=True)
  os.makedirs(directory)
  documents = corpus_documents()
  texts: List[bytes] = []
  total = copy = 0
  while total < min_mb * MB:
    for sentences in documents:
      turn = copy % len(sentences)
      texts.append(("\n".join(sentences[turn:] + sentences[:turn]) + "\n\n").encode("utf-8"))
      total += len(texts[-1])
    copy += 1
  per_file = total / num_files
  written = 0
  for index in range(num_files):
    with open(os.path.join(directory, f"wiki-{index:02d}.txt"), "wb") as f:
      while texts and (written < per_file * (index + 1) or index == num_files - 1):
        f.write(texts[0])
        written += len(texts.pop(0))
  with open(marker, "w") as f:
    f.write(str(total))
  return total


def _timed(command: List[str], cwd: Optional[str] = None) -> Dict:
  """Runs `command`: its wall seconds, CPU seconds (user + system, of the processes it waited for) and stderr.

  The wall time ends when the command's process exits, as a shell sees it; the log goes to a file,
  not a pipe, so that a worker pool's fork server, which outlives it by its own shutdown, is not waited for.
  """
  with tempfile.TemporaryFile("w+") as log:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    returncode = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True).wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.seek(0)
    output = log.read()
  if returncode:
    raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  return {"wall": wall, "cpu": cpu, "stderr": output}


def run_ours(flag_values: flags.FlagValues, corpus_dir: str, output_dir: str, workers: int) -> Dict[str, float]:
  """One `python -m data_prep.build` process: wall and CPU seconds, its stage seconds and example count."""
  shutil.rmtree(output_dir, ignore_errors=True)
  command = [sys.executable, "-m", "data_prep.build", f"--corpus=text:{corpus_dir}", f"--vocab={flag_values.vocab}",
             f"--max_seq_length={flag_values.max_seq_length}", f"--num_workers={workers}", f"--output_dir={output_dir}"]
  done = _timed(command)
  stages = STAGE_LINE.search(done["stderr"])
  counts = COUNTS_LINE.search(done["stderr"])
  if not stages or not counts:
    raise RuntimeError(f"no stage times / counts in the log of {' '.join(command)}")
  examples = float(int(counts.group(1)) + int(counts.group(2)))
  result = {"wall": done["wall"], "cpu": done["cpu"], "examples_written": examples}
  for item in stages.group(1).split(", "):
    name, seconds, _ = item.split(" ")
    result[name] = float(seconds)
  result["startup"] = result["wall"] - sum(result[s] for s in STAGES) - result.get("vocab", 0.0)
  return result


def run_reference(flag_values: flags.FlagValues, corpus_dir: str, output_dir: str, workers: int) -> Dict[str, float]:
  shutil.rmtree(output_dir, ignore_errors=True)
  command = [sys.executable, "build_pretraining_dataset.py", f"--corpus-dir={corpus_dir}",
             f"--vocab-file={os.path.abspath(flag_values.vocab)}", f"--output-dir={output_dir}",
             f"--max-seq-length={flag_values.max_seq_length}", f"--num-processes={workers}"]
  done = _timed(command, cwd=flag_values.reference_dir)
  return {"wall": done["wall"], "cpu": done["cpu"]}


def output_digest(directory: str) -> str:
  digest = hashlib.sha256()
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      with open(path, "rb") as f:
        digest.update(name.encode() + hashlib.sha256(f.read()).digest())
  return digest.hexdigest()


def median(runs: Sequence[Dict[str, float]], key: str) -> float:
  return statistics.median(r[key] for r in runs)


def machine() -> str:
  model = ""
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
  return f"{model or platform.processor()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _spin(seconds_of_work: int) -> float:
  """Pure-Python, dict-heavy work (like a tokenizer's cold path): its wall seconds."""
  start = time.perf_counter()
  table = {}
  for i in range(seconds_of_work * 15_000_000):
    table[i & 65535] = i
  return time.perf_counter() - start


def machine_ceiling(workers: int, rounds: int = 3) -> float:
  """How much faster `workers` processes do `workers` times the work of one, on this machine now.

  The peer of the worker scaling: what the cores give to independent CPU-bound processes (shared
  cores, frequency limits and other jobs show up here as they do in the builds).
  """
  context = multiprocessing.get_context("forkserver")
  ratios = []
  with context.Pool(workers) as pool:
    pool.map(_spin, [0] * workers)
    for _ in range(rounds):
      one = _spin(1)
      ratios.append(workers * one / max(pool.map(_spin, [1] * workers)))
  return statistics.median(ratios)


def end_to_end_table(ours: Dict[int, List[Dict]], reference: Dict[int, List[Dict]], corpus_bytes: int,
                     ceilings: Dict[int, float]) -> str:
  """Wall time, MB/s and ratios; CPU seconds only for one process (pool workers are not the build's children)."""
  rows = []
  mib = corpus_bytes / MB
  one = median(ours[min(ours)], "wall")

  def cpu(runs, workers):
    return f"{median(runs, 'cpu'):.1f}" if workers == 1 else "-"

  for workers, runs in sorted(ours.items()):
    wall = median(runs, "wall")
    peer = ""
    if reference.get(workers):
      peer = f"{median(reference[workers], 'wall') / wall:.1f}x"
      if workers == 1:
        peer += f" ({median(reference[workers], 'cpu') / median(runs, 'cpu'):.1f}x in CPU s)"
    ceiling = f" (machine {ceilings[workers]:.2f}x)" if workers in ceilings else ""
    rows.append(["data_prep.build", workers, f"{wall:.1f}", cpu(runs, workers), f"{mib / wall:.2f}",
                 f"{one / wall:.2f}x{ceiling}", peer])
  for workers, runs in sorted(reference.items()):
    wall = median(runs, "wall")
    rows.append(["google-research/electra build_pretraining_dataset.py", workers, f"{wall:.1f}", cpu(runs, workers),
                 f"{mib / wall:.2f}", "", "1.0x"])
  return markdown_table(
      ["builder", "workers", "end-to-end s", "CPU s", "MB/s end to end", "vs 1 worker", "vs electra (same workers)"],
      rows)


def stage_table(ours: Dict[int, List[Dict]], corpus_bytes: int) -> str:
  rows = []
  mib = corpus_bytes / MB
  for workers, runs in sorted(ours.items()):
    examples = median(runs, "examples_written")
    extract, write, shards = (median(runs, s) for s in STAGES)
    stages = extract + write + shards
    rows.append([workers, f"{median(runs, 'startup'):.1f}", f"{extract:.2f} ({mib / extract:.0f})",
                 f"{write:.2f} ({mib / write:.1f} / {examples / write:,.0f})",
                 f"{shards:.2f} ({examples / shards:,.0f})",
                 f"{stages:.2f} ({mib / stages:.1f})"])
  return markdown_table(
      ["workers", "startup s", "extract s (MB/s)", "examples s (MB/s / examples/s)", "shards s (examples/s)",
       "all stages s (MB/s)"], rows)


# Profile: the parts timed, as (label, module, attribute); class attributes as "Class.method". Each is
# counted in the stage that calls it.
PROFILED = (
    ("read + decode (text files)", "data_prep.corpus_readers", "read_text_documents"),
    ("bz2 decompression", "data_prep.corpus_readers", "_bz2_chunks"),
    ("XML pull parsing (dumps)", "data_prep.corpus_readers", "read_wikipedia_dump"),
    ("wikitext cleaning (mwparserfromhell)", "data_prep.wikitext", "to_paragraphs"),
    ("sentence splitting", "data_prep.segment", "split_document"),
    ("held-out bucket (sha256 per document)", "data_prep.extract", "bucket_of_bytes"),
    ("tokenization (data_prep.wordpiece)", "data_prep.wordpiece", "WordpieceTokenizer.tokenize_text"),
    ("packing: plan (per sentence)", "data_prep.examples", "plan_documents"),
    ("packing: assemble (numpy)", "data_prep.examples", "assemble"),
    ("serialization (tf.train.Example)", "data_prep.tfexample", "serialize_batch"),
    ("read unit records", "data_prep.shards", "read_records"),
    ("TFRecord framing (crc32c)", "data_prep.shards", "_tfrecord_bytes"),
)
OTHER = "other (Python glue, file reads and writes)"


class _Clock:
  """Exclusive CPU seconds of nested calls (and of generators, each step): a call's own time, less its callees'."""

  def __init__(self):
    self.exclusive: Dict[str, float] = {}
    self.stage = "startup"
    self._stack: List[List] = []

  def enter(self, label: str) -> None:
    self._stack.append([f"{self.stage}:{label}", time.process_time(), 0.0])

  def leave(self) -> None:
    name, start, inner = self._stack.pop()
    spent = time.process_time() - start
    self.exclusive[name] = self.exclusive.get(name, 0.0) + spent - inner
    if self._stack:
      self._stack[-1][2] += spent

  def wrap(self, name: str, fn):
    import functools  # pylint: disable=g-import-not-at-top
    import inspect  # pylint: disable=g-import-not-at-top
    clock = self
    if inspect.isgeneratorfunction(fn):
      @functools.wraps(fn)
      def generator(*args, **kwargs):
        iterator = fn(*args, **kwargs)
        while True:
          clock.enter(name)
          try:
            value = next(iterator)
          except StopIteration:
            return
          finally:
            clock.leave()
          yield value
      return generator

    @functools.wraps(fn)
    def call(*args, **kwargs):
      clock.enter(name)
      try:
        return fn(*args, **kwargs)
      finally:
        clock.leave()
    return call


def profile_child(corpus: str, vocab: str, max_seq_length: int, work_dir: str) -> None:
  """One build of `corpus` in this process with its parts timed; prints a JSON line of CPU seconds."""
  import importlib  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  start = time.process_time()
  from data_prep import build  # pylint: disable=g-import-not-at-top
  from data_prep import executor as executor_lib  # pylint: disable=g-import-not-at-top
  imports = time.process_time() - start
  clock = _Clock()
  for label, module_name, attribute in PROFILED:
    owner = importlib.import_module(module_name)
    if "." in attribute:
      owner_name, attribute = attribute.split(".")
      owner = getattr(owner, owner_name)
    setattr(owner, attribute, clock.wrap(label, getattr(owner, attribute)))
  run_stage = executor_lib.run_stage

  def timed_stage(stage, *args, **kwargs):
    clock.stage = stage
    clock.enter(OTHER)
    try:
      return run_stage(stage, *args, **kwargs)
    finally:
      clock.leave()
      clock.stage = "manifest"

  executor_lib.run_stage = timed_stage
  output_dir = os.path.join(work_dir, "profile-out")
  shutil.rmtree(output_dir, ignore_errors=True)
  config = build.BuildConfig(corpus=(corpus,), vocab=vocab, do_lower_case=True, max_seq_length=max_seq_length,
                             output_dir=output_dir)
  timings: Dict[str, float] = {}
  begin = time.process_time()
  build.build(config, timings)
  total = time.process_time() - begin
  with open(os.path.join(output_dir, "manifest.json")) as f:
    manifest = json.load(f)
  print("PROFILE " + json.dumps({"imports": imports, "total": total, "parts": clock.exclusive,
                                 "examples": manifest["num_examples"] + manifest["num_eval_examples"],
                                 "tensorflow_imported": "tensorflow" in sys.modules}))


def run_profile(flag_values: flags.FlagValues, corpus: str) -> Dict:
  import json  # pylint: disable=g-import-not-at-top
  command = [sys.executable, "-m", "benchmarks.data_prep", f"--profile_child={corpus}", f"--vocab={flag_values.vocab}",
             f"--max_seq_length={flag_values.max_seq_length}", f"--work_dir={flag_values.work_dir}"]
  done = _timed(command)
  line = next(l for l in done["stderr"].splitlines() if l.startswith("PROFILE "))
  return {**json.loads(line[len("PROFILE "):]), "wall": done["wall"], "cpu": done["cpu"]}


def profile_table(profile: Dict, text_bytes: int) -> str:
  """CPU seconds per part, stage by stage; MB/s of the corpus text (MiB) at that part's speed."""
  rows = [["startup", "interpreter, imports and exit", f"{profile['cpu'] - profile['total']:.2f}",
           f"{100 * (profile['cpu'] - profile['total']) / profile['cpu']:.0f}%", ""]]
  for stage in STAGES:
    parts = {k.split(":", 1)[1]: v for k, v in profile["parts"].items() if k.startswith(stage + ":")}
    for label, seconds in sorted(parts.items(), key=lambda kv: (kv[0] == OTHER, -kv[1])):
      if seconds < 0.005:
        continue
      rows.append([stage, label, f"{seconds:.2f}", f"{100 * seconds / profile['cpu']:.0f}%",
                   f"{text_bytes / MB / seconds:.0f}"])
  rest = profile["total"] - sum(profile["parts"].values())
  rows.append(["other", "planning, manifest, removing _work", f"{rest:.2f}", f"{100 * rest / profile['cpu']:.0f}%", ""])
  rows.append(["all", f"process total ({profile['examples']:,} examples; TensorFlow imported: "
               f"{'yes' if profile['tensorflow_imported'] else 'no'})", f"{profile['cpu']:.2f}", "100%",
               f"{text_bytes / MB / profile['cpu']:.1f}"])
  return markdown_table(["stage", "part", "CPU s", "share", "MB/s (text)"], rows)


def run(flag_values: flags.FlagValues) -> int:
  if flag_values.profile_child:
    profile_child(flag_values.profile_child, flag_values.vocab, flag_values.max_seq_length, flag_values.work_dir)
    return 0
  corpus_dir = os.path.join(flag_values.work_dir, f"corpus-{flag_values.corpus_mb:g}mb-{flag_values.corpus_files}files")
  corpus_bytes = make_corpus(corpus_dir, flag_values.corpus_mb, flag_values.corpus_files)
  workers = [int(w) for w in flag_values.workers]
  load_before = os.getloadavg()
  ours: Dict[int, List[Dict]] = {w: [] for w in workers}
  digests: Dict[int, set] = {w: set() for w in workers}
  for _ in range(flag_values.rounds):
    for w in workers:
      output_dir = os.path.join(flag_values.work_dir, f"out-{w}")
      ours[w].append(run_ours(flag_values, corpus_dir, output_dir, w))
      digests[w].add(output_digest(output_dir))
      time.sleep(PAUSE_S)
  reference: Dict[int, List[Dict]] = {}
  if flag_values.reference_dir:
    for _ in range(flag_values.reference_rounds):
      for w in workers:
        reference.setdefault(w, []).append(run_reference(flag_values, corpus_dir,
                                                         os.path.join(flag_values.work_dir, f"ref-{w}"), w))
  ceilings = {w: machine_ceiling(w) for w in workers if w > 1}
  load_after = os.getloadavg()
  identical = len(set.union(*digests.values())) == 1
  print(f"corpus: {corpus_bytes / MB:.1f} MiB of text in {flag_values.corpus_files} files ({corpus_dir}); "
        f"vocab {flag_values.vocab}; max_seq_length {flag_values.max_seq_length}; "
        f"medians of {flag_values.rounds} rounds ({flag_values.reference_rounds} for the reference); MB = MiB")
  print(f"machine: {machine()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
  print(f"outputs byte-identical across rounds and worker counts {workers}: {'yes' if identical else 'NO'}")
  print()
  print(end_to_end_table(ours, reference, corpus_bytes, ceilings))
  if ceilings:
    print("\n(machine Nx: N processes of pure-Python work against one, timed in this run: the most N workers "
          "can give here)")
  print()
  print(stage_table(ours, corpus_bytes))
  if flag_values.profile:
    from data_prep import corpus_readers  # pylint: disable=g-import-not-at-top
    from data_prep import embedded  # pylint: disable=g-import-not-at-top
    dump = embedded.fetch()
    dump_text = sum(len("\n".join(d.paragraphs).encode("utf-8")) for d in corpus_readers.read_wikipedia_dump(dump))
    for title, corpus, text_bytes in (
        (f"the {corpus_bytes / MB:.1f} MiB text corpus above", f"text:{corpus_dir}", corpus_bytes),
        (f"the embedded Wikipedia dump ({os.path.getsize(dump) / MB:.1f} MiB of bz2, {dump_text / MB:.1f} MiB of "
         "article text)", "wikipedia:embedded", dump_text)):
      print()
      print(f"Where one process (--num_workers=1) spends its CPU seconds on {title}:")
      print()
      print(profile_table(run_profile(flag_values, corpus), text_bytes))
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.data_prep")
