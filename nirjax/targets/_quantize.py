r"""`quantize(graph, target)`: round a graph's stored parameters onto the chip's number
formats and record the quantization.

For each weight node the scale is the finest the format allows at which the largest
magnitude still fits (`NumberFormat.choose_scale`); weights feeding the same neuron node share
one scale when the neuron's threshold is counted in their units (`share=True`, Xylo and
Speck), so that the threshold is an integer in the same units. Every quantized field becomes
$q s$ with an integer $q$ in the format's range, and the node's metadata records
`"nirjax.quantization": {"<field>": {"scale": s, "bits": b, "signed": bool}}`; the graph's
metadata records `"nirjax.target": {"name": ...}`.

What it does not change: time constants, gains, resets and topology (those are rules that
`check` reports; `training.fit(..., target=...)` builds networks that meet them). A bias on a
chip without biases is an error, never dropped.
"""

from __future__ import annotations

import copy
import os

import jax.numpy as jnp
import nir
import numpy as np

from .._export import to_nir
from .._graph import Graph
from .._import import read
from ._target import QUANTIZATION_KEY, TARGET_KEY, Target, get_target
from ._view import NEURONS, WEIGHTS, GraphView

__all__ = ["quantize", "quantization_plan"]


def quantization_plan(graph: nir.NIRGraph, target: Target) -> dict[str, dict[str, float]]:
    """The scale of every quantized field, `{node: {field: scale}}`, chosen from the current
    values (what `quantize` applies; quantization-aware training recomputes it each step).

    Weights feeding one neuron node share a scale when the neuron's threshold is counted in
    their units."""
    view = GraphView.of(graph)
    fw = target.formats.get("weight")
    fth = target.formats.get("v_threshold")
    plan: dict[str, dict[str, float]] = {}
    if fw is not None:
        groups: list[list[str]] = []
        grouped: set[str] = set()
        if fth is not None and fth.share:
            for k in view.neurons:
                g = [w for w in view.feeding_weights(k) if w not in grouped]
                if g:
                    groups.append(g)
                    grouped |= set(g)
        groups += [[w] for w in view.weights if w not in grouped]
        for g in groups:
            m = max(float(jnp.max(jnp.abs(jnp.asarray(view.nodes[w].weight, jnp.float32))))
                    for w in g)
            s = float(fw.choose_scale(jnp.float32(m)))
            for w in g:
                plan.setdefault(w, {})["weight"] = s
    for field in ("bias", "v_threshold"):
        fmt = target.formats.get(field)
        if fmt is None:
            continue
        for k, n in view.nodes.items():
            if getattr(n, field, None) is None or isinstance(n, (nir.Input, nir.Output)):
                continue
            if fmt.share:
                if isinstance(n, WEIGHTS):
                    s = plan.get(k, {}).get("weight", 1.0)
                else:
                    scales = {plan.get(w, {}).get("weight", 1.0) for w in view.feeding_weights(k)}
                    s = scales.pop() if len(scales) == 1 else 1.0
            else:
                values = jnp.asarray(getattr(n, field), jnp.float32)
                s = float(fmt.choose_scale(jnp.max(jnp.abs(values))))
            plan.setdefault(k, {})[field] = s
    return plan


def quantize(graph: nir.NIRGraph | Graph | str | os.PathLike, target: str | Target
             ) -> nir.NIRGraph:
    """The graph with every weight, bias and threshold that the target stores as an integer
    rounded to it (round to nearest, saturating at the format's range), and the quantization
    recorded in the metadata.

    **Arguments:**

    - `graph`: a `nir.NIRGraph`, a `nirjax.Graph` (exported with `nirjax.to_nir`) or a path.
    - `target`: a registered target name or a `Target`.

    **Returns:** a new `nir.NIRGraph` (write it with `nirjax.write`; `nirjax.check` it).
    """
    target = get_target(target)
    if isinstance(graph, Graph):
        graph = to_nir(graph)
    elif isinstance(graph, (str, os.PathLike)):
        graph = read(graph)
    if not target.bias:
        for k, n in graph.nodes.items():
            b = getattr(n, "bias", None)
            if isinstance(n, WEIGHTS) and b is not None and np.any(np.asarray(b) != 0):
                raise ValueError(
                    f"quantize: node {k!r} ({type(n).__name__}) has a nonzero bias, which "
                    f"{target.name} does not have; train without biases (--target "
                    f"{target.name} does) or fold the bias away first")
    plan = quantization_plan(graph, target)
    nodes = {}
    for k, n in graph.nodes.items():
        fields = plan.get(k, {})
        if not fields or not isinstance(n, (*WEIGHTS, *NEURONS)):
            nodes[k] = n
            continue
        n = copy.copy(n)
        records = {}
        for field, s in fields.items():
            fmt = target.formats[field]
            values = np.asarray(getattr(n, field))
            q = np.clip(np.round(values.astype(np.float64) / s), fmt.qmin, fmt.qmax)
            setattr(n, field, (q * s).astype(values.dtype))
            records[field] = fmt.to_record(s)
        n.metadata = {**(getattr(n, "metadata", None) or {}), QUANTIZATION_KEY: records}
        nodes[k] = n
    metadata = {**(graph.metadata or {}),
                TARGET_KEY: {"name": target.name, "description": target.description}}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata,
                        type_check=False)
