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

from ._atomic import atomic_path
from ._graph import Graph
from ._import import from_nir, read
from ._options import METADATA_PREFIX, Options, decode
from ._registry import module_to_nir

DTYPE_KEY = METADATA_PREFIX + "dtype"


def _node_to_nir(module, graph_options: Options):
    if isinstance(module, Graph):
        return to_nir(module, _parent=graph_options)
    node = module_to_nir(module)
    options = module.options_or(graph_options)
    if options != graph_options:
        node.metadata = {**(node.metadata or {}), **options.to_metadata(graph_options)}
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
    metadata.update(graph.options.to_metadata(_parent))
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
    if not isinstance(src, nir.NIRGraph):
        src = read(src)
    metadata = getattr(src, "metadata", None) or {}
    found = Options.from_metadata(metadata)
    if DTYPE_KEY in metadata:
        found["dtype"] = str(decode(metadata[DTYPE_KEY]))
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
