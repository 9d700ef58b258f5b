"""Threshold: a stateless Heaviside step with a surrogate gradient."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import equinox as eqx
import nir
import numpy as np
from jaxtyping import Array, Float

from .._registry import ImportContext, module_to_nir, nir_to_module
from .._surrogate import Surrogate
from ._base import Primitive, Shape


class Threshold(Primitive):
    r"""Threshold, `y(t) = H(x(t) - threshold)`: 1 where `x > threshold`, else 0.

    The backward pass uses the surrogate derivative `g(x - threshold)`.

    **Arguments:**

    - `threshold`: the per-neuron threshold, with the input's shape.
    - `surrogate`: the surrogate gradient family (`nirjax.Surrogate`).
    """

    threshold: Float[Array, ...]
    surrogate: Surrogate = eqx.field(static=True, default_factory=Surrogate)
    elementwise: ClassVar[bool] = True

    def __call__(self, x):
        return self.surrogate(x - self.threshold)

    def apply_sequence(self, xs, execution=None):
        return self.surrogate(xs - self.threshold)

    def expected_input_shape(self) -> Shape:
        return tuple(self.threshold.shape)

    def options_or(self, default):
        return default.replace(surrogate=self.surrogate)

    def with_options(self, options):
        return dataclasses.replace(self, surrogate=options.surrogate)


@nir_to_module.register
def _(node: nir.Threshold, ctx: ImportContext) -> Threshold:
    return Threshold(ctx.param(node, "threshold"), surrogate=ctx.options.surrogate)


@module_to_nir.register
def _(module: Threshold) -> nir.Threshold:
    return nir.Threshold(threshold=np.asarray(module.threshold))
