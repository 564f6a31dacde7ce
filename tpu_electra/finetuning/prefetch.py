"""Running a stage of feature preparation in a thread of its own, a few items ahead of its consumer."""
import queue
import threading
from typing import Any, Iterable, Iterator

_DONE = object()


def in_background(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
  """`items`, produced by a thread of their own up to `depth` ahead (an error is raised here).

  Preparation is a pipeline of stages that hold Python's lock at different times: reading TSV
  rows (all Python), tokenizing (tensorflow_text runs without it) and encoding and writing records
  (mostly NumPy); in threads of their own they overlap when a second core is free.
  """
  results: "queue.Queue" = queue.Queue(maxsize=depth)
  stop = threading.Event()

  def produce():
    iterator = iter(items)
    try:
      for item in iterator:
        if stop.is_set():
          return
        results.put((item, None))
      results.put((_DONE, None))
    except BaseException as e:  # pylint: disable=broad-except
      results.put((_DONE, e))
    finally:
      close = getattr(iterator, "close", None)
      if close is not None:
        close()  # Stops an upstream stage (and closes its file) when this one stops early.

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    while True:
      item, error = results.get()
      if error is not None:
        raise error
      if item is _DONE:
        return
      yield item
  finally:
    stop.set()
    while thread.is_alive():  # Unblock a producer waiting on a full queue, then let it finish.
      try:
        results.get(timeout=0.1)
      except queue.Empty:
        pass
    thread.join()
