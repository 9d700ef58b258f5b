"""Explicit corrections for the NIR converters of other simulators (snnTorch, Norse).

Each peer's exporter writes NIR that does not say everything its own simulator does (a
hard-coded dt, a time constant off by a factor, a missing input weight, a batch dimension in the
Input's shape), and each importer accepts only part of NIR. nirjax never guesses: `from_nir`
reads a graph literally. The functions here state each known defect and correct it when you
call them; see `docs/interop.md` for the measured agreement. None of them needs the peer
installed: they work on `nir.NIRGraph`s.

snnTorch (measured with snnTorch 1.0.0):

    g = snntorch.export_nir.export_to_nir(net, sample, ignore_dims=[0])
    model = nirjax.interop.from_snntorch(g)       # dt = 1e-4, as snnTorch wrote it
    nir_graph = nirjax.interop.to_snntorch(model) # for snntorch.import_nir.import_from_nir

Norse (measured with Norse 1.1.0):

    g = norse.torch.to_nir(net, sample, dt=1e-3)
    model = nirjax.interop.from_norse(g, dt=1e-3)           # tau, w_in and shapes corrected
    nir_graph = nirjax.interop.to_norse(model)              # for norse.torch.from_nir(..., dt=)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import nir
import numpy as np

from ._export import to_nir
from ._graph import Graph
from ._import import from_nir
from ._paths import walk

__all__ = [
    "SNNTORCH_DT",
    "rescale_time",
    "snntorch_options",
    "from_snntorch",
    "to_snntorch",
    "snntorch_initial_state",
    "fix_norse_export",
    "norse_options",
    "from_norse",
    "to_norse",
]

SNNTORCH_DT = 1e-4
"""The time step snnTorch's exporter and importer hard-code (seconds)."""

_TIME_FIELDS = ("tau", "tau_mem", "tau_syn", "delay")
_NODE_FIELDS = (
    "weight", "bias", "scale", "threshold", "delay", "tau", "tau_mem", "tau_syn", "r", "v_leak",
    "v_threshold", "v_reset", "w_in",
)


