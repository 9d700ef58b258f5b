"""Nodes of nested graphs by path (`"sub/node"`), on `nirjax.walk` / `nirjax.node_at`: the
same paths address a `nirjax.Graph` and the `nir.NIRGraphData` of its recordings."""

from __future__ import annotations

from typing import Any

import nirjax
from nirjax import walk as walk


def get(graph, path: str):
    """The node at `path` (a ValueError listing the nodes if there is none)."""
    return nirjax.node_at(graph, path)


def node_or_error(graph, path: str, what: str):
    """The node at `path`, or a ValueError "<what> (nodes: [...])"."""
    node = nirjax.node_at(graph, path, None)
    if node is None:
        raise ValueError(f"{what} (nodes: {sorted(p for p, _ in walk(graph))}).")
    return node


def parent(graph, path: str) -> tuple[Any, str]:
    """The graph that holds the node at `path`, and the node's name in it."""
    head, _, leaf = path.rpartition("/")
    return (get(graph, head) if head else graph), leaf


def field_getter(path: str, field: str):
    """`g -> <node at path>.<field>`, as `eqx.tree_at` wants."""
    return lambda g: getattr(get(g, path), field)
