"""Fine-tuning features prepared once: record format, batched conversion, the cache and the streams."""
import json
import logging
import os
import random

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra.data import tokenization
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import feature_cache
from tpu_electra.finetuning import feature_records
from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import features
from tpu_electra.finetuning import glue
from tpu_electra.finetuning import race
from tpu_electra.finetuning import squad
from tpu_electra.finetuning import squad_decode
from tpu_electra.finetuning import squad_metrics
from tpu_electra.finetuning import tagging
from tpu_electra.finetuning import tasks
from tpu_electra.training import seeding

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"w{i}" for i in range(10, 60)]


def _tokenizer(extra=()):
  """A real tensorflow_text WordPiece tokenizer over w10..w59 (plus `extra` pieces)."""
  return tokenization.WordpieceTokenizer(SPECIALS + WORDS + ["##s"] + list(extra), do_lower_case=True)


def _sentence(rng, low=1, high=30):
  return " ".join(rng.choice(WORDS) + ("s" if rng.random() < 0.2 else "") for _ in range(rng.randint(low, high)))


def _write_mnli(root, rng, rows=(40, 10, 10)):
  header = "\t".join(["index", "promptID", "pairID", "genre", "s1b", "s2b", "s1p", "s2p", "sentence1", "sentence2",
                      "label1", "gold_label"])
  labels = ("contradiction", "entailment", "neutral")
  os.makedirs(os.path.join(root, "MNLI"), exist_ok=True)
  for split, n in zip(("train", "dev_matched", "dev_mismatched"), rows):
    lines = [header] + ["\t".join([str(i), "0", "0", "g", "()", "()", "()", "()", _sentence(rng), _sentence(rng),
                                   labels[i % 3], labels[(i * 7) % 3]]) for i in range(n)]
    with open(os.path.join(root, "MNLI", f"{split}.tsv"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return root


def _reference_glue(data_dir, name, split, tokenizer, max_seq_length):
  task = glue.get_task(name)
  rows = [glue.convert_example(e, task, tokenizer, max_seq_length) for e in glue.read_examples(data_dir, name, split)]
  return {"input_word_ids": np.asarray([r.input_ids for r in rows]), "input_mask": np.asarray([r.input_mask for r in rows]),
          "input_type_ids": np.asarray([r.segment_ids for r in rows]), "label_ids": np.asarray([r.label_id for r in rows])}


def _assert_arrays_equal(got, expected):
  assert sorted(got) == sorted(expected)
  for name in expected:
    np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# ----------------------------------------------------------------------------------------------
# Records


def test_records_round_trip_every_kind_of_feature_and_cut_the_padding():
  rng = np.random.default_rng(0)
  rows, length = 37, 12
  lengths = rng.integers(0, length + 1, size=rows)
  positions = np.arange(length)[None, :]
  ids = np.where(positions < lengths[:, None], rng.integers(0, 70000, size=(rows, length)), 5)
  choices = np.where(positions[None] < lengths[:, None, None], rng.integers(0, 200, size=(rows, 3, length)), 0)
  labels = np.where(positions < lengths[:, None], rng.integers(-1, 9, size=(rows, length)), -1)
  arrays = {"input_word_ids": ids, "choices": choices, "label_ids": labels,
            "score": rng.normal(size=rows).astype(np.float32), "start": rng.integers(-5, 500, size=rows)}
  record_format = feature_records.RecordFormat([
      feature_records.sequence_spec("input_word_ids", [length], pad=5, high=69999),
      feature_records.sequence_spec("choices", [3, length], pad=0, high=199),
      feature_records.sequence_spec("label_ids", [length], pad=-1, low=-1, high=8),
      feature_records.scalar_spec("score", "float32"),
      feature_records.scalar_spec("start")])
  assert [s.storage for s in record_format.specs[:3]] == ["uint32", "uint8", "uint8"]
  records = record_format.encode(arrays)
  # Fixed part (4 + 4 bytes), then per position 4 + 3 + 1 bytes, up to the row's last non-pad position.
  assert [len(r) for r in records] == [8 + 8 * n for n in lengths]
  decoded = {k: v.numpy() for k, v in record_format.decode(tf.constant(records)).items()}
  _assert_arrays_equal(decoded, arrays)
  assert decoded["input_word_ids"].dtype == np.int32 and decoded["score"].dtype == np.float32
  again = feature_records.RecordFormat.from_json(json.loads(json.dumps(record_format.to_json())))
  _assert_arrays_equal({k: v.numpy() for k, v in again.decode(tf.constant(records)).items()}, arrays)


def test_records_of_fixed_features_only():
  record_format = feature_records.RecordFormat([feature_records.scalar_spec("label_ids"),
                                              feature_records.scalar_spec("scores", "float32", [2])])
  arrays = {"label_ids": np.asarray([3, -1, 7]), "scores": np.asarray([[0.5, 1], [2, 3], [-1, 0]], np.float32)}
  records = record_format.encode(arrays)
  assert [len(r) for r in records] == [12, 12, 12]
  _assert_arrays_equal({k: v.numpy() for k, v in record_format.decode(tf.constant(records)).items()}, arrays)


def test_records_refuse_values_their_storage_cannot_hold():
  record_format = feature_records.RecordFormat([feature_records.sequence_spec("input_mask", [4], pad=0, high=1)])
  with pytest.raises(ValueError, match="values outside"):
    record_format.encode({"input_mask": np.asarray([[1, 1, 256, 0]])})
  with pytest.raises(ValueError, match="expected shape"):
    record_format.encode({"input_mask": np.zeros([2, 5], np.int32)})


# ----------------------------------------------------------------------------------------------
# Batched conversion equals the per-example converters


def test_vectorized_truncation_is_the_one_token_at_a_time_loop():
  lengths = np.arange(15)
  len_a, len_b = [g.ravel() for g in np.meshgrid(lengths, lengths)]
  for max_length in range(12):
    got_a, got_b = features.truncate_pair_lengths(len_a, len_b, max_length)
    expected = [glue.truncate_pair(list(range(a)), list(range(b)), max_length) for a, b in zip(len_a, len_b)]
    assert list(zip(got_a.tolist(), got_b.tolist())) == expected


def test_ragged_packing_is_pack_segments_row_for_row():
  rng = random.Random(3)
  ids = features.SpecialIds(cls=101, sep=102, pad=7)
  for segment_types, max_length in (([0], 9), ([0, 1], 12), ([0, 1, 1], 16)):
    segments = [[[rng.randint(10, 99) for _ in range(rng.randint(0, 4))] for _ in range(20)] for _ in segment_types]
    ragged = []
    for rows in segments:
      flat = np.asarray([t for row in rows for t in row], np.int64)
      splits = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
      ragged.append((flat, splits, np.asarray([len(r) for r in rows])))
    packed = features.pack_ragged(ragged, max_length, ids)
    for i in range(20):
      expected = features.pack_segments([s[i] for s in segments], segment_types, max_length, ids)
      assert packed["input_word_ids"][i].tolist() == expected.input_ids
      assert packed["input_mask"][i].tolist() == expected.input_mask
      assert packed["input_type_ids"][i].tolist() == expected.segment_ids


@pytest.mark.parametrize("use_real_tokenizer", [False, True])
@pytest.mark.parametrize("name", ["mnli", "sst2", "stsb"])
def test_batched_glue_conversion_is_convert_example_row_for_row(tmp_path, tokenizer, use_real_tokenizer, name):
  rng = random.Random(1)
  tok = _tokenizer() if use_real_tokenizer else tokenizer
  task = glue.get_task(name)
  examples = [glue.GlueExample(f"train-{i}", _sentence(rng, 0, 40), None if name == "sst2" else _sentence(rng, 0, 40),
                               float(i % 5) if task.is_regression else task.label_list[i % len(task.label_list)])
              for i in range(60)]
  for max_seq_length in (5, 16, 64):
    got = glue.convert_examples(examples, task, tok, max_seq_length)
    rows = [glue.convert_example(e, task, tok, max_seq_length) for e in examples]
    assert got["input_word_ids"].tolist() == [r.input_ids for r in rows]
    assert got["input_mask"].tolist() == [r.input_mask for r in rows]
    assert got["input_type_ids"].tolist() == [r.segment_ids for r in rows]
    assert got["label_ids"].tolist() == [r.label_id for r in rows]


def test_memo_tokenizer_answers_as_the_tokenizer_with_one_batched_call():
  tok = _tokenizer()
  texts = ["w10 w11s", "", "w12", "w10 w11s"]
  memo = features.MemoTokenizer(tok, texts)
  assert [memo.tokenize(t) for t in texts] == [tok.tokenize(t) for t in texts]
  assert memo.tokenize("w13 w14") == tok.tokenize("w13 w14")  # Outside the set: asked on demand.
  flat, splits = features.tokenize_ragged(tok, texts, batch_size=3)
  assert [flat[splits[i]:splits[i + 1]].tolist() for i in range(len(texts))] == [tok.tokenize(t) for t in texts]


# ----------------------------------------------------------------------------------------------
# The cache


@pytest.fixture
def mnli_dir(tmp_path):
  return _write_mnli(str(tmp_path / "glue"), random.Random(0))


def test_prepared_features_are_the_reference_features_and_stream_back(mnli_dir):
  tok = _tokenizer()
  data = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  assert data.features["source"] == "built"
  assert data.features["dir"].startswith(os.path.join(mnli_dir, feature_cache.DEFAULT_DIR_NAME, "mnli-24-"))
  assert data.num_train == 40 and [e.num_rows for e in data.evals] == [10, 10]
  _assert_arrays_equal(data.train.read_all(), _reference_glue(mnli_dir, "mnli", "train", tok, 24))
  _assert_arrays_equal(data.evals[0].features.read_all(), _reference_glue(mnli_dir, "mnli", "dev_matched", tok, 24))
  # Scoring reads the gold labels kept beside the features: perfect logits score 1.
  gold = _reference_glue(mnli_dir, "mnli", "dev_mismatched", tok, 24)["label_ids"]
  metrics, _ = data.evals[1].score({"logits": np.eye(3)[gold]})
  assert metrics == {"accuracy": 1.0}


def test_second_prepare_reuses_the_cache_without_converting_anything(mnli_dir, monkeypatch):
  tok = _tokenizer()
  first = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  expected = first.train.read_all()

  def fail(*args, **kwargs):
    raise AssertionError("converted again")

  monkeypatch.setattr(glue, "convert_fields", fail)
  second = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  assert second.features["source"] == "cache" and second.features["dir"] == first.features["dir"]
  _assert_arrays_equal(second.train.read_all(), expected)


@pytest.mark.parametrize("change", ["vocab", "casing", "max_seq_length", "task_file", "task_settings"])
def test_a_changed_vocab_setting_or_file_misses_the_cache(mnli_dir, tmp_path, change):
  tok = _tokenizer()
  adapter = tasks.get_task("mnli")
  first = adapter.prepare(mnli_dir, tok, 24)
  max_seq_length = 24
  if change == "vocab":
    tok = _tokenizer(extra=["w99"])
  elif change == "casing":
    tok = tokenization.WordpieceTokenizer(SPECIALS + WORDS + ["##s"], do_lower_case=False)
  elif change == "max_seq_length":
    max_seq_length = 32
  elif change == "task_file":
    with open(os.path.join(mnli_dir, "MNLI", "train.tsv"), "a") as f:
      f.write("\t".join(["40", "0", "0", "g", "()", "()", "()", "()", "w10", "w11", "neutral", "neutral"]) + "\n")
  if change == "task_settings":
    # Another task over the same kind of files: the settings are part of the key.
    squad_dir = str(tmp_path / "squad")
    _write_squad(squad_dir)
    base = adapters.SquadTask(version_2=True).prepare(squad_dir, tok, 32)
    other = adapters.SquadTask(version_2=True, doc_stride=2).prepare(squad_dir, tok, 32)
    assert other.features["source"] == "built" and other.features["dir"] != base.features["dir"]
    assert adapters.SquadTask(version_2=True).prepare(squad_dir, tok, 32).features["source"] == "cache"
    return
  second = adapter.prepare(mnli_dir, tok, max_seq_length)
  assert second.features["source"] == "built"
  assert second.features["key"] != first.features["key"]
  if change == "task_file":
    assert second.num_train == 41


def _only_shard(data):
  (path,) = data.train.files
  return path


@pytest.mark.parametrize("damage", ["truncated_shard", "flipped_byte", "missing_shard", "garbage_index",
                                    "index_of_another_key", "corrupt_metadata"])
def test_a_corrupt_cache_is_rebuilt_with_a_warning(mnli_dir, caplog, damage):
  tok = _tokenizer()
  first = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  expected = first.train.read_all()
  shard = _only_shard(first)
  index_path = os.path.join(first.features["dir"], feature_cache.INDEX_NAME)
  if damage == "truncated_shard":
    with open(shard, "r+b") as f:
      f.truncate(os.path.getsize(shard) - 7)
  elif damage == "flipped_byte":
    with open(shard, "r+b") as f:
      f.seek(100)
      byte = f.read(1)
      f.seek(100)
      f.write(bytes([byte[0] ^ 0xFF]))
  elif damage == "missing_shard":
    os.remove(shard)
  elif damage == "garbage_index":
    with open(index_path, "w") as f:
      f.write('{"format_version": 1, "key": ')
  elif damage == "index_of_another_key":
    with open(index_path) as f:
      index = json.load(f)
    index["key"] = "0" * 64
    with open(index_path, "w") as f:
      json.dump(index, f)
  elif damage == "corrupt_metadata":
    build = os.path.dirname(shard)
    with open(os.path.join(build, "dev_matched.meta.npz"), "r+b") as f:
      f.seek(10)
      f.write(b"\0\0\0\0")
  caplog.set_level(logging.WARNING)
  second = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  assert second.features["source"] == "built"
  assert "is corrupt or incomplete" in caplog.text and "rebuilding it" in caplog.text
  _assert_arrays_equal(second.train.read_all(), expected)
  # The damaged build is gone; the rebuilt one is used from now on.
  builds = [n for n in os.listdir(second.features["dir"]) if n.startswith("build-")]
  if damage not in ("garbage_index",):
    assert builds == [os.path.basename(os.path.dirname(_only_shard(second)))]
  assert tasks.get_task("mnli").prepare(mnli_dir, tok, 24).features["source"] == "cache"


def test_a_build_killed_half_way_leaves_no_index_and_is_redone(mnli_dir, monkeypatch):
  tok = _tokenizer()
  real = glue.convert_fields
  calls = []

  def dies_on_the_second_split(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt("killed")
    return real(*args, **kwargs)

  monkeypatch.setattr(glue, "convert_fields", dies_on_the_second_split)
  with pytest.raises(KeyboardInterrupt):
    tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  root = os.path.join(mnli_dir, feature_cache.DEFAULT_DIR_NAME)
  (cache_dir,) = [n for n in os.listdir(root) if n.startswith("mnli-")]
  assert not os.path.exists(os.path.join(root, cache_dir, feature_cache.INDEX_NAME))
  monkeypatch.setattr(glue, "convert_fields", real)
  again = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  assert again.features["source"] == "built"
  _assert_arrays_equal(again.train.read_all(), _reference_glue(mnli_dir, "mnli", "train", tok, 24))


def test_features_go_under_the_cache_dir_when_given_and_to_the_user_cache_beside_read_only_data(mnli_dir, tmp_path,
                                                                                         monkeypatch):
  tok = _tokenizer()
  data = tasks.get_task("mnli").prepare(mnli_dir, tok, 24, cache_dir=str(tmp_path / "cache"))
  assert data.features["dir"].startswith(str(tmp_path / "cache"))
  monkeypatch.setenv(feature_cache.CACHE_ENV, str(tmp_path / "user_cache"))
  monkeypatch.setattr(feature_cache, "_writable", lambda root: False)
  data = tasks.get_task("mnli").prepare(mnli_dir, tok, 24)
  assert data.features["dir"].startswith(str(tmp_path / "user_cache" / "finetune_features"))
  assert data.features["source"] == "built"
  # Features prepared beside the data while it was writable are read from there once it is not.
  monkeypatch.setattr(feature_cache, "_writable", lambda root: True)
  beside = tasks.get_task("mnli").prepare(mnli_dir, tok, 32)
  monkeypatch.setattr(feature_cache, "_writable", lambda root: False)
  again = tasks.get_task("mnli").prepare(mnli_dir, tok, 32)
  assert again.features == dict(beside.features, source="cache")
  assert again.features["dir"].startswith(os.path.join(mnli_dir, feature_cache.DEFAULT_DIR_NAME))


def test_file_digests_are_reused_only_for_an_unchanged_old_file(tmp_path, monkeypatch):
  path = tmp_path / "train.tsv"
  path.write_text("a\tb\n")
  old = os.stat(path).st_mtime_ns - 10 * feature_cache.FileDigests.RACY_NS
  os.utime(path, ns=(old, old))
  hashed = []
  real = fileio.file_sha256
  monkeypatch.setattr(fileio, "file_sha256", lambda p: hashed.append(p) or real(p))
  digests = feature_cache.FileDigests(str(tmp_path / "root"))
  first = digests.sha256(str(path))
  digests.save()
  assert feature_cache.FileDigests(str(tmp_path / "root")).sha256(str(path)) == first and len(hashed) == 1
  path.write_text("a\tc\n")  # Same size, new content and time: hashed again.
  assert feature_cache.FileDigests(str(tmp_path / "root")).sha256(str(path)) != first and len(hashed) == 2
  # A file modified just before it was hashed is not remembered (its time could hide a rewrite).
  digests = feature_cache.FileDigests(str(tmp_path / "root"))
  digests.sha256(str(path))
  digests.save()
  feature_cache.FileDigests(str(tmp_path / "root")).sha256(str(path))
  assert len(hashed) == 4


# ----------------------------------------------------------------------------------------------
# Streams


def _many_shards(mnli_dir, monkeypatch, shard_bytes=300):
  monkeypatch.setattr(feature_cache, "SHARD_BYTES", shard_bytes)
  return tasks.get_task("mnli").prepare(mnli_dir, _tokenizer(), 24)


def _rows(dataset, batches):
  return [tuple(row) for batch in dataset.take(batches) for row in batch["input_word_ids"].numpy().tolist()]


def test_training_order_is_a_function_of_the_seed_alone(mnli_dir, monkeypatch):
  data = _many_shards(mnli_dir, monkeypatch)
  assert len(data.train.files) > 4
  streams = {}
  for name, seed in (("first", 5), ("other", 6), ("again", 5)):
    seeding.seed_everything(seed)  # As the runner does before it builds a seed's stream.
    streams[name] = _rows(feature_streams.training_dataset(data.train, 8, seed=seed), 15)
  first = streams["first"]
  assert first == streams["again"] and first != streams["other"]
  # Each epoch (40 rows = 5 batches) is every row once, reshuffled.
  everything = sorted(map(tuple, data.train.read_all()["input_word_ids"].tolist()))
  epochs = [first[i * 40:(i + 1) * 40] for i in range(3)]
  assert all(sorted(e) == everything for e in epochs) and epochs[0] != epochs[1]


@pytest.mark.parametrize("shard_bytes", [300, 1 << 20])
def test_each_host_reads_its_own_share(mnli_dir, monkeypatch, shard_bytes):
  data = _many_shards(mnli_dir, monkeypatch, shard_bytes)
  shares = []
  for host in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=host, num_replicas_in_sync=2)
    dataset = feature_streams.training_dataset(data.train, 1, seed=0, input_context=context)
    shares.append(set(_rows(dataset, 80)))
  everything = set(map(tuple, data.train.read_all()["input_word_ids"].tolist()))
  # By file when there are enough files, by record otherwise: disjoint halves that cover the split.
  assert not shares[0] & shares[1] and shares[0] | shares[1] == everything
  if shard_bytes > 1000:
    assert len(data.train.files) == 1 and abs(len(shares[0]) - len(shares[1])) <= 1


def test_evaluation_streams_rows_in_order_padded_to_whole_batches(mnli_dir):
  data = tasks.get_task("mnli").prepare(mnli_dir, _tokenizer(), 24)
  split = data.evals[0].features
  batches = list(feature_streams.evaluation_dataset(split, 4, "example_index"))
  assert len(batches) == 3
  index = np.concatenate([b["example_index"].numpy() for b in batches])
  assert index.tolist() == list(range(10)) + [-1, -1]
  ids = np.concatenate([b["input_word_ids"].numpy() for b in batches])
  np.testing.assert_array_equal(ids[:10], split.read_all()["input_word_ids"])


# ----------------------------------------------------------------------------------------------
# SQuAD, tagging and RACE through the cache


def _write_squad(root):
  rng = random.Random(4)
  paragraphs = []
  for p in range(3):
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 30))]
    context = " ".join(words)
    qas = []
    for q in range(3):
      first = rng.randrange(len(words) - 2)
      answer = " ".join(words[first:first + 2])
      start = len(" ".join(words[:first])) + (1 if first else 0)
      if q == 2:
        qas.append({"id": f"{p}-{q}", "question": _sentence(rng, 1, 5), "answers": [], "is_impossible": True})
      else:
        qas.append({"id": f"{p}-{q}", "question": _sentence(rng, 1, 5),
                    "answers": [{"text": answer, "answer_start": start}]})
    paragraphs.append({"context": context, "qas": qas})
  data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}
  os.makedirs(root, exist_ok=True)
  for name in ("train-v2.0.json", "dev-v2.0.json"):
    with open(os.path.join(root, name), "w") as f:
      json.dump(data, f)
  return root


