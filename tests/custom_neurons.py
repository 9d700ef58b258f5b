"""Two neurons defined outside nirjax, registered through its public API only.

They prove that a neuron is defined once: these classes state parameters, state, vector field,
threshold and reset, and nothing else; every executor, export, fitting and `nirjax info` must
work for them. `conftest.py` imports this module, so they are in the registries in every test.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
import nir
import numpy as np
from jaxtyping import Array, Float

import nirjax


def _types(node):
    shape = np.array(np.shape(node.tau))
    node.input_type = {"input": shape}
    node.output_type = {"output": shape}


@dataclasses.dataclass(eq=False)
class AdaptiveLIFNode(nir.NIRNode):
    """A NIR node type of the user's own: LIF with an adaptation current w."""

    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    tau_w: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        _types(self)


class AdaptiveLIF(nirjax.Neuron):
    r"""`tau dv/dt = v_leak - v - w + r I`, `tau_w dw/dt = -w`; a spike resets v and adds b to w.

    **Arguments:** `tau`, `tau_w` (s, > 0), `r`, `v_leak`, `v_threshold`, `v_reset`, `b`.
    **Returns:** spikes. State: `{"v", "w"}`.
    """

    tau: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    tau_w: Float[Array, ...]
    b: Float[Array, ...]
    parameters: ClassVar = {"tau": "positive", "r": "real", "v_leak": "real",
                            "v_threshold": "real", "v_reset": "real", "tau_w": "positive",
                            "b": "real"}
    state_vars: ClassVar = ("v", "w")
    spiking: ClassVar = True

    def vector_field(self, state, u):
        return {"v": (self.v_leak - state["v"] - state["w"] + self.r * u) / self.tau,
                "w": -state["w"] / self.tau_w}

    def threshold(self, state):
        return state["v"] - self.v_threshold

    def reset(self, state, z):
        state = super().reset(state, z)
        return {**state, "w": state["w"] + self.b * z}


@dataclasses.dataclass(eq=False)
class RefractoryLIFNode(nir.NIRNode):
    """A NIR node type of the user's own: LIF with an absolute refractory period t_ref."""

    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    t_ref: np.ndarray

    def __post_init__(self):
        _types(self)


class RefractoryLIF(nirjax.Neuron):
    r"""LIF whose voltage is held (input ignored) for `t_ref` seconds after each spike:
    `tau dv/dt = g (v_leak - v + r I)`, `dref/dt = -(1 - g)`, `g = [ref <= 0]`; a spike resets v
    and sets `ref = t_ref`. The gate makes the field state-dependent (`linear = False`): the
    exact discretization linearizes it at the start of each step.
    """

    tau: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    t_ref: Float[Array, ...]
    parameters: ClassVar = {"tau": "positive", "r": "real", "v_leak": "real",
                            "v_threshold": "real", "v_reset": "real", "t_ref": "positive"}
    state_vars: ClassVar = ("v", "ref")
    spiking: ClassVar = True
    linear: ClassVar = False

    def vector_field(self, state, u):
        g = (state["ref"] <= 0).astype(state["v"].dtype)
        return {"v": g * (self.v_leak - state["v"] + self.r * u) / self.tau,
                "ref": jnp.broadcast_to(g - 1.0, state["ref"].shape)}

    def threshold(self, state):
        return state["v"] - self.v_threshold

    def reset(self, state, z):
        state = super().reset(state, z)
        return {**state, "ref": state["ref"] * (1.0 - z) + self.t_ref * z}


nirjax.register_neuron(AdaptiveLIF, AdaptiveLIFNode)
nirjax.register_neuron(RefractoryLIF, RefractoryLIFNode)


def adaptive_node(n: int, rng: np.random.Generator) -> AdaptiveLIFNode:
    return AdaptiveLIFNode(
        tau=rng.uniform(0.01, 0.03, n), r=rng.uniform(1.0, 2.0, n), v_leak=np.zeros(n),
        v_threshold=np.ones(n), v_reset=np.zeros(n), tau_w=rng.uniform(0.05, 0.2, n),
        b=rng.uniform(0.1, 0.5, n),
    )


def refractory_node(n: int, rng: np.random.Generator, dt: float) -> RefractoryLIFNode:
    return RefractoryLIFNode(
        tau=rng.uniform(0.01, 0.03, n), r=rng.uniform(1.0, 2.0, n), v_leak=np.zeros(n),
        v_threshold=np.ones(n), v_reset=np.zeros(n),
        t_ref=dt * rng.integers(1, 5, n).astype(np.float64),
    )
