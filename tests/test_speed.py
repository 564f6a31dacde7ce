"""benchmarks.speed's table rows, with the runs they time replaced by fixed results."""
import types

from benchmarks import speed


def test_end_to_end_rows_say_the_peer_was_not_run_instead_of_a_nan_ratio(tmp_path, monkeypatch):
  walls = iter([40.0, 60.0, 41.0, 62.0, 39.0, 61.0])
  monkeypatch.setattr(speed, "ours_end_to_end",
                      lambda *args, **kwargs: {"wall_s": next(walls), "accuracy": 0.9})
  flag_values = types.SimpleNamespace(work_dir=str(tmp_path), end_to_end=["bucketed", "fixed"], seeds=3, epochs=1.0)
  rows = speed.end_to_end_rows(flag_values, "minilm_run", "minilm_dir", "data_dir")
  assert [row[1] for row in rows] == ["tpu_electra, length buckets (16/32/64/128)", "tpu_electra, fixed 128 tokens"]
  assert [row[2] for row in rows] == ["40", "61"]  # Medians of each side's three seeds.
  assert [row[4] for row in rows] == ["peer not run", "peer not run"]


def test_end_to_end_rows_give_the_peer_over_ours_ratio_when_the_peer_ran(tmp_path, monkeypatch):
  monkeypatch.setattr(speed, "ours_end_to_end", lambda *args, **kwargs: {"wall_s": 20.0, "accuracy": 0.9})
  monkeypatch.setattr(speed, "torch_end_to_end", lambda *args, **kwargs: {"wall_s": 30.0, "accuracy": 0.9})
  flag_values = types.SimpleNamespace(work_dir=str(tmp_path), end_to_end=["bucketed", "peer"], seeds=1, epochs=1.0)
  rows = speed.end_to_end_rows(flag_values, "minilm_run", "minilm_dir", "data_dir")
  assert [row[4] for row in rows] == ["1.50x", "1.00x"]
