r"""The neuron family (I, IF, LI, LIF, CubaLI, CubaLIF) and the definition every neuron follows.

A neuron is defined once, in continuous time, as NIR defines it: a hybrid system with

- `parameters`: its per-neuron fields and their constraints (`"positive"` or `"real"`);
- `state_vars`: its state variables (`("v",)`, `("I", "v")`, ...);
- `vector_field(state, u)`: `d state / dt` for an input current `u` (affine in `u`);
- `jump(state, a)`: what an input impulse of area `a` does (derived from the field by default:
  `s + a df/du`);
- for a spiking neuron, `threshold(state)` (a spike where it crosses 0, e.g. `v - v_threshold`)
  and `reset(state, z)` (`"value"`: `v <- v_reset`; `"subtract"`: `v <- v - (v_threshold -
  v_reset)`, following `options.reset`);
- for a non-spiking one, `output_var`, the state variable it emits.

Every executor derives what it needs from that: the discrete step (the `Discretization` of the
node's options, see `nirjax._discretization`), the continuous-time solver (field, jump,
threshold event, reset), the associative scan (reset-free linear neurons), teacher forcing and
fitting (parameters, constraints, `spiking`).

**The discrete step** of every neuron, for a per-step input x: with `input_mode="current"` x is a
current held over the step; with `"impulse"` the state first jumps by `jump(state, x)` and then
relaxes with no input. The discretization gives the state at the end of the step; a spiking
neuron then emits `z = H(threshold(state))` (exact forward, surrogate gradient backward) and
applies `reset(state, z)` in the same step. The state starts at zero. Three options change how
the spike is decided, for every neuron alike (`Neuron.spikes` / `Neuron.advance`):
`threshold_comparison` (`>` or `>=`), `spikes_per_step` (`"multi"`: as many spikes as fit,
each subtracted) and `spike_order` (`"before_input"`: decided on the state at the start of the
step, Spyx's order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
from jaxtyping import Array, Float

from .. import _reverse
from .._discretization import jacobian
from .._execution import scan
from .._options import Options
from .._registry import (
    ImportContext,
    as_param,
    check_dtype,
    check_values,
    module_to_nir,
    nir_to_module,
)
from ._base import Primitive, Shape

CONSTRAINTS = ("positive", "real")


class Neuron(Primitive):
    """The definition protocol of a neuron (see the module docstring). Subclass it, declare the
    parameter fields as arrays, set the class variables and write `vector_field` (and
    `threshold` for a spiking neuron); every executor of nirjax then runs it.

    **Class variables:**

    - `parameters`: `{field: "positive" | "real"}`, every per-neuron array field.
    - `state_vars`: the names of the state variables (default `("v",)`).
    - `spiking`: whether the neuron emits spikes (`threshold`, by default `v - v_threshold`, and
      `reset` apply).
    - `output_var`: for a non-spiking neuron, the state variable it outputs (default `"v"`).
    - `linear`: whether the vector field is affine in state and input with constant
      coefficients (True for every NIR neuron; enables the once-per-run exact coefficients and
      the associative scan).
    - `nir_defaults`: values for fields a NIR node may omit (e.g. `v_reset = 0`).

    **Fields:** the parameter arrays, and `options` (a `nirjax.Options`, static).
    """

    options: Options = eqx.field(static=True)
    parameters: ClassVar[Mapping[str, str]]
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool]
    output_var: ClassVar[str] = "v"
    linear: ClassVar[bool] = True
    nir_defaults: ClassVar[Mapping[str, float]] = {}
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return
        annotations = cls.__dict__.get("__annotations__", {})
        for k in ("parameters", "state_vars", "spiking", "output_var", "linear", "nir_defaults"):
            if k in annotations and "ClassVar" not in str(annotations[k]):
                raise TypeError(
                    f"{cls.__name__}.{k} is part of the definition, a class variable: write "
                    f"`{k} = ...` (or annotate it ClassVar), not a field annotated "
                    f"{annotations[k]!r}."
                )
        missing = [k for k in ("parameters", "spiking") if not hasattr(cls, k)]
        params = getattr(cls, "parameters", {})
        bad = {k: c for k, c in params.items() if c not in CONSTRAINTS}
        checks = (
            (missing, f"must set the class variable(s) {missing}"),
            (bad, f"parameters: constraints must be one of {list(CONSTRAINTS)}, got {bad}"),
            (cls.vector_field is Neuron.vector_field, "must define vector_field(state, u)"),
            (getattr(cls, "spiking", False) and cls.threshold is Neuron.threshold
             and "v_threshold" not in params,
             "is spiking: define threshold(state) (or a v_threshold parameter)"),
        )
        for failed, problem in checks:
            if failed:
                raise TypeError(f"{cls.__name__} (a nirjax.Neuron): {problem}.")

    def __check_init__(self):
        for field, constraint in self.parameters.items():
            value = getattr(self, field)
            if not isinstance(value, jax.core.Tracer):
                where = f"{type(self).__name__}.{field}"
                check_dtype(jnp.result_type(value), where)
                check_values(np.asarray(value, np.float64), where,
                             positive=constraint == "positive")

    # ----------------------------------------------------------------- the definition
    def vector_field(self, state: dict, u: Any) -> dict:
        """`d state / dt` for the input current `u` (affine in `u`)."""
        raise NotImplementedError

    def jump(self, state: dict, a: Any) -> dict:
        """The state after an input impulse of area `a`: `s + a df/du` (the field is affine in
        `u`, so this is exact)."""
        ones = jnp.ones_like(jnp.asarray(a))
        _, gain = jax.jvp(lambda u: self.vector_field(state, u), (jnp.zeros_like(ones),), (ones,))
        return {k: state[k] + gain[k] * a for k in self.state_vars}

    def threshold(self, state: dict) -> jax.Array:
        """A spike where this crosses 0 from below (spiking neurons): `v - v_threshold` unless
        overridden."""
        return state["v"] - self.v_threshold

    def reset(self, state: dict, z: Any) -> dict:
        """The state after spikes `z` (0 or 1, differentiable): `options.reset` applied to v,
        `"value"` `v <- v (1 - z) + v_reset z`, `"subtract"` `v <- v - z (v_threshold - v_reset)`.
        Override to reset other variables too (call `super().reset`)."""
        v = state["v"]
        if self.options.reset == "value":
            v = v * (1.0 - z) + self.v_reset * z  # exactly v_reset where z = 1
        else:
            v = v - z * (self.v_threshold - self.v_reset)
        return {**state, "v": v}

    # ----------------------------------------------------------------- derived
    def params(self) -> dict:
        return {f: getattr(self, f) for f in self.parameters}

    def expected_input_shape(self) -> Shape:
        return tuple(np.broadcast_shapes(*(tuple(jnp.shape(p)) for p in self.params().values())))

    def zero_state(self, shape: Shape | None = None, dtype: Any = None) -> dict:
        shape = self.expected_input_shape() if shape is None else shape
        if dtype is None:
            dtype = jnp.result_type(*self.params().values()) if self.parameters else jnp.float32
        return {k: jnp.zeros(shape, dtype) for k in self.state_vars}

    def init_state(self, input_shape, dtype):
        shape = np.broadcast_shapes(self.expected_input_shape(), tuple(input_shape))
        return self.zero_state(shape, dtype)

    def observables(self, state) -> dict:
        return dict(state)

    def prepare(self) -> Any:
        """The discretization's coefficients, once per run (outside the time loop)."""
        return self.options.discretization.prepare(self, self.options.dt)

    def integrate(self, coeffs: Any, state: dict, x: Any) -> dict:
        """One step of input and sub-threshold dynamics: the state before threshold and reset."""
        if self.options.input_mode == "impulse":
            state = self.jump(state, x)
            x = jnp.zeros_like(x)
        return self.options.discretization.advance(self, coeffs, state, x, self.options.dt)

    def spike_count(self, state: dict) -> jax.Array:
        """How many spikes a `spikes_per_step="multi"` neuron emits from `state` (no gradient):
        with `q = (v - v_reset) / (v_threshold - v_reset)`, `floor(q)` under
        `threshold_comparison="greater_equal"` and `ceil(q) - 1` under `"greater"`, at least 0,
        i.e. how many subtractive resets keep `v` at or over (over) the threshold. Override for
        a neuron whose threshold is not `v - v_threshold` or whose reset is not v's."""
        missing = [f for f in ("v_threshold", "v_reset") if not hasattr(self, f)]
        if missing or "v" not in self.state_vars:
            raise NotImplementedError(
                f"{type(self).__name__}: spikes_per_step='multi' counts spikes from v, "
                "v_threshold and v_reset; define spike_count(state) for this neuron."
            )
        q = (state["v"] - self.v_reset) / (self.v_threshold - self.v_reset)
        n = jnp.floor(q) if self.options.threshold_comparison == "greater_equal" else (
            jnp.ceil(q) - 1)
        return jax.lax.stop_gradient(jnp.maximum(n, 0).astype(q.dtype))

    def spikes(self, state: dict) -> jax.Array:
        """The spikes emitted from `state` (spiking neurons): `H(threshold(state))` (exact
        forward, `options.surrogate` backward), with `H(0) = 1` under
        `threshold_comparison="greater_equal"`; under `spikes_per_step="multi"` the forward
        value is `spike_count(state)` and the gradient that of the first spike."""
        g = self.threshold(state)
        z = self.options.surrogate(g)
        if self.options.threshold_comparison == "greater_equal":
            z = z + jax.lax.stop_gradient((g == 0).astype(z.dtype))
        if self.options.spikes_per_step == "multi":
            z = z + jax.lax.stop_gradient(self.spike_count(state) - z)
        return z

    def fire(self, state: dict) -> tuple[dict, Any]:
        """Spike and reset (spiking neurons), or emit `output_var`: `(state, y)`."""
        if not self.spiking:
            return state, state[self.output_var]
        return self._reset_by(self.spikes(state), state)

    def _reset_by(self, z, state: dict) -> tuple[dict, Any]:
        zr = jax.lax.stop_gradient(z) if self.options.detach_reset else z
        return self.reset(state, zr), z

    def advance(self, coeffs: Any, state: dict, x: Any) -> tuple[dict, Any]:
        """One step: `fire(integrate(coeffs, state, x))`; under `spike_order="before_input"`
        (spiking neurons) the spikes are decided on `state` (the start of the step), the input
        is integrated, and the reset is applied to the integrated state."""
        if self.spiking and self.options.spike_order == "before_input":
            return self._reset_by(self.spikes(state), self.integrate(coeffs, state, x))
        return self.fire(self.integrate(coeffs, state, x))

    def _custom_gradient(self, coeffs: Any = None) -> bool:
        """Whether the derived reverse pass (`nirjax._reverse`) runs: `options.gradient ==
        "custom"` and every array of the neuron and its coefficients is floating point."""
        return self.options.gradient == "custom" and _reverse.applies(self, coeffs)

    def step(self, state, x):
        """One step (what a cycle runs): under `options.gradient="custom"` with the reverse
        pass recomputed from the start state and the input (`nirjax._reverse.step_vjp`)."""
        if self._custom_gradient(self.prepare()):
            return _reverse.step_vjp(self, state, x)
        return self.advance(self.prepare(), state, x)

    def run_sequence(self, state, xs, record=False, execution=None, bias=None):
        """The neuron over time. `bias` (optional): a per-step input added to every step's
        input inside the time loop (the graph folds the bias of the Affine node feeding this
        neuron into its scan, so the biased currents are never materialized)."""
        c = self.prepare()  # computed once, outside the time loop
        if execution is not None and execution.associative_scan and self.linear and not (
            self.spiking
        ):
            if bias is not None:
                xs = xs + bias
            states = self._associative(c, state, xs)
            ys = states[self.output_var]
            return jax.tree.map(lambda a: a[-1], states), ys, (states if record else None)
        if self._custom_gradient(c) and not record and not _reverse.forward_mode(
            self, state, xs, bias
        ):
            unroll = 1 if execution is None else execution.unroll
            state, ys = _reverse.sequence_vjp(self, state, xs, unroll, bias)
            return state, ys, None

        def body(carry, x):
            if bias is not None:
                x = x + bias
            if record and self._custom_gradient(c):  # traced states: the per-step rule
                carry, y = self.step(carry, x)
            else:
                carry, y = self.advance(c, carry, x)
            return carry, (y, carry if record else None)

        state, (ys, trace) = scan(body, state, xs, execution)
        return state, ys, trace

    def _associative(self, c, state, xs):
        """All states of a reset-free linear neuron at once: s[k+1] = A s[k] + B[k], with A
        and B read off the node's own step, combined by `lax.associative_scan`. A is a small
        (n x n, n = len(state_vars)) matrix per neuron, so the combine is written out
        elementwise."""
        names = self.state_vars
        zero = jax.tree.map(jnp.zeros_like, state)
        x0 = jnp.zeros_like(xs[0])
        # A[i][j]: response of variable i to a unit of variable j (per neuron; constant in time).
        A = jacobian(lambda s: self.integrate(c, s, x0), zero, names)
        B = jax.vmap(lambda x: self.integrate(c, zero, x))(xs)
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


