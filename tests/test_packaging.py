"""The package as users get it: a wheel, installed anywhere, run from any directory; clean output.

The wheel is built from a copy of the sources (so no `build/` of an earlier build in the checkout
can leak stale files into it) with the venv's own pip and setuptools, offline
(`--no-build-isolation --no-index`). It is installed with `pip install --target T` and run with
`PYTHONPATH=T` from a directory that is not the checkout. That isolates it from the checkout's
editable install: the editable install is a finder that `__editable__*.pth` appends to the END of
`sys.meta_path`, after the standard path finder that searches `sys.path` (PYTHONPATH first), so
`tpu_electra`, `data_prep` and `launch` come from T — which the first test checks rather than
assumes. (An editable install made before `benchmarks` left the package list still maps it, so
its absence is checked in the wheel itself.)
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("setup.py", "tpu_electra", "data_prep", "launch", "benchmarks")
HINT = "e.g. from the embedded Wikipedia fragment: "


def _run(argv, cwd, env, timeout=600):
  return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  source = tmp_path_factory.mktemp("source")
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
  for name in SOURCES:
    path = os.path.join(REPO_DIR, name)
    if os.path.isdir(path):
      shutil.copytree(path, source / name, ignore=ignore)
    else:
      shutil.copy(path, source / name)
  out = tmp_path_factory.mktemp("wheels")
  built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                "-w", str(out), str(source)], cwd=str(source), env=os.environ)
  assert built.returncode == 0, built.stdout
  wheels = [name for name in os.listdir(out) if name.endswith(".whl")]
  assert len(wheels) == 1, wheels
  return str(out / wheels[0])


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
  """(environment with PYTHONPATH=T, an unrelated working directory)."""
  target = tmp_path_factory.mktemp("site")
  done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
               wheel], cwd=str(target), env=os.environ)
  assert done.returncode == 0, done.stdout
  env = dict(os.environ, PYTHONPATH=str(target))
  return env, str(target), str(tmp_path_factory.mktemp("elsewhere"))


def test_wheel_holds_the_gin_configs_and_only_the_three_packages(wheel):
  with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    top_level_txt = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    top_level = set(archive.read(top_level_txt).decode().split())
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
  assert top_level == {"tpu_electra", "data_prep", "launch"}
  assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == top_level
  gin_dir = os.path.join(REPO_DIR, "tpu_electra", "gin")
  shipped = sorted(os.path.relpath(os.path.join(d, f), REPO_DIR).replace(os.sep, "/")
                   for d, _, files in os.walk(gin_dir) for f in files if f.endswith(".gin"))
  assert len(shipped) > 20 and "tpu_electra/gin/smoke/electra.gin" in shipped
  assert sorted(n for n in names if n.endswith(".gin")) == shipped
  assert re.search(r"^Requires-Python: >=3\.11,<3\.14$", metadata, re.M), metadata


def test_installed_package_is_imported_from_the_install_not_the_checkout(installed):
  env, target, elsewhere = installed
  code = ("import os, tpu_electra, data_prep, launch\n"
          "from tpu_electra import gin_utils\n"
          "for m in (tpu_electra, data_prep, launch): print(os.path.dirname(m.__file__))\n"
          "print(gin_utils.GIN_DIR)\n"
          "print(gin_utils.resolve_gin_file('finetune/cola.gin'))\n"
          "print(gin_utils.resolve_gin_file('experiments/electra_small.gin'))\n")
  done = _run([sys.executable, "-c", code], cwd=elsewhere, env=env)
  assert done.returncode == 0, done.stdout
  lines = done.stdout.splitlines()[-6:]
  assert lines[:3] == [os.path.join(target, name) for name in ("tpu_electra", "data_prep", "launch")]
  assert lines[3] == os.path.join(target, "tpu_electra", "gin")
  assert lines[4:] == [os.path.join(target, "tpu_electra", "gin", "finetune", "cola.gin"),
                       os.path.join(target, "tpu_electra", "gin", "experiments", "electra_small.gin")]


def test_readme_smoke_run_from_an_unrelated_directory(installed, embedded_cache):
  env, _, elsewhere = installed
  env = dict(env, TPU_ELECTRA_CACHE=embedded_cache)  # the Wikipedia fragment, fetched once per machine
  pretrain = [sys.executable, "-m", "tpu_electra.pretrain", "--gin_file=smoke/electra.gin",
              "--gin_param=TRAIN_STEPS = 2", "--gin_param=WARMUP_STEPS = 1", "--gin_param=CHECKPOINT_EVERY = 2",
              "--gin_param=EVAL_EVERY = 2", "--gin_param=EVAL_BATCHES = 1", "--model_dir=smoke_model"]

  # No data yet: the error names the command that builds it, complete, at the end of its line.
  missing = _run(pretrain, cwd=elsewhere, env=env)
  assert missing.returncode == 1, missing.stdout
  hint = next(line for line in missing.stdout.splitlines() if HINT in line)
  assert "no manifest.json in 'runs/data/enwiki_embedded'" in hint
  command = shlex.split(hint.split(HINT, 1)[1])
  assert command[:3] == ["python", "-m", "data_prep.build"]
  assert command[-1] == "--output_dir=runs/data/enwiki_embedded"

  built = _run([sys.executable] + command[1:], cwd=elsewhere, env=env)
  assert built.returncode == 0, built.stdout
  assert os.path.isfile(os.path.join(elsewhere, "runs", "data", "enwiki_embedded", "manifest.json"))

  trained = _run(pretrain, cwd=elsewhere, env=env)
  assert trained.returncode == 0, trained.stdout
  assert os.path.isfile(os.path.join(elsewhere, "smoke_model", "ckpt-2.index")), trained.stdout
  assert "gradient_clip_norm=0" not in trained.stdout
  assert "Sharding callback duration" not in trained.stdout
  # On a machine without a GPU, TensorFlow may log the one line README documents as harmless; nothing else.
  for output in (missing.stdout, built.stdout, trained.stdout):
    cuda_lines = [line for line in output.splitlines() if "cuInit" in line]
    assert len(cuda_lines) <= 1 and all("failed call to cuInit" in line for line in cuda_lines), cuda_lines


def test_importing_the_package_sets_the_keras_environment_and_patches_nothing(tmp_path):
  # No import hook, no redirected stderr, no TensorFlow: only the environment TensorFlow reads when it loads.
  code = ("import os, sys\n"
          "finders, stderr = list(sys.meta_path), os.fstat(2)[:3]\n"
          "import tpu_electra\n"
          "assert sys.meta_path == finders, sys.meta_path\n"
          "assert os.fstat(2)[:3] == stderr\n"
          "assert 'tensorflow' not in sys.modules\n"
          "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'\n"
          "import tensorflow as tf\n"
          "import tf_keras\n"
          "assert tf.keras.layers.Dense is tf_keras.layers.Dense\n")
  env = {name: value for name, value in os.environ.items() if name != "TF_USE_LEGACY_KERAS"}
  done = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr
