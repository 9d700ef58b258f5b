"""`to_nir`: a `nirjax.Graph` (with its current, e.g. trained, parameters) back to NIR."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import nir

from ._graph import Graph
from ._import import METADATA_PREFIX, from_nir, read
from ._options import Options
from ._registry import module_to_nir


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
        values = {k: v for k, v in values.items() if old[METADATA_PREFIX + k] != v}
    return {METADATA_PREFIX + k: v for k, v in values.items()}


def _node_to_nir(module, graph_options: Options):
    if isinstance(module, Graph):
        return to_nir(module, _parent=graph_options)
    node = module_to_nir(module)
    options = getattr(module, "options", None)
    if isinstance(options, Options) and options != graph_options:
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
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def write(path: str | os.PathLike, graph: Graph | nir.NIRGraph) -> None:
    """Write a graph to a .nir file atomically (a temporary file renamed into place), so an
    interrupted write never leaves a truncated file."""
    if isinstance(graph, Graph):
        graph = to_nir(graph)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".nir", dir=folder)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike, **kwargs) -> Graph:
    """Read a .nir file and build the graph: `from_nir(read(path), **kwargs)`."""
    return from_nir(read(path), **kwargs)


__all__ = ["to_nir", "write", "load"]
