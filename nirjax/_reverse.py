r"""The reverse pass of a neuron's scan, derived from its one step (`Options.gradient="custom"`).

Plain autodiff of `lax.scan(neuron.advance, ...)` keeps every intermediate the step's
derivative needs (the integrated state, the surrogate derivative, the spike, the reset's
factors: about six time-by-neuron arrays for a LIF) and, under `vmap`, sums every per-neuron
parameter's cotangent over the batch at every step. The rule here keeps the minimum and
recomputes the rest:

- **forward**: the scan of `advance`, keeping only the state at the start of each step (one
  time-by-neuron array per state variable; the input is the caller's own array);
- **reverse**: a reverse scan that recomputes each step from its stored start state and input
  and pulls the cotangent back through it with `jax.vjp` of the neuron's own `advance` (so the
  spike and the surrogate are recomputed from the definition, nothing is written twice);
- **parameters**: the parameters and the discretization's coefficients are broadcast to the
  state's shape before the reverse scan, so each step only adds elementwise; the sum to the
  parameters' shapes (and over the batch, under `vmap`) and the pull-back through
  `discretization.prepare` happen once, after the scan.

When no parameter of the neuron is differentiated (training the weights alone; the rule is told
through `jax.custom_vjp`'s `symbolic_zeros`), a neuron whose step is `fire(integrate(...))`
with `integrate` affine (`linear`, the default `spike_order`) keeps even less: only each step's
**integrated state** (before threshold and reset). The reverse step pulls the cotangent back
through `fire` at that state (spike, surrogate and reset recomputed) and then through the
affine `integrate`, whose pull-back is one linear map for every step; the scan's input is not
kept at all, so a layer's currents are freed as soon as its forward scan has read them.

Because the reverse step is the derivative of the same `advance` that runs forward, the
gradients equal plain autodiff's for every neuron, discretization and option, up to the order
in which float sums are taken (tested in `tests/test_gradients.py`).

Inside a cycle (a recurrent layer) the graph scans all members together. There the whole cycle
gets one rule (`cycle_sequence`, a `jax.custom_jvp`, so forward mode works as well):

- **forward**: the cycle's scan, keeping each stateful member's state at the start of every step
  (the members' outputs over time are the cycle's own results);
- **tangent**: a scan whose step is the `jax.jvp` of the cycle's own step, wrapped in
  `jax.checkpoint`, so that reverse mode (JAX transposes this scan) recomputes each step from its
  stored start state, its input and the previous step's outputs, and keeps nothing else;
- **the weights of the cycle's stateless members** (the recurrent `Linear`/`Affine`) are not
  differentiated inside the scan: their tangent `dW x_t` is taken once for the whole time axis,
  from the members' inputs over time, and enters the tangent scan as an input. In reverse mode
  that is one `(T B) x N` contraction after the reverse scan instead of an `N x N` accumulator
  read and written at every step.

Under the finiteness check the forward loop also watches the cycle's state (the first step at
which it went non-finite). Where a member is recorded or is a subgraph the neuron's step gets
the per-step rule (`step_vjp`, a `jax.checkpoint` of the step): it keeps the
start state and the input, recomputes the step in reverse, and leaves the parameter sums to
autodiff's scan.

Forward-mode differentiation (`jax.jvp`, `jax.jacfwd`) of a `custom_vjp` is impossible, so where
the inputs carry a forward-mode tangent (`forward_mode`) the sequence runs as the plain scan;
the per-step form supports both modes. Inside an outer `lax.scan` (e.g.
`with_execution(checkpoint=k)`) the tangent cannot be seen: forward mode there needs
`gradient="autodiff"`.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def _split(neuron):
    """`(arrays, static)` of a neuron, or None where the rule does not apply (a non-float
    array field: nothing to differentiate, so autodiff runs it)."""
    dyn, static = eqx.partition(neuron, eqx.is_array)
    leaves = jax.tree.leaves(dyn)
    if not all(jnp.issubdtype(a.dtype, jnp.inexact) for a in leaves):
        return None
    return dyn, static


def applies(neuron, coeffs: Any) -> bool:
    """Whether the custom rule applies: every array of the neuron and of its discretization's
    coefficients is floating point. Otherwise the scan runs under plain autodiff."""
    return _split(neuron) is not None and all(
        jnp.issubdtype(jnp.asarray(a).dtype, jnp.inexact) for a in jax.tree.leaves(coeffs)
    )


def _expand(tree, shape):
    """Every leaf broadcast to `shape` where it broadcasts (per-neuron parameters), else kept."""

    def one(a):
        try:
            target = np.broadcast_shapes(a.shape, shape)
        except ValueError:
            return a
        return jnp.broadcast_to(a, target) if target == tuple(shape) else a

    return jax.tree.map(one, tree)


def _reduce(big, small):
    """Sum each leaf of `big` down to the shape of the matching leaf of `small`."""

    def one(b, s):
        if b.shape == s.shape:
            return b
        lead = b.ndim - s.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(s.shape) if d == 1 and b.shape[lead + i] != 1
        )
        return jnp.sum(b, axis=axes).reshape(s.shape).astype(s.dtype)

    return jax.tree.map(one, big, small)


def _state_shape(state: dict):
    return np.broadcast_shapes(*(tuple(jnp.shape(v)) for v in state.values()))


def sequence_vjp(neuron, state: dict, xs: jax.Array, unroll: int = 1, bias=None):
    """`lax.scan` of `neuron.advance` over `xs` (plus `bias` at every step, if given: the bias
    of the Affine node feeding the neuron, added inside the scan instead of to the whole
    sequence) from `state` with the reverse pass above. Returns `(final state, outputs over
    time)`."""
    dyn, static = _split(neuron)
    return _sequence(static, unroll, dyn, state, xs, bias)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _sequence(static, unroll, dyn, state, xs, bias):
    out, _ = _sequence_fwd(static, unroll, dyn, state, xs, bias)
    return out


def _plus(x, bias):
    return x if bias is None else x + bias


def _at(tree, t):
    """Step t of every leaf (a leading time axis)."""
    return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, t, keepdims=False), tree)


def _put(tree, t, values):
    """`tree` with step t of every leaf set to the matching leaf of `values` (in place: the
    buffers are a loop's carry and written only)."""
    return jax.tree.map(
        lambda a, v: jax.lax.dynamic_update_index_in_dim(a, v.astype(a.dtype), t, 0),
        tree, values)


_FILL = itertools.count(1)


def _empty(T, tree, after=None):
    """A `(T, ...)` buffer for each leaf (shapes and dtypes) of `tree`, to be overwritten step
    by step. Each is filled with a different constant: XLA would merge equal constant buffers
    into one and then copy it into each loop buffer (one more `(T, ...)` array at the peak).
    With `after` (an array computed before the loop), the fill depends on one of its values
    (`0 * a`, not simplified for floats), so XLA allocates the buffer once `after` exists
    (the reverse pass's output once the forward pass is done), not at the program's start."""
    tie = None
    if after is not None and jnp.size(after) and jnp.issubdtype(after.dtype, jnp.floating):
        tie = 0 * jnp.ravel(after)[0]

    def one(a):
        fill = next(_FILL) % 127 if jnp.issubdtype(a.dtype, jnp.number) else 0
        if tie is not None and jnp.issubdtype(a.dtype, jnp.floating):
            return jnp.full((T,) + tuple(a.shape), fill + tie.astype(a.dtype), a.dtype)
        return jnp.full((T,) + tuple(a.shape), fill, a.dtype)

    return jax.tree.map(one, tree)


def _loop(step, carry, xs, T, unroll, outs, reverse=False, after=None):
    """`lax.scan`'s semantics (`step(carry, x_t) -> (carry, out_t)`, outputs stacked along a
    leading time axis) written as a `fori_loop` that indexes its inputs and writes its outputs
    in place. Under `vmap` the time axis then stays where the caller has it (behind the batch
    axis): no transposed copy of the inputs or of the outputs, as `lax.scan`'s batching rule
    makes. `outs`: the shapes and dtypes of one step's outputs."""

    def body(i, c):
        inner, bufs = c
        t = T - 1 - i if reverse else i
        inner, out = step(inner, _at(xs, t))
        return inner, _put(bufs, t, out)

    return jax.lax.fori_loop(0, T, body, (carry, _empty(T, outs, after)), unroll=unroll)


def _forward_scan(static, unroll, dyn, state, xs, bias=None):
    neuron = eqx.combine(dyn, static)
    coeffs = neuron.prepare()

    def step(s, x):
        new, y = neuron.advance(coeffs, s, _plus(x, bias))
        return new, (y, s)

    T = xs.shape[0]
    outs = jax.eval_shape(step, state, _at(xs, 0))[1]
    return _loop(step, state, xs, T, unroll, outs)


def _lean(neuron) -> bool:
    """Whether the reverse pass may keep only the integrated state of each step (`_lean_scan`):
    a spiking or non-spiking neuron whose step is `fire(integrate(state, x))` (the default
    `spike_order`) with `integrate` affine in state and input (`linear`), so that the pull-back
    through `integrate` needs no stored state or input."""
    from .primitives._neuron import Neuron

    return (
        neuron.linear
        and not (neuron.spiking and neuron.options.spike_order == "before_input")
        and type(neuron).advance is Neuron.advance  # the step is fire(integrate(...))
        and type(neuron).integrate is Neuron.integrate  # affine when the field is
    )


def _sequence_fwd(static, unroll, dyn, state, xs, bias):
    # symbolic_zeros: every leaf comes as a CustomVJPPrimal (value, perturbed).
    # (Some transformations, e.g. `jax.checkpoint`'s partial evaluation, call the rule with
    # plain values: then every input counts as differentiated.)
    perturbed = any(getattr(p, "perturbed", True)
                    for p in jax.tree.leaves(dyn, is_leaf=_is_primal))
    dyn, state, xs, bias = (jax.tree.map(lambda p: p.value if _is_primal(p) else p, a,
                                         is_leaf=_is_primal)
                            for a in (dyn, state, xs, bias))
    if not perturbed and _lean(eqx.combine(dyn, static)):
        final, (ys, ints) = _lean_scan(static, unroll, dyn, state, xs, bias)
        # No input kept: only a zero-size array with its per-step shape and dtype.
        proto = jnp.zeros((0,) + xs.shape[1:], xs.dtype)
        return (final, ys), (dyn, ints, None, proto, bias)
    final, (ys, starts) = _forward_scan(static, unroll, dyn, state, xs, bias)
    return (final, ys), (dyn, starts, xs, None, bias)


def _is_primal(a) -> bool:
    return isinstance(a, jax.custom_derivatives.CustomVJPPrimal)


def _lean_scan(static, unroll, dyn, state, xs, bias=None):
    """The forward scan keeping each step's integrated state (before threshold and reset)
    instead of its start state and input: one time-by-neuron array per state variable, and
    the input is free as soon as the scan has read it."""
    neuron = eqx.combine(dyn, static)
    coeffs = neuron.prepare()

    def step(s, x):
        mid = neuron.integrate(coeffs, s, _plus(x, bias))
        new, y = neuron.fire(mid)
        return new, (y, mid)

    outs = jax.eval_shape(step, state, _at(xs, 0))[1]
    return _loop(step, state, xs, xs.shape[0], unroll, outs)


def _instantiate(tree):
    """Symbolic-zero cotangents (`jax.custom_derivatives.SymbolicZero`) as zero arrays."""
    zero = jax.custom_derivatives.SymbolicZero
    return jax.tree.map(lambda c: jnp.zeros(c.shape, c.dtype) if isinstance(c, zero) else c,
                        tree, is_leaf=lambda c: isinstance(c, zero))


def _lean_bwd(static, unroll, dyn, ints, proto, ct_final, ct_ys):
    """The reverse pass when no parameter is differentiated: each step pulls the cotangent back
    through `fire` at its stored integrated state (spike, surrogate and reset recomputed from
    the definition) and then through `integrate`, which is affine in state and input, so its
    pull-back is the same linear map at every step (taken once, at zero)."""
    neuron = eqx.combine(dyn, static)
    coeffs = neuron.prepare()
    zero_s = jax.tree.map(lambda a: jnp.zeros(a.shape[1:], a.dtype), ints)
    zero_x = jnp.zeros(proto.shape[1:], proto.dtype)
    _, integrate_t = jax.vjp(lambda s, x: neuron.integrate(coeffs, s, x), zero_s, zero_x)

    def body(ct_s, inp):
        mid, ct_y = inp
        _, pull = jax.vjp(neuron.fire, mid)
        (ct_mid,) = pull((ct_s, ct_y))
        return integrate_t(ct_mid)

    outs = jax.ShapeDtypeStruct(proto.shape[1:], proto.dtype)
    ct_state, ct_xs = _loop(body, ct_final, (ints, ct_ys), ct_ys.shape[0], unroll, outs,
                            reverse=True, after=jax.tree.leaves(ints)[0])
    return jax.tree.map(jnp.zeros_like, dyn), ct_state, ct_xs


def _bias_ct(ct_xs, bias):
    """The bias's cotangent: the input cotangent summed over time (and to the bias's shape)."""
    return None if bias is None else _reduce(ct_xs, bias)


def _sequence_bwd(static, unroll, residuals, cts):
    dyn, starts, xs, proto, bias = residuals
    ct_final, ct_ys = _instantiate(cts)
    if xs is None:
        ct_dyn, ct_state, ct_xs = _lean_bwd(static, unroll, dyn, starts, proto, ct_final, ct_ys)
        return ct_dyn, ct_state, ct_xs, _bias_ct(ct_xs, bias)
    coeffs, prepare_vjp = jax.vjp(lambda d: eqx.combine(d, static).prepare(), dyn)
    shape = _state_shape(jax.tree.map(lambda a: a[0], starts))
    dyn_b, coeffs_b = _expand(dyn, shape), _expand(coeffs, shape)

    def step(d, c, s, x):
        return eqx.combine(d, static).advance(c, s, x)

    def body(carry, inp):
        ct_s, acc_d, acc_c = carry
        s, x, ct_y = inp
        _, pull = jax.vjp(step, dyn_b, coeffs_b, s, _plus(x, bias))
        g_d, g_c, g_s, g_x = pull((ct_s, ct_y))
        acc_d = jax.tree.map(jnp.add, acc_d, g_d)
        acc_c = jax.tree.map(jnp.add, acc_c, g_c)
        return (g_s, acc_d, acc_c), g_x

    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    carry0 = (ct_final, zeros(dyn_b), zeros(coeffs_b))
    (ct_state, acc_d, acc_c), ct_xs = _loop(
        body, carry0, (starts, xs, ct_ys), xs.shape[0], unroll,
        jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype), reverse=True,
        after=jax.tree.leaves(starts)[0])
    (from_coeffs,) = prepare_vjp(_reduce(acc_c, coeffs))
    ct_dyn = jax.tree.map(jnp.add, _reduce(acc_d, dyn), from_coeffs)
    return ct_dyn, ct_state, ct_xs, _bias_ct(ct_xs, bias)


