"""Input and Output: the graph's terminals (identity maps that fix a shape)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import nir
import numpy as np

from .._registry import ImportContext, as_shape, module_to_nir, nir_to_module
from ._base import Primitive, Shape


def _shape_of(types, key: str, name: str, *, optional: bool = False) -> Shape | None:
    field = f"{'input' if key == 'input' else 'output'}_type"
    if types is not None and not isinstance(types, dict):
        raise ValueError(
            f"node {name!r}, field {field!r}: expected a dict {{{key!r}: shape}}, got {types!r}."
        )
    value = None if types is None else types.get(key)
    if value is None:
        if optional:
            return None
        raise ValueError(
            f"node {name!r}, field {field!r}: has no declared shape; a NIR Input needs one "
            f"(e.g. input_type={{'input': np.array([n])}})."
        )
    shape = as_shape(value, f"{field}[{key!r}]", name)
    if key == "input" and 0 in shape:
        raise ValueError(
            f"node {name!r}, field \"{field}[{key!r}]\": the shape {shape} has a dimension of "
            "size 0, so the input would hold no values; expected every dimension >= 1."
        )
    return shape


class _Terminal(Primitive):
    linear: ClassVar[bool] = True  # an affine map of its input (continuous time)
    shape: Shape | None = eqx.field(static=True)

    def __check_init__(self):
        if self.shape is None and isinstance(self, Input):
            raise ValueError("Input: shape is required (the per-step shape of the input).")
        if self.shape is not None and not (
            isinstance(self.shape, tuple)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                    for d in self.shape)
        ):
            raise ValueError(
                f"{type(self).__name__}: shape must be a tuple of ints >= 0, got {self.shape!r}."
            )

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

    - `shape`: the per-step shape of the output (NIR's `output_type["output"]`), or None to
      take the shape of its input (as NIR's `infer_types` fills in a missing output type).
    """


@nir_to_module.register
def _(node: nir.Input, ctx: ImportContext) -> Input:
    return Input(_shape_of(node.input_type, "input", ctx.name))


@nir_to_module.register
def _(node: nir.Output, ctx: ImportContext) -> Output:
    return Output(_shape_of(node.output_type, "output", ctx.name, optional=True))


@module_to_nir.register
def _(module: Input) -> nir.Input:
    return nir.Input(input_type={"input": np.array(module.shape)})


@module_to_nir.register
def _(module: Output) -> nir.Output:
    shape = None if module.shape is None else np.array(module.shape)
    return nir.Output(output_type={"output": shape})
