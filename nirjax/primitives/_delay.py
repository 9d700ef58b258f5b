"""Delay: a per-neuron pure time shift, y(t) = x(t - delay)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
from jaxtyping import Array, Float

from .._limits import check_budget
from .._registry import ImportContext, module_to_nir, nir_to_module
from ._base import Primitive, Shape


def delay_steps(delay, dt: float, rounding: bool, name: str) -> np.ndarray:
    """Per-neuron delays in whole steps; an error where a delay is not a whole number of steps
    (unless `rounding`) or is negative."""
    delay = np.asarray(delay, dtype=np.float64)
    if not np.all(np.isfinite(delay)):
        raise ValueError(f"node {name!r}, field 'delay': must be finite seconds, got {delay}.")
    if np.any(delay / dt > 2**62):
        raise ValueError(
            f"node {name!r}, field 'delay': {delay.max():.6g} s is {delay.max() / dt:.3g} steps "
            f"of dt = {dt} s, too many to buffer. Check the delay's unit (seconds) or the dt."
        )
    if np.any(delay < 0):
        raise ValueError(f"node {name!r}, field 'delay': must be >= 0 seconds, got {delay.min()}.")
    steps = delay / dt
    rounded = np.round(steps)
    off = np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, np.abs(steps))
    if np.any(off) and not rounding:
        idx = np.argwhere(off)[0].tolist() if delay.ndim else []
        raise ValueError(
            f"node {name!r}, field 'delay': {float(delay[tuple(idx)])} s is "
            f"{float(steps[tuple(idx)]):.6g} steps of dt = {dt} s, not a whole number. Choose a dt "
            "that divides every delay, or pass delay_rounding=True to round to the nearest step."
        )
    return rounded.astype(np.int64)


class Delay(Primitive):
    r"""Delay, `y(t) = x(t - d)`, with a per-neuron delay d.

    Discrete update: `y[k] = x[k - round(d / dt)]`, zero before the first input arrives. The
    state is a buffer of the last `max_steps` inputs, newest first.

    **Arguments:**

    - `delay`: per-neuron delay in seconds, with the input's shape.
    - `dt`: the step in seconds.
    - `max_steps`: the longest delay in steps (static; sets the buffer length).
    """

    delay: Float[Array, ...]
    dt: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def _steps(self):
        return jnp.round(jax.lax.stop_gradient(self.delay) / self.dt).astype(jnp.int32)

    def init_state(self, input_shape, dtype):
        shape = np.broadcast_shapes(tuple(self.delay.shape), tuple(input_shape))
        return jnp.zeros((self.max_steps,) + shape, dtype)

    def step(self, state, x):
        x = jnp.broadcast_to(x, state.shape[1:])
        full = jnp.concatenate([x[None], state], axis=0)  # full[i] = x[k - i]
        idx = jnp.broadcast_to(self._steps(), x.shape)[None]
        y = jnp.take_along_axis(full, idx, axis=0)[0]
        return full[: self.max_steps], y

    def run_sequence(self, state, xs, record=False, execution=None):
        # The whole time axis at once: a gather from the buffer followed by the inputs.
        xs = jnp.broadcast_to(xs, xs.shape[:1] + state.shape[1:])
        full = jnp.concatenate([state[::-1], xs], axis=0)  # full[D + k] = x[k]
        t = jnp.arange(xs.shape[0]).reshape((-1,) + (1,) * (xs.ndim - 1))
        ys = jnp.take_along_axis(full, self.max_steps + t - self._steps()[None], axis=0)
        new_state = full[full.shape[0] - self.max_steps :][::-1]
        return new_state, ys, ({} if record else None)

    def observables(self, state) -> dict:
        return {}

    def expected_input_shape(self) -> Shape:
        return tuple(self.delay.shape)

    def options_or(self, default):
        steps = np.asarray(self.delay, dtype=np.float64) / self.dt
        whole = np.all(np.abs(steps - np.round(steps)) <= 1e-6 * np.maximum(1.0, np.abs(steps)))
        return default.replace(dt=self.dt, delay_rounding=default.delay_rounding or not bool(whole))

    def with_options(self, options):
        return _build(self.delay, options, "Delay")


@nir_to_module.register
def _(node: nir.Delay, ctx: ImportContext) -> Delay:
    return _build(ctx.param(node, "delay"), ctx.options, ctx.name)


def _build(delay, options, name: str) -> Delay:
    steps = delay_steps(np.asarray(delay), options.dt, options.delay_rounding, name)
    max_steps = int(steps.max(initial=0))
    check_budget((max_steps, *np.shape(delay)), f"node {name!r}, field 'delay'",
                 f"the buffer of the longest delay ({max_steps} steps of dt = {options.dt} s)",
                 "Check the delay's unit (seconds) or use a larger dt.")
    return Delay(delay, dt=options.dt, max_steps=max_steps)


@module_to_nir.register
def _(module: Delay) -> nir.Delay:
    return nir.Delay(delay=np.asarray(module.delay))