def register_neuron(cls: type[Neuron], nir_cls: type) -> type[Neuron]:
    """Register a neuron module and its NIR node type in both directions: import reads every
    field of `cls.parameters` from the NIR node (kept exactly as given; `cls.nir_defaults` fill
    omitted ones), export writes them back as keywords of `nir_cls`."""

    def importer(node, ctx: ImportContext):
        return _from_nir_node(cls, node, ctx)

    def exporter(module):
        return nir_cls(**{f: np.asarray(getattr(module, f)) for f in cls.parameters})

    nir_to_module.register(nir_cls, importer)
    module_to_nir.register(cls, exporter)
    return cls


def _from_nir_node(cls, node, ctx: ImportContext):
    raw = {f: getattr(node, f, None) for f in cls.parameters}
    params = {}
    for field, constraint in cls.parameters.items():
        value = raw[field]
        if value is None and field in cls.nir_defaults:
            continue
        params[field] = as_param(value, field, ctx.name, ctx.dtype,
                                 positive=constraint == "positive")
    given = [tuple(p.shape) for p in params.values()]
    for field, constraint in cls.parameters.items():
        if field in params:
            continue
        try:
            shape = np.broadcast_shapes(*given) if given else ()
        except ValueError:
            shape = ()  # the shape check below names the fields
        value = np.full(shape, cls.nir_defaults[field], np.float64)
        params[field] = as_param(value, field, ctx.name, ctx.dtype,
                                 positive=constraint == "positive")
    params = {f: params[f] for f in cls.parameters}
    try:
        np.broadcast_shapes(*(tuple(p.shape) for p in params.values()))
    except ValueError:
        shapes = {f: tuple(p.shape) for f, p in params.items()}
        raise ValueError(
            f"node {ctx.name!r} ({cls.__name__}): parameter shapes {shapes} do not agree; every "
            "per-neuron parameter must have the same shape."
        ) from None
    return cls(**params, options=ctx.options)


