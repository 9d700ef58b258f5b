"""Networks from layers: `Sequential`, `Recurrent`, and the functional `Network` (skip
connections, fan-in, several inputs and outputs).

A layer called on a signal adds one node whose input shape is the signal's; its output shape
comes from nirjax's own module for that node (the same code that runs it), so a shape that does
not fit fails at the call that made it, naming the layer. Several signals into one layer
(`layer(a, b)` or `layer(a + b)`) are several edges into its node, which NIR sums.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import nir
import numpy as np

from .._options import Options
from .._registry import ImportContext, nir_to_module
from ._layers import Layer, Linear, Shape

__all__ = ["Signal", "Input", "Network", "Sequential", "Recurrent", "apply"]

_created = itertools.count()  # creation order: auto names and node order follow it


class _Node:
    """One node of a network being built (the NIR node is made again, with the network's seed,
    when the network is exported)."""

    def __init__(self, layer: Layer | None, name: str | None, in_shape: Shape,
                 out_shape: Shape, sources: list[_Node]):
        self.layer, self.name = layer, name
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.sources = sources
        self.order = next(_created)

    def label(self) -> str:
        return repr(self.name) if self.name else f"(unnamed {type(self.layer).__name__})"


class Signal:
    """What a layer returns: the output of one node (or, after `a + b`, the sum of several),
    with its per-step `shape`. Pass it to the next layer; `a + b` is fan-in (NIR sums the
    edges into a node)."""

    def __init__(self, sources: Sequence[_Node]):
        self.sources = tuple(sources)
        shapes = {n.out_shape for n in self.sources}
        if len(shapes) != 1:
            listed = ", ".join(f"{n.label()} {n.out_shape}" for n in self.sources)
            raise ValueError(
                f"fan-in: summed signals must have one shape, received {listed}. Make the "
                "branches end in the same shape (e.g. an Affine to the same size)."
            )
        (self.shape,) = shapes

    def __add__(self, other: Signal) -> Signal:
        if not isinstance(other, Signal):
            return NotImplemented
        return Signal(self.sources + other.sources)

    def __repr__(self) -> str:
        return f"Signal(shape={self.shape}, from={[n.name for n in self.sources]})"


def Input(shape: Sequence[int] | int, *, name: str = "input") -> Signal:
    """An Input node with per-step `shape` (e.g. `(2, 34, 34)` or `12`)."""
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"Input {name!r}: shape must be positive sizes, received {shape}.")
    return Signal([_Node(None, name, shape, shape, [])])


def _infer(layer: Layer, name: str | None, in_shape: Shape) -> Shape:
    """The output shape of the node `layer` makes for `in_shape`, from nirjax's module."""
    label = repr(name) if name else f"(unnamed {type(layer).__name__})"
    node = layer.node(name or "?", in_shape, np.random.default_rng(0))
    module = nir_to_module(node, ImportContext(name or "?", Options(dt=1.0, delay_rounding=True)))
    expected = module.expected_input_shape()
    if expected is not None and not isinstance(expected, dict):
        if module.elementwise:
            try:
                ok = np.broadcast_shapes(tuple(expected), in_shape) == in_shape
            except ValueError:
                ok = False
        else:
            ok = tuple(expected) == in_shape
        if not ok:
            raise ValueError(
                f"layer {label} ({type(node).__name__}): expects per-step input of shape "
                f"{tuple(expected)}, received {in_shape}. Fix the layer's parameters or the "
                "layer before it."
            )
    return tuple(int(d) for d in module.output_shape(in_shape, jnp.float32))


def _node(layer: Layer, name: str | None, signals: Sequence[Signal]) -> _Node:
    sources = [n for s in signals for n in s.sources]
    if not sources:
        raise TypeError(f"layer {name or type(layer).__name__!r}: call it on a signal, e.g. "
                        "layer(nn.Input(shape)).")
    in_shape = Signal(sources).shape
    return _Node(layer, name, in_shape, _infer(layer, name, in_shape), sources)


def apply(layer: Layer, signals: Sequence[Any], name: str | None = None) -> Signal:
    """`layer(*signals)`: add `layer`'s node(s) fed by `signals` (summed); `name` overrides
    `layer.name`."""
    for s in signals:
        if not isinstance(s, Signal):
            raise TypeError(
                f"layer {name or layer.name or type(layer).__name__!r}: expected signals "
                f"(from nn.Input or another layer), received {type(s).__name__}."
            )
    if isinstance(layer, (Sequential, Recurrent)):
        return layer._apply(signals, name or layer.name)
    return Signal([_node(layer, name or layer.name, signals)])


