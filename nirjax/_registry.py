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


def as_param(value: Any, field: str, name: str, dtype: Any, *, positive: bool = False):
    where = f"node {name!r}, field {field!r}"
    if value is None:
        raise ValueError(f"{where}: missing; NIR requires a numeric array here.")
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything numpy cannot read is a bad field
        raise TypeError(f"{where}: expected a numeric array, got {type(value).__name__}.") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{where}: expected a real numeric array, got dtype {arr.dtype}. "
            "Store the parameter as a float array."
        )
    arr = arr.astype(np.float64)
    check_values(arr, where, positive=positive)
    return jnp.asarray(arr, dtype=dtype)


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


def as_int_tuple(value: Any, n: int, field: str, name: str) -> tuple[int, ...]:
    """An int or a length-n sequence of ints, as a tuple of n Python ints."""
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype.kind not in "iuf" or arr.size not in (1, n) or not np.all(arr == np.round(arr)):
        raise ValueError(
            f"node {name!r}, field {field!r}: expected an int or {n} ints, got {value!r}."
        )
    if arr.size == 1:
        arr = np.repeat(arr, n)
    return tuple(int(v) for v in arr)


@functools.singledispatch
def nir_to_module(node: Any, ctx: ImportContext):
    """Convert a NIR node to its nirjax module. Register a converter for a new NIR type with
    `@nir_to_module.register`."""
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
