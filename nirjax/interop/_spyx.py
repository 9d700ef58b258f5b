"""Spyx 1.0.0 (Flax NNX): the explicit corrections (see `nirjax.interop` and docs/interop.md).

Spyx's neurons (`spyx/nn.py`) decide each spike on the state at the start of the step,
`z = H(V - thr)` with `H(x) = [x > 0]` (`spyx/axn.py:25-27`), before the step's input:

    IF       (nn.py:162-169):  V <- V + x - z thr
    LIF      (nn.py:209-217):  V <- beta V + x - z thr          (the reset is not decayed)
    CuBaLIF  (nn.py:440-457):  V <- V - z thr;  I <- alpha I + x;  V <- beta V + I
    RLIF     (nn.py:525-536):  V <- beta V + x + z W - z thr     (z: this step's spikes)

In NIR terms: IF is an impulse input with `r = 1`, LIF forward Euler with `tau = dt / (1 -
beta)`, `r = tau / dt` and a held current, both with `spike_order="before_input"` and
`reset="subtract"`. CuBaLIF (reset, then integrate) is exactly NIR's CubaLIF (Euler, held
current, `cuba_order="current_first"`, `w_in = tau_syn / dt`, `r = tau_mem / dt`) delayed by one
step: `from_spyx` adds a `nir.Delay(dt)` after it. The recurrent layers feed back the spikes of
the same step, which NIR's recurrence (the previous step's output) cannot express; they are
refused.
"""

from __future__ import annotations

import nir
import numpy as np

from .._graph import Graph
from .._import import from_nir
from ._common import (
    _NODE_FIELDS,
    _array,
    _map_nodes,
    _named_modules,
    _replace,
    _require,
    _walk,
    as_model,
    as_nir_graph,
)

LAG_SUFFIX = "_spyx_lag"
"""The name suffix of the one-step Delay `from_spyx` adds after a CuBaLIF."""


def fix_spyx_export(graph: nir.NIRGraph | Graph, dt: float) -> nir.NIRGraph:
    r"""Correct a graph written by `spyx.nir.to_nir(model, ..., dt=dt)` (Spyx 1.0.0):

    1. **r is written as beta** (`spyx/nir.py` LIF and CuBaLIF export): set to `tau / dt`
       (`tau_mem / dt`), which is `V <- beta V + x` under forward Euler.
    2. **CuBaLIF's input weight**: Spyx adds x to I as is; NIR's held current needs
       `w_in = tau_syn / dt` (written 1).
    3. **CuBaLIF's order** (reset, then integrate): a one-step `nir.Delay(dt)` is added after
       every CubaLIF (named `<node>_spyx_lag`).
    4. **Channels-last flattening**: Spyx runs convolutions on `(H, W, C)` data and its
       `Flatten` (`spyx/nn.py:758`) flattens that order, while the exporter writes NIR's
       `(C, H, W)` Flatten: the columns of the Affine / Linear after a Flatten are permuted to
       NIR's order. (Feed nirjax the input as `(C, H, W)`: Spyx's `(H, W, C)` transposed.)
    5. **Recurrent layers** (a subgraph) are refused (see the module docstring).
    """
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"fix_spyx_export: dt must be > 0 seconds, got {dt!r}.")
    graph = as_nir_graph(graph, "fix_spyx_export")
    for key, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NotImplementedError(
                f"node {key!r}: Spyx's recurrent layers (RIF/RLIF/RCuBaLIF) feed back the "
                "spikes of the same step (decided before its input), which NIR's recurrence, "
                "carrying the previous step's output, cannot express."
            )

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) for f in _NODE_FIELDS
                   if getattr(node, f, None) is not None}
        if isinstance(node, nir.LIF):
            changes["r"] = (np.asarray(changes["tau"], np.float64) / dt).astype(
                np.asarray(changes["tau"]).dtype)
        if isinstance(node, nir.CubaLIF):
            f = np.asarray(changes["tau_mem"]).dtype
            changes["r"] = (np.asarray(changes["tau_mem"], np.float64) / dt).astype(f)
            changes["w_in"] = (np.asarray(changes["tau_syn"], np.float64) / dt).astype(f)
        return _replace(node, **changes) if changes else node

    fixed = _permute_after_flatten(_map_nodes(graph, fn), to_nir_order=True)
    cuba = [k for k, n in fixed.nodes.items() if isinstance(n, nir.CubaLIF)]
    if not cuba:
        return fixed
    nodes, edges = dict(fixed.nodes), []
    for k in cuba:
        shape = np.asarray(fixed.nodes[k].tau_mem).shape
        nodes[k + LAG_SUFFIX] = nir.Delay(delay=np.full(shape, dt, np.float64))
    for src, dst in fixed.edges:
        edges.append((src + LAG_SUFFIX if src in cuba else src, dst))
    edges += [(k, k + LAG_SUFFIX) for k in cuba]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(fixed.metadata or {}),
                        type_check=False)


