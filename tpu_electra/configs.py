"""The shipped gin configs: python -m tpu_electra.configs lists each with the first line of its comment.

A config is named by its path under tpu_electra/gin/ (package data), e.g. smoke/electra.gin, as
--gin_file takes it. This module reads only the files (no gin, no TensorFlow), so the entry points'
--help and a misspelt --gin_file answer before TensorFlow loads.
"""
import difflib
import os
import sys
from typing import List, Sequence

GIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gin")
# The directories of configs a pretraining command is given (finetune/ holds the task configs).
PRETRAINING_DIRS = ("smoke", "experiments")
FINETUNING_DIRS = ("finetune",)


def shipped() -> List[str]:
  """Every shipped config's name (its path under GIN_DIR, with '/'), sorted."""
  names = []
  for directory, _, files in os.walk(GIN_DIR):
    relative = os.path.relpath(directory, GIN_DIR)
    names += [name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
              for name in files if name.endswith(".gin")]
  return sorted(names)


def first_comment_line(name: str) -> str:
  """The first comment line of a shipped config (its summary), without the '#'."""
  with open(os.path.join(GIN_DIR, name), encoding="utf-8") as f:
    for line in f:
      if line.startswith("#"):
        return line.lstrip("#").strip()
  return ""


def nearest(name: str, count: int = 3) -> List[str]:
  """The shipped configs whose names are closest to `name` (a misspelt --gin_file)."""
  names = shipped()
  close = difflib.get_close_matches(name, names, n=count, cutoff=0.5)
  # A right file name in the wrong directory ('electra.gin') is close to its full name only by its basename.
  by_basename = [n for n in names if os.path.basename(n) == os.path.basename(name) and n not in close]
  return (close + by_basename)[:count]


def summary(directories: Sequence[str]) -> str:
  """The shipped config names of `directories`, one group per directory, for --gin_file's help."""
  names = shipped()
  groups = []
  for directory in directories:
    stems = [n[len(directory) + 1:-len(".gin")] for n in names if n.startswith(directory + "/")]
    groups.append(f"{directory}/{{{', '.join(stems)}}}.gin")
  return "; ".join(groups)


def listing() -> str:
  """Every shipped config with its first comment line, aligned."""
  names = shipped()
  width = max(len(n) for n in names)
  return "\n".join(f"{name:<{width}}  {first_comment_line(name)}" for name in names)


def main(argv: Sequence[str]) -> int:
  if list(argv[1:]) in (["-h"], ["--help"]):
    print(__doc__)
    return 0
  if len(argv) > 1:
    print(f"error: python -m tpu_electra.configs takes no arguments, got {' '.join(argv[1:])}", file=sys.stderr)
    return 1
  print(f"Shipped gin configs (in {GIN_DIR}; pass one as --gin_file=NAME):")
  print(listing())
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
