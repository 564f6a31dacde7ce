"""The entry points answer --help and flag errors before TensorFlow loads; the shipped configs are listed."""
import os
import subprocess
import sys
import time

import pytest

from tpu_electra import configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("tpu_electra.pretrain", "tpu_electra.finetune", "tpu_electra.evaluate", "tpu_electra.export",
                "tpu_electra.convert", "tpu_electra.score", "tpu_electra.flops", "data_prep.build",
                "data_prep.verify", "data_prep.embedded_tasks", "benchmarks.data_prep")
# The benchmarks whose flags' defaults come from TensorFlow-importing modules (the registered
# objectives, the precisions): the same conventions, but --help takes an import of TensorFlow.
BENCHMARKS = ("benchmarks.train_step", "benchmarks.input_pipeline", "benchmarks.resume", "benchmarks.speed",
              "benchmarks.compare_objectives", "benchmarks.finetune_tasks")
LAUNCHERS = ("launch.tpu", "launch.gpu")
# Generous: well under a second on two loaded cores, against 5 to 20 s with TensorFlow imported first.
HELP_SECONDS = 5.0


def _run(module, *args):
  """(the finished process, its seconds, whether it imported TensorFlow) of `python -m module args`."""
  start = time.monotonic()
  done = subprocess.run([sys.executable, "-X", "importtime", "-m", module, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=120, check=False)
  seconds = time.monotonic() - start
  imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
  done.stderr = "".join(line + "\n" for line in done.stderr.splitlines() if not line.startswith("import time:"))
  return done, seconds, "tensorflow" in imported


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_exits_0_at_once_without_tensorflow(module):
  done, seconds, tensorflow = _run(module, "--help")
  assert done.returncode == 0, done.stderr
  assert not tensorflow and seconds < HELP_SECONDS, seconds
  assert "flags:" in done.stdout and "--helpfull" not in done.stderr


@pytest.mark.parametrize("module", BENCHMARKS)
def test_benchmark_help_exits_0_listing_its_flags_and_the_shared_ones(module):
  done, _, _ = _run(module, "--help")
  assert done.returncode == 0, done.stderr
  assert "flags:" in done.stdout and "--helpfull" not in done.stderr
  if module in ("benchmarks.input_pipeline", "benchmarks.resume", "benchmarks.speed"):
    assert "--batch_size:" in done.stdout  # benchmarks.train_step's flags, defined on the same FlagValues.


@pytest.mark.parametrize("module", LAUNCHERS)
def test_launcher_help_exits_0_at_once_without_tensorflow(module):
  done, seconds, tensorflow = _run(module, "--help")
  assert done.returncode == 0, done.stderr
  assert not tensorflow and seconds < HELP_SECONDS, seconds
  assert "--dry_run" in done.stdout


@pytest.mark.parametrize("module", LAUNCHERS)
def test_a_launcher_flag_error_is_one_line_with_the_launchers_status(module):
  done, _, tensorflow = _run(module, "run", "--no_such_flag")
  # 2, not 1: `run` exits with the job's own status, which is most often 1.
  assert done.returncode == 2 and not tensorflow
  assert done.stderr == "error: unrecognized arguments: --no_such_flag (--help lists the flags)\n", done.stderr


@pytest.mark.parametrize("module,shipped", [("tpu_electra.pretrain", "smoke/{ale, bert, electra"),
                                            ("tpu_electra.flops", "experiments/{"),
                                            ("tpu_electra.finetune", "finetune/{")])
def test_help_lists_the_gin_flags_and_the_shipped_configs(module, shipped):
  done, _, _ = _run(module, "--help")
  assert "--gin_file:" in done.stdout and "--gin_param:" in done.stdout
  assert shipped in " ".join(done.stdout.split()) and "python -m tpu_electra.configs" in done.stdout


def test_finetune_help_says_the_encoder_comes_from_run_json():
  done, _, _ = _run("tpu_electra.finetune", "--help")
  assert "run.json" in done.stdout and "operative_config" not in done.stdout


@pytest.mark.parametrize("module,args,expected", [
    ("tpu_electra.pretrain", [], "error: --model_dir is required"),
    ("tpu_electra.finetune", ["--model_dir=x"], "error: --init_checkpoint is required"),
    ("tpu_electra.export", ["--no_such_flag"], "error: Unknown command line flag 'no_such_flag'"),
    ("tpu_electra.evaluate", ["--model_dir=x", "stray"], "error: unexpected arguments: stray"),
    ("data_prep.verify", ["--no_such_flag"], "error: Unknown command line flag 'no_such_flag'"),
    ("data_prep.verify", [], "error: --data_dir is required"),
    ("data_prep.build", ["--corpus=text:x"], "error: --output_dir is required"),
    ("data_prep.build", ["--num_workers=two"], "error: flag --num_workers=two: invalid literal for int()"),
    ("benchmarks.data_prep", ["stray"], "error: unexpected arguments: stray"),
])
def test_a_flag_error_is_one_line_at_once_without_tensorflow(module, args, expected):
  done, seconds, tensorflow = _run(module, *args)
  assert done.returncode == 1
  assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr
  assert not tensorflow and seconds < HELP_SECONDS, seconds


def test_a_misspelt_config_name_suggests_the_nearest_shipped_ones(tmp_path):
  model_dir = tmp_path / "run"
  done, _, tensorflow = _run("tpu_electra.pretrain", "--gin_file=smoke/electr.gin", f"--model_dir={model_dir}")
  assert done.returncode == 1 and not tensorflow
  assert done.stderr.count("\n") == 1, done.stderr
  assert done.stderr.startswith("error: gin file 'smoke/electr.gin' not found")
  assert "did you mean smoke/electra.gin" in done.stderr
  assert not model_dir.exists()
  # A right name in the wrong directory is found by its base name.
  assert configs.nearest("electra_small.gin")[0] == "experiments/electra_small.gin"


def test_configs_lists_every_shipped_gin_file_with_its_first_comment_line():
  done, seconds, tensorflow = _run("tpu_electra.configs")
  assert done.returncode == 0 and not tensorflow and seconds < HELP_SECONDS
  listed = dict(line.split(None, 1) for line in done.stdout.splitlines()[1:])
  on_disk = sorted(os.path.relpath(os.path.join(d, f), configs.GIN_DIR).replace(os.sep, "/")
                   for d, _, files in os.walk(configs.GIN_DIR) for f in files if f.endswith(".gin"))
  assert sorted(listed) == on_disk
  assert listed["smoke/electra.gin"].startswith("A tiny ELECTRA")
  assert listed["finetune/sst2.gin"].startswith("SST-2 (accuracy)")
  assert all(listed.values())


def test_speed_serving_without_the_end_to_end_run_is_a_one_line_error(tmp_path):
  done, _, _ = _run("benchmarks.speed", "--sections=serving", f"--work_dir={tmp_path}")
  assert done.returncode == 1
  # Besides TensorFlow's one cuInit line on a GPU-less machine (README: harmless), one line.
  lines = [line for line in done.stderr.splitlines() if "cuInit" not in line]
  assert len(lines) == 1 and lines[0].startswith("error: the serving section serves"), done.stderr
  assert "--sections=end_to_end,serving" in lines[0]
