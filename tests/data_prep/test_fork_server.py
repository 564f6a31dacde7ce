"""The command line's early start of the worker pool's fork server: only when it asks for local workers."""
import multiprocessing.forkserver

import pytest

from data_prep import fork_server


@pytest.mark.parametrize("argv, expected", [
    ([], 1),
    (["--corpus=text:x", "--num_workers=4"], 4),
    (["--num_workers", "3"], 3),
    (["-num_workers=2"], 2),
    (["--num_workers=2", "--num_workers=1"], 1),  # The last one wins, as in absl.
    (["--num_workers=8", "--runner=beam"], 1),  # Beam runs its own workers.
    (["--num_workers=8", "--runner", "local"], 8),
    (["--num_workers=many"], 1),  # absl reports it later; nothing starts early.
    (["--num_workers"], 1),
    (["--num_workers_extra=5"], 1),
])
def test_requested_workers_reads_the_flag_as_absl_would(argv, expected):
  assert fork_server.requested_workers(argv) == expected


def test_the_server_starts_only_for_several_local_workers(monkeypatch):
  started = []
  monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: started.append(True))
  assert not fork_server.start_early(["--num_workers=1"]) and not started
  assert fork_server.start_early(["--num_workers=2"]) and started == [True]
