"""Fine-tuned models out: a run rebuilt from its dir, the text-in SavedModel served in a fresh process,
and the transformers class of a fine-tuned classifier."""
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import finetune
from tpu_electra import gin_utils
from tpu_electra import runs
from tpu_electra.export import cli as export_cli
from tpu_electra.export import squad as squad_export
from tpu_electra.finetuning import finetuned
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import models
from tpu_electra.finetuning import prediction
from tpu_electra.finetuning import race
from tpu_electra.finetuning import squad
from tpu_electra.finetuning import squad_metrics
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
def run_dirs(token_data_dir, tmp_path_factory):
  """An SST-2 run (seeds 0, 1) and an RTE run fine-tuned from a tiny ELECTRA dir."""
  tf.keras.utils.set_random_seed(1)
  objective = electra.Electra(CONFIG, generator_fraction=0.5)
  pretrained_dir = str(tmp_path_factory.mktemp("pretrained"))
  runs.save_pretraining_dir(objective, pretrained_dir, data_dir=token_data_dir,
                                  objective_arguments={"generator_fraction": 0.5}, step=3)
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
  predictor = prediction.Predictor(model, tf.distribute.get_strategy(), global_batch_size=4)
  return predictor(features), features


# Loads each job's SavedModel in this fresh process, serves its inputs (and one example, timed), encodes them.
SERVE_SCRIPT = textwrap.dedent("""
    import json, statistics, sys, time
    start = time.time()
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)
    import_s = time.time() - start
    request = json.load(open(sys.argv[1]))

    def plain(value):
      value = value.numpy()
      if value.dtype == object:
        return [[y.decode() for y in x] if value.ndim == 2 else x.decode() for x in value]
      return value.tolist()

    out = {"import_s": import_s}
    for name, job in request.items():
      start = time.time()
      loaded = tf.saved_model.load(job["path"])
      load_s = time.time() - start
      serve, encode = loaded.signatures["serving_default"], loaded.signatures["encode"]
      inputs = {k: tf.constant(v) for k, v in job["inputs"].items()}
      outputs = {k: plain(v) for k, v in serve(**inputs).items()}
      encoded = {k: plain(v) for k, v in encode(**inputs).items()}
      one = {k: tf.constant(v[:1]) for k, v in job["inputs"].items()}
      start = time.time()
      serve(**one)
      first_call_s = time.time() - start
      times = []
      for _ in range(10):
        start = time.time()
        serve(**one)
        times.append(time.time() - start)
      out[name] = {"outputs": outputs, "encoded": encoded, "load_s": load_s, "first_call_s": first_call_s,
                   "call_s": statistics.median(times), "signature": sorted(serve.structured_input_signature[1])}
      if "context" in job["inputs"]:  # A batch whose contexts have no word at all.
        empty = serve(question=tf.constant(["who?", "what?"]), context=tf.constant(["", "  "]))
        out[name]["empty_contexts"] = {k: plain(v) for k, v in empty.items()}
    json.dump(out, open(sys.argv[2], "w"))
""")

def _serve_in_fresh_process(jobs, directory):
  """SERVE_SCRIPT's results for {name: {"path": SavedModel, "inputs": {signature input: values}}}."""
  request, result = os.path.join(directory, "request.json"), os.path.join(directory, "result.json")
  with open(request, "w") as f:
    json.dump(jobs, f)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  subprocess.run([sys.executable, "-c", SERVE_SCRIPT, request, result], check=True, cwd=directory, env=env,
                 timeout=300)
  with open(result) as f:
    return json.load(f)


def test_text_saved_model_in_a_fresh_process_reproduces_the_runner(run_dirs, tmp_path):
  jobs, expected = {}, {}
  for name, task, seed in (("sst2", "sst2", None), ("sst2_seed1", "sst2", 1), ("rte", "rte", None)):
    run_dir = run_dirs[task]
    path = str(tmp_path / name)
    argv = ["export", f"--model_dir={run_dir}", "--format=saved_model", f"--output_dir={path}"]
    start = time.time()
    assert export_cli.cli(argv + ([f"--seed={seed}"] if seed is not None else [])) == 0
    export_s = time.time() - start
    examples = _dev(run_dirs["data_dir"], task)
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
  served = _serve_in_fresh_process(jobs, str(tmp_path))
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
          f"one sentence {1000 * got['call_s']:.1f} ms (median of 10)")


