"""Options that change the discrete-time dynamics, and their one codec.

Every option is a field of `Options`; its kind (and choices) in the field's metadata drive every
place that names options: `from_nir` keywords, the NIR metadata written on export and parsed
strictly on import (`nirjax_<name>` keys), and the command-line flags (`--<name>`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._discretization import DISCRETIZATIONS, Discretization, as_discretization
from ._surrogate import Surrogate, as_surrogate

METADATA_PREFIX = "nirjax_"


def _option(default=dataclasses.MISSING, *, kind: str, help: str, choices=(), **kw):
    return dataclasses.field(
        default=default, metadata={"kind": kind, "help": help, "choices": choices}, **kw
    )


@dataclasses.dataclass(frozen=True)
class Options:
    """How a NIR graph's continuous-time dynamics are stepped. One per stateful node.

    **Arguments:**

    - `dt`: the time step in seconds (NIR's unit of time), from 1e-12 to 1e6. Required: there
      is no default.
    - `discretization`: `"euler"` (forward Euler of NIR's ODE, the default; what the NIR paper's
      reference backends do), `"exact"` (the exact solution of the linear ODE over one step with
      the input held constant: an exponential integrator), or any `nirjax.Discretization`
      (`nirjax.Euler(...)`, `nirjax.Exact()`, a registered one).
    - `reset`: `"value"` (NIR's definition, v <- v_reset after a spike; default) or `"subtract"`
      (v <- v - (v_threshold - v_reset), as snnTorch's `reset_mechanism="subtract"`).
    - `spikes_per_step`: `"single"` (NIR's reading and the default: at most one spike per step,
      `z = H(threshold)`) or `"multi"` (Sinabs's `MultiSpike`, Rockpool's neurons: as many
      spikes as fit, `z = floor((v - v_reset) / (v_threshold - v_reset))` under
      `threshold_comparison="greater_equal"`, `ceil(...) - 1` under `"greater"`, each one
      subtracted; needs `reset="subtract"`).
    - `threshold_comparison`: `"greater"` (a spike where `v > v_threshold`; default) or
      `"greater_equal"` (`v >= v_threshold`, as Sinabs and Rockpool compare).
    - `spike_order`: `"after_input"` (default: the step's input is integrated, then the spike
      is decided on the new state) or `"before_input"` (Spyx: the spike is decided on the state
      at the start of the step, then the input is integrated and the reset applied to the
      result, so every spiking layer lags one step).
    - `input_mode`: what one per-step input value x means. `"current"` (default): a current held
      constant over the step (the literal ODE). `"impulse"`: the area of a Dirac pulse at the
      start of the step, so an input spike of 1 moves `tau dv/dt = ... + r I` by `r x / tau`
      at once (for I and IF, `v <- v + r x`; for Cuba neurons `I <- I + w_in x / tau_syn`).
    - `cuba_order`: for neurons with several state variables (CubaLI / CubaLIF) under Euler,
      `"current_first"` (default; snnTorch's Synaptic: the variables are updated in order, I
      first and v with the new I) or `"voltage_first"` (all from the old state).
    - `surrogate`: the surrogate gradient of the spike (`nirjax.Surrogate` or a family name).
    - `detach_reset`: if True, no gradient flows through the reset (often more stable training).
    - `gradient`: how the reverse pass of a neuron's scan is computed. `"custom"` (default): the
      rule of `nirjax._reverse`, derived from the neuron's own step (keeps only the state at
      the start of each step, recomputes spike and surrogate in reverse, sums the parameter
      gradients once per sequence; inside a cycle one rule for the whole cycle, which takes
      the recurrent weights' gradient once over the time axis);
      `"autodiff"`: plain autodiff of the scan (for checking). Both give the same gradients
      up to float rounding; the forward pass is identical.
    - `delay_rounding`: if True, a Delay that is not a whole number of steps is rounded to the
      nearest step; if False (default) that is an error.
    """

    dt: float = _option(kind="seconds", help="time step in seconds")
    discretization: Discretization = _option(
        "euler", kind="discretization", help="how each step is integrated",
        choices=lambda: tuple(DISCRETIZATIONS),
    )
    reset: str = _option("value", kind="choice", choices=("value", "subtract"),
                         help="what a spike does to v")
    spikes_per_step: str = _option("single", kind="choice", choices=("single", "multi"),
                                   help="at most one spike per step, or as many as fit")
    threshold_comparison: str = _option("greater", kind="choice",
                                        choices=("greater", "greater_equal"),
                                        help="spike where v > v_threshold or v >= v_threshold")
    spike_order: str = _option("after_input", kind="choice",
                               choices=("after_input", "before_input"),
                               help="decide the spike after or before the step's input")
    input_mode: str = _option("current", kind="choice", choices=("current", "impulse"),
                              help="what one input value means: a held current or an impulse")
    cuba_order: str = _option("current_first", kind="choice",
                              choices=("current_first", "voltage_first"),
                              help="order of the I and v updates under Euler")
    surrogate: Surrogate = _option(kind="surrogate", default_factory=Surrogate,
                                   help="surrogate gradient family (affects gradients only)")
    detach_reset: bool = _option(False, kind="bool", help="no gradient through the reset")
    gradient: str = _option("custom", kind="choice", choices=("custom", "autodiff"),
                            help="reverse pass of neuron scans: derived rule or plain autodiff")
    delay_rounding: bool = _option(False, kind="bool",
                                   help="round delays to whole steps instead of refusing")

    def __post_init__(self):
        object.__setattr__(self, "dt", _seconds("dt", self.dt))
        object.__setattr__(self, "discretization", as_discretization(self.discretization))
        for f in dataclasses.fields(self):
            kind, value = f.metadata["kind"], getattr(self, f.name)
            if kind == "choice" and value not in f.metadata["choices"]:
                raise ValueError(
                    f"{f.name}: expected one of {list(f.metadata['choices'])}, got {value!r}."
                )
            if kind == "bool" and not isinstance(value, bool):
                raise TypeError(f"{f.name}: expected True or False, got {value!r}.")
        object.__setattr__(self, "surrogate", as_surrogate(self.surrogate))
        if self.spikes_per_step == "multi" and self.reset != "subtract":
            raise ValueError(
                f"spikes_per_step='multi' subtracts (v_threshold - v_reset) once per spike and "
                f"needs reset='subtract', got reset={self.reset!r}. Pass reset='subtract' (as "
                "Sinabs's MembraneSubtract and Rockpool's neurons do)."
            )

    @staticmethod
    def metadata_key(name: str) -> str:
        """The NIR metadata key an option is recorded under (`"nirjax_<name>"`)."""
        check_names({name: None})
        return METADATA_PREFIX + name

    def replace(self, **changes) -> Options:
        """A copy with some options changed (validated again)."""
        check_names(changes)
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- the codec
    def to_metadata(self, base: Options | None = None) -> dict[str, Any]:
        """The options as flat NIR metadata `nirjax_<name>` (NIR's HDF5 writer keeps one level);
        with `base`, only those that differ from it. A surrogate is two keys, `surrogate` and
        `surrogate_scale`, always written together."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if base is not None and getattr(base, f.name) == value:
                continue
            if f.metadata["kind"] == "surrogate":
                out["surrogate"], out["surrogate_scale"] = value.name, value.scale
            elif f.metadata["kind"] == "discretization":
                out[f.name] = value.name
            else:
                out[f.name] = value
        return {METADATA_PREFIX + k: v for k, v in out.items()}

    @staticmethod
    def from_metadata(metadata: Mapping[str, Any] | None, where: str = "metadata") -> dict:
        """The options recorded in NIR metadata (`nirjax_<name>` keys), parsed strictly: a
        boolean option must be a boolean (not `"False"` or 2), dt a number, a choice one of its
        values. Returns the changes as a dict (may be empty); other keys are ignored."""
        found: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(Options)}
        for key, raw in (metadata or {}).items():
            if not (isinstance(key, str) and key.startswith(METADATA_PREFIX)):
                continue
            name = key[len(METADATA_PREFIX):]
            if name not in fields and name != "surrogate_scale":
                continue
            value = decode(raw)
            kind = "number" if name == "surrogate_scale" else fields[name].metadata["kind"]
            bad = {
                "seconds": isinstance(value, bool) or not isinstance(value, (int, float)),
                "number": isinstance(value, bool) or not isinstance(value, (int, float)),
                "bool": not isinstance(value, bool),
            }.get(kind, not isinstance(value, str))
            if bad:
                expected = {"seconds": "a number of seconds", "number": "a number",
                            "bool": "True or False"}.get(kind, "a name")
                raise ValueError(
                    f"{where}: {key!r} must be {expected}, got {raw!r}. Fix or remove the entry."
                )
            found[name] = value
        if "surrogate" in found or "surrogate_scale" in found:
            try:
                found["surrogate"] = Surrogate(found.pop("surrogate", "fast_sigmoid"),
                                               found.pop("surrogate_scale", None))
            except ValueError as e:
                keys = [METADATA_PREFIX + k for k in ("surrogate", "surrogate_scale")]
                raise ValueError(f"{where}: {keys[0]!r} / {keys[1]!r}: {e}") from None
        return found

    @staticmethod
    def add_arguments(parser) -> None:
        """Add one `--<name>` flag per option (except dt) to an argparse parser; unset flags
        are None (the file's recorded value, else the default)."""
        for f in dataclasses.fields(Options):
            kind, flag = f.metadata["kind"], "--" + f.name.replace("_", "-")
            if kind == "seconds":
                continue
            choices = f.metadata["choices"]
            choices = choices() if callable(choices) else choices
            if kind == "bool":
                parser.add_argument(flag, action="store_true", default=None,
                                    help=f.metadata["help"])
            elif kind == "surrogate":
                parser.add_argument(flag, default=None, help=f.metadata["help"])
            else:
                parser.add_argument(flag, choices=choices, default=None,
                                    help=f"{f.metadata['help']} (default: recorded in the file, "
                                    f"else {f.default})")

    @staticmethod
    def from_arguments(args) -> dict:
        """The options given as command-line flags (see `add_arguments`), as a dict."""
        return {f.name: getattr(args, f.name) for f in dataclasses.fields(Options)
                if getattr(args, f.name, None) is not None}


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Options))


def check_names(changes: Mapping[str, Any], where: str = "") -> None:
    unknown = set(changes) - set(option_names())
    if unknown:
        raise TypeError(
            f"{where}unknown option(s) {sorted(unknown)}; valid options are {list(option_names())}."
        )


def decode(value: Any) -> Any:
    """A metadata value as a plain Python value (bytes to str, 0-d arrays and numpy scalars to
    their item)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return decode(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _seconds(field: str, value: Any) -> float:
    if hasattr(value, "shape") and hasattr(value, "dtype") and value.shape == ():
        value = value.item() if np.dtype(value.dtype).kind in "iuf" else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"{field}: expected a positive number of seconds, got {value!r}. Pass e.g. dt=1e-4."
        )
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{field}: must be a finite number > 0 (seconds), got {value!r}. Pass e.g. dt=1e-4."
        )
    if not DT_RANGE[0] <= value <= DT_RANGE[1]:
        raise ValueError(
            f"{field}: {value!r} s is outside the range nirjax accepts, {DT_RANGE[0]:g} to "
            f"{DT_RANGE[1]:g} s (in float32, dt / tau and the step count lose all precision "
            "beyond it). Is it in seconds? Pass e.g. dt=1e-4."
        )
    return value


DT_RANGE = (1e-12, 1e6)
"""The time steps nirjax accepts, in seconds: a picosecond to about 11.6 days."""