# --------------------------------------------------------------------------------- NIR's six
class I(Neuron):  # noqa: E742 - NIR's name
    r"""Integrator, `dv/dt = r I(t)`; the output is v.

    Discrete update: `v <- v + dt r x` (current input; Euler and exact agree) or `v <- v + r x`
    (impulse input).

    **Arguments:** `r` (per neuron), `options`. **Returns:** v, with the input's shape.
    """

    r: Float[Array, ...]
    parameters: ClassVar = {"r": "real"}
    spiking: ClassVar = False

    def vector_field(self, state, u):
        return {"v": self.r * u}


class IF(Neuron):
    r"""Integrate-and-fire, `dv/dt = r I(t)`; spike `z = H(v - v_threshold)`, then reset.

    Discrete update: `v <- v + dt r x` (current) or `v + r x` (impulse); `z = [v > v_threshold]`;
    where z = 1, `v <- v_reset` (reset "value") or `v <- v - (v_threshold - v_reset)` ("subtract").

    **Arguments:** `r`, `v_threshold`, `v_reset` (per neuron), `options`.
    **Returns:** spikes z (0 or 1), with the input's shape.
    """

    r: Float[Array, ...]
    v_threshold: Float[Array, ...]
    v_reset: Float[Array, ...]
    parameters: ClassVar = {"r": "real", "v_threshold": "real", "v_reset": "real"}
    spiking: ClassVar = True
    nir_defaults: ClassVar = {"v_reset": 0.0}

    def vector_field(self, state, u):
        return {"v": self.r * u}


