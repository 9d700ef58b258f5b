"""The compile pass: nodes and edges to a `Plan`, a pure function of the graph's structure.

`compile_plan` resolves the edges (`"sub.port"` endpoints of nested graphs), finds the back edges
that cut cycles (a depth-first search from the Input nodes in name order, successors in name
order: in the NIR paper's Braille graphs `lif1.w_rec -> lif1.lif`), orders the nodes
topologically without them, condenses the graph into strongly connected components in
topological order, infers every node's per-step input and output shape, and flattens nested
graphs (`Plan.flat`, paths `"sub/node"`). The discrete executor (`Graph`) and the continuous one
(`nirjax.simulate_continuous`) both interpret this one plan.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._limits import check_budget
from .primitives._io import Input, Output


@dataclasses.dataclass(frozen=True)
class Edge:
    """A resolved edge: `src[.src_port] -> dst[.dst_port]`; a port names an Input / Output of a
    nested graph (None when the subgraph has only one). `key` and `dst_key` are the endpoints as
    written in the NIR graph; `back` marks an edge that cuts a cycle (it carries the previous
    step's value)."""

    src: str
    src_port: str | None
    dst: str
    dst_port: str | None
    key: str
    dst_key: str
    back: bool = False


def content_key(value: Any):
    """A hashable key of a metadata value: dicts, sequences and arrays by content."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), content_key(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(content_key(v) for v in value))
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        arr = np.asarray(value)
        return ("array", arr.dtype.str, arr.shape, arr.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return ("value", value)


class Plan:
    """The static execution plan of one graph (plain attributes, compared by content):

    - `name`: the graph's path (`""` at the top); `inputs`, `outputs`: Input / Output names.
    - `order`: the nodes in topological order (back edges removed).
    - `edges`: every resolved `Edge`; `back_edges` those that cut cycles; `incoming[n]` the
      edges into node n.
    - `components`: the strongly connected components in topological order, as
      `(members, cyclic)` (cyclic: more than one node, or a self edge).
    - `in_shapes[n]`, `out_shapes[n]`: the per-step input / output shape of each node (a dict by
      port for a subgraph with several Inputs / Outputs).
    - `flat`: the graph with nested graphs inlined (`FlatPlan`).
    """

    def __init__(self, *, name, inputs, outputs, order, edges, components, in_shapes,
                 out_shapes, flat):
        self.name = name
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.order = tuple(order)
        self.edges = tuple(edges)
        self.back_edges = tuple(e for e in self.edges if e.back)
        self.incoming = {n: tuple(e for e in self.edges if e.dst == n) for n in self.order}
        self.components = tuple(components)
        self.in_shapes = dict(in_shapes)
        self.out_shapes = dict(out_shapes)
        self.flat = flat
        self._key = (self.name, self.inputs, self.outputs, self.order, self.edges,
                     self.components, content_key(self.in_shapes), content_key(self.out_shapes))

    def __eq__(self, other) -> bool:
        return isinstance(other, Plan) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Plan(name={self.name!r}, order={self.order}, back_edges={self.back_edges})"


@dataclasses.dataclass(frozen=True)
class FlatPlan:
    """A graph with its nested graphs inlined: `nodes` are paths (`"sub/node"`) of the leaf
    nodes (a subgraph's own Input and Output nodes stay, as identities), `edges` are
    `(src_path, dst_path)` pairs, `in_shapes[path]` the per-step input shape of each leaf
    (an Input's own shape)."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    in_shapes_items: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def in_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self.in_shapes_items)

    def incoming(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {n: [] for n in self.nodes}
        for src, dst in self.edges:
            found[dst].append(src)
        return found


def _is_graph(node) -> bool:
    return isinstance(getattr(node, "plan", None), Plan)


def _where(name: str) -> str:
    return f"graph {name!r}" if name else "the graph"


def check_node_name(key: Any, where: str) -> None:
    """A ValueError unless `key` can name a node: a non-empty string without '/' that is not
    '.' (nested nodes are addressed as 'sub/node', and HDF5 reads '/' and '.' as paths, so a
    .nir file with them could not be read back)."""
    if not isinstance(key, str) or not key or "/" in key or key == ".":
        raise ValueError(
            f"{where}: node name {key!r} cannot be used: names must be non-empty strings "
            "without '/' and other than '.' (nirjax addresses nested nodes as 'sub/node', and a "
            ".nir file could not be read back). Rename the node."
        )


def compile_plan(nodes: Mapping[str, Any], edges: Sequence[tuple[str, str]], *, name: str = "",
                 dtype: Any = jnp.float32) -> Plan:
    """The `Plan` of a graph of nirjax modules (a nested `Graph` is a node with its own plan).
    Every structural problem is a `ValueError` naming the graph, the edge or the node, and the
    fix."""
    where = _where(name)
    for key in nodes:
        check_node_name(key, where)
    inputs = tuple(sorted(k for k, n in nodes.items() if isinstance(n, Input)))
    outputs = tuple(sorted(k for k, n in nodes.items() if isinstance(n, Output)))
    if not inputs:
        kinds = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in list(nodes.items())[:6])
        raise ValueError(
            f"{where}: has no Input node, so it cannot be driven (its nodes: {kinds or 'none'}). "
            "Add a nir.Input node with the input's shape and an edge from it."
        )
    for k in inputs:
        check_budget(nodes[k].shape, f"{where}: node {k!r}", "the declared input",
                     "Check the Input's shape.")
    resolved, seen, connected = [], set(), {}
    for edge in edges:
        if len(edge) != 2 or not all(isinstance(s, str) for s in edge):
            raise ValueError(f"{where}: edge {edge!r} is not a pair of node names.")
        if tuple(edge) in seen:
            raise ValueError(
                f"{where}: edge {tuple(edge)} is listed twice; it would add the same input twice. "
                "Remove the duplicate (to double a signal, scale its weight)."
            )
        seen.add(tuple(edge))
        src, sport = _resolve(edge[0], nodes, name, edge, "source")
        dst, dport = _resolve(edge[1], nodes, name, edge, "destination")
        same = connected.get((src, sport, dst, dport))
        if same is not None:
            raise ValueError(
                f"{where}: edges {same} and {tuple(edge)} make the same connection (a subgraph's "
                "only port may be named or left out); it would add the same input twice. Keep "
                "one of them."
            )
        connected[(src, sport, dst, dport)] = tuple(edge)
        if isinstance(nodes[src], Output):
            raise ValueError(
                f"{where}: edge {tuple(edge)} leaves Output node {src!r}; Output nodes end the "
                "graph and have no outgoing edges. Take the edge from the node that feeds "
                f"{src!r} instead."
            )
        if isinstance(nodes[dst], Input):
            raise ValueError(
                f"{where}: edge {tuple(edge)} leads into Input node {dst!r}; Input nodes take "
                "no edges. Remove the edge."
            )
        resolved.append(Edge(src, sport, dst, dport, edge[0], edge[1]))
    back = _back_edges(nodes, resolved, inputs, name)
    resolved = [dataclasses.replace(e, back=i in back) for i, e in enumerate(resolved)]
    order = _topological(nodes, resolved)
    components = _components(order, resolved)
    in_shapes, out_shapes = _infer_shapes(nodes, order, resolved, where, dtype)
    return Plan(
        name=name, inputs=inputs, outputs=outputs, order=order, edges=resolved,
        components=components, in_shapes=in_shapes, out_shapes=out_shapes,
        flat=_flatten(nodes, resolved, in_shapes),
    )


def _flatten(nodes, edges, in_shapes) -> FlatPlan:
    leaves, flat_edges, shapes = [], [], {}

    def endpoint(prefix, node_map, name, port, role):
        node = node_map[name]
        if _is_graph(node):
            ports = node.plan.outputs if role == "src" else node.plan.inputs
            return f"{prefix}{name}/{port if port is not None else ports[0]}"
        return f"{prefix}{name}"

    def visit(node_map, plan_edges, plan_in_shapes, prefix):
        for name, node in node_map.items():
            full = f"{prefix}{name}"
            if _is_graph(node):
                visit(node.nodes, node.plan.edges, node.plan.in_shapes, full + "/")
                continue
            leaves.append(full)
            shapes[full] = tuple(node.shape) if isinstance(node, Input) else plan_in_shapes[name]
        for e in plan_edges:
            flat_edges.append((endpoint(prefix, node_map, e.src, e.src_port, "src"),
                               endpoint(prefix, node_map, e.dst, e.dst_port, "dst")))

    visit(nodes, edges, in_shapes, "")
    return FlatPlan(
        nodes=tuple(leaves), edges=tuple(flat_edges),
        in_shapes_items=tuple(sorted((k, tuple(int(d) for d in v)) for k, v in shapes.items())),
    )


def _shape_str(shape) -> str:
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {tuple(v)}" for k, v in shape.items()) + "}"
    return str(tuple(shape))


def _infer_shapes(nodes, order, edges, where, dtype):
    dtype = jnp.dtype(dtype)
    in_shapes: dict[str, Any] = {}
    out_shapes: dict[str, Any] = {}

    def source_shape(e: Edge):
        out = out_shapes[e.src]
        return tuple(out[e.src_port] if e.src_port is not None else out)

    for n in order:
        node = nodes[n]
        ported = _is_graph(node) and len(node.plan.inputs) > 1
        if isinstance(node, Input):
            shape: Any = node.shape
        else:
            incoming = [e for e in edges if e.dst == n and not e.back]
            if ported:
                shape = {}
                for e in incoming:
                    if e.dst_port is None:
                        raise ValueError(
                            f"{where}: edge {e.key!r} -> {n!r} must name one of the subgraph's "
                            f"inputs {list(node.plan.inputs)}, e.g. '{n}.{node.plan.inputs[0]}'."
                        )
                    s = source_shape(e)
                    if shape.setdefault(e.dst_port, s) != s:
                        raise ValueError(
                            f"{where}: edges into '{n}.{e.dst_port}' carry shapes "
                            f"{shape[e.dst_port]} and {s}; summed inputs must agree."
                        )
                missing = [p for p in node.plan.inputs if p not in shape]
                if missing:
                    raise ValueError(f"{where}: subgraph {n!r} inputs {missing} receive no edge.")
            else:
                shapes = {source_shape(e) for e in incoming}
                if len(shapes) > 1:
                    raise ValueError(
                        f"{where}: node {n!r} receives edges of different shapes "
                        f"{sorted(shapes)} ({[e.key for e in incoming]}); summed inputs must "
                        "have one shape."
                    )
                (shape,) = shapes
        sources = sorted({e.src for e in edges if e.dst == n and not e.back})
        _check_input_shape(n, node, shape, node.expected_input_shape(), where, sources)
        in_shapes[n] = shape
        label = f"{where}: node {n!r} ({type(node).__name__})"
        if not isinstance(shape, dict):
            check_budget(shape, label, "the per-step input", "Check the declared shapes.")
        try:
            out = node.output_shape(shape if isinstance(shape, dict) else tuple(shape), dtype)
        except (ValueError, TypeError) as e:
            if str(e).startswith(("graph ", "the graph")):
                raise  # a nested graph's error names its own node
            origin = f" (its input comes from {', '.join(map(repr, sources))})" if sources else ""
            raise type(e)(f"{label}: {e}{origin}") from None
        if not isinstance(out, dict):
            check_budget(out, label, "the per-step output", "Check the parameter shapes.")
            if 0 in tuple(out) and not isinstance(shape, dict) and 0 not in tuple(shape):
                raise ValueError(
                    f"{label}: turns a per-step input of shape {tuple(shape)} into an empty "
                    f"output of shape {tuple(out)}; expected a non-empty output. Check its "
                    "parameter shapes (a weight, kernel, stride or padding)."
                )
        out_shapes[n] = out
    for e in edges:
        if e.back:
            s, d = source_shape(e), in_shapes[e.dst]
            d = d[e.dst_port] if isinstance(d, dict) else d
            if tuple(s) != tuple(d):
                raise ValueError(
                    f"{where}: edge {e.key!r} -> {e.dst!r} carries shape {tuple(s)}, but "
                    f"{e.dst!r} takes {tuple(d)}. Fix the weight shapes."
                )
    return in_shapes, out_shapes


def _check_input_shape(n, node, shape, expected, where, sources=()):
    if expected is None:
        return
    if isinstance(shape, dict) or isinstance(expected, dict):
        ok = shape == expected
    elif node.elementwise:
        try:
            ok = np.broadcast_shapes(tuple(expected), tuple(shape)) == tuple(shape)
        except ValueError:
            ok = False
    else:
        ok = tuple(expected) == tuple(shape)
    if not ok:
        origin = ", ".join(map(repr, sources))
        raise ValueError(
            f"{where}: node {n!r} ({type(node).__name__}) expects per-step input of shape "
            f"{_shape_str(expected)}, but its incoming edges (from {origin}) "
            f"carry {_shape_str(shape)}. Fix the parameter shapes of these nodes or the edges."
        )


def _resolve(endpoint: str, nodes: Mapping[str, Any], graph_name: str, edge, role: str):
    parts = endpoint.split(".")
    if endpoint in nodes:
        for i in range(1, len(parts)):
            head, port = ".".join(parts[:i]), ".".join(parts[i:])
            sub = nodes.get(head)
            if _is_graph(sub) and port in (sub.plan.inputs if role == "destination"
                                           else sub.plan.outputs):
                where = f"graph {graph_name!r}" if graph_name else "the graph"
                raise ValueError(
                    f"{where}: edge {tuple(edge)}: {endpoint!r} names both node {endpoint!r} "
                    f"and port {port!r} of subgraph {head!r}. Rename node {endpoint!r} (a name "
                    "without '.' cannot be confused with a port)."
                )
        return endpoint, None
    for i in range(1, len(parts)):
        head, port = ".".join(parts[:i]), ".".join(parts[i:])
        sub = nodes.get(head)
        if _is_graph(sub):
            ports = sub.plan.inputs if role == "destination" else sub.plan.outputs
            if port in ports:
                # A single-port subgraph's value is its one array: the port name is optional.
                return head, (port if len(ports) > 1 else None)
    where = f"graph {graph_name!r}" if graph_name else "the graph"
    raise ValueError(
        f"{where}: edge {tuple(edge)} names {role} node {endpoint!r}, which does not exist. "
        f"Nodes are {sorted(nodes)}. Fix the edge or add the node."
    )


def _back_edges(nodes: Mapping[str, Any], edges: list[Edge], starts, graph_name):
    succ: dict[str, list[int]] = {n: [] for n in nodes}
    for i, e in enumerate(edges):
        succ[e.src].append(i)
    for n in succ:
        succ[n].sort(key=lambda i: (edges[i].dst, i))
    state = dict.fromkeys(nodes, 0)  # 0 new, 1 on stack, 2 done
    back = set()
    for root in starts:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            for i in it:
                dst = edges[i].dst
                if state[dst] == 1:
                    back.add(i)
                elif state[dst] == 0:
                    state[dst] = 1
                    stack.append((dst, iter(succ[dst])))
                    break
            else:
                state[node] = 2
                stack.pop()
    unreached = sorted(n for n, s in state.items() if s == 0)
    if unreached:
        where = f"graph {graph_name!r}" if graph_name else "the graph"
        raise ValueError(
            f"{where}: node(s) {unreached} cannot be reached from any Input node "
            f"{list(starts)}, so nothing drives them. Connect them or remove them."
        )
    return back


def kahn_order(successors: Mapping[str, Sequence[str]]) -> list[str]:
    """Topological order of a DAG given as node -> successors, ties broken by name (so the order
    is deterministic). Nodes on a cycle are left out: compare the length to detect one."""
    indeg = dict.fromkeys(successors, 0)
    for targets in successors.values():
        for m in targets:
            indeg[m] += 1
    heap = [n for n, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        n = heapq.heappop(heap)
        order.append(n)
        for m in successors[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, m)
    return order


def _topological(nodes, edges: list[Edge]) -> list[str]:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if not e.back:
            succ[e.src].append(e.dst)
    return kahn_order(succ)


def _components(order: list[str], edges: list[Edge]):
    """Strongly connected components (two nodes share one when each reaches the other), in
    topological order of the condensation with ties broken by the first member's position in
    `order`; members in `order`."""
    succ: dict[str, set[str]] = {n: set() for n in order}
    for e in edges:
        succ[e.src].add(e.dst)
    reach = {}
    for n in order:  # the nodes reachable from n (itself only through a cycle)
        seen, stack = set(), list(succ[n])
        while stack:
            m = stack.pop()
            if m not in seen:
                seen.add(m)
                stack.extend(succ[m])
        reach[n] = seen
    comps: list[tuple[str, ...]] = []
    comp_of: dict[str, int] = {}
    for n in order:
        if n not in comp_of:
            members = tuple(m for m in order if m == n or (m in reach[n] and n in reach[m]))
            comp_of.update(dict.fromkeys(members, len(comps)))
            comps.append(members)
    csucc = {i: sorted({comp_of[m] for n in c for m in succ[n]} - {i}) for i, c in enumerate(comps)}
    return tuple((comps[i], len(comps[i]) > 1 or comps[i][0] in succ[comps[i][0]])
                 for i in kahn_order(csucc))
