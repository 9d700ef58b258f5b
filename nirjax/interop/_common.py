"""What every peer's correction shares: node and graph rewriting, checks, and accepting a
`nirjax.Graph` or a `nir.NIRGraph` alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import nir
import numpy as np

from .._export import recorded_options, to_nir
from .._graph import Graph
from .._import import from_nir
from .._paths import walk

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


def as_nir_graph(graph: Graph | nir.NIRGraph, where: str) -> nir.NIRGraph:
    """A `nir.NIRGraph` for a nirjax `Graph` (`to_nir`, options recorded) or a NIR graph."""
    if isinstance(graph, Graph):
        return to_nir(graph)
    if isinstance(graph, nir.NIRGraph):
        return graph
    raise TypeError(f"{where}: expected a nirjax.Graph or a nir.NIRGraph, got "
                    f"{type(graph).__name__}.")


def as_model(graph: Graph | nir.NIRGraph, where: str) -> Graph:
    """A nirjax `Graph` for a `Graph` or for a NIR graph that records nirjax's options (one
    written by `nirjax.to_nir` / `nirjax.write`), built with the recorded options and dtype."""
    if isinstance(graph, Graph):
        return graph
    graph = as_nir_graph(graph, where)
    recorded = recorded_options(graph)
    if "dt" not in recorded:
        raise TypeError(
            f"{where}: this nir.NIRGraph records no nirjax options (no 'nirjax_dt'), so its "
            "dynamics are not known. Build the model with nirjax.from_nir(graph, dt=..., ...) "
            "and pass that."
        )
    kwargs = {"dtype": jnp.dtype(recorded["dtype"])} if "dtype" in recorded else {}
    return from_nir(graph, **kwargs)


def same_kind(original: Graph | nir.NIRGraph, graph: nir.NIRGraph) -> Graph | nir.NIRGraph:
    """`graph` as the kind of `original`: a NIR graph, or a nirjax `Graph` rebuilt with the
    options `graph` records (every option and the dtype survive, see `nirjax.to_nir`)."""
    return as_model(graph, "interop") if isinstance(original, Graph) else graph


def rescale_time(graph: Graph | nir.NIRGraph, factor: float) -> Graph | nir.NIRGraph:
    r"""Multiply every time constant and delay (`tau`, `tau_mem`, `tau_syn`, `delay`) by `factor`.

    Under forward Euler a neuron's step depends on `dt / tau` only, so a graph run with step `dt`
    behaves exactly like `rescale_time(graph, dt2 / dt)` run with step `dt2`. Use it to move a
    graph between peers that assume different steps (snnTorch assumes `dt = 1e-4`).

    **Arguments:** `graph` (a `nir.NIRGraph` or a nirjax `Graph`), `factor` (> 0).
    **Returns:** a new graph of the same kind (a `Graph` keeps its options, dt included); the
    input is not modified.
    """
    factor = float(factor)
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"rescale_time: factor must be a finite number > 0, got {factor!r}.")

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) * factor for f in _TIME_FIELDS
                   if getattr(node, f, None) is not None}
        return _replace(node, **changes) if changes else node

    return same_kind(graph, _map_nodes(as_nir_graph(graph, "rescale_time"), fn))


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


def fold_r(graph: Graph | nir.NIRGraph, kinds: tuple[type, ...] = (nir.LIF, nir.IF)) -> (
        Graph | nir.NIRGraph):
    r"""Fold each neuron's `r` into the linear node that feeds it: `r W x + r b` reaches the
    neuron with `r = 1`, which is the same dynamics (the input enters only as `r x`). For peers
    whose importer ignores r (Norse's LIF and IF). The feeding node must be an Affine or Linear
    whose only successor is that neuron; anything else raises (naming the node).

    **Returns:** a new graph of the same kind; the input is not modified.
    """
    g = as_nir_graph(graph, "fold_r")

    def fold(sub: nir.NIRGraph, prefix: str) -> nir.NIRGraph:
        nodes = dict(sub.nodes)
        for key, node in sub.nodes.items():
            if isinstance(node, nir.NIRGraph):
                nodes[key] = fold(node, f"{prefix}{key}/")
        for key, node in sub.nodes.items():
            if not isinstance(node, kinds):
                continue
            r = np.asarray(_array(node.r))
            if np.allclose(r, 1):
                continue
            path = f"{prefix}{key}"
            preds = [s for s, d in sub.edges if d == key]
            for s in preds:
                src = nodes[s]
                succ = [d for s2, d in sub.edges if s2 == s]
                _require(isinstance(src, (nir.Affine, nir.Linear)) and succ == [key], path,
                         f"fold_r: the input comes from {s!r} ({type(src).__name__}), which "
                         "is not an Affine/Linear feeding only this neuron; r cannot be folded.")
                w = np.asarray(_array(src.weight))
                rr = np.broadcast_to(r, (w.shape[0],)).astype(w.dtype)
                if isinstance(src, nir.Affine):
                    nodes[s] = nir.Affine(weight=rr[:, None] * w,
                                          bias=rr * np.asarray(_array(src.bias)))
                else:
                    nodes[s] = nir.Linear(weight=rr[:, None] * w)
            _require(bool(preds), path, "fold_r: the neuron has no input to fold r into.")
            nodes[key] = _replace(node, r=np.ones_like(r))
        return nir.NIRGraph(nodes=nodes, edges=list(sub.edges),
                            metadata=dict(sub.metadata or {}), type_check=False)

    return same_kind(graph, fold(g, ""))
