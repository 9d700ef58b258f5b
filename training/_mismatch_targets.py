"""The fitted parameters of a graph: which arrays `params` names (`Target`), their bounded
parametrisation, and the graph with new values substituted."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

import nirjax

from ._mismatch_neurons import (
    fittable_fields,
    graph_fields,
    is_neuron,
    known_fields,
    positive_fields,
)
from ._paths import get, node_or_error, parent, walk


def as_graph(src, *, dt: float | None = None) -> nirjax.Graph:
    """A `nirjax.Graph` from a Graph, a `nir.NIRGraph` or a .nir path. `dt` is used only if the
    graph does not record its own time step."""
    if isinstance(src, nirjax.Graph):
        return src
    if isinstance(src, (str, os.PathLike)):
        src = nirjax.read(src)
    if not isinstance(src, nir.NIRGraph):
        raise TypeError(
            f"expected a nirjax.Graph, a nir.NIRGraph or a .nir path, got {type(src).__name__}."
        )
    recorded = "dt" in nirjax.recorded_options(src)
    return nirjax.from_nir(src, dt=None if recorded else dt)


def neuron_shape(graph: nirjax.Graph, path: str) -> tuple[int, ...]:
    graph, leaf = parent(graph, path)
    shape = dict(graph.plan.in_shapes)[leaf]
    expected = tuple(graph.nodes[leaf].expected_input_shape() or ())
    return tuple(np.broadcast_shapes(expected, tuple(shape)))


def out_shape(graph: nirjax.Graph, path: str) -> tuple[int, ...]:
    graph, leaf = parent(graph, path)
    shape = dict(graph.plan.out_shapes)[leaf]
    if isinstance(shape, dict):
        raise ValueError(
            f"recording of {path!r}: the node is a subgraph with several outputs; record nodes "
            "inside it ('sub/node') instead."
        )
    return tuple(shape)


@dataclasses.dataclass(frozen=True)
class Target:
    """One fitted parameter array: `node` (path), `field`, relative `bound`, prior σp (or None),
    its nominal value and the scale of its deviations; `positive` if it must stay > 0."""

    node: str
    field: str
    bound: float
    prior: float | None
    nominal: np.ndarray = dataclasses.field(compare=False, repr=False)
    scale: np.ndarray = dataclasses.field(compare=False, repr=False)
    positive: bool = False

    @property
    def name(self) -> str:
        return f"{self.node}.{self.field}"

    def value(self, u):
        """The parameter for unconstrained `u` (same shape as the nominal)."""
        return self.nominal + self.bound * self.scale * jnp.tanh(u)

    def unconstrained(self, value):
        """The `u` of a value (clipped just inside the bounds)."""
        x = (jnp.asarray(value) - self.nominal) / (self.bound * self.scale)
        return jnp.arctanh(jnp.clip(x, -0.999999, 0.999999))

    def deviation(self, value):
        """The deviation from nominal in units of the scale (relative where nominal != 0)."""
        return (np.asarray(value) - self.nominal) / self.scale


def lookup(option, target_node: str, field: str, default):
    """An option given as one value or a dict by "node.field", field or "default"."""
    if not isinstance(option, Mapping):
        return default if option is None and default is not None else option
    for key in (f"{target_node}.{field}", field, "default"):
        if key in option:
            return option[key]
    return default


def _parse_spec(graph: nirjax.Graph, spec: str) -> list[tuple[str, str]]:
    if not isinstance(spec, str):
        raise TypeError(f"params: expected names such as 'tau_mem' or 'lif.tau_mem', got {spec!r}.")
    fields = graph_fields(graph)
    if spec in fields:
        return [(p, spec) for p, n in walk(graph) if spec in fittable_fields(n)]
    node, dot, field = spec.rpartition(".")
    if not dot or field not in known_fields():
        raise ValueError(
            f"params: {spec!r} is not a parameter. Use a field name {list(fields)} (all nodes "
            "that have it) or 'node.field' (one node; 'sub/node.field' inside a subgraph)."
        )
    target = node_or_error(
        graph, node, f"params: {spec!r} names node {node!r}, which is not in the graph"
    )
    if field not in fittable_fields(target):
        raise ValueError(
            f"params: node {node!r} ({type(target).__name__}) has no parameter {field!r}."
        )
    return [(node, field)]


def _fallback_scale(node, field: str, nominal: np.ndarray) -> np.ndarray:
    if field in ("v_leak", "v_threshold") and hasattr(node, "v_reset"):
        ref = np.abs(np.asarray(node.v_threshold) - np.asarray(node.v_reset))
        ref = np.broadcast_to(ref, nominal.shape)
        return np.where(ref > 0, ref, 1.0)
    nonzero = np.abs(nominal[nominal != 0])
    return np.full(nominal.shape, nonzero.mean() if nonzero.size else 1.0)


def resolve_targets(
    graph: nirjax.Graph,
    params: Sequence[str] | str,
    *,
    per_row_gain: bool | Sequence[str] = False,
    bounds: float | Mapping[str, float] = 0.5,
    prior: float | Mapping[str, float] | None = None,
    strict: bool = True,
) -> list[Target]:
    """The parameter arrays that `params` names (see `fit_mismatch`), with nominal values."""
    if isinstance(params, str):
        params = [p for p in params.split(",") if p]
    specs = list(params)
    if per_row_gain is True:
        specs.append("gain")
    elif per_row_gain:
        specs += [f"{n}.gain" for n in per_row_gain]
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        found = _parse_spec(graph, spec)
        if not found and strict:
            raise ValueError(
                f"params: no node of the graph has parameter {spec!r}. Nodes and types: "
                f"{ {p: type(n).__name__ for p, n in walk(graph)} }."
            )
        pairs += [p for p in found if p not in pairs]
    if not pairs:
        raise ValueError(f"params: {list(specs)} selects no parameter of the graph.")
    dtype = jnp.dtype(graph.dtype)
    targets = []
    for path, field in pairs:
        node = get(graph, path)
        positive = field in positive_fields(node)
        bound = float(lookup(bounds, path, field, 0.5))
        if not (bound > 0 and math.isfinite(bound)):
            raise ValueError(f"bounds for {path}.{field}: must be > 0, got {bound}.")
        if positive and bound >= 1:
            raise ValueError(
                f"bounds for {path}.{field}: a time constant needs a relative bound < 1 to stay "
                f"positive, got {bound}. Use e.g. bounds=0.5 (±50 %)."
            )
        sigma = lookup(prior, path, field, None)
        sigma = None if sigma is None else float(sigma)
        if field == "gain":
            nominal = np.ones(node.weight.shape[:-1], dtype)
            scale = np.ones_like(nominal)
        else:
            nominal = np.asarray(getattr(node, field), dtype)
            if is_neuron(node):
                nominal = np.broadcast_to(nominal, neuron_shape(graph, path)).copy()
            scale = np.where(nominal != 0, np.abs(nominal), _fallback_scale(node, field, nominal))
        targets.append(Target(
            path, field, bound, sigma, nominal.astype(dtype), scale.astype(dtype), positive
        ))
    return targets


def substitute(graph: nirjax.Graph, targets: Sequence[Target], values: Mapping[str, Any]):
    """The graph with the targets' parameter arrays replaced by `values` (by target name)."""
    arrays: dict[tuple[str, str], Any] = {}
    for t in targets:
        if t.field != "gain":
            arrays[(t.node, t.field)] = values[t.name]
    for t in targets:
        if t.field == "gain":
            w = arrays.get((t.node, "weight"), get(graph, t.node).weight)
            arrays[(t.node, "weight")] = w * values[t.name][..., None]
    keys = list(arrays)
    return eqx.tree_at(
        lambda g: [getattr(get(g, n), f) for n, f in keys], graph, [arrays[k] for k in keys]
    )