def test_export_of_a_missing_seed_is_a_one_line_error(run_dirs, tmp_path, capsys):
  argv = ["export", f"--model_dir={run_dirs['sst2']}", "--seed=9", f"--output_dir={tmp_path / 'x'}"]
  assert export_cli.cli(argv) == 1
  err = capsys.readouterr().err.strip()
  assert "no fine-tuned model for seed 9" in err and "\n" not in err


def test_run_json_records_labels_and_tokenizer(run_dirs):
  run = finetuned.read_finetuning_run(run_dirs["rte"])
  assert run.seed == 0 and run.info["label_list"] == ["entailment", "not_entailment"]
  assert run.info["tokenizer"] == {"vocab": None, "vocab_type": "wordpiece", "do_lower_case": True}


def test_transformers_sequence_classification_reproduces_the_runner(run_dirs, tmp_path):
  torch = pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  for task in ("sst2", "rte"):
    out = str(tmp_path / task)
    assert export_cli.cli(["export", f"--model_dir={run_dirs[task]}", "--format=huggingface", f"--output_dir={out}"]) == 0
    with open(os.path.join(out, "config.json")) as f:
      config = json.load(f)
    assert config["architectures"] == ["ElectraForSequenceClassification"] and config["num_labels"] == 2
    model = transformers.ElectraForSequenceClassification.from_pretrained(out)
    model.eval()
    outputs, features = _runner_outputs(run_dirs[task], _dev(run_dirs["data_dir"], task))
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


def _write_run(run_dir, task, model, encoder, pretrained_dir, task_serving=None, label_list=None):
  """A fine-tuning run dir as the runner leaves it, for a model built here."""
  tf.train.Checkpoint(model=model, encoder=encoder).write(os.path.join(run_dir, "seed_0", "final", "model"))
  runs.write_record(run_dir, runs.finetuning_record(
      task=task, seed=0, seeds=[0], init_checkpoint=runs.read_run(pretrained_dir).checkpoint, encoder_config=CONFIG,
      max_seq_length=MAX_SEQ_LENGTH, label_list=label_list, task_serving=task_serving or {},
      tokenizer={"vocab": None, "vocab_type": "wordpiece", "do_lower_case": True}))


@pytest.mark.parametrize("task,architecture", [("pos", "ElectraForTokenClassification"),
                                               ("squad_v1", "ElectraForQuestionAnswering"),
                                               ("race", "ElectraForMultipleChoice")])
def test_transformers_token_classification_question_answering_and_multiple_choice(run_dirs, tmp_path, task,
                                                                                   architecture):
  torch = pytest.importorskip("torch", reason="torch is not installed (test-only extra 'hf')")
  transformers = pytest.importorskip("transformers", reason="transformers is not installed (test-only extra 'hf')")
  tf.keras.utils.set_random_seed(4)
  encoder = TransformerEncoder(CONFIG, name="encoder")
  model = {"pos": lambda: models.TaggingModel(encoder, 5), "squad_v1": lambda: models.SpanModel(encoder),
           "race": lambda: models.MultipleChoiceModel(encoder, 2)}[task]()
  ids = np.array([[2, 10, 11, 12, 13, 3, 0, 0], [2, 20, 21, 3, 22, 23, 24, 3]], np.int32)
  batch = {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
           "input_type_ids": np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 1]], np.int32)}
  if task == "race":  # one question with the two rows as its options: [1, 2, 8]
    batch = {name: value[None] for name, value in batch.items()}
  model.task_outputs(batch, training=False)
  bias = model.head.scorer.out_proj.bias if task == "race" else model.head.logits.bias
  bias.assign(np.random.default_rng(4).normal(0, 0.5, bias.shape).astype(np.float32))
  expected = model.task_outputs(batch, training=False)
  run_dir = str(tmp_path / "run")
  _write_run(run_dir, task, model, encoder, run_dirs["pretrained"], {"num_choices": 2} if task == "race" else None)
  out = str(tmp_path / "hf")
  assert export_cli.cli(["export", f"--model_dir={run_dir}", "--format=huggingface", f"--output_dir={out}"]) == 0
  hf_model = getattr(transformers, architecture).from_pretrained(out)
  hf_model.eval()
  with torch.no_grad():
    outputs = hf_model(**{name: torch.tensor(batch[key], dtype=torch.long) for name, key in (
        ("input_ids", "input_word_ids"), ("attention_mask", "input_mask"), ("token_type_ids", "input_type_ids"))})
  mask = batch["input_mask"].astype(bool)
  if task == "pos":
    np.testing.assert_allclose(outputs.logits.numpy()[mask], expected["logits"].numpy()[mask], atol=1e-4)
  elif task == "race":
    # Its sequence summary (first token, dense H -> H, GELU) and classifier are our [CLS] scorer.
    np.testing.assert_allclose(outputs.logits.numpy(), expected["logits"].numpy(), atol=1e-4)
  else:
    # Real tokens agree; ours also pushes padding to -10000, which transformers leaves to the caller.
    for name in ("start_logits", "end_logits"):
      np.testing.assert_allclose(getattr(outputs, name).numpy()[mask], expected[name].numpy()[mask], atol=1e-4)


