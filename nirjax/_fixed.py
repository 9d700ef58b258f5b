r"""Bit-accurate fixed-point execution: what a chip computes for a NIR graph.

    chip = nirjax.fixed_point("lif_norse.nir", "loihi2", dt=1e-4)
    res = chip.run(spikes, record=["1"])       # integer states, the chip's arithmetic
    res.record["1"]["v"]                         # the voltage as the chip's probe reads it

`fixed_point(source, target)` returns a `nirjax.Graph` whose nodes are the chip's integer
modules (a `nirjax.Graph` runs them like any other: `run`, `record`, `jax.vmap` for a batch,
cycles through back edges). Between nodes, values are float arrays holding exact integers
(synaptic activations) or spikes (0/1); inside a neuron the state is int32 and every operation
is the chip's: its decay arithmetic and rounding, its shifts, wrap-around and saturation.

**Built on the neuron definition.** A neuron node's integer constants are read off its
`nirjax.Neuron` definition, not off a table per class: the per-step input gain of `v` and the
per-step bias are one forward-Euler step of the node itself from the zero state (with a unit
input, and with none), and the decay of each state variable is `dt` times the diagonal of the
vector field's Jacobian. So LIF and CubaLIF (Loihi's CUBA neuron; LIF is CUBA with an
instantaneous current) share one code path, and a neuron the chip cannot run is refused by
name.

**Where the integers come from** (the metadata contract with `nirjax.targets`): a
target-quantized graph records `"nirjax.target": {"name": ...}` in its graph metadata and, on
a node, `"nirjax.quantization": {"<field>": {"scale": s, "bits": b, "signed": bool}}`, meaning
that the field's float value equals integer * s exactly. When those are present the executor
uses them (and refuses values that are not integer multiples of their scale); otherwise it
applies the chip's default conversion (for Loihi 2 the NIR paper's Lava script; for Xylo
Rockpool's mapper rule). Node metadata lives in the NIR file, so pass the file or the
`nir.NIRGraph` to keep it; a `nirjax.Graph` carries only graph metadata (a graph-level
`"nirjax.quantization": {node: {field: ...}}` is read too).

Targets: `"loihi2"` (`nirjax._fixed_loihi`), `"xylo"` (`nirjax._fixed_xylo`); register another
with `register_fixed_target`. See docs/fixed_point.md for the arithmetic with its sources.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import jax.numpy as jnp
import nir
import numpy as np

from ._discretization import Euler, jacobian
from ._graph import Graph
from ._import import from_nir, read
from ._options import decode
from .primitives._base import Primitive
from .primitives._io import Input, Output
from .primitives._linear import Affine, Linear
from .primitives._neuron import Neuron

TARGET_KEY = "nirjax.target"
QUANT_KEY = "nirjax.quantization"


class FixedTarget(abc.ABC):
    """A chip whose integer arithmetic nirjax can execute.

    A subclass sets `name` and implements `convert(view)`, which returns the integer module for
    every weight and neuron node of the graph (`view` is a `GraphView`: nodes, edges, recorded
    quantization, `dt`). Input and Output nodes are kept; any other node is refused by the
    builder with the node's name.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def convert(self, view: GraphView, **options: Any) -> dict[str, Primitive]:
        """The chip's module for each Affine / Linear / neuron node, by name."""


FIXED_TARGETS: dict[str, FixedTarget] = {}


def register_fixed_target(target: FixedTarget) -> FixedTarget:
    """Make a chip available to `fixed_point` by its `name`."""
    if not isinstance(target, FixedTarget):
        raise TypeError(f"register_fixed_target: expected a FixedTarget, got {target!r}.")
    FIXED_TARGETS[target.name] = target
    return target