class Recurrent(Layer):
    """A neuron layer with its recurrent weight: `x -> neuron`, `neuron -> weight -> neuron`
    (the cycle runs with a one-step delay on its back edge, as NIR's backends do). As in the
    NIR paper's Braille graph the nodes are `<name>.lif` and `<name>.w_rec`.

    **Arguments:**

    - `neuron`: the neuron layer (e.g. `nn.CubaLIF(...)`).
    - `weight`: the recurrent layer (default `nn.Linear()`, square); it must map the neuron's
      output shape back to its input shape.
    - `neuron_name`, `weight_name`: the node names inside the block.
    """

    kind = "recurrent"

    def __init__(self, neuron: Layer, weight: Layer | None = None, *, name: str | None = None,
                 neuron_name: str = "lif", weight_name: str = "w_rec"):
        super().__init__(name=name)
        self.neuron, self.weight = neuron, weight if weight is not None else Linear()
        self.neuron_name, self.weight_name = neuron_name, weight_name

    def _apply(self, signals, name):
        cell = _node(self.neuron, f"{name}.{self.neuron_name}" if name else None, signals)
        w_name = f"{name}.{self.weight_name}" if name else None
        w = _node(self.weight, w_name, [Signal([cell])])
        if w.out_shape != cell.in_shape:
            raise ValueError(
                f"recurrent block {name or '(unnamed)'!r}: the recurrent weight maps "
                f"{w.in_shape} to {w.out_shape}, but the neuron takes {cell.in_shape}. Give it "
                f"{cell.in_shape[-1]} outputs."
            )
        cell.sources.append(w)
        return Signal([cell])


class Network:
    """A graph from its input and output signals, Keras-style:

        x = nn.Input((12,))
        h = nn.Affine(38, name="fc1")(x)
        y = nn.LIF(tau=1e-3, name="lif2")(nn.Affine(7, name="fc2")(h) + x_skip)
        net = nn.Network(x, y)             # Output node "output"
        graph = net.build(dt=1e-4)         # nirjax.Graph; net.to_nir() the nir.NIRGraph

    `inputs`: one Input signal or several; `outputs`: a signal (Output node `"output"`) or a
    `{name: signal}` dict. Unnamed layers are named by kind and a counter in creation order
    (`affine1`, `lif1`, ...).
    """

    def __init__(self, inputs: Signal | Sequence[Signal],
                 outputs: Signal | Mapping[str, Signal]):
        inputs = [inputs] if isinstance(inputs, Signal) else list(inputs)
        outputs = {"output": outputs} if isinstance(outputs, Signal) else dict(outputs)
        input_nodes = []
        for s in inputs:
            if not isinstance(s, Signal) or len(s.sources) != 1 or s.sources[0].layer is not None:
                raise TypeError("Network: inputs must be signals from nn.Input(...).")
            input_nodes.append(s.sources[0])
        nodes: dict[int, _Node] = {}
        stack = [n for s in outputs.values() for n in s.sources]
        while stack:
            n = stack.pop()
            if id(n) not in nodes:
                nodes[id(n)] = n
                stack.extend(n.sources)
        order = sorted(nodes.values(), key=lambda n: n.order)
        for n in order:
            if n.layer is None and n not in input_nodes:
                raise ValueError(f"Network: the outputs depend on Input {n.name!r}, which is "
                                 "not among `inputs`; add it.")
        for n in input_nodes:
            if id(n) not in nodes:
                raise ValueError(f"Network: Input {n.name!r} is connected to no output.")
        self._name_nodes(order)
        self._order, self._outputs = order, outputs
        names = [n.name for n in order] + list(outputs)
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ValueError(f"Network: node names {dup} are used more than once; give the "
                             "layers distinct names.")

    @staticmethod
    def _name_nodes(order: list[_Node]) -> None:
        taken = {n.name for n in order if n.name}
        counts: dict[str, int] = {}
        for n in order:
            if n.name:
                continue
            kind = n.layer.kind
            while True:
                counts[kind] = counts.get(kind, 0) + 1
                candidate = f"{kind}{counts[kind]}"
                if candidate not in taken:
                    break
            n.name = candidate
            taken.add(candidate)

    @property
    def shapes(self) -> dict[str, tuple[Shape, Shape]]:
        """`{node: (per-step input shape, output shape)}` in creation order."""
        return {n.name: (n.in_shape, n.out_shape) for n in self._order}

    def edges(self) -> list[tuple[str, str]]:
        edges = [(s.name, n.name) for n in self._order for s in n.sources]
        edges += [(s.name, out) for out, sig in self._outputs.items() for s in sig.sources]
        return edges

    def to_nir(self, *, dt: float | None = None, seed: int = 0,
               metadata: Mapping[str, Any] | None = None) -> nir.NIRGraph:
        """The `nir.NIRGraph`, with typed nodes. Weights not given to a layer are drawn from a
        generator seeded by `seed` and the node's name (so adding a layer leaves the others'
        draws unchanged). `dt`, if given, is recorded in the metadata."""
        nodes: dict[str, nir.NIRNode] = {}
        for n in self._order:
            if n.layer is None:
                node = nir.Input(input_type=np.array(n.in_shape))
            else:
                rng = np.random.default_rng([int(seed), zlib.crc32(n.name.encode())])
                node = n.layer.node(n.name, n.in_shape, rng)
                node.input_type = {"input": np.array(n.in_shape)}
                node.output_type = {"output": np.array(n.out_shape)}
            nodes[n.name] = node
        for out, sig in self._outputs.items():
            nodes[out] = nir.Output(output_type=np.array(sig.shape))
        meta = dict(metadata or {})
        if dt is not None:
            meta[Options.metadata_key("dt")] = float(dt)
        return nir.NIRGraph(nodes=nodes, edges=self.edges(), metadata=meta, type_check=False)

    def build(self, *, dt: float, seed: int = 0, **options: Any):
        """The `nirjax.Graph` (`nirjax.from_nir(self.to_nir(dt=dt, seed=seed), dt=dt,
        **options)`; options such as `input_mode="impulse"`, `reset="subtract"`, `dtype`)."""
        from .._import import from_nir

        return from_nir(self.to_nir(dt=dt, seed=seed), dt=dt, **options)

    def __repr__(self) -> str:
        rows = [f"  {name}: {i} -> {o}" for name, (i, o) in self.shapes.items()]
        return "Network(\n" + "\n".join(rows) + "\n)"