def test_text_classification_run_serves_its_labels_from_text(run_dirs, tmp_path):
  tf.keras.utils.set_random_seed(5)
  encoder = TransformerEncoder(CONFIG, name="encoder")
  model = models.ClassificationModel(encoder, 3)
  model.task_outputs(encoder.dummy_inputs(), training=False)
  model.head.out_proj.bias.assign(np.array([0.3, -0.2, 0.1], np.float32))
  run_dir = str(tmp_path / "run")
  labels = ["ABBR", "DESC", "HUM"]
  _write_run(run_dir, "text_classification", model, encoder, run_dirs["pretrained"], label_list=labels)
  path = str(tmp_path / "saved")
  assert export_cli.cli(["export", f"--model_dir={run_dir}", "--format=saved_model", f"--output_dir={path}"]) == 0
  served = tf.saved_model.load(path)
  texts = tf.constant(["w10 w11 w12", "W13 w14"])
  features = served.signatures["encode"](text=texts)
  got = served.signatures["serving_default"](text=texts)
  expected = model.task_outputs({name: features[name] for name in ("input_word_ids", "input_mask", "input_type_ids")},
                                training=False)["logits"].numpy()
  np.testing.assert_allclose(got["logits"].numpy(), expected, atol=1e-5)
  assert [label.decode() for label in got["label"].numpy()] == [labels[i] for i in np.argmax(expected, -1)]


def test_text_saved_model_of_a_task_it_cannot_serve_from_text_is_a_one_line_error(run_dirs, tmp_path, capsys):
  tf.keras.utils.set_random_seed(4)
  encoder = TransformerEncoder(CONFIG, name="encoder")
  model = models.ClassificationModel(encoder, 2)
  model.task_outputs(encoder.dummy_inputs(), training=False)
  run_dir = str(tmp_path / "run")
  # A task registered outside the package (BoolQ, say): no text-in signature knows its inputs.
  _write_run(run_dir, "boolq", model, encoder, run_dirs["pretrained"])
  assert export_cli.cli(["export", f"--model_dir={run_dir}", f"--output_dir={tmp_path / 'saved'}"]) == 1
  err = capsys.readouterr().err.strip()
  assert "'boolq' is not exported from text yet" in err and "\n" not in err


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


