"""End to end: a small text corpus becomes a vocab, shards and a manifest the trainer accepts."""
import json
import os
import random

from absl.testing import flagsaver
import pytest
import tensorflow as tf

from data_prep import build
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization

WORDS = ("river mountain forest valley city village harbor bridge tower castle garden market school library "
         "museum station the a of and in on to was is were are near old new large small quiet busy").split()


def _write_corpus(directory, num_documents=30, seed=0):
  rng = random.Random(seed)
  os.makedirs(directory, exist_ok=True)
  for part in range(2):
    lines = []
    for _ in range(num_documents // 2):
      for _ in range(rng.randint(3, 12)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 15))]
        lines.append(" ".join(words).capitalize() + ". " + rng.choice(WORDS).capitalize() + " " + rng.choice(WORDS) + ".")
      lines.append("")
    with open(os.path.join(directory, f"part-{part}.txt"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return directory


def _config(tmp_path, **overrides):
  fields = dict(corpus=(f"text:{_write_corpus(str(tmp_path / 'corpus'))}",), vocab="wordpiece:300", do_lower_case=True,
                max_seq_length=32, output_dir=str(tmp_path / "out"), shuffle_buffer=64)
  fields.update(overrides)
  return build.BuildConfig(**fields)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("build")
  config = _config(tmp_path, min_shards=3)
  return config, build.build(config)


def test_manifest_is_accepted_by_the_trainer_side_reader(built):
  config, written = built
  manifest = manifest_lib.read_manifest(config.output_dir)
  assert manifest == written
  assert manifest.vocab_size == 300 and manifest.vocab_type == "wordpiece"
  assert manifest.special_token_ids == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
  assert manifest.max_seq_length == 32 and manifest.num_documents == 30
  assert len(manifest.shards) == 3
  manifest_lib.check_compatible(manifest, config.output_dir, vocab_size=300, seq_length=32)
  assert not tf.io.gfile.exists(os.path.join(config.output_dir, build.WORK_DIR))


def test_shards_parse_with_declared_features_and_counts_match(built):
  config, manifest = built
  spec = {name: tf.io.FixedLenFeature([manifest.max_seq_length], tf.int64) for name in manifest_lib.EXAMPLE_FEATURES}
  dataset = tf.data.TFRecordDataset(manifest.shard_paths(config.output_dir)).map(
      lambda record: tf.io.parse_single_example(record, spec))
  num_examples = num_tokens = 0
  for features in dataset.as_numpy_iterator():
    num_examples += 1
    num_tokens += int(features["input_mask"].sum())
    assert features["input_ids"][0] == manifest.special_token_ids["[CLS]"]
    assert (features["input_ids"] < manifest.vocab_size).all()
  assert (num_examples, num_tokens) == (manifest.num_examples, manifest.num_tokens)
  assert num_examples > 30


def test_tokenizer_from_manifest_reads_back_the_text(built):
  config, manifest = built
  tokenizer = tokenization.from_manifest(manifest, config.output_dir)
  ids = tokenizer.tokenize("The old castle near the quiet river.")
  assert tokenizer.special_token_ids["[UNK]"] not in ids
  assert "".join(tokenizer.convert_ids_to_tokens(ids)).replace("##", "") == "theoldcastlenearthequietriver."


def test_same_settings_are_not_rebuilt(built, monkeypatch):
  config, manifest = built
  monkeypatch.setattr(build, "extract", lambda *a: pytest.fail("a complete build must not be redone"))
  assert build.build(config) == manifest


def test_other_settings_in_the_same_directory_need_overwrite(built):
  config, _ = built
  changed = build.BuildConfig(**{**config.__dict__, "seed": 1})
  with pytest.raises(build.BuildError, match="built with other settings .* --overwrite"):
    build.build(changed)


def test_overwrite_may_reuse_the_vocab_already_in_the_directory(tmp_path):
  config = _config(tmp_path)
  first = build.build(config)
  vocab_path = first.vocab_path(config.output_dir)
  second = build.build(build.BuildConfig(**{**config.__dict__, "vocab": vocab_path, "overwrite": True}))
  assert second.settings_hash != first.settings_hash
  assert second.vocab_size == first.vocab_size and os.path.exists(vocab_path)


def test_interrupted_or_damaged_data_with_same_settings_is_rebuilt(tmp_path):
  config = _config(tmp_path)
  first = build.build(config)
  os.remove(first.shard_paths(config.output_dir)[0])
  second = build.build(config)
  assert (second.num_examples, second.num_tokens, second.settings_hash) == (first.num_examples, first.num_tokens,
                                                                           first.settings_hash)
  assert all(os.path.exists(p) for p in second.shard_paths(config.output_dir))


def test_bad_file_is_skipped_and_counted_when_asked(tmp_path):
  bad_dir = tmp_path / "bad"
  bad_dir.mkdir()
  (bad_dir / "dump.xml.bz2").write_bytes(b"BZh9 not really bzip2")
  config = _config(tmp_path, corpus=(f"text:{_write_corpus(str(tmp_path / 'corpus'))}", f"wikipedia:{bad_dir}"),
                   skip_bad_files=True)
  assert build.build(config).num_bad_files == 1
  with pytest.raises(build.sources.SourceError, match="dump.xml.bz2 is truncated or corrupt"):
    build.build(build.BuildConfig(**{**config.__dict__, "skip_bad_files": False, "output_dir": str(tmp_path / "o2")}))


def test_existing_vocab_is_reused_and_copied_in(built, tmp_path):
  config, first = built
  vocab_path = first.vocab_path(config.output_dir)
  second = build.build(_config(tmp_path, vocab=vocab_path))
  assert second.vocab_size == first.vocab_size
  with open(vocab_path) as a, open(os.path.join(tmp_path / "out", second.vocab_file)) as b:
    assert a.read() == b.read()


def test_learned_sentencepiece_vocab_builds_end_to_end(tmp_path):
  manifest = build.build(_config(tmp_path, vocab="sentencepiece:60"))
  assert (manifest.vocab_type, manifest.vocab_file, manifest.vocab_size) == ("sentencepiece", "spm.model", 60)
  assert manifest.special_token_ids == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
  tokenizer = tokenization.from_manifest(manifest, str(tmp_path / "out"))
  assert tokenizer.special_token_ids["[UNK]"] not in tokenizer.tokenize("The old castle near the river.")
  assert manifest.num_examples > 30


def test_cli_reports_errors_in_one_line(tmp_path):
  with flagsaver.flagsaver():
    build.FLAGS(["build", f"--corpus=text:{tmp_path}/nothing-*.txt", f"--output_dir={tmp_path / 'out'}"])
    with pytest.raises(SystemExit) as raised:
      build.main(["build"])
  assert str(raised.value) == f"data_prep.build: --corpus=text:{tmp_path}/nothing-*.txt matches no files"


def test_settings_hash_is_stable_and_sensitive():
  settings = {"a": 1, "b": [1, 2]}
  assert build.settings_hash(settings) == build.settings_hash({"b": [1, 2], "a": 1})
  assert build.settings_hash(settings) != build.settings_hash({"a": 2, "b": [1, 2]})
  assert json.loads(json.dumps(settings)) == settings
