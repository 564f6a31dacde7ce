r"""The build as an Apache Beam pipeline, for corpora that outgrow one machine (`--runner=beam`).

Needs the optional extra: `pip install -e '.[beam]'`. The pipeline runs exactly the stage functions
of the local runner (data_prep.pipeline: extract_part, learn_vocab, write_unit, write_shard,
finish), with Beam spreading the tasks, so the vocab, the examples and the shards are the same
bytes as a local build with the same flags; only the engine differs.

  parts ─Reshuffle─▶ extract_part ─ToList─▶ learn_vocab (one worker; WordPiece probes in turn)
                                         └─▶ unit tasks ─Reshuffle─▶ write_unit ─ToList─▶ plan shards
                                             ─Reshuffle─▶ write_shard ─ToList─▶ finish (manifest)

(training and held-out shards alike; the held-out split is a function of each document's text,
see data_prep.pipeline, so it is the same here as on the local runner).

Locally the DirectRunner's engine runs it (with --num_workers processes). On Google Cloud, Dataflow:

  python -m data_prep.build --runner=beam --corpus=wikipedia:gs://B/raw/enwiki-*-multistream.xml.bz2 \
    --corpus=openwebtext:gs://B/raw/openwebtext --vocab=wordpiece:30522 --max_seq_length=128 \
    --output_dir=gs://B/data/wiki_owt \
    --beam_options="--runner=DataflowRunner --project=PROJECT --region=us-central1 \
      --temp_location=gs://B/beam/tmp --staging_location=gs://B/beam/staging --setup_file=./setup.py \
      --machine_type=n2-highmem-8 --max_num_workers=64 --experiments=use_runner_v2"

Submitting to Dataflow needs Beam's Google Cloud clients on the launching machine:
`pip install 'apache-beam[gcp,tfrecord]==2.77.0'` (it resolves beside this project's pinned set;
the `[beam]` extra alone has what the DirectRunner needs). All reading and writing goes through
tf.io.gfile, so gs:// paths work the same on every runner.

Inputs, the output dir and the work dir must be on storage every worker reads (gs://). The
workers need this package and TensorFlow: `--setup_file=./setup.py` installs them on start; a
custom container (`--sdk_container_image`) with `pip install '.[beam]'` done starts faster. The
input parts (multistream dumps cut at bz2 stream boundaries, small files grouped) are planned on
the launching machine, which reads the stream offsets of a multistream dump once.
"""
import shlex
from typing import Dict, List, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_prep import build_config
from data_prep import extract
from data_prep import pipeline
from data_prep import sources
from tpu_electra.data import manifest as manifest_lib


# The DirectRunner's own Python engine. Named directly because "DirectRunner" first tries Prism,
# a Go binary it downloads from GitHub on first use (and falls back from when offline).
LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner"


def pipeline_options(config: build_config.BuildConfig) -> PipelineOptions:
  """--beam_options as given; without a --runner there, the local runner with --num_workers processes."""
  args = shlex.split(config.beam_options)
  if not any(a == "--runner" or a.startswith("--runner=") for a in args):
    mode = "multi_processing" if config.num_workers > 1 else "in_memory"
    args += [f"--runner={LOCAL_RUNNER}", f"--direct_num_workers={config.num_workers}", f"--direct_running_mode={mode}"]
  return PipelineOptions(args)


def _learn_vocab(summaries: List[Dict], config: build_config.BuildConfig) -> build_config.VocabInfo:
  if not sum(s["documents"] for s in summaries):
    raise build_config.BuildError(f"the corpus {list(config.corpus)} produced no documents")
  return pipeline.learn_vocab(config, summaries)


def _finish(shards: List, config: build_config.BuildConfig, settings: Dict, settings_hash: str, summaries: List[Dict],
            vocab: build_config.VocabInfo, units: List[Dict]) -> str:
  manifest = pipeline.finish(config, settings, settings_hash, summaries, vocab, units, sorted(shards))
  return (f"{manifest.num_examples} examples in {len(manifest.shards)} shards, {manifest.num_eval_examples} held out "
          f"in {len(manifest.eval_shards)}")


def build_pipeline(root: beam.Pipeline, config: build_config.BuildConfig, settings: Dict, settings_hash: str,
                   parts: Sequence[sources.Part]) -> None:
  summaries = (
      root
      | "Parts" >> beam.Create(extract.extract_tasks(parts, config))
      | "SpreadParts" >> beam.Reshuffle()
      | "Extract" >> beam.Map(extract.extract_part)
      | "AllParts" >> beam.combiners.ToList())
  vocab = summaries | "Vocab" >> beam.Map(_learn_vocab, config)
  units = (
      summaries
      | "PlanUnits" >> beam.FlatMap(lambda s, v: pipeline.unit_tasks(config, s, v), beam.pvalue.AsSingleton(vocab))
      | "SpreadUnits" >> beam.Reshuffle()
      | "Examples" >> beam.Map(pipeline.write_unit)
      | "AllUnits" >> beam.combiners.ToList())
  shards = (
      units
      | "PlanShards" >> beam.FlatMap(lambda u: pipeline.shard_tasks(config, u))
      | "SpreadShards" >> beam.Reshuffle()
      | "Shards" >> beam.Map(pipeline.ShardWriter(config.output_dir))
      | "AllShards" >> beam.combiners.ToList())
  _ = shards | "Manifest" >> beam.Map(
      _finish, config, settings, settings_hash, beam.pvalue.AsSingleton(summaries), beam.pvalue.AsSingleton(vocab),
      beam.pvalue.AsSingleton(units))


def run(config: build_config.BuildConfig, settings: Dict, settings_hash: str,
        parts: Sequence[sources.Part]) -> manifest_lib.Manifest:
  """Runs the pipeline to completion and returns the manifest it wrote."""
  with beam.Pipeline(options=pipeline_options(config)) as root:
    build_pipeline(root, config, settings, settings_hash, parts)
  return manifest_lib.read_manifest(config.output_dir)
