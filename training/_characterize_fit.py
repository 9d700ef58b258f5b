r"""The fit of one candidate structure: a teacher-forced neuron, a closed-form probe, and
Levenberg-Marquardt on the neuron's parameters.

For a candidate structure the recorded node's input `u` (the output of the node before it, the
latency Delay included) does not depend on the node's parameters, so it is computed once by the
graph's own executor. The node is then run with teacher forcing from its definition
(`neuron.integrate` for the sub-threshold step, `neuron.reset` at the recorded spike steps), and
the probe reads `v` before or after the reset. The recording `y` of a node is modelled as

$$y_t = a\,v_t + b + \varepsilon_t,$$

with the probe scale `a` and offset `b` (one per node, the recording's units) solved in closed
form for every parameter value (variable projection), so Levenberg-Marquardt (optimistix) only
moves the neuron's parameters: time constants as `p0 exp(theta)`, voltages as
`p0 + |v_threshold - v_reset| theta`, and the input gain (`r` / `w_in`) per neuron only relative
to the node's mean (a common gain is the probe scale: the voltage units of a platform). The
threshold is not in the trace residual: the pre-reset voltages put it in the interval
`(max over non-spike steps, min over spike steps)`; the nominal threshold is kept when it lies
inside, else the middle of the interval is taken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

import nirjax

from ._characterize_structure import input_gain_field
from ._mismatch_forcing import Forced


def default_params(neuron: nirjax.Neuron) -> tuple[str, ...]:
    """Time constants, the input gain and v_reset (those the neuron has)."""
    fields = type(neuron).parameters
    out = [f for f in fields if f.startswith("tau")]
    gain = input_gain_field(neuron)
    if gain is not None:
        out.append(gain)
    if "v_reset" in fields:
        out.append("v_reset")
    return tuple(out)


def neuron_shape(neuron: nirjax.Neuron) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(jnp.shape(p) for p in neuron.params().values())))


def _voltage_scale(neuron) -> jax.Array:
    th = jnp.asarray(getattr(neuron, "v_threshold", 1.0))
    vr = jnp.asarray(getattr(neuron, "v_reset", 0.0))
    s = jnp.abs(th - vr)
    return jnp.where(s > 0, s, 1.0)


def with_theta(neuron: nirjax.Neuron, names: Sequence[str], theta: dict) -> nirjax.Neuron:
    """The neuron with parameters moved by `theta` (see the module docstring)."""
    kinds = type(neuron).parameters
    shape = neuron_shape(neuron)
    gain = input_gain_field(neuron)
    vscale = jnp.broadcast_to(_voltage_scale(neuron), shape)
    new = {}
    for f in names:
        p0 = jnp.broadcast_to(jnp.asarray(getattr(neuron, f)), shape)
        t = theta[f].reshape(shape)
        if f == gain:
            new[f] = p0 * jnp.exp(t - jnp.mean(t))
        elif kinds[f] == "positive":
            new[f] = p0 * jnp.exp(t)
        else:
            new[f] = p0 + vscale * t
    return dataclasses.replace(neuron, **new)


def forced(neuron: nirjax.Neuron, u: jax.Array, z: jax.Array, pre: jax.Array):
    """Teacher-forced run of one sample (`Forced`: the neuron's own step, reset at the recorded
    spikes): `u`, `z` `(T, n)`; returns the probed `v` `(T, n)` (before the reset where `pre`,
    else after) and the pre-reset `v`."""
    shape = (u.shape[0],) + neuron_shape(neuron)
    f = Forced(neuron, z.reshape(shape))
    state = f.init_state(shape[1:], u.dtype)
    _, _, trace = f.run_sequence(state, u.reshape(shape), record=True)
    v_pre, v_post = trace["v_pre"].reshape(u.shape), trace["v"].reshape(u.shape)
    return jnp.where(pre, v_pre, v_post), v_pre


def probe_fit(v: jax.Array, y: jax.Array):
    """Closed-form least squares `y ~ a v + b` (one a, b for all values); returns
    `(a, b, residual)`."""
    vm, ym = jnp.mean(v), jnp.mean(y)
    dv = v - vm
    var = jnp.sum(dv * dv)
    a = jnp.where(var > 0, jnp.sum(dv * (y - ym)) / jnp.where(var > 0, var, 1.0), 1.0)
    b = ym - a * vm
    return a, b, y - (a * v + b)


class Problem(eqx.Module):
    """A candidate's data: inputs `u`, recorded spikes `z` and voltages `y` `(S, T, n)`, the
    probe (`pre`), and the recording's range (to normalize the residual)."""

    u: jax.Array
    z: jax.Array
    y: jax.Array
    pre: jax.Array
    span: jax.Array


def _probed(neuron, p: Problem):
    return jax.vmap(lambda u, z: forced(neuron, u, z, p.pre))(p.u, p.z)


def _nominal_residual(neuron: nirjax.Neuron, p: Problem):
    v, _ = _probed(neuron, p)
    _, _, r = probe_fit(v, p.y)
    return jnp.sqrt(jnp.mean(r * r))


@eqx.filter_jit
def nominal_residual(neuron: nirjax.Neuron, p: Problem):
    """RMS of the probe-fitted residual at the given parameters (recording units)."""
    return _nominal_residual(neuron, p)


@eqx.filter_jit
def _solve(neuron, names, p: Problem, max_steps):
    shape = neuron_shape(neuron)
    theta0 = {f: jnp.zeros(shape, p.y.dtype) for f in names}

    def residual(theta, args):
        v, _ = _probed(with_theta(neuron, names, theta), p)
        _, _, r = probe_fit(v, p.y)
        return r.ravel() / p.span

    solver = optx.LevenbergMarquardt(rtol=1e-7, atol=1e-9)
    sol = optx.least_squares(residual, solver, theta0, max_steps=max_steps, throw=False)
    return sol.value