def test_squad_features_and_answers_survive_the_cache(tmp_path):
  tok = _tokenizer()
  squad_dir = _write_squad(str(tmp_path / "squad"))
  adapter = adapters.SquadTask(version_2=True, doc_stride=4, max_query_length=6)
  data = adapter.prepare(squad_dir, tok, 20)
  train_examples = squad.read_examples(os.path.join(squad_dir, "train-v2.0.json"), True, True)
  train_rows = squad.convert_examples_to_features(train_examples, tok, 20, 4, 6, is_training=True)
  got = data.train.read_all()
  assert got["input_word_ids"].tolist() == [r.input_ids for r in train_rows]
  assert got["input_type_ids"].tolist() == [r.segment_ids for r in train_rows]
  assert got["start_positions"].tolist() == [r.start_position for r in train_rows]
  assert got["end_positions"].tolist() == [r.end_position for r in train_rows]
  dev_examples = squad.read_examples(os.path.join(squad_dir, "dev-v2.0.json"), False, True)
  dev_rows = squad.convert_examples_to_features(dev_examples, tok, 20, 4, 6, is_training=False)
  assert data.evals[0].features.read_all()["input_word_ids"].tolist() == [r.input_ids for r in dev_rows]
  # The same logits decode to the same answers and scores as with the in-memory features.
  rng = np.random.default_rng(0)
  outputs = {"start_logits": rng.normal(size=(len(dev_rows), 20)), "end_logits": rng.normal(size=(len(dev_rows), 20))}
  assert data.features["source"] == "built"
  for data in (data, adapter.prepare(squad_dir, tok, 20)):
    metrics, files = data.evals[0].score(outputs)
    expected = squad_decode.decode_predictions(
        dev_examples, dev_rows, [squad_decode.RawResult(r.unique_id, s.tolist(), e.tolist())
                                 for r, s, e in zip(dev_rows, outputs["start_logits"], outputs["end_logits"])],
        version_2=True)
    assert files["predictions.json"] == expected.answers
    assert files["null_odds.json"] == expected.null_score_diffs
    assert metrics == squad_metrics.evaluate_v2(squad_metrics.gold_answers_from_examples(dev_examples),
                                                expected.answers, na_probs=expected.null_score_diffs,
                                                na_prob_threshold=0.0)


