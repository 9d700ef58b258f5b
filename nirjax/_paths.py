"""Nodes of nested graphs by path: `"sub/node"` is node `node` of subgraph `sub`.

The same paths address a `nirjax.Graph`, a `nir.NIRGraph` and the `nir.NIRGraphData` of a
recording: anything whose `nodes` is a mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_MISSING = object()


def _children(node) -> Mapping | None:
    nodes = getattr(node, "nodes", None)
    return nodes if isinstance(nodes, Mapping) else None


def walk(graph: Any, prefix: str = "", *, sort: bool = False) -> Iterator[tuple[str, Any]]:
    """Every node as `(path, node)`, depth first, a subgraph before its nodes (in the graph's
    order, or by name with `sort=True`)."""
    nodes = _children(graph) or {}
    for name in sorted(nodes) if sort else nodes:
        path = f"{prefix}/{name}" if prefix else name
        yield path, nodes[name]
        if _children(nodes[name]) is not None:
            yield from walk(nodes[name], path, sort=sort)


def node_at(graph: Any, path: str, default: Any = _MISSING) -> Any:
    """The node at `path`; `default` if there is none and one is given, else a ValueError that
    lists the paths there are."""
    node = graph
    for part in path.split("/") if isinstance(path, str) else [None]:
        nodes = _children(node)
        if nodes is None or part not in nodes:
            if default is not _MISSING:
                return default
            raise ValueError(
                f"no node {path!r} in the graph; nodes are {sorted(p for p, _ in walk(graph))}."
            )
        node = nodes[part]
    return node