def _hwc_to_chw(shape) -> np.ndarray:
    """`p` with `x_chw.ravel() == x_hwc.ravel()[p]` for a `(C, H, W)` shape."""
    c, h, w = (int(d) for d in shape)
    return np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).ravel()


def _permute_after_flatten(graph: nir.NIRGraph, to_nir_order: bool) -> nir.NIRGraph:
    """Permute the input columns of each Affine / Linear fed by a 3-d Flatten between Spyx's
    channels-last and NIR's channels-first order."""
    nodes = dict(graph.nodes)
    for key, node in graph.nodes.items():
        if not isinstance(node, nir.Flatten):
            continue
        shape = np.asarray(node.input_type["input"]).ravel()
        if shape.size != 3:
            continue
        p = _hwc_to_chw(shape)
        perm = p if to_nir_order else np.argsort(p)
        for s, d in graph.edges:
            if s != key:
                continue
            nxt = nodes[d]
            _require(isinstance(nxt, (nir.Affine, nir.Linear)), d,
                     "after a channels-last Flatten Spyx needs an Affine/Linear to reorder.")
            w = np.asarray(_array(nxt.weight))[:, perm]
            nodes[d] = (nir.Affine(weight=w, bias=np.asarray(_array(nxt.bias)))
                        if isinstance(nxt, nir.Affine) else nir.Linear(weight=w))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(graph.metadata or {}), type_check=False)


def spyx_options(graph: nir.NIRGraph | Graph, dt: float) -> dict:
    """The `from_nir` options of Spyx's neurons for a `fix_spyx_export`ed graph: Euler at dt,
    a held current (an impulse for IF), subtractive reset, `v > thr`, and
    `spike_order="before_input"` for IF and LIF (CuBaLIF: NIR's order, then the added
    Delay)."""
    node_options = {}
    for path, node in _walk(as_nir_graph(graph, "spyx_options")):
        if isinstance(node, nir.IF):
            node_options[path] = {"input_mode": "impulse", "spike_order": "before_input"}
        elif isinstance(node, nir.LIF):
            node_options[path] = {"spike_order": "before_input"}
    return dict(dt=float(dt), discretization="euler", input_mode="current",
                cuba_order="current_first", reset="subtract", spikes_per_step="single",
                threshold_comparison="greater", node_options=node_options)


def from_spyx(graph: nir.NIRGraph | Graph, dt: float, **kwargs) -> Graph:
    """Import a graph written by `spyx.nir.to_nir(..., dt=dt)`: `fix_spyx_export`, then
    `from_nir` with `spyx_options`. Other keyword arguments go to `from_nir`."""
    fixed = fix_spyx_export(graph, dt)
    options = spyx_options(fixed, dt)
    for k, v in dict(kwargs.pop("node_options", None) or {}).items():
        options["node_options"][k] = {**options["node_options"].get(k, {}), **v}
    return from_nir(fixed, **options, **kwargs)