def test_tagging_features_and_scores_survive_the_cache(tmp_path):
  tok = _tokenizer()
  rng = random.Random(5)
  for split in ("train", "dev"):
    sentences = ["\n".join(f"{rng.choice(WORDS)}{'s' if rng.random() < .3 else ''} {rng.choice(['B-X', 'I-X', 'O'])}"
                           for _ in range(rng.randint(1, 12))) for _ in range(9)]
    (tmp_path / f"{split}.txt").write_text("\n\n".join(sentences) + "\n")
  adapter = adapters.TaggingTask(name="ner", chunked=True)
  data = adapter.prepare(str(tmp_path), tok, 10)
  train_examples = tagging.read_examples(str(tmp_path / "train.txt"), "train")
  dev_examples = tagging.read_examples(str(tmp_path / "dev.txt"), "dev")
  label_list = tagging.label_list_from_examples(train_examples + dev_examples)
  rows = [tagging.convert_example(e, label_list, tok, 10) for e in train_examples]
  got = data.train.read_all()
  assert got["input_word_ids"].tolist() == [r.input_ids for r in rows]
  assert got["label_ids"].tolist() == [r.label_ids for r in rows]
  dev_rows = [tagging.convert_example(e, label_list, tok, 10) for e in dev_examples]
  logits = np.random.default_rng(1).normal(size=(len(dev_rows), 10, len(label_list)))
  predicted = {row.guid: tagging.word_tags(row, np.argmax(logits[i], -1).tolist(), label_list)
               for i, row in enumerate(dev_rows)}
  expected = tagging.evaluate_examples(dev_examples, predicted, chunked=True)
  assert data.evals[0].score({"logits": logits})[0] == expected
  again = adapter.prepare(str(tmp_path), tok, 10)
  assert again.features["source"] == "cache" and again.evals[0].score({"logits": logits})[0] == expected


