"""A simulated chip: the nominal graph with known Gaussian mismatch, recorded with noise; and the
comparison of fitted parameters with a chip's."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax

from ._mismatch_data import write_recording
from ._mismatch_neurons import is_neuron
from ._mismatch_objective import TRACE_OBSERVABLES, as_inputs, batch
from ._mismatch_targets import as_graph, lookup, resolve_targets, substitute
from ._paths import get, walk

DEFAULT_PARAMS = ("tau", "tau_syn", "tau_mem", "r", "v_threshold")


class SimulatedChip(NamedTuple):
    """What `simulate_chip` returns: the true (perturbed) `graph`, the noisy `recordings`
    `{node: {"v", "output", ...}}`, the `inputs` `{input node: (S, T, ...)}` and `dt`."""

    graph: nirjax.Graph
    recordings: dict[str, dict[str, np.ndarray]]
    inputs: dict[str, np.ndarray]
    dt: float


def perturb(
    graph: nirjax.Graph,
    *,
    mismatch: float | Mapping[str, float] = 0.2,
    params: Sequence[str] | str = DEFAULT_PARAMS,
    per_row_gain: bool | Sequence[str] = False,
    seed: int = 0,
) -> nirjax.Graph:
    """The graph with Gaussian mismatch: each selected parameter element becomes
    `p0 + m s z` with `z ~ N(0, 1)` clipped to ±3 and `s` the scale of `Target` (|p0|, so a
    relative mismatch m), time constants kept at least 5 % of nominal."""
    targets = resolve_targets(graph, params, per_row_gain=per_row_gain, strict=False)
    rng = np.random.default_rng(seed)
    values = {}
    for t in targets:
        m = float(lookup(mismatch, t.node, t.field, 0.2))
        z = np.clip(rng.standard_normal(t.nominal.shape), -3.0, 3.0)
        v = t.nominal + m * t.scale * z
        if t.positive:
            v = np.maximum(v, 0.05 * t.nominal)
        values[t.name] = jnp.asarray(v, graph.dtype)
    return substitute(graph, targets, values)


def simulate_chip(
    nominal: nirjax.Graph | nir.NIRGraph | str | os.PathLike,
    *,
    inputs: Any,
    mismatch: float | Mapping[str, float] = 0.2,
    noise: float = 0.01,
    params: Sequence[str] | str = DEFAULT_PARAMS,
    per_row_gain: bool | Sequence[str] = False,
    record: Sequence[str] | None = None,
    observables: Sequence[str] = ("v", "output"),
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> SimulatedChip:
    """A simulated chip: the nominal graph with known mismatch, run on `inputs`, recorded with
    observation noise.

    **Arguments:**

    - `nominal`: the nominal graph (Graph, nir.NIRGraph or .nir path).
    - `inputs`: `(S, T, *input_shape)` (a dict by Input name if several).
    - `mismatch`: relative standard deviation of the Gaussian mismatch (or a dict by field).
    - `noise`: standard deviation of the Gaussian noise added to recorded traces (`"v"`, `"I"`);
      spikes are recorded exactly.
    - `params`, `per_row_gain`: which parameters deviate (as in `fit_mismatch`; fields no node
      has are skipped).
    - `record`: the nodes to record (default: every neuron); `observables`: which of their
      observables (`"v"`, `"I"`, `"output"`).
    - `seed`: the seed of the mismatch and of the noise.
    - `path`: if given, write the recording and the inputs to this NIR data file (atomically).

    **Returns:** a `SimulatedChip(graph, recordings, inputs, dt)`; `graph` is the true chip.
    """
    graph = as_graph(nominal)
    chip = perturb(graph, mismatch=mismatch, params=params, per_row_gain=per_row_gain, seed=seed)
    inputs = as_inputs(graph, inputs)
    if record is None:
        record = [p for p, n in walk(graph) if is_neuron(n)]
    record = tuple(record)
    res = jax.jit(jax.vmap(lambda x: chip.run(x, record=record).record))(batch(inputs))
    rng = np.random.default_rng(seed + 1)
    recordings: dict[str, dict[str, np.ndarray]] = {}
    for n in record:
        recordings[n] = {}
        for k in observables:
            if k not in res[n]:
                raise ValueError(
                    f"simulate_chip: node {n!r} has no observable {k!r} (it has {sorted(res[n])})."
                )
            x = np.asarray(res[n][k])
            if k in TRACE_OBSERVABLES and noise:
                x = (x + noise * rng.standard_normal(x.shape)).astype(x.dtype)
            recordings[n][k] = x
    inputs_np = {k: np.asarray(v) for k, v in inputs.items()}
    if path is not None:
        write_recording(path, recordings, inputs=inputs_np, dt=graph.options.dt)
    return SimulatedChip(chip, recordings, inputs_np, graph.options.dt)


def relative_errors(
    graph: nirjax.Graph,
    reference: nirjax.Graph,
    params: Sequence[str] | str,
    *,
    per_row_gain: bool | Sequence[str] = False,
) -> dict[str, np.ndarray]:
    """Elementwise `|p - p_ref| / |p_ref|` of the named parameters of two graphs of the same
    structure (for a per-row gain: the least-squares gain of the row relative to the
    reference's, minus 1)."""
    targets = resolve_targets(reference, params, per_row_gain=per_row_gain, strict=False)
    out = {}
    for t in targets:
        a, b = get(graph, t.node), get(reference, t.node)
        if t.field == "gain":
            wa, wb = np.asarray(a.weight), np.asarray(b.weight)
            out[t.name] = np.abs((wa * wb).sum(-1) / (wb * wb).sum(-1) - 1.0)
            continue
        shape = t.nominal.shape
        pa = np.broadcast_to(np.asarray(getattr(a, t.field)), shape)
        pb = np.broadcast_to(np.asarray(getattr(b, t.field)), shape)
        out[t.name] = np.abs(pa - pb) / np.where(pb != 0, np.abs(pb), 1.0)
    return out


def simulate(graph: nirjax.Graph, inputs: Any, record: Sequence[str]) -> dict:
    """Run `graph` on a batch `(S, T, ...)` of inputs (a dict if several) and return the traces
    of `record` (free running), as numpy arrays `{node: {obs: (S, T, ...)}}`."""
    xs = batch(as_inputs(graph, inputs))
    res = jax.jit(jax.vmap(lambda x: graph.run(x, record=tuple(record)).record))(xs)
    return jax.tree.map(np.asarray, res)
