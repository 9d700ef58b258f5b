r"""The fidelity report: how far discretized runs (and recordings) are from continuous time.

`compare(graph, inputs, dt=...)` runs the graph three ways on the same input: the diffrax
reference (`simulate_continuous`, exact spike times), and the discrete executor with
`discretization="euler"` and `"exact"` at `dt`. Optionally it reads a recording (a NIR data
file, `nir.read_data`: e.g. a chip's output). Each is measured against the reference:

- **spike-time error** (mean and max of |t - t_ref| over matched spikes). Spikes are matched
  per neuron, in order, by a dynamic program that maximises the number of pairs closer than
  `window` (default 10 dt) and then minimises their total distance;
- **missed** (reference spikes without a partner) and **extra** (spikes without a partner);
- **RMS voltage error** on the grid (`v[k]` at the end of step k, as the discrete methods
  record it).

A discrete spike in step k is timed at `t = k dt + time_shift` (NIR's `TimeGriddedData.to_event`
convention; `time_shift = 0` by default). The reference's input reading follows the graph's
`input_mode`: `"current"` (each `xs[k]` held over the step, what the discrete methods assume)
unless `input_kind` says otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._atomic import atomic_path
from ._continuous import ContinuousResult, build_net, simulate_continuous
from ._graph import Graph
from ._paths import node_at

DISCRETE = ("euler", "exact")
_SPIKE_KEYS = ("spikes", "spike", "output", "z")
_VOLTAGE_KEYS = ("v", "voltage")


# --------------------------------------------------------------------------------- matching
def match_spikes(ref: np.ndarray, other: np.ndarray, window: float) -> list[tuple[int, int]]:
    """Order-preserving matching of two sorted spike trains: the most pairs with
    `|ref[i] - other[j]| <= window`, and among those the least total distance.

    **Returns:** the matched index pairs `(i, j)`, in order.
    """
    n, m = len(ref), len(other)
    if n == 0 or m == 0:
        return []
    # score[i, j]: best (pairs, -distance) for ref[:i] and other[:j], packed as one float.
    big = 1.0 + float(np.sum(np.abs(ref))) + float(np.sum(np.abs(other))) + window * (n + m)
    score = np.zeros((n + 1, m + 1))
    move = np.zeros((n + 1, m + 1), np.int8)  # 1 skip ref, 2 skip other, 3 match
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best, how = score[i - 1, j], 1
            if score[i, j - 1] > best:
                best, how = score[i, j - 1], 2
            d = abs(ref[i - 1] - other[j - 1])
            if d <= window:
                cand = score[i - 1, j - 1] + big - d
                if cand > best:
                    best, how = cand, 3
            score[i, j], move[i, j] = best, how
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        how = move[i, j]
        if how == 3:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif how == 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def trains_from_times(times: np.ndarray) -> list[np.ndarray]:
    """Spike trains from event times, as `simulate_continuous` gives them
    (`ContinuousResult.spike_times[node]`).

    **Arguments:** `times`: `(*shape, K)` spike times in seconds, padded with `inf`.

    **Returns:** one sorted array of times per neuron, in flattened (C) order.
    """
    flat = times.reshape(-1, times.shape[-1])
    return [np.sort(row[np.isfinite(row)]) for row in flat]


def trains_from_grid(spikes: np.ndarray, dt: float, shift: float) -> list[np.ndarray]:
    """Spike trains from a discrete run: a spike in step `k` is at `k dt + shift`.

    **Arguments:** `spikes`: `(T, *shape)` spike counts per step (a count of 2 gives two
    spikes at the same time); `dt` the step and `shift` the time offset, in seconds.

    **Returns:** one sorted array of times per neuron, in flattened (C) order.
    """
    flat = spikes.reshape(spikes.shape[0], -1)
    trains = []
    for col in flat.T:
        steps = np.nonzero(col)[0]
        counts = np.round(col[steps]).astype(int).clip(min=1)
        trains.append(np.repeat(steps * dt + shift, counts))
    return trains


@dataclasses.dataclass
class Row:
    """One line of the report: a method (or recording) on one node, or on all nodes."""

    method: str
    node: str
    ref_spikes: int
    spikes: int
    matched: int
    missed: int
    extra: int
    mean_dt: float
    max_dt: float
    rms_v: float


def _score(method, node, ref_trains, trains, window, v_ref=None, v=None) -> tuple[Row, list]:
    errors = []
    matched = 0
    for a, b in zip(ref_trains, trains):
        pairs = match_spikes(a, b, window)
        matched += len(pairs)
        errors.extend(abs(a[i] - b[j]) for i, j in pairs)
    n_ref = sum(len(a) for a in ref_trains)
    n = sum(len(b) for b in trains)
    rms = float("nan")
    if v is not None and v_ref is not None:
        T = min(len(v), len(v_ref))
        diff = np.asarray(v[:T], float) - np.asarray(v_ref[:T], float)
        rms = float(np.sqrt(np.mean(diff**2)))
    row = Row(
        method, node, n_ref, n, matched, n_ref - matched, n - matched,
        float(np.mean(errors)) if errors else float("nan"),
        float(np.max(errors)) if errors else float("nan"),
        rms,
    )
    return row, errors


# --------------------------------------------------------------------------------- report
@dataclasses.dataclass
class FidelityReport:
    """What `compare` returns.

    - `rows`: a `Row` per (method, node) and per method over all nodes (`node="all"`).
    - `dt`: the grid; `window`: the matching window (s).
    - `reference`: the diffrax `ContinuousResult`; `runs`: per method, `{node: {"spikes":
      (T, *shape), "v": (T, *shape)}}` as numpy arrays; `recording`: the same for a recording.
    """

    rows: list[Row]
    dt: float
    window: float
    reference: ContinuousResult
    runs: dict
    spiking: tuple[str, ...]
    neurons: tuple[str, ...]

    def table(self) -> str:
        """A plain-text table (times in units of dt and in seconds)."""
        head = (f"{'method':<10} {'node':<12} {'ref':>5} {'spikes':>6} {'missed':>6} "
                f"{'extra':>5} {'mean|dt|':>10} {'max|dt|':>10} {'mean/dt':>8} {'rms v':>10}")
        lines = [f"fidelity against the diffrax reference (dt = {self.dt:g} s, matching window "
                 f"{self.window:g} s)", head, "-" * len(head)]
        for r in self.rows:
            lines.append(
                f"{r.method:<10} {r.node:<12} {r.ref_spikes:>5} {r.spikes:>6} {r.missed:>6} "
                f"{r.extra:>5} {r.mean_dt:>10.3g} {r.max_dt:>10.3g} "
                f"{r.mean_dt / self.dt:>8.3f} {r.rms_v:>10.3g}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"dt": self.dt, "window": self.window,
                "rows": [dataclasses.asdict(r) for r in self.rows]}

    def row(self, method: str, node: str = "all") -> Row:
        for r in self.rows:
            if r.method == method and r.node == node:
                return r
        raise KeyError(f"no row for method {method!r}, node {node!r}.")

    def plot(self, path: str | os.PathLike, *, node: str | None = None, neuron: int | None = None,
             max_raster: int = 40) -> None:
        """Draw the voltage traces of one neuron (left) and the rasters of every method
        (right) into a PNG at `path` (written atomically)."""
        try:
            import matplotlib
        except ImportError as e:
            raise ImportError(
                "FidelityReport.plot needs matplotlib: pip install matplotlib."
            ) from e

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        node = node or (self.spiking[0] if self.spiking else self.neurons[0])
        if node not in self.neurons:
            raise ValueError(
                f"plot: node {node!r} is not a neuron; neurons are {list(self.neurons)}."
            )
        ref_v = np.asarray(self.reference.record[node]["v"])
        T = ref_v.shape[0]
        flat_ref = ref_v.reshape(T, -1)
        if neuron is None:
            if node in self.spiking:
                counts = np.asarray(self.reference.spikes[node]).reshape(T, -1).sum(0)
                neuron = int(np.argmax(counts))
            else:
                neuron = 0
        t = (np.arange(T) + 1) * self.dt
        rows = sum(min(max_raster, np.asarray(self.reference.record[n]["v"]).reshape(T, -1)
                       .shape[1]) for n in self.spiking)
        fig, (ax_v, ax_r) = plt.subplots(1, 2, figsize=(14, max(4.8, 2.0 + 0.2 * rows
                                                                 + 0.9 * len(self.spiking))),
                                         constrained_layout=True)
        styles = {"diffrax": dict(color="black", lw=1.6), "euler": dict(color="tab:blue", lw=1),
                  "exact": dict(color="tab:orange", lw=1, ls="--"),
                  "recording": dict(color="tab:green", lw=1, ls=":")}
        ax_v.plot(t, flat_ref[:, neuron], label="diffrax (reference)", **styles["diffrax"])
        for method, run in self.runs.items():
            v = run.get(node, {}).get("v")
            if v is not None:
                ax_v.plot(t[: len(v)], np.asarray(v).reshape(len(v), -1)[:, neuron], label=method,
                          **styles.get(method, {}))
        if node in self.spiking:
            times = trains_from_times(np.asarray(self.reference.spike_times[node]))[neuron]
            for s in times:
                ax_v.axvline(s, color="black", alpha=0.15, lw=0.8)
        ax_v.set_xlabel("time (s)")
        ax_v.set_ylabel("v")
        ax_v.set_title(f"voltage of {node}[{neuron}] (end of each step)")
        ax_v.legend(loc="best", fontsize=8)
        methods = ["diffrax"] + list(self.runs)
        colors = {m: styles.get(m, {}).get("color", "gray") for m in methods}
        nodes = list(self.spiking)
        if not nodes:
            ax_r.text(0.5, 0.5, "no spiking neuron in the graph", ha="center", va="center",
                      transform=ax_r.transAxes)
            ax_r.set_axis_off()
        else:
            ax_r.set_axis_off()
            sub = ax_r.get_subplotspec().subgridspec(len(nodes), 1, hspace=0.45)
            for row, n in enumerate(nodes):
                ax = fig.add_subplot(sub[row])
                per = {"diffrax": trains_from_times(np.asarray(self.reference.spike_times[n]))}
                for method, run in self.runs.items():
                    if n in run and "trains" in run[n]:
                        per[method] = run[n]["trains"]
                shown, note = _raster_selection(per, max_raster)
                _draw_raster(ax, n, per, shown, methods, colors)
                ax.set_xlim(0, T * self.dt)
                ax.set_title(f"spike rasters of {n}: a band per neuron, a row per method\n"
                             + textwrap.fill(note, 80), fontsize=9)
                if row == len(nodes) - 1:
                    ax.set_xlabel("time (s)")
                    for method in methods:
                        if method in per:
                            ax.scatter([], [], marker="|", s=60, color=colors[method],
                                       label=method)
                    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(nodes) > 1
                              else -0.18), ncol=len(methods), fontsize=8, frameon=False)
        _save_atomic(fig, path)
        plt.close(fig)


def _raster_selection(per: dict, max_raster: int) -> tuple[list[int], str]:
    """The neurons a raster shows: those with a spike in any method, the most active first
    (spikes summed over methods), at most `max_raster`, in index order; and a note saying how
    many of how many are shown and what was left out."""
    size = max(len(t) for t in per.values())
    counts = np.zeros(size)
    for trains in per.values():
        counts[: len(trains)] += [len(t) for t in trains]
    active = np.flatnonzero(counts > 0)
    order = active[np.argsort(-counts[active], kind="stable")]
    shown = sorted(int(i) for i in order[:max_raster])
    note = f"{len(shown)} of {size} neurons shown"
    left = []
    if size - len(active):
        left.append(f"{size - len(active)} silent in every method")
    if len(active) > len(shown):
        left.append(f"{len(active) - len(shown)} less active ones (max_raster={max_raster})")
    return shown, note + (f"; left out: {', '.join(left)}" if left else "")


def _draw_raster(ax, node: str, per: dict, shown: list[int], methods: list, colors: dict):
    """One band per shown neuron (labelled `node[i]`), one row in it per method."""
    rows = [m for m in methods if m in per]
    for band, i in enumerate(shown):
        if band % 2:
            ax.axhspan(band - 0.5, band + 0.5, color="0.93", lw=0)
        for k, method in enumerate(rows):
            trains = per[method]
            times = trains[i] if i < len(trains) else []
            y = band + (k - (len(rows) - 1) / 2) * 0.8 / max(1, len(rows))
            ax.scatter(times, np.full(len(times), y), s=40, marker="|", linewidths=1.3,
                       color=colors[method])
    step = max(1, len(shown) // 20)  # at most about 20 labels
    ax.set_yticks(range(0, len(shown), step), [f"{node}[{i}]" for i in shown[::step]],
                  fontsize=8)
    ax.set_ylim(-0.6, max(len(shown), 1) - 0.4)
    ax.tick_params(axis="x", labelsize=8)


def _save_atomic(fig, path) -> None:
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)


# --------------------------------------------------------------------------------- recording
def _read_recording(recording, neurons, shapes, dt, T, shift, sample) -> dict:
    import nir

    data = nir.read_data(os.fspath(recording)) if isinstance(recording, (str, os.PathLike)) \
        else recording
    if not isinstance(data, nir.NIRGraphData):
        raise TypeError(f"recording: expected a NIR data file or nir.NIRGraphData, got "
                        f"{type(data).__name__}.")
    found: dict = {}
    for n in neurons:
        node = node_at(data, n, None)
        if node is None:
            continue
        obs = node.observables
        size = int(np.prod(shapes[n]))
        entry: dict = {}
        for key in _SPIKE_KEYS:
            if key in obs:
                o = obs[key]
                if isinstance(o, nir.EventData):
                    idx, tm = np.asarray(o.idx)[sample], np.asarray(o.time)[sample]
                    ok = (idx >= 0) & np.isfinite(tm)
                    entry["trains"] = [np.sort(tm[ok & (idx == i)]) for i in range(size)]
                else:
                    grid = np.asarray(o.data)[sample].astype(float)
                    _check_grid(n, key, o.dt, dt, grid.shape[-1], size)
                    entry["trains"] = trains_from_grid(grid, dt, shift)
                break
        for key in _VOLTAGE_KEYS:
            if key in obs:
                o = obs[key]
                if not isinstance(o, nir.TimeGriddedData):
                    raise ValueError(f"recording: node {n!r}, observable {key!r}: expected "
                                     "TimeGriddedData for a voltage.")
                grid = np.asarray(o.data)[sample].astype(float)
                _check_grid(n, key, o.dt, dt, grid.shape[-1], size)
                entry["v"] = grid.reshape((grid.shape[0],) + tuple(shapes[n]))[:T]
                break
        if entry:
            found[n] = entry
    if not found:
        raise ValueError(
            f"recording: no observables for the graph's neurons {list(neurons)}; expected nodes of "
            f"those names with observables {list(_SPIKE_KEYS)} (spikes) or {list(_VOLTAGE_KEYS)}."
        )
    return found


def _check_grid(node, key, rec_dt, dt, width, size):
    if abs(float(rec_dt) - dt) > 1e-9 * dt:
        raise ValueError(f"recording: node {node!r}, observable {key!r} has dt = {rec_dt}, but the "
                         f"comparison runs at dt = {dt}. Pass dt={rec_dt}.")
    if width != size:
        raise ValueError(f"recording: node {node!r}, observable {key!r} has {width} neurons; the "
                         f"node has {size}.")


# --------------------------------------------------------------------------------- compare
@eqx.filter_jit
def _run_discrete(graph: Graph, xs, record: tuple[str, ...]):
    return graph.run(xs, record=record)


def compare(
    graph: Graph,
    inputs: Any,
    dt: float | None = None,
    recording: Any = None,
    *,
    input_kind: str | None = None,
    window: float | None = None,
    time_shift: float = 0.0,
    sample: int = 0,
    methods: tuple[str, ...] = DISCRETE,
    **continuous_kwargs,
) -> FidelityReport:
    """Measure the discrete methods (and a recording) against the diffrax reference.

    **Arguments:**

    - `graph`: a `nirjax.Graph`.
    - `inputs`: `(T, *input_shape)` on the grid of `dt` (a dict by Input name if several).
    - `dt`: the step (default: the graph's); the graph is rebuilt at this dt.
    - `recording`: a NIR data file path (or `nir.NIRGraphData`) with, for neuron nodes of the
      same names, observables `"spikes"` (`EventData`, or `TimeGriddedData` per step) and/or
      `"v"` (`TimeGriddedData`). Sample `sample` is used.
    - `input_kind`: how the reference reads `inputs` (`"current"` or `"spikes"`); default
      `"current"` when the graph's `input_mode` is `"current"`, else `"spikes"`.
    - `window`: the spike matching window in seconds (default `10 dt`).
    - `time_shift`: a discrete spike in step k is at `k dt + time_shift`.
    - `methods`: the discrete methods to run.
    - `continuous_kwargs`: passed to `simulate_continuous` (`rtol`, `atol`, ...).

    **Returns:** a `FidelityReport` (`.table()`, `.plot(path)`, `.to_dict()`).
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"compare: expected a nirjax.Graph, got {type(graph).__name__}.")
    if dt is not None and abs(float(dt) - graph.options.dt) > 1e-12 * float(dt):
        graph = graph.with_options(dt=float(dt))  # asked for: run at this step
    dt = graph.options.dt
    if not 0 <= time_shift < dt:
        raise ValueError(f"time_shift: must be in [0, dt) = [0, {dt}), got {time_shift}.")
    window = 10 * dt if window is None else float(window)
    if input_kind is None:
        input_kind = "current" if graph.options.input_mode == "current" else "spikes"
    for m in methods:
        if m not in DISCRETE:
            raise ValueError(f"methods: expected names from {list(DISCRETE)}, got {m!r}.")
    net = build_net(graph, input_kind)
    shapes = net.shapes
    ref = simulate_continuous(graph, inputs, input_kind=input_kind, **continuous_kwargs)
    ref = jax.tree.map(np.asarray, ref)
    T = ref.record[net.neurons[0]]["v"].shape[0] if net.neurons else 0
    runs: dict = {}
    for m in methods:
        g = graph.with_options(discretization=m)
        result = _run_discrete(g, inputs, net.neurons)
        rec = jax.tree.map(np.asarray, result.record)
        runs[m] = {}
        for n in net.neurons:
            entry = {"v": rec[n]["v"]}
            if n in net.spiking:
                entry["trains"] = trains_from_grid(rec[n]["output"], dt, time_shift)
            runs[m][n] = entry
    if recording is not None:
        runs["recording"] = _read_recording(recording, net.neurons, shapes, dt, T, time_shift,
                                            sample)
    rows: list[Row] = []
    for method, run in runs.items():
        errors_all: list = []
        totals = np.zeros(5)
        sq, count = 0.0, 0
        for n in net.neurons:
            if n not in run:
                continue
            ref_trains = (trains_from_times(ref.spike_times[n]) if n in net.spiking else [])
            trains = run[n].get("trains")
            v = run[n].get("v")
            row, errors = _score(method, n, ref_trains if trains is not None else [],
                                 trains if trains is not None else [], window,
                                 ref.record[n]["v"], v)
            rows.append(row)
            errors_all.extend(errors)
            totals += [row.ref_spikes, row.spikes, row.matched, row.missed, row.extra]
            if v is not None:
                k = min(len(v), T)
                sq += float(np.sum((np.asarray(v[:k], float) - ref.record[n]["v"][:k]) ** 2))
                count += int(np.prod(np.shape(v[:k])))
        rows.append(Row(
            method, "all", *(int(x) for x in totals),
            float(np.mean(errors_all)) if errors_all else float("nan"),
            float(np.max(errors_all)) if errors_all else float("nan"),
            float(np.sqrt(sq / count)) if count else float("nan"),
        ))
    return FidelityReport(rows, dt, window, ref, runs, net.spiking, net.neurons)