def test_tagging_saved_model_tags_words_as_the_runner(run_dirs, tmp_path):
  data_dir = _write_pos(str(tmp_path / "pos_data"))
  run_dir = str(tmp_path / "pos")
  assert _finetune(["--gin_file=finetune/pos.gin", f"--init_checkpoint={run_dirs['pretrained']}",
                    f"--data_dir={data_dir}", f"--model_dir={run_dir}", "--gin_param=BATCH_SIZE = 4",
                    f"--gin_param=MAX_SEQ_LENGTH = {MAX_SEQ_LENGTH}", "--gin_param=EPOCHS = 2",
                    "--gin_param=LEARNING_RATE = 1e-3"]) == 0
  run = finetuned.read_finetuning_run(run_dir)
  assert run.label_list == ["O", "NN", "PUNCT", "VB"]
  path = str(tmp_path / "saved")
  assert export_cli.cli(["export", f"--model_dir={run_dir}", f"--output_dir={path}"]) == 0
  examples = tagging.read_examples(os.path.join(data_dir, "dev.txt"), "dev")
  tokenizer = run.load_tokenizer()
  rows = [tagging.convert_example(e, run.label_list, tokenizer, MAX_SEQ_LENGTH) for e in examples]
  features = {"input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
              "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
              "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32)}
  predictor = prediction.Predictor(finetuned.load_task_model(run), tf.distribute.get_strategy(), global_batch_size=4)
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


# ----------------------------------------------------------------------------------------------
# SQuAD and RACE served from text

# Contexts with what the runner's white-space words and per-word tokenization must survive: two
# spaces, a newline and U+202F between words, punctuation glued to words (a word of 2 tokens), an
# accented word (characters and bytes differ) and an out-of-vocab word; the first needs 2+ windows.
SQUAD_CONTEXTS = [
    "W10 w11, w12  w13\nw14 caf\u00e9 w15 w16\u202fw17 w18. w19 w20 zzz w21 w22 w23 w24 w25 w26",
    "w30 w31 w32 w33",
    "w34 w35 w36 w37 w38 w39 w40 w41 w42 w43 w44",
]
# (context, question, answer text or None for unanswerable); the second question is longer than
# the runs' max_query_length (5).
SQUAD_QUESTIONS = [
    (0, "w50 w51", "w12  w13"), (0, "W52 w53 w54 w55 w56 w57 w58", "w16\u202fw17 w18."), (0, "w59", "w23 w24"),
    (1, "w50 w52", "w31"), (1, "w53", None), (2, "w54 w55", "w40 w41"), (2, "w56", None), (0, "w57 w51", None),
    (0, "w58 w59 w50", "caf\u00e9 w15"),
]


def _write_squad(root, version_2):
  paragraphs = {}
  for i, (c, question, answer) in enumerate(SQUAD_QUESTIONS):
    if answer is None and not version_2:
      continue
    context = SQUAD_CONTEXTS[c]
    qa = {"id": f"q{i}", "question": question,
          "answers": [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]}
    if version_2:
      qa["is_impossible"] = answer is None
    paragraphs.setdefault(c, {"context": context, "qas": []})["qas"].append(qa)
  data = {"version": "v2.0" if version_2 else "1.1", "data": [{"title": "t", "paragraphs": list(paragraphs.values())}]}
  os.makedirs(root, exist_ok=True)
  suffix = "v2.0" if version_2 else "v1.1"
  for split in ("train", "dev"):
    with open(os.path.join(root, f"{split}-{suffix}.json"), "w") as f:
      json.dump(data, f)
  return root


def _write_race(root):
  rng = random.Random(3)
  for split, articles in (("train", 4), ("dev", 3)):
    for level in ("middle", "high"):
      for a in range(articles):
        # Articles from 2 to 14 tokens: with MAX_SEQ_LENGTH 16 (12 after the specials) some are cut.
        article = _words(rng, rng.randint(2, 14))
        questions = [_words(rng, rng.randint(1, 3)) for _ in range(2)]
        options = [[_words(rng, rng.randint(1, 3)) for _ in range(4)] for _ in questions]
        answers = ["ABCD"[(a + q) % 4] for q in range(len(questions))]
        directory = os.path.join(root, split, level)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"{a}.txt"), "w") as f:
          json.dump({"article": article, "questions": questions, "options": options, "answers": answers}, f)
  return root


SQUAD_PARAMS = {
    # Short windows (16 - question - 3 tokens) with a stride of 3 or 4: the long context needs 3+ windows.
    "squad_v1": ["SquadTask.doc_stride = 3", "SquadTask.max_query_length = 5", "SquadTask.n_best_size = 5",
                 "SquadTask.max_answer_length = 4"],
    "squad_v2": ["SquadTask.doc_stride = 4", "SquadTask.max_query_length = 5",
                 "SquadTask.null_score_diff_threshold = 0.1"],
}


