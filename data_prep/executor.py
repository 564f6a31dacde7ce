"""Running a stage's tasks: in this process or on a pool of local workers (Executor), with a progress
line every few seconds (Progress, run_stage).
"""
import collections
import multiprocessing
import queue
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import fork_server
from data_prep.build_config import MB

PROGRESS_EVERY_S = 5.0


class Progress:
  """Logs a stage's progress every few seconds: done / total, rate, ETA and running counts."""

  def __init__(self, stage: str, total: float, unit: str, every_s: float = PROGRESS_EVERY_S):
    self._stage = stage
    self._total = total
    self._unit = unit
    self._every_s = every_s
    self._start = time.monotonic()
    self._last = self._start
    self._logged = None
    self.done = 0.0

  def _amount(self, value: float) -> str:
    if self._unit != "B":
      return f"{value:.0f} {self._unit}"
    return f"{value / MB:.1f} MB" if value >= MB else f"{value / 1024:.1f} kB"

  def advance(self, amount: float, force: bool = False, **counts: int) -> None:
    self.done += amount
    now = time.monotonic()
    if force and self._logged == (self.done, counts):
      return  # The last line already said it.
    if not force and now - self._last < self._every_s:
      return
    self._last = now
    self._logged = (self.done, dict(counts))
    elapsed = max(now - self._start, 1e-9)
    rate = self.done / elapsed
    share = self.done / self._total if self._total else 1.0
    eta = (self._total - self.done) / rate if rate > 0 else float("inf")
    extra = "".join(f", {k}={v}" for k, v in counts.items())
    logging.info("%s: %s of %s (%.0f%%), %s/s, ETA %s, %.0f s so far%s", self._stage, self._amount(self.done),
                 self._amount(self._total), 100 * share, self._amount(rate), _duration(eta), elapsed, extra)


def _duration(seconds: float) -> str:
  if seconds == float("inf"):
    return "unknown"
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Executor:
  """Runs tasks in this process (one worker) or in a pool of local worker processes.

  Workers come from a fork server that has imported data_prep.pipeline (and with it every stage)
  once, so a worker starts without importing anything itself; the fork server never runs a
  TensorFlow op (nor, for WordPiece builds, imports TensorFlow), so no runtime threads are forked. The command line starts the fork
  server before its own imports (data_prep.fork_server), so that both import at once; otherwise the
  pool starts in the background on first use. Until it is up, this process runs a stage's tasks
  itself rather than wait. Which process runs a task never changes its output.
  """

  def __init__(self, num_workers: int):
    self.num_workers = num_workers
    self._pool = None
    self._lock = threading.Lock()
    self._warming: Optional[threading.Thread] = None

  def __enter__(self) -> "Executor":
    return self

  def warm_up(self) -> None:
    """Starts the pool in the background (the fork server imports TensorFlow meanwhile)."""
    if self.num_workers > 1 and self._warming is None:
      self._warming = threading.Thread(target=self._get_pool, daemon=True)
      self._warming.start()

  def __exit__(self, *exc_info) -> None:
    if self._warming is not None:
      self._warming.join()
    with self._lock:
      if self._pool is not None:
        # terminate(), not close(): after an error, queued tasks must not keep running.
        self._pool.terminate()
        self._pool.join()
        self._pool = None

  def _get_pool(self):
    with self._lock:
      if self._pool is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([fork_server.POOL_MODULE])
        self._pool = context.Pool(self.num_workers)
      return self._pool

  def imap_unordered(self, fn: Callable, tasks: Sequence) -> Iterable:
    if self.num_workers == 1 or len(tasks) <= 1:
      return map(fn, tasks)
    return self._shared(fn, tasks)

  def _shared(self, fn: Callable, tasks: Sequence) -> Iterator:
    """Results of fn over tasks as they finish: the pool's, and this process's own while the pool starts."""
    pending = collections.deque(tasks)
    finished: "queue.Queue[Tuple[bool, object]]" = queue.Queue()

    def feed(pool) -> None:
      # Hands every task not yet taken to the pool, at once: from here on this process only waits.
      while True:
        try:
          task = pending.popleft()
        except IndexError:
          return
        try:
          pool.apply_async(fn, (task,), callback=lambda r: finished.put((True, r)),
                           error_callback=lambda e: finished.put((False, e)))
        except ValueError as e:  # The pool was terminated: the build is stopping.
          finished.put((False, e))
          return

    if self._pool is not None:
      feed(self._pool)
    else:
      self.warm_up()
      threading.Thread(target=lambda: feed(self._get_pool()), daemon=True).start()
    for _ in range(len(tasks)):
      try:
        task = pending.popleft()
      except IndexError:
        ok, result = finished.get()
        if not ok:
          raise result
        yield result
      else:
        yield fn(task)

  def map(self, fn: Callable, tasks: Sequence) -> List:
    if self.num_workers == 1 or len(tasks) <= 1:
      return [fn(t) for t in tasks]
    return self._get_pool().map(fn, tasks)


def run_stage(stage: str, executor: Executor, fn: Callable, tasks: Sequence, weights: Sequence[float], unit: str,
              counts: Callable[[object], Dict[str, int]] = lambda result: {},
              timings: Optional[Dict[str, float]] = None) -> List:
  """Results of fn over tasks, in task order, with progress lines as tasks finish; its seconds in `timings`."""
  start = time.monotonic()
  progress = Progress(stage, sum(weights), unit)
  totals: Dict[str, int] = {}
  results = [None] * len(tasks)
  indexed = [(i, t) for i, t in enumerate(tasks)]
  for index, result in executor.imap_unordered(_IndexedCall(fn), indexed):
    results[index] = result
    for key, value in counts(result).items():
      totals[key] = totals.get(key, 0) + value
    progress.advance(weights[index], **totals)
  progress.advance(0, force=True, **totals)
  if timings is not None:
    timings[stage] = time.monotonic() - start
  return results


class _IndexedCall:
  """fn(task) tagged with the task's index; a class, not a closure, so that it pickles."""

  def __init__(self, fn: Callable):
    self._fn = fn

  def __call__(self, indexed):
    index, task = indexed
    return index, self._fn(task)
