"""SumPool2d and AvgPool2d: stateless pooling over an unbatched (C, H, W) input."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import nir
import numpy as np

from .._registry import ImportContext, as_int_tuple, module_to_nir, nir_to_module
from ._base import Primitive


class _Pool2d(Primitive):
    linear: ClassVar[bool] = True  # an affine map of its input (continuous time)
    kernel_size: tuple[int, int] = eqx.field(static=True)
    stride: tuple[int, int] = eqx.field(static=True)
    padding: tuple[int, int] = eqx.field(static=True)

    def __check_init__(self):
        name = type(self).__name__
        for field, low in (("kernel_size", 1), ("stride", 1), ("padding", 0)):
            value = getattr(self, field)
            if len(value) != 2 or any(v < low for v in value):
                raise ValueError(
                    f"{name}.{field}: expected 2 ints >= {low} (height, width), got {value}."
                )

    def output_shape(self, input_shape, dtype):
        if len(input_shape) < 2:
            raise ValueError(
                f"pooling needs a (C, H, W) per-step input, got shape {tuple(input_shape)}."
            )
        padded = [d + 2 * p for d, p in zip(input_shape[-2:], self.padding)]
        if any(k > d for k, d in zip(self.kernel_size, padded)):
            raise ValueError(
                f"kernel_size {self.kernel_size} is larger than the (padded) input "
                f"{tuple(padded)} of shape {tuple(input_shape)}, so the output would be empty. "
                "Use a smaller kernel or more padding."
            )
        return super().output_shape(input_shape, dtype)

    def _sum(self, x):
        lead = x.ndim - 2
        (ph, pw) = self.padding
        return jax.lax.reduce_window(
            x,
            0.0,
            jax.lax.add,
            window_dimensions=(1,) * lead + self.kernel_size,
            window_strides=(1,) * lead + self.stride,
            padding=((0, 0),) * lead + ((ph, ph), (pw, pw)),
        )

    def __call__(self, x):
        return self._pool(x)

    def apply_sequence(self, xs, execution=None):
        # The window never spans the leading (time) axis: one reduce_window for all steps.
        return self._pool(xs)


class SumPool2d(_Pool2d):
    r"""Sum pooling: `y[c, i, j] = sum over the window of x[c, ...]` (zero padding).

    **Arguments:** `kernel_size`, `stride`, `padding`, each (height, width).
    """

    def _pool(self, x):
        return self._sum(x)


class AvgPool2d(_Pool2d):
    r"""Average pooling: the window sum divided by `kernel_size[0] * kernel_size[1]`
    (padded zeros count, as PyTorch's default `count_include_pad=True`).

    **Arguments:** `kernel_size`, `stride`, `padding`, each (height, width).
    """

    def _pool(self, x):
        return self._sum(x) / (self.kernel_size[0] * self.kernel_size[1])


def _convert(cls, node, ctx: ImportContext):
    kernel = as_int_tuple(node.kernel_size, 2, "kernel_size", ctx.name, minimum=1)
    stride = node.stride if node.stride is not None else kernel
    padding = node.padding if node.padding is not None else 0
    return cls(
        kernel_size=kernel,
        stride=as_int_tuple(stride, 2, "stride", ctx.name, minimum=1),
        padding=as_int_tuple(padding, 2, "padding", ctx.name, minimum=0),
    )


@nir_to_module.register
def _(node: nir.SumPool2d, ctx: ImportContext) -> SumPool2d:
    return _convert(SumPool2d, node, ctx)


@nir_to_module.register
def _(node: nir.AvgPool2d, ctx: ImportContext) -> AvgPool2d:
    return _convert(AvgPool2d, node, ctx)


def _export(module, cls):
    return cls(
        kernel_size=np.array(module.kernel_size),
        stride=np.array(module.stride),
        padding=np.array(module.padding),
    )


@module_to_nir.register
def _(module: SumPool2d) -> nir.SumPool2d:
    return _export(module, nir.SumPool2d)


@module_to_nir.register
def _(module: AvgPool2d) -> nir.AvgPool2d:
    return _export(module, nir.AvgPool2d)
