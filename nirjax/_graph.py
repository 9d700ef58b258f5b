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

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._execution import (
    DEFAULT as DEFAULT_EXECUTION,
    Check,
    Execution,
    all_finite,
    check_sequence,
    checking,
    collecting,
    current_check,
    defer,
    raise_pending,
    scan,
)
from ._options import Options, check_names
from ._paths import node_at, walk
from ._plan import Plan, compile_plan, content_key
from .primitives._base import Primitive


class Frozen:
    """Wraps an unhashable static value (metadata) so it can live in a static field. Compares
    and hashes by content, so two imports of the same graph share jit's compilation cache."""

    __slots__ = ("value", "_key")

    def __init__(self, value: Any):
        self.value = value
        self._key = content_key(value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Frozen) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Frozen({self.value!r})"


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
    - `node_metadata`: the NIR metadata of each leaf node that nirjax does not interpret,
      `{name: dict}`, kept for export.
    - `dtype`: the floating dtype of inputs and state.

    **Calling:** `graph(xs)` runs one sample: `xs` is `(T, *input_shape)` (a dict by Input name
    if several) and the result `(T, *output_shape)` (a dict by Output name if several).
    `graph.run(xs, state=None, record=())` also returns the final state and traces; `jax.vmap`
    batches, `jax.jit` / `eqx.filter_jit` compile. `init_state()` and `step(state, x)` advance one
    step at a time for closed-loop use.
    """

    nodes: dict[str, Primitive]
    edges: tuple[tuple[str, str], ...] = eqx.field(static=True)
    options: Options = eqx.field(static=True)
    metadata: Frozen = eqx.field(static=True, default=None)
    name: str = eqx.field(static=True, default="")
    node_metadata: Frozen = eqx.field(static=True, default=None, kw_only=True)
    dtype: str = eqx.field(static=True, default="float32")
    execution: Execution = eqx.field(static=True, default=DEFAULT_EXECUTION)
    plan: Plan = eqx.field(static=True, init=False)
    stateful: ClassVar[bool] = True

    def __post_init__(self):
        where = f"graph {self.name!r}" if self.name else "the graph"
        nodes = dict(self.nodes)
        for key, node in nodes.items():
            if not isinstance(node, Primitive):
                raise TypeError(
                    f"{where}: node {key!r} is a {type(node).__name__}, not a nirjax module. "
                    "Convert NIR graphs with nirjax.from_nir."
                )
        if not isinstance(self.options, Options):
            raise TypeError(f"{where}: options must be a nirjax.Options, got {self.options!r}.")
        if not isinstance(self.execution, Execution):
            raise TypeError(f"execution: expected a nirjax.Execution, got {self.execution!r}.")
        self.nodes = nodes
        self.edges = tuple(tuple(e) if isinstance(e, (list, tuple)) else e for e in self.edges)
        metadata = self.metadata
        self.metadata = metadata if isinstance(metadata, Frozen) else Frozen(dict(metadata or {}))
        node_md = self.node_metadata
        if not isinstance(node_md, Frozen):
            node_md = dict(node_md or {})
            unknown = sorted(set(node_md) - set(nodes))
            if unknown:
                raise ValueError(f"{where}: node_metadata names no node(s) {unknown}.")
            self.node_metadata = Frozen({k: dict(v) for k, v in node_md.items() if v})
        self.dtype = jnp.dtype(self.dtype).name
        self.plan = compile_plan(nodes, self.edges, name=self.name, dtype=self.dtype)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the Input nodes, sorted."""
        return self.plan.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """The names of the Output nodes, sorted."""
        return self.plan.outputs

    # ----------------------------------------------------------------------------- paths
    def walk(self, *, sort: bool = False):
        """Every node, depth first, as `(path, node)`; a node inside subgraph `sub` is
        `"sub/node"` (see `nirjax.walk`)."""
        return walk(self, sort=sort)

    def node(self, path: str) -> Primitive:
        """The node at `path` (`"sub/node"` inside subgraph `sub`); a ValueError listing the
        nodes if there is none."""
        return node_at(self, path)

    def replace_nodes(self, new: Mapping[str, Primitive]) -> Graph:
        """A copy with the nodes at the given paths replaced (`eqx.tree_at`); the structure and
        the plan stay, so the new nodes must take and give the same shapes."""
        if not new:
            return self
        paths = list(new)
        for p in paths:
            self.node(p)
        return eqx.tree_at(lambda g: [g.node(p) for p in paths], self, [new[p] for p in paths])

    # ----------------------------------------------------------------------------- options
    def with_options(self, node: str | None = None, **changes) -> Graph:
        """A copy with some dynamics options changed (see `nirjax.Options`), parameters kept.

        Without `node`, the change applies to the graph's options and to every node in it,
        nested ones included (a per-node option that differs is overwritten for the options
        named here, and kept for the others). With `node="path"`, only that node (or
        subgraph, with everything inside it) changes. Changing `dt` or `delay_rounding`
        rebuilds the Delay nodes (their buffers are whole steps).
        """
        check_names(changes, "with_options: ")
        if node is not None:
            target = self.node(node)
            head, _, leaf = node.rpartition("/")
            parent = self.node(head) if head else self
            new = _with_node_options(target, parent.options, changes)
            if head:
                return self.replace_nodes({head: _rebuilt(parent, {leaf: new})})
            return _rebuilt(self, {leaf: new})
        return _with_node_options(self, self.options, changes)

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
        return dataclasses.replace(self, execution=Execution(**{**current, **options}))

    def input_shapes(self):
        """The per-step input shape (a dict by Input name if several)."""
        shapes = {k: self.nodes[k].shape for k in self.inputs}
        return shapes[self.inputs[0]] if len(self.inputs) == 1 else shapes

    def output_shapes(self):
        """The per-step output shape (a dict by Output name if several)."""
        shapes = {k: self.plan.in_shapes[k] for k in self.outputs}
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
        in_shapes = self.plan.in_shapes
        out_shapes = self.plan.out_shapes
        states = {n: self.nodes[n].init_state(in_shapes[n], dtype) for n in self.plan.order}
        feedback = {}
        for e in self.plan.back_edges:
            shape = out_shapes[e.src]
            shape = shape[e.src_port] if e.src_port is not None else shape
            feedback[e.key] = jnp.zeros(shape, dtype)
        return {"nodes": states, "feedback": feedback}

    def check_state(self, state: Any) -> None:
        """A clear error unless `state` has this graph's state structure, shapes and dtypes (as
        `init_state()` gives and `run` returns): a state from another graph, or with a batch
        axis outside `jax.vmap`, is refused instead of broadcasting silently."""
        want = jax.eval_shape(self.init_state)
        fix = ("Pass this graph's init_state() or the state of a previous run of this graph "
               "(batched states only under jax.vmap / nirjax.simulate).")
        try:
            got_leaves, got_tree = jax.tree_util.tree_flatten_with_path(state)
        except Exception:  # noqa: BLE001
            raise TypeError(f"state: expected a dict like init_state(), got {state!r}.") \
                from None
        want_leaves, want_tree = jax.tree_util.tree_flatten_with_path(want)
        if got_tree != want_tree:
            nodes = state.get("nodes") if isinstance(state, Mapping) else None
            if isinstance(nodes, Mapping) and set(nodes) != set(want["nodes"]):
                detail = f"its nodes are {sorted(nodes)}, this graph's {sorted(want['nodes'])}"
            else:
                got_keys = {jax.tree_util.keystr(p) for p, _ in got_leaves}
                want_keys = {jax.tree_util.keystr(p) for p, _ in want_leaves}
                detail = (f"missing {sorted(want_keys - got_keys)[:4]}, unexpected "
                          f"{sorted(got_keys - want_keys)[:4]}")
            raise ValueError(f"state: does not have this graph's structure ({detail}). {fix}")
        for (path, g), (_, w) in zip(got_leaves, want_leaves):
            shape = tuple(getattr(g, "shape", np.shape(g)))
            dtype = jnp.result_type(g)
            if shape != tuple(w.shape) or dtype != w.dtype:
                raise ValueError(
                    f"state{jax.tree_util.keystr(path)}: expected shape {tuple(w.shape)} and "
                    f"dtype {w.dtype}, got {shape} and {dtype}. {fix}"
                )

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
                if got[0] == 0:
                    raise ValueError(
                        f"input {k!r}: has 0 time steps (shape {got}); expected at least one "
                        "step along the leading axis."
                    )
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
        for e in self.plan.incoming[n] if edges is None else edges:
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
            if not isinstance(r, str):
                raise TypeError(
                    f"record: expected node names (strings such as {sorted(self.nodes)[0]!r}), "
                    f"got {r!r} ({type(r).__name__})."
                )
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
        """Run the compile plan over the time axis; returns (state, values over time, traces).
        Under `check_finite` every node's check is collected while tracing and raised once, on
        the outputs, the state and the traces (`nirjax._execution.raise_pending`)."""
        execution = self.execution if execution is None else execution
        with collecting() as pending:
            state, seqs, traces = self._execute_plan(state, xs, record, execution)
        outs = {n: seqs[n] for n in self.outputs if n in seqs}
        outs, state, traces = raise_pending(pending, (outs, state, traces))
        return state, {**seqs, **outs}, traces

    def _execute_plan(self, state: dict, xs: dict, record: Sequence[str], execution):
        own, nested = self._split_record(record)
        outer = current_check()
        T = next(iter(jax.tree.leaves(xs))).shape[0] if jax.tree.leaves(xs) else 0
        base = outer if outer is not None else Check("", 0, T)

        def check_for(n):
            if not execution.check_finite:
                return None
            path = f"{self.name}/{n}" if self.name else n
            return Check(f"node {path!r} ({type(self.nodes[n]).__name__})", base.offset,
                         base.total)

        def checked(n, seq):
            c = check_for(n)
            if c is None:
                return seq
            what = (f"input {n!r} (the data fed to the graph)" if n in self.inputs
                    else c.label + " output")
            return check_sequence(seq, c, what)

        seqs: dict[str, Any] = {}
        new_nodes = dict(state["nodes"])
        feedback = dict(state["feedback"])
        traces: dict[str, dict] = {}
        folds = self._bias_folds(own)
        folded = set(folds.values())
        for members, cyclic in self.plan.components:
            if not cyclic:
                (n,) = members
                node = self.nodes[n]
                inp = xs[n] if n in self.inputs else self._gather(n, seqs, None)
                if n in folded:  # its bias is added inside the next neuron's scan
                    seqs[n] = checked(n, node.linear_sequence(inp, execution))
                    continue
                if isinstance(node, Graph) and n in nested:
                    sub_xs = inp if isinstance(inp, dict) else {node.inputs[0]: inp}
                    with checking(base):
                        st, vals, sub_tr = node._execute(
                            state["nodes"][n], sub_xs, nested[n], execution
                        )
                    new_nodes[n], seqs[n] = st, node._outputs(vals)
                    traces.update({f"{n}/{k}": v for k, v in sub_tr.items()})
                    tr = {} if n in own else None
                else:
                    fold = {"bias": self.nodes[folds[n]].bias} if n in folds else {}
                    with checking(base if isinstance(node, Graph) else check_for(n)):
                        new_nodes[n], seqs[n], tr = node.run_sequence(
                            state["nodes"][n], inp, record=n in own, execution=execution,
                            **fold)
                seqs[n] = checked(n, seqs[n])
                if n in own:
                    traces[n] = {"output": seqs[n], **tr}
            else:
                for n in members:
                    if n in nested:
                        raise NotImplementedError(
                            f"record: {n!r} is a subgraph inside a cycle; record the subgraph's "
                            f"output ({n!r}) instead of nodes inside it."
                        )
                cycle = None
                if execution.check_finite:
                    cycle = Check(f"the cycle through nodes {list(members)}"
                                  + (f" of graph {self.name!r}" if self.name else ""),
                                  base.offset, base.total)
                with checking(cycle):
                    self._run_cycle(
                        members, state, xs, seqs, new_nodes, feedback, traces, own, execution
                    )
                for n in members:
                    seqs[n] = checked(n, seqs[n])
        return {"nodes": new_nodes, "feedback": feedback}, seqs, traces

    def _bias_folds(self, own) -> dict[str, str]:
        """`{neuron: affine}` for every neuron (outside cycles) whose only input is an Affine
        node that feeds nothing else and is not recorded: the Affine's `W x` runs once over the
        time axis and its bias is added inside the neuron's scan, so the biased `(T, ...)`
        currents are never materialized. Exact: the same `W x + b` at every step."""
        from .primitives._linear import Affine
        from .primitives._neuron import Neuron

        cyclic = {m for members, cyc in self.plan.components if cyc for m in members}
        fan_out: dict[str, int] = {}
        for e in self.plan.edges:
            fan_out[e.src] = fan_out.get(e.src, 0) + 1
        folds = {}
        for n, edges in self.plan.incoming.items():
            node = self.nodes[n]
            if (not isinstance(node, Neuron) or type(node).run_sequence is not Neuron.run_sequence
                    or n in cyclic or len(edges) != 1):
                continue
            (e,) = edges
            a = e.src
            if (e.back or e.src_port is not None or a in cyclic or a in own or a in self.inputs
                    or type(self.nodes[a]) is not Affine or fan_out.get(a) != 1):
                continue
            out = tuple(self.plan.out_shapes[a])
            if tuple(np.broadcast_shapes(jnp.shape(self.nodes[a].bias), out)) != out:
                continue
            folds[n] = a
        return folds

    def _run_cycle(
        self, members, state, xs, seqs, new_nodes, feedback, traces, own, execution
    ):
        inside = set(members)
        keys = sorted({e.key for e in self.plan.back_edges if e.dst in inside})
        # Inputs from outside the component, summed over the whole time axis before the scan.
        external = {}
        for n in members:
            outside = [e for e in self.plan.incoming[n] if e.src not in inside]
            if outside:
                external[n] = self._gather(n, seqs, None, outside)

        def member_input(n, values, fb, ext):
            """Member n's input: from outside the cycle (`ext`), plus the members before it at
            this step (`values`) and the back edges (`fb`)."""
            terms = [ext[n]] if n in ext else []
            inside_edges = [e for e in self.plan.incoming[n] if e.src in inside]
            if inside_edges:
                terms.append(self._gather(n, values, fb, inside_edges))
            return terms[0] if len(terms) == 1 else jax.tree.map(jnp.add, *terms)

        def member_step(nodes, carry, ext_t, z=None):
            """One step of every member in order; `z` (or None): per member, a value added to
            its output (the whole-cycle rule's entry point for the hoisted weights' tangent)."""
            states, fb = carry
            values, new_states = {}, {}
            for n in members:
                inp = member_input(n, values, fb, ext_t)
                new_states[n], values[n] = nodes[n].step(states[n], inp)
                if z is not None and n in z:
                    values[n] = values[n] + z[n]
            return (new_states, self._feedback(values, keys)), values

        carry0 = ({n: state["nodes"][n] for n in members}, {k: state["feedback"][k] for k in keys})
        if self._cycle_rule(members, own, carry0, external):
            check = current_check() if execution.check_finite else None
            (states, fb), values, bad = self._run_cycle_rule(
                members, keys, carry0, external, execution, member_step, member_input,
                watch=all_finite if check is not None else None)
            if check is not None:  # as `scan` watches the carry
                states, fb = defer((states, fb), bad, check, check.label + " state")
            new_nodes.update(states)
            feedback.update(fb)
            seqs.update(values)
            return

        def body(carry, ext_t):
            with collecting() as pending:  # checks traced inside the step stay inside it
                carry, values = member_step(self.nodes, carry, ext_t)
                obs = {n: {"output": values[n], **node_obs(self.nodes[n], carry[0][n])}
                       for n in members if n in own}
                out = carry, (values, obs)
            return raise_pending(pending, out)

        (states, fb), (values, obs) = scan(body, carry0, external, execution)
        new_nodes.update(states)
        feedback.update(fb)
        seqs.update(values)
        traces.update(obs)

    def _cycle_rule(self, members, own, carry0, external) -> bool:
        """Whether a cycle runs under the whole-cycle rule (`nirjax._reverse.cycle_sequence`):
        its neurons under `gradient="custom"`, every member's arrays, state and input floating
        point, no subgraph among the members, none of them recorded, and an input from outside
        the cycle; otherwise the per-step rule runs."""
        from . import _reverse
        from .primitives._neuron import Neuron

        nodes = [self.nodes[n] for n in members]
        neurons = [m for m in nodes if isinstance(m, Neuron)]
        return (
            bool(neurons)
            and all(m.options.gradient == "custom" for m in neurons)
            and not any(isinstance(m, Graph) for m in nodes)
            and all(_reverse._split(m) is not None for m in nodes)
            and not set(members) & set(own)
            and bool(jax.tree.leaves(external))
            and all(jnp.issubdtype(jnp.result_type(a), jnp.inexact)
                    for a in jax.tree.leaves((carry0, external)))
        )

    def _run_cycle_rule(self, members, keys, carry0, external, execution, member_step,
                        member_input, watch):
        """The cycle under the whole-cycle rule: the stateless members' arrays (the recurrent
        weights) are hoisted, their tangent taken over the whole time axis at once."""
        from . import _reverse

        split = {n: eqx.partition(self.nodes[n], eqx.is_array) for n in members}
        hoisted = [n for n in members if not self.nodes[n].stateful]
        dyn = {n: split[n][0] for n in members if n not in hoisted}
        hoist = {n: split[n][0] for n in hoisted}

        def nodes(arrays):
            return {n: eqx.combine(arrays[n], split[n][1]) for n in arrays}

        def step(dyn, hoist, carry, ext_t, z):
            return member_step(nodes({**dyn, **hoist}), carry, ext_t, z)

        def feedback(values):
            return self._feedback(values, keys)

        def hoisted_outputs(hoist, values, carry0, ext):
            # The back edges' values over time: the start feedback, then each step's.
            later = feedback(values)
            fb = {k: jnp.concatenate([carry0[1][k][None], later[k][:-1]]) for k in keys}
            # In full precision, as the members' per-step matmuls run (`matmul_dtype` applies
            # outside cycles only).
            return {n: node.apply_sequence(member_input(n, values, fb, ext))
                    for n, node in nodes(hoist).items()}

        return _reverse.cycle_sequence(step, feedback, hoisted_outputs, execution.unroll, dyn,
                                       hoist, carry0, external, watch)

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
        if not self.outputs:
            raise ValueError(
                f"{f'graph {self.name!r}' if self.name else 'the graph'} has no Output node, so a "
                "run would return nothing. Add a nir.Output node and an edge into it."
            )
        xs = self._check_inputs(xs, sequence=True)
        if state is None:
            state = self.init_state()
        else:
            self.check_state(state)
            if self.execution.check_finite:
                state = eqx.error_if(
                    state, ~all_finite(state),
                    "state: the state passed to run holds NaN or inf before the first step; pass "
                    "a finite state (init_state() or a previous run's state), or "
                    "check_finite=False (graph.with_execution) to run on regardless.")
        if not isinstance(record, (list, tuple)):
            raise TypeError(
                f"record: expected a list of node names, got {type(record).__name__}."
            )
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
            with checking(Check("", i * k, T)):
                carry, seqs, traces = self._execute(carry, x_chunk, record)
            return carry, (self._outputs(seqs), traces)

        state, (outs, traces) = jax.lax.scan(chunk, state, jnp.arange(n))
        merge = lambda a: a.reshape((n * k,) + a.shape[2:])  # noqa: E731
        outs, traces = jax.tree.map(merge, outs), jax.tree.map(merge, traces)
        if n * k < T:
            tail = jax.tree.map(lambda a: a[n * k :], xs)
            with checking(Check("", n * k, T)):
                state, seqs, tail_traces = self._execute(state, tail, record)
            join = lambda a, b: jnp.concatenate([a, b])  # noqa: E731
            outs = jax.tree.map(join, outs, self._outputs(seqs))
            traces = jax.tree.map(join, traces, tail_traces)
        return RunResult(outs, state, traces)

    def __call__(self, xs: Any) -> Any:
        """Run one sample, `(T, *input_shape) -> (T, *output_shape)`."""
        return self.run(xs).output


def node_obs(node: Primitive, state: Any) -> dict:
    return node.observables(state) if node.stateful and state is not None else {}


def _rebuilt(graph: Graph, nodes: Mapping[str, Primitive], **changes) -> Graph:
    return dataclasses.replace(graph, nodes={**graph.nodes, **nodes}, **changes)


def _with_node_options(node: Primitive, parent: Options, changes: dict) -> Primitive:
    """`node` with `changes` applied to its own options (a subgraph: recursively)."""
    if isinstance(node, Graph):
        options = node.options.replace(**changes)
        nodes = {k: _with_node_options(m, options, changes) for k, m in node.nodes.items()}
        return _rebuilt(node, nodes, options=options)
    return node.with_options(node.options_or(parent).replace(**changes))
