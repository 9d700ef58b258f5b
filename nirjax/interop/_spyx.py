"""Spyx 1.0.0 (Flax NNX): the explicit corrections (see `nirjax.interop` and docs/interop.md).

Spyx's neurons (`spyx/nn.py`) decide each spike on the state at the start of the step,
`z = H(V - thr)` with `H(x) = [x > 0]` (`spyx/axn.py:25-27`), before the step's input:

    IF       (nn.py:162-169):  V <- V + x - z thr
    LIF      (nn.py:209-217):  V <- beta V + x - z thr          (the reset is not decayed)
    CuBaLIF  (nn.py:440-457):  V <- V - z thr;  I <- alpha I + x;  V <- beta V + I
    RLIF     (nn.py:525-536):  V <- beta V + x + z W - z thr     (z: this step's spikes)

    RIF      (nn.py:488-489):  V <- V + x + z W - z thr
    RCuBaLIF (nn.py:591-595):  V <- V - z thr;  I <- alpha I + x + z W;  V <- beta V + I

In NIR terms: IF is an impulse input with `r = 1`, LIF forward Euler with `tau = dt / (1 -
beta)`, `r = tau / dt` and a held current, both with `spike_order="before_input"` and
`reset="subtract"`. CuBaLIF (reset, then integrate) is exactly NIR's CubaLIF (Euler, held
current, `cuba_order="current_first"`, `w_in = tau_syn / dt`, `r = tau_mem / dt`) delayed by one
step: `from_spyx` adds a `nir.Delay(dt)` after it.

The recurrent layers feed back this step's spikes `z_t = H(V_{t-1} - thr)`, which are NIR's
after-input spikes of the previous step, `s_{t-1} = H(V_{t-1} - thr)`: with NIR's spike order
(decide after the input, reset at once) and the previous step's spikes on the back edge, each
recurrent layer is exactly a NIR recurrent subgraph followed by a one-step Delay. For RLIF the
reset is not decayed (`V <- beta V + ... - z thr`) where NIR's subtractive reset is
(`V' = V - s thr`, then `beta V'`): substituting gives the recurrent weight
`W' = W - diag((1 - beta) thr)` (`1 - beta = dt / tau`); RIF (beta = 1) and RCuBaLIF (reset
before the decay) keep W.
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
    5. **Recurrent layers** (RIF, RLIF, RCuBaLIF: a 4-node subgraph whose input edge the
       exporter wires into `w_rec`, `spyx/nir.py:443`): rebuilt as `input -> lif`,
       `lif -> w_rec -> lif`, `lif -> output` (inner nodes named `input`, `lif`, `w_rec`,
       `output`), RLIF's recurrent weight made `W - diag((1 - beta) thr)`, and a one-step
       Delay added after the subgraph (see the module docstring).
    """
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"fix_spyx_export: dt must be > 0 seconds, got {dt!r}.")
    graph = as_nir_graph(graph, "fix_spyx_export")

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
    fixed = nir.NIRGraph(
        nodes={k: _spyx_recurrent_from_export(k, n, dt) if isinstance(n, nir.NIRGraph) else n
               for k, n in fixed.nodes.items()},
        edges=list(fixed.edges), metadata=dict(fixed.metadata or {}), type_check=False)
    cuba = [k for k, n in fixed.nodes.items() if isinstance(n, (nir.CubaLIF, nir.NIRGraph))]
    if not cuba:
        return fixed
    nodes, edges = dict(fixed.nodes), []
    for k in cuba:
        shape = np.asarray(_spyx_neuron(fixed.nodes[k])[1].v_threshold).shape
        nodes[k + LAG_SUFFIX] = nir.Delay(delay=np.full(shape, dt, np.float64))
    for src, dst in fixed.edges:
        edges.append((src + LAG_SUFFIX if src in cuba else src, dst))
    edges += [(k, k + LAG_SUFFIX) for k in cuba]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(fixed.metadata or {}),
                        type_check=False)


def _spyx_neuron(node) -> tuple[str, nir.NIRNode]:
    """`(key, neuron)` of a CubaLIF, or of the neuron inside a Spyx recurrent subgraph."""
    if not isinstance(node, nir.NIRGraph):
        return "", node
    found = [(k, n) for k, n in node.nodes.items() if isinstance(n, (nir.IF, nir.LIF,
                                                                        nir.CubaLIF))]
    return found[0]


