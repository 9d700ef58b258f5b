"""The protocol every primitive follows."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax

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
    # Stateless nodes: the output is an affine function of the input (so the continuous-time
    # solver can pass impulses through it). Neurons: the vector field is affine in state and
    # input with constant coefficients.
    linear: ClassVar[bool] = False

    def options_or(self, default: Any) -> Any:
        """The `nirjax.Options` this node was built with, as far as they change what it
        computes; `default` (the enclosing graph's) for a node that has none of its own."""
        own = getattr(self, "options", None)
        return default if own is None else own

    def with_options(self, options: Any) -> Primitive:
        """This node as if built with `options` (parameters kept). Nodes whose computation no
        option affects return themselves."""
        if getattr(self, "options", None) is None:
            return self
        return dataclasses.replace(self, options=options)

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
        # Abstractly, state included: nothing is allocated for a shape that is only checked.
        x = jax.ShapeDtypeStruct(input_shape, dtype)
        _, y = eqx.filter_eval_shape(
            lambda node, x: node.step(node.init_state(input_shape, dtype), x), self, x)
        return tuple(y.shape)

    def expected_input_shape(self) -> Shape | None:
        """The per-step input shape the node's parameters imply, if they fix one."""
        return None
