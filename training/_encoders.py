r"""Encoders: turn static features in [0, 1] into input sequences `(T, ...)`.

| encoder | output at step t for feature x |
|---|---|
| `rate_bernoulli` | $s_t \sim \mathrm{Bernoulli}(p\,x)$, independent over t |
| `rate_poisson` | $s_t \sim \mathrm{Poisson}(x\,f_{max}\,\Delta t)$ (a count, may exceed 1) |
| `latency` | one spike at $t_x = \mathrm{round}((1 - x)(T - 1))$ for $x > x_{min}$, none else |
| `direct_current` | $g\,x$ at every step (a constant current, no spikes) |

Each takes one sample; `jax.vmap` over a batch (split the key per sample for the random ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = ["rate_bernoulli", "rate_poisson", "latency", "direct_current", "ENCODERS"]


def _features(x, name: str) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _check_steps(n_steps: int, name: str) -> None:
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"{name}: n_steps must be a positive int, received {n_steps!r}")


def rate_bernoulli(
    key: PRNGKeyArray, x: Float[ArrayLike, ...], n_steps: int, *, max_prob: float = 1.0
) -> Float[Array, "T ..."]:
    r"""Rate code with Bernoulli spikes: $s_t \sim \mathrm{Bernoulli}(\mathrm{clip}(p\,x, 0, 1))$.

    The expected spike count of a feature is $T\,p\,x$.

    **Arguments:** `key`; `x` features in [0, 1]; `n_steps` T; `max_prob` p, the spike
    probability per step of a feature equal to 1.

    **Returns:** `(T, *x.shape)` spikes (0.0 / 1.0) in x's float dtype.
    """
    _check_steps(n_steps, "rate_bernoulli")
    if isinstance(max_prob, (int, float)) and not 0 < max_prob <= 1:
        raise ValueError(f"rate_bernoulli: max_prob is a spike probability per step, so it must "
                         f"be > 0 and <= 1, received {max_prob!r}")
    x = _features(x, "rate_bernoulli")
    p = jnp.clip(x * max_prob, 0.0, 1.0)
    u = jax.random.uniform(key, (n_steps, *x.shape), dtype=x.dtype)
    return (u < p).astype(x.dtype)


def rate_poisson(
    key: PRNGKeyArray,
    x: Float[ArrayLike, ...],
    n_steps: int,
    *,
    max_rate: float,
    dt: float,
) -> Float[Array, "T ..."]:
    r"""Rate code with Poisson counts: $s_t \sim \mathrm{Poisson}(\lambda)$,
    $\lambda = \max(x, 0)\,f_{max}\,\Delta t$ per step.

    A binned homogeneous Poisson process of rate $x f_{max}$ (Hz); a bin can hold several
    events, so values are counts.

    **Arguments:** `key`; `x` features in [0, 1]; `n_steps` T; `max_rate` $f_{max}$ in Hz;
    `dt` the step in seconds.

    **Returns:** `(T, *x.shape)` counts in x's float dtype.
    """
    _check_steps(n_steps, "rate_poisson")
    if not (max_rate >= 0 and dt > 0):
        raise ValueError(
            f"rate_poisson: need max_rate >= 0 and dt > 0, received max_rate={max_rate}, dt={dt}"
        )
    x = _features(x, "rate_poisson")
    lam = jnp.maximum(x, 0.0) * (max_rate * dt)
    counts = jax.random.poisson(key, jnp.broadcast_to(lam, (n_steps, *x.shape)))
    return counts.astype(x.dtype)


def latency(
    x: Float[ArrayLike, ...], n_steps: int, *, threshold: float = 0.0
) -> Float[Array, "T ..."]:
    r"""Latency code: one spike per feature, earlier for larger values.

    $t_x = \mathrm{round}((1 - \mathrm{clip}(x, 0, 1))\,(T - 1))$; a feature with
    $x \le x_{min}$ (`threshold`) does not spike.

    **Arguments:** `x` features in [0, 1]; `n_steps` T; `threshold` $x_{min}$.

    **Returns:** `(T, *x.shape)` spikes with at most one 1.0 per feature.
    """
    _check_steps(n_steps, "latency")
    x = _features(x, "latency")
    t = jnp.round((1.0 - jnp.clip(x, 0.0, 1.0)) * (n_steps - 1)).astype(jnp.int32)
    steps = jnp.arange(n_steps).reshape((n_steps,) + (1,) * x.ndim)
    return ((steps == t) & (x > threshold)).astype(x.dtype)


def direct_current(
    x: Float[ArrayLike, ...], n_steps: int, *, gain: float = 1.0
) -> Float[Array, "T ..."]:
    r"""Direct current input: $I_t = g\,x$ at every step.

    **Arguments:** `x` features; `n_steps` T; `gain` g.

    **Returns:** `(T, *x.shape)`.
    """
    _check_steps(n_steps, "direct_current")
    x = _features(x, "direct_current")
    return jnp.broadcast_to(x * jnp.asarray(gain, x.dtype), (n_steps, *x.shape))


ENCODERS = ("rate", "poisson", "latency", "current")
