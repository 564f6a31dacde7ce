"""Progress lines with an ETA, the machine, and the process's peak memory, for the equal-compute study."""
import os
import platform
import resource
import time
from typing import Dict

import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf


def format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes}m{seconds:02d}s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours}h{minutes:02d}m"


class Progress:
  """One phase's log lines: each run started and finished, with the phase's elapsed time and ETA.

  `total` counts the units (runs, or fine-tuning seeds) this phase has to compute; work found done
  is not in it. The ETA is the mean time of the units computed so far times the units left.
  """

  def __init__(self, phase: str, total: int):
    self.phase = phase
    self.total = total
    self.done = 0
    self.compute_seconds = 0.0
    self.start = time.time()

  def _status(self) -> str:
    if self.done:
      eta = format_seconds(self.compute_seconds / self.done * (self.total - self.done))
    else:
      eta = "unknown"
    return (f"{self.done}/{self.total} done, {format_seconds(time.time() - self.start)} elapsed, "
            f"ETA {eta if self.done < self.total else '0s'}")

  def started(self, what: str, units: int = 1) -> None:
    print(f"[{self.phase}] {what}: started ({units} to compute; {self._status()})", flush=True)

  def finished(self, what: str, units: int, seconds: float) -> None:
    self.done += units
    self.compute_seconds += seconds
    print(f"[{self.phase}] {what}: finished in {format_seconds(seconds)} ({self._status()})", flush=True)

  def reused(self, what: str) -> None:
    print(f"[{self.phase}] {what}: reused, nothing to compute", flush=True)


def peak_rss_mb() -> float:
  """This process's peak resident set size so far (Linux reports ru_maxrss in KiB), in MiB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> Dict[str, object]:
  """The CPU model, its cores (all, and those this process may use), the OS and TensorFlow."""
  cpu_model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu_model = names[0] if names else cpu_model
  except OSError:  # Not Linux.
    pass
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"cpu_model": cpu_model, "cpu_cores": os.cpu_count(), "usable_cores": usable,
          "platform": platform.platform(), "python": platform.python_version(), "tensorflow": tf.__version__,
          "gpus": len(tf.config.list_physical_devices("GPU"))}
