"""What the mismatch fit asks of a node: which parameters it can fit, which must stay positive,
whether it is a neuron, whether it spikes, and how a spiking neuron resets under teacher forcing.

The only place in the mismatch code that reads tables keyed by class or field name.
"""

from __future__ import annotations

import nirjax

NEURON_FIELDS = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in")
WEIGHT_FIELDS = ("weight", "gain")
FIELDS = NEURON_FIELDS + WEIGHT_FIELDS
POSITIVE = ("tau", "tau_syn", "tau_mem")

# The spiking neurons, each with the non-spiking neuron of the same sub-threshold dynamics (same
# parameter names, same state).
SUBTHRESHOLD: dict[type, type] = {nirjax.IF: nirjax.I, nirjax.LIF: nirjax.LI,
                                  nirjax.CubaLIF: nirjax.CubaLI}


def is_neuron(node) -> bool:
    return hasattr(node, "_fields")


def is_spiking(node) -> bool:
    return type(node) in SUBTHRESHOLD


def fittable_fields(node) -> tuple[str, ...]:
    """The parameters of `node` that `fit_mismatch` can fit (`gain`: a per-row weight gain)."""
    if isinstance(node, (nirjax.Affine, nirjax.Linear)):
        return WEIGHT_FIELDS
    return tuple(f for f in NEURON_FIELDS if f in getattr(node, "_fields", ()))


def positive_fields(node) -> tuple[str, ...]:
    """The fittable parameters of `node` that must stay positive (time constants)."""
    return tuple(f for f in fittable_fields(node) if f in POSITIVE)


def subthreshold(node):
    """The spiking neuron `node` without threshold and reset: same parameters and options."""
    cls = SUBTHRESHOLD[type(node)]
    return cls(**{f: getattr(node, f) for f in cls._fields}, options=node.options)


def reset(node, v_pre, s):
    """The membrane voltage of the spiking `node` after spikes `s` (0 or 1) from the pre-reset
    voltage `v_pre`, as its reset option says ("value" or "subtract")."""
    if node.options.reset == "value":
        return v_pre * (1.0 - s) + node.v_reset * s
    return v_pre - s * (node.v_threshold - node.v_reset)
