"""Pieces of the stages: batched tokenizing as the per-sentence tokenizer, and the executor's task sharing."""
import os
import random
import threading
import time
import types

import numpy as np
import pytest

from data_prep import build_config
from data_prep import corpus_readers
from data_prep import executor as executor_lib
from data_prep import extract
from data_prep import pipeline
from data_prep import sources
from data_prep import wordpiece
from tpu_electra.data import tokenization

DOCUMENTS = [
    ("Plain text.", "",
     "Caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \u2014 \u201cquoted\u201d \u4e2d\u6587 emoji \U0001F600."),
    (),  # A document without sentences.
    ("word " * 700,),  # Far longer than any sequence.
    ("   ", "\u200b", "x"),  # Whitespace only, a zero-width space, one letter.
    ("https://example.com/" + "a" * 150,),  # A word over the tokenizer's byte limit: one [UNK].
]


LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
VOCAB = list(tokenization.SPECIAL_TOKENS) + ["plain", "text", "word", "quoted", "."] + LETTERS + ["##" + c for c in LETTERS]


@pytest.fixture(scope="module", params=["tensorflow_text", "data_prep.wordpiece"])
def tokenizer(request):
  """The op of tpu_electra.data.tokenization, and data_prep.wordpiece (which the builder uses for WordPiece)."""
  if request.param == "tensorflow_text":
    return tokenization.WordpieceTokenizer(VOCAB, do_lower_case=True)
  return wordpiece.WordpieceTokenizer(VOCAB, do_lower_case=True)


def test_tokenized_documents_hold_what_the_per_sentence_tokenizer_gives(tokenizer, monkeypatch):
  monkeypatch.setattr(pipeline, "TOKENIZE_BATCH_SENTENCES", 2)  # Batches that cut across documents.
  tokenized = pipeline.tokenize_documents(DOCUMENTS, tokenizer)
  expected = [[tokenizer.tokenize(s) for s in document] for document in DOCUMENTS]
  assert tokenized.as_lists() == expected
  assert tokenized.document_sizes.tolist() == [len(d) for d in DOCUMENTS]
  assert tokenized.sentence_lengths.tolist() == [len(s) for d in expected for s in d]
  assert tokenized.tokens.dtype == np.int64 and tokenized.tokens.tolist() == [t for d in expected for s in d for t in s]


def test_no_documents_tokenize_to_empty_arrays(tokenizer):
  tokenized = pipeline.tokenize_documents([], tokenizer)
  assert len(tokenized) == 0 and tokenized.tokens.size == 0 and tokenized.as_lists() == []