@pytest.fixture(scope="module")
def served_qa(run_dirs, tmp_path_factory):
  """Tiny SQuAD 1.1, SQuAD 2.0 and RACE runs, exported and served in one fresh process."""
  root = tmp_path_factory.mktemp("qa")
  jobs, out = {}, {}
  for task in ("squad_v1", "squad_v2", "race"):
    if task == "race":
      data_dir, params = _write_race(str(root / "race_data")), ["LAYERWISE_DECAY = 1.0"]
    else:
      data_dir, params = _write_squad(str(root / f"{task}_data"), task == "squad_v2"), SQUAD_PARAMS[task]
    run_dir, path = str(root / task), str(root / f"{task}_saved")
    assert _finetune([f"--gin_file=finetune/{task}.gin", f"--init_checkpoint={run_dirs['pretrained']}",
                      f"--data_dir={data_dir}", f"--model_dir={run_dir}", "--gin_param=BATCH_SIZE = 4",
                      f"--gin_param=MAX_SEQ_LENGTH = {MAX_SEQ_LENGTH}", "--gin_param=EPOCHS = 2",
                      "--gin_param=LEARNING_RATE = 1e-3"] + [f"--gin_param={p}" for p in params]) == 0
    start = time.time()
    assert export_cli.cli(["export", f"--model_dir={run_dir}", f"--output_dir={path}"]) == 0
    export_s = time.time() - start
    if task == "race":
      examples = race.read_examples(data_dir, "dev")
      inputs = {"article": [e.article for e in examples], "question": [e.question for e in examples],
                "options": [e.options for e in examples]}
    else:
      dev_file = os.path.join(data_dir, "dev-v2.0.json" if task == "squad_v2" else "dev-v1.1.json")
      examples = squad.read_examples(dev_file, is_training=False, version_2=task == "squad_v2")
      with open(dev_file) as f:
        contexts = {qa["id"]: p["context"] for a in json.load(f)["data"] for p in a["paragraphs"] for qa in p["qas"]}
      inputs = {"question": [e.question_text for e in examples], "context": [contexts[e.qas_id] for e in examples]}
    jobs[task] = {"path": path, "inputs": inputs}
    out[task] = {"run_dir": run_dir, "path": path, "examples": examples, "inputs": inputs, "export_s": export_s}
  served = _serve_in_fresh_process(jobs, str(root))
  for task in out:
    out[task]["served"] = served[task]
    print(f"{task}: export {out[task]['export_s']:.1f} s; fresh process: import {served['import_s']:.1f} s, "
          f"load {served[task]['load_s']:.2f} s, first call {served[task]['first_call_s']:.2f} s, then one "
          f"example {1000 * served[task]['call_s']:.1f} ms (median of 10)")
  return out


@pytest.mark.parametrize("task", ["squad_v1", "squad_v2"])
def test_squad_saved_model_answers_every_dev_question_as_the_runner(served_qa, task):
  job = served_qa[task]
  run = finetuned.read_finetuning_run(job["run_dir"])
  settings = squad_export.squad_settings(run)
  assert settings["version_2"] == (task == "squad_v2") and settings["max_query_length"] == 5
  examples, served = job["examples"], job["served"]
  assert served["signature"] == ["context", "question"]
  # Windows: the runner's features, id for id, with each position's word and max-context flag.
  rows = squad.convert_examples_to_features(examples, run.load_tokenizer(), MAX_SEQ_LENGTH, settings["doc_stride"],
                                            settings["max_query_length"], is_training=False, first_example_index=0)
  encoded = {k: np.asarray(v) for k, v in served["encoded"].items()}
  np.testing.assert_array_equal(encoded["input_word_ids"], [r.input_ids for r in rows])
  np.testing.assert_array_equal(encoded["input_mask"], [r.input_mask for r in rows])
  np.testing.assert_array_equal(encoded["input_type_ids"], [r.segment_ids for r in rows])
  np.testing.assert_array_equal(encoded["example_index"], [r.example_index for r in rows])
  np.testing.assert_array_equal(encoded["window_index"], [r.doc_span_index for r in rows])
  for row, words, max_context in zip(rows, encoded["token_to_word"], encoded["token_is_max_context"]):
    assert {p: w for p, w in enumerate(words) if w >= 0} == row.token_to_orig_map
    assert {p: bool(max_context[p]) for p in row.token_to_orig_map} == row.token_is_max_context
  outputs = served["outputs"]
  assert max(outputs["num_windows"]) >= 3 and min(outputs["num_windows"]) == 1
  # Answers: the runner's dev predictions file, question for question.
  seed_dir = os.path.join(job["run_dir"], "seed_0")
  with open(os.path.join(seed_dir, "predictions.json")) as f:
    predictions = json.load(f)
  assert {e.qas_id: a for e, a in zip(examples, outputs["answer"])} == predictions
  assert outputs["has_answer"] == [bool(predictions[e.qas_id]) for e in examples]
  if task == "squad_v2":
    with open(os.path.join(seed_dir, "null_odds.json")) as f:
      null_odds = json.load(f)
    np.testing.assert_allclose(outputs["null_score_diff"], [null_odds[e.qas_id] for e in examples], atol=1e-5)
    # The run's threshold splits the tiny dev set: both decisions are served.
    assert 0 < sum(outputs["has_answer"]) < len(examples), outputs["null_score_diff"]
  # Offsets: the answer's words in the context, as Python string indices.
  for context, answer, start, end in zip(job["inputs"]["context"], outputs["answer"], outputs["answer_start"],
                                         outputs["answer_end"]):
    if not answer:
      assert start == end == -1
      continue
    assert " ".join(context[start:end].split()) == answer
    assert start == 0 or context[start - 1].isspace()
    assert end == len(context) or context[end].isspace()
  # Contexts without a word have no answer (not a graph error).
  empty = served["empty_contexts"]
  assert empty["answer"] == ["", ""] and empty["has_answer"] == [False, False] and empty["answer_start"] == [-1, -1]
  # The metric of the served answers is the runner's.
  gold = squad_metrics.gold_answers_from_examples(examples)
  with open(os.path.join(seed_dir, "metrics.json")) as f:
    final = json.load(f)["final_metrics"]
  if task == "squad_v1":
    assert squad_metrics.evaluate_v1(gold, predictions)["f1"] == final["f1"]


