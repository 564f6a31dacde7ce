"""A model dir's run.json and operative_config.gin describe its checkpoints across resumed, refused,
changed and failed re-runs; the NaN guard keeps "last good checkpoint" true; a checkpoint save that
fails stops the run in one line."""
import glob
import hashlib
import json
import os
import shutil

import gin
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import evaluate
from tpu_electra import pretrain
from tpu_electra import runs


def _params(data_dir, **macros):
  params = [f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "EVAL_EVERY = 0",
            "CHECKPOINT_EVERY = 2", "train.log_every_secs = 0.0", "EncoderConfig.hidden_size = 16",
            "EncoderConfig.intermediate_size = 32", "EncoderConfig.embedding_size = 8"]
  return params + [f"{k} = {v}" for k, v in macros.items()]


def _cli(model_dir, params, *flags):
  argv = ["pretrain", f"--model_dir={model_dir}", "--gin_file=smoke/electra.gin"] + [f"--gin_param={p}" for p in params]
  gin.clear_config()
  try:
    return pretrain.cli(argv + list(flags))
  finally:
    gin.clear_config()


def _files(model_dir):
  """{name: sha256} of every file in the model dir (summaries aside: they are a log)."""
  found = {}
  for path in glob.glob(os.path.join(model_dir, "*")):
    if os.path.isfile(path):
      with open(path, "rb") as f:
        found[os.path.basename(path)] = hashlib.sha256(f.read()).hexdigest()
  return found


def _record(model_dir):
  with open(os.path.join(model_dir, "run.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def trained(token_data_dir, tmp_path_factory):
  """A model dir trained 4 steps (checkpoints 2 and 4) and its files."""
  model_dir = str(tmp_path_factory.mktemp("trained") / "model")
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=4)) == 0
  return model_dir, _files(model_dir)


def _copy(trained, tmp_path):
  model_dir = str(tmp_path / "model")
  shutil.copytree(trained[0], model_dir)
  return model_dir


def test_run_json_records_the_optimizer_masking_input_pipeline_and_train_loop(trained):
  record = _record(trained[0])
  assert record["optimizer"] == {"name": "adamw", "learning_rate": 0.002, "warmup_steps": 1, "end_learning_rate": 0.0,
                                 "weight_decay": 0.01, "epsilon": 1e-6, "beta_1": 0.9, "beta_2": 0.999,
                                 "clip_norm": 1.0}
  assert record["masking"] == {"mask_rate": 0.15, "mask_token_fraction": 0.8, "random_token_fraction": 0.1,
                               "max_predictions_per_seq": None}
  assert record["input_pipeline"] == {"shuffle_buffer_size": 10000, "cycle_length": 8}
  assert record["train_loop"] == {"grad_accum_steps": 1, "jit_compile": False}
  assert "history" not in record


def test_a_rerun_with_other_training_settings_stops_before_writing_anything(trained, token_data_dir, tmp_path,
                                                                            capsys):
  model_dir = _copy(trained, tmp_path)
  params = _params(token_data_dir, TRAIN_STEPS=8, LEARNING_RATE=1e9) + [
      "MaskingConfig.mask_rate = 0.2", "EncoderConfig.num_layers = 3"]
  assert _cli(model_dir, params) == 1
  error = capsys.readouterr().err.strip()
  assert "\n" not in error, error
  assert error.startswith(f"error: {model_dir} holds checkpoints up to step 4 trained with other settings than these: "
                          "encoder_config.num_layers 2 -> 3, masking.mask_rate 0.15 -> 0.2, "
                          "optimizer.learning_rate 0.002 -> 1000000000.0"), error
  assert "a new --model_dir, or pass --accept_changes" in error, error
  assert _files(model_dir) == trained[1]
  assert not os.path.exists(os.path.join(model_dir, "ckpt-6.index"))


