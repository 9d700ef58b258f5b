"""Structural deviations of a platform from its nominal graph, and the graph that expresses them.

A `Structure` says how a platform runs one recorded neuron node, beyond its parameters:

- `latency`: whole steps by which the node's input arrives late (an explicit NIR `Delay` of
  `latency * dt` on the node's input edge, named `"<node>_latency"`): voltage and spikes are
  late;
- `spike_latency`: whole steps by which the node's spikes leave late (a `Delay` on its output
  edges, `"<node>_spike_latency"`): the voltage is on time, the spikes are late;
- `input_mode`: `"current"` (an input value is a current held over the step) or `"impulse"` (it
  is a charge delivered at the start of the step; see `nirjax.Options`). Switching a nominal
  current-reading graph to impulses keeps the charge of one input: an input of 1 held for one
  step is a charge of `dt`, so the neuron's input gain (`r`, or `w_in` for Cuba neurons) is
  multiplied by `dt`;
- `reset`: `"value"` or `"subtract"` (`nirjax.Options.reset`);
- `discretization`: `"euler"` or `"exact"`;
- `probe`: where the recording reads the voltage: `"post"` (after the step's reset, what
  nirjax records) or `"pre"` (before the reset: at a spike step the recorded value is above the
  threshold).

The probe's scale and offset (the recording's units) are not part of the structure: they are
solved in closed form for every candidate (see `training._characterize`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import nir
import numpy as np

import nirjax

# The values each part of the structure is searched over, the first being the nominal one
# (latency 0, post-reset probe; the options' nominal values are the graph's own).
PARTS: dict[str, tuple] = {
    "latency": (0, 1, 2, 3),
    "spike_latency": (0, 1, 2, 3),
    "input_mode": ("current", "impulse"),
    "reset": ("value", "subtract"),
    "discretization": ("euler", "exact"),
    "probe": ("post", "pre"),
}


@dataclasses.dataclass(frozen=True)
class Structure:
    """How a platform runs a recorded neuron node (see the module docstring)."""

    latency: int = 0
    spike_latency: int = 0
    input_mode: str = "current"
    reset: str = "value"
    discretization: str = "euler"
    probe: str = "post"

    def __post_init__(self):
        for part in ("latency", "spike_latency"):
            k = getattr(self, part)
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(
                    f"structure {part}: expected a whole number of steps >= 0, got {k!r}."
                )
        for part in ("input_mode", "reset", "discretization", "probe"):
            if getattr(self, part) not in PARTS[part]:
                raise ValueError(
                    f"structure {part}: expected one of {list(PARTS[part])}, got "
                    f"{getattr(self, part)!r}."
                )

    def describe(self) -> str:
        return (f"latency {self.latency}, spike latency {self.spike_latency}, "
                f"input {self.input_mode}, reset {self.reset}, "
                f"{self.discretization}, probe {self.probe}-reset")

    def changes(self, nominal: Structure) -> int:
        """How many parts differ from `nominal` (latency counts its steps)."""
        return self.latency + self.spike_latency + sum(
            getattr(self, p) != getattr(nominal, p) for p in PARTS if "latency" not in p
        )


def nominal_structure(graph: nirjax.Graph, node: str) -> Structure:
    """The structure the nominal graph states for `node`: no latency, its own options, a
    post-reset probe."""
    o = graph.node(node).options
    disc = o.discretization.name
    if disc not in PARTS["discretization"]:
        raise NotImplementedError(
            f"node {node!r}: discretization {disc!r} is not one characterize searches over "
            f"({list(PARTS['discretization'])})."
        )
    return Structure(0, 0, o.input_mode, o.reset, disc, "post")


def parse_structure(spec: str | Mapping[str, Any] | None) -> dict[str, tuple]:
    """Which parts to search and which to fix.

    `spec` is `"auto"` or `"full"` (search every part; `characterize` stages `"auto"`: the
    timing, probe and input reading at the nominal reset and discretization first, the rest
    only if that leaves the recording unexplained), `"none"` (the nominal structure), or a
    comma-separated list of parts to search and `part=value` to fix
    (`"latency,input_mode=impulse"`; a latency may be a range `latency=0..5`), or a dict
    `{part: value or tuple of values}`. Returns `{part: candidate values}` for the parts that
    are searched or fixed; the parts not named keep their nominal value."""
    if spec is None or spec == "none":
        return {}
    if spec in ("auto", "full"):
        return dict(PARTS)
    if isinstance(spec, Mapping):
        items = spec.items()
    else:
        items = []
        for word in (w.strip() for w in str(spec).split(",")):
            if not word:
                continue
            name, eq, value = word.partition("=")
            items.append((name.strip(), value.strip() if eq else None))
    out: dict[str, tuple] = {}
    for name, value in items:
        if name not in PARTS:
            raise ValueError(
                f"structure: unknown part {name!r}; expected 'auto', 'full', 'none' or parts of "
                f"{list(PARTS)} (optionally part=value), e.g. 'latency,input_mode=impulse'."
            )
        if value is None:
            out[name] = PARTS[name]
        elif isinstance(value, str):
            if name in ("latency", "spike_latency"):
                lo, dots, hi = value.partition("..")
                try:
                    out[name] = tuple(range(int(lo), int(hi) + 1)) if dots else (int(value),)
                except ValueError:
                    raise ValueError(
                        f"structure {name}: expected steps like '{name}=2' or '{name}=0..5', "
                        f"got {value!r}."
                    ) from None
            else:
                if value not in PARTS[name]:
                    raise ValueError(
                        f"structure {name}: expected one of {list(PARTS[name])}, got {value!r}."
                    )
                out[name] = (value,)
        else:
            out[name] = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return out


def candidates(nominal: Structure, search: Mapping[str, tuple]) -> list[Structure]:
    """Every combination of the searched values (the other parts nominal), simplest first."""
    names = list(PARTS)
    values = [search.get(n, (getattr(nominal, n),)) for n in names]
    out = [Structure(**dict(zip(names, combo))) for combo in itertools.product(*values)]
    return sorted(set(out), key=lambda s: (s.changes(nominal), repr(s)))


def input_gain_field(neuron: nirjax.Neuron) -> str | None:
    """The parameter that multiplies a neuron's input (`w_in` for Cuba neurons, else `r`)."""
    for f in ("w_in", "r"):
        if f in type(neuron).parameters:
            return f
    return None


