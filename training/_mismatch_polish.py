r"""After gradient descent: a Levenberg-Marquardt polish per neuron, and uncertainty estimates.

**Polish.** Under teacher forcing (and for non-spiking recorded neurons) neuron i's trace depends
only on its own parameters (and the per-row gain of its input row), so the least-squares problem
splits into one small problem per neuron. Each is solved by `optimistix.least_squares` under
`jax.vmap(..., axis_name="neuron")` over the neurons of a node: every lane gathers all lanes'
parameters (`lax.all_gather`), the graph runs once for all neurons, and lane i reads neuron i's
trace; a neuron's Jacobian is one forward-mode pass per parameter array, all neurons at once.

**Uncertainty.** For parameters of a node whose trace is recorded (and per-row gains of the
weight feeding it): the Gauss-Newton (Fisher) estimate $\sigma^2 [(J^\top J)^{-1}]_{kk}$ per
neuron, from that same Jacobian (exact when a neuron's trace depends only on its own parameters,
as under teacher forcing). For thresholds under teacher forcing: the width of the interval of
consistent thresholds / √12. Otherwise, with `multi_start > 1`, the spread across starts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._mismatch_forcing import threshold_interval
from ._mismatch_neurons import is_neuron, is_spiking
from ._mismatch_objective import Problem, run_samples
from ._mismatch_targets import Target, neuron_shape
from ._paths import get


def _feeds_only(graph, src: str, dst: str) -> bool:
    if "/" in src or "/" in dst:
        return False
    out = [e for e in graph.plan.edges if e.src == src]
    return bool(out) and all(e.dst == dst for e in out)


def _block(problem: Problem, n: str, skip=()) -> tuple[tuple[int, ...] | None, list[Target]]:
    """The targets whose value for neuron i acts on the trace of neuron i of node n (a neuron):
    n's own per-neuron parameters and the per-row gains of weights that feed only n."""
    graph = problem.base
    if not is_neuron(get(graph, n)):
        return None, []
    shape = neuron_shape(graph, n)
    block = []
    for t in problem.targets:
        if t.name in skip:
            continue
        own = t.node == n
        gain = t.field == "gain" and _feeds_only(graph, t.node, n)
        if (own or gain) and tuple(t.nominal.shape) == shape:
            block.append(t)
    return shape, block


def _per_neuron(problem: Problem, values, xs, n: str, shape, block):
    """`f(d_i) -> {observable: (S*T,)}`: neuron i's observables of node n as a function of the
    deviations `d_i` (K,) of its block parameters from nominal, in units of their scale, for
    `jax.vmap(f, axis_name="neuron")` over the neurons of n (the other parameters at `values`)."""
    size = int(np.prod(shape))

    def f(d_i):
        d = jax.lax.all_gather(d_i, "neuron")  # (neurons, K): every lane's deviations
        new = {t.name: t.nominal + t.scale * d[:, k].reshape(shape) for k, t in enumerate(block)}
        i = jax.lax.axis_index("neuron")
        rec = run_samples(problem, {**values, **new}, xs)[n]
        return {k: v.reshape(-1, size)[:, i] for k, v in rec.items()}

    return f


def _deviations(values, block) -> jax.Array:
    """`(neurons, K)`: the block parameters' deviations from nominal in units of their scale."""
    return jnp.stack([((values[t.name] - t.nominal) / t.scale).reshape(-1) for t in block], -1)


def _keep_jacobian(f):
    """`f(x, args)` whose linearisation in x holds its Jacobian (one forward pass per element of
    x) rather than all of f's intermediates: what a least-squares solver carries between steps."""
    g = jax.custom_jvp(f)

    @g.defjvp
    def _(primals, tangents):
        (x, args), (dx, _) = primals, tangents
        jac, y = jax.jacfwd(lambda x: (f(x, args),) * 2, has_aux=True)(x)
        return y, jax.tree.map(lambda j: j @ dx, jac)

    return g


def _polish_node(problem: Problem, values, xs, n: str, shape, block, iterations: int):
    """At most `iterations` Levenberg-Marquardt steps per neuron of node n (a neuron keeps a step
    only if it lowers its residual) on the deviations, kept just inside the bounds. Residuals in
    units of the noise (the initial damping is then small next to J^T J), with the prior's: the
    deviation over sigma_p, as in the objective."""
    obs = problem.traces[n]
    size = int(np.prod(shape))
    f = _per_neuron(problem, values, xs, n, shape, block)
    dtype = block[0].nominal.dtype
    limit = jnp.asarray([0.999 * t.bound for t in block], dtype)
    pull = jnp.asarray([0.0 if t.prior is None else 1.0 / t.prior for t in block], dtype)
    inv_sigma = jnp.asarray(1.0 / math.sqrt(problem.noise2), dtype)

    def residuals(d_i, data_i):
        d_i = jnp.clip(d_i, -limit, limit)
        out = f(d_i)
        return (jnp.concatenate([out[k] for k in obs]) - data_i) * inv_sigma, pull * d_i

    fn, solver = _keep_jacobian(residuals), optx.LevenbergMarquardt(rtol=1e-8, atol=1e-8)

    def solve(d_i, data_i):  # (the solver's first step evaluates the start)
        sol = optx.least_squares(fn, solver, d_i, data_i, max_steps=iterations + 1, throw=False)
        return jnp.clip(sol.value, -limit, limit)

    data = jnp.concatenate([obs[k].reshape(-1, size) for k in obs]).T  # (neurons, R)
    d = jax.jit(jax.vmap(solve, axis_name="neuron"))(_deviations(values, block), data)
    new = {t.name: t.nominal + t.scale * d[:, k].reshape(shape) for k, t in enumerate(block)}
    return {**values, **new}