class GraphView:
    """What a `FixedTarget` converts: the float graph's nodes, their edges, the recorded
    quantization per node (`quant[name][field] -> {"scale", "bits", "signed"}`) and `dt`."""

    def __init__(self, graph: Graph, quant: Mapping[str, Mapping[str, Any]], target: str):
        self.graph = graph
        self.target = target
        self.nodes = dict(graph.nodes)
        self.quant = {k: dict(v) for k, v in quant.items()}
        self.back = {(e.src, e.dst) for e in graph.plan.back_edges}
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in graph.plan.edges:
            self.preds[e.dst].append(e.src)
            self.succs[e.src].append(e.dst)
        self.dt = float(graph.options.dt)

    def weights(self) -> list[str]:
        return sorted(n for n, m in self.nodes.items() if isinstance(m, (Affine, Linear)))

    def neurons(self) -> list[str]:
        return sorted(n for n, m in self.nodes.items() if isinstance(m, Neuron))

    def scale(self, node: str, field: str) -> float | None:
        """The recorded scale of `node.field` (float = integer * scale), or None."""
        entry = self.quant.get(node, {}).get(field)
        if entry is None:
            return None
        if not isinstance(entry, Mapping) or "scale" not in entry:
            raise ValueError(
                f"node {node!r}: metadata {QUANT_KEY}[{field!r}] must be a mapping with a "
                f"'scale' (float = integer * scale), got {entry!r}."
            )
        s = float(np.asarray(entry["scale"]))
        if not np.isfinite(s) or s <= 0:
            raise ValueError(
                f"node {node!r}: {QUANT_KEY}[{field!r}]['scale'] must be > 0, got {s!r}."
            )
        return s

    def error(self, node: str, problem: str, fix: str) -> ValueError:
        kind = type(self.nodes[node]).__name__ if node in self.nodes else "?"
        return ValueError(f"{self.target}: node {node!r} ({kind}): {problem}. {fix}")


def integer_multiple(values: np.ndarray, scale: float, where: str, field: str) -> np.ndarray:
    """`values / scale` as integers, refusing values that are not integer multiples of the
    recorded scale (to float32 rounding)."""
    q = np.asarray(values, np.float64) / scale
    r = np.round(q)
    bad = np.abs(q - r) > 1e-3 * np.maximum(1.0, np.abs(r))
    if np.any(bad):
        i = tuple(np.argwhere(bad)[0])
        raise ValueError(
            f"{where}: field {field!r} = {np.asarray(values)[i]!r} at index {list(i)} is not an "
            f"integer multiple of its recorded scale {scale!r} (metadata {QUANT_KEY}); export "
            "the graph from quantization-aware training, or drop the metadata to use the "
            "chip's default conversion."
        )
    return r.astype(np.int64)


# --------------------------------------------------------------------- the neuron definition
def euler_response(neuron: Neuron, dt: float, x: float) -> dict[str, np.ndarray]:
    """One forward-Euler step of `neuron` (its own `cuba_order` and `input_mode`) from the zero
    state with the per-step input `x`: the per-step input gain (x = 1, minus the x = 0
    response) and bias (x = 0) of each state variable. Under `input_mode="impulse"` the state
    first jumps by `neuron.jump(state, x)` and then relaxes for one step with no input, as
    `Neuron.integrate` does."""
    zero = neuron.zero_state()
    u = jnp.full(neuron.expected_input_shape(), x, zero[neuron.state_vars[0]].dtype)
    if neuron.options.input_mode == "impulse":
        zero, u = neuron.jump(zero, u), jnp.zeros_like(u)
    out = Euler().advance(neuron, None, zero, u, dt)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def decays(neuron: Neuron, dt: float) -> dict[str, np.ndarray]:
    """`dt * (-df_k/ds_k)` for each state variable (the fraction lost per Euler step), and a
    check that the coupling is the CUBA chain (each variable driven only by the previous one)."""
    zero = neuron.zero_state()
    u0 = jnp.zeros(neuron.expected_input_shape(), zero[neuron.state_vars[0]].dtype)
    A = jacobian(lambda s: neuron.vector_field(s, u0), zero, neuron.state_vars)
    names = neuron.state_vars
    out = {}
    for i, k in enumerate(names):
        out[k] = -dt * np.asarray(A[i][i], np.float64)
        for j in range(len(names)):
            if j not in (i, i - 1) and np.any(np.asarray(A[i][j]) != 0):
                raise NotImplementedError(
                    f"{type(neuron).__name__}: state variable {k!r} depends on "
                    f"{names[j]!r}; the fixed-point chips run chains of first-order "
                    "variables (LIF, CubaLIF) only."
                )
    return out


# --------------------------------------------------------------------------------- entry point
def _read_quant(src: Any) -> tuple[dict, dict]:
    """Graph metadata and the per-node quantization of a NIR graph (nested nodes refused
    later by the builder)."""
    meta = {k: decode(v) for k, v in dict(getattr(src, "metadata", None) or {}).items()}
    quant: dict = {}
    for name, node in getattr(src, "nodes", {}).items():
        md = getattr(node, "metadata", None) or {}
        if QUANT_KEY in md:
            quant[name] = _plain(md[QUANT_KEY])
    for name, fields in _plain(meta.get(QUANT_KEY, {}) or {}).items():
        quant.setdefault(name, fields)
    return meta, quant


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        import json

        text = value.decode() if isinstance(value, bytes) else value
        try:
            return _plain(json.loads(text))
        except ValueError:
            return text
    if isinstance(value, Mapping):
        return {str(decode(k)): _plain(v) for k, v in value.items()}
    return decode(value)


