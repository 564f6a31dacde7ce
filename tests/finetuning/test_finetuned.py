"""Fine-tuned models out: a run rebuilt from its dir, the text-in SavedModel served in a fresh process,
and the transformers class of a fine-tuned classifier."""
import json
import os
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import export
from tpu_electra import finetune
from tpu_electra import gin_utils
from tpu_electra import run_info
from tpu_electra.finetuning import finetuned
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import models
from tpu_electra.finetuning import pretrained
from tpu_electra.finetuning import runner
from tpu_electra.finetuning import tagging
from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.objectives import electra

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)
MAX_SEQ_LENGTH = 16
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _words(rng, n):
  # Mixed case and an out-of-vocab word now and then: the in-graph tokenizer must lower-case and
  # map unknown words to [UNK] as the runner's did.
  words = [f"w{rng.randint(10, 40)}" for _ in range(n)]
  return " ".join(w.upper() if rng.random() < 0.2 else ("zzz" if rng.random() < 0.05 else w) for w in words)


def _write_sst2(root):
  rng = random.Random(0)
  os.makedirs(os.path.join(root, "SST-2"), exist_ok=True)
  for split, n in (("train", 16), ("dev", 12)):
    rows = ["sentence\tlabel"]
    for i in range(n):
      label = i % 2
      # Some rows are longer than MAX_SEQ_LENGTH - 2 tokens, so truncation is exercised.
      rows.append(f"{_words(rng, rng.randint(2, 18))} {'w7' if label else 'w8'}, {_words(rng, 2)}\t{label}")
    with open(os.path.join(root, "SST-2", f"{split}.tsv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  return root


def _write_rte(root):
  rng = random.Random(1)
  os.makedirs(os.path.join(root, "RTE"), exist_ok=True)
  for split, n in (("train", 12), ("dev", 12)):
    rows = ["index\tsentence1\tsentence2\tlabel"]
    for i in range(n):
      label = ("entailment", "not_entailment")[i % 2]
      # Lengths on both sides of the budget (13 tokens), ties included.
      len_a, len_b = [(3, 4), (12, 2), (2, 12), (9, 9), (8, 7), (20, 20)][i % 6]
      rows.append(f"{i}\t{_words(rng, len_a)}\t{_words(rng, len_b)} {'w7' if i % 2 else 'w8'}\t{label}")
    with open(os.path.join(root, "RTE", f"{split}.tsv"), "w") as f:
      f.write("\n".join(rows) + "\n")
  return root


def _finetune(argv):
  gin_utils.clear()
  try:
    return finetune.cli(["finetune"] + argv)
  finally:
    gin_utils.clear()


@pytest.fixture(scope="module")
def runs(token_data_dir, tmp_path_factory):
  """An SST-2 run (seeds 0, 1) and an RTE run fine-tuned from a tiny ELECTRA dir."""
  tf.keras.utils.set_random_seed(1)
  objective = electra.Electra(CONFIG, generator_fraction=0.5)
  pretrained_dir = str(tmp_path_factory.mktemp("pretrained"))
  pretrained.save_pretraining_dir(objective, pretrained_dir, data_dir=token_data_dir,
                                  objective_kwargs={"generator_fraction": 0.5}, step=3)
  data_dir = _write_rte(_write_sst2(str(tmp_path_factory.mktemp("glue"))))
  out = {}
  for name, gin_file, seeds in (("sst2", "finetune/sst2.gin", 2), ("rte", "finetune/rte.gin", 1)):
    run_dir = str(tmp_path_factory.mktemp(name))
    assert _finetune([f"--gin_file={gin_file}", f"--init_checkpoint={pretrained_dir}", f"--data_dir={data_dir}",
                      f"--model_dir={run_dir}", f"--seeds={seeds}", "--gin_param=BATCH_SIZE = 4",
                      f"--gin_param=MAX_SEQ_LENGTH = {MAX_SEQ_LENGTH}", "--gin_param=EPOCHS = 2",
                      "--gin_param=LEARNING_RATE = 1e-3"]) == 0
    out[name] = run_dir
  out["data_dir"] = data_dir
  out["pretrained"] = pretrained_dir
  return out


def _dev(data_dir, task):
  return glue.read_examples(data_dir, task, "dev")


def _runner_outputs(run_dir, examples, seed=None):
  """The runner's Predictor over the runner's features of `examples`, for the run's model."""
  run = finetuned.read_finetuning_run(run_dir, seed)
  model = finetuned.load_task_model(run)
  arrays = glue.convert_examples(examples, run.glue_task(), run.load_tokenizer(), run.max_seq_length)
  features = {k: arrays[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}
  predictor = runner.Predictor(model, tf.distribute.get_strategy(), global_batch_size=4)
  return predictor(features), features


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)
    request = json.load(open(sys.argv[1]))
    out = {}
    for name, job in request.items():
      start = time.time()
      loaded = tf.saved_model.load(job["path"])
      load_s = time.time() - start
      serve, encode = loaded.signatures["serving_default"], loaded.signatures["encode"]
      inputs = {k: tf.constant(v) for k, v in job["inputs"].items()}
      outputs = {k: v.numpy().tolist() for k, v in serve(**inputs).items()}
      encoded = {k: v.numpy().tolist() for k, v in encode(**inputs).items()}
      one = {k: tf.constant(v[:1]) for k, v in job["inputs"].items()}
      serve(**one)
      start = time.time()
      for _ in range(20):
        serve(**one)
      latency_s = (time.time() - start) / 20
      for k in ("label",):
        if k in outputs:
          outputs[k] = [x.decode() for x in outputs[k]]
      out[name] = {"outputs": outputs, "encoded": encoded, "load_s": load_s, "latency_s": latency_s,
                   "signature": sorted(serve.structured_input_signature[1])}
    json.dump(out, open(sys.argv[2], "w"))
""")


def test_text_saved_model_in_a_fresh_process_reproduces_the_runner(runs, tmp_path):
  jobs, expected = {}, {}
  for name, task, seed in (("sst2", "sst2", None), ("sst2_seed1", "sst2", 1), ("rte", "rte", None)):
    run_dir = runs[task]
    path = str(tmp_path / name)
    argv = ["export", f"--model_dir={run_dir}", "--format=saved_model", f"--output_dir={path}"]
    start = time.time()
    assert export.cli(argv + ([f"--seed={seed}"] if seed is not None else [])) == 0
    export_s = time.time() - start
    examples = _dev(runs["data_dir"], task)
    if task == "rte":
      inputs = {"text_a": [e.text_a for e in examples], "text_b": [e.text_b for e in examples]}
    else:
      inputs = {"text": [e.text_a for e in examples]}
    jobs[name] = {"path": path, "inputs": inputs}
    outputs, features = _runner_outputs(run_dir, examples, seed)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    expected[name] = (run_dir, examples, outputs, features, seed, export_s, size)
    # Self-contained: the run's vocab is an asset of the SavedModel.
    assert os.path.exists(os.path.join(path, "assets", "vocab.txt"))
  request, result = str(tmp_path / "request.json"), str(tmp_path / "result.json")
  with open(request, "w") as f:
    json.dump(jobs, f)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  subprocess.run([sys.executable, "-c", SERVE_SCRIPT, request, result], check=True, cwd=str(tmp_path), env=env,
                 timeout=300)
  with open(result) as f:
    served = json.load(f)
  for name, (run_dir, examples, outputs, features, seed, export_s, size) in expected.items():
    got = served[name]
    # Packing and truncation equal the runner's features, id for id.
    for key, value in features.items():
      np.testing.assert_array_equal(np.asarray(got["encoded"][key]), value, err_msg=f"{name} {key}")
    logits = np.asarray(got["outputs"]["logits"])
    np.testing.assert_allclose(logits, outputs["logits"], atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["outputs"]["probabilities"]).sum(-1), 1.0, atol=1e-5)
    predicted = np.asarray(got["outputs"]["label_id"])
    np.testing.assert_array_equal(predicted, np.argmax(outputs["logits"], -1))
    task = glue.get_task("rte" if name == "rte" else "sst2")
    assert got["outputs"]["label"] == [task.label_list[i] for i in predicted]
    # The accuracy of the served predictions is the runner's final dev accuracy, exactly.
    seed_dir = os.path.join(run_dir, f"seed_{0 if seed is None else seed}")
    with open(os.path.join(seed_dir, "metrics.json")) as f:
      final = json.load(f)["final_metrics"]
    gold = [task.label_id(e.label) for e in examples]
    assert glue.evaluate(task.name, predicted.tolist(), gold)["accuracy"] == final["accuracy"]
    assert got["signature"] == (["text_a", "text_b"] if name == "rte" else ["text"])
    print(f"{name}: export {export_s:.1f} s, SavedModel {size / 1e6:.2f} MB, load {got['load_s']:.2f} s, "
          f"one sentence {1000 * got['latency_s']:.1f} ms")


def test_export_of_a_missing_seed_is_a_one_line_error(runs, tmp_path, capsys):
  argv = ["export", f"--model_dir={runs['sst2']}", "--seed=9", f"--output_dir={tmp_path / 'x'}"]
  assert export.cli(argv) == 1
  err = capsys.readouterr().err.strip()
  assert "no fine-tuned model for seed 9" in err and "\n" not in err


def test_run_json_records_labels_and_tokenizer(runs):
  run = finetuned.read_finetuning_run(runs["rte"])
  assert run.seed == 0 and run.info["label_list"] == ["entailment", "not_entailment"]
  assert run.info["tokenizer"] == {"vocab": None, "vocab_type": "wordpiece", "do_lower_case": True}


def test_transformers_sequence_classification_reproduces_the_runner(runs, tmp_path):
  torch = pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  for task in ("sst2", "rte"):
    out = str(tmp_path / task)
    assert export.cli(["export", f"--model_dir={runs[task]}", "--format=huggingface", f"--output_dir={out}"]) == 0
    with open(os.path.join(out, "config.json")) as f:
      config = json.load(f)
    assert config["architectures"] == ["ElectraForSequenceClassification"] and config["num_labels"] == 2
    model = transformers.ElectraForSequenceClassification.from_pretrained(out)
    model.eval()
    outputs, features = _runner_outputs(runs[task], _dev(runs["data_dir"], task))
    with torch.no_grad():
      logits = model(input_ids=torch.tensor(features["input_word_ids"], dtype=torch.long),
                     attention_mask=torch.tensor(features["input_mask"], dtype=torch.long),
                     token_type_ids=torch.tensor(features["input_type_ids"], dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(logits, outputs["logits"], atol=1e-4)
    if task == "rte":
      assert model.config.id2label == {0: "entailment", 1: "not_entailment"}
      # transformers' own tokenizer reads the exported vocab and casing the same way.
      tokenizer = transformers.AutoTokenizer.from_pretrained(out)
      assert tokenizer("W12 w13", "w14")["input_ids"] == [2, 12, 13, 3, 14, 3]


def _write_run(run_dir, task, model, encoder, pretrained_dir):
  """A fine-tuning run dir as the runner leaves it, for a model built here."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  tf.train.Checkpoint(model=model, encoder=encoder).write(os.path.join(run_dir, "seed_0", "final", "model"))
  run_info.write_run_info(run_dir, {
      "kind": "finetuning", "task": task, "max_seq_length": MAX_SEQ_LENGTH, "seeds": [0],
      "init_checkpoint": pretrained.read_run(pretrained_dir).checkpoint,
      "encoder_config": dataclasses.asdict(CONFIG), "label_list": None,
      "tokenizer": {"vocab": None, "vocab_type": "wordpiece", "do_lower_case": True}})


@pytest.mark.parametrize("task,architecture", [("pos", "ElectraForTokenClassification"),
                                               ("squad_v1", "ElectraForQuestionAnswering")])
def test_transformers_token_classification_and_question_answering(runs, tmp_path, task, architecture):
  torch = pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  tf.keras.utils.set_random_seed(4)
  encoder = TransformerEncoder(CONFIG, name="encoder")
  model = models.TaggingModel(encoder, 5) if task == "pos" else models.SpanModel(encoder)
  ids = np.array([[2, 10, 11, 12, 13, 3, 0, 0], [2, 20, 21, 3, 22, 23, 24, 3]], np.int32)
  batch = {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
           "input_type_ids": np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 1]], np.int32)}
  model.task_outputs(batch, training=False)
  bias = model.head.logits.bias
  bias.assign(np.random.default_rng(4).normal(0, 0.5, bias.shape).astype(np.float32))
  expected = model.task_outputs(batch, training=False)
  run_dir = str(tmp_path / "run")
  _write_run(run_dir, task, model, encoder, runs["pretrained"])
  out = str(tmp_path / "hf")
  assert export.cli(["export", f"--model_dir={run_dir}", "--format=huggingface", f"--output_dir={out}"]) == 0
  hf_model = getattr(transformers, architecture).from_pretrained(out)
  hf_model.eval()
  with torch.no_grad():
    outputs = hf_model(**{name: torch.tensor(batch[key], dtype=torch.long) for name, key in (
        ("input_ids", "input_word_ids"), ("attention_mask", "input_mask"), ("token_type_ids", "input_type_ids"))})
  mask = batch["input_mask"].astype(bool)
  if task == "pos":
    np.testing.assert_allclose(outputs.logits.numpy()[mask], expected["logits"].numpy()[mask], atol=1e-4)
  else:
    # Real tokens agree; ours also pushes padding to -10000, which transformers leaves to the caller.
    for name in ("start_logits", "end_logits"):
      np.testing.assert_allclose(getattr(outputs, name).numpy()[mask], expected[name].numpy()[mask], atol=1e-4)


