"""A fresh clone stands on its own: no file points outside the repository, and TensorBoard starts."""
import importlib.metadata
import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Assembled, so that this file does not name what it looks for.
OUTSIDE = ".." + "/shared"


def _tracked_files():
  listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
  return [name for name in listed.decode("utf-8").split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
  offenders = []
  for name in _tracked_files():
    path = os.path.join(REPO_ROOT, name)
    if not os.path.isfile(path):  # Deleted in the work tree, not yet in the index.
      continue
    with open(path, "rb") as f:
      for number, line in enumerate(f, 1):
        if OUTSIDE.encode() in line:
          offenders.append(f"{name}:{number}")
  assert not offenders, f"these lines point outside the repository ({OUTSIDE}): {offenders}"


def test_tensorboard_starts_from_this_environment():
  """The README's `tensorboard --logdir=...`: tensorboard 2.20 imports pkg_resources as it starts,
  which needs the setuptools setup.py pins; a fresh process, as a user runs it."""
  tensorboard = shutil.which("tensorboard", path=os.path.dirname(sys.executable))
  assert tensorboard, f"no tensorboard script beside {sys.executable}"
  process = subprocess.run([tensorboard, "--version"], capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stderr[-2000:]
  assert process.stdout.strip() == importlib.metadata.version("tensorboard")
