"""Learning-curve plots of fine-tuning runs, as PNG files (matplotlib, headless Agg backend)."""
import io
from typing import Any, Mapping, Optional, Sequence

from tpu_electra import fileio


def plot_learning_curves(records: Sequence[Mapping[str, Any]], metric: str, path: str,
                         title: Optional[str] = None) -> None:
  """Training loss and the dev `metric` against the step, one line per seed, side by side.

  Args:
    records: per-seed records with `seed`, `train_curve` ([{"step", "loss", ...}]) and
      `eval_curve` ([{"step", "metrics": {...}}]).
    metric: the dev metric to plot (the task's primary metric).
    path: the PNG to write (local or gs://), replaced atomically.
    title: the figure's title.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4))
  for record in records:
    label = f"seed {record['seed']}"
    train = record.get("train_curve") or []
    if train:
      loss_axes.plot([p["step"] for p in train], [p["loss"] for p in train], label=label)
    points = [(p["step"], p["metrics"][metric]) for p in record.get("eval_curve") or [] if metric in p["metrics"]]
    if points:
      metric_axes.plot([s for s, _ in points], [v for _, v in points], marker="o", label=label)
  loss_axes.set_xlabel("step")
  loss_axes.set_ylabel("training loss")
  loss_axes.set_title("training loss (mean per logging window)")
  metric_axes.set_xlabel("step")
  metric_axes.set_ylabel(metric)
  metric_axes.set_title(f"dev {metric}")
  for axes in (loss_axes, metric_axes):
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
      axes.legend(fontsize="small")
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100)
  plt.close(figure)
  fileio.write_atomic(path, buffer.getvalue())
