"""Conv1d and Conv2d: stateless convolutions over an unbatched (C, *spatial) input."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
from jaxtyping import Array, Float

from .._registry import ImportContext, as_int, as_int_tuple, module_to_nir, nir_to_module
from ._base import Primitive, Shape

_DIMS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW")}


class _ConvNd(Primitive):
    linear: ClassVar[bool] = True  # an affine map of its input (continuous time)
    weight: Float[Array, "o i *k"]
    bias: Float[Array, " o"]
    input_shape: Shape | None = eqx.field(static=True)
    stride: tuple[int, ...] = eqx.field(static=True)
    padding: tuple[int, ...] | str = eqx.field(static=True)
    dilation: tuple[int, ...] = eqx.field(static=True)
    groups: int = eqx.field(static=True)

    def __check_init__(self):
        name = type(self).__name__
        for field in ("stride", "dilation"):
            if any(v < 1 for v in getattr(self, field)):
                raise ValueError(
                    f"{name}.{field}: every entry must be >= 1, got {getattr(self, field)}."
                )
        if not isinstance(self.padding, str) and any(p < 0 for p in self.padding):
            raise ValueError(f"{name}.padding: every entry must be >= 0, got {self.padding}.")
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 1:
            raise ValueError(f"{name}.groups: expected an int >= 1, got {self.groups!r}.")

    def output_shape(self, input_shape, dtype):
        n = self.weight.ndim - 2
        if len(input_shape) != n + 1:
            axes = "(C_in, N)" if n == 1 else "(C_in, H, W)"
            raise ValueError(
                f"expects per-step input of {n + 1} dimensions {axes}, but its incoming edges "
                f"carry shape {tuple(input_shape)}. Give the Input the per-step shape, without "
                "batch or time axes."
            )
        out = super().output_shape(input_shape, dtype)
        if any(d < 1 for d in out[1:]) and all(d >= 1 for d in input_shape):
            raise ValueError(
                f"the kernel {tuple(self.weight.shape[2:])} (dilation {self.dilation}, padding "
                f"{self.padding}) is larger than the padded input {tuple(input_shape)}, so the "
                f"output {out} is empty. Use a smaller kernel or more padding."
            )
        return out

    def _explicit_padding(self) -> list[tuple[int, int]]:
        kernel = self.weight.shape[2:]
        if self.padding == "valid":
            return [(0, 0)] * len(kernel)
        if self.padding == "same":
            # PyTorch's rule: total padding d (k - 1), the extra one on the high side.
            pads = []
            for k, d in zip(kernel, self.dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return pads
        return [(p, p) for p in self.padding]

    def _conv(self, x, execution=None):
        n = self.weight.ndim - 2
        weight, out_dtype = self.weight, x.dtype
        if execution is not None and execution.matmul_dtype is not None:
            x, weight = x.astype(execution.matmul_dtype), weight.astype(execution.matmul_dtype)
        y = jax.lax.conv_general_dilated(
            x,
            weight,
            window_strides=self.stride,
            padding=self._explicit_padding(),
            rhs_dilation=self.dilation,
            dimension_numbers=_DIMS[n],
            feature_group_count=self.groups,
            preferred_element_type=out_dtype,
        )
        return y + self.bias.reshape((-1,) + (1,) * n)

    def __call__(self, x):
        return self._conv(x[None])[0]

    def apply_sequence(self, xs, execution=None):
        # The time axis is the convolution's batch axis: one convolution for all steps.
        return self._conv(xs, execution)

    def expected_input_shape(self) -> Shape | None:
        if self.input_shape is None:
            return None
        return (self.weight.shape[1] * self.groups,) + tuple(self.input_shape)


class Conv1d(_ConvNd):
    r"""1-d convolution, `y(t) = W * x(t) + b`, input `(C_in, N)`, output `(C_out, N_out)`.

    **Arguments:** as NIR's `Conv1d`: `weight (C_out, C_in / groups, K)`, `bias (C_out,)`,
    `input_shape` (N, or None), `stride`, `padding` (int, `"same"` or `"valid"`; `"same"`
    follows PyTorch), `dilation`, `groups`.
    """


class Conv2d(_ConvNd):
    r"""2-d convolution, `y(t) = W * x(t) + b`, input `(C_in, H, W)`, output `(C_out, H', W')`.

    **Arguments:** as NIR's `Conv2d`: `weight (C_out, C_in / groups, KH, KW)`, `bias (C_out,)`,
    `input_shape` ((H, W), or None), `stride`, `padding` (int, pair, `"same"` or `"valid"`;
    `"same"` follows PyTorch), `dilation`, `groups`.
    """


def _convert(cls, node, ctx: ImportContext, n: int):
    weight = ctx.param(node, "weight")
    if weight.ndim != n + 2:
        raise ValueError(
            f"node {ctx.name!r}, field 'weight': expected {n + 2} dimensions "
            f"(C_out, C_in/groups, {'K' if n == 1 else 'KH, KW'}), got shape {tuple(weight.shape)}."
        )
    if getattr(node, "bias", None) is None:  # no bias means a zero bias
        bias = jnp.zeros(weight.shape[0], ctx.dtype)
    else:
        bias = ctx.param(node, "bias")
    if bias.shape not in ((weight.shape[0],), (), (1,)):
        raise ValueError(
            f"node {ctx.name!r}, field 'bias': expected shape ({weight.shape[0]},), "
            f"got {tuple(bias.shape)}."
        )
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = str(padding.item().decode() if isinstance(padding.item(), bytes) else padding)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(
                f"node {ctx.name!r}, field 'padding': expected an int, a tuple, 'same' or "
                f"'valid', got {padding!r}."
            )
    else:
        padding = as_int_tuple(padding, n, "padding", ctx.name, minimum=0)
    groups = node.groups
    if isinstance(groups, (tuple, list, np.ndarray)) and not isinstance(groups, str):
        # NIR stores groups as given; a sequence of one repeated count (NIR's own
        # test_ir.py::test_conv2d has groups=(1, 1)) is that count.
        values = np.unique(np.asarray(groups).ravel())
        if values.size != 1:
            raise ValueError(
                f"node {ctx.name!r}, field 'groups': a convolution has one group count, got "
                f"{groups!r}. Give a single int."
            )
        groups = values[0]
    groups = as_int(groups, "groups", ctx.name)
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(
            f"node {ctx.name!r}, field 'groups': {groups} must be >= 1 and divide C_out = "
            f"{weight.shape[0]}."
        )
    input_shape = None
    if node.input_shape is not None:
        input_shape = as_int_tuple(node.input_shape, n, "input_shape", ctx.name, minimum=1)
    return cls(
        weight=weight,
        bias=bias,
        input_shape=input_shape,
        stride=as_int_tuple(node.stride, n, "stride", ctx.name, minimum=1),
        padding=padding,
        dilation=as_int_tuple(node.dilation, n, "dilation", ctx.name, minimum=1),
        groups=groups,
    )


@nir_to_module.register
def _(node: nir.Conv1d, ctx: ImportContext) -> Conv1d:
    return _convert(Conv1d, node, ctx, 1)


@nir_to_module.register
def _(node: nir.Conv2d, ctx: ImportContext) -> Conv2d:
    return _convert(Conv2d, node, ctx, 2)


def _export(module: _ConvNd, cls):
    n = module.weight.ndim - 2
    padding = module.padding if isinstance(module.padding, str) else np.array(module.padding)
    input_shape = None if module.input_shape is None else module.input_shape
    if n == 1:
        input_shape = None if input_shape is None else int(input_shape[0])
        stride, dilation = int(module.stride[0]), int(module.dilation[0])
        padding = padding if isinstance(padding, str) else int(padding[0])
    else:
        input_shape = None if input_shape is None else np.array(input_shape)
        stride, dilation = np.array(module.stride), np.array(module.dilation)
    return cls(
        input_shape=input_shape,
        weight=np.asarray(module.weight),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=int(module.groups),
        bias=np.asarray(module.bias),
    )


@module_to_nir.register
def _(module: Conv1d) -> nir.Conv1d:
    return _export(module, nir.Conv1d)


@module_to_nir.register
def _(module: Conv2d) -> nir.Conv2d:
    return _export(module, nir.Conv2d)
