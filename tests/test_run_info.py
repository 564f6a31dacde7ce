"""run.json: written by every pretraining run, read by whatever loads the run; old runs upgrade in one command."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tpu_electra import pretrain
from tpu_electra import run_info
from tpu_electra.finetuning import pretrained
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import electra

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)
PROBE = {"input_word_ids": tf.constant([[2, 10, 11, 12, 3, 0]]), "input_mask": tf.constant([[1, 1, 1, 1, 1, 0]]),
         "input_type_ids": tf.zeros([1, 6], tf.int32)}
# operative_config.gin as gin writes it, trimmed to what an old run's loader read (the layout of
# save_pretraining_dir before run.json).
OLD_OPERATIVE_CONFIG = """# Macros:
DATA_DIR = {data_dir!r}
VOCAB_SIZE = None

# Parameters for Electra:
Electra.generator_fraction = 0.5
Electra.rtd_weight = 20.0

# Parameters for EncoderConfig:
EncoderConfig.embedding_size = 8
EncoderConfig.hidden_size = 16
EncoderConfig.intermediate_size = 32
EncoderConfig.max_position_embeddings = 32
EncoderConfig.num_heads = 2
EncoderConfig.num_layers = 2
EncoderConfig.vocab_size = %VOCAB_SIZE

# Parameters for pretrain:
pretrain.batch_size = 8
pretrain.data_dir = %DATA_DIR
pretrain.objective = @Electra
pretrain.seed = 3
pretrain.seq_length = 32
"""


def test_round_trip_records_versions_and_refuses_other_formats(tmp_path):
  path = run_info.write_run_info(str(tmp_path), {"kind": "test", "value": [1, 2]})
  record = run_info.read_run_info(str(tmp_path))
  assert record["value"] == [1, 2] and record["versions"]["tensorflow"] and path.endswith("run.json")
  assert run_info.read_run_info(str(tmp_path / "none")) is None
  with open(path, "w") as f:
    json.dump({"format_version": 99}, f)
  with pytest.raises(run_info.RunInfoError, match="format_version 99"):
    run_info.read_run_info(str(tmp_path))


@pytest.fixture
def old_electra_dir(token_data_dir, tmp_path):
  """A model dir as runs wrote it before run.json: checkpoint items model/encoder and operative_config.gin."""
  tf.keras.utils.set_random_seed(4)
  objective = electra.Electra(CONFIG, generator_fraction=0.5, rtd_weight=20.0)
  expected = objective.encoder(PROBE, training=False)["sequence_output"].numpy()
  model_dir = str(tmp_path / "old")
  pretrained.save_pretraining_dir(objective, model_dir, step=5)
  os.remove(run_info.path_of(model_dir))
  with open(os.path.join(model_dir, "operative_config.gin"), "w") as f:
    f.write(OLD_OPERATIVE_CONFIG.format(data_dir=token_data_dir))
  return model_dir, expected


def test_an_old_run_fails_in_one_line_then_upgrades_and_loads(old_electra_dir, token_data_dir, capsys):
  model_dir, expected = old_electra_dir
  with pytest.raises(pretrained.PretrainedModelError) as error:
    pretrained.read_run(model_dir)
  assert f"python -m tpu_electra.pretrain --upgrade_run_dir={model_dir}" in str(error.value)
  assert "\n" not in str(error.value)

  assert pretrain.cli(["pretrain", f"--upgrade_run_dir={model_dir}"]) == 0
  assert "run.json" in capsys.readouterr().out
  run = pretrained.read_run(model_dir)
  assert run.objective == "electra" and run.checkpoint.endswith("ckpt-5")
  assert run.arguments["generator_fraction"] == 0.5 and run.arguments["rtd_weight"] == 20.0
  assert run.encoder_config() == CONFIG
  assert (run.setting("seed"), run.setting("batch_size"), run.setting("seq_length")) == (3, 8, 32)
  assert run.info["data"]["data_dir"] == token_data_dir and run.info["data"]["vocab_size"] == 60
  encoder = pretrained.load_encoder(run)
  np.testing.assert_allclose(encoder(PROBE, training=False)["sequence_output"].numpy(), expected, atol=1e-6)
  assert isinstance(pretrained.load_objective(run), electra.Electra)
  # Upgrading twice is refused: run.json is never overwritten.
  assert pretrain.cli(["pretrain", f"--upgrade_run_dir={model_dir}"]) == 1


def test_a_pretraining_run_records_the_encoder_it_built_and_loads_without_gin(pretrain_smoke_config, tmp_path):
  pretrain_smoke_config("ale")
  model_dir = str(tmp_path / "ale_model")
  run = pretrained.read_run(model_dir)
  # ALE forces cross-layer sharing whatever EncoderConfig says: the record has the encoder it built.
  assert run.objective == "ale" and run.encoder_config().share_layers
  assert run.info["objective"]["class"] == "Ale" and run.info["precision"] == "float32"
  encoder = pretrained.load_encoder(run)
  assert len({id(layer) for layer in encoder.transformer_layers}) == 1

  # The same dir as an old run: the upgrade recovers the same record from operative_config.gin.
  recorded = run.info
  os.remove(run_info.path_of(model_dir))
  assert pretrain.cli(["pretrain", f"--upgrade_run_dir={model_dir}"]) == 0
  upgraded = pretrained.read_run(model_dir).info
  for key in ("objective", "encoder_config", "data", "seed", "batch_size", "seq_length", "train_steps", "eval_batches"):
    assert upgraded[key] == recorded[key], key