def test_squad_answer_offsets_are_characters_of_the_context(served_qa):
  """Answers after the accented word: offsets count characters (Python indices), not UTF-8 bytes."""
  job = served_qa["squad_v1"]
  outputs = job["served"]["outputs"]
  exact = 0
  for context, answer, start, end in zip(job["inputs"]["context"], outputs["answer"], outputs["answer_start"],
                                         outputs["answer_end"]):
    accent = context.find("caf\u00e9")
    # Where the answer's words are one space apart in the context, the slice is the answer itself.
    if answer and 0 <= accent < start and " ".join(context[start:end].split()) == context[start:end]:
      assert context[start:end] == answer
      assert len(context[:start].encode()) > start  # the byte offset would be off by one
      exact += 1
  assert exact > 0, outputs["answer"]


def test_race_saved_model_reproduces_the_runner(served_qa):
  job = served_qa["race"]
  run = finetuned.read_finetuning_run(job["run_dir"])
  examples, served = job["examples"], job["served"]
  assert served["signature"] == ["article", "options", "question"]
  stats = collections.Counter()
  rows = [race.convert_example(e, run.load_tokenizer(), MAX_SEQ_LENGTH, stats) for e in examples]
  assert stats["article_truncated"] > 0  # article-only truncation is exercised
  features = {"input_word_ids": np.asarray([r.input_ids for r in rows], np.int32),
              "input_mask": np.asarray([r.input_mask for r in rows], np.int32),
              "input_type_ids": np.asarray([r.segment_ids for r in rows], np.int32)}
  for key, value in features.items():
    np.testing.assert_array_equal(np.asarray(served["encoded"][key]), value, err_msg=key)
  predictor = prediction.Predictor(finetuned.load_task_model(run), tf.distribute.get_strategy(), global_batch_size=4)
  logits = predictor(features)["logits"]
  outputs = served["outputs"]
  np.testing.assert_allclose(outputs["logits"], logits, atol=1e-5)
  np.testing.assert_allclose(outputs["probabilities"], [race.option_probabilities(x) for x in logits.tolist()],
                             atol=1e-5)
  assert outputs["answer_index"] == [race.predict_option(x) for x in logits.tolist()]
  assert outputs["answer"] == ["ABCD"[i] for i in outputs["answer_index"]]
  with open(os.path.join(job["run_dir"], "seed_0", "metrics.json")) as f:
    final = json.load(f)["final_metrics"]
  predicted = {e.guid: i for e, i in zip(examples, outputs["answer_index"])}
  assert race.evaluate(examples, predicted)["accuracy"] == final["accuracy"]


def test_run_json_records_what_serving_needs_and_an_older_run_is_a_one_line_error(served_qa, tmp_path, capsys):
  run = finetuned.read_finetuning_run(served_qa["squad_v2"]["run_dir"])
  assert run.info["task_serving"] == {"version_2": True, **{k: v for k, v in squad_export.squad_settings(run).items()
                                                              if k != "version_2"}}
  assert run.info["task_serving"]["null_score_diff_threshold"] == 0.1
  assert finetuned.read_finetuning_run(served_qa["race"]["run_dir"]).info["task_serving"] == {"num_choices": 4}
  # A run written before run.json recorded them: the export says how to get them, in one line.
  old_run = str(tmp_path / "old_squad")
  shutil.copytree(served_qa["squad_v2"]["run_dir"], old_run)
  info_path = os.path.join(old_run, "run.json")
  with open(info_path) as f:
    info = json.load(f)
  del info["task_serving"]
  with open(info_path, "w") as f:
    json.dump(info, f)
  assert export_cli.cli(["export", f"--model_dir={old_run}", f"--output_dir={tmp_path / 'saved'}"]) == 1
  err = capsys.readouterr().err.strip()
  assert "does not record version_2, doc_stride" in err and "re-run" in err and "\n" not in err
