"""Continued pretraining (issue 11 item 2): pretrain --init_checkpoint=RUN_DIR from our runs and converted dirs."""
import glob
import json
import logging
import os
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tests.conftest import write_token_data
from tpu_electra import gin_utils
from tpu_electra import pretrain
from tpu_electra import pretrainer
from tpu_electra import runs
from tpu_electra import warm_start
from tpu_electra.training import trainer

_BUILD_VARIABLES = trainer.build_variables
TINY = ["EncoderConfig.hidden_size = 16", "EncoderConfig.intermediate_size = 32", "EncoderConfig.embedding_size = 8"]


def _params(data_dir, *extra, **macros):
  params = [f"DATA_DIR = '{data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 8", "WARMUP_STEPS = 1", "EVAL_BATCHES = 2",
            "train.log_every_secs = 0.0", "train.steps_per_loop = 1"]
  return params + list(extra) + [f"{k} = {v}" for k, v in macros.items()]


def _pretrain(objective, model_dir, params, init_checkpoint=None):
  gin.clear_config()
  try:
    gin_utils.parse([f"smoke/{objective}.gin"], params)
    return pretrainer.pretrain(model_dir=model_dir, init_checkpoint=init_checkpoint)
  finally:
    gin.clear_config()


def _cli(objective, model_dir, params, init_checkpoint):
  argv = ["pretrain", f"--model_dir={model_dir}", f"--gin_file=smoke/{objective}.gin",
          f"--init_checkpoint={init_checkpoint}"] + [f"--gin_param={p}" for p in params]
  gin.clear_config()
  try:
    return pretrain.cli(argv)
  finally:
    gin.clear_config()


class _AtTrainStart:
  """Stands in for trainer.train: keeps the model's variables (by checkpoint key) and step as training would
  start with them, trains nothing."""

  def __init__(self):
    self.weights, self.encoder, self.step = None, None, None

  def __call__(self, model, optimizer, dataset_fn, strategy, *args, **kwargs):
    # What train() does first: building again must leave the restored values alone.
    context = tf.distribute.InputContext(num_replicas_in_sync=strategy.num_replicas_in_sync)
    _BUILD_VARIABLES(model, optimizer, strategy, dataset_fn(context, 0).element_spec)
    self.weights = {key: v.numpy() for key, v in
                    warm_start.checkpoint_variables(encoder=model.encoder, model=model).items()}
    self.encoder = {key: v.numpy() for key, v in warm_start.checkpoint_variables(encoder=model.encoder).items()}
    self.step = int(optimizer.iterations.numpy())
    return {}


def _encoder_weights(model_dir):
  """The run's encoder as fine-tuning loads it, by the keys of a checkpoint of it alone."""
  encoder = runs.load_encoder(runs.read_run(model_dir))
  return {key: v.numpy() for key, v in warm_start.checkpoint_variables(encoder=encoder).items()}


def _checkpoint_tensors(path):
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(path) if os.path.isdir(path) else path)
  return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
          if key.startswith(("model/", "encoder/")) and "OPTIMIZER_SLOT" not in key}


def _step(model_dir):
  return int(tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir)).get_tensor(
      "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"))


def _messages(caplog, text):
  return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.fixture(scope="module")
def electra_run(token_data_dir, tmp_path_factory):
  """An ELECTRA run of 3 steps: what continued pretraining starts from."""
  model_dir = str(tmp_path_factory.mktemp("init") / "electra")
  _pretrain("electra", model_dir, _params(token_data_dir, *TINY, TRAIN_STEPS=3, CHECKPOINT_EVERY=3))
  return model_dir