class LI(Neuron):
    r"""Leaky integrator, `tau dv/dt = (v_leak - v) + r I(t)`; the output is v.

    Discrete update, with `v_inf = v_leak + r x`: Euler `v <- v + dt/tau (v_inf - v)`; exact
    `v <- v + (1 - exp(-dt/tau)) (v_inf - v)`. With impulse input, first `v <- v + r x / tau`,
    then the same relaxation towards `v_leak`.

    **Arguments:** `tau` (s, > 0), `r`, `v_leak` (per neuron), `options`.
    **Returns:** v, with the input's shape.
    """

    tau: Float[Array, ...]
    r: Float[Array, ...]
    v_leak: Float[Array, ...]
    parameters: ClassVar = {"tau": "positive", "r": "real", "v_leak": "real"}
    spiking: ClassVar = False

    def vector_field(self, state, u):
        return {"v": (self.v_leak - state["v"] + self.r * u) / self.tau}


class LIF(Neuron):
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
    parameters: ClassVar = {"tau": "positive", "r": "real", "v_leak": "real",
                            "v_threshold": "real", "v_reset": "real"}
    spiking: ClassVar = True
    nir_defaults: ClassVar = {"v_reset": 0.0}

    def vector_field(self, state, u):
        return {"v": (self.v_leak - state["v"] + self.r * u) / self.tau}


