"""A PNG of the training curves and of one sample's spike rasters with its true and predicted
class (matplotlib, Agg canvas: no display and no change to the global backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nirjax import atomic_path

__all__ = ["plot_training"]

_SPLITS = (("train", "-", "C0"), ("val", "--", "C1"), ("test", ":", "C2"))


def plot_training(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    *,
    rasters: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    label: int | None = None,
    scores: np.ndarray | None = None,
    score_name: str = "score",
) -> str:
    """Write a PNG: the loss and accuracy curves on top; below them one sample's spike rasters
    (one panel per layer) and, with `scores`, the readout's score per class with the true and
    the predicted class marked.

    **Arguments:**

    - `history`: `FitResult.history` (per-epoch dicts with `train_loss`, `val_loss`,
      `test_loss`, `*_accuracy`).
    - `path`: the PNG to write (atomically).
    - `rasters`: `{"layer name": (T, N) spikes}` of one sample, one raster panel each
      (multi-dimensional frames are flattened to N channels).
    - `title`: a figure title.
    - `label`: the sample's true class; `scores`: `(n_classes,)` the readout's score per class
      (the prediction is its argmax), named `score_name` (e.g. "spike count").

    **Returns:** the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rasters = dict(rasters or {})
    has_acc = any(k.endswith("_accuracy") for h in history for k in h)
    n_bottom = len(rasters) + int(scores is not None)
    rows = 1 + int(n_bottom > 0)
    cols = max(2, n_bottom)
    fig = Figure(figsize=(max(11.0, 3.6 * cols), 4.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 2 * cols)
    epochs = [h["epoch"] for h in history]

    def curves(ax, suffix, ylabel):
        for split, style, color in _SPLITS:
            ys = [h.get(f"{split}_{suffix}") for h in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, [np.nan if y is None else y for y in ys], style, color=color,
                        marker="o", ms=3, lw=1.6, label=split)
        ax.set_xlabel("epoch", fontsize=11)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=10)

    top = [fig.add_subplot(grid[0, :cols])] if not has_acc else [
        fig.add_subplot(grid[0, :cols]), fig.add_subplot(grid[0, cols:])
    ]
    curves(top[0], "loss", "loss")
    top[0].set_title("loss per epoch", fontsize=12)
    if has_acc:
        curves(top[1], "accuracy", "accuracy")
        top[1].set_ylim(-0.02, 1.02)
        top[1].set_title("accuracy per epoch", fontsize=12)
        last = history[-1] if history else {}
        for split, _, color in _SPLITS:
            if f"{split}_accuracy" in last:
                top[1].annotate(f"{100 * last[f'{split}_accuracy']:.1f} %",
                                (epochs[-1], last[f"{split}_accuracy"]), color=color,
                                fontsize=9, xytext=(4, 0), textcoords="offset points")
    bottom = [fig.add_subplot(grid[1, 2 * i : 2 * i + 2]) for i in range(n_bottom)]
    for ax, (name, spikes) in zip(bottom, rasters.items()):
        s = np.asarray(spikes)
        s = s.reshape(s.shape[0], -1)
        t, n = np.nonzero(s > 0)
        ax.scatter(t, n, s=max(1.0, min(12.0, 4000.0 / max(1, s.shape[1]))), marker="|",
                   color="k", linewidths=0.8)
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_xlabel("time step", fontsize=11)
        ax.set_ylabel(f"{name} neuron ({s.shape[1]})", fontsize=11)
        ax.tick_params(labelsize=10)
        ax.set_title(f"{name}: {int(np.sum(s > 0))} spikes", fontsize=12)
    if scores is not None:
        ax = bottom[-1]
        scores = np.asarray(scores).reshape(-1)
        pred = int(np.argmax(scores))
        colors = ["0.7"] * len(scores)
        if label is not None and 0 <= label < len(scores):
            colors[label] = "C2"
        if pred != label:
            colors[pred] = "C3"
        ax.bar(np.arange(len(scores)), scores, color=colors)
        ax.set_xticks(np.arange(len(scores)))
        ax.tick_params(labelsize=9 if len(scores) <= 20 else 6)
        ax.set_xlabel("class", fontsize=11)
        ax.set_ylabel(score_name, fontsize=11)
        verdict = "" if label is None else (" (correct)" if pred == label else " (wrong)")
        ax.set_title(f"true class {label}, predicted {pred}{verdict}", fontsize=12,
                     color="C2" if pred == label else "C3")
    if bottom and label is not None:
        bottom[0].text(0.0, 1.12, f"one test sample (true class {label})", fontsize=11,
                       transform=bottom[0].transAxes)
    if title:
        fig.suptitle(title, fontsize=14)
    path = os.fspath(path)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
