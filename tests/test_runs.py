"""tpu_electra.runs: run.json written by every run, read by whatever loads one; version-1 records still read."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tpu_electra import runs
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import electra

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)
PROBE = {"input_word_ids": tf.constant([[2, 10, 11, 12, 3, 0]]), "input_mask": tf.constant([[1, 1, 1, 1, 1, 0]]),
         "input_type_ids": tf.zeros([1, 6], tf.int32)}


def test_round_trip_records_the_version_and_library_versions(tmp_path):
  path = runs.write_record(str(tmp_path), {"kind": runs.PRETRAINING, "value": [1, 2]})
  record = runs.read_record(str(tmp_path))
  assert record["value"] == [1, 2] and record["versions"]["tensorflow"] and path.endswith("run.json")
  assert record["version"] == runs.VERSION == 2
  assert runs.read_record(str(tmp_path / "none")) is None
  with pytest.raises(ValueError, match="a run record's kind is 'pretraining' or 'finetuning', not 'test'"):
    runs.write_record(str(tmp_path), {"kind": "test"})


@pytest.mark.parametrize("text,message", [
    ('{"kind": "pretraining", ', "is not valid JSON"),
    ('{"kind": "pretraining", "version": 3}', "is run.json version 3, newer than this tpu_electra reads (2); upgrade "
                                               "tpu_electra to the version that wrote it"),
    ('{"kind": "pretraining", "version": "2"}', "has version '2', which no tpu_electra wrote (this one writes 2)"),
    ('{"kind": "pretraining", "format_version": 99}', "has format_version 99, which no tpu_electra wrote"),
])
def test_an_unreadable_or_newer_run_json_is_a_one_line_error_naming_it(tmp_path, text, message):
  path = tmp_path / "run.json"
  path.write_text(text)
  with pytest.raises(runs.RunError) as error:
    runs.read_record(str(tmp_path))
  assert str(path) in str(error.value) and message in str(error.value) and "\n" not in str(error.value)
  # Whatever loads the run says the same.
  tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "ckpt-1"))
  with open(tmp_path / "checkpoint", "w") as f:
    f.write('model_checkpoint_path: "ckpt-1"\n')
  with pytest.raises(runs.RunError, match=re.escape(message)):
    runs.read_run(str(tmp_path))


def test_a_model_dir_without_run_json_is_refused_in_one_line(tmp_path):
  model_dir = str(tmp_path / "bare")
  runs.save_pretraining_dir(electra.Electra(CONFIG), model_dir, step=5)
  os.remove(runs.path_of(model_dir))
  with pytest.raises(runs.RunError, match=f"no run.json in {re.escape(repr(model_dir))}: cannot tell what wrote"):
    runs.read_run(model_dir)


def _as_version_1(path, **renamed):
  """Rewrites a run.json as tpu_electra wrote it before VERSION 2: format_version 1, no version."""
  with open(path) as f:
    record = json.load(f)
  del record["version"]
  record["format_version"] = 1
  for new, old in renamed.items():
    record[old] = record.pop(new)
  with open(path, "w") as f:
    json.dump(record, f)


def test_a_version_1_pretraining_run_still_loads(token_data_dir, tmp_path):
  tf.keras.utils.set_random_seed(4)
  objective = electra.Electra(CONFIG, generator_fraction=0.5, rtd_weight=20.0)
  expected = objective.encoder(PROBE, training=False)["sequence_output"].numpy()
  model_dir = str(tmp_path / "old")
  runs.save_pretraining_dir(objective, model_dir, data_dir=token_data_dir, step=5, seed=3, batch_size=8,
                            seq_length=32, masking={"mask_rate": 0.3})
  _as_version_1(runs.path_of(model_dir))
  run = runs.read_run(model_dir)
  assert run.info["version"] == 2 and "format_version" not in run.info
  assert run.objective == "electra" and run.checkpoint.endswith("ckpt-5")
  assert run.arguments["generator_fraction"] == 0.5 and run.arguments["rtd_weight"] == 20.0
  assert run.encoder_config() == CONFIG and run.resolved_data_dir() == token_data_dir
  assert (run.setting("seed"), run.setting("batch_size"), run.setting("seq_length")) == (3, 8, 32)
  assert run.setting("masking") == {"mask_rate": 0.3}
  encoder = runs.load_encoder(run)
  np.testing.assert_allclose(encoder(PROBE, training=False)["sequence_output"].numpy(), expected, atol=1e-6)
  assert isinstance(runs.load_objective(run), electra.Electra)
  assert runs.load_tokenizer(run).vocab_size == 60


def test_a_version_1_finetuning_record_reads_with_todays_spellings(tmp_path):
  # Fine-tuning spelled its base seed "SEED" (pretraining: "seed") before VERSION 2.
  runs.write_record(str(tmp_path), runs.finetuning_record(task="sst-2", seed=4, seeds=[4, 5], init_checkpoint="x",
                                                          encoder_config=CONFIG, max_seq_length=32))
  _as_version_1(runs.path_of(str(tmp_path)), seed="SEED")
  with open(runs.path_of(str(tmp_path))) as f:
    assert json.load(f)["SEED"] == 4
  record = runs.read_record(str(tmp_path))
  assert record["kind"] == runs.FINETUNING and record["seed"] == 4 and "SEED" not in record
  assert record["seeds"] == [4, 5] and record["encoder_config"]["hidden_size"] == 16


def test_a_pretraining_run_records_the_encoder_it_built_and_loads_without_gin(pretrain_smoke_config, tmp_path):
  pretrain_smoke_config("ale")
  model_dir = str(tmp_path / "ale_model")
  run = runs.read_run(model_dir)
  # ALE forces cross-layer sharing whatever EncoderConfig says: the record has the encoder it built.
  assert run.objective == "ale" and run.encoder_config().share_layers
  assert run.info["objective"]["class"] == "Ale" and run.info["precision"] == "float32"
  encoder = runs.load_encoder(run)
  assert len({id(layer) for layer in encoder.transformer_layers}) == 1
