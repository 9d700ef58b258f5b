"""Random NIR graphs (DAGs and cyclic graphs of random primitives with per-neuron parameters)."""

from __future__ import annotations

import nir
import numpy as np

KINDS = ("Affine", "Linear", "Scale", "LI", "LIF", "CubaLI", "CubaLIF", "I", "IF", "Delay",
         "Threshold")


def random_node(kind: str, n: int, rng: np.random.Generator, dt: float):
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    if kind == "Affine":
        return nir.Affine(rng.normal(0, 0.8, (n, n)), rng.normal(0, 0.2, n))
    if kind == "Linear":
        return nir.Linear(rng.normal(0, 0.8, (n, n)))
    if kind == "Scale":
        return nir.Scale(u(-2, 2))
    if kind == "LI":
        return nir.LI(tau=u(5 * dt, 30 * dt), r=u(0.5, 2), v_leak=u(-0.1, 0.1))
    if kind == "LIF":
        return nir.LIF(tau=u(5 * dt, 30 * dt), r=u(0.5, 2), v_leak=u(-0.1, 0.1),
                       v_threshold=u(0.2, 0.8), v_reset=u(-0.1, 0.0))
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=u(2 * dt, 10 * dt), tau_mem=u(5 * dt, 30 * dt), r=u(0.5, 2),
                          v_leak=u(-0.1, 0.1), w_in=u(0.5, 1.5))
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=u(2 * dt, 10 * dt), tau_mem=u(5 * dt, 30 * dt), r=u(0.5, 2),
                           v_leak=u(-0.1, 0.1), v_threshold=u(0.2, 0.8), v_reset=u(-0.1, 0.0),
                           w_in=u(0.5, 1.5))
    if kind == "I":
        return nir.I(r=u(0.1, 1.0))
    if kind == "IF":
        return nir.IF(r=u(5, 50), v_threshold=u(0.2, 0.8), v_reset=np.zeros(n))
    if kind == "Delay":
        return nir.Delay(rng.integers(0, 4, n) * dt)
    if kind == "Threshold":
        return nir.Threshold(u(-0.2, 0.5))
    raise ValueError(kind)


def random_graph(rng: np.random.Generator, *, n_nodes: int = 6, n: int = 4, cyclic: bool = True,
                 dt: float = 1e-3, kinds=KINDS) -> nir.NIRGraph:
    """Input(n) -> a chain of random nodes, each also fed by a random earlier node with
    probability 1/2 -> Output; with `cyclic`, one or two edges go back to an ancestor (so each
    closes a cycle). Every node has per-step shape (n,)."""
    nodes = {"in": nir.Input(np.array([n]))}
    edges = []
    names = ["in"]
    for i in range(n_nodes):
        name = f"n{i}"
        nodes[name] = random_node(kinds[rng.integers(len(kinds))], n, rng, dt)
        edges.append((names[-1], name))
        extra = str(rng.choice(names[:-1])) if len(names) > 1 and rng.random() < 0.5 else None
        if extra is not None:
            edges.append((extra, name))
        names.append(name)
    if cyclic:
        for _ in range(int(rng.integers(1, 3))):
            a, b = sorted(rng.choice(len(names) - 1, size=2, replace=False) + 1)
            if (names[b], names[a]) not in edges:
                edges.append((names[b], names[a]))
    nodes["out"] = nir.Output(np.array([n]))
    edges.append((names[-1], "out"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
