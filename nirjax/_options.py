"""Options that change the discrete-time dynamics. Every one is explicit and recorded on export."""

from __future__ import annotations

import dataclasses
import math

from ._surrogate import Surrogate, as_surrogate

DISCRETIZATIONS = ("euler", "exact")
RESETS = ("value", "subtract")
INPUT_MODES = ("current", "impulse")
CUBA_ORDERS = ("current_first", "voltage_first")


def _choice(field: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{field}: expected one of {list(allowed)}, got {value!r}.")
    return value


@dataclasses.dataclass(frozen=True)
class Options:
    """How a NIR graph's continuous-time dynamics are stepped. One per stateful node.

    **Arguments:**

    - `dt`: the time step in seconds (NIR's unit of time). Required: there is no default.
    - `discretization`: `"euler"` (forward Euler of NIR's ODE, the default; what the NIR paper's
      reference backends do) or `"exact"` (the exact solution of the linear ODE over one step with
      the input held constant: an exponential integrator).
    - `reset`: `"value"` (NIR's definition, v <- v_reset after a spike; default) or `"subtract"`
      (v <- v - (v_threshold - v_reset), as snnTorch's `reset_mechanism="subtract"`).
    - `input_mode`: what one per-step input value x means. `"current"` (default): a current held
      constant over the step (the literal ODE). `"impulse"`: the area of a Dirac pulse at the
      start of the step, so an input spike of 1 moves `tau dv/dt = ... + r I` by `r x / tau`
      at once (for I and IF, `v <- v + r x`; for Cuba neurons `I <- I + w_in x / tau_syn`).
    - `cuba_order`: for CubaLI / CubaLIF under `"euler"`, `"current_first"` (default; snnTorch's
      Synaptic: I is updated first and v uses the new I) or `"voltage_first"` (v uses the old I).
    - `surrogate`: the surrogate gradient of the spike (`nirjax.Surrogate` or a family name).
    - `detach_reset`: if True, no gradient flows through the reset (often more stable training).
    - `delay_rounding`: if True, a Delay that is not a whole number of steps is rounded to the
      nearest step; if False (default) that is an error.
    """

    dt: float
    discretization: str = "euler"
    reset: str = "value"
    input_mode: str = "current"
    cuba_order: str = "current_first"
    surrogate: Surrogate = dataclasses.field(default_factory=Surrogate)
    detach_reset: bool = False
    delay_rounding: bool = False

    def __post_init__(self):
        if isinstance(self.dt, bool) or not isinstance(self.dt, (int, float)):
            try:
                dt = float(self.dt)
            except (TypeError, ValueError):
                raise TypeError(
                    f"dt: expected a positive number of seconds, got {self.dt!r}. "
                    "Pass e.g. dt=1e-4."
                ) from None
        else:
            dt = float(self.dt)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(
                f"dt: must be a finite number > 0 (seconds), got {self.dt!r}. Pass e.g. dt=1e-4."
            )
        object.__setattr__(self, "dt", dt)
        _choice("discretization", self.discretization, DISCRETIZATIONS)
        _choice("reset", self.reset, RESETS)
        _choice("input_mode", self.input_mode, INPUT_MODES)
        _choice("cuba_order", self.cuba_order, CUBA_ORDERS)
        object.__setattr__(self, "surrogate", as_surrogate(self.surrogate))
        for name in ("detach_reset", "delay_rounding"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected True or False, got {getattr(self, name)!r}.")

    def replace(self, **changes) -> Options:
        """A copy with some options changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)}; valid options are "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)
