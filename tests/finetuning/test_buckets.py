"""Length buckets: batches of one bucket length each, exact for every task kind, seeded, every eval row once."""
import json
import os
import random

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tests.finetuning.test_feature_cache import WORDS, _sentence, _tokenizer, _write_mnli
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import feature_streams
from tpu_electra.finetuning import prediction
from tpu_electra.finetuning import race
from tpu_electra.finetuning import tasks
from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.training import seeding

LENGTH = 40  # Buckets 16, 32, 40.


def test_bucket_lengths_double_from_the_smallest_up_to_the_sequence_length():
  assert feature_streams.bucket_lengths(128) == [16, 32, 64, 128]
  assert feature_streams.bucket_lengths(512) == [16, 32, 64, 128, 256, 512]
  assert feature_streams.bucket_lengths(40) == [16, 32, 40]
  assert feature_streams.bucket_lengths(16) == [16] and feature_streams.bucket_lengths(8) == [8]


def _glue(tmp_path):
  return tasks.get_task("mnli").prepare(_write_mnli(str(tmp_path), random.Random(3), rows=(40, 21, 9)), _tokenizer(),
                                        LENGTH)


def _squad(tmp_path):
  """SQuAD 2.0 with contexts of 3 to 60 words: windows in every bucket, long contexts in several."""
  rng = random.Random(4)
  paragraphs = []
  for p in range(8):
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 60))]
    qas = []
    for q in range(3):
      first = rng.randrange(len(words) - 1)
      start = len(" ".join(words[:first])) + (1 if first else 0)
      answers = [] if q == 2 else [{"text": " ".join(words[first:first + 2]), "answer_start": start}]
      qas.append({"id": f"{p}-{q}", "question": _sentence(rng, 1, 5), "answers": answers, "is_impossible": q == 2})
    paragraphs.append({"context": " ".join(words), "qas": qas})
  for name in ("train-v2.0.json", "dev-v2.0.json"):
    (tmp_path / name).write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}))
  return adapters.SquadTask(version_2=True, doc_stride=8, max_query_length=6).prepare(str(tmp_path), _tokenizer(), LENGTH)


def _tagging(tmp_path):
  rng = random.Random(5)
  for split in ("train", "dev"):
    sentences = ["\n".join(f"{rng.choice(WORDS)}{'s' if rng.random() < .3 else ''} {rng.choice(['B-X', 'I-X', 'O'])}"
                           for _ in range(rng.randint(1, 30))) for _ in range(20)]
    (tmp_path / f"{split}.txt").write_text("\n\n".join(sentences) + "\n")
  return adapters.TaggingTask(name="ner", chunked=True).prepare(str(tmp_path), _tokenizer(), LENGTH)


def _race(tmp_path):
  rng = random.Random(6)
  for split in ("train", "dev"):
    for level in race.LEVELS:
      os.makedirs(tmp_path / split / level)
      for i in range(3):
        record = {"article": _sentence(rng, 1, 30), "questions": [_sentence(rng, 1, 3) for _ in range(2)],
                  "options": [[_sentence(rng, 1, 3) for _ in range(4)] for _ in range(2)],
                  "answers": [rng.choice("ABCD") for _ in range(2)], "id": f"{i}"}
        (tmp_path / split / level / f"{i}.txt").write_text(json.dumps(record))
  return adapters.RaceTask().prepare(str(tmp_path), _tokenizer(), LENGTH)


TASKS = {"glue": _glue, "squad": _squad, "tagging": _tagging, "race": _race}


@pytest.fixture(params=sorted(TASKS))
def task_data(request, tmp_path):
  return TASKS[request.param](tmp_path)


def _assert_cut_exactly(batch, split, full, rows):
  """Each row of `batch` is row `rows[i]` of `full` (the split read at its full length) with every
  sequence feature cut to the batch's length, and what was cut off held nothing but padding."""
  length = batch["input_word_ids"].shape[-1]
  for spec in split.record_format.specs:
    expected = full[spec.name][rows]
    if spec.is_sequence:
      assert (expected[..., length:] == spec.pad).all(), spec.name
      expected = expected[..., :length]
    np.testing.assert_array_equal(np.asarray(batch[spec.name]), expected, err_msg=spec.name)