_sequence.defvjp(_sequence_fwd, _sequence_bwd, symbolic_zeros=True)


def step_vjp(neuron, state: dict, x: jax.Array):
    """One `neuron.advance` step (coefficients included) whose reverse pass recomputes the step
    from its start state and input: what a neuron inside a cycle runs. Written with
    `jax.checkpoint` (nothing saved but the inputs), so forward-mode differentiation works too,
    also inside the cycle's scan."""
    dyn, static = _split(neuron)
    return jax.checkpoint(functools.partial(_advance, static), prevent_cse=False)(dyn, state, x)


def _advance(static, dyn, state, x):
    neuron = eqx.combine(dyn, static)
    return neuron.advance(neuron.prepare(), state, x)


def forward_mode(*trees) -> bool:
    """Whether any array in `trees` carries a forward-mode (`jax.jvp`, `jax.jacfwd`) tangent,
    looking through `vmap` and `jit` tracers. A `custom_vjp` cannot be differentiated forward,
    so there the plain scan runs (forward mode has no reverse pass to replace)."""

    def carries(a) -> bool:
        while isinstance(a, jax.core.Tracer):
            if type(a).__name__ == "JVPTracer":
                return True
            a = getattr(a, "val", getattr(a, "primal", None))
        return False

    return any(carries(a) for a in jax.tree.leaves(trees))


