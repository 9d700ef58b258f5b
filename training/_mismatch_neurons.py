"""What the mismatch fit asks of a node, read from the node's own definition (`nirjax.Neuron`):
which parameters it can fit, which must stay positive, whether it spikes. Weight matrices
(Affine, Linear) fit their `weight` or a per-row `gain`."""

from __future__ import annotations

import nirjax

WEIGHT_FIELDS = ("weight", "gain")


def is_neuron(node) -> bool:
    return isinstance(node, nirjax.Neuron)


def is_spiking(node) -> bool:
    return is_neuron(node) and node.spiking


def fittable_fields(node) -> tuple[str, ...]:
    """The parameters of `node` that `fit_mismatch` can fit (`gain`: a per-row weight gain)."""
    if isinstance(node, (nirjax.Affine, nirjax.Linear)):
        return WEIGHT_FIELDS
    return tuple(node.parameters) if is_neuron(node) else ()


def positive_fields(node) -> tuple[str, ...]:
    """The fittable parameters of `node` that must stay positive (its definition says so)."""
    if not is_neuron(node):
        return ()
    return tuple(f for f, c in node.parameters.items() if c == "positive")


def graph_fields(graph: nirjax.Graph) -> tuple[str, ...]:
    """Every fittable field name of the graph's nodes, sorted."""
    return tuple(sorted({f for _, n in graph.walk() for f in fittable_fields(n)}))


def known_fields() -> tuple[str, ...]:
    """Every parameter name of the registered neurons, and the weight fields, sorted."""
    neurons = [c for c in nirjax.module_to_nir.registry
               if isinstance(c, type) and issubclass(c, nirjax.Neuron)]
    return tuple(sorted({f for c in neurons for f in c.parameters} | set(WEIGHT_FIELDS)))
