"""`to_nir`: a `nirjax.Graph` (with its current, e.g. trained, parameters) back to NIR.

What a round trip `from_nir -> to_nir -> nir.write -> nir.read -> from_nir` keeps:

- every parameter bit for bit (arrays are exported in the graph's dtype, which `from_nir`
  reads back exactly; `load` also restores a recorded non-default dtype);
- node names, edges (as written, including `"sub.port"` endpoints) and nested subgraphs;
- the graph's metadata, and the dynamics options as flat keys `nirjax_<option>` (NIR's HDF5
  writer keeps one level of metadata): all of them on the top graph, and on a node or subgraph
  only those that differ from its parent. This includes the options that live outside
  `Options` in a module: a `Threshold`'s surrogate, and a `Delay`'s step `dt` and rounding.
"""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import nir
import numpy as np

from ._atomic import atomic_path
from ._graph import Graph
from ._import import METADATA_PREFIX, _decode, from_nir, read
from ._options import Options
from ._registry import module_to_nir
from .primitives._delay import Delay
from .primitives._threshold import Threshold

DTYPE_KEY = METADATA_PREFIX + "dtype"


def options_metadata(options: Options, base: Options | None = None) -> dict[str, Any]:
    """The options as flat NIR metadata entries; with `base`, only those that differ."""
    values = {
        "dt": options.dt,
        "discretization": options.discretization,
        "reset": options.reset,
        "input_mode": options.input_mode,
        "cuba_order": options.cuba_order,
        "surrogate": options.surrogate.name,
        "surrogate_scale": options.surrogate.scale,
        "detach_reset": options.detach_reset,
        "delay_rounding": options.delay_rounding,
    }
    if base is not None:
        old = options_metadata(base)
        surrogate_changed = any(
            old[METADATA_PREFIX + k] != values[k] for k in ("surrogate", "surrogate_scale")
        )
        values = {k: v for k, v in values.items() if old[METADATA_PREFIX + k] != v}
        if surrogate_changed:
            # The reader builds Surrogate(name, scale) from both keys: record them together.
            values["surrogate"] = options.surrogate.name
            values["surrogate_scale"] = options.surrogate.scale
    return {METADATA_PREFIX + k: v for k, v in values.items()}


def _module_options(module, graph_options: Options) -> Options | None:
    """The options a module was built with, as far as they change what it computes (None for a
    module that no option affects)."""
    options = getattr(module, "options", None)
    if isinstance(options, Options):
        return options
    if isinstance(module, Threshold):
        return graph_options.replace(surrogate=module.surrogate)
    if isinstance(module, Delay):
        steps = np.asarray(module.delay, dtype=np.float64) / module.dt
        whole = np.all(np.abs(steps - np.round(steps)) <= 1e-6 * np.maximum(1.0, np.abs(steps)))
        rounding = graph_options.delay_rounding or not bool(whole)
        return graph_options.replace(dt=module.dt, delay_rounding=rounding)
    return None


def _node_to_nir(module, graph_options: Options):
    if isinstance(module, Graph):
        return to_nir(module, _parent=graph_options)
    node = module_to_nir(module)
    options = _module_options(module, graph_options)
    if options is not None and options != graph_options:
        node.metadata = {**(node.metadata or {}), **options_metadata(options, graph_options)}
    return node


def to_nir(graph: Graph, *, _parent: Options | None = None) -> nir.NIRGraph:
    """Export a `nirjax.Graph` as a `nir.NIRGraph`.

    The result carries the current parameter values, the original node names, edges, metadata
    and nested subgraphs, and records dt and every dynamics option in the metadata (keys
    `nirjax_*`; per node only where it differs from the graph), so that `from_nir(to_nir(g))`
    behaves like `g` without passing the options again.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_nir: expected a nirjax.Graph, got {type(graph).__name__}.")
    nodes = {k: _node_to_nir(m, graph.options) for k, m in graph.nodes.items()}
    edges = [(e.key, e.dst_key) for e in graph.plan.edges]
    metadata = {
        k: v for k, v in dict(graph.metadata.value).items() if not k.startswith(METADATA_PREFIX)
    }
    metadata.update(options_metadata(graph.options, _parent))
    if _parent is None and jnp.dtype(graph.dtype) != jnp.float32:
        metadata[DTYPE_KEY] = jnp.dtype(graph.dtype).name
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def write(path: str | os.PathLike, graph: Graph | nir.NIRGraph) -> None:
    """Write a graph to a .nir file atomically (a temporary file renamed into place), so an
    interrupted write never leaves a truncated file."""
    if isinstance(graph, Graph):
        graph = to_nir(graph)
    with atomic_path(path, ".nir") as tmp:
        nir.write(tmp, graph)


def recorded_options(src: nir.NIRGraph | str | os.PathLike) -> dict[str, Any]:
    """The dynamics options (and dtype) that `to_nir` recorded in a graph's top-level metadata,
    decoded to Python values (`{}` for a graph nirjax did not write)."""
    from ._import import options_from_metadata

    if not isinstance(src, nir.NIRGraph):
        src = read(src)
    metadata = getattr(src, "metadata", None) or {}
    found = options_from_metadata(metadata)
    if DTYPE_KEY in metadata:
        found["dtype"] = str(_decode(metadata[DTYPE_KEY]))
    return found


def load(path: str | os.PathLike, **kwargs) -> Graph:
    """Read a .nir file and build the graph: `from_nir(read(path), **kwargs)`. Options and a
    dtype that the file records are used unless given here."""
    graph = read(path)
    if "dtype" not in kwargs:
        dtype = recorded_options(graph).get("dtype")
        if dtype is not None:
            kwargs["dtype"] = jnp.dtype(dtype)
    return from_nir(graph, **kwargs)


__all__ = ["to_nir", "write", "load", "recorded_options"]
