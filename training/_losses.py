r"""Losses for spiking networks.

Small pure functions on arrays of one sample (time first); batch them with ``jax.vmap``
and average. Every loss returns a scalar.

| loss | formula |
|---|---|
| `mse` | $\mathrm{mean}((p - t)^2)$ |
| `van_rossum_distance` | $\frac{1}{N}\sum_{t,n} \Delta t\,(\tilde a_{t,n} - \tilde b_{t,n})^2$ |
| `spike_count_error` | $\mathrm{mean}_n (\sum_t a_{t,n} - \sum_t b_{t,n})^2$ |
| `cross_entropy_counts` | $-\log\mathrm{softmax}(\sum_t s_t)_y$ |
| `cross_entropy_membrane` | $-\log\mathrm{softmax}(R_t v_t)_y$, $R$ = max, last or mean |
| `firing_rate_regularizer` | $\mathrm{mean}_n(\bar r_n - r^*)^2$ (or one-sided) |
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = [
    "mse",
    "van_rossum_distance",
    "spike_count_error",
    "cross_entropy_counts",
    "cross_entropy_membrane",
    "firing_rate_regularizer",
    "exponential_filter",
    "accuracy_counts",
    "accuracy_membrane",
]


def mse(pred: Float[ArrayLike, ...], target: Float[ArrayLike, ...]) -> Float[Array, ""]:
    r"""Mean squared error $\mathrm{mean}((p - t)^2)$ over all elements.

    **Arguments:**

    - `pred`, `target`: arrays of the same shape (e.g. membrane traces `(T, N)`).

    **Returns:** a scalar.
    """
    pred = jnp.asarray(pred)
    target = jnp.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(
            f"mse: pred has shape {pred.shape} but target has shape {target.shape}; "
            "pass arrays of the same shape"
        )
    return jnp.mean((pred - target) ** 2)


def exponential_filter(
    spikes: Float[ArrayLike, "T ..."], *, tau: float, dt: float
) -> Float[Array, "T ..."]:
    r"""Filter spike trains with the causal exponential kernel $e^{-t/\tau}$.

    Exact discretization of $\tau\,\dot f = -f + \tau\,s(t)$ for spikes as unit
    impulses: $f_t = e^{-\Delta t/\tau} f_{t-1} + s_t$, $f_{-1} = 0$. A lone spike
    at step 0 gives $f_t = e^{-t\Delta t/\tau}$.

    **Arguments:**

    - `spikes`: `(T, ...)`, time first.
    - `tau`: time constant (same unit as `dt`), > 0.
    - `dt`: step length, > 0.

    **Returns:** `(T, ...)` filtered traces.
    """
    if not (tau > 0 and dt > 0):
        raise ValueError(f"exponential_filter: tau and dt must be > 0, received tau={tau}, dt={dt}")
    s = jnp.asarray(spikes)
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.float32)
    decay = jnp.asarray(jnp.exp(-dt / tau), dtype=s.dtype)

    def body(f, s_t):
        f = decay * f + s_t
        return f, f

    _, out = jax.lax.scan(body, jnp.zeros(s.shape[1:], s.dtype), s)
    return out


def van_rossum_distance(
    a: Float[ArrayLike, "T ..."],
    b: Float[ArrayLike, "T ..."],
    *,
    tau: float,
    dt: float,
) -> Float[Array, ""]:
    r"""Squared van Rossum distance between two sets of spike trains.

    $$D^2 = \frac{1}{N}\sum_{n}\sum_{t} \Delta t\,(\tilde a_{t,n} - \tilde b_{t,n})^2,$$

    where $\tilde s$ is `exponential_filter(s, tau=tau, dt=dt)` and $N$ the number of
    neurons (all axes but time). This is the Riemann sum of
    $\int (\tilde a - \tilde b)^2\,dt$; for two single spikes in one neuron with
    $\Delta t \ll \tau$ it tends to the closed form $\tau\,(1 - e^{-|t_a - t_b|/\tau})$.

    **Arguments:**

    - `a`, `b`: spike trains `(T, ...)` of the same shape.
    - `tau`, `dt`: filter time constant and step length.

    **Returns:** a scalar (not square-rooted, so it is smooth at zero).
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"van_rossum_distance: a has shape {a.shape} but b has shape {b.shape}; "
            "pass spike trains of the same shape (T, ...)"
        )
    if a.ndim == 0:
        raise ValueError("van_rossum_distance: spike trains need a time axis, got a scalar")
    fa = exponential_filter(a, tau=tau, dt=dt)
    fb = exponential_filter(b.astype(fa.dtype), tau=tau, dt=dt)
    per_neuron = jnp.sum((fa - fb) ** 2, axis=0) * dt
    return jnp.mean(per_neuron)