@eqx.filter_jit
def _summary(neuron, p: Problem):
    return _summary_impl(neuron, p)


def _summary_impl(neuron, p: Problem):
    v, v_pre = _probed(neuron, p)
    a, b, r = probe_fit(v, p.y)
    spike = p.z > 0.5
    big = jnp.asarray(jnp.inf, v_pre.dtype)
    lo = jnp.max(jnp.where(spike, -big, v_pre), axis=(0, 1))
    hi = jnp.min(jnp.where(spike, v_pre, big), axis=(0, 1))
    return a, b, jnp.sqrt(jnp.mean(r * r)), lo, hi


def fit_candidate(neuron: nirjax.Neuron, names: Sequence[str], p: Problem, *,
                  steps: int = 60) -> dict:
    """Fit one candidate: `{"neuron", "scale", "offset", "rms", "interval", "consistent"}`;
    the neuron carries the fitted parameters and threshold."""
    names = tuple(names)
    if names and steps > 0:
        theta = _solve(neuron, names, p, steps)
        theta = {k: jnp.where(jnp.isfinite(v), v, 0.0) for k, v in theta.items()}
        fitted = with_theta(neuron, names, theta)
    else:
        fitted = neuron
    return _finish(neuron, fitted, _summary(fitted, p))


def _finish(neuron, fitted, summary) -> dict:
    """The threshold from the spike interval (see `fit_candidate`) and the result dict."""
    a, b, rms, lo, hi = (np.asarray(t) for t in summary)
    shape = neuron_shape(neuron)
    if hasattr(fitted, "v_threshold"):
        th0 = np.broadcast_to(np.asarray(fitted.v_threshold, np.float64), shape).reshape(-1)
        # nirjax spikes where v - threshold > 0: the threshold must lie in [lo, hi).
        inside = (th0 >= lo) & (th0 < hi)
        finite_hi = np.isfinite(hi)
        mid = np.where(finite_hi, 0.5 * (lo + hi), np.maximum(th0, lo))
        th = np.where(inside, th0, mid)
        consistent = bool(np.all(lo < hi))
        dtype = jnp.asarray(fitted.v_threshold).dtype
        new = {"v_threshold": jnp.asarray(th.reshape(shape), dtype)}
        if fitted.options.reset == "subtract" and hasattr(fitted, "v_reset"):
            # The fit saw the subtracted amount v_threshold - v_reset: keep it.
            vr = np.broadcast_to(np.asarray(fitted.v_reset, np.float64), shape).reshape(-1)
            new["v_reset"] = jnp.asarray((vr + th - th0).reshape(shape), dtype)
        fitted = dataclasses.replace(fitted, **new)
    else:
        consistent = True
    return {"neuron": fitted, "scale": float(a), "offset": float(b), "rms": float(rms),
            "interval": (lo, hi), "consistent": consistent}


# ----------------------------------------------------- several option sets, one compiled program
# The options of a neuron (input reading, reset, discretization) are static: each set compiles
# its own program, and a compile costs far more than a fit. The `*_any` functions take a tuple of
# neurons (one per option set) and the index of the one to use, a traced integer that
# `jax.lax.switch` dispatches on, so one program serves every candidate of a search.
def _switch(neurons: tuple, index, fn, *args):
    return jax.lax.switch(index, [lambda *a, nrn=nrn: fn(nrn, *a) for nrn in neurons], *args)


@eqx.filter_jit
def nominal_residual_any(neurons: tuple, index, p: Problem):
    """`nominal_residual(neurons[index], p)`."""
    return _switch(neurons, index, lambda nrn: _nominal_residual(nrn, p))


@eqx.filter_jit
def _solve_any(neurons: tuple, index, names, p: Problem, max_steps):
    shape = neuron_shape(neurons[0])
    theta0 = {f: jnp.zeros(shape, p.y.dtype) for f in names}

    def one(nrn, theta):
        v, _ = _probed(with_theta(nrn, names, theta), p)
        _, _, r = probe_fit(v, p.y)
        return r.ravel() / p.span

    def residual(theta, args):
        return _switch(neurons, index, one, theta)

    solver = optx.LevenbergMarquardt(rtol=1e-7, atol=1e-9)
    sol = optx.least_squares(residual, solver, theta0, max_steps=max_steps, throw=False)
    return sol.value


@eqx.filter_jit
def _summary_any(neurons: tuple, index, p: Problem):
    return _switch(neurons, index, lambda nrn: _summary_impl(nrn, p))


def fit_candidate_any(neurons: tuple, index: int, names: Sequence[str], p: Problem, *,
                      steps: int = 60) -> dict:
    """`fit_candidate(neurons[index], ...)` through the programs shared by all the option sets
    in `neurons` (the same neuron type and shape, different static options)."""
    names = tuple(names)
    i = jnp.asarray(index, jnp.int32)
    neuron = neurons[index]
    if names and steps > 0:
        theta = _solve_any(neurons, i, names, p, steps)
        theta = {k: jnp.where(jnp.isfinite(v), v, 0.0) for k, v in theta.items()}
        fitted = with_theta(neuron, names, theta)
        fitted_all = tuple(with_theta(nrn, names, theta) for nrn in neurons)
    else:
        fitted, fitted_all = neuron, neurons
    summary = _summary_any(fitted_all, i, p)
    return _finish(neuron, fitted, summary)
