r"""Teacher forcing: a spiking neuron whose resets happen at recorded spike times.

When the membrane trace of a spiking node is recorded, its spike times are data. Fitting then
works best if the model neuron resets exactly where the chip did instead of where the model's own
(still wrong) parameters make it cross threshold: the membrane trace between spikes becomes a
smooth function of the parameters, and a wrong threshold no longer scrambles the whole trace.

`Forced` wraps any spiking `nirjax.Neuron` and a recorded spike train `s_t` of one sample. Each
step runs the neuron's own sub-threshold step (`neuron.integrate`: input and dynamics, with its
parameters and options), giving the pre-reset voltage `v_pre`, then applies the neuron's own
`reset` with the *recorded* spike instead of `H(threshold)` (for NIR's neurons: reset "value"
`v <- v_pre (1 - s_t) + v_reset s_t`, "subtract" `v <- v_pre - s_t (v_threshold - v_reset)`; an
adaptive neuron also adds its jump to the adaptation variable).

The output is `s_t`, so nodes downstream of a forced node receive the recorded spikes. `v_pre` is
an observable: the threshold is then fitted by asking that `v_pre > v_threshold` exactly on the
recorded spike steps (see `threshold_consistency`).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

import nirjax

from ._mismatch_neurons import is_spiking


class Forced(nirjax.Primitive):
    """A spiking neuron driven to reset at recorded spike times (one sample).

    **Arguments:**

    - `neuron`: a spiking `nirjax.Neuron` (IF, LIF, CubaLIF or one of your own) with a state
      variable `v`.
    - `spikes`: the recorded spikes of one sample, `(T, *neuron_shape)`, 0 or 1.

    **State:** `{"inner": the neuron's state, "t": step index, "v_pre": pre-reset voltage}`.
    **Observables:** the neuron's (`v`, and `I` for CubaLIF) and `v_pre`.
    """

    neuron: nirjax.Primitive
    spikes: Float[Array, "T ..."]
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def __check_init__(self):
        if not is_spiking(self.neuron):
            raise TypeError(
                f"Forced: teacher forcing needs a spiking nirjax.Neuron, got "
                f"{type(self.neuron).__name__}."
            )

    def expected_input_shape(self):
        return self.neuron.expected_input_shape()

    def init_state(self, input_shape, dtype):
        inner = self.neuron.init_state(input_shape, dtype)
        return {"inner": inner, "t": jnp.zeros((), jnp.int32), "v_pre": jnp.zeros_like(inner["v"])}

    def observables(self, state) -> dict:
        return {**state["inner"], "v_pre": state["v_pre"]}

    def _advance(self, c, state, x):
        pre = self.neuron.integrate(c, state["inner"], x)  # the neuron's own sub-threshold step
        s = jax.lax.dynamic_index_in_dim(self.spikes, state["t"], keepdims=False)
        s = s.astype(pre["v"].dtype)
        inner = self.neuron.reset(pre, s)  # its own reset, at the recorded spikes
        return {"inner": inner, "t": state["t"] + 1, "v_pre": pre["v"]}, s

    def step(self, state, x):
        return self._advance(self.neuron.prepare(), state, x)

    def run_sequence(self, state, xs, record=False, execution=None):
        c = self.neuron.prepare()  # once, outside the time loop

        def body(carry, x):
            carry, y = self._advance(c, carry, x)
            return carry, (y, self.observables(carry) if record else None)

        state, (ys, trace) = nirjax.scan(body, state, xs, execution)
        return state, ys, trace


def threshold_consistency(v_pre, spikes, v_threshold) -> Float[Array, ""]:
    r"""How far a threshold is from being consistent with recorded spikes.

    $$L = \mathrm{mean}_{t,n}\big(s_{t,n}\,[\theta_n - v^{pre}_{t,n}]_+^2
    + (1 - s_{t,n})\,[v^{pre}_{t,n} - \theta_n]_+^2\big),$$

    zero exactly when every recorded spike step has `v_pre >= theta` and every other step
    `v_pre <= theta`. `v_pre` is taken as data (no gradient), so the term moves only the threshold.
    """
    v_pre = jax.lax.stop_gradient(v_pre)
    s = spikes.astype(v_pre.dtype)
    above = jnp.maximum(v_threshold - v_pre, 0.0)
    below = jnp.maximum(v_pre - v_threshold, 0.0)
    return jnp.mean(s * above**2 + (1.0 - s) * below**2)


def threshold_interval(v_pre, spikes):
    """Per neuron, the interval of thresholds consistent with the recorded spikes:
    `(max of v_pre over non-spike steps, min of v_pre over spike steps)`; `v_pre` and `spikes`
    have shape `(S, T, *shape)`. A neuron that never spikes has upper end `+inf`."""
    s = spikes > 0.5
    lo = jnp.max(jnp.where(s, -jnp.inf, v_pre), axis=(0, 1))
    hi = jnp.min(jnp.where(s, v_pre, jnp.inf), axis=(0, 1))
    return lo, hi


def infer_spikes(v: jax.Array, node) -> jax.Array:
    """Spike steps from a recorded trace `(S, T, ...)`: a drop of more than half of
    |v_threshold - v_reset| in one step (a reset)."""
    jump = jnp.abs(jnp.asarray(node.v_threshold) - jnp.asarray(node.v_reset))
    prev = jnp.concatenate([jnp.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
    return (prev - v > 0.5 * jump).astype(v.dtype)


__all__ = ["Forced", "infer_spikes", "threshold_consistency", "threshold_interval"]
