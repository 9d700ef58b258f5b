"""Spike nonlinearity: an exact Heaviside step forward, a surrogate derivative backward.

The registry `SURROGATES` maps a family name to its derivative `g(x, scale)`, where
`x = v - v_threshold`. A user adds a family with `register_surrogate`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

SurrogateFn = Callable[[jax.Array, float], jax.Array]

SURROGATES: dict[str, tuple[SurrogateFn, float]] = {}


def register_surrogate(name: str, default_scale: float) -> Callable[[SurrogateFn], SurrogateFn]:
    """Register a surrogate derivative `g(x, scale)` under `name`.

    **Arguments:**

    - `name`: the family name used in `Surrogate(name)` and `from_nir(surrogate=name)`.
    - `default_scale`: the scale used when none is given.
    """

    def decorator(fn: SurrogateFn) -> SurrogateFn:
        SURROGATES[name] = (fn, float(default_scale))
        return fn

    return decorator


@register_surrogate("fast_sigmoid", 25.0)
def _fast_sigmoid(x, k):
    # SuperSpike (Zenke & Ganguli 2018): 1 / (1 + k|x|)^2; peak 1 at x = 0.
    return 1.0 / (1.0 + k * jnp.abs(x)) ** 2


@register_surrogate("arctan", 2.0)
def _arctan(x, k):
    # Derivative of arctan(pi k x / 2) / pi: (k / 2) / (1 + (pi k x / 2)^2).
    return (k / 2.0) / (1.0 + (math.pi * k * x / 2.0) ** 2)


@register_surrogate("sigmoid", 25.0)
def _sigmoid(x, k):
    # Derivative of sigmoid(k x): k s(kx) s(-kx) (= k s (1 - s) without cancellation); peak k / 4.
    return k * jax.nn.sigmoid(k * x) * jax.nn.sigmoid(-k * x)


@register_surrogate("triangle", 1.0)
def _triangle(x, k):
    # max(0, 1 - k|x|): peak 1, support |x| < 1 / k.
    return jnp.maximum(0.0, 1.0 - k * jnp.abs(x))


@register_surrogate("rectangle", 1.0)
def _rectangle(x, k):
    # Boxcar: 1 where |x| < 1 / (2k), else 0: peak 1, width 1 / k.
    return jnp.where(jnp.abs(x) < 0.5 / k, 1.0, 0.0).astype(x.dtype)


@register_surrogate("straight_through", 1.0)
def _straight_through(x, k):
    # Straight-through estimator: the derivative is the constant k.
    return jnp.full_like(x, k)


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A surrogate-gradient family and its scale.

    Forward, `spike(x) = 1` where `x > 0`, else `0` (exact). Backward, `d spike / dx = g(x, scale)`
    with `g` from the registry:

    | name | g(x, k) | default k |
    |---|---|---|
    | `fast_sigmoid` (SuperSpike) | `1 / (1 + k|x|)^2` | 25 |
    | `arctan` | `(k/2) / (1 + (pi k x / 2)^2)` | 2 |
    | `sigmoid` | `k s (1 - s)`, `s = sigmoid(k x)` | 25 |
    | `triangle` | `max(0, 1 - k|x|)` | 1 |
    | `rectangle` (boxcar) | `1` where `|x| < 1/(2k)`, else `0` | 1 |
    | `straight_through` | `k` | 1 |

    **Arguments:**

    - `name`: a key of `nirjax.SURROGATES`.
    - `scale`: the family's scale k; `None` takes the family's default.
    """

    name: str = "fast_sigmoid"
    scale: float | None = None

    def __post_init__(self):
        if self.name not in SURROGATES:
            raise ValueError(
                f"surrogate: unknown family {self.name!r}; expected one of "
                f"{sorted(SURROGATES)}. Register a new one with nirjax.register_surrogate."
            )
        if self.scale is None:
            object.__setattr__(self, "scale", SURROGATES[self.name][1])
        scale = float(self.scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(
                f"surrogate {self.name!r}: scale must be a finite number > 0, got {self.scale!r}."
            )
        object.__setattr__(self, "scale", scale)

    def derivative(self, x: jax.Array) -> jax.Array:
        """The surrogate derivative g(x, scale)."""
        return SURROGATES[self.name][0](x, self.scale)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Heaviside step of `x` (1 where x > 0) with this surrogate derivative."""
        return _spike(x, self)


def as_surrogate(value: Surrogate | str | None) -> Surrogate:
    """Accept a `Surrogate`, a family name, or `None` (the default family)."""
    if value is None:
        return Surrogate()
    if isinstance(value, Surrogate):
        return value
    if isinstance(value, str):
        return Surrogate(value)
    raise TypeError(
        f"surrogate: expected a nirjax.Surrogate or a family name, got {type(value).__name__}."
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _spike(x: jax.Array, surrogate: Surrogate) -> jax.Array:
    return (x > 0).astype(x.dtype)


@_spike.defjvp
def _spike_jvp(surrogate, primals, tangents):
    (x,), (dx,) = primals, tangents
    return _spike(x, surrogate), surrogate.derivative(x).astype(x.dtype) * dx
