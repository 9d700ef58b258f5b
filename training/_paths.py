"""Nodes of nested graphs by path: `"sub/node"` names node `node` of subgraph `sub`.

The same paths address a `nirjax.Graph` and the `nir.NIRGraphData` of its recordings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import equinox as eqx
import nir

import nirjax

_GRAPHS = (nirjax.Graph, nir.NIRGraph, nir.NIRGraphData)


def walk(graph, prefix: str = "", *, sort: bool = False) -> Iterator[tuple[str, Any]]:
    """Yield `(path, node)` for every node, subgraphs before their nodes, depth first (in the
    graph's order, or by name with `sort=True`)."""
    for name in sorted(graph.nodes) if sort else graph.nodes:
        node = graph.nodes[name]
        path = f"{prefix}/{name}" if prefix else name
        yield path, node
        if isinstance(node, _GRAPHS):
            yield from walk(node, path, sort=sort)


def get(graph, path: str):
    """The node at `path` (KeyError or AttributeError if there is none)."""
    node = graph
    for part in path.split("/"):
        node = node.nodes[part]
    return node


def node_or_error(graph, path: str, what: str):
    """The node at `path`, or a ValueError "<what> (nodes: [...])"."""
    try:
        return get(graph, path)
    except (KeyError, AttributeError):
        raise ValueError(f"{what} (nodes: {sorted(p for p, _ in walk(graph))}).") from None


def parent(graph, path: str) -> tuple[Any, str]:
    """The graph that holds the node at `path`, and the node's name in it."""
    head, _, leaf = path.rpartition("/")
    return (get(graph, head) if head else graph), leaf


def field_getter(path: str, field: str):
    """`g -> <node at path>.<field>`, as `eqx.tree_at` wants."""
    return lambda g: getattr(get(g, path), field)


def replace_nodes(graph: nirjax.Graph, new: Mapping[str, Any]) -> nirjax.Graph:
    """The graph with the nodes at the paths of `new` replaced."""
    if not new:
        return graph
    paths = list(new)
    return eqx.tree_at(lambda g: [get(g, p) for p in paths], graph, [new[p] for p in paths])