def test_every_eval_row_once_each_batch_at_its_bucket_length_cut_exactly(task_data):
  lengths = prediction.bucket_lengths(task_data.train, True)
  assert lengths == [16, 32, 40]
  batch_lengths = set()
  for split in [task_data.train] + [e.features for e in task_data.evals]:
    full = split.read_all()
    seen = []
    for batch in feature_streams.evaluation_dataset(split, 4, prediction.INDEX, lengths):
      index = batch.pop(prediction.INDEX).numpy()
      length = batch["input_word_ids"].shape[-1]
      batch_lengths.add(length)
      assert length in lengths and len(index) == 4
      # Fill rows (-1) copy a row of the batch; the others are the split's rows, cut exactly.
      real = index >= 0
      _assert_cut_exactly({k: v.numpy()[real] for k, v in batch.items()}, split, full, index[real])
      # Shorter than this bucket's length: the bucket below would have held the row.
      row_lengths = full["input_mask"][index[real]].reshape(real.sum(), -1, LENGTH).max(axis=1).sum(axis=-1)
      assert (row_lengths <= length).all()
      assert length == 16 or (row_lengths > lengths[lengths.index(length) - 1]).all()
      seen.extend(index[real].tolist())
    assert sorted(seen) == list(range(split.num_rows))
  assert len(batch_lengths) > 1


def test_training_batches_are_seeded_one_bucket_each_and_cut_exactly(task_data):
  lengths = prediction.bucket_lengths(task_data.train, True)
  full = task_data.train.read_all()
  keys = [row.tobytes() for row in full["input_word_ids"]]

  def stream(seed, batches=24):
    seeding.seed_everything(seed)
    dataset = feature_streams.training_dataset(task_data.train, 4, seed=seed, lengths=lengths)
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(batches)]

  first, again, other = stream(1), stream(1), stream(2)
  assert all(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) for a, b in zip(first, again))
  assert any(not np.array_equal(a["input_word_ids"], b["input_word_ids"]) for a, b in zip(first, other))
  seen = set()
  for batch in first:
    length = batch["input_word_ids"].shape[-1]
    assert length in lengths and len(batch["input_word_ids"]) == 4
    # Find each row among the split's rows (ids padded back to the full length).
    padded = np.concatenate([batch["input_word_ids"], np.zeros(batch["input_word_ids"].shape[:-1] + (LENGTH - length,),
                                                               batch["input_word_ids"].dtype)], axis=-1)
    rows = [keys.index(row.tobytes()) for row in padded]
    _assert_cut_exactly(batch, task_data.train, full, rows)
    seen.update(rows)
  assert len(seen) > task_data.num_train // 2


def test_every_pipeline_and_replica_of_a_step_gets_one_length_and_its_own_rows(tmp_path):
  data = _glue(tmp_path)
  lengths = prediction.bucket_lengths(data.train, True)
  per_pipeline = []
  for pipeline in range(2):
    seeding.seed_everything(0)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=4)
    dataset = feature_streams.training_dataset(data.train, 3, seed=0, input_context=context, lengths=lengths)
    per_pipeline.append([batch for batch in dataset.take(12)])  # 6 steps of this pipeline's 2 replicas.
  seeding.seed_everything(0)
  whole = list(feature_streams.training_dataset(data.train, 12, seed=0, lengths=lengths).take(6))
  for step in range(6):
    pieces = [per_pipeline[p][2 * step + r] for p in range(2) for r in range(2)]
    assert {piece["input_word_ids"].shape[-1] for piece in pieces} == {whole[step]["input_word_ids"].shape[-1]}
    # The four replicas' rows are the step's rows of one pipeline's stream, split in order.
    np.testing.assert_array_equal(np.concatenate([piece["input_word_ids"] for piece in pieces]),
                                  whole[step]["input_word_ids"])


def test_bucketed_evaluation_scores_as_the_full_length_one(task_data):
  config = EncoderConfig(vocab_size=_tokenizer().vocab_size, hidden_size=16, num_layers=2, num_heads=2,
                         intermediate_size=32, embedding_size=16, max_position_embeddings=LENGTH)
  tf.keras.utils.set_random_seed(0)
  model = task_data.build_model(TransformerEncoder(config), dropout_rate=0.1)
  strategy = tf.distribute.get_strategy()
  for eval_set in task_data.evals:
    outputs = {}
    for bucketed in (False, True):
      outputs[bucketed] = prediction.Predictor(model, strategy, 4, length_buckets=bucketed)(eval_set.features)
    full = eval_set.features.read_all()
    real = full["input_mask"].astype(bool)
    for name, value in outputs[False].items():
      got = outputs[True][name]
      assert got.shape == value.shape and got.dtype == value.dtype
      if value.ndim >= 2 and value.shape[1] == LENGTH:  # Per position: the real positions agree.
        np.testing.assert_allclose(got[real], value[real], rtol=1e-5, atol=1e-5)
      else:
        np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-5)
    (metrics, files), (expected_metrics, expected_files) = (eval_set.score(outputs[b]) for b in (True, False))
    # The same predictions; thresholds and null odds (SQuAD 2.0) equal within float noise.
    assert metrics == pytest.approx(expected_metrics, rel=1e-5)
    assert files.get("predictions.json") == expected_files.get("predictions.json")
    assert files.get("null_odds.json") == pytest.approx(expected_files.get("null_odds.json"), rel=1e-5, abs=1e-5)