def cycle_sequence(step, feedback, hoisted, unroll, dyn, hoist, carry0, ext, watch=None):
    """A cycle's scan with the rule above. Returns `(final carry, members' outputs over time,
    first step)`: with `watch` (a function of the carry returning a scalar bool, e.g.
    `all_finite`), the first step whose new carry it rejects, -1 if none (and -1 without it).

    - `step(dyn, hoist, carry, ext_t, z)`: one step of the cycle, `carry = (states,
      feedback)`, returning `(carry, values_t)`; `z` (or None): per hoisted member, a value
      added to its output (the entry point of its weights' tangent).
    - `feedback(values_t)`: the back edges' values carried from one step's outputs.
    - `hoisted(hoist, values, carry0, ext)`: every hoisted (stateless) member's output over the
      whole time axis, from the members' outputs over time (its tangent with respect to `hoist`
      is the weights' tangent at every step).
    - `dyn`: the other members' arrays; `hoist`: the hoisted members' arrays; `ext`: the
      inputs from outside the cycle over time, by member."""
    return _cycle(step, feedback, hoisted, unroll, watch, dyn, hoist, carry0, ext)


def _cycle_forward(step, unroll, watch, dyn, hoist, carry0, ext, keep):
    def body(c, x):
        c, bad, t = c
        new, values = step(dyn, hoist, c, x, None)
        if watch is not None:
            bad = jnp.where((bad < 0) & ~watch(new), t, bad)
        return (new, bad, t + 1), ((values, c[0]) if keep else values)

    T = jax.tree.leaves(ext)[0].shape[0]
    start = (carry0, jnp.int32(-1), jnp.int32(0))
    outs = jax.eval_shape(body, start, _at(ext, 0))[1]
    (final, bad, _), outs = _loop(body, start, ext, T, unroll, outs)
    return final, outs, bad


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3, 4))
def _cycle(step, feedback, hoisted, unroll, watch, dyn, hoist, carry0, ext):
    return _cycle_forward(step, unroll, watch, dyn, hoist, carry0, ext, keep=False)