def test_race_features_and_scores_survive_the_cache(tmp_path):
  tok = _tokenizer()
  rng = random.Random(6)
  for split in ("train", "dev"):
    for level in race.LEVELS:
      os.makedirs(tmp_path / split / level)
      for i in range(2):
        record = {"article": _sentence(rng, 5, 40), "questions": [_sentence(rng, 1, 4) for _ in range(2)],
                  "options": [[_sentence(rng, 1, 4) for _ in range(4)] for _ in range(2)],
                  "answers": [rng.choice("ABCD") for _ in range(2)], "id": f"{i}"}
        (tmp_path / split / level / f"{i}.txt").write_text(json.dumps(record))
  data = adapters.RaceTask().prepare(str(tmp_path), tok, 24)
  examples = race.read_examples(str(tmp_path), "train")
  rows = [race.convert_example(e, tok, 24) for e in examples]
  got = data.train.read_all()
  assert got["input_word_ids"].shape == (8, 4, 24)
  assert got["input_word_ids"].tolist() == [r.input_ids for r in rows]
  assert got["input_type_ids"].tolist() == [r.segment_ids for r in rows]
  assert got["label_ids"].tolist() == [r.label for r in rows]
  dev = race.read_examples(str(tmp_path), "dev")
  logits = np.eye(4)[[e.label for e in dev]]
  metrics, _ = adapters.RaceTask().prepare(str(tmp_path), tok, 24).evals[0].score({"logits": logits})
  assert metrics["accuracy"] == 1.0


