"""The protocol every primitive follows."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

from .._execution import Execution, scan

Shape = tuple[int, ...]


class Primitive(eqx.Module):
    """Base class of every nirjax node (a NIR primitive or a nested graph).

    A node advances one time step with `step(state, x) -> (state, y)` (carry first, as
    `lax.scan` wants) from `init_state(input_shape, dtype)`. Stateless nodes (`stateful =
    False`) have state `None`, implement `__call__(x)` for one step, and run a whole time axis
    at once in `apply_sequence(xs)`, which the graph compiler uses outside cycles.
    """

    stateful: ClassVar[bool] = False
    elementwise: ClassVar[bool] = False  # parameters broadcast against the input

    def init_state(self, input_shape: Shape, dtype: Any) -> Any:
        """The state at t = 0 for one sample whose per-step input has `input_shape`."""
        return None

    def step(self, state: Any, x: Any) -> tuple[Any, Any]:
        """Advance one step: `(state, x) -> (state, y)`."""
        return state, self(x)

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define a stateless step.")

    def apply_sequence(self, xs: Any, execution: Execution | None = None) -> Any:
        """A stateless node over a leading time axis, as one batched operation."""
        return jax.vmap(self)(xs)

    def run_sequence(
        self, state: Any, xs: Any, record: bool = False, execution: Execution | None = None
    ):
        """Run over a leading time axis: returns `(final_state, ys, trace)`, where `trace` holds
        the per-step `observables` (leading time axis) if `record`, else `None`."""
        if not self.stateful:
            return state, self.apply_sequence(xs, execution), ({} if record else None)

        def body(carry, x):
            carry, y = self.step(carry, x)
            return carry, (y, self.observables(carry) if record else None)

        state, (ys, trace) = scan(body, state, xs, execution)
        return state, ys, trace

    def observables(self, state: Any) -> dict:
        """The named state variables a `record` request traces (e.g. `{"v": v}`)."""
        return {}

    def output_shape(self, input_shape: Shape, dtype: Any) -> Shape:
        """The per-step output shape for a per-step input of `input_shape`."""
        state = self.init_state(input_shape, dtype)
        x = jax.ShapeDtypeStruct(input_shape, dtype)
        _, y = eqx.filter_eval_shape(self.step, state, x)
        return tuple(y.shape)

    def expected_input_shape(self) -> Shape | None:
        """The per-step input shape the node's parameters imply, if they fix one."""
        return None


def broadcast_shape_or_error(name: str, what: str, params: dict, input_shape: Shape) -> None:
    """Check that per-neuron parameters broadcast to the input without changing its shape."""
    for field, value in params.items():
        try:
            out = np.broadcast_shapes(tuple(np.shape(value)), tuple(input_shape))
        except ValueError:
            out = None
        if out != tuple(input_shape):
            raise ValueError(
                f"node {name!r} ({what}): field {field!r} has shape {tuple(np.shape(value))}, "
                f"which does not match its input of shape {tuple(input_shape)}. Per-neuron "
                "parameters must have the input's shape (or broadcast to it)."
            )
