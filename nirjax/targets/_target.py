"""Chip profiles as data: number formats, rules, violations, and the registry of targets.

A `Target` is a name, a description, the number formats of its parameters and a tuple of
`Rule`s. A rule is a function of a `GraphView` (the NIR graph with dt and the recorded
options) that yields a `Violation` for every node and field that breaks it, and it names the
toolchain source (file and line) that states the constraint. `register_target` adds a profile,
so a user can describe another chip without editing nirjax.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._view import GraphView

__all__ = [
    "NumberFormat",
    "Violation",
    "Rule",
    "Target",
    "TARGETS",
    "register_target",
    "get_target",
    "QUANTIZATION_KEY",
    "TARGET_KEY",
]

QUANTIZATION_KEY = "nirjax.quantization"
"""Node metadata key: `{"<field>": {"scale": s, "bits": b, "signed": bool}}`, meaning the field's
float value is an integer times `s`, exactly."""
TARGET_KEY = "nirjax.target"
"""Graph metadata key: `{"name": <target name>, ...}` on a graph quantized for a target."""

SCALES = ("free", "reciprocal", "power_of_two", "fixed")


@dataclasses.dataclass(frozen=True)
class NumberFormat:
    """How a chip stores one parameter: an integer of `bits` bits (two's complement if
    `signed`, else unsigned), times a scale, optionally limited to `[lo, hi]` (e.g. Loihi's
    weight mantissa, BrainScaleS-2's +-63).

    `scale` says which scales the chip can realize:

    - `"free"`: any positive number per node (the toolchain rescales the layer);
    - `"reciprocal"`: `1 / n` for a whole `n >= 1` per node, so that a threshold of 1.0 stays
      an integer (`n`);
    - `"power_of_two"`: `2**e` per node (Loihi's shared weight exponent), times `unit`, with
      `e >= emin` when `emin` is set;
    - `"fixed"`: exactly `unit` (e.g. Loihi thresholds: `1 / 256`).

    `share` (thresholds, biases): the field is counted in the units of the weights that feed
    the node (its scale is the incoming weight node's scale) instead of having its own.
    """

    bits: int
    signed: bool = True
    scale: str = "free"
    unit: float = 1.0
    lo: int | None = None
    hi: int | None = None
    share: bool = False
    emin: int | None = None

    def __post_init__(self):
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 64:
            raise ValueError(f"NumberFormat: bits must be an int in 1..64, received {self.bits!r}")
        if self.scale not in SCALES:
            raise ValueError(f"NumberFormat: scale={self.scale!r}; use one of {SCALES}")
        if not (math.isfinite(self.unit) and self.unit > 0):
            raise ValueError(f"NumberFormat: unit must be > 0, received {self.unit!r}")

    @property
    def qmin(self) -> int:
        """The smallest integer the chip stores."""
        base = -(2 ** (self.bits - 1)) if self.signed else 0
        return base if self.lo is None else max(base, self.lo)

    @property
    def qmax(self) -> int:
        """The largest integer the chip stores."""
        base = 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1
        return base if self.hi is None else min(base, self.hi)

    def describe(self) -> str:
        kind = {"free": "a per-node scale", "reciprocal": "a per-node scale 1/n",
                "power_of_two": f"a per-node scale 2**e * {self.unit:g}"
                + ("" if self.emin is None else f" (e >= {self.emin})"),
                "fixed": f"the scale {self.unit:g}"}[self.scale]
        if self.share:
            kind = "the scale of the weights feeding the node"
        sign = "signed" if self.signed else "unsigned"
        return f"{sign} {self.bits}-bit integers in [{self.qmin}, {self.qmax}] times {kind}"

    def scale_allowed(self, s: float) -> bool:
        """Whether the chip can realize the scale `s`."""
        if not (math.isfinite(s) and s > 0):
            return False
        if self.scale == "free":
            return True
        if self.scale == "reciprocal":
            n = 1.0 / s
            return abs(n - round(n)) <= 1e-6 * max(1.0, n)
        if self.scale == "power_of_two":
            e = math.log2(s / self.unit)
            return abs(e - round(e)) <= 1e-9 and (self.emin is None or round(e) >= self.emin)
        return math.isclose(s, self.unit, rel_tol=1e-9)

    def choose_scale(self, max_abs):
        """The finest allowed scale at which `max_abs` still fits: `1 / n` with the largest
        whole `n` (for `"free"` too, so that integer thresholds stay exact; `max_abs / qmax`
        when even `n = 1` is too fine), `unit 2**e` with the smallest `e`, or `unit`. Works on
        floats and on traced JAX values (quantization-aware training calls it under `jit`);
        0 gives the scale 1 (`unit`)."""
        import jax.numpy as jnp

        m = jnp.asarray(max_abs, jnp.float32)
        q = float(self.qmax)
        if self.scale == "fixed":
            return jnp.float32(self.unit)
        safe = jnp.where(m > 0, m, q * self.unit)
        if self.scale == "power_of_two":
            e = jnp.ceil(jnp.log2(safe / (q * self.unit)))
            if self.emin is not None:
                e = jnp.maximum(e, self.emin)
            return (self.unit * jnp.exp2(e)).astype(jnp.float32)
        n = jnp.floor(q / safe)
        coarse = safe / q if self.scale == "free" else jnp.float32(1.0)
        return jnp.where(n >= 1, 1.0 / jnp.maximum(n, 1.0), coarse).astype(jnp.float32)

    def to_record(self, s: float) -> dict[str, Any]:
        """The `nirjax.quantization` record of one field quantized with scale `s`."""
        return {"scale": float(s), "bits": int(self.bits), "signed": bool(self.signed)}


def on_grid(values: Any, scale: float, fmt: NumberFormat, tol: float = 1e-3) -> tuple[bool, str]:
    """Whether every value is an integer times `scale` (within `tol` of one integer step, for
    float32 rounding) inside the format's range; with a description of the worst value."""
    x = np.asarray(values, np.float64) / scale
    q = np.round(x)
    off = np.abs(x - q)
    if off.size and float(off.max()) > tol:
        i = int(np.argmax(off))
        return False, f"value {float(np.ravel(values)[i]):.6g} = {float(np.ravel(x)[i]):.4f} steps"
    if q.size and (q.min() < fmt.qmin or q.max() > fmt.qmax):
        return False, f"integers in [{int(q.min())}, {int(q.max())}]"
    return True, ""


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule: which node and field, what the chip allows, what the graph has, and
    the fix."""

    rule: str
    node: str
    field: str | None
    allowed: str
    received: str
    fix: str

    def __str__(self) -> str:
        where = self.node + (f".{self.field}" if self.field else "")
        return (f"{where}: [{self.rule}] allowed: {self.allowed}; received: {self.received}; "
                f"fix: {self.fix}")


@dataclasses.dataclass(frozen=True)
class Rule:
    """A design rule of a chip.

    - `name`: short and unique within the target (`"max_inputs"`).
    - `description`: the constraint in one sentence.
    - `source`: where the toolchain states it: `"file:line"` with the package and version.
    - `check`: `(view, target) -> iterable of Violation`.
    """

    name: str
    description: str
    source: str
    check: Callable[[GraphView, Target], Iterable[Violation]]

    def __post_init__(self):
        if not self.source:
            raise ValueError(f"Rule {self.name!r}: every rule cites its source (file:line)")


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity
class Target:
    """A chip profile.

    **Arguments:**

    - `name`: what `--target` takes.
    - `description`: the chip and the toolchain version the rules were read from.
    - `rules`: the design rules, each citing its source.
    - `formats`: the number format of each parameter field name the chip stores as an integer
      (`"weight"`, `"bias"`, `"v_threshold"`); what `quantize` rounds to and `check` verifies.
    - `neurons`: NIR neuron type names the chip runs (used by training to build a network).
    - `reset`: the reset the chip does (`"value"` or `"subtract"`, nirjax's option).
    - `decay`: how the chip decays state: `"shift"` (`v -= v >> dash`, so `tau = dt 2**dash`),
      `"loihi12"` (12-bit `dv = int(dt/tau 4095)`), `"analog"`, or None.
    - `bias`: whether the weights may carry biases.
    - `max_inputs`: the most input channels (None: no limit in the profile).
    - `options`: further nirjax dynamics options the chip's float model runs (e.g. Xylo's
      Rockpool neurons: several spikes per step at `>=`, input as impulses).
    """

    name: str
    description: str
    rules: tuple[Rule, ...]
    formats: Mapping[str, NumberFormat] = dataclasses.field(default_factory=dict)
    neurons: tuple[str, ...] = ("LIF",)
    reset: str = "value"
    decay: str | None = None
    bias: bool = True
    max_inputs: int | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Target {self.name!r}: rule names must be unique, repeated: {dup}")
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "formats", dict(self.formats))
        object.__setattr__(self, "options", dict(self.options))

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"target {self.name!r} has no rule {name!r}; rules: "
                       f"{[r.name for r in self.rules]}")


TARGETS: dict[str, Target] = {}


def register_target(target: Target, *, replace: bool = False) -> Target:
    """Add a chip profile under `target.name` (for `nirjax.check`, `nirjax check --target`,
    `quantize` and `training.fit(target=...)`). An existing name needs `replace=True`."""
    if not isinstance(target, Target):
        raise TypeError(f"register_target: expected a nirjax.targets.Target, got "
                        f"{type(target).__name__}")
    if target.name in TARGETS and not replace:
        raise ValueError(f"register_target: a target {target.name!r} is already registered; "
                         "pass replace=True to replace it")
    TARGETS[target.name] = target
    return target


def get_target(target: str | Target) -> Target:
    """A registered target by name (or the `Target` itself)."""
    if isinstance(target, Target):
        return target
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known targets: {sorted(TARGETS)} (add one "
                         "with nirjax.targets.register_target)")
    return TARGETS[target]
