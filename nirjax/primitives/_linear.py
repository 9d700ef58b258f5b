"""Affine, Linear and Scale: stateless linear maps."""

from __future__ import annotations

from typing import ClassVar

import jax
import nir
import numpy as np
from jaxtyping import Array, Float

from .._execution import matmul
from .._registry import ImportContext, module_to_nir, nir_to_module
from ._base import Primitive, Shape


def _matvec(weight, x, execution=None):
    if weight.ndim == 2:
        return matmul(x, weight.T, execution)
    return matmul(weight, x[..., None], execution)[..., 0]


class Linear(Primitive):
    r"""Linear map, `y(t) = W x(t)`.

    **Arguments:**

    - `weight`: shape `(*batch, out, in)`; the input has shape `(*batch, in)`.
    """
    linear: ClassVar[bool] = True

    weight: Float[Array, "*b o i"]

    def __call__(self, x):
        return _matvec(self.weight, x)

    def apply_sequence(self, xs, execution=None):
        # One matmul over the whole time axis.
        return _matvec(self.weight, xs, execution)

    def expected_input_shape(self) -> Shape:
        return tuple(self.weight.shape[:-2]) + (self.weight.shape[-1],)


class Affine(Primitive):
    r"""Affine map, `y(t) = W x(t) + b`.

    **Arguments:**

    - `weight`: shape `(*batch, out, in)`.
    - `bias`: shape `(*batch, out)` (or broadcastable to it).
    """
    linear: ClassVar[bool] = True

    weight: Float[Array, "*b o i"]
    bias: Float[Array, "*b o"]

    def __call__(self, x):
        return _matvec(self.weight, x) + self.bias

    def apply_sequence(self, xs, execution=None):
        return self.linear_sequence(xs, execution) + self.bias

    def linear_sequence(self, xs, execution=None):
        """`W x(t)` over a leading time axis, without the bias (the graph adds it inside the
        scan of the neuron this node feeds, see `Graph`)."""
        return _matvec(self.weight, xs, execution)

    def expected_input_shape(self) -> Shape:
        return tuple(self.weight.shape[:-2]) + (self.weight.shape[-1],)


class Scale(Primitive):
    r"""Elementwise scaling, `y(t) = s \odot x(t)`.

    **Arguments:**

    - `scale`: the per-neuron factor, with the input's shape.
    """
    linear: ClassVar[bool] = True

    scale: Float[Array, ...]
    elementwise: ClassVar[bool] = True

    def __call__(self, x):
        return x * self.scale

    def apply_sequence(self, xs, execution=None):
        return xs * self.scale

    def expected_input_shape(self) -> Shape:
        return tuple(self.scale.shape)


def _check_weight(weight: jax.Array, name: str) -> None:
    if weight.ndim < 2:
        raise ValueError(
            f"node {name!r}, field 'weight': expected at least 2 dimensions (out, in), "
            f"got shape {tuple(weight.shape)}."
        )


@nir_to_module.register
def _(node: nir.Linear, ctx: ImportContext) -> Linear:
    weight = ctx.param(node, "weight")
    _check_weight(weight, ctx.name)
    return Linear(weight)


@nir_to_module.register
def _(node: nir.Affine, ctx: ImportContext) -> Affine:
    weight = ctx.param(node, "weight")
    _check_weight(weight, ctx.name)
    bias = ctx.param(node, "bias")
    out = tuple(weight.shape[:-1])
    try:
        grows = np.broadcast_shapes(bias.shape, out) != out
    except ValueError:
        grows = True
    if grows:
        raise ValueError(
            f"node {ctx.name!r}, field 'bias': shape {tuple(bias.shape)} does not fit the "
            f"weight's output shape {out} (NIR's Affine outputs weight.shape[:-1]; a bias may "
            f"broadcast to it, not widen it). Reshape the bias to {out}."
        ) from None
    return Affine(weight, bias)


@nir_to_module.register
def _(node: nir.Scale, ctx: ImportContext) -> Scale:
    return Scale(ctx.param(node, "scale"))


@module_to_nir.register
def _(module: Linear) -> nir.Linear:
    return nir.Linear(weight=np.asarray(module.weight))


@module_to_nir.register
def _(module: Affine) -> nir.Affine:
    return nir.Affine(weight=np.asarray(module.weight), bias=np.asarray(module.bias))


@module_to_nir.register
def _(module: Scale) -> nir.Scale:
    return nir.Scale(scale=np.asarray(module.scale))


__all__ = ["Affine", "Linear", "Scale"]
