"""Norse 1.1.0: the explicit corrections (see `nirjax.interop`)."""

from __future__ import annotations

import nir
import numpy as np

from .._export import to_nir
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
    same_kind,
)


# ----------------------------------------------------------------------------------- Norse
def fix_norse_export(graph: nir.NIRGraph | Graph, dt: float, *,
                     batch_dim: bool = True) -> nir.NIRGraph | Graph:
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

    return same_kind(graph, _map_nodes(as_nir_graph(graph, "fix_norse_export"), fn))


def norse_options(graph: nir.NIRGraph | Graph, dt: float) -> dict:
    """The `from_nir` options that reproduce Norse 1.1.0's cells from a `fix_norse_export`ed
    graph: forward Euler at `dt`, a held current for `LIFBoxCell` (LIF) and `LIBoxCell` (LI)
    (`v <- v + dt / tau (v_leak - v + x)`), and per node an impulse input for `IAFCell` (IF,
    `v <- v + x`) and `LIFCell` (CubaLIF: `i <- i + x`, then `v` from that `i`, then `i`
    decays, i.e. `cuba_order="voltage_first"`). Reset to `v_reset` ("value")."""
    node_options: dict[str, dict] = {}
    for path, node in _walk(as_nir_graph(graph, "norse_options")):
        if isinstance(node, nir.IF):
            node_options[path] = {"input_mode": "impulse"}
        elif isinstance(node, nir.CubaLIF):
            node_options[path] = {"input_mode": "impulse", "cuba_order": "voltage_first"}
    return dict(dt=float(dt), discretization="euler", reset="value", input_mode="current",
                node_options=node_options)


def from_norse(graph: nir.NIRGraph | Graph, dt: float, *, batch_dim: bool = True,
               **kwargs) -> Graph:
    """Import a graph written by `norse.torch.to_nir(..., dt=dt)`: `fix_norse_export`, then
    `from_nir` with `norse_options`. Other keyword arguments go to `from_nir`."""
    fixed = fix_norse_export(as_nir_graph(graph, "from_norse"), dt, batch_dim=batch_dim)
    options = norse_options(fixed, dt)
    extra = dict(kwargs.pop("node_options", None) or {})
    for k, v in extra.items():
        options["node_options"][k] = {**options["node_options"].get(k, {}), **v}
    return from_nir(fixed, **options, **kwargs)


def to_norse(model: Graph | nir.NIRGraph) -> nir.NIRGraph:
    """Export a nirjax graph for `norse.torch.from_nir(graph, dt=model.options.dt)`, or say why
    it cannot be.

    Norse 1.1.0's importer turns a LIF into `LIFBoxCell` (ignoring `r`), a CubaLIF into
    `w_in x -> LIBoxCell(tau_syn, v_leak) -> r i -> LIFBoxCell` (current first; note the synapse
    also leaks towards `v_leak`), an IF into `IAFCell` (`v <- v + x`, ignoring `r` and
    `v_reset`), and has no LI, CubaLI or I. This checks the graph against that.
    """
    model = as_model(model, "to_norse")
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
            _require(np.allclose(node.r, 1), path,
                     "Norse's importer ignores r; it must be 1 (nirjax.interop.fold_r(model) "
                     "folds r into the weights that feed the neuron, exactly).")
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


