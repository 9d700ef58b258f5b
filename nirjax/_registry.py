"""The open registry between NIR node types and nirjax modules, in both directions.

`nir_to_module` is a `functools.singledispatch` on the NIR node's class; `module_to_nir` on the
nirjax module's class. The built-in primitives register themselves exactly as a user would:

    @nirjax.nir_to_module.register
    def _(node: MyNIRNode, ctx: nirjax.ImportContext) -> MyModule:
        return MyModule(...)

    @nirjax.module_to_nir.register
    def _(module: MyModule) -> MyNIRNode:
        return MyNIRNode(...)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import nir
import numpy as np

from ._options import Options


@dataclasses.dataclass(frozen=True)
class ImportContext:
    """What a converter needs besides the NIR node: its name (the full path for nested
    nodes), the dynamics options of this node, and the floating dtype of the parameters."""

    name: str
    options: Options
    dtype: Any = jnp.float32

    def param(self, node: Any, field: str, *, positive: bool = False) -> jax.Array:
        """Read `node.<field>` as an array of `self.dtype`, kept exactly as given (shape and
        values), raising a clear error for a missing, non-numeric, NaN or infinite value."""
        return as_param(getattr(node, field, None), field, self.name, self.dtype, positive=positive)


def to_numpy(value: Any) -> np.ndarray:
    """Any array-like as a numpy array: numpy and JAX arrays, Python numbers and lists, and
    torch tensors (also `torch.nn.Parameter`s, which need a detach first). Raises TypeError for
    anything numpy cannot read."""
    detach = getattr(value, "detach", None)
    if callable(detach) and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as e:  # noqa: BLE001 - anything numpy cannot read is a bad field
        raise TypeError(f"expected a numeric array, got {type(value).__name__}") from e


def as_param(value: Any, field: str, name: str, dtype: Any, *, positive: bool = False):
    """A parameter as an array of `dtype`, exactly as given: a clear error naming the node and
    field for a missing, boolean, complex or non-numeric value, NaN or inf, a value <= 0 where
    `positive`, and a finite value that `dtype` cannot hold (over its largest value, or a
    positive time constant that would round to 0)."""
    where = f"node {name!r}, field {field!r}"
    if value is None:
        raise ValueError(f"{where}: missing; NIR requires a numeric array here.")
    try:
        arr = to_numpy(value)
    except TypeError as e:
        raise TypeError(f"{where}: {e}. Store the parameter as a float array.") from None
    check_dtype(arr.dtype, where)
    arr = arr.astype(np.float64)
    check_values(arr, where, positive=positive)
    check_representable(arr, where, dtype, positive=positive)
    return jnp.asarray(arr, dtype=dtype)


def check_dtype(dtype: Any, where: str) -> None:
    """A TypeError unless `dtype` is an integer or floating dtype (bool, complex, strings and
    objects are not parameters)."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        raise TypeError(
            f"{where}: expected a real number array, got booleans (dtype bool). A boolean is "
            "not a parameter value: store the number you mean as a float (e.g. 1.0)."
        )
    if kind not in "iuf":
        raise TypeError(
            f"{where}: expected a real numeric array, got dtype {np.dtype(dtype)}. "
            "Store the parameter as a float array."
        )


def check_values(arr: np.ndarray, where: str, *, positive: bool = False) -> None:
    """A clear error for NaN or infinite values, and for values <= 0 where `positive`."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[:3].tolist()
        raise ValueError(
            f"{where}: contains NaN or infinite values (e.g. at index {bad}). "
            "Pass finite parameters (fix them in the source graph)."
        )
    if positive and not np.all(arr > 0):
        bad = np.argwhere(~(arr > 0))[:3].tolist()
        raise ValueError(
            f"{where}: must be > 0 everywhere, got {arr.min():.6g} (e.g. at index {bad}). "
            "Time constants are in seconds and must be positive."
        )


def check_representable(arr: np.ndarray, where: str, dtype: Any, *,
                        positive: bool = False) -> None:
    """A ValueError for finite float64 values that `dtype` cannot hold: over its largest
    finite value (they would become inf), or, where `positive`, so small that they round to 0."""
    info = np.finfo(np.dtype(dtype))
    if arr.size == 0:
        return
    big = np.abs(arr) > float(info.max)
    if np.any(big):
        bad = np.argwhere(big)[:3].tolist()
        raise ValueError(
            f"{where}: {float(arr[tuple(bad[0])] if arr.ndim else arr):.6g} (e.g. at index {bad}) "
            f"is finite but over the largest {np.dtype(dtype).name} value {float(info.max):.6g}; "
            "it would become inf. Rescale the parameter, or load with dtype=jnp.float64 (with "
            "jax_enable_x64)."
        )
    if positive:
        small = np.asarray(arr, np.dtype(dtype)) <= 0
        if np.any(small):
            bad = np.argwhere(small)[:3].tolist()
            raise ValueError(
                f"{where}: {float(arr[tuple(bad[0])] if arr.ndim else arr):.6g} (e.g. at index "
                f"{bad}) is > 0 but rounds to 0 in {np.dtype(dtype).name}; a time constant must "
                "be positive. Use a time constant in seconds that the dtype can hold (>= "
                f"{float(info.tiny):.3g}), or load with dtype=jnp.float64."
            )


INT_LIMIT = 2**31 - 1
"""The largest magnitude of an integer field (a stride, padding, dimension...): XLA's int32."""