def _cuba_field(m, state, u):
    return {
        "I": (m.w_in * u - state["I"]) / m.tau_syn,
        "v": (m.v_leak - state["v"] + m.r * state["I"]) / m.tau_mem,
    }


class CubaLI(Neuron):
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
    parameters: ClassVar = {"tau_syn": "positive", "tau_mem": "positive", "r": "real",
                            "v_leak": "real", "w_in": "real"}
    state_vars: ClassVar = ("I", "v")
    spiking: ClassVar = False
    nir_defaults: ClassVar = {"w_in": 1.0}

    def vector_field(self, state, u):
        return _cuba_field(self, state, u)


class CubaLIF(Neuron):
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
    parameters: ClassVar = {"tau_syn": "positive", "tau_mem": "positive", "r": "real",
                            "v_leak": "real", "v_threshold": "real", "v_reset": "real",
                            "w_in": "real"}
    state_vars: ClassVar = ("I", "v")
    spiking: ClassVar = True
    nir_defaults: ClassVar = {"v_reset": 0.0, "w_in": 1.0}

    def vector_field(self, state, u):
        return _cuba_field(self, state, u)


for _cls, _nir_cls in ((I, nir.I), (IF, nir.IF), (LI, nir.LI), (LIF, nir.LIF),
                       (CubaLI, nir.CubaLI), (CubaLIF, nir.CubaLIF)):
    register_neuron(_cls, _nir_cls)