def spike_count_error(
    a: Float[ArrayLike, "T ..."], b: Float[ArrayLike, "T ..."]
) -> Float[Array, ""]:
    r"""Mean squared difference of spike counts per neuron.

    $$E = \frac{1}{N}\sum_n \Big(\sum_t a_{t,n} - \sum_t b_{t,n}\Big)^2.$$

    **Arguments:** `a`, `b`: spike trains `(T, ...)` of the same shape (or `b` may be
    target counts of shape `a.shape[1:]`).

    **Returns:** a scalar.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    ca = jnp.sum(a, axis=0)
    cb = jnp.sum(b, axis=0) if b.shape == a.shape else b
    if cb.shape != ca.shape:
        raise ValueError(
            f"spike_count_error: a has shape {a.shape}, b has shape {b.shape}; pass b as "
            f"spikes {a.shape} or as counts {a.shape[1:]}"
        )
    return jnp.mean((ca - cb.astype(ca.dtype)) ** 2)


def _check_logits(name: str, x: Array) -> None:
    if x.ndim != 2:
        raise ValueError(
            f"{name}: expected a (T, C) array for one sample, received shape {x.shape}; "
            "vmap over the batch axis"
        )


def _xent(logits: Array, label) -> Array:
    logp = jax.nn.log_softmax(logits)
    return -jnp.take(logp, jnp.asarray(label, jnp.int32))


def cross_entropy_counts(
    spikes: Float[ArrayLike, "T C"], label: Int[ArrayLike, ""]
) -> Float[Array, ""]:
    r"""Cross-entropy on output spike counts.

    $$L = -\log\frac{e^{c_y}}{\sum_k e^{c_k}}, \qquad c_k = \sum_t s_{t,k}.$$

    **Arguments:** `spikes` `(T, C)` output spikes of one sample; `label` integer class.

    **Returns:** a scalar.
    """
    s = jnp.asarray(spikes)
    _check_logits("cross_entropy_counts", s)
    return _xent(jnp.sum(s, axis=0), label)


Reduce = Literal["max", "last", "mean"]


def _reduce_time(v: Array, reduce: str, name: str) -> Array:
    if reduce == "max":
        return jnp.max(v, axis=0)
    if reduce == "last":
        return v[-1]
    if reduce == "mean":
        return jnp.mean(v, axis=0)
    raise ValueError(f"{name}: reduce={reduce!r} is not known; use 'max', 'last' or 'mean'")


def cross_entropy_membrane(
    v: Float[ArrayLike, "T C"], label: Int[ArrayLike, ""], reduce: Reduce = "max"
) -> Float[Array, ""]:
    r"""Cross-entropy on a readout layer's membrane potential.

    $$L = -\log\mathrm{softmax}(z)_y,\quad z_k = \max_t v_{t,k}\ \text{(max)},\
    v_{T-1,k}\ \text{(last)},\ \frac1T\sum_t v_{t,k}\ \text{(mean)}.$$

    **Arguments:** `v` `(T, C)` membrane trace of one sample (e.g. the output of an LI
    readout); `label` integer class; `reduce` one of `"max"`, `"last"`, `"mean"`.

    **Returns:** a scalar.
    """
    v = jnp.asarray(v)
    _check_logits("cross_entropy_membrane", v)
    return _xent(_reduce_time(v, reduce, "cross_entropy_membrane"), label)


def accuracy_counts(spikes: Float[ArrayLike, "T C"], label) -> Array:
    r"""1.0 where the class with the most output spikes is `label` (ties: lowest index)."""
    return (jnp.argmax(jnp.sum(jnp.asarray(spikes), axis=0)) == label).astype(jnp.float32)


def accuracy_membrane(v: Float[ArrayLike, "T C"], label, reduce: Reduce = "max") -> Array:
    r"""1.0 where the class with the largest reduced membrane is `label`."""
    z = _reduce_time(jnp.asarray(v), reduce, "accuracy_membrane")
    return (jnp.argmax(z) == label).astype(jnp.float32)


def firing_rate_regularizer(
    spikes: Float[ArrayLike, "T ..."],
    target_rate: float,
    *,
    mode: Literal["both", "upper", "lower"] = "both",
    per_neuron: bool = True,
) -> Float[Array, ""]:
    r"""Penalty on the mean firing rate (spikes per step) of a population.

    With $r_n = \frac1T\sum_t s_{t,n}$ and target $r^*$:

    - `mode="both"`: $\mathrm{mean}_n (r_n - r^*)^2$;
    - `mode="upper"`: $\mathrm{mean}_n \max(0, r_n - r^*)^2$ (silence over-active neurons);
    - `mode="lower"`: $\mathrm{mean}_n \max(0, r^* - r_n)^2$ (wake silent neurons).

    With `per_neuron=False` the population mean $\bar r = \mathrm{mean}_n r_n$ is
    penalised instead of each neuron.

    **Arguments:** `spikes` `(T, ...)`; `target_rate` in spikes per step (0..1).

    **Returns:** a scalar.
    """
    s = jnp.asarray(spikes)
    if s.ndim == 0:
        raise ValueError("firing_rate_regularizer: spikes need a time axis, got a scalar")
    r = jnp.mean(s, axis=0)
    if not per_neuron:
        r = jnp.mean(r)
    d = r - jnp.asarray(target_rate, r.dtype)
    if mode == "both":
        pen = d**2
    elif mode == "upper":
        pen = jnp.maximum(d, 0) ** 2
    elif mode == "lower":
        pen = jnp.minimum(d, 0) ** 2
    else:
        raise ValueError(
            f"firing_rate_regularizer: mode={mode!r} is not known; use 'both', 'upper' or 'lower'"
        )
    return jnp.mean(pen)