def _recenter_thresholds(problem: Problem, values, rec):
    """Move forced thresholds to the middle of the interval of consistent thresholds."""
    values = dict(values)
    by_name = {t.name: t for t in problem.targets}
    for n, name in problem.thresholds.items():
        if name is None:
            continue
        t = by_name[name]
        lo, hi = threshold_interval(rec[n]["v_pre"], problem.forcing[n])
        ok = jnp.isfinite(lo) & jnp.isfinite(hi) & (lo <= hi)
        mid = jnp.where(ok, 0.5 * (lo + hi), values[name])
        limit = 0.999 * t.bound * t.scale
        values[name] = jnp.clip(mid, t.nominal - limit, t.nominal + limit).astype(t.nominal.dtype)
    return values


def polish(problem: Problem, values, xs, iterations: int):
    """Levenberg-Marquardt on the per-neuron blocks of the trace-recorded nodes that are forced
    or do not spike, then forced thresholds to the middle of their consistent interval (see
    `fit_mismatch(polish=...)`)."""
    for n in problem.traces:
        if n in problem.forcing or not is_spiking(get(problem.base, n)):
            shape, block = _block(problem, n, skip={problem.thresholds.get(n)})
            if block:
                values = _polish_node(problem, values, xs, n, shape, block, iterations)
    if any(name is not None for name in problem.thresholds.values()):
        rec = jax.jit(lambda v: run_samples(problem, v, xs))(values)
        values = _recenter_thresholds(problem, values, rec)
    return values


def uncertainties(problem: Problem, values, xs, mse: float | None):
    """Per-neuron Gauss-Newton blocks for parameters of trace-recorded nodes (and the per-row
    gains of the weights that feed only them); for thresholds of forced nodes, the interval of
    consistent thresholds combined with the uncertainty of `v_pre` that the Gauss-Newton
    covariance of the other parameters implies at the interval's two ends."""
    unc: dict[str, np.ndarray] = {}
    methods: dict[str, str] = {}
    ends = {}  # forced node -> flat (S*T) indices of the interval's ends, per neuron
    if problem.forcing:
        rec = jax.jit(lambda v: run_samples(problem, v, xs))(values)
        for n, name in problem.thresholds.items():
            if name is None:
                continue
            v_pre, s = np.asarray(rec[n]["v_pre"]), np.asarray(problem.forcing[n]) > 0.5
            lo, hi = threshold_interval(v_pre, s)
            width = np.abs(np.asarray(hi) - np.asarray(lo))
            unc[name] = np.where(np.isfinite(width), width / np.sqrt(12.0), np.nan)
            methods[name] = "threshold-interval"
            flat_v, flat_s = v_pre.reshape(-1, width.size), s.reshape(-1, width.size)
            ends[n] = (np.argmax(np.where(flat_s, -np.inf, flat_v), axis=0),
                       np.argmin(np.where(flat_s, flat_v, np.inf), axis=0))
    if mse is None or not problem.traces:
        return unc, methods
    sigma2 = float(mse)
    for n, obs in problem.traces.items():
        thr = problem.thresholds.get(n)
        shape, block = _block(problem, n, skip={thr} if n in ends else ())
        if not block:
            continue
        f = _per_neuron(problem, values, xs, n, shape, block)
        d = _deviations(values, block)
        jac = jax.jit(jax.vmap(jax.jacfwd(f), axis_name="neuron"))(d)  # {obs: (n, S*T, K)}
        J = np.concatenate([np.asarray(jac[k], np.float64) for k in obs], axis=1)
        # per neuron, the posterior covariance of the deviations sigma^2 (J^T J + P)^-1, with the
        # prior's precision P = sigma^2 / sigma_p^2 (0 without a prior)
        P = np.diag([0.0 if t.prior is None else sigma2 / t.prior**2 for t in block])
        cov = sigma2 * np.linalg.pinv(np.einsum("nrk,nrl->nkl", J, J) + P)
        for k, t in enumerate(block):
            sd = np.sqrt(np.maximum(cov[:, k, k], 0.0)).reshape(shape)
            unc[t.name], methods[t.name] = np.asarray(t.scale) * sd, "gauss-newton"
        if n in ends:
            # d v_pre / d deviation at the interval's middle, per neuron (n, K)
            dv, idx = np.asarray(jac["v_pre"], np.float64), np.arange(len(d))
            D = 0.5 * (dv[idx, ends[n][0]] + dv[idx, ends[n][1]])
            var = np.einsum("nk,nkl,nl->n", D, cov, D).reshape(shape)
            unc[thr] = np.sqrt(unc[thr] ** 2 + np.maximum(var, 0.0))
            methods[thr] = "threshold-interval+gauss-newton"
    return unc, methods
