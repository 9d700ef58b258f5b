"""snnTorch 1.0.0: the explicit corrections (see `nirjax.interop`)."""

from __future__ import annotations

import jax.numpy as jnp
import nir
import numpy as np

from .._export import to_nir
from .._graph import Graph
from .._import import from_nir
from .._options import Options
from ._common import (
    _check_options,
    _modules,
    _require,
    _unique,
    _walk,
    as_model,
    as_nir_graph,
    rescale_time,
)

SNNTORCH_DT = 1e-4
"""The time step snnTorch's exporter and importer hard-code (seconds)."""

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


def from_snntorch(graph: nir.NIRGraph | Graph, *, reset_mechanism: str = "zero",
                  reset_delay: bool = False, **kwargs) -> Graph:
    """Import a graph written by `snntorch.export_to_nir`, with `snntorch_options(...)`.

    Export from snnTorch with `ignore_dims=[0]` (the batch dimension) and per-neuron `beta` /
    `threshold` tensors: with scalar ones, snnTorch 1.0.0's exporter fails NIR's type check.
    Other keyword arguments go to `nirjax.from_nir` (e.g. `surrogate`, `dtype`).
    """
    graph = as_nir_graph(graph, "from_snntorch")
    return from_nir(graph, **snntorch_options(reset_mechanism, reset_delay), **kwargs)


def snntorch_initial_state(model: Graph) -> dict:
    """The initial state that reproduces snnTorch's first step of a recurrent neuron.

    snnTorch's RLeaky / RSynaptic evaluate their recurrent layer on the initial (zero) spikes at
    the first step, so the recurrent Affine contributes its bias at t = 0; NIR's back edge (and
    nirjax) carries zeros at t = 0. This returns `model.init_state()` with every back edge that
    leaves an Affine set to that Affine's bias (in nested subgraphs too). Pass it explicitly:
    `model.run(xs, state=snntorch_initial_state(model))`; nothing changes otherwise.
    """
    from ..primitives import Affine

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


def to_snntorch(model: Graph | nir.NIRGraph) -> nir.NIRGraph:
    """Export a nirjax graph for `snntorch.import_nir.import_from_nir`, or say why it cannot be.

    snnTorch's importer assumes `dt = 1e-4`, forward Euler, a reset to zero, `v_leak = 0`, one
    threshold per layer, and turns a LIF into `Leaky(beta = 1 - dt / tau)` with the threshold
    divided by `r dt / tau` (exact when `v_leak = v_reset = 0`). This function checks all of that
    (an error names the node and the condition), and rescales the time constants if the graph's
    `dt` is not `1e-4` (exact under Euler, see `rescale_time`). snnTorch's importer turns an `IF`
    into a leaky neuron with `beta = 0.9` and subtractive reset, so an IF is refused.

    **Returns:** a `nir.NIRGraph` to pass to `import_from_nir`.
    """
    model = as_model(model, "to_snntorch")
    _check_options(model, "snnTorch", dict(discretization="euler", input_mode="current",
                                           reset="value", cuba_order="current_first"))
    graph = to_nir(model)
    dts = {m.options.dt for m in _modules(model) if hasattr(m, "options")} or {model.options.dt}
    if len(dts) > 1:
        raise NotImplementedError(f"to_snntorch: the graph mixes time steps {sorted(dts)}.")
    (dt,) = dts
    if dt != SNNTORCH_DT:
        graph = rescale_time(graph, SNNTORCH_DT / dt)
        _record_dt(graph, SNNTORCH_DT)  # the parameters now hold for snnTorch's step
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


def _record_dt(graph: nir.NIRGraph, dt: float) -> None:
    """Set the dt recorded in the metadata of `graph` and of its nodes (where one is) to `dt`."""
    key = Options.metadata_key("dt")
    for node in [graph, *graph.nodes.values()]:
        meta = getattr(node, "metadata", None)
        if isinstance(meta, dict) and key in meta:
            meta[key] = float(dt)
        if isinstance(node, nir.NIRGraph) and node is not graph:
            _record_dt(node, dt)
