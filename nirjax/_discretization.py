r"""Discretizations: how a neuron's continuous-time definition becomes a per-step update.

A neuron (`nirjax.Neuron`) states its vector field `f(s, u) = ds/dt` for a state `s` (a dict of
per-neuron arrays) and an input current `u`. A discretization turns that into the update over one
step of `dt` with `u` held constant, the way a diffrax solver steps any term:

- `Euler`: `s <- s + dt f(s, u)`. With the option `cuba_order="current_first"` (the default) the
  state variables are updated one after another in the neuron's `state_vars` order, each seeing
  the already-updated earlier ones (for CubaLI / CubaLIF, I first and v with the new I:
  snnTorch's Synaptic); with `"voltage_first"` all from the old state (plain forward Euler).
  Single-variable neurons are the same either way.
- `Exact`: the exponential integrator `s <- s + \varphi(A\,dt)\,dt\,f(s, u)`, where `A` is the
  Jacobian of `f` with respect to the state and `\varphi(z) = (e^z - 1)/z` (for a matrix, the
  top-right block of `exp([[A dt, I dt], [0, 0]])`). For a field that is affine in the state
  with constant coefficients (every NIR neuron between spikes; the neuron's `linear = True`) this
  is the exact solution over the step, `A` and `\varphi` are computed once per neuron outside the
  time loop, and nothing depends on a special case (CubaLIF with `tau_syn = tau_mem` included).
  For a neuron with `linear = False` (a state-dependent Jacobian, e.g. a gate) the field is
  linearized at the start of each step: exact for piecewise-linear neurons whose pieces switch
  on the grid.

Register a new discretization with `register_discretization`; `Options(discretization=...)`
takes its name or the registered instance. A file records only the name, so the name must say
everything: a discretization with settings registers one instance per setting, each with its
own name.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp


class Discretization(abc.ABC):
    """How a `nirjax.Neuron`'s vector field is stepped over one `dt` with the input held.

    A subclass defines `name` (recorded on export as the option `discretization`), and
    `prepare(neuron, dt)` (coefficients computed once, outside the time loop) and
    `advance(neuron, coeffs, state, u, dt)` (the sub-threshold update of one step). An instance
    compares equal to its name, so `options.discretization == "euler"` reads naturally.
    """

    name: ClassVar[str]

    def prepare(self, neuron: Any, dt: float) -> Any:
        """Per-neuron coefficients, computed once per run outside the time loop."""
        return None

    @abc.abstractmethod
    def advance(self, neuron: Any, coeffs: Any, state: dict, u: Any, dt: float) -> dict:
        """The state after one step of `dt` with input current `u` held (no spike, no reset)."""

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return other == self.name
        if type(other) is not type(self):
            return False
        return not dataclasses.is_dataclass(self) or dataclasses.astuple(
            self) == dataclasses.astuple(other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


def _shaped(new: Any, like: jax.Array) -> jax.Array:
    return jnp.broadcast_to(new, like.shape).astype(like.dtype)


@dataclasses.dataclass(frozen=True, eq=False)
class Euler(Discretization):
    """Forward Euler, `s <- s + dt f(s, u)`, the variables in order under the neuron's option
    `cuba_order="current_first"` (see the module docstring)."""

    name: ClassVar[str] = "euler"

    def advance(self, neuron, coeffs, state, u, dt):
        sequential = neuron.options.cuba_order == "current_first"
        if not sequential or len(state) == 1:
            f = neuron.vector_field(state, u)
            return {k: _shaped(state[k] + dt * f[k], state[k]) for k in neuron.state_vars}
        new = dict(state)
        for k in neuron.state_vars:
            new[k] = _shaped(state[k] + dt * neuron.vector_field(new, u)[k], state[k])
        return new


def jacobian(fn, state: dict, names: tuple[str, ...]) -> list[list[jax.Array]]:
    """`A[i][j] = d fn_i / d s_j` per neuron for a map `fn(state) -> dict` that acts on each
    neuron separately (a vector field, a discrete step), by forward-mode differentiation."""
    rows: dict[str, list] = {k: [] for k in names}
    for j in names:
        tangent = {k: (jnp.ones_like if k == j else jnp.zeros_like)(state[k]) for k in names}
        _, col = jax.jvp(fn, (state,), (tangent,))
        for i in names:
            rows[i].append(jnp.broadcast_to(col[i], state[i].shape))
    return [rows[i] for i in names]


def _field_jacobian(neuron, state, u):
    return jacobian(lambda s: neuron.vector_field(s, u), state, neuron.state_vars)


def phi_dt(A: list[list[jax.Array]], dt: float) -> list[list[jax.Array]]:
    r"""`\varphi(A dt) dt = \int_0^{dt} e^{A s} ds` per neuron, for per-neuron `n x n` matrices
    given as nested lists of arrays."""
    n = len(A)
    if n == 1:
        z = A[0][0] * dt
        small = z == 0
        safe = jnp.where(small, 1.0, z)
        return [[dt * jnp.where(small, 1.0, jnp.expm1(safe) / safe)]]
    shape = jnp.broadcast_shapes(*(a.shape for row in A for a in row))
    mat = jnp.stack([jnp.stack([jnp.broadcast_to(a, shape) for a in row], -1) for row in A], -2)
    eye = jnp.broadcast_to(jnp.eye(n, dtype=mat.dtype), mat.shape)
    top = jnp.concatenate([mat * dt, eye * dt], -1)
    aug = jnp.concatenate([top, jnp.zeros_like(top)], -2)
    block = jax.scipy.linalg.expm(aug)[..., :n, n:]
    return [[block[..., i, j] for j in range(n)] for i in range(n)]


@dataclasses.dataclass(frozen=True, eq=False)
class Exact(Discretization):
    r"""The exponential integrator `s <- s + \varphi(A dt) dt f(s, u)` (see the module
    docstring): the exact solution over the step for neurons whose field is affine in the state
    with constant coefficients."""

    name: ClassVar[str] = "exact"

    def prepare(self, neuron, dt):
        if not neuron.linear:
            return None
        zero = neuron.zero_state()
        return phi_dt(_field_jacobian(neuron, zero, jnp.zeros(())), dt)

    def advance(self, neuron, coeffs, state, u, dt):
        P = coeffs if coeffs is not None else phi_dt(_field_jacobian(neuron, state, u), dt)
        f = neuron.vector_field(state, u)
        names = neuron.state_vars
        return {
            ki: _shaped(state[ki] + sum(P[i][j] * f[kj] for j, kj in enumerate(names)), state[ki])
            for i, ki in enumerate(names)
        }


DISCRETIZATIONS: dict[str, Discretization] = {}


def register_discretization(discretization: Discretization) -> Discretization:
    """Make a discretization available by its `name` (in `Options`, `from_nir` and files)."""
    if not isinstance(discretization, Discretization):
        raise TypeError(
            f"register_discretization: expected a nirjax.Discretization instance, got "
            f"{discretization!r}."
        )
    DISCRETIZATIONS[discretization.name] = discretization
    return discretization


register_discretization(Euler())
register_discretization(Exact())


def as_discretization(value: Any) -> Discretization:
    """A `Discretization` from an instance or a registered name."""
    if isinstance(value, Discretization):
        if DISCRETIZATIONS.get(value.name) != value:
            raise ValueError(
                f"discretization: {value!r} is not the one registered as {value.name!r}; "
                "register it with nirjax.register_discretization (under its own name) so that "
                "an exported file can name it."
            )
        return value
    if isinstance(value, str) and value in DISCRETIZATIONS:
        return DISCRETIZATIONS[value]
    raise ValueError(
        f"discretization: expected one of {sorted(DISCRETIZATIONS)} or a nirjax.Discretization, "
        f"got {value!r}."
    )