def staged_documents(rng, count):
  """Documents as extract_part stages them: sentences stripped, never empty, without newlines."""
  words = ["Plain", "text", "word", "quoted.", "caf\u00e9", "\u4e2d\u6587", "x" * 120, "a\u00a0b", "c\rd", "e\x0bf",
           "\u200bg", "(h)", "i-j", "\U0001F600"]
  return [[" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 9))]
          for _ in range(count)]


@pytest.mark.parametrize("held_out_below", [0, 1500, 4096])
def test_staged_text_tokenizes_as_the_documents_read_from_it(tmp_path, held_out_below):
  documents = staged_documents(random.Random(held_out_below), 60)
  blocks = [("\n".join(d) + "\n\n").encode("utf-8") for d in documents]
  path = tmp_path / "part-00000.txt"
  path.write_bytes(b"".join(blocks))
  tokenizer = wordpiece.WordpieceTokenizer(VOCAB, do_lower_case=True)
  start = sum(len(b) for b in blocks[:7])  # A unit that starts and ends at document boundaries inside the file.
  end = start + sum(len(b) for b in blocks[7:50])
  task = types.SimpleNamespace(staged_path=str(path), start=start, end=end, held_out_below=held_out_below)
  training, held_out = pipeline._tokenize_staged_text(task, tokenizer)  # pylint: disable=protected-access
  texts = [d.paragraphs for d in corpus_readers.read_text_documents(str(path), start, end)]
  held = [extract.document_bucket(t) < held_out_below for t in texts]
  for found, expected in ((training, [t for t, h in zip(texts, held) if not h]),
                          (held_out, [t for t, h in zip(texts, held) if h])):
    expected = pipeline.tokenize_documents(expected, tokenizer)
    assert found.document_sizes.tolist() == expected.document_sizes.tolist()
    assert found.sentence_lengths.tolist() == expected.sentence_lengths.tolist()
    assert found.tokens.dtype == np.int64 and found.tokens.tolist() == expected.tokens.tolist()
  if held_out_below == 1500:
    assert 0 < len(held_out) < len(texts)  # Both splits hold documents.


class _SlowStartingPool:
  """Stands in for the process pool: ready only when `ready` is set, then runs tasks in a thread."""

  def __init__(self):
    self.ready = threading.Event()
    self.ran = []

  def apply_async(self, fn, args, callback, error_callback):
    def run():
      try:
        result = fn(*args)
      except Exception as e:  # pylint: disable=broad-except
        error_callback(e)
        return
      self.ran.append(args[0])
      callback(result)
    threading.Thread(target=run).start()


def _executor_with(pool):
  executor = executor_lib.Executor(2)

  def get_pool():
    pool.ready.wait()
    executor._pool = pool  # pylint: disable=protected-access
    return pool

  executor._get_pool = get_pool  # pylint: disable=protected-access
  executor.warm_up = lambda: None
  return executor


def test_this_process_runs_tasks_until_the_pool_is_up_then_the_pool_runs_the_rest():
  pool = _SlowStartingPool()
  executor = _executor_with(pool)
  seen = []

  def task(x):
    seen.append(x)
    if len(seen) == 3:
      pool.ready.set()  # The pool comes up while this process runs its third task...
      time.sleep(0.5)  # ... which takes long enough for the pool to be handed the rest.
    return x * x

  results = sorted(executor.imap_unordered(task, list(range(10))))
  assert results == [x * x for x in range(10)]
  assert 3 <= len(seen) - len(pool.ran) <= 4 and pool.ran  # A few here, the rest in the pool, none twice.
  assert sorted(seen) == list(range(10))


def test_an_error_in_a_pool_task_reaches_the_caller():
  pool = _SlowStartingPool()
  pool.ready.set()
  executor = _executor_with(pool)
  executor._pool = pool  # pylint: disable=protected-access

  def task(x):
    if x == 4:
      raise ValueError("task 4 failed")
    return x

  with pytest.raises(ValueError, match="task 4 failed"):
    list(executor.imap_unordered(task, list(range(8))))


@pytest.mark.parametrize("skip_bad_files", [False, True])
def test_a_part_extracted_file_by_file_is_the_part_extracted_whole(tmp_path, corpora, skip_bad_files):
  books, paths = corpora.write_books(tmp_path / "books", num_books=5)
  if skip_bad_files:
    with open(paths[3], "ab") as f:
      f.write(b"\xff\xfe not utf-8\n")
  part = sources.plan_parts("books", paths, 1 << 30)[0]
  assert len(part.paths) == 5
  summaries, staged = [], []
  for name in ("whole", "by-file"):
    work = tmp_path / name
    (work / "text").mkdir(parents=True)
    task = build_config.ExtractTask(0, part, str(work), skip_bad_files, unit_bytes=1200)
    if name == "whole":
      summary = extract.extract_part(task)
    else:
      pieces = extract.extract_work([task])
      assert len(pieces) == 5
      summary = extract.join_pieces(task, [extract.extract_work_item(p) for p in pieces])
      assert sorted(os.listdir(work / "text")) == ["part-00000.json", "part-00000.txt"]
    staged.append((work / "text" / "part-00000.txt").read_bytes())
    summaries.append({k: v for k, v in summary.items() if k != "path"})
  assert staged[0] == staged[1] and summaries[0] == summaries[1]
  assert len(summaries[0]["blocks"]) > 2 and summaries[0]["bad_files"] == ([paths[3]] if skip_bad_files else [])
