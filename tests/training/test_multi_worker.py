"""Two worker processes on 127.0.0.1 train with MultiWorkerMirroredStrategy and agree on weights."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_end_with_identical_weights(token_data_dir, tmp_path):
  workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  model_dir = str(tmp_path / "model")
  processes, outputs = [], []
  for index in range(2):
    tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
    outputs.append(str(tmp_path / f"worker{index}.npz"))
    processes.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "multi_worker_main.py"), tf_config, token_data_dir, model_dir, outputs[-1]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  logs = []
  try:
    for process in processes:
      logs.append(process.communicate(timeout=300)[0])
  finally:
    for process in processes:
      process.kill()
  for process, log in zip(processes, logs):
    assert process.returncode == 0, log[-3000:]
  chief, other = (np.load(path) for path in outputs)
  assert int(chief["step"]) == int(other["step"]) == 6
  names = [k for k in chief.files if k != "step"]
  assert len(names) > 10
  for name in names:
    np.testing.assert_array_equal(chief[name], other[name])
  # Only the chief keeps checkpoints; the other worker's scratch directory is gone.
  assert sorted(os.listdir(model_dir)) == ["checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index",
                                           "ckpt-6.data-00000-of-00001", "ckpt-6.index",
                                           "operative_config.gin", "train"]
