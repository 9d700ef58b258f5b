"""What the design rules look at: a NIR graph with its dt, recorded options, quantization
records and topology (predecessors, successors, cycles)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import nir
import numpy as np

from .._export import to_nir
from .._graph import Graph
from .._import import read
from .._options import Options, decode
from ._target import QUANTIZATION_KEY, TARGET_KEY

NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I)
SPIKING = (nir.LIF, nir.CubaLIF, nir.IF)
WEIGHTS = (nir.Linear, nir.Affine, nir.Conv1d, nir.Conv2d)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(decode(k)): _plain(v) for k, v in value.items()}
    return decode(value)


def quantization(node: nir.NIRNode) -> dict[str, dict[str, Any]]:
    """The node's `nirjax.quantization` record as plain Python values (`{}` if none)."""
    raw = (getattr(node, "metadata", None) or {}).get(QUANTIZATION_KEY) or {}
    return _plain(raw)


def recorded_target(graph: nir.NIRGraph) -> dict[str, Any] | None:
    """The graph's `nirjax.target` record (None if it was not quantized for a target)."""
    raw = (getattr(graph, "metadata", None) or {}).get(TARGET_KEY)
    return None if raw is None else _plain(raw)


@dataclasses.dataclass
class GraphView:
    """A flat NIR graph prepared for design rules.

    - `nodes`, `edges`: the NIR graph's (edges as `(src, dst)` node names).
    - `dt`: the recorded time step (`nirjax_dt`), or None.
    - `options`: per node, the dynamics options that apply to it (graph defaults, the
      recorded graph options, then the node's own).
    """

    graph: nir.NIRGraph
    nodes: dict[str, nir.NIRNode]
    edges: list[tuple[str, str]]
    dt: float | None
    options: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, graph: nir.NIRGraph | Graph | str | os.PathLike, dt: float | None = None):
        if isinstance(graph, Graph):
            graph = to_nir(graph)
        elif isinstance(graph, (str, os.PathLike)):
            graph = read(graph)
        if not isinstance(graph, nir.NIRGraph):
            raise TypeError(f"nirjax.check: expected a nir.NIRGraph, a nirjax.Graph or a .nir "
                            f"path, got {type(graph).__name__}")
        nested = [k for k, n in graph.nodes.items() if isinstance(n, nir.NIRGraph)]
        if nested:
            raise NotImplementedError(
                f"nirjax.check: node(s) {nested} are nested subgraphs; the design rules read a "
                "flat graph: inline the subgraphs into the top graph first")
        top = Options.from_metadata(graph.metadata, "graph metadata")
        defaults = {f.name: f.default for f in dataclasses.fields(Options)
                    if f.default is not dataclasses.MISSING}
        options = {}
        for k, n in graph.nodes.items():
            own = Options.from_metadata(getattr(n, "metadata", None), f"node {k!r}")
            options[k] = {**defaults, **top, **own}
        edges = [(str(a).split(".")[0], str(b).split(".")[0]) for a, b in graph.edges]
        rec_dt = top.get("dt")
        return cls(graph, dict(graph.nodes), edges, dt if dt is not None else rec_dt, options)

    # ---------------------------------------------------------------- topology
    def preds(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def succs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def of_type(self, *types) -> list[str]:
        return [k for k, n in self.nodes.items() if isinstance(n, types)]

    @property
    def inputs(self) -> list[str]:
        return self.of_type(nir.Input)

    @property
    def outputs(self) -> list[str]:
        return self.of_type(nir.Output)

    @property
    def neurons(self) -> list[str]:
        return self.of_type(*NEURONS)

    @property
    def weights(self) -> list[str]:
        return self.of_type(*WEIGHTS)

    def recurrent(self, name: str) -> bool:
        """Whether `name` lies on a cycle (reaches itself through the edges)."""
        seen, stack = set(), list(self.succs(name))
        while stack:
            k = stack.pop()
            if k == name:
                return True
            if k not in seen:
                seen.add(k)
                stack += self.succs(k)
        return False

    def width(self, name: str) -> int:
        """The number of channels of an Input / Output node (product of its shape)."""
        node = self.nodes[name]
        t = node.input_type if isinstance(node, nir.Output) else node.output_type
        shape = next(iter(t.values())) if isinstance(t, Mapping) and t else t
        return int(np.prod(np.asarray(shape))) if shape is not None else 0

    def size(self, name: str) -> int:
        """The number of neurons of a neuron node (size of its first parameter array)."""
        node = self.nodes[name]
        for f in ("tau", "tau_mem", "r", "v_threshold"):
            v = getattr(node, f, None)
            if v is not None:
                return int(np.size(v))
        return 0

    def feeding_weights(self, name: str) -> list[str]:
        """The weight nodes whose output goes into `name`."""
        return [p for p in self.preds(name) if isinstance(self.nodes[p], WEIGHTS)]

    def quantization(self, name: str) -> dict[str, dict[str, Any]]:
        return quantization(self.nodes[name])
