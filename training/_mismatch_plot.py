"""A figure of recorded against fitted activity (membrane traces, or spike rasters)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from nirjax import atomic_path


def plot_fit(
    path: str | os.PathLike,
    recordings: Mapping[str, Mapping[str, np.ndarray]],
    simulated: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    *,
    dt: float,
    sample: int = 0,
    neurons: int = 4,
) -> None:
    """Plot recorded against simulated activity and write the figure atomically.

    **Arguments:**

    - `path`: the image file (the format follows the suffix, e.g. `.png`).
    - `recordings`: `{node: {"v": (S, T, ...), "output": (S, T, ...)}}`.
    - `simulated`: `{label: {node: {obs: (S, T, ...)}}}`, e.g. `{"nominal": ..., "fitted": ...}`.
    - `dt`: the time step (s); `sample`: which sample; `neurons`: how many neurons per node.

    For a node with a recorded trace `"v"`, one panel per neuron (the most active ones) with the
    recorded trace and each simulated one; for a node with spikes only, rasters side by side.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for node, obs in recordings.items():
        if "v" in obs:
            v = np.asarray(obs["v"])[sample].reshape(np.shape(obs["v"])[1], -1)
            spikes = np.asarray(obs.get("output", np.zeros_like(obs["v"])))[sample]
            counts = spikes.reshape(spikes.shape[0], -1).sum(0)
            for i in np.argsort(-counts, kind="stable")[:neurons]:
                panels.append(("v", node, int(i), v[:, i]))
        elif "output" in obs:
            panels.append(("raster", node, None, None))
    if not panels:
        raise ValueError("plot_fit: the recording has no 'v' or 'output' observable to plot.")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels) + 0.6), squeeze=False)
    for ax, (kind, node, i, rec) in zip(axes[:, 0], panels):
        if kind == "v":
            t = np.arange(rec.shape[0]) * dt * 1e3
            ax.plot(t, rec, color="0.6", lw=1.0, label="recorded")
            for label, sim in simulated.items():
                s = np.asarray(sim[node]["v"])[sample].reshape(rec.shape[0], -1)[:, i]
                ax.plot(t, s, lw=0.9, label=label)
            ax.set_ylabel(f"{node}[{i}] v")
        else:
            rec_s = np.asarray(recordings[node]["output"])[sample]
            rec_s = rec_s.reshape(rec_s.shape[0], -1)
            rows = [("recorded", rec_s)] + [
                (label, np.asarray(sim[node]["output"])[sample].reshape(rec_s.shape[0], -1))
                for label, sim in simulated.items()
            ]
            n = rec_s.shape[1]
            for k, (label, s) in enumerate(rows):
                tt, nn = np.nonzero(s > 0.5)
                ax.scatter(tt * dt * 1e3, nn + k * (n + 2), s=3, label=label)
            ax.set_ylabel(f"{node} spikes")
        ax.legend(loc="upper right", fontsize=7, ncol=len(simulated) + 1)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    path = os.fspath(path)
    try:
        with atomic_path(path, os.path.splitext(path)[1] or ".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