def as_int_tuple(value: Any, n: int, field: str, name: str, *,
                 minimum: int | None = None) -> tuple[int, ...]:
    """An int or a length-n sequence of ints (any numeric dtype with whole values), as a tuple
    of n Python ints, each at least `minimum` if given."""
    where = f"node {name!r}, field {field!r}"
    try:
        arr = np.atleast_1d(to_numpy(value))
    except TypeError:
        arr = np.array([object()])
    if (arr.dtype.kind not in "iuf" or arr.ndim != 1 or arr.size not in (1, n)
            or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))
            or np.any(np.abs(arr) > INT_LIMIT)):
        raise ValueError(
            f"{where}: expected an int or {n} ints (whole numbers of magnitude < 2^31), got "
            f"{value!r}.")
    if minimum is not None and np.any(arr < minimum):
        raise ValueError(
            f"{where}: every entry must be >= {minimum}, got {value!r}."
            + (" A stride or dilation of 0 does not move the window." if minimum == 1 else "")
        )
    if arr.size == 1:
        arr = np.repeat(arr, n)
    return tuple(int(v) for v in arr)


def as_int(value: Any, field: str, name: str) -> int:
    """One whole number (an int, or a float / 0-d array with a whole value) as a Python int."""
    where = f"node {name!r}, field {field!r}"
    try:
        arr = to_numpy(value)
    except TypeError:
        arr = np.array(object())
    if (arr.shape not in ((), (1,)) or arr.dtype.kind not in "iuf"
            or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))
            or np.any(np.abs(arr) > INT_LIMIT)):
        raise ValueError(
            f"{where}: expected a whole number (of magnitude < 2^31), got {value!r}.")
    return int(arr.reshape(()))


def as_shape(value: Any, field: str, name: str) -> tuple[int, ...]:
    """A shape given as any array-like of whole, non-negative numbers (NIR files store them as
    int or float arrays), as a tuple of Python ints."""
    where = f"node {name!r}, field {field!r}"
    try:
        arr = np.atleast_1d(to_numpy(value))
    except TypeError:
        arr = np.array([object()])
    if (arr.ndim != 1 or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr))
            or not np.all(arr == np.round(arr)) or np.any(arr < 0)):
        raise ValueError(
            f"{where}: expected a shape (a list of whole numbers >= 0), got {value!r}."
        )
    return tuple(int(v) for v in arr)


@functools.singledispatch
def nir_to_module(node: Any, ctx: ImportContext):
    """Convert a NIR node to its nirjax module. Register a converter for a new NIR type with
    `@nir_to_module.register`."""
    if not isinstance(node, nir.NIRNode):
        raise TypeError(
            f"node {ctx.name!r}: expected a NIR node (a nir.NIRNode such as nir.LIF), got "
            f"{type(node).__name__} {node!r:.60}. A converter that builds the graph returned "
            "it for this node; make it return a NIR node, or leave the node out."
        )
    raise NotImplementedError(
        f"node {ctx.name!r}: nirjax has no module for NIR type {type(node).__name__}. "
        "Register one with @nirjax.nir_to_module.register (see the README, 'Custom nodes')."
    )


@functools.singledispatch
def module_to_nir(module: Any):
    """Convert a nirjax module back to its NIR node. Register a converter for a new module type
    with `@module_to_nir.register`."""
    raise NotImplementedError(
        f"nirjax cannot export a {type(module).__name__} to NIR: no converter is registered. "
        "Register one with @nirjax.module_to_nir.register."
    )