def _recurrent_parts(key: str, sub: nir.NIRGraph) -> tuple[nir.NIRNode, np.ndarray]:
    """The neuron and the `(n, n)` recurrent weight of a 4-node recurrent subgraph (Input,
    IF / LIF / CubaLIF, Linear / Affine with zero bias, Output), or an error naming `key`."""
    kinds = sorted(type(n).__name__ for n in sub.nodes.values())
    neurons = [n for n in sub.nodes.values() if isinstance(n, (nir.IF, nir.LIF, nir.CubaLIF))]
    weights = [n for n in sub.nodes.values() if isinstance(n, (nir.Linear, nir.Affine))]
    _require(len(sub.nodes) == 4 and len(neurons) == 1 and len(weights) == 1, key,
             "a Spyx recurrent layer is a subgraph of Input, one IF / LIF / CubaLIF, one "
             f"Linear (the recurrent weights) and Output; got {kinds}.")
    w = weights[0]
    if isinstance(w, nir.Affine):
        _require(np.allclose(_array(w.bias), 0), key,
                 "Spyx's recurrent weights have no bias; the Affine's bias must be 0.")
    return neurons[0], np.asarray(_array(w.weight))


def _reset_correction(neuron, dt: float) -> np.ndarray:
    """`(1 - beta) thr` per neuron for a LIF (Spyx's undecayed reset), 0 otherwise."""
    if not isinstance(neuron, nir.LIF):
        return np.zeros_like(np.asarray(_array(neuron.v_threshold), np.float64))
    return dt / np.asarray(_array(neuron.tau), np.float64) * np.asarray(
        _array(neuron.v_threshold), np.float64)


def _recurrent_subgraph(neuron, weight) -> nir.NIRGraph:
    n = np.array(np.asarray(neuron.v_threshold).shape)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": n}), "lif": neuron,
               "w_rec": nir.Linear(weight=weight),
               "output": nir.Output(output_type={"output": n})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False)


