"""How a graph is executed (not what it computes): scan unrolling, gradient checkpointing over
chunks of time, reduced-precision matmuls and associative scans. None of these options changes
the dynamics; `matmul_dtype` changes rounding, and `associative_scan` the order of rounding."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

MATMUL_DTYPES = (None, "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class Execution:
    """Execution options of a `nirjax.Graph`; set with `graph.with_execution(...)`.

    **Arguments:**

    - `checkpoint`: run the whole graph in chunks of this many steps under `jax.checkpoint`
      (gradient checkpointing): the backward pass keeps only the state at chunk boundaries and
      recomputes each chunk, trading about one extra forward pass for memory that no longer grows
      with the intermediate values of every step. `None` (default): plain autodiff.
    - `unroll`: how many steps each `lax.scan` unrolls (larger can be faster on small layers,
      and compiles slower).
    - `matmul_dtype`: `"bfloat16"` (or `"float16"`) runs the matmuls and convolutions of Linear,
      Affine, Conv1d and Conv2d in that precision with float32 accumulation; state and neuron
      dynamics stay in the graph's dtype. `None` (default): full precision.
    - `associative_scan`: run reset-free linear neurons (I, LI, CubaLI) outside cycles with
      `jax.lax.associative_scan` (parallel over time: O(log T) depth, more total work; fast on
      GPUs for long sequences). Results equal the sequential scan up to float rounding.
    """

    checkpoint: int | None = None
    unroll: int = 1
    matmul_dtype: str | None = None
    associative_scan: bool = False

    def __post_init__(self):
        if self.checkpoint is not None and (
            isinstance(self.checkpoint, bool) or not isinstance(self.checkpoint, int)
            or self.checkpoint < 1
        ):
            raise ValueError(
                f"checkpoint: expected None or a whole number of steps >= 1, got "
                f"{self.checkpoint!r}."
            )
        if isinstance(self.unroll, bool) or not isinstance(self.unroll, int) or self.unroll < 1:
            raise ValueError(f"unroll: expected a whole number >= 1, got {self.unroll!r}.")
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(
                f"matmul_dtype: expected one of {list(MATMUL_DTYPES)}, got {self.matmul_dtype!r}."
            )
        if not isinstance(self.associative_scan, bool):
            raise TypeError(
                f"associative_scan: expected True or False, got {self.associative_scan!r}."
            )


DEFAULT = Execution()


def scan(body: Callable, carry: Any, xs: Any, execution: Execution | None = None):
    """`lax.scan` with the execution's unrolling."""
    unroll = 1 if execution is None else execution.unroll
    return jax.lax.scan(body, carry, xs, unroll=unroll)


def matmul(a: jax.Array, b: jax.Array, execution: Execution | None) -> jax.Array:
    """`a @ b`, in reduced precision with accumulation in a's dtype if the execution asks."""
    if execution is None or execution.matmul_dtype is None:
        return a @ b
    low = jnp.dtype(execution.matmul_dtype)
    return jnp.matmul(a.astype(low), b.astype(low), preferred_element_type=a.dtype)