class Sequential(Layer):
    """Layers one after the other, like `torch.nn.Sequential` / `eqx.nn.Sequential`:

        net = nn.Sequential(nn.Conv2d(16, 5, stride=2, padding=1), nn.IF(), nn.Flatten(),
                            nn.Affine(10), nn.IF())
        graph = net.build((2, 34, 34), dt=1e-4, input_mode="impulse")

    Nodes are named by `layer.name`, else by their index (`"0"`, `"1"`, ... as in the NIR
    paper's CNN); keyword layers (`Sequential(fc1=nn.Affine(38), lif1=...)`) are named by
    their keyword. The graph is `input -> layers... -> output`. A `Sequential` is also a layer
    of a `Network`; there its nodes are `<name>.<index>` when it has a name.
    """

    kind = "sequential"

    def __init__(self, *layers: Layer, name: str | None = None, **named: Layer):
        super().__init__(name=name)
        items = [(layer.name, layer) for layer in layers] + list(named.items())
        for key, layer in items:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: {key or 'a layer'} is a {type(layer).__name__}, "
                                "not an nn layer.")
        self.layers = items

    def _apply(self, signals, name, index_names: bool = False):
        x = None
        for i, (key, layer) in enumerate(self.layers):
            if key is None and (index_names or name):
                key = str(i)
            full = f"{name}.{key}" if (name and key) else key
            x = apply(layer, signals if x is None else [x], full)
        if x is None:
            raise ValueError(f"Sequential {name or ''}: has no layers.")
        return x

    def network(self, input_shape: Sequence[int] | int, *, input_name: str = "input",
                output_name: str = "output") -> Network:
        """`input -> layers -> output` as a `Network`."""
        x = Input(input_shape, name=input_name)
        return Network(x, {output_name: self._apply([x], None, index_names=True)})

    def to_nir(self, input_shape, *, dt: float | None = None, seed: int = 0,
               **kwargs) -> nir.NIRGraph:
        """The `nir.NIRGraph` for per-step inputs of `input_shape` (see `Network.to_nir`)."""
        return self.network(input_shape).to_nir(dt=dt, seed=seed, **kwargs)

    def build(self, input_shape, *, dt: float, seed: int = 0, **options):
        """The `nirjax.Graph` for per-step inputs of `input_shape` (see `Network.build`)."""
        return self.network(input_shape).build(dt=dt, seed=seed, **options)