def test_a_resume_with_the_same_settings_rewrites_neither_record(trained, token_data_dir, tmp_path):
  model_dir = _copy(trained, tmp_path)
  # Rolled back to step 2, as if killed before step 4 was saved: the re-run trains steps 3 and 4 again.
  for path in glob.glob(os.path.join(model_dir, "ckpt-4.*")):
    os.remove(path)
  tf.compat.v1.train.update_checkpoint_state(model_dir, os.path.join(model_dir, "ckpt-2"))
  before = _files(model_dir)
  written = {name: os.stat(os.path.join(model_dir, name)).st_mtime_ns for name in ("run.json", "operative_config.gin")}
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=4)) == 0
  after = _files(model_dir)
  assert after["run.json"] == before["run.json"] and after["operative_config.gin"] == before["operative_config.gin"]
  assert written == {name: os.stat(os.path.join(model_dir, name)).st_mtime_ns for name in written}  # Not rewritten.
  assert set(after) - set(before) == {"ckpt-4.index", "ckpt-4.data-00000-of-00001"}


def test_a_version_1_record_resumes_and_refuses_changes_as_before(trained, token_data_dir, tmp_path, capsys):
  model_dir = _copy(trained, tmp_path)
  record = _record(model_dir)
  del record["version"]
  record["format_version"] = 1  # As tpu_electra wrote run.json before runs.VERSION 2.
  with open(os.path.join(model_dir, "run.json"), "w") as f:
    json.dump(record, f)
  before = _files(model_dir)
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=4)) == 0
  assert _files(model_dir)["run.json"] == before["run.json"]  # Same settings: kept as written.
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=4, SEED=9)) == 1
  assert "other settings than these: seed 0 -> 9;" in capsys.readouterr().err
  assert _files(model_dir) == before


def test_accepted_changes_and_longer_runs_are_kept_in_the_history(trained, token_data_dir, tmp_path):
  model_dir = _copy(trained, tmp_path)
  data_dir = token_data_dir
  with open(os.path.join(model_dir, "operative_config.gin")) as f:
    original_config = f.read()
  # Training further needs no consent; the record says from which step the schedule ends later.
  assert _cli(model_dir, _params(data_dir, TRAIN_STEPS=6)) == 0
  assert _record(model_dir)["history"] == [{"from_step": 4, "changes": {"train_steps": [4, 6]},
                                            "previous_operative_config": "operative_config.before-step-4.gin"}]
  with open(os.path.join(model_dir, "operative_config.before-step-4.gin")) as f:
    assert f.read() == original_config
  assert _cli(model_dir, _params(data_dir, TRAIN_STEPS=8, LEARNING_RATE=1e-3), "--accept_changes") == 0
  record = _record(model_dir)
  assert record["optimizer"]["learning_rate"] == 1e-3 and record["train_steps"] == 8
  assert record["history"][1] == {"from_step": 6, "changes": {"optimizer.learning_rate": [0.002, 0.001],
                                                               "train_steps": [6, 8]},
                                  "previous_operative_config": "operative_config.before-step-6.gin"}
  with open(os.path.join(model_dir, "operative_config.gin")) as f:
    assert "LEARNING_RATE = 0.001" in f.read()
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-8")


def test_changes_at_the_step_of_the_last_change_merge_into_it():
  recorded = {"train_steps": 8, "history": [{"from_step": 4, "changes": {"optimizer.learning_rate": [1, 2]},
                                             "previous_operative_config": "operative_config.before-step-4.gin"}],
              "optimizer": {"learning_rate": 2}}
  # Back to the original learning rate before any step trained at 2: nothing changed after all.
  current = {"train_steps": 8, "optimizer": {"learning_rate": 1}}
  training, free = runs.changes(recorded, current)
  assert (training, free) == ({"optimizer.learning_rate": [2, 1]}, {})
  assert "history" not in runs.continued_record(recorded, current, 4, training, None)
  current["optimizer"]["learning_rate"] = 3
  merged = runs.continued_record(recorded, current, 4, runs.changes(recorded, current)[0], None)
  assert merged["history"] == [{"from_step": 4, "changes": {"optimizer.learning_rate": [1, 3]},
                                "previous_operative_config": "operative_config.before-step-4.gin"}]


