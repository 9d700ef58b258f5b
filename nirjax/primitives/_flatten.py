"""Flatten: merges the dimensions start_dim..end_dim of the unbatched per-step input."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import nir
import numpy as np

from .._registry import (
    ImportContext,
    as_int,
    as_shape,
    module_to_nir,
    nir_to_module,
)
from ._base import Primitive, Shape


def flatten_shape(shape: Shape, start_dim: int, end_dim: int, name: str = "Flatten") -> Shape:
    n = len(shape)
    start = start_dim + n if start_dim < 0 else start_dim
    end = end_dim + n if end_dim < 0 else end_dim
    if not (0 <= start <= end < n):
        raise ValueError(
            f"node {name!r}: start_dim={start_dim}, end_dim={end_dim} do not select dimensions "
            f"of the per-step input of shape {tuple(shape)} (NIR's Flatten indexes the unbatched "
            "shape: use start_dim=0 to flatten (C, H, W) into one vector)."
        )
    return tuple(shape[:start]) + (math.prod(shape[start : end + 1]),) + tuple(shape[end + 1 :])


class Flatten(Primitive):
    r"""Flatten, `y(t) = reshape(x(t))`, merging dimensions `start_dim` to `end_dim` of the
    unbatched per-step shape (the NIR paper's CNN uses start_dim 0: [8, 4, 4] -> [128]).

    **Arguments:**

    - `input_shape`: the per-step input shape (NIR's `input_type["input"]`), or None.
    - `start_dim`, `end_dim`: the first and last dimension to merge (negative counts from the end).
    """
    linear: ClassVar[bool] = True

    input_shape: Shape | None = eqx.field(static=True)
    start_dim: int = eqx.field(static=True, default=0)
    end_dim: int = eqx.field(static=True, default=-1)

    def __check_init__(self):
        for field in ("start_dim", "end_dim"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Flatten.{field}: expected an int, got {value!r}.")

    def __call__(self, x):
        return x.reshape(flatten_shape(x.shape, self.start_dim, self.end_dim))

    def apply_sequence(self, xs, execution=None):
        shape = flatten_shape(xs.shape[1:], self.start_dim, self.end_dim)
        return xs.reshape((xs.shape[0],) + shape)

    def expected_input_shape(self) -> Shape | None:
        return self.input_shape


@nir_to_module.register
def _(node: nir.Flatten, ctx: ImportContext) -> Flatten:
    types = node.input_type if isinstance(node.input_type, dict) else {}
    shape = types.get("input")
    shape = None if shape is None else as_shape(shape, "input_type['input']", ctx.name)
    start = as_int(node.start_dim, "start_dim", ctx.name)
    end = as_int(node.end_dim, "end_dim", ctx.name)
    if shape is not None:
        flatten_shape(shape, start, end, ctx.name)
    return Flatten(input_shape=shape, start_dim=start, end_dim=end)


@module_to_nir.register
def _(module: Flatten) -> nir.Flatten:
    input_type = {"input": None if module.input_shape is None else np.array(module.input_shape)}
    return nir.Flatten(input_type=input_type, start_dim=module.start_dim, end_dim=module.end_dim)
