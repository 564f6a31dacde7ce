"""Starts the worker pool's fork server early: before `python -m data_prep.build` does its own imports.

Local workers are forked from a fork server that imports data_prep.pipeline once (see
data_prep.executor.Executor). Started from the first lines of the command, before the build's imports, both
imports run at once and the workers are ready when the build is.

This module imports nothing heavy on purpose. Only the command line does this, and only when it
asks for several local workers; the pool reuses the server started here (Python keeps one per
process). A command line this does not understand (a --flagfile, say) just starts the server later.
"""
import multiprocessing
import multiprocessing.forkserver
from typing import Optional, Sequence

# The module the fork server imports once and every worker inherits (executor.Executor names the same).
POOL_MODULE = "data_prep.pipeline"


def _flag_values(argv: Sequence[str], name: str) -> Sequence[str]:
  """Values given to --name (or -name), as --name=V or --name V, in order."""
  values = []
  for index, arg in enumerate(argv):
    for prefix in (f"--{name}", f"-{name}"):
      if arg.startswith(prefix + "="):
        values.append(arg[len(prefix) + 1:])
      elif arg == prefix and index + 1 < len(argv):
        values.append(argv[index + 1])
  return values


def requested_workers(argv: Sequence[str]) -> int:
  """The number of local worker processes a data_prep.build command line asks for (1 when unsure)."""
  runner = _flag_values(argv, "runner")
  if runner and runner[-1] != "local":
    return 1
  workers = _flag_values(argv, "num_workers")
  try:
    return int(workers[-1]) if workers else 1
  except ValueError:
    return 1  # absl reports the bad value once the flags are parsed.


def start_early(argv: Sequence[str], module: Optional[str] = POOL_MODULE) -> bool:
  """Starts the fork server (it imports `module` meanwhile) when argv asks for several local workers."""
  if requested_workers(argv) <= 1:
    return False
  multiprocessing.get_context("forkserver").set_forkserver_preload([module])
  multiprocessing.forkserver.ensure_running()
  return True