def to_spyx(model: Graph | nir.NIRGraph) -> nir.NIRGraph:
    """Export a nirjax graph for `spyx.nir.from_nir(graph, xs, dt=model.options.dt)`, or say
    why it cannot be.

    Spyx 1.0.0's importer (`spyx/nir.py:244-346`) builds a chain (`Sequential`) from the edges
    starting at "input", turns a LIF into `LIF(beta = 1 - dt / tau)`, a CubaLIF into
    `CuBaLIF(alpha = 1 - dt / tau_syn, beta = 1 - dt / tau_mem)` and an IF into `IF`, ignoring
    `r`, `w_in`, `v_leak` and `v_reset`. The nirjax graph must therefore run Spyx's neurons (the
    module docstring): IF and LIF with `spike_order="before_input"` (LIF `r = tau / dt`, IF
    `r = 1` and an impulse input), a CubaLIF with NIR's order followed by a one-step Delay
    (which Spyx's own lag replaces: it is removed here), `reset="subtract"`, `v > thr`,
    `v_leak = v_reset = 0`, Euler, one dt.
    """
    model = as_model(model, "to_spyx")
    dt = model.options.dt
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        kind = type(module).__name__
        if options is None or not getattr(module, "spiking", False):
            continue
        want = dict(discretization="euler", reset="subtract", spikes_per_step="single",
                    threshold_comparison="greater", dt=dt,
                    spike_order="after_input" if kind == "CubaLIF" else "before_input",
                    input_mode="impulse" if kind == "IF" else "current")
        for field, value in want.items():
            _require(getattr(options, field) == value, path,
                     f"Spyx's {kind} runs {field}={value!r}; the node has "
                     f"{getattr(options, field)!r}.")
    graph = as_nir_graph(model, "to_spyx")
    succ: dict[str, list[str]] = {}
    for s, d in graph.edges:
        succ.setdefault(s, []).append(d)
    drop = {}
    for key, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NotImplementedError(
                f"node {key!r}: Spyx's recurrent layers feed back the same step's spikes; NIR's "
                "recurrence is not importable into them exactly."
            )
        if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
            _require(np.allclose(node.v_reset, 0), key, "Spyx subtracts thr: v_reset = 0.")
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            _require(np.allclose(node.v_leak, 0), key, "Spyx's importer ignores v_leak; 0.")
        if isinstance(node, nir.LIF):
            _require(np.allclose(node.r, np.asarray(node.tau) / dt, rtol=1e-5), key,
                     "Spyx adds x as is: r must be tau / dt.")
        if isinstance(node, nir.IF):
            _require(np.allclose(node.r, 1), key, "Spyx's IF adds x as is: r must be 1.")
        if isinstance(node, nir.CubaLIF):
            _require(np.allclose(node.r, np.asarray(node.tau_mem) / dt, rtol=1e-5), key,
                     "Spyx adds I as is: r must be tau_mem / dt.")
            _require(np.allclose(node.w_in, np.asarray(node.tau_syn) / dt, rtol=1e-5), key,
                     "Spyx adds x to I as is: w_in must be tau_syn / dt.")
            nxt = succ.get(key, [])
            lag = nxt[0] if len(nxt) == 1 else None
            ok = lag is not None and isinstance(graph.nodes[lag], nir.Delay) and np.allclose(
                graph.nodes[lag].delay, dt)
            _require(ok, key, "Spyx's CuBaLIF resets before it integrates, i.e. it lags NIR's "
                     "CubaLIF by one step: the node must be followed by a Delay of dt (as "
                     "from_spyx builds it).")
            drop[lag] = key
    for key, node in graph.nodes.items():
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I, nir.Delay, nir.Threshold, nir.Scale,
                             nir.AvgPool2d, nir.Conv1d)) and key not in drop:
            raise NotImplementedError(
                f"node {key!r}: no Spyx module reproduces a {type(node).__name__} here."
            )
    nodes = {k: n for k, n in graph.nodes.items() if k not in drop}
    edges = [(drop.get(s, s), d) for s, d in graph.edges if d not in drop]
    out = nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}),
                       type_check=False)
    return _permute_after_flatten(out, to_nir_order=False)  # Spyx flattens channels-last
