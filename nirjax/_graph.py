"""The graph: nodes, edges, and the compiled plan that runs them.

Semantics (see the README, "Graph semantics"):

- Several edges into one node are summed.
- Within one time step a signal passes through every feed-forward edge.
- Cycles are cut at back edges, which carry the previous step's value (zeros at t = 0). The back
  edges are those a depth-first search meets as edges to a node still on its stack, when it starts
  from the Input nodes in name order and visits successors in name order. (In the NIR paper's
  Braille graphs this is `lif1.w_rec -> lif1.lif`.)
- The compile plan condenses the graph into strongly connected components, in topological order.
  A node outside every cycle runs over the whole time axis at once (stateless nodes as one batched
  operation, stateful ones as a scan of their own dynamics); each cycle runs as one scan. This
  gives the same result as stepping every node in topological order each step (`Graph.step`).
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._execution import DEFAULT as DEFAULT_EXECUTION, Execution, scan
from ._options import Options
from .primitives._base import Primitive
from .primitives._io import Input, Output


def _content_key(value: Any):
    """A hashable key of a metadata value: dicts, sequences and arrays by content."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _content_key(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_content_key(v) for v in value))
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        arr = np.asarray(value)
        return ("array", arr.dtype.str, arr.shape, arr.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return ("value", value)


class Frozen:
    """Wraps an unhashable static value (metadata) so it can live in a static field. Compares
    and hashes by content, so two imports of the same graph share jit's compilation cache."""

    __slots__ = ("value", "_key")

    def __init__(self, value: Any):
        self.value = value
        self._key = _content_key(value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Frozen) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Frozen({self.value!r})"


@dataclasses.dataclass(frozen=True)
class Edge:
    """A resolved edge: `src[.src_port] -> dst[.dst_port]`; the port names an Input/Output of a
    nested graph. `key` is the edge's source as written in the NIR graph."""

    src: str
    src_port: str | None
    dst: str
    dst_port: str | None
    key: str
    dst_key: str
    back: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """The static execution plan: the topological order (back edges removed), the back edges,
    the strongly connected components in topological order (a component is cyclic if it has
    more than one node or a self edge), and each node's per-step input and output shape."""

    order: tuple[str, ...]
    edges: tuple[Edge, ...]
    components: tuple[tuple[tuple[str, ...], bool], ...]
    in_shapes: tuple[tuple[str, Any], ...]
    out_shapes: tuple[tuple[str, Any], ...]

    @property
    def back_edges(self) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.back)

    def incoming(self, node: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.dst == node)


class RunResult(NamedTuple):
    """What `Graph.run` returns.

    - `output`: the outputs over time, `(T, *shape)` (a dict by Output name if several).
    - `state`: the final state; pass it to the next `run` to continue seamlessly.
    - `record`: for each recorded node, a dict of per-step traces `(T, ...)`: `"output"` and the
      node's state variables (e.g. `"v"`, and `"I"` for Cuba neurons).
    """

    output: Any
    state: Any
    record: dict


def _sort_key(name: str):
    return name


def _resolve(endpoint: str, nodes: Mapping[str, Primitive], graph_name: str, edge, role: str):
    if endpoint in nodes:
        return endpoint, None
    parts = endpoint.split(".")
    for i in range(1, len(parts)):
        head, port = ".".join(parts[:i]), ".".join(parts[i:])
        sub = nodes.get(head)
        if isinstance(sub, Graph):
            ports = sub.inputs if role == "destination" else sub.outputs
            if port in ports:
                # A single-port subgraph's value is its one array: the port name is optional.
                return head, (port if len(ports) > 1 else None)
    where = f"graph {graph_name!r}" if graph_name else "the graph"
    raise ValueError(
        f"{where}: edge {tuple(edge)} names {role} node {endpoint!r}, which does not exist. "
        f"Nodes are {sorted(nodes)}. Fix the edge or add the node."
    )


