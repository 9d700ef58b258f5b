"""The neuron family: I, IF, LI, LIF, CubaLI, CubaLIF.

Every neuron is stateful, keeps its parameters per neuron exactly as given, and steps NIR's
continuous-time equation with the node's `Options` (discretization, reset, input mode, order of
the current and voltage updates, surrogate, reset detachment). In all of them a per-step input x
is, with `input_mode="current"`, a current held constant over the step; with `"impulse"`, the
area of a Dirac pulse at the start of the step. A spike is emitted where the *updated* voltage
exceeds `v_threshold`, and the reset is applied in the same step. The state starts at zero.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
from jaxtyping import Array, Float

from .._execution import scan
from .._options import Options
from .._registry import ImportContext, as_param, module_to_nir, nir_to_module
from ._base import Primitive, Shape


def _spike_and_reset(v, v_threshold, v_reset, options: Options):
    z = options.surrogate(v - v_threshold)
    zr = jax.lax.stop_gradient(z) if options.detach_reset else z
    if options.reset == "value":
        v = v * (1.0 - zr) + v_reset * zr  # exactly v_reset where z = 1, v where z = 0
    else:
        v = v - zr * (v_threshold - v_reset)
    return z, v


def _relax(v, target, a, d, options: Options):
    """One step of `tau dv/dt = target - v` with a constant target: Euler `v + a (target - v)`
    with `a = dt / tau`, or exact `target + (v - target) d` with `d = exp(-dt / tau)`."""
    if options.discretization == "euler":
        return v + a * (target - v)
    return target + (v - target) * d


class _Neuron(Primitive):
    options: Options = eqx.field(static=True)
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True
    _state_vars: ClassVar[tuple[str, ...]] = ("v",)
    _fields: ClassVar[tuple[str, ...]] = ()
    linear: ClassVar[bool] = False  # reset-free affine dynamics (I, LI, CubaLI)

    def __check_init__(self):
        for field in self._fields:
            value = getattr(self, field)
            if isinstance(value, jax.core.Tracer):
                continue
            arr = np.asarray(value)
            if not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{type(self).__name__}.{field}: contains NaN or infinite values; "
                    "pass finite per-neuron parameters."
                )
            if field in _POSITIVE and not np.all(arr > 0):
                raise ValueError(
                    f"{type(self).__name__}.{field}: must be > 0 (seconds), got min "
                    f"{arr.min()}; time constants must be positive."
                )

    def _params(self) -> dict:
        return {f: getattr(self, f) for f in self._fields}

    def expected_input_shape(self) -> Shape:
        return tuple(np.broadcast_shapes(*(tuple(p.shape) for p in self._params().values())))

    def init_state(self, input_shape, dtype):
        shape = np.broadcast_shapes(self.expected_input_shape(), tuple(input_shape))
        return {name: jnp.zeros(shape, dtype) for name in self._state_vars}

    def observables(self, state) -> dict:
        return dict(state)

    def _coefficients(self) -> dict:
        return {}

    def _advance(self, c: dict, state: dict, x):
        raise NotImplementedError

    def step(self, state, x):
        return self._advance(self._coefficients(), state, x)

    def run_sequence(self, state, xs, record=False, execution=None):
        c = self._coefficients()  # computed once, outside the time loop
        if execution is not None and execution.associative_scan and self.linear:
            states = self._associative(c, state, xs)
            ys = states["v"]
            return jax.tree.map(lambda a: a[-1], states), ys, (states if record else None)

        def body(carry, x):
            carry, y = self._advance(c, carry, x)
            return carry, (y, carry if record else None)

        state, (ys, trace) = scan(body, state, xs, execution)
        return state, ys, trace

    def _associative(self, c, state, xs):
        """All states of a reset-free (affine) neuron at once: s[k+1] = A s[k] + B[k], with A
        and B read off the node's own step, combined by `lax.associative_scan`. A is a small
        (at most 2 x 2) matrix per neuron, so the combine is written out elementwise."""
        names = self._state_vars
        zero = jax.tree.map(jnp.zeros_like, state)
        x0 = jnp.zeros_like(xs[0])

        def update(s, x):
            return self._advance(c, s, x)[0]

        base = update(zero, x0)
        # A[i][j]: response of variable i to a unit of variable j (per neuron; constant in time).
        A = [[update({**zero, nj: jnp.ones_like(zero[nj])}, x0)[ni] - base[ni] for nj in names]
             for ni in names]
        B = jax.vmap(lambda x: update(zero, x))(xs)
        B = [B[ni].at[0].add(sum(A[i][j] * state[nj] for j, nj in enumerate(names)))
             for i, ni in enumerate(names)]
        T, n = xs.shape[0], len(names)
        As = [[jnp.broadcast_to(A[i][j], (T,) + A[i][j].shape) for j in range(n)] for i in range(n)]

        def combine(first, second):
            (a1, b1), (a2, b2) = first, second
            a = [[sum(a2[i][m] * a1[m][j] for m in range(n)) for j in range(n)] for i in range(n)]
            b = [sum(a2[i][m] * b1[m] for m in range(n)) + b2[i] for i in range(n)]
            return a, b

        _, S = jax.lax.associative_scan(combine, (As, B))
        return {ni: S[i] for i, ni in enumerate(names)}


def _integrate(v, r, x, options: Options):
    """`dv/dt = r I`: `v + dt r x` for a held current (Euler and exact agree), `v + r x` for an
    impulse."""
    if options.input_mode == "impulse":
        return v + r * x
    return v + options.dt * r * x


class I(_Neuron):  # noqa: E742 - NIR's name
    r"""Integrator, `dv/dt = r I(t)`; the output is v.

    Discrete update: `v <- v + dt r x` (current input; exact for a held current) or
    `v <- v + r x` (impulse input).

    **Arguments:** `r` (per neuron), `options`. **Returns:** v, with the input's shape.
    """

    r: Float[Array, ...]
    _fields: ClassVar[tuple[str, ...]] = ("r",)
    linear: ClassVar[bool] = True

    def _advance(self, c, state, x):
        v = _integrate(state["v"], self.r, x, self.options)
        return {"v": v}, v


class IF(_Neuron):
    r"""Integrate-and-fire, `dv/dt = r I(t)`; spike `z = H(v - v_threshold)`, then reset.

    Discrete update: `v <- v + dt r x` (current) or `v + r x` (impulse); `z = [v > v_threshold]`;
    where z = 1, `v <- v_reset` (reset "value") or `v <- v - (v_threshold - v_reset)` ("subtract").

    **Arguments:** `r`, `v_threshold`, `v_reset` (per neuron), `options`.
    **Returns:** spikes z (0 or 1), with the input's shape.
    """

    r: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    _fields: ClassVar[tuple[str, ...]] = ("r", "v_threshold", "v_reset")

    def _advance(self, c, state, x):
        v = _integrate(state["v"], self.r, x, self.options)
        z, v = _spike_and_reset(v, self.v_threshold, self.v_reset, self.options)
        return {"v": v}, z


def _leaky_input(v, x, r, tau, v_leak, options: Options):
    """The target of the relaxation and the voltage after an input impulse."""
    if options.input_mode == "impulse":
        return v + r * x / tau, v_leak
    return v, v_leak + r * x


class LI(_Neuron):
    r"""Leaky integrator, `tau dv/dt = (v_leak - v) + r I(t)`; the output is v.

    Discrete update, with `v_inf = v_leak + r x`: Euler `v <- v + dt/tau (v_inf - v)`; exact
    `v <- v_inf + (v - v_inf) exp(-dt/tau)`. With impulse input, first `v <- v + r x / tau`, then
    the same relaxation towards `v_leak`.

    **Arguments:** `tau` (s, > 0), `r`, `v_leak` (per neuron), `options`.
    **Returns:** v, with the input's shape.
    """

    tau: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    _fields: ClassVar[tuple[str, ...]] = ("tau", "r", "v_leak")
    linear: ClassVar[bool] = True

    def _coefficients(self):
        return {"a": self.options.dt / self.tau, "d": jnp.exp(-self.options.dt / self.tau)}

    def _advance(self, c, state, x):
        v, target = _leaky_input(state["v"], x, self.r, self.tau, self.v_leak, self.options)
        v = _relax(v, target, c["a"], c["d"], self.options)
        return {"v": v}, v


class LIF(_Neuron):
    r"""Leaky integrate-and-fire, `tau dv/dt = (v_leak - v) + r I(t)`; spike
    `z = H(v - v_threshold)`, then reset.

    Discrete update: the LI update of v (Euler `v <- v + dt/tau (v_leak - v + r x)` by default,
    or exact), then `z = [v > v_threshold]` and, where z = 1, `v <- v_reset` (reset "value") or
    `v <- v - (v_threshold - v_reset)` ("subtract").

    **Arguments:** `tau` (s, > 0), `r`, `v_leak`, `v_threshold`, `v_reset` (per neuron),
    `options`. **Returns:** spikes z (0 or 1), with the input's shape.
    """

    tau: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    _fields: ClassVar[tuple[str, ...]] = ("tau", "r", "v_leak", "v_threshold", "v_reset")

    def _coefficients(self):
        return {"a": self.options.dt / self.tau, "d": jnp.exp(-self.options.dt / self.tau)}

    def _advance(self, c, state, x):
        v, target = _leaky_input(state["v"], x, self.r, self.tau, self.v_leak, self.options)
        v = _relax(v, target, c["a"], c["d"], self.options)
        z, v = _spike_and_reset(v, self.v_threshold, self.v_reset, self.options)
        return {"v": v}, z


def _cuba_coefficients(tau_syn, tau_mem, dt):
    ds, dm = jnp.exp(-dt / tau_syn), jnp.exp(-dt / tau_mem)
    # Response of v to a unit of decaying current I: tau_syn / (tau_syn - tau_mem) (ds - dm),
    # whose limit for tau_syn = tau_mem is (dt / tau_mem) dm.
    diff = tau_syn - tau_mem
    close = jnp.abs(diff) <= 1e-6 * tau_mem
    safe = jnp.where(close, 1.0, diff)
    k = jnp.where(close, dt / tau_mem * dm, tau_syn / safe * (ds - dm))
    return {"as": dt / tau_syn, "am": dt / tau_mem, "ds": ds, "dm": dm, "k": k}


def _cuba_advance(c, state, x, tau_syn, r, v_leak, w_in, options: Options):
    i, v = state["I"], state["v"]
    if options.input_mode == "impulse":
        i, i_inf = i + w_in * x / tau_syn, jnp.zeros_like(i)
    else:
        i_inf = w_in * x
    if options.discretization == "exact":
        i_new = i_inf + (i - i_inf) * c["ds"]
        v_inf = v_leak + r * i_inf
        v_new = v_inf + (v - v_inf) * c["dm"] + r * (i - i_inf) * c["k"]
    elif options.cuba_order == "current_first":
        i_new = i + c["as"] * (i_inf - i)
        v_new = v + c["am"] * (v_leak - v + r * i_new)
    else:
        v_new = v + c["am"] * (v_leak - v + r * i)
        i_new = i + c["as"] * (i_inf - i)
    return i_new, v_new


class CubaLI(_Neuron):
    r"""Current-based leaky integrator: `tau_syn dI/dt = -I + w_in S(t)`,
    `tau_mem dv/dt = (v_leak - v) + r I`; the output is v.

    Discrete update under Euler, "current_first" (default, snnTorch's Synaptic):
    `I <- I + dt/tau_syn (w_in x - I)`, then `v <- v + dt/tau_mem (v_leak - v + r I)` with the new
    I; "voltage_first" uses the old I. Under "exact", the joint linear system is solved over the
    step with x held (the order does not apply). Impulse input first adds `w_in x / tau_syn` to I.

    **Arguments:** `tau_syn`, `tau_mem` (s, > 0), `r`, `v_leak`, `w_in` (per neuron), `options`.
    **Returns:** v, with the input's shape. State: `{"I", "v"}`.
    """

    tau_syn: Float[Array, ...]
    tau_mem: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    w_in: Float[Array, ...]
    _state_vars: ClassVar[tuple[str, ...]] = ("I", "v")
    _fields: ClassVar[tuple[str, ...]] = ("tau_syn", "tau_mem", "r", "v_leak", "w_in")
    linear: ClassVar[bool] = True

    def _coefficients(self):
        return _cuba_coefficients(self.tau_syn, self.tau_mem, self.options.dt)

    def _advance(self, c, state, x):
        i, v = _cuba_advance(
            c, state, x, self.tau_syn, self.r, self.v_leak, self.w_in, self.options
        )
        return {"I": i, "v": v}, v


class CubaLIF(_Neuron):
    r"""Current-based leaky integrate-and-fire: `tau_syn dI/dt = -I + w_in S(t)`,
    `tau_mem dv/dt = (v_leak - v) + r I`; spike `z = H(v - v_threshold)`, then reset of v.

    Discrete update: the CubaLI update (see `CubaLI`), then `z = [v > v_threshold]` and, where
    z = 1, `v <- v_reset` ("value") or `v <- v - (v_threshold - v_reset)` ("subtract").

    **Arguments:** `tau_syn`, `tau_mem` (s, > 0), `r`, `v_leak`, `v_threshold`, `v_reset`, `w_in`
    (per neuron), `options`. **Returns:** spikes z. State: `{"I", "v"}`.
    """

    tau_syn: Float[Array, ...]
    tau_mem: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    w_in: Float[Array, ...]
    _state_vars: ClassVar[tuple[str, ...]] = ("I", "v")
    _fields: ClassVar[tuple[str, ...]] = (
        "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in",
    )

    def _coefficients(self):
        return _cuba_coefficients(self.tau_syn, self.tau_mem, self.options.dt)

    def _advance(self, c, state, x):
        i, v = _cuba_advance(
            c, state, x, self.tau_syn, self.r, self.v_leak, self.w_in, self.options
        )
        z, v = _spike_and_reset(v, self.v_threshold, self.v_reset, self.options)
        return {"I": i, "v": v}, z


_POSITIVE = {"tau", "tau_syn", "tau_mem"}


def _convert(cls, node, ctx: ImportContext):
    params = {}
    for field in cls._fields:
        value = getattr(node, field, None)
        if value is None and field == "v_reset":  # NIR's default reset potential is 0
            value = np.zeros_like(np.asarray(node.v_threshold, dtype=np.float64))
        if value is None and field == "w_in":  # NIR's default input weight is 1
            value = np.ones_like(np.asarray(node.v_leak, dtype=np.float64))
        params[field] = as_param(value, field, ctx.name, ctx.dtype, positive=field in _POSITIVE)
    try:
        np.broadcast_shapes(*(tuple(p.shape) for p in params.values()))
    except ValueError:
        shapes = {f: tuple(p.shape) for f, p in params.items()}
        raise ValueError(
            f"node {ctx.name!r} ({cls.__name__}): parameter shapes {shapes} do not agree; every "
            "per-neuron parameter must have the same shape."
        ) from None
    return cls(**params, options=ctx.options)


for _cls, _nir_cls in ((I, nir.I), (IF, nir.IF), (LI, nir.LI), (LIF, nir.LIF),
                       (CubaLI, nir.CubaLI), (CubaLIF, nir.CubaLIF)):

    def _importer(node, ctx: ImportContext, _cls=_cls):
        return _convert(_cls, node, ctx)

    def _exporter(module, _nir_cls=_nir_cls):
        return _nir_cls(**{f: np.asarray(getattr(module, f)) for f in module._fields})

    nir_to_module.register(_nir_cls, _importer)
    module_to_nir.register(_cls, _exporter)