def test_progress_lines_say_rows_rate_and_eta():
  now = [100.0]
  progress = feature_cache.Progress("preparing mnli train", total=1000, clock=lambda: now[0])
  now[0] = 110.0
  assert progress.line(250) == "preparing mnli train: 250 rows (25%), 25 rows/s, ETA 30 s"
  assert progress.line(500, fraction=0.25).endswith("(25%), 50 rows/s, ETA 30 s")


def test_tsv_lines_split_as_the_csv_module_reads_them(tmp_path):
  import csv  # pylint: disable=g-import-not-at-top
  text = ('a\t"quoted b"\tc\n\nd\t\t\r\n\'x\' "y\te\rf\tg\n"unbalanced\tquote\n\t\n\r\nlast\twithout end')
  path = tmp_path / "rows.tsv"
  path.write_bytes(text.encode("utf-8"))
  with open(path, encoding="utf-8", newline="") as f:
    expected = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
  assert glue.read_tsv_rows(str(path)) == expected
  assert expected[0] == ["a", '"quoted b"', "c"] and [] in expected


def test_a_full_disk_while_preparing_is_one_line_naming_the_cache_and_keeps_no_index(mnli_dir, monkeypatch):
  def full(writer, arrays):
    raise tf.errors.ResourceExhaustedError(None, None, f"{writer.directory}/train-00000.tfrecord; No space left on "
                                           "device")

  monkeypatch.setattr(feature_cache.SplitWriter, "write", full)
  with pytest.raises(feature_records.FeatureCacheError) as raised:
    tasks.get_task("mnli").prepare(mnli_dir, _tokenizer(), 24)
  root = os.path.join(mnli_dir, feature_cache.DEFAULT_DIR_NAME)
  (cache_dir,) = [n for n in os.listdir(root) if n.startswith("mnli-")]
  message = str(raised.value)
  assert "\n" not in message
  assert message.startswith(f"no space left to write features into {os.path.join(root, cache_dir)} ("), message
  assert "No space left on device); a build without its index is never used: free space there or pass " \
         "--feature_cache_dir=" in message, message
  assert os.listdir(os.path.join(root, cache_dir)) == []  # The partial build is removed.
