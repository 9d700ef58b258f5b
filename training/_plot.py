"""A PNG of the training curves and of one sample's spike raster (matplotlib, Agg canvas: no
display and no change to the global backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nirjax import atomic_path

__all__ = ["plot_training"]


def plot_training(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    *,
    rasters: Mapping[str, np.ndarray] | None = None,
    title: str = "",
) -> str:
    """Write a PNG with the loss curves, the accuracy curves (if any) and spike rasters.

    **Arguments:**

    - `history`: `FitResult.history` (per-epoch dicts with `train_loss`, `val_loss`,
      `test_loss`, `*_accuracy`).
    - `path`: the PNG to write (atomically).
    - `rasters`: `{"layer name": (T, N) spikes}` of one sample, one raster panel each.
    - `title`: a figure title.

    **Returns:** the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rasters = dict(rasters or {})
    has_acc = any(k.endswith("_accuracy") for h in history for k in h)
    n_panels = 1 + int(has_acc) + len(rasters)
    fig = Figure(figsize=(4.2 * n_panels, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    epochs = [h["epoch"] for h in history]

    def curves(ax, suffix, label):
        for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
            key = f"{split}_{suffix}"
            ys = [h.get(key) for h in history]
            if any(y is not None for y in ys):
                ax.plot(
                    epochs, [np.nan if y is None else y for y in ys], style, marker=".", label=split
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()

    curves(axes[0], "loss", "loss")
    axes[0].set_title("loss")
    i = 1
    if has_acc:
        curves(axes[1], "accuracy", "accuracy")
        axes[1].set_title("accuracy")
        i = 2
    for name, spikes in rasters.items():
        ax = axes[i]
        s = np.asarray(spikes)
        s = s.reshape(s.shape[0], -1)
        t, n = np.nonzero(s > 0)
        ax.scatter(t, n, s=4, marker="|", color="k")
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron")
        ax.set_title(f"{name}: {int(s.sum())} spikes")
        i += 1
    if title:
        fig.suptitle(title)
    path = os.fspath(path)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
