"""A figure of recorded against fitted activity: one axis per neuron shown (its membrane
traces, or its spike rasters), saying which neurons of how many each node shows."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from nirjax import atomic_path


def _flat(a: np.ndarray, sample: int) -> np.ndarray:
    a = np.asarray(a)[sample]
    return a.reshape(a.shape[0], -1)


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

    Per node, the `neurons` most active neurons of the recording (most spikes; ties by index),
    one axis each: for a node with a recorded trace `"v"`, the recorded trace and each
    simulated one; for a node with spikes only, one raster row per source (recorded, then each
    label). Each axis is titled `node[i]`, and each node's first axis says how many of its
    neurons are shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []  # (kind, node, neuron, note)
    for node, obs in recordings.items():
        key = "v" if "v" in obs else "output" if "output" in obs else None
        if key is None:
            continue
        ref = _flat(obs[key], sample)
        spikes = _flat(obs["output"], sample) if "output" in obs else np.zeros_like(ref)
        counts = (spikes > 0.5).sum(0)
        chosen = sorted(int(i) for i in np.argsort(-counts, kind="stable")[:neurons])
        note = (f"{node}: {len(chosen)} of {ref.shape[1]} neurons shown, the most active in the "
                "recording")
        for k, i in enumerate(chosen):
            panels.append((key, node, i, note if k == 0 else None))
    if not panels:
        raise ValueError("plot_fit: the recording has no 'v' or 'output' observable to plot.")
    heights = [1.0 if kind == "v" else 0.45 + 0.12 * len(simulated) for kind, *_ in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.7 * sum(heights) + 0.9), squeeze=False, sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    colors = {label: f"C{k}" for k, label in enumerate(simulated)}
    for ax, (kind, node, i, note) in zip(axes[:, 0], panels):
        rec = _flat(recordings[node][kind], sample)[:, i]
        t = np.arange(rec.shape[0]) * dt * 1e3
        if kind == "v":
            ax.plot(t, rec, color="0.55", lw=1.4, label="recorded")
            for label, sim in simulated.items():
                ax.plot(t, _flat(sim[node]["v"], sample)[:, i], lw=1.0, color=colors[label],
                        label=label)
            ax.set_ylabel("v", fontsize=10)
            ax.legend(loc="upper right", fontsize=8, ncol=len(simulated) + 1)
        else:
            rows = [("recorded", rec, "0.2")] + [
                (label, _flat(sim[node]["output"], sample)[:, i], colors[label])
                for label, sim in simulated.items()
            ]
            for k, (_, s, color) in enumerate(rows):
                tt = t[np.asarray(s) > 0.5]
                ax.scatter(tt, np.full(len(tt), k), s=50, marker="|", color=color,
                           linewidths=1.3)
            ax.set_yticks(range(len(rows)), [label for label, *_ in rows], fontsize=8)
            ax.set_ylim(-0.6, len(rows) - 0.4)
            ax.invert_yaxis()
        ax.set_title(f"{node}[{i}]" + (f"    ({note})" if note else ""), fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, axis="x")
    axes[-1, 0].set_xlabel("time (ms)", fontsize=10)
    fig.tight_layout()
    path = os.fspath(path)
    try:
        with atomic_path(path, os.path.splitext(path)[1] or ".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