@_cycle.defjvp
def _cycle_jvp(step, feedback, hoisted, unroll, watch, primals, tangents):
    dyn, hoist, carry0, ext = primals
    d_dyn, d_hoist, d_carry0, d_ext = tangents
    final, (values, starts), bad = _cycle_forward(step, unroll, watch, dyn, hoist, carry0, ext,
                                                  keep=True)
    # The hoisted members' weight tangents at every step, at once: dW x_t for all t.
    _, d_z = jax.jvp(lambda h: hoisted(h, values, carry0, ext), (hoist,), (d_hoist,))
    T = jax.tree.leaves(ext)[0].shape[0]
    fb0 = carry0[1]

    def tangent_step(i, primal, d_c, d_x, d_zt, d_dyn):
        dyn, hoist, starts, values, ext, fb0 = primal
        prev = feedback(_at(values, jnp.maximum(i - 1, 0)))
        fb = jax.tree.map(lambda a0, a: jnp.where(i == 0, a0, a), fb0, prev)
        zero = jax.tree.map(jnp.zeros_like, d_zt)

        def f(d, c, x, z):
            return step(d, hoist, c, x, z)

        _, (d_new, d_vals) = jax.jvp(f, (dyn, (_at(starts, i), fb), _at(ext, i), zero),
                                     (d_dyn, d_c, d_x, d_zt))
        return d_new, d_vals

    # Nothing of the step is saved but its arguments: reverse mode recomputes it.
    tangent_step = jax.checkpoint(tangent_step, prevent_cse=False)
    primal = (dyn, hoist, starts, values, ext, fb0)

    def body(d_c, inp):
        i, d_x, d_zt = inp
        return tangent_step(i, primal, d_c, d_x, d_zt, d_dyn)

    d_final, d_values = jax.lax.scan(body, d_carry0, (jnp.arange(T), d_ext, d_z),
                                     unroll=unroll)
    no_tangent = np.zeros((), dtype=jax.dtypes.float0)  # the step index has none
    return (final, values, bad), (d_final, d_values, no_tangent)
