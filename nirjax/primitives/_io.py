"""Input and Output: the graph's terminals (identity maps that fix a shape)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import nir
import numpy as np

from .._registry import ImportContext, module_to_nir, nir_to_module
from ._base import Primitive, Shape


def _shape_of(types: dict | None, key: str, name: str) -> Shape:
    value = None if types is None else types.get(key)
    if value is None:
        raise ValueError(f"node {name!r}: has no declared shape; NIR Input/Output need one.")
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype.kind not in "iu" or np.any(arr < 0):
        raise ValueError(f"node {name!r}: expected a shape of non-negative ints, got {value!r}.")
    return tuple(int(v) for v in arr)


class _Terminal(Primitive):
    linear: ClassVar[bool] = True  # an affine map of its input (continuous time)
    shape: Shape = eqx.field(static=True)

    def __call__(self, x):
        return x

    def apply_sequence(self, xs, execution=None):
        return xs

    def expected_input_shape(self) -> Shape:
        return self.shape


class Input(_Terminal):
    """A graph input: passes its per-step value through unchanged.

    **Arguments:**

    - `shape`: the per-step shape of the input (NIR's `input_type["input"]`).
    """


class Output(_Terminal):
    """A graph output: passes the sum of its inputs through unchanged.

    **Arguments:**

    - `shape`: the per-step shape of the output (NIR's `output_type["output"]`).
    """


@nir_to_module.register
def _(node: nir.Input, ctx: ImportContext) -> Input:
    return Input(_shape_of(node.input_type, "input", ctx.name))


@nir_to_module.register
def _(node: nir.Output, ctx: ImportContext) -> Output:
    return Output(_shape_of(node.output_type, "output", ctx.name))


@module_to_nir.register
def _(module: Input) -> nir.Input:
    return nir.Input(input_type={"input": np.array(module.shape)})


@module_to_nir.register
def _(module: Output) -> nir.Output:
    return nir.Output(output_type={"output": np.array(module.shape)})