def _back_edges(nodes: Mapping[str, Primitive], edges: list[Edge], starts, graph_name):
    succ: dict[str, list[int]] = {n: [] for n in nodes}
    for i, e in enumerate(edges):
        succ[e.src].append(i)
    for n in succ:
        succ[n].sort(key=lambda i: (_sort_key(edges[i].dst), i))
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
    """Strongly connected components (Tarjan), listed in topological order of the condensation,
    members in `order`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comp_of: dict[str, int] = {}
    succ: dict[str, list[str]] = {n: [] for n in order}
    for e in edges:
        succ[e.src].append(e.dst)
    counter = 0
    ncomp = 0
    for root in order:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for m in it:
                if m not in index:
                    index[m] = low[m] = counter
                    counter += 1
                    stack.append(m)
                    on_stack.add(m)
                    work.append((m, iter(succ[m])))
                    advanced = True
                    break
                if m in on_stack:
                    low[node] = min(low[node], index[m])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp_of[m] = ncomp
                    if m == node:
                        break
                ncomp += 1
    pos = {n: i for i, n in enumerate(order)}
    members: dict[int, list[str]] = {}
    for n in order:
        members.setdefault(comp_of[n], []).append(n)
    # Condensation order: Kahn on component edges, ties broken by the first member's position.
    cindeg = dict.fromkeys(members, 0)
    csucc: dict[int, set[int]] = {c: set() for c in members}
    self_loop = set()
    for e in edges:
        a, b = comp_of[e.src], comp_of[e.dst]
        if a == b:
            if e.src == e.dst:
                self_loop.add(a)
        elif b not in csucc[a]:
            csucc[a].add(b)
            cindeg[b] += 1
    heap = [(pos[members[c][0]], c) for c, d in cindeg.items() if d == 0]
    heapq.heapify(heap)
    result = []
    while heap:
        _, c = heapq.heappop(heap)
        result.append((tuple(members[c]), len(members[c]) > 1 or c in self_loop))
        for d in csucc[c]:
            cindeg[d] -= 1
            if cindeg[d] == 0:
                heapq.heappush(heap, (pos[members[d][0]], d))
    return tuple(result)


def _shape_str(shape) -> str:
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {tuple(v)}" for k, v in shape.items()) + "}"
    return str(tuple(shape))


class Graph(Primitive):
    """A NIR graph as an Equinox module: its nodes are modules whose array leaves are the NIR
    parameters, so `jax.grad` reaches every one of them.

    Build one with `nirjax.from_nir(...)`, or directly from modules and edges.

    **Arguments:**

    - `nodes`: a mapping from node name to module (a `Graph` may be a node: a subgraph).
    - `edges`: `(source, destination)` name pairs; `"sub.port"` names an Input / Output of a
      subgraph `sub`.
    - `options`: the graph's default `Options` (dt and the dynamics), recorded on export.
    - `metadata`: the NIR graph's metadata, kept for export.
    - `name`: the graph's path inside its parent (for error messages), `""` at the top.
    - `dtype`: the floating dtype of inputs and state.

    **Calling:** `graph(xs)` runs one sample: `xs` is `(T, *input_shape)` (a dict by Input name
    if several) and the result `(T, *output_shape)` (a dict by Output name if several).
    `graph.run(xs, state=None, record=())` also returns the final state and traces; `jax.vmap`
    batches, `jax.jit` / `eqx.filter_jit` compile. `init_state()` and `step(state, x)` advance one
    step at a time for closed-loop use.
    """

    nodes: dict[str, Primitive]
    options: Options = eqx.field(static=True)
    plan: Plan = eqx.field(static=True)
    inputs: tuple[str, ...] = eqx.field(static=True)
    outputs: tuple[str, ...] = eqx.field(static=True)
    metadata: Frozen = eqx.field(static=True)
    name: str = eqx.field(static=True)
    dtype: str = eqx.field(static=True)
    execution: Execution = eqx.field(static=True)
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        nodes: Mapping[str, Primitive],
        edges: Sequence[tuple[str, str]],
        *,
        options: Options,
        metadata: Mapping[str, Any] | None = None,
        name: str = "",
        dtype: Any = jnp.float32,
        execution: Execution = DEFAULT_EXECUTION,
    ):
        where = f"graph {name!r}" if name else "the graph"
        nodes = dict(nodes)
        for key, node in nodes.items():
            if not isinstance(node, Primitive):
                raise TypeError(
                    f"{where}: node {key!r} is a {type(node).__name__}, not a nirjax module. "
                    "Convert NIR graphs with nirjax.from_nir."
                )
        self.nodes = nodes
        self.options = options
        self.metadata = metadata if isinstance(metadata, Frozen) else Frozen(dict(metadata or {}))
        self.name = name
        self.dtype = jnp.dtype(dtype).name
        if not isinstance(execution, Execution):
            raise TypeError(f"execution: expected a nirjax.Execution, got {execution!r}.")
        self.execution = execution
        self.inputs = tuple(sorted(k for k, n in nodes.items() if isinstance(n, Input)))
        self.outputs = tuple(sorted(k for k, n in nodes.items() if isinstance(n, Output)))
        if not self.inputs:
            raise ValueError(
                f"{where}: has no Input node, so it cannot be driven. Add a nir.Input node with "
                "the input's shape and an edge from it."
            )

        resolved = []
        for edge in edges:
            if len(edge) != 2 or not all(isinstance(s, str) for s in edge):
                raise ValueError(f"{where}: edge {edge!r} is not a pair of node names.")
            src, sport = _resolve(edge[0], nodes, name, edge, "source")
            dst, dport = _resolve(edge[1], nodes, name, edge, "destination")
            if isinstance(nodes[dst], Input):
                raise ValueError(
                    f"{where}: edge {tuple(edge)} leads into Input node {dst!r}; Input nodes take "
                    "no edges. Remove the edge."
                )
            resolved.append(Edge(src, sport, dst, dport, edge[0], edge[1]))
        back = _back_edges(nodes, resolved, self.inputs, name)
        resolved = [dataclasses.replace(e, back=i in back) for i, e in enumerate(resolved)]
        order = _topological(nodes, resolved)
        components = _components(order, resolved)
        in_shapes, out_shapes = self._infer_shapes(order, resolved, where)
        self.plan = Plan(
            order=tuple(order),
            edges=tuple(resolved),
            components=components,
            in_shapes=tuple(in_shapes.items()),
            out_shapes=tuple(out_shapes.items()),
        )

    # ----------------------------------------------------------------------------- shapes
    def _infer_shapes(self, order, edges, where):
        dtype = jnp.dtype(self.dtype)
        in_shapes: dict[str, Any] = {}
        out_shapes: dict[str, Any] = {}

        def source_shape(e: Edge):
            out = out_shapes[e.src]
            return tuple(out[e.src_port] if e.src_port is not None else out)

        for n in order:
            node = self.nodes[n]
            if isinstance(node, Input):
                shape: Any = node.shape
            else:
                incoming = [e for e in edges if e.dst == n and not e.back]
                if isinstance(node, Graph) and len(node.inputs) > 1:
                    shape = {}
                    for e in incoming:
                        if e.dst_port is None:
                            raise ValueError(
                                f"{where}: edge {e.key!r} -> {n!r} must name one of the subgraph's "
                                f"inputs {list(node.inputs)}, e.g. '{n}.{node.inputs[0]}'."
                            )
                        s = source_shape(e)
                        if shape.setdefault(e.dst_port, s) != s:
                            raise ValueError(
                                f"{where}: edges into '{n}.{e.dst_port}' carry shapes "
                                f"{shape[e.dst_port]} and {s}; summed inputs must agree."
                            )
                    missing = [p for p in node.inputs if p not in shape]
                    if missing:
                        raise ValueError(
                            f"{where}: subgraph {n!r} inputs {missing} receive no edge."
                        )
                else:
                    shapes = {source_shape(e) for e in incoming}
                    if len(shapes) > 1:
                        raise ValueError(
                            f"{where}: node {n!r} receives edges of different shapes "
                            f"{sorted(shapes)} ({[e.key for e in incoming]}); summed inputs must "
                            "have one shape."
                        )
                    (shape,) = shapes
            expected = node.input_shapes() if isinstance(node, Graph) else None
            if expected is None:
                expected = node.expected_input_shape()
            self._check_input_shape(n, node, shape, expected, where)
            in_shapes[n] = shape
            if isinstance(node, Graph):
                out_shapes[n] = node.output_shapes()
            else:
                out_shapes[n] = node.output_shape(tuple(shape), dtype)
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

    @staticmethod
    def _check_input_shape(n, node, shape, expected, where):
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
            raise ValueError(
                f"{where}: node {n!r} ({type(node).__name__}) expects per-step input of shape "
                f"{_shape_str(expected)}, but its incoming edges carry {_shape_str(shape)}. Fix "
                "the parameter shapes or the edges."
            )

    def input_shapes(self):
        """The per-step input shape (a dict by Input name if several)."""
        shapes = {k: self.nodes[k].shape for k in self.inputs}
        return shapes[self.inputs[0]] if len(self.inputs) == 1 else shapes

    def output_shapes(self):
        """The per-step output shape (a dict by Output name if several)."""
        shapes = {k: dict(self.plan.in_shapes)[k] for k in self.outputs}
        if len(self.outputs) == 1:
            return shapes[self.outputs[0]]
        return shapes

    def expected_input_shape(self):
        return self.input_shapes()

    def output_shape(self, input_shape, dtype):
        return self.output_shapes()

    # ----------------------------------------------------------------------------- state
    def init_state(self, input_shape: Any = None, dtype: Any = None) -> dict:
        """The state at t = 0 for one sample: `{"nodes": {name: state}, "feedback": {source:
        previous output}}` (feedback is what the back edges of cycles carry: zeros at t = 0)."""
        dtype = jnp.dtype(self.dtype)
        in_shapes = dict(self.plan.in_shapes)
        out_shapes = dict(self.plan.out_shapes)
        states = {n: self.nodes[n].init_state(in_shapes[n], dtype) for n in self.plan.order}
        feedback = {}
        for e in self.plan.back_edges:
            shape = out_shapes[e.src]
            shape = shape[e.src_port] if e.src_port is not None else shape
            feedback[e.key] = jnp.zeros(shape, dtype)
        return {"nodes": states, "feedback": feedback}

    # ----------------------------------------------------------------------------- inputs
    def _check_inputs(self, xs: Any, *, sequence: bool) -> dict[str, jax.Array]:
        lead = "(T, *shape)" if sequence else "(*shape)"
        if len(self.inputs) == 1 and not isinstance(xs, Mapping):
            xs = {self.inputs[0]: xs}
        if not isinstance(xs, Mapping):
            raise TypeError(
                f"graph has Inputs {list(self.inputs)}: pass a dict from Input name to an array "
                f"of shape {lead}."
            )
        if set(xs) != set(self.inputs):
            raise ValueError(
                f"graph inputs: expected keys {sorted(self.inputs)}, got {sorted(xs)}."
            )
        out = {}
        T = None
        for k in self.inputs:
            x = xs[k]
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                x = np.asarray(x)
            dtype = jnp.dtype(x.dtype)
            if not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(
                    f"input {k!r}: expected a floating-point array, got dtype {dtype}. Cast it, "
                    f"e.g. xs.astype(jnp.{self.dtype})."
                )
            shape = tuple(self.nodes[k].shape)
            got = tuple(x.shape)
            want_ndim = len(shape) + (1 if sequence else 0)
            if len(got) != want_ndim or got[len(got) - len(shape):] != shape:
                hint = (
                    " It has one extra leading axis: for a batch use jax.vmap(model)."
                    if len(got) == want_ndim + 1 and got[2:] == shape
                    else ""
                )
                raise ValueError(
                    f"input {k!r}: expected shape {lead} with shape = {shape}, got {got}.{hint}"
                )
            if sequence:
                if T is not None and got[0] != T:
                    raise ValueError(f"inputs have different numbers of steps: {T} and {got[0]}.")
                T = got[0]
            out[k] = jnp.asarray(x, dtype=self.dtype)
        return out

    # ----------------------------------------------------------------------------- running
    def _gather(self, n: str, values: dict, feedback: dict | None, edges=None) -> Any:
        """The summed input of node n from the sources' values over `edges` (default: all its
        incoming edges); back edges read `feedback`."""
        node = self.nodes[n]
        ported = isinstance(node, Graph) and len(node.inputs) > 1
        acc: dict = {}
        for e in self.plan.incoming(n) if edges is None else edges:
            if e.back:
                v = feedback[e.key]
            else:
                v = values[e.src]
                if e.src_port is not None:
                    v = v[e.src_port]
            port = e.dst_port if ported else None
            acc[port] = v if port not in acc else acc[port] + v
        return acc if ported else acc[None]

    def step(self, state: dict, x: Any) -> tuple[dict, Any]:
        """Advance the whole graph by one step: every node in topological order, back edges
        reading the previous step. `x` has the per-step input shape (a dict if several)."""
        xs = self._check_inputs(x, sequence=False)
        new_nodes, values = {}, {}
        for n in self.plan.order:
            node = self.nodes[n]
            inp = xs[n] if n in self.inputs else self._gather(n, values, state["feedback"])
            new_nodes[n], values[n] = node.step(state["nodes"][n], inp)
        return {"nodes": new_nodes, "feedback": self._feedback(values)}, self._outputs(values)

    def _feedback(self, values: dict, keys=None) -> dict:
        """The values the back edges carry to the next step (only those in `keys` if given)."""
        fb = {}
        for e in self.plan.back_edges:
            if keys is not None and e.key not in keys:
                continue
            v = values[e.src]
            fb[e.key] = v[e.src_port] if e.src_port is not None else v
        return fb

    def _outputs(self, values: dict) -> Any:
        if len(self.outputs) == 1:
            return values[self.outputs[0]]
        return {k: values[k] for k in self.outputs}

    def _split_record(self, record) -> tuple[set, dict]:
        own, nested = set(), {}
        for r in record:
            head, _, rest = r.partition("/")
            if head not in self.nodes:
                raise ValueError(
                    f"record: no node {r!r}; nodes are {sorted(self.nodes)} (use 'sub/node' for "
                    "a node inside subgraph 'sub')."
                )
            if rest:
                if not isinstance(self.nodes[head], Graph):
                    raise ValueError(f"record: {head!r} is not a subgraph, so {r!r} is not a node.")
                nested.setdefault(head, []).append(rest)
            else:
                own.add(head)
        return own, nested

    def _execute(self, state: dict, xs: dict, record: Sequence[str], execution=None):
        """Run the compile plan over the time axis; returns (state, values over time, traces)."""
        execution = self.execution if execution is None else execution
        own, nested = self._split_record(record)
        seqs: dict[str, Any] = {}
        new_nodes = dict(state["nodes"])
        feedback = dict(state["feedback"])
        traces: dict[str, dict] = {}
        for members, cyclic in self.plan.components:
            if not cyclic:
                (n,) = members
                node = self.nodes[n]
                inp = xs[n] if n in self.inputs else self._gather(n, seqs, None)
                if isinstance(node, Graph) and n in nested:
                    sub_xs = inp if isinstance(inp, dict) else {node.inputs[0]: inp}
                    st, vals, sub_tr = node._execute(
                        state["nodes"][n], sub_xs, nested[n], execution
                    )
                    new_nodes[n], seqs[n] = st, node._outputs(vals)
                    traces.update({f"{n}/{k}": v for k, v in sub_tr.items()})
                    tr = {} if n in own else None
                else:
                    new_nodes[n], seqs[n], tr = node.run_sequence(
                        state["nodes"][n], inp, record=n in own, execution=execution
                    )
                if n in own:
                    traces[n] = {"output": seqs[n], **tr}
            else:
                for n in members:
                    if n in nested:
                        raise NotImplementedError(
                            f"record: {n!r} is a subgraph inside a cycle; record the subgraph's "
                            f"output ({n!r}) instead of nodes inside it."
                        )
                self._run_cycle(
                    members, state, xs, seqs, new_nodes, feedback, traces, own, execution
                )
        return {"nodes": new_nodes, "feedback": feedback}, seqs, traces

    def _run_cycle(
        self, members, state, xs, seqs, new_nodes, feedback, traces, own, execution
    ):
        inside = set(members)
        keys = sorted({e.key for e in self.plan.back_edges if e.dst in inside})
        # Inputs from outside the component, summed over the whole time axis before the scan.
        external = {}
        for n in members:
            outside = [e for e in self.plan.incoming(n) if e.src not in inside]
            if outside:
                external[n] = self._gather(n, seqs, None, outside)

        def body(carry, ext_t):
            states, fb = carry
            values, new_states = {}, {}
            for n in members:
                node = self.nodes[n]
                terms = [ext_t[n]] if n in ext_t else []
                inside_edges = [e for e in self.plan.incoming(n) if e.src in inside]
                if inside_edges:
                    terms.append(self._gather(n, values, fb, inside_edges))
                inp = terms[0] if len(terms) == 1 else jax.tree.map(jnp.add, *terms)
                new_states[n], values[n] = node.step(states[n], inp)
            new_fb = self._feedback(values, keys)
            obs = {
                n: {"output": values[n], **node_obs(self.nodes[n], new_states[n])}
                for n in members
                if n in own
            }
            return (new_states, new_fb), (values, obs)

        carry0 = ({n: state["nodes"][n] for n in members}, {k: state["feedback"][k] for k in keys})
        (states, fb), (values, obs) = scan(body, carry0, external, execution)
        new_nodes.update(states)
        feedback.update(fb)
        seqs.update(values)
        traces.update(obs)

    def run_sequence(self, state, xs, record=False, execution=None):
        if not isinstance(xs, Mapping):
            xs = {self.inputs[0]: xs}
        state, seqs, _ = self._execute(state, xs, (), execution)
        return state, self._outputs(seqs), ({} if record else None)

    def run(self, xs: Any, state: dict | None = None, record: Sequence[str] = ()) -> RunResult:
        """Run one sample over time.

        **Arguments:**

        - `xs`: `(T, *input_shape)`, or a dict by Input name if the graph has several Inputs.
        - `state`: the state to start from (default: `init_state()`); pass a previous run's
          `state` to continue in chunks with identical results.
        - `record`: names of nodes whose per-step output and state variables to trace
          (`"sub/node"` for a node inside subgraph `sub`).

        **Returns:** a `RunResult(output, state, record)`.
        """
        if isinstance(record, str):
            record = (record,)
        xs = self._check_inputs(xs, sequence=True)
        if state is None:
            state = self.init_state()
        record = tuple(record)
        self._split_record(record)  # validate names before tracing
        k = self.execution.checkpoint
        T = next(iter(xs.values())).shape[0]
        if k is None or T <= k:
            state, seqs, traces = self._execute(state, xs, record)
            return RunResult(self._outputs(seqs), state, traces)
        return self._run_checkpointed(state, xs, record, k, T)

    def _run_checkpointed(self, state, xs, record, k, T):
        """Gradient checkpointing over time: whole chunks of k steps under `jax.checkpoint`, so
        the backward pass stores only the state between chunks and recomputes each chunk."""

        n = T // k

        @jax.checkpoint
        def chunk(carry, i):
            # Slice the chunk out of the untouched input (no reshaped or transposed copy of it,
            # also under vmap).
            x_chunk = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * k, k), xs)
            carry, seqs, traces = self._execute(carry, x_chunk, record)
            return carry, (self._outputs(seqs), traces)

        state, (outs, traces) = jax.lax.scan(chunk, state, jnp.arange(n))
        merge = lambda a: a.reshape((n * k,) + a.shape[2:])  # noqa: E731
        outs, traces = jax.tree.map(merge, outs), jax.tree.map(merge, traces)
        if n * k < T:
            tail = jax.tree.map(lambda a: a[n * k :], xs)
            state, seqs, tail_traces = self._execute(state, tail, record)
            join = lambda a, b: jnp.concatenate([a, b])  # noqa: E731
            outs = jax.tree.map(join, outs, self._outputs(seqs))
            traces = jax.tree.map(join, traces, tail_traces)
        return RunResult(outs, state, traces)

    def with_execution(self, **options) -> Graph:
        """A copy of this graph with other execution options (see `nirjax.Execution`:
        `checkpoint`, `unroll`, `matmul_dtype`, `associative_scan`). The dynamics, parameters
        and exported NIR are unchanged."""
        current = {f.name: getattr(self.execution, f.name)
                   for f in dataclasses.fields(Execution)}
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(
                f"with_execution: unknown option(s) {sorted(unknown)}; valid: {sorted(current)}."
            )
        new = copy.copy(self)
        object.__setattr__(new, "execution", Execution(**{**current, **options}))
        return new

    def __call__(self, xs: Any) -> Any:
        """Run one sample, `(T, *input_shape) -> (T, *output_shape)`."""
        return self.run(xs).output


def node_obs(node: Primitive, state: Any) -> dict:
    return node.observables(state) if node.stateful and state is not None else {}