def test_text_saved_model_of_a_task_it_cannot_serve_from_text_is_a_one_line_error(runs, tmp_path, capsys):
  tf.keras.utils.set_random_seed(4)
  encoder = TransformerEncoder(CONFIG, name="encoder")
  model = models.SpanModel(encoder)
  model.task_outputs(encoder.dummy_inputs(), training=False)
  run_dir = str(tmp_path / "run")
  _write_run(run_dir, "squad_v1", model, encoder, runs["pretrained"])
  assert export.cli(["export", f"--model_dir={run_dir}", f"--output_dir={tmp_path / 'saved'}"]) == 1
  err = capsys.readouterr().err.strip()
  assert "not exported from text yet" in err and "\n" not in err


def _write_pos(root):
  rng = random.Random(2)
  os.makedirs(root, exist_ok=True)
  for split, n in (("train", 12), ("dev", 8)):
    lines = []
    for i in range(n):
      # Sentences longer than the 14-token budget (some words split into pieces: "w12w13" is no vocab
      # word) drop their last words; "..." and "w7" are tags NN / VB / PUNCT.
      for _ in range(rng.randint(3, 17)):
        word = rng.choice(["w10", "W11", "w20", "w7", "...", "w12w13", "zzz"])
        tag = {"w7": "VB", "...": "PUNCT"}.get(word, "NN")
        lines.append(f"{word} {tag}")
      lines.append("")
    with open(os.path.join(root, f"{split}.txt"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return root


def test_tagging_saved_model_tags_words_as_the_runner(runs, tmp_path):
  data_dir = _write_pos(str(tmp_path / "pos_data"))
  run_dir = str(tmp_path / "pos")
  assert _finetune(["--gin_file=finetune/pos.gin", f"--init_checkpoint={runs['pretrained']}",
                    f"--data_dir={data_dir}", f"--model_dir={run_dir}", "--gin_param=BATCH_SIZE = 4",
                    f"--gin_param=MAX_SEQ_LENGTH = {MAX_SEQ_LENGTH}", "--gin_param=EPOCHS = 2",
                    "--gin_param=LEARNING_RATE = 1e-3"]) == 0
  run = finetuned.read_finetuning_run(run_dir)
  assert run.label_list == ["O", "NN", "PUNCT", "VB"]
  path = str(tmp_path / "saved")
  assert export.cli(["export", f"--model_dir={run_dir}", f"--output_dir={path}"]) == 0
  examples = tagging.read_examples(os.path.join(data_dir, "dev.txt"), "dev")
  tokenizer = run.load_tokenizer()
  rows = [tagging.convert_example(e, run.label_list, tokenizer, MAX_SEQ_LENGTH) for e in examples]
  features = {"input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
              "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
              "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32)}
  predictor = runner.Predictor(finetuned.load_task_model(run), tf.distribute.get_strategy(), global_batch_size=4)
  logits = predictor(features)["logits"]
  width = max(len(e.words) for e in examples)
  words = np.asarray([e.words + [""] * (width - len(e.words)) for e in examples], object)
  loaded = tf.saved_model.load(path)
  encoded = loaded.signatures["encode"](words=tf.constant(words))
  for key, value in features.items():
    np.testing.assert_array_equal(encoded[key].numpy(), value, err_msg=key)
  served = loaded.signatures["serving_default"](words=tf.constant(words))
  predicted = {}
  for i, (example, row) in enumerate(zip(examples, rows)):
    n = len(example.words)
    assert served["word_position"].numpy()[i, :n].tolist() == row.word_positions
    expected_tags = tagging.word_tags(row, np.argmax(logits[i], -1).tolist(), run.label_list)
    predicted[example.guid] = [t.decode() for t in served["tags"].numpy()[i, :n]]
    assert predicted[example.guid] == expected_tags
    assert all(t == b"O" for t in served["tags"].numpy()[i, n:])
  with open(os.path.join(run_dir, "seed_0", "metrics.json")) as f:
    final = json.load(f)["final_metrics"]
  assert tagging.evaluate_examples(examples, predicted, chunked=False)["accuracy"] == final["accuracy"]
  assert any(-1 in r.word_positions for r in rows)  # truncation was exercised
