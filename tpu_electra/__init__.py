"""tpu_electra: TPU-first pretraining and fine-tuning of compute-efficient text encoders.

tf-models-official is written against Keras 2 (tf_keras). Setting TF_USE_LEGACY_KERAS before the
first TensorFlow import makes `tf.keras` be tf_keras too, so mixed-precision policies and layers
from both sides agree. Users never have to set it themselves.

Importing the package stays cheap: it never imports TensorFlow itself (see
`_quiet_cuda_probe_on_cpu_machines`).
"""
import logging
import os
import sys

from absl import logging as absl_logging

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# The line TensorFlow's CUDA build prints (level E, so TF_CPP_MIN_LOG_LEVEL=2 keeps it) when it
# probes for a GPU on a machine without the NVIDIA driver: "failed call to cuInit: ... (303)".
_CUINIT_LINE = b"failed call to cuInit"


def _has_accelerator() -> bool:
  """Whether this machine may have a GPU or TPU: NVIDIA's driver (or WSL's GPU), TPU device files.

  There the first device enumeration is left where TensorFlow does it: it may claim devices.
  """
  if os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/dxg") or os.path.exists("/dev/vfio"):
    return True
  try:
    return any(name.startswith(("nvidia", "accel")) for name in os.listdir("/dev"))
  except OSError:
    return True  # cannot tell: leave TensorFlow's output alone


def _without_cuinit_line(probe) -> None:
  """Runs `probe()` with fd 2 captured, then writes back every line it printed but the cuInit one."""
  import tempfile  # pylint: disable=g-import-not-at-top
  if sys.stderr is not None:
    sys.stderr.flush()
  with tempfile.TemporaryFile() as captured:
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    try:
      probe()
    finally:
      if sys.stderr is not None:
        sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().splitlines(keepends=True) if _CUINIT_LINE not in line]
      if kept:
        os.write(2, b"".join(kept))


class _ProbeDevicesAfterTensorFlowImport:
  """A one-shot import hook: right after `tensorflow` is imported, enumerates its devices once.

  TensorFlow calls cuInit at its first device enumeration (not at import) and logs the failure
  once per process. Doing that first enumeration here, with the cuInit line filtered out of what
  it prints, leaves every later TensorFlow message as it is. `list_physical_devices` does not
  initialize the eager context, so strategies and device settings can still be configured after.
  """

  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name != "tensorflow" or cls not in sys.meta_path:
      return None
    sys.meta_path.remove(cls)
    for finder in sys.meta_path:
      find_spec = getattr(finder, "find_spec", None)
      spec = find_spec(name, path, target) if find_spec else None
      if spec is not None:
        break
    else:
      return None
    loader = spec.loader
    exec_module = getattr(loader, "exec_module", None)
    if exec_module is None:
      return spec

    def exec_then_probe(module):
      # The import itself may probe too (under absl's app.run it does), so both are captured.
      _without_cuinit_line(lambda: (exec_module(module), _list_devices(module)))

    try:
      loader.exec_module = exec_then_probe
    except AttributeError:
      pass  # an unusual loader: keep TensorFlow's import as it is
    return spec


def _list_devices(tf_module) -> None:
  try:
    tf_module.config.list_physical_devices()
  except Exception:  # pylint: disable=broad-except
    pass  # TensorFlow raises it again at its own first enumeration, where it belongs


def _quiet_cuda_probe_on_cpu_machines() -> None:
  """On a machine without GPU or TPU, hides TensorFlow's cuInit failure line, and only that line.

  TF_CPP_MIN_LOG_LEVEL=3 would hide every C++ error; CUDA_VISIBLE_DEVICES does not stop the
  probe (cuInit is still called, and fails loading libcuda). Where an accelerator may be present
  nothing changes.
  """
  if "tensorflow" in sys.modules or _has_accelerator():
    return
  if not any(finder is _ProbeDevicesAfterTensorFlowImport for finder in sys.meta_path):
    sys.meta_path.insert(0, _ProbeDevicesAfterTensorFlowImport)


class _DropSaverTiming(logging.Filter):
  """Drops TensorFlow's "Sharding callback duration: N microseconds", logged at every checkpoint save."""

  def filter(self, record):
    return not (record.msg == "Sharding callback duration: %s microseconds"
                and record.pathname.endswith("functional_saver.py"))


_quiet_cuda_probe_on_cpu_machines()
# TensorFlow's checkpoint saver logs through absl (pure Python, cheap to import). The logger must
# come from absl itself: a plain logging.getLogger("absl") made first would not be absl's.
absl_logging.get_absl_logger().addFilter(_DropSaverTiming())
