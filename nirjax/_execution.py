"""How a graph is executed (not what it computes): scan unrolling, gradient checkpointing over
chunks of time, reduced-precision matmuls and associative scans. None of these options changes
the dynamics; `matmul_dtype` changes rounding, and `associative_scan` the order of rounding."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
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
    - `check_finite`: (default True) stop a run with an error (`equinox.EquinoxRuntimeError`
      under `jit`) as soon as a node's output or state holds NaN or inf, naming the first node
      that went non-finite and the step. A NaN input to a LIF otherwise gives a NaN voltage
      and clean-looking spikes (NaN > threshold is false). It costs one reduction per node per
      step; pass `check_finite=False` to opt out (e.g. to study a divergence on purpose).
    """

    checkpoint: int | None = None
    unroll: int = 1
    matmul_dtype: str | None = None
    associative_scan: bool = False
    check_finite: bool = True

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
        for name in ("associative_scan", "check_finite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected True or False, got {getattr(self, name)!r}.")


DEFAULT = Execution()


def scan(body: Callable, carry: Any, xs: Any, execution: Execution | None = None):
    """`lax.scan` with the execution's unrolling. Under `check_finite`, while a graph runs a
    node (see `checking`), the carry is watched too: the first step at which the node's state
    went non-finite is handed to the run's check (`defer`)."""
    unroll = 1 if execution is None else execution.unroll
    check = _CHECK.get()
    if execution is None or not execution.check_finite or check is None:
        return jax.lax.scan(body, carry, xs, unroll=unroll)
    leaves = jax.tree.leaves(xs)
    steps = jnp.arange(leaves[0].shape[0], dtype=jnp.int32) if leaves else None
    if steps is None:
        return jax.lax.scan(body, carry, xs, unroll=unroll)

    def watched(c, x_t):
        (inner, bad), (x, t) = c, x_t
        inner, y = body(inner, x)
        bad = jnp.where((bad < 0) & ~all_finite(inner), t, bad)
        return (inner, bad), y

    (carry, bad), ys = jax.lax.scan(watched, (carry, jnp.int32(-1)), (xs, steps), unroll=unroll)
    carry = defer(carry, bad, check, check.label + " state")
    return carry, ys


@dataclasses.dataclass(frozen=True)
class Check:
    """What a finiteness error names: the node (`label`), the step offset of the current chunk
    of time (traced under gradient checkpointing) and the run's total number of steps."""

    label: str
    offset: Any = 0
    total: int = 0


_CHECK: contextvars.ContextVar[Check | None] = contextvars.ContextVar("nirjax_check", default=None)
_PENDING: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "nirjax_pending_checks", default=None)