def test_settings_an_older_record_lacks_are_recorded_without_consent():
  training, free = runs.changes({"seed": 0, "data": {"data_dir": "a"}},
                                    {"seed": 0, "data": {"data_dir": "b"}, "masking": {"mask_rate": 0.15}})
  assert training == {} and free == {"data.data_dir": ["a", "b"], "masking.mask_rate": [None, 0.15]}


def test_evaluation_masks_at_the_mask_rate_the_run_trained_with(token_data_dir, tmp_path, monkeypatch):
  model_dir = str(tmp_path / "model")
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=2) + ["MaskingConfig.mask_rate = 0.3"]) == 0
  assert runs.read_run(model_dir).setting("masking")["mask_rate"] == 0.3
  seen = []
  original = evaluate.pretraining.evaluation_dataset

  def recording(*args, masking_config=None, **kwargs):
    seen.append(masking_config)
    return original(*args, masking_config=masking_config, **kwargs)

  monkeypatch.setattr(evaluate.pretraining, "evaluation_dataset", recording)
  # No gin here (the default is 0.15): the rate comes from the run's run.json, read through tpu_electra.runs.
  assert evaluate.masking.MaskingConfig().mask_rate == 0.15
  evaluate.evaluate_run(model_dir, eval_batches=1, output=str(tmp_path / "metrics.json"))
  assert seen and all(config.mask_rate == 0.3 for config in seen)


def test_a_blown_up_step_leaves_no_poisoned_last_good_checkpoint(token_data_dir, tmp_path, capsys):
  # The case: a checkpoint right after the step that blew up. The step's logged loss was
  # computed before its update, so ckpt-1 holds finite weights of ~1e9 whose first step is NaN.
  model_dir = str(tmp_path / "model")
  params = _params(token_data_dir, TRAIN_STEPS=6, LEARNING_RATE=1e9, WARMUP_STEPS=0, CHECKPOINT_EVERY=1) + [
      "train.steps_per_loop = 1"]
  assert _cli(model_dir, params) == 1
  error = capsys.readouterr().err.strip()
  assert error.startswith("error: loss became nan between steps 1 and 2; stopped without saving, last good "
                          "checkpoint: none (lower LEARNING_RATE, or check the data)"), error
  assert tf.train.latest_checkpoint(model_dir) is None
  # Kept for a look, under a name no run resumes from.
  assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(model_dir, "*ckpt-1.*"))) == [
      "nonfinite-ckpt-1.data-00000-of-00001", "nonfinite-ckpt-1.index"]
  # Nothing was trained with these settings that the dir keeps: a sane learning rate starts afresh.
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=2)) == 0
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
  assert _record(model_dir)["optimizer"]["learning_rate"] == 0.002


def test_a_full_disk_at_a_checkpoint_save_stops_the_run_in_one_line(token_data_dir, tmp_path, capsys, monkeypatch):
  original = tf.train.CheckpointManager.save

  def save(manager, checkpoint_number=None, **kwargs):
    if checkpoint_number == 4:
      raise tf.errors.ResourceExhaustedError(None, None, f"{manager.directory}/ckpt-4_temp/part-00000-of-00001.data-"
                                             "00000-of-00001.tempstate3; No space left on device")
    return original(manager, checkpoint_number=checkpoint_number, **kwargs)

  monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
  model_dir = str(tmp_path / "model")
  assert _cli(model_dir, _params(token_data_dir, TRAIN_STEPS=6)) == 1
  error = capsys.readouterr().err.strip()
  assert "\n" not in error, error
  assert error.startswith(f"error: cannot write checkpoint {model_dir}/ckpt-4 ({model_dir}/ckpt-4_temp/"), error
  assert f"No space left on device); training stopped at step 4, last checkpoint written: {model_dir}/ckpt-2" in error
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