# ------------------------------------------------------------------------------- utilities
def _array(value: Any) -> Any:
    """A numpy copy of a parameter (torch tensors included, through `__array__`)."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    detach = getattr(value, "detach", None)
    if callable(detach):  # a torch tensor, possibly requiring grad
        value = detach().cpu().numpy()
    return np.array(value)


def _replace(node: nir.NIRNode, **changes) -> nir.NIRNode:
    """A copy of a NIR node with some fields changed (types re-derived by the constructor)."""
    fields = {
        f.name: getattr(node, f.name)
        for f in dataclasses.fields(node)
        if f.init and f.name not in ("input_type", "output_type")
    }
    fields.update(changes)
    if isinstance(node, nir.Input):
        fields["input_type"] = changes.get("input_type", node.input_type)
    if isinstance(node, nir.Output):
        fields["output_type"] = changes.get("output_type", node.output_type)
    if isinstance(node, nir.Flatten):
        fields["input_type"] = changes.get("input_type", node.input_type)
    return type(node)(**fields)


def _map_nodes(graph: nir.NIRGraph, fn: Callable[[str, nir.NIRNode], nir.NIRNode],
               prefix: str = "") -> nir.NIRGraph:
    """A new graph with `fn(path, node)` applied to every node (recursing into subgraphs)."""
    nodes = {}
    for key, node in graph.nodes.items():
        path = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            nodes[key] = _map_nodes(node, fn, path + "/")
        else:
            nodes[key] = fn(path, node)
    return nir.NIRGraph(
        nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata or {}),
        type_check=False,
    )


def _walk(graph: nir.NIRGraph):
    """The leaf nodes of a NIR graph with their paths (`"sub/node"`)."""
    return ((p, n) for p, n in walk(graph) if not isinstance(n, nir.NIRGraph))


def rescale_time(graph: nir.NIRGraph, factor: float) -> nir.NIRGraph:
    r"""Multiply every time constant and delay (`tau`, `tau_mem`, `tau_syn`, `delay`) by `factor`.

    Under forward Euler a neuron's step depends on `dt / tau` only, so a graph run with step `dt`
    behaves exactly like `rescale_time(graph, dt2 / dt)` run with step `dt2`. Use it to move a
    graph between peers that assume different steps (snnTorch assumes `dt = 1e-4`).

    **Arguments:** `graph` (a `nir.NIRGraph`), `factor` (> 0).
    **Returns:** a new `nir.NIRGraph`; the input is not modified.
    """
    factor = float(factor)
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"rescale_time: factor must be a finite number > 0, got {factor!r}.")

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) * factor for f in _TIME_FIELDS
                   if getattr(node, f, None) is not None}
        return _replace(node, **changes) if changes else node

    return _map_nodes(graph, fn)


def _unique(values, what: str, path: str, peer: str, fix: str) -> float:
    arr = np.unique(np.asarray(values, dtype=np.float64))
    if arr.size != 1 and not np.allclose(arr, arr[0], rtol=1e-6, atol=0):
        raise NotImplementedError(
            f"node {path!r}: {peer}'s importer needs one {what} for the whole layer, got "
            f"{arr.size} different values ({arr.min():g} .. {arr.max():g}). {fix}"
        )
    return float(arr[0])


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise NotImplementedError(f"node {path!r}: {message}")


# -------------------------------------------------------------------------------- snnTorch
def snntorch_options(reset_mechanism: str = "zero", reset_delay: bool = False) -> dict:
    """The `from_nir` options that reproduce snnTorch's neurons from `export_to_nir`'s graph.

    snnTorch's exporter writes `tau = dt / (1 - beta)`, `r = tau / dt` (and for `Synaptic`
    `tau_syn = dt / (1 - alpha)`, `w_in = tau_syn / dt`) with `dt = 1e-4` hard-coded, and
    `v_reset = 0`; it does not record the reset mechanism. Stepped with forward Euler at
    `dt = 1e-4`, that is `mem <- beta mem + x` (and `syn <- alpha syn + x` first for
    `Synaptic`), snnTorch's update.

    **Arguments:**

    - `reset_mechanism`: what the snnTorch neurons used: `"zero"` (NIR's reset to `v_reset = 0`,
      identical spikes) or `"subtract"`. For `"subtract"`, snnTorch deviates from NIR where the
      membrane is still above threshold after a subtraction: at the next step it decides the
      spike on `beta mem + x - threshold` (its `reset` bookkeeping), NIR on `beta mem + x`.
      Spikes then differ (measured 94-100 % agreement, docs/interop.md); below that regime they
      are identical.
    - `reset_delay`: snnTorch's flag. `False` (reset right after the spike) is NIR's semantics.
      `True` (snnTorch's default) is not expressible in NIR for the neurons whose zero reset
      also drops the next step's input (`Synaptic`, `RLeaky`, `RSynaptic`), nor for
      subtraction; it raises.

    **Returns:** a dict of keyword arguments for `nirjax.from_nir`.
    """
    resets = {"zero": "value", "subtract": "subtract"}
    if reset_mechanism not in resets:
        raise NotImplementedError(
            f"snntorch_options: reset_mechanism {reset_mechanism!r} has no NIR equivalent; "
            f"expected one of {sorted(resets)}."
        )
    if reset_delay:
        raise NotImplementedError(
            "snntorch_options: snnTorch's reset_delay=True applies the reset one step late (its "
            "zero reset then also zeroes the next step's input for Synaptic/RLeaky/RSynaptic, and "
            "its subtraction is then not decayed), which NIR cannot express. Build the snnTorch "
            "neurons with reset_delay=False (as snnTorch's own importer does)."
        )
    return dict(
        dt=SNNTORCH_DT, discretization="euler", input_mode="current",
        cuba_order="current_first", reset=resets[reset_mechanism],
    )


def from_snntorch(graph: nir.NIRGraph, *, reset_mechanism: str = "zero",
                  reset_delay: bool = False, **kwargs) -> Graph:
    """Import a graph written by `snntorch.export_to_nir`, with `snntorch_options(...)`.

    Export from snnTorch with `ignore_dims=[0]` (the batch dimension) and per-neuron `beta` /
    `threshold` tensors: with scalar ones, snnTorch 1.0.0's exporter fails NIR's type check.
    Other keyword arguments go to `nirjax.from_nir` (e.g. `surrogate`, `dtype`).
    """
    return from_nir(graph, **snntorch_options(reset_mechanism, reset_delay), **kwargs)


def snntorch_initial_state(model: Graph) -> dict:
    """The initial state that reproduces snnTorch's first step of a recurrent neuron.

    snnTorch's RLeaky / RSynaptic evaluate their recurrent layer on the initial (zero) spikes at
    the first step, so the recurrent Affine contributes its bias at t = 0; NIR's back edge (and
    nirjax) carries zeros at t = 0. This returns `model.init_state()` with every back edge that
    leaves an Affine set to that Affine's bias (in nested subgraphs too). Pass it explicitly:
    `model.run(xs, state=snntorch_initial_state(model))`; nothing changes otherwise.
    """
    from .primitives import Affine

    def fill(graph: Graph, state: dict) -> dict:
        feedback = dict(state["feedback"])
        for e in graph.plan.back_edges:
            src = graph.nodes[e.src]
            if isinstance(src, Affine) and e.src_port is None:
                feedback[e.key] = jnp.broadcast_to(src.bias, feedback[e.key].shape)
        nodes = {
            k: fill(graph.nodes[k], v) if isinstance(graph.nodes[k], Graph) else v
            for k, v in state["nodes"].items()
        }
        return {"nodes": nodes, "feedback": feedback}

    return fill(model, model.init_state())


def to_snntorch(model: Graph) -> nir.NIRGraph:
    """Export a nirjax graph for `snntorch.import_nir.import_from_nir`, or say why it cannot be.

    snnTorch's importer assumes `dt = 1e-4`, forward Euler, a reset to zero, `v_leak = 0`, one
    threshold per layer, and turns a LIF into `Leaky(beta = 1 - dt / tau)` with the threshold
    divided by `r dt / tau` (exact when `v_leak = v_reset = 0`). This function checks all of that
    (an error names the node and the condition), and rescales the time constants if the graph's
    `dt` is not `1e-4` (exact under Euler, see `rescale_time`). snnTorch's importer turns an `IF`
    into a leaky neuron with `beta = 0.9` and subtractive reset, so an IF is refused.

    **Returns:** a `nir.NIRGraph` to pass to `import_from_nir`.
    """
    if not isinstance(model, Graph):
        raise TypeError(f"to_snntorch: expected a nirjax.Graph, got {type(model).__name__}.")
    _check_options(model, "snnTorch", dict(discretization="euler", input_mode="current",
                                           reset="value", cuba_order="current_first"))
    graph = to_nir(model)
    dts = {m.options.dt for m in _modules(model) if hasattr(m, "options")} or {model.options.dt}
    if len(dts) > 1:
        raise NotImplementedError(f"to_snntorch: the graph mixes time steps {sorted(dts)}.")
    (dt,) = dts
    if dt != SNNTORCH_DT:
        graph = rescale_time(graph, SNNTORCH_DT / dt)
    for path, node in _walk(graph):
        fix = "Give the layer one threshold (and one r dt / tau)."
        if isinstance(node, nir.IF):
            raise NotImplementedError(
                f"node {path!r}: snnTorch's importer turns an IF into Leaky(beta=0.9) with "
                "subtractive reset, which is a different neuron. Use a LIF."
            )
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            _require(np.allclose(node.v_leak, 0), path, "snnTorch needs v_leak = 0.")
            _require(np.allclose(node.v_reset, 0), path,
                     "snnTorch resets to zero; v_reset must be 0.")
        if isinstance(node, nir.LIF):
            w_scale = np.asarray(node.r) * SNNTORCH_DT / np.asarray(node.tau)
            _unique(w_scale, "input scale r dt / tau", path, "snnTorch", fix)
            _unique(node.v_threshold, "threshold", path, "snnTorch", fix)
        if isinstance(node, nir.CubaLIF):
            _require(np.allclose(node.r, np.asarray(node.tau_mem) / SNNTORCH_DT, rtol=1e-5), path,
                     "snnTorch's importer needs r = tau_mem / dt (its beta form).")
            w_scale = np.asarray(node.w_in) * SNNTORCH_DT / np.asarray(node.tau_syn)
            _unique(np.asarray(node.v_threshold) / w_scale, "threshold / (w_in dt / tau_syn)",
                    path, "snnTorch", fix)
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I, nir.Delay, nir.Threshold, nir.Scale)):
            raise NotImplementedError(
                f"node {path!r}: snnTorch's importer has no {type(node).__name__}."
            )
    return graph


# ----------------------------------------------------------------------------------- Norse
def fix_norse_export(graph: nir.NIRGraph, dt: float, *, batch_dim: bool = True) -> nir.NIRGraph:
    r"""Correct a graph written by `norse.torch.to_nir(module, sample, dt=dt)` (Norse 1.1.0).

    Norse's exporter has three defects this undoes, each explicitly:

    1. Time constants: it writes `tau = dt / tau_inv`, i.e. `dt` times the true `1 / tau_inv`
       seconds. Every `tau`, `tau_mem`, `tau_syn` is divided by `dt`.
    2. `LIFCell -> CubaLIF`: Norse adds each input to the synaptic current as a jump,
       `i <- i + x`; NIR's impulse reading of `tau_syn dI/dt = -I + w_in S` jumps by
       `w_in x / tau_syn`, so `w_in = tau_syn` (Norse writes 1).
    3. With `batch_dim=True` (the default), the leading batch dimension of the sample data that
       Norse records in the Input's and Output's shapes is removed.

    It also copies torch tensors to numpy arrays. Import the result with `norse_options`.
    """
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"fix_norse_export: dt must be > 0 seconds, got {dt!r}.")

    def strip(shape, path):
        shape = np.asarray(shape)
        if not batch_dim:
            return shape
        if shape.ndim != 1 or shape.size < 2 or shape[0] != 1:
            raise ValueError(
                f"node {path!r}: expected a shape with a leading batch dimension of 1, got "
                f"{shape.tolist()}; pass batch_dim=False if the graph has none."
            )
        return shape[1:]

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) for f in _NODE_FIELDS
                   if getattr(node, f, None) is not None}
        for f in ("tau", "tau_mem", "tau_syn"):
            if f in changes:
                changes[f] = changes[f] / dt
        if isinstance(node, nir.CubaLIF):
            changes["w_in"] = changes["tau_syn"] * np.ones_like(_array(node.w_in))
        if isinstance(node, nir.Input):
            return nir.Input(input_type={"input": strip(node.input_type["input"], path)},
                             metadata=dict(node.metadata or {}))
        if isinstance(node, nir.Output):
            return nir.Output(output_type={"output": strip(node.output_type["output"], path)},
                              metadata=dict(node.metadata or {}))
        return _replace(node, **changes) if changes else node

    return _map_nodes(graph, fn)


def norse_options(graph: nir.NIRGraph, dt: float) -> dict:
    """The `from_nir` options that reproduce Norse 1.1.0's cells from a `fix_norse_export`ed
    graph: forward Euler at `dt`, a held current for `LIFBoxCell` (LIF) and `LIBoxCell` (LI)
    (`v <- v + dt / tau (v_leak - v + x)`), and per node an impulse input for `IAFCell` (IF,
    `v <- v + x`) and `LIFCell` (CubaLIF: `i <- i + x`, then `v` from that `i`, then `i`
    decays, i.e. `cuba_order="voltage_first"`). Reset to `v_reset` ("value")."""
    node_options: dict[str, dict] = {}
    for path, node in _walk(graph):
        if isinstance(node, nir.IF):
            node_options[path] = {"input_mode": "impulse"}
        elif isinstance(node, nir.CubaLIF):
            node_options[path] = {"input_mode": "impulse", "cuba_order": "voltage_first"}
    return dict(dt=float(dt), discretization="euler", reset="value", input_mode="current",
                node_options=node_options)


def from_norse(graph: nir.NIRGraph, dt: float, *, batch_dim: bool = True, **kwargs) -> Graph:
    """Import a graph written by `norse.torch.to_nir(..., dt=dt)`: `fix_norse_export`, then
    `from_nir` with `norse_options`. Other keyword arguments go to `from_nir`."""
    fixed = fix_norse_export(graph, dt, batch_dim=batch_dim)
    options = norse_options(fixed, dt)
    extra = dict(kwargs.pop("node_options", None) or {})
    for k, v in extra.items():
        options["node_options"][k] = {**options["node_options"].get(k, {}), **v}
    return from_nir(fixed, **options, **kwargs)


def to_norse(model: Graph) -> nir.NIRGraph:
    """Export a nirjax graph for `norse.torch.from_nir(graph, dt=model.options.dt)`, or say why
    it cannot be.

    Norse 1.1.0's importer turns a LIF into `LIFBoxCell` (ignoring `r`), a CubaLIF into
    `w_in x -> LIBoxCell(tau_syn, v_leak) -> r i -> LIFBoxCell` (current first; note the synapse
    also leaks towards `v_leak`), an IF into `IAFCell` (`v <- v + x`, ignoring `r` and
    `v_reset`), and has no LI, CubaLI or I. This checks the graph against that.
    """
    if not isinstance(model, Graph):
        raise TypeError(f"to_norse: expected a nirjax.Graph, got {type(model).__name__}.")
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        kind = type(module).__name__
        if options is None:
            continue
        _require(options.discretization == "euler", path, "Norse steps with forward Euler.")
        _require(options.reset == "value", path, "Norse resets to v_reset (reset='value').")
        _require(options.dt == model.options.dt, path, "Norse runs one dt for the whole graph.")
        if kind == "IF":
            _require(options.input_mode == "impulse", path,
                     "Norse's IAFCell adds x per step: use input_mode='impulse' with r = 1.")
        elif kind in ("LIF", "CubaLIF"):
            _require(options.input_mode == "current", path,
                     "Norse's importer reads a held current: use input_mode='current'.")
        if kind == "CubaLIF":
            _require(options.cuba_order == "current_first", path,
                     "Norse's importer updates the synapse first: cuba_order='current_first'.")
    graph = to_nir(model)
    for path, node in _walk(graph):
        if isinstance(node, (nir.LIF, nir.IF)):
            _require(np.allclose(node.r, 1), path, "Norse's importer ignores r; it must be 1.")
        if isinstance(node, nir.IF):
            _require(np.allclose(node.v_reset, 0), path,
                     "Norse's importer ignores v_reset; it must be 0.")
        if isinstance(node, nir.CubaLIF):
            _require(np.allclose(node.v_leak, 0), path,
                     "Norse's importer lets the synapse leak towards v_leak; it must be 0.")
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I, nir.Delay, nir.Threshold, nir.Scale)):
            raise NotImplementedError(
                f"node {path!r}: Norse 1.1.0's importer has no {type(node).__name__}."
            )
    return graph


# ------------------------------------------------------------------------------- internals
def _named_modules(model: Graph):
    return ((p, m) for p, m in model.walk() if not isinstance(m, Graph))


def _modules(model: Graph):
    return [m for _, m in _named_modules(model)]


def _check_options(model: Graph, peer: str, required: Mapping[str, str]) -> None:
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        if options is None:
            continue
        for field, value in required.items():
            if field == "cuba_order" and type(module).__name__ not in ("CubaLI", "CubaLIF"):
                continue
            if getattr(options, field) != value:
                raise NotImplementedError(
                    f"node {path!r}: {peer} runs {field}={value!r}, the node has "
                    f"{field}={getattr(options, field)!r}. Rebuild it with {field}={value!r}."
                )