@contextlib.contextmanager
def checking(check: Check | None):
    """Trace the scans inside with `check` (the node being run); None: no check."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


def current_check() -> Check | None:
    return _CHECK.get()


@contextlib.contextmanager
def collecting():
    """Collect the finiteness checks traced inside (`defer`) into the list it yields; the
    caller raises them all at once with `raise_pending`."""
    pending: list = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def all_finite(tree: Any) -> jax.Array:
    """Whether every floating leaf of `tree` is finite (a scalar bool)."""
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.result_type(a), jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def first_nonfinite_step(seq: Any) -> jax.Array:
    """The first index along axis 0 at which some leaf of `seq` is NaN or inf; -1 if none."""
    # max |a| per step is NaN or inf exactly where some value is (max propagates NaN); a
    # reduction XLA fuses into its producer, with no boolean copy of the sequence.
    rows = [~jnp.isfinite(jnp.max(jnp.abs(a.reshape(a.shape[0], -1)), axis=1))
            for a in jax.tree.leaves(seq)
            if jnp.issubdtype(jnp.result_type(a), jnp.inexact) and a.ndim >= 1
            and a.size > 0]
    if not rows:
        return jnp.int32(-1)
    bad = rows[0]
    for r in rows[1:]:
        bad = bad | r
    return jnp.where(jnp.any(bad), jnp.argmax(bad).astype(jnp.int32), jnp.int32(-1))


class _StepMessages(Sequence):
    """The error messages of one check, one per step, formatted only when one is raised. Index
    i means step `total - i` (so that under vmap, where equinox takes the largest index over
    the batch, the earliest failing step is reported); index 0 is unused."""

    def __init__(self, what: str, total: int):
        self.what, self.total = what, total

    def __len__(self) -> int:
        return self.total + 1

    def __getitem__(self, i):
        step = self.total - int(i)
        return (
            f"{self.what} became NaN or inf at step {step} (the first non-finite value in this "
            "run). Check the input data at that step and the parameters (a time step dt larger "
            "than 2 tau makes Euler diverge); pass check_finite=False (graph.with_execution) to "
            "run on regardless."
        )

    def __hash__(self) -> int:
        return hash((self.what, self.total))

    def __eq__(self, other) -> bool:
        return isinstance(other, _StepMessages) and (self.what, self.total) == (
            other.what, other.total)


def defer(x: Any, bad: jax.Array, check: Check, what: str) -> Any:
    """Hand the check "`what` went non-finite at local step `bad`" to the run being traced
    (`collecting`: a graph's run, or one step of a cycle), which raises all its checks at once
    (`raise_pending`). Returns `x`."""
    pending = _PENDING.get()
    if pending is None:
        raise RuntimeError(f"nirjax internal error: the check of {what} was traced outside a "
                           "graph run (no `collecting` context); please report this.")
    pending.append((bad, check, what))
    return x


def check_sequence(seq: Any, check: Check, what: str) -> Any:
    """`seq` (a leading time axis), with an error if it holds NaN or inf, naming the step
    (deferred to the run, see `defer`)."""
    return defer(seq, first_nonfinite_step(seq), check, what)


class _PendingMessages(Sequence):
    """The messages of several checks of one run: index `(total - step) * K + (K - k)` means
    check k (of K) failed first at `step`, so that the largest index (what equinox reports
    under vmap) is the earliest step, and at equal steps the check traced first (the first
    node in the graph's order)."""

    def __init__(self, whats: tuple, total: int):
        self.whats, self.total = whats, total

    def __len__(self) -> int:
        return (self.total + 1) * len(self.whats) + 1

    def __getitem__(self, i):
        K = len(self.whats)
        q, r = divmod(int(i) - 1, K)
        return _StepMessages(self.whats[K - 1 - r], self.total)[q]

    def __hash__(self) -> int:
        return hash((self.whats, self.total))

    def __eq__(self, other) -> bool:
        return isinstance(other, _PendingMessages) and (self.whats, self.total) == (
            other.whats, other.total)


def raise_pending(pending: list, tied: Any) -> Any:
    """`tied` (the run's outputs, state and traces) made to depend on one error check that
    fires when any of `pending`'s checks failed, naming the earliest step (then the first
    check). The check runs on a scalar token (no copy of the large arrays through a
    conditional); each inexact leaf of `tied` is then reduced by the token (`x - 0.0`, which
    leaves every value, signed zeros and NaN included, as it is), so the check cannot be
    removed as dead code while the results are used."""
    if not pending:
        return tied
    total = max(max(int(c.total), 1) for _, c, _ in pending)
    K = len(pending)
    index = jnp.int32(0)
    for k, (bad, check, _) in enumerate(pending):
        step = jnp.clip(bad + jnp.asarray(check.offset).astype(jnp.int32), 0, total - 1)
        mine = jnp.where(bad >= 0, (total - step) * K + (K - k), 0).astype(jnp.int32)
        index = jnp.maximum(index, mine)
    whats = tuple(w for _, _, w in pending)
    token = eqx.branched_error_if(jnp.zeros((), jnp.float32), index > 0, index,
                                  _PendingMessages(whats, total))

    def tie(a):
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.inexact):
            return a - token.astype(a.dtype)
        return a

    return jax.tree.map(tie, tied)


def matmul(a: jax.Array, b: jax.Array, execution: Execution | None) -> jax.Array:
    """`a @ b`, in reduced precision with accumulation in a's dtype if the execution asks."""
    if execution is None or execution.matmul_dtype is None:
        return a @ b
    low = jnp.dtype(execution.matmul_dtype)
    return jnp.matmul(a.astype(low), b.astype(low), preferred_element_type=a.dtype)