def test_electra_from_an_electra_run_starts_from_all_its_weights_at_step_0(electra_run, token_data_dir, tmp_path,
                                                                           monkeypatch, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  at_start = _AtTrainStart()
  monkeypatch.setattr(trainer, "train", at_start)
  _pretrain("electra", str(tmp_path / "continued"), _params(token_data_dir, *TINY, TRAIN_STEPS=3),
            init_checkpoint=electra_run)
  init = _checkpoint_tensors(electra_run)
  assert at_start.step == 0
  # Every variable of the objective, generator and heads included, is the init checkpoint's.
  assert set(at_start.weights) <= set(init) and any(k.startswith("model/generator/") for k in at_start.weights)
  assert all(np.array_equal(at_start.weights[k], init[k]) for k in at_start.weights)
  line, = _messages(caplog, "Continued pretraining from")
  assert "restored from checkpoint item(s) encoder+model: embeddings, generator, discriminator, mlm_head, rtd_head" in line
  assert "freshly initialized: nothing" in line


def test_continued_pretraining_trains_evaluates_records_its_init_and_resumes_from_its_own_checkpoints(
    electra_run, token_data_dir, tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  params = _params(token_data_dir, *TINY, TRAIN_STEPS=4, CHECKPOINT_EVERY=2, EVAL_EVERY=2, SEED=3)
  continued = str(tmp_path / "continued")
  metrics = _pretrain("electra", continued, params, init_checkpoint=electra_run)
  # A fresh optimizer at step 0: the init run's 3 steps do not count towards these 4.
  assert sorted(os.path.basename(p) for p in glob.glob(continued + "/ckpt-*.index")) == ["ckpt-2.index",
                                                                                      "ckpt-4.index"]
  assert _step(continued) == 4 and np.isfinite(metrics["loss"]) and "eval/discriminator_auc" in metrics
  with open(os.path.join(continued, "run.json")) as f:
    info = json.load(f)
  record = info["init_checkpoint"]
  assert record["path"] == electra_run and record["objective"] == "electra"
  assert record["checkpoint"].endswith("ckpt-3") and record["restore"]["fresh"] == []
  assert len(info["data"]["vocab_sha256"]) == 64

  # Killed after step 2 and re-run with the same command: it resumes from its own ckpt-2 (not the init
  # checkpoint) and ends bit-identical to the run never stopped.
  resumed = str(tmp_path / "resumed")
  shutil.copytree(continued, resumed)
  for path in glob.glob(os.path.join(resumed, "ckpt-4.*")):
    os.remove(path)
  tf.compat.v1.train.update_checkpoint_state(resumed, os.path.join(resumed, "ckpt-2"))
  caplog.clear()
  _pretrain("electra", resumed, params, init_checkpoint=electra_run)
  assert _messages(caplog, "Resuming from checkpoint") and "at step 2" in _messages(caplog, "Resuming from")[0]
  assert not _messages(caplog, "Continued pretraining from")
  ours, uninterrupted = _checkpoint_tensors(resumed), _checkpoint_tensors(continued)
  assert ours.keys() == uninterrupted.keys() and all(np.array_equal(ours[k], uninterrupted[k]) for k in ours)
  with open(os.path.join(resumed, "run.json")) as f:
    assert json.load(f)["init_checkpoint"] == record


def test_electra_from_a_bert_run_restores_the_encoder_and_builds_a_new_generator(token_data_dir, tmp_path,
                                                                                 monkeypatch, caplog):
  bert_dir = str(tmp_path / "bert")
  _pretrain("bert", bert_dir, _params(token_data_dir, *TINY, TRAIN_STEPS=2, CHECKPOINT_EVERY=2))
  caplog.set_level(logging.INFO, logger="absl")
  at_start = _AtTrainStart()
  monkeypatch.setattr(trainer, "train", at_start)
  _pretrain("electra", str(tmp_path / "electra"), _params(token_data_dir, *TINY, TRAIN_STEPS=2),
            init_checkpoint=bert_dir)
  # In the BERT checkpoint the word embeddings are saved under the MLM head (the first path to them):
  # matched through the object graph, they are restored all the same.
  init = _encoder_weights(bert_dir)
  assert at_start.encoder.keys() == init.keys() and all(np.array_equal(at_start.encoder[k], init[k]) for k in init)
  assert at_start.step == 0
  line, = _messages(caplog, "Continued pretraining from")
  assert ("restored from checkpoint item(s) encoder: embeddings, discriminator; freshly initialized: generator, "
          "mlm_head, rtd_head") in line, line
  assert "(a run of objective bert)" in line


def _tiny_huggingface_electra(directory, data_dir):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  with open(os.path.join(data_dir, "vocab.txt")) as f:
    vocab = f.read().split()
  config = transformers.ElectraConfig(vocab_size=len(vocab), embedding_size=8, hidden_size=16, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=32, max_position_embeddings=40,
                                      hidden_act="gelu")
  torch.manual_seed(0)
  model = transformers.ElectraForPreTraining(config).eval()
  model.save_pretrained(directory, safe_serialization=True)
  shutil.copy(os.path.join(data_dir, "vocab.txt"), os.path.join(directory, "vocab.txt"))
  return str(directory)


CONVERTED_SIZES = TINY + ["EncoderConfig.max_position_embeddings = 40"]


def test_continued_pretraining_from_a_converted_discriminator_trains_and_evaluates(token_data_dir, tmp_path, caplog):
  from tpu_electra.convert import run_dir  # pylint: disable=g-import-not-at-top
  source = _tiny_huggingface_electra(tmp_path / "hf", token_data_dir)
  converted = run_dir.convert(f"huggingface:{source}", str(tmp_path / "converted"))
  caplog.set_level(logging.INFO, logger="absl")
  model_dir = str(tmp_path / "continued")
  metrics = _pretrain("electra", model_dir, _params(token_data_dir, *CONVERTED_SIZES, TRAIN_STEPS=3,
                                                    CHECKPOINT_EVERY=3, EVAL_EVERY=3), init_checkpoint=converted)
  line, = _messages(caplog, "Continued pretraining from")
  assert "(converted from ElectraForPreTraining, objective electra)" in line
  assert "restored from checkpoint item(s) encoder+model: embeddings, discriminator, rtd_head" in line, line
  assert "freshly initialized: generator, mlm_head" in line, line
  assert _step(model_dir) == 3 and np.isfinite(metrics["loss"]) and np.isfinite(metrics["eval/loss"])
  assert "eval/discriminator_auc" in metrics
  with open(os.path.join(model_dir, "run.json")) as f:
    record = json.load(f)["init_checkpoint"]
  assert record["source"]["architecture"] == "ElectraForPreTraining" and record["objective"] == "electra"
  assert record["restore"]["fresh"] == ["generator", "mlm_head"]
  # The continued run is a run like any other: it loads, its discriminator moved from the converted one.
  before, after = _encoder_weights(converted), _encoder_weights(model_dir)
  assert before.keys() == after.keys() and any(not np.array_equal(after[k], before[k]) for k in after)


def _one_line_error(objective, model_dir, params, init_checkpoint, capsys):
  assert _cli(objective, model_dir, params, init_checkpoint) == 1
  error = capsys.readouterr().err.strip()
  assert "\n" not in error and error.startswith("error: "), error
  assert not os.path.exists(model_dir)
  return error


def test_a_different_hidden_size_is_one_line_naming_the_field_and_writes_nothing(electra_run, token_data_dir, tmp_path,
                                                                                 capsys):
  params = _params(token_data_dir, *TINY, "EncoderConfig.hidden_size = 32", TRAIN_STEPS=2)
  error = _one_line_error("electra", str(tmp_path / "model"), params, electra_run, capsys)
  assert "EncoderConfig.hidden_size=16" in error and "hidden_size=32" in error, error
  assert "set EncoderConfig.hidden_size = 16" in error, error


def test_a_vocab_of_another_size_or_other_tokens_is_one_line_and_writes_nothing(electra_run, token_data_dir, tmp_path,
                                                                                capsys):
  bigger = write_token_data(str(tmp_path / "data70"), vocab_size=70)
  error = _one_line_error("electra", str(tmp_path / "model"), _params(bigger, *TINY, TRAIN_STEPS=2), electra_run,
                          capsys)
  assert "vocab of 60 tokens" in error and "has 70" in error, error

  renamed = str(tmp_path / "renamed")
  shutil.copytree(token_data_dir, renamed)
  vocab_path = os.path.join(renamed, "vocab.txt")
  with open(vocab_path) as f:
    tokens = f.read().split("\n")
  tokens[10] = "x10"
  with open(vocab_path, "w") as f:
    f.write("\n".join(tokens))
  error = _one_line_error("electra", str(tmp_path / "model"), _params(renamed, *TINY, TRAIN_STEPS=2), electra_run,
                          capsys)
  assert "token 10 is 'w10' there but 'x10' in the data's" in error, error


def test_an_init_dir_without_a_checkpoint_is_refused_in_one_line(token_data_dir, tmp_path, capsys):
  error = _one_line_error("electra", str(tmp_path / "model"), _params(token_data_dir, *TINY, TRAIN_STEPS=2),
                          str(tmp_path), capsys)
  assert "no checkpoint in" in error, error


def test_continued_pretraining_under_mirrored_strategy_restores_every_replica_and_trains(electra_run, token_data_dir,
                                                                                          tmp_path):
  # Under a strategy the restore assigns MirroredVariables outside a replica context: every replica's
  # copy must hold the init checkpoint's value when training starts.
  result = subprocess.run(
      [sys.executable, "-m", "tests.mirrored_continued_pretraining_main", token_data_dir, electra_run,
       str(tmp_path / "mirrored")], capture_output=True, text=True, timeout=600,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["replicas"] == 2
  assert report["compared"] > 20 and report["differ"] == []
  assert report["step"] == 2 and np.isfinite(report["loss"])