def _spyx_recurrent_from_export(key: str, sub: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    neuron, w = _recurrent_parts(key, sub)
    corrected = np.asarray(w, np.float64) - np.diag(_reset_correction(neuron, dt))
    return _recurrent_subgraph(neuron, corrected.astype(w.dtype))


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
    `spike_order="before_input"` for IF and LIF (CuBaLIF and the neurons of recurrent layers:
    NIR's order, then the added Delay)."""
    node_options = {}
    for path, node in _walk(as_nir_graph(graph, "spyx_options")):
        # inside a recurrent layer: NIR's order, the lag added after the subgraph
        order = "after_input" if "/" in path else "before_input"
        if isinstance(node, nir.IF):
            node_options[path] = {"input_mode": "impulse", "spike_order": order}
        elif isinstance(node, nir.LIF):
            node_options[path] = {"spike_order": order}
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
    `CuBaLIF(alpha = 1 - dt / tau_syn, beta = 1 - dt / tau_mem)`, an IF into `IF` and a 4-node
    recurrent subgraph into `RIF` / `RLIF` / `RCuBaLIF` (`recurrent_w = W^T`), ignoring `r`,
    `w_in`, `v_leak` and `v_reset`. The nirjax graph must therefore run Spyx's neurons (the
    module docstring): IF and LIF with `spike_order="before_input"` (LIF `r = tau / dt`, IF
    `r = 1` and an impulse input); a CubaLIF, or a recurrent subgraph (input -> neuron,
    neuron -> w_rec -> neuron, neuron -> output; its neuron with NIR's order), followed by a
    one-step Delay (which Spyx's own lag replaces: it is removed here; a RLIF's weight gets
    `diag((1 - beta) thr)` back); `reset="subtract"`, `v > thr`, `v_leak = v_reset = 0`,
    Euler, one dt.
    """
    model = as_model(model, "to_spyx")
    dt = model.options.dt
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        kind = type(module).__name__
        if options is None or not getattr(module, "spiking", False):
            continue
        lagged = kind == "CubaLIF" or "/" in path
        want = dict(discretization="euler", reset="subtract", spikes_per_step="single",
                    threshold_comparison="greater", dt=dt,
                    spike_order="after_input" if lagged else "before_input",
                    input_mode="impulse" if kind == "IF" else "current")
        for field, value in want.items():
            _require(getattr(options, field) == value, path,
                     f"Spyx's {kind} runs {field}={value!r}"
                     f"{' inside a recurrent layer' if '/' in path else ''}; the node has "
                     f"{getattr(options, field)!r}.")
    graph = as_nir_graph(model, "to_spyx")
    succ: dict[str, list[str]] = {}
    for s, d in graph.edges:
        succ.setdefault(s, []).append(d)
    drop, nodes = {}, dict(graph.nodes)
    for key, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            neuron, w = _recurrent_parts(key, node)
            edges = {tuple(e) for e in node.edges}
            keys = {type(n).__name__: k for k, n in node.nodes.items()}
            lif = next(k for k, n in node.nodes.items() if n is neuron)
            wk = keys.get("Linear", keys.get("Affine"))
            inp, out = keys["Input"], keys["Output"]
            _require(edges == {(inp, lif), (lif, wk), (wk, lif), (lif, out)}, key,
                     "a Spyx recurrent layer's edges are input -> neuron, neuron -> w_rec -> "
                     f"neuron, neuron -> output; got {sorted(edges)}.")
            restored = np.asarray(w, np.float64) + np.diag(_reset_correction(neuron, dt))
            nodes[key] = _recurrent_subgraph(neuron, restored.astype(w.dtype))
            path = key + "/" + lif
        else:
            neuron, path = node, key
        if isinstance(neuron, (nir.LIF, nir.IF, nir.CubaLIF)):
            _require(np.allclose(neuron.v_reset, 0), path, "Spyx subtracts thr: v_reset = 0.")
        if isinstance(neuron, (nir.LIF, nir.CubaLIF)):
            _require(np.allclose(neuron.v_leak, 0), path, "Spyx's importer ignores v_leak; 0.")
        if isinstance(neuron, nir.LIF):
            _require(np.allclose(neuron.r, np.asarray(neuron.tau) / dt, rtol=1e-5), path,
                     "Spyx adds x as is: r must be tau / dt.")
        if isinstance(neuron, nir.IF):
            _require(np.allclose(neuron.r, 1), path, "Spyx's IF adds x as is: r must be 1.")
        if isinstance(neuron, nir.CubaLIF):
            _require(np.allclose(neuron.r, np.asarray(neuron.tau_mem) / dt, rtol=1e-5), path,
                     "Spyx adds I as is: r must be tau_mem / dt.")
            _require(np.allclose(neuron.w_in, np.asarray(neuron.tau_syn) / dt, rtol=1e-5), path,
                     "Spyx adds x to I as is: w_in must be tau_syn / dt.")
        if isinstance(node, (nir.CubaLIF, nir.NIRGraph)):
            nxt = succ.get(key, [])
            lag = nxt[0] if len(nxt) == 1 else None
            ok = lag is not None and isinstance(graph.nodes[lag], nir.Delay) and np.allclose(
                graph.nodes[lag].delay, dt)
            what = "CuBaLIF resets before it integrates" if isinstance(node, nir.CubaLIF) else (
                "recurrent layers feed back the spikes decided at the start of the step")
            _require(ok, key, f"Spyx's {what}, i.e. it lags NIR's neuron by one step: the "
                     "node must be followed by a Delay of dt (as from_spyx builds it).")
            drop[lag] = key
    for key, node in graph.nodes.items():
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I, nir.Delay, nir.Threshold, nir.Scale,
                             nir.AvgPool2d, nir.Conv1d)) and key not in drop:
            raise NotImplementedError(
                f"node {key!r}: no Spyx module reproduces a {type(node).__name__} here."
            )
    nodes = {k: n for k, n in nodes.items() if k not in drop}
    edges = [(drop.get(s, s), d) for s, d in graph.edges if d not in drop]
    out = nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}),
                       type_check=False)
    return _permute_after_flatten(out, to_nir_order=False)  # Spyx flattens channels-last
