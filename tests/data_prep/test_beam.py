"""The Beam runner: the same stage functions on Beam's DirectRunner give the same bytes as the local runner."""
import dataclasses

import pytest

beam = pytest.importorskip(
    "apache_beam", reason="apache_beam is not installed; the Beam runner is the optional extra: pip install -e '.[beam]'")

from data_prep import beam_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from data_prep import build  # pylint: disable=g-import-not-at-top,wrong-import-position
from data_prep import corpus_readers  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_direct_runner_build_and_held_out_split_are_byte_identical_to_the_local_build(reference_build, tmp_path,
                                                                                      corpora):
  config, manifest, files = reference_build
  assert manifest.eval_shards and set(manifest.shard_info) == set(manifest.all_shards())
  beam_config = dataclasses.replace(config, output_dir=str(tmp_path / "beam"), runner="beam")
  assert build.build(beam_config) == manifest
  assert corpora.output_files(beam_config.output_dir) == files


def test_errors_inside_the_pipeline_keep_their_type_and_name_the_file(tmp_path, text_corpus):
  bad = tmp_path / "bad.txt"
  bad.write_bytes(b"caf\xe9\n")
  config = build.BuildConfig(corpus=(f"text:{bad}",), vocab="wordpiece:100", do_lower_case=True, max_seq_length=32,
                             output_dir=str(tmp_path / "out"), runner="beam")
  with pytest.raises(corpus_readers.SourceError, match="bad.txt is not UTF-8 text"):
    build.build(config)


def test_pipeline_options_default_to_the_local_runner_with_the_worker_count():
  config = build.BuildConfig(corpus=(), vocab="wordpiece:100", do_lower_case=True, max_seq_length=32,
                             output_dir="/tmp/x", num_workers=3)
  options = beam_pipeline.pipeline_options(config).get_all_options()
  assert (options["runner"], options["direct_num_workers"], options["direct_running_mode"]) == (
      beam_pipeline.LOCAL_RUNNER, 3, "multi_processing")
  dataflow = dataclasses.replace(config, beam_options="--runner=DataflowRunner --project=p --region=r")
  options = beam_pipeline.pipeline_options(dataflow).get_all_options()
  assert (options["runner"], options["project"], options["region"]) == ("DataflowRunner", "p", "r")