def delay_name(node: str, side: str = "input") -> str:
    """The name of the latency Delay before (`side="input"`) or after (`"output"`) a node."""
    return f"{node}_latency" if side == "input" else f"{node}_spike_latency"


def structured_options(graph: nirjax.Graph, node: str, s: Structure) -> nirjax.Graph:
    """The graph with the options of structure `s` at `node` (`with_options`), and the input gain
    scaled by dt where the input reading changes from current to impulse (or back); no delays."""
    if "/" in node:
        raise NotImplementedError(
            f"characterize: node {node!r} is inside a subgraph; only top-level nodes can be "
            "characterized (flatten the graph first)."
        )
    neuron = graph.node(node)
    g = graph.with_options(node=node, input_mode=s.input_mode, reset=s.reset,
                           discretization=s.discretization)
    before, after = neuron.options.input_mode, s.input_mode
    gain = input_gain_field(neuron)
    if before != after and gain is not None:
        dt = graph.options.dt
        factor = dt if after == "impulse" else 1.0 / dt
        new = g.node(node)
        g = g.replace_nodes({node: dataclasses.replace(
            new, **{gain: jnp.asarray(getattr(new, gain)) * factor})})
    return g


def structured_graph(graph: nirjax.Graph, node: str, s: Structure) -> nirjax.Graph:
    """The graph with structure `s` at `node`: `structured_options`, and NIR `Delay` nodes of
    `s.latency` steps on the node's input edges and `s.spike_latency` steps on its output
    edges."""
    g = structured_options(graph, node, s)
    neuron = graph.node(node)
    dt = graph.options.dt
    if s.latency == 0 and s.spike_latency == 0:
        return g
    ng = nirjax.to_nir(g)
    shape = np.broadcast_shapes(*(jnp.shape(p) for p in neuron.params().values())) or (1,)
    for side, k in (("input", s.latency), ("output", s.spike_latency)):
        if k == 0:
            continue
        name = delay_name(node, side)
        if name in ng.nodes:
            raise ValueError(f"characterize: the graph already has a node {name!r}; rename it.")
        ng.nodes[name] = nir.Delay(delay=np.full(shape, k * dt))
        if side == "input":
            ng.edges = [(a, name if b == node else b) for a, b in ng.edges] + [(name, node)]
        else:
            ng.edges = [(name if a == node else a, b) for a, b in ng.edges] + [(node, name)]
    return nirjax.from_nir(ng, dt=dt)


def input_node(graph: nirjax.Graph, node: str) -> str:
    """The one node that feeds `node` (characterize drives the neuron with its output)."""
    preds = [a for a, b in graph.edges if b == node]
    if len(preds) != 1:
        raise NotImplementedError(
            f"characterize: node {node!r} has {len(preds)} input edges ({preds}); exactly one "
            "is supported (put the inputs through one Affine node)."
        )
    return preds[0]
