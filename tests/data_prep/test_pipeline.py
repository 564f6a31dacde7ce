"""Pieces of the stages: batched tokenizing as the per-sentence tokenizer, and the executor's task sharing."""
import threading
import time

import numpy as np
import pytest

from data_prep import pipeline
from tpu_electra.data import tokenization

DOCUMENTS = [
    ("Plain text.", "",
     "Caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \u2014 \u201cquoted\u201d \u4e2d\u6587 emoji \U0001F600."),
    (),  # A document without sentences.
    ("word " * 700,),  # Far longer than any sequence.
    ("   ", "\u200b", "x"),  # Whitespace only, a zero-width space, one letter.
    ("https://example.com/" + "a" * 150,),  # A word over the tokenizer's byte limit: one [UNK].
]


@pytest.fixture(scope="module")
def tokenizer():
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  pieces = ["plain", "text", "word", "quoted", "."] + letters + ["##" + c for c in letters]
  return tokenization.WordpieceTokenizer(list(tokenization.SPECIAL_TOKENS) + pieces, do_lower_case=True)


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
  executor = pipeline.Executor(2)

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
