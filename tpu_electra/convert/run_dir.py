"""A converted source as a tpu_electra run directory: the checkpoint items, vocab.txt and run.json."""
import os
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from tpu_electra import fileio
from tpu_electra.convert.common import KINDS, VOCAB_NAME, ConversionError, Source
from tpu_electra.convert.electra_tf1 import read_electra_tf1
from tpu_electra.convert.huggingface import read_huggingface
from tpu_electra.convert.mapping import Converted, convert_tensors
from tpu_electra.convert.tf_models import read_tf_models

def parse_source(text: str) -> Tuple[str, str]:
  kind, sep, path = (text or "").partition(":")
  if not sep or not path:
    raise ConversionError(f"--source={text!r}: expected KIND:PATH with KIND one of {list(KINDS)}")
  if kind not in KINDS:
    raise ConversionError(f"unknown source kind {kind!r}; expected one of {list(KINDS)}")
  return kind, os.path.expanduser(path)


def convert_source(source: str, generator: Optional[str] = None) -> Tuple[Converted, Source]:
  """Reads and converts KIND:PATH (and an optional huggingface:PATH generator)."""
  kind, path = parse_source(source)
  if kind == "huggingface":
    read = read_huggingface(path)
    gen = None
    if generator:
      gen_kind, gen_path = parse_source(generator)
      if gen_kind != "huggingface":
        raise ConversionError(f"--generator must be huggingface:PATH, got {gen_kind}")
      gen_read = read_huggingface(gen_path)
      gen = (gen_read.config, gen_read.tensors, gen_path)
    converted = convert_tensors(read.config, read.tensors, path, read.architecture, gen)
    if gen is not None:
      read.architecture = f"{read.architecture}+{gen_read.architecture}"
    return converted, read
  if generator:
    raise ConversionError(f"--generator is for huggingface sources; a {kind} checkpoint holds its generator")
  if kind == "electra":
    read, gen = read_electra_tf1(path)
    converted = convert_tensors(read.config, read.tensors, path, read.architecture, gen)
    if gen is not None:
      read.architecture = "ElectraForPreTraining+ElectraForMaskedLM"
    return converted, read
  read, gen = read_tf_models(path)
  converted = convert_tensors(read.config, read.tensors, path, read.config["architectures"][0], gen)
  return converted, read


def _objective_record(converted: Converted) -> Dict[str, Any]:
  """run.json's objective entry, also for an objective the source has only part of: its registry name,
  class, resolved arguments."""
  from tpu_electra import objectives  # pylint: disable=g-import-not-at-top
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top
  if isinstance(converted.model, objectives.PretrainingObjective):
    return runs.objective_record(type(converted.model), converted.model.arguments)
  cls = objectives.get(converted.objective)
  return runs.objective_record(cls, cls.resolve_arguments(converted.objective_arguments))


def run_record(converted: Converted, source: Source, vocab_size: int) -> Dict[str, Any]:
  """run.json of a converted run (tpu_electra.runs.converted_record): a pretraining run that carries its
  vocab, plus `source` (where it came from) and `conversion` (what the checkpoint holds)."""
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top
  items = ["encoder"] + (["model"] if converted.model is not None else [])
  return runs.converted_record(
      objective=_objective_record(converted), encoder_config=converted.encoder_config,
      vocab={"vocab_file": VOCAB_NAME, "vocab_type": source.vocab.vocab_type,
             "do_lower_case": source.vocab.do_lower_case, "vocab_size": vocab_size},
      source=source.record(),
      conversion={
          "checkpoint_items": items,
          "converted": list(converted.converted),
          # Parts of the recorded objective the source does not have (initialized afresh when it is built).
          "absent": list(converted.absent),
          "unused_tensors": list(converted.unused_tensors),
          "vocab_origin": os.path.basename(source.vocab.origin),
          "notes": list(source.notes),
      })


def write_run_dir(converted: Converted, source: Source, output_dir: str, overwrite: bool = False,
                  tmp_dir: Optional[str] = None) -> str:
  """Writes the converted model as a run directory (local or gs://): into a temporary sibling
  (`tmp_dir`, created here when not given) renamed into place at the end, so a failed conversion
  never leaves a half-written run behind."""
  from tpu_electra import runs  # pylint: disable=g-import-not-at-top

  fileio.check_new_output_dir(output_dir, overwrite)
  tokens = list(source.vocab.tokens)
  rows = converted.encoder_config.vocab_size
  if len(tokens) > rows:
    raise ConversionError(f"vocab {source.vocab.origin} has {len(tokens)} tokens but the word embeddings have "
                          f"{rows} rows")
  if len(tokens) < rows:
    # Embedding rows past the vocab (padded to a multiple of 8 or 128) get placeholder tokens, so the
    # vocab's size is the table's, as a tokenizer loaded with the run requires.
    tokens += [f"[unused_row_{i}]" for i in range(len(tokens), rows)]
    source.notes.append(f"vocab padded from {len(source.vocab.tokens)} to {rows} tokens (the embedding rows) with "
                        "[unused_row_N] placeholders")
  output_dir = output_dir.rstrip("/")
  tmp_dir = tmp_dir or fileio.temporary_sibling(output_dir)
  try:
    fileio.make_output_dir(tmp_dir, "--output_dir")
    items = {"encoder": converted.encoder}
    if converted.model is not None:
      items["model"] = converted.model
    checkpoint = tf.train.Checkpoint(**items)
    tf.train.CheckpointManager(checkpoint, tmp_dir, max_to_keep=1).save(checkpoint_number=0)
    fileio.write_atomic(fileio.join(tmp_dir, VOCAB_NAME), "".join(token + "\n" for token in tokens))
    runs.write_record(tmp_dir, run_record(converted, source, rows))
    fileio.move_into_place(tmp_dir, output_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
  return output_dir


def convert(source: str, output_dir: str, generator: Optional[str] = None, overwrite: bool = False) -> str:
  """Converts KIND:PATH into the run directory `output_dir`; returns its path."""
  fileio.check_new_output_dir(output_dir, overwrite)
  # The output's temporary sibling is created first: an unwritable --output_dir fails before any work.
  tmp_dir = fileio.temporary_sibling(output_dir)
  try:
    fileio.make_output_dir(tmp_dir, "--output_dir")
    converted, read = convert_source(source, generator)
    return write_run_dir(converted, read, output_dir, overwrite=overwrite, tmp_dir=tmp_dir)
  finally:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
