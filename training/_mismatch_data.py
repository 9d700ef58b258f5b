"""Recordings in the NIR data format (`nir.NIRGraphData`, written by `nir.write_data`).

Layout of a recording file (one HDF5 file, `nir.read_data` reads it):

- one `NIRNodeData` per recorded node, named as in the graph; its observables are
  `TimeGriddedData` of shape `(samples, T, n)` (`n` = the node's neurons, flattened):
  `"v"` (membrane voltage after the step's reset, float), `"I"` (synaptic current, float) and
  `"output"` (the node's output; spikes are stored as bool);
- one `NIRNodeData` per Input node of the graph, with observable `"output"`: the inputs that drove
  the recording, `(samples, T, n_inputs)`;
- every observable has the same `dt`, which must equal the graph's time step.

`EventData` observables are accepted on reading and converted to the time grid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import nir
import numpy as np

from nirjax import atomic_path

from ._paths import walk


class Recording(NamedTuple):
    """A recording read from arrays or a NIR data file.

    - `recordings`: `{node: {observable: (samples, T, *shape)}}` for the recorded nodes.
    - `inputs`: `{input node: (samples, T, *shape)}` (empty if the file holds none).
    - `dt`: the time step of the grid in seconds (None if unknown).
    """

    recordings: dict[str, dict[str, np.ndarray]]
    inputs: dict[str, np.ndarray]
    dt: float | None


def _flat(name: str, obs: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"recording of {name!r}, observable {obs!r}: expected shape (samples, T, ...), got "
            f"{x.shape}. Add a leading samples axis for a single recording (x[None])."
        )
    return x.reshape(x.shape[0], x.shape[1], -1)


def _gridded(name: str, obs: str, x, dt: float) -> nir.TimeGriddedData:
    x = _flat(name, obs, x)
    if obs == "output" and np.isin(x, (0, 1)).all() and x.dtype != np.bool_:
        values = np.asarray(x, dtype=np.float64)
        if np.array_equal(values, values.astype(bool)):
            x = x.astype(bool)
    elif x.dtype != np.bool_:
        x = np.asarray(x, dtype=np.float32 if x.dtype != np.float64 else np.float64)
    return nir.TimeGriddedData(data=x, dt=float(dt))


def to_graph_data(
    recordings: Mapping[str, Mapping[str, Any]],
    *,
    inputs: Mapping[str, Any] | None,
    dt: float,
) -> nir.NIRGraphData:
    """Recordings (and the inputs that drove them) as a `nir.NIRGraphData` (layout above)."""
    nodes: dict[str, nir.NIRNodeData] = {}
    for name, x in (inputs or {}).items():
        nodes[name] = nir.NIRNodeData({"output": _gridded(name, "output", x, dt)})
    for name, obs in recordings.items():
        if "/" in name:
            raise NotImplementedError(
                f"recording of {name!r}: nodes inside subgraphs cannot be written (nir 1.0's "
                "write_data does not write nested NIRGraphData correctly). Record the subgraph's "
                "output, or keep the recording as arrays."
            )
        if name in nodes:
            raise ValueError(f"recording: node {name!r} appears both as an input and recorded.")
        nodes[name] = nir.NIRNodeData({k: _gridded(name, k, v, dt) for k, v in obs.items()})
    return nir.NIRGraphData(nodes)


def write_recording(
    path: str | os.PathLike,
    recordings: Mapping[str, Mapping[str, Any]],
    *,
    inputs: Mapping[str, Any] | None,
    dt: float,
) -> None:
    """Write recordings and their inputs to a NIR data file, atomically (temporary file in the
    same folder, then `os.replace`).

    **Arguments:**

    - `path`: the file to write (HDF5, conventionally `.h5`).
    - `recordings`: `{node: {"v": (S, T, ...), "output": (S, T, ...), ...}}`.
    - `inputs`: `{input node: (S, T, ...)}`: what drove the recording.
    - `dt`: the time step in seconds.
    """
    data = to_graph_data(recordings, inputs=inputs, dt=dt)
    with atomic_path(path, ".h5") as tmp:
        nir.write_data(tmp, data)


def _observables(full: str, node: nir.NIRNodeData, dts: set, dt_hint) -> dict[str, np.ndarray]:
    obs = {}
    for key, value in node.observables.items():
        if isinstance(value, nir.TimeGriddedData):
            dts.add(float(value.dt))
            obs[key] = np.asarray(value.data)
        elif isinstance(value, nir.EventData):
            if dt_hint is None:
                raise ValueError(
                    f"recording of {full!r}, observable {key!r}: event data needs a time "
                    "grid; pass the graph (its dt) or store TimeGriddedData."
                )
            obs[key] = np.asarray(value.to_time_gridded(dt_hint).data)
        else:
            raise TypeError(
                f"recording of {full!r}, observable {key!r}: unsupported type "
                f"{type(value).__name__}; use nir.TimeGriddedData or nir.EventData."
            )
        x = obs[key]
        if x.dtype.kind not in "biuf":
            raise TypeError(f"recording of {full!r}, observable {key!r}: expected numbers, got "
                            f"dtype {x.dtype}.")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(
                f"recording of {full!r}, observable {key!r}: holds non-finite values (first at "
                f"index {where}, i.e. sample {where[0]}, step {where[1] if len(where) > 1 else 0})"
                "; remove or repair those samples."
            )
    return obs


def read_recording(src, graph=None) -> Recording:
    """Read a recording from a NIR data file or a `nir.NIRGraphData`.

    With `graph` (a `nirjax.Graph`), the observables of its Input nodes become `inputs`, arrays
    are reshaped to the nodes' shapes, spikes become floats, and the time step is checked against
    the graph's. Without it everything stays in `recordings` as `(S, T, n)`.
    """
    if isinstance(src, (str, os.PathLike)):
        if not os.path.exists(src):
            raise FileNotFoundError(f"{os.fspath(src)}: no such recording file.")
        try:
            src = nir.read_data(os.fspath(src))
        except Exception as e:  # noqa: BLE001 - one clear error for any reader failure
            raise ValueError(
                f"{os.fspath(src)}: cannot read it as NIR data ({type(e).__name__}: {e}). Write "
                "recordings with nir.write_data (NIRGraphData of TimeGriddedData)."
            ) from e
    if not isinstance(src, nir.NIRGraphData):
        raise TypeError(
            f"read_recording: expected a path or nir.NIRGraphData, got {type(src).__name__}."
        )
    dt_hint = graph.options.dt if graph is not None else None
    dts: set = set()
    found = {
        path: _observables(path, node, dts, dt_hint)
        for path, node in walk(src)
        if not isinstance(node, nir.NIRGraphData)
    }
    if len(dts) > 1:
        raise ValueError(f"recording: observables use different time steps {sorted(dts)}.")
    dt = dts.pop() if dts else dt_hint
    if graph is None:
        return Recording(found, {}, dt)
    if dt is not None and not np.isclose(dt, graph.options.dt, rtol=1e-6):
        raise ValueError(
            f"recording: time step {dt} s differs from the graph's dt {graph.options.dt} s. "
            "Use the graph at the recording's dt (nirjax.from_nir(..., dt=...) for a file that "
            "records none, else graph.with_options(dt=...))."
        )
    inputs = {}
    recordings = {}
    for name, obs in found.items():
        if name in graph.inputs:
            if "output" not in obs:
                raise ValueError(
                    f"recording: Input node {name!r} has observables {sorted(obs)}; the inputs "
                    "must be stored as its 'output' observable."
                )
            x = obs["output"]
            inputs[name] = x.reshape(x.shape[:2] + tuple(graph.nodes[name].shape)).astype(
                np.float32
            )
        else:
            recordings[name] = {k: np.asarray(v, dtype=np.float32) for k, v in obs.items()}
    return Recording(recordings, inputs, dt)


__all__ = ["Recording", "read_recording", "write_recording", "to_graph_data"]