def fixed_point(
    source: Graph | nir.NIRGraph | str | os.PathLike,
    target: str | FixedTarget | None = None,
    **options: Any,
) -> Graph:
    """The graph as the chip `target` executes it: a `nirjax.Graph` of integer modules.

    **Arguments:**

    - `source`: a .nir file, a `nir.NIRGraph` (both keep per-node quantization metadata), or a
      `nirjax.Graph`.
    - `target`: `"loihi2"`, `"xylo"` or a registered `FixedTarget`; default: the name recorded
      in the graph metadata `"nirjax.target"`.
    - `dt`, and other `nirjax.from_nir` options, when `source` is a file or NIR graph.
    - chip options, e.g. `probe="hardware" | "lava_cpu"` for Loihi 2 (see the target).

    **Returns:** a `nirjax.Graph`; its Input and Output nodes are the source's, its weight and
    neuron nodes (same names) the chip's. Values between nodes are exact integers (in float
    arrays) or spikes; `record` traces each neuron's integer state.
    """
    from_options = {k: options.pop(k) for k in list(options) if k in _FROM_NIR}
    if isinstance(source, (str, os.PathLike)):
        source = read(source)
    if isinstance(source, nir.NIRGraph):
        meta, quant = _read_quant(source)
        graph = from_nir(source, **from_options)
    elif isinstance(source, Graph):
        if from_options:
            raise TypeError(
                f"fixed_point: {sorted(from_options)} apply when reading a NIR graph; for a "
                "nirjax.Graph use graph.with_options(...) first."
            )
        graph = source
        meta, quant = _read_quant(_MetaOnly(graph.metadata.value))
    else:
        raise TypeError(
            f"fixed_point: expected a .nir path, a nir.NIRGraph or a nirjax.Graph, got "
            f"{type(source).__name__}."
        )
    if target is None:
        recorded = meta.get(TARGET_KEY)
        name = recorded.get("name") if isinstance(recorded, Mapping) else recorded
        if name is None:
            raise ValueError(
                f"fixed_point: no target given and the graph records none (metadata "
                f"{TARGET_KEY!r}); pass one of {sorted(FIXED_TARGETS)}."
            )
        target = str(name)
    if isinstance(target, str):
        if target not in FIXED_TARGETS:
            raise ValueError(
                f"fixed_point: unknown target {target!r}; fixed-point execution exists for "
                f"{sorted(FIXED_TARGETS)} (register others with nirjax.register_fixed_target)."
            )
        target = FIXED_TARGETS[target]
    if not isinstance(target, FixedTarget):
        raise TypeError(
            f"fixed_point: target must be a name in {sorted(FIXED_TARGETS)} or a "
            f"nirjax.FixedTarget, got {type(target).__name__} {target!r}."
        )
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            raise NotImplementedError(
                f"{target.name}: node {name!r} is a subgraph; fixed-point execution takes a "
                "flat graph (inline the subgraph's nodes into the parent)."
            )
        if not isinstance(node, (Input, Output, Affine, Linear, Neuron)):
            raise NotImplementedError(
                f"{target.name}: node {name!r} is a {type(node).__name__}; the fixed-point "
                f"executor for {target.name} runs Affine/Linear weights and neurons only. "
                "Remove the node or run the float graph."
            )
    unknown = sorted(set(quant) - set(graph.nodes))
    if unknown:
        raise ValueError(
            f"{target.name}: metadata {QUANT_KEY} names node(s) {unknown} that the graph does "
            f"not have (nodes: {sorted(graph.nodes)})."
        )
    view = GraphView(graph, quant, target.name)
    new = target.convert(view, **options)
    nodes = {**graph.nodes, **new}
    metadata = {**dict(graph.metadata.value), TARGET_KEY: {"name": target.name}}
    return Graph(nodes, graph.edges, options=graph.options, metadata=metadata,
                 dtype=graph.dtype, execution=graph.execution)


_FROM_NIR = {"dt", "discretization", "reset", "input_mode", "cuba_order", "node_options",
             "dtype", "threshold_comparison", "spike_order", "spikes_per_step"}


class _MetaOnly:
    def __init__(self, metadata):
        self.metadata = metadata
        self.nodes = {}
