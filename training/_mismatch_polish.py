r"""After gradient descent: a Gauss-Newton polish per neuron, and uncertainty estimates.

**Uncertainty.** For parameters of a node whose trace is recorded (and per-row gains of the
weight feeding it): the Gauss-Newton (Fisher) estimate $\sigma^2 [(J^\top J)^{-1}]_{kk}$ per
neuron, from that same Jacobian (exact when a neuron's trace depends only on its own parameters,
as under teacher forcing). For thresholds under teacher forcing: the width of the interval of
consistent thresholds / √12. Otherwise, with `multi_start > 1`, the spread across starts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._mismatch_forcing import threshold_interval
from ._mismatch_neurons import NEURON_FIELDS, is_neuron, is_spiking
from ._mismatch_objective import Problem, run_samples
from ._mismatch_targets import Target, neuron_shape
from ._paths import get


def _feeds_only(graph: Any, src: str, dst: str) -> bool:
    if "/" in src or "/" in dst:
        return False
    out = [e for e in graph.plan.edges if e.src == src]
    return bool(out) and all(e.dst == dst for e in out)


def _runner(problem: Problem, xs):
    return lambda vals: run_samples(problem, vals, xs)


def _block(problem: Problem, n: str, skip=()) -> tuple[tuple[int, ...] | None, list[Target]]:
    """The targets whose value for neuron i acts on the trace of neuron i of node n: n's own
    per-neuron parameters and the per-row gains of weights that feed only n."""
    graph = problem.base
    node = get(graph, n)
    if not is_neuron(node):
        return None, []
    shape = neuron_shape(graph, n)
    block = []
    for t in problem.targets:
        if t.name in skip:
            continue
        own = t.node == n and t.field in NEURON_FIELDS
        gain = t.field == "gain" and _feeds_only(graph, t.node, n)
        if (own or gain) and tuple(t.nominal.shape) == shape:
            block.append(t)
    return shape, block


def _flat_traces(rec_n: dict, keys, n_neurons: int) -> jax.Array:
    """The traces of one node, every observable stacked: `(K_obs * S * T, n_neurons)`."""
    return jnp.concatenate([rec_n[k].reshape(-1, n_neurons) for k in keys], axis=0)


def _tangent(values, name):
    tangent = {k: jnp.zeros_like(v) for k, v in values.items()}
    tangent[name] = jnp.ones_like(values[name])
    return tangent


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


def _prior_precision(problem: Problem, block) -> np.ndarray:
    """Per neuron, the diagonal prior precision in the units of the summed squared residual:
    `noise2 / (scale sigma_p)^2` (zero for parameters without a prior), shape `(n, K)`."""
    cols = []
    for t in block:
        if t.prior is None:
            cols.append(np.zeros(t.nominal.size))
        else:
            scale = np.asarray(t.scale, np.float64).reshape(-1)
            cols.append(problem.noise2 / (scale * t.prior) ** 2)
    return np.stack(cols, -1)


def polish(problem: Problem, values, xs, iterations: int):
    """Gauss-Newton iterations on the per-neuron blocks (see `fit_mismatch(polish=...)`)."""
    run_all = _runner(problem, xs)
    run = jax.jit(run_all)
    jvp = jax.jit(lambda v, tg: jax.jvp(run_all, (v,), (tg,))[1])
    nodes = {}
    for n in problem.traces:
        node = get(problem.base, n)
        if n in problem.forcing or not is_spiking(node):
            shape, block = _block(problem, n, skip={problem.thresholds.get(n)})
            if block:
                nodes[n] = (shape, block)
    values = dict(values)

    def residuals(rec):
        out = {}
        for n, (shape, _) in nodes.items():
            obs = problem.traces[n]
            size = int(np.prod(shape))
            model = _flat_traces(rec[n], obs, size)
            data = _flat_traces(obs, obs, size)
            out[n] = np.asarray(model - data, np.float64)
        return out

    for _ in range(iterations if nodes else 0):
        rec = run(values)
        res = residuals(rec)
        trial = dict(values)
        for n, (shape, block) in nodes.items():
            size = int(np.prod(shape))
            J = np.stack([
                np.asarray(_flat_traces(jvp(values, _tangent(values, t.name))[n],
                                        problem.traces[n], size), np.float64)
                for t in block
            ], -1)  # (R, n, K)
            P = _prior_precision(problem, block)  # MAP: the prior's curvature and pull
            dev = np.stack([
                (np.asarray(values[t.name], np.float64) - t.nominal).reshape(-1) for t in block
            ], -1)
            G = np.einsum("rnk,rnl->nkl", J, J) + P[..., None] * np.eye(len(block))
            g = np.einsum("rnk,rn->nk", J, res[n]) + P * dev
            damp = 1e-6 * np.einsum("nkk->nk", G)[..., None] * np.eye(len(block))
            step = -np.linalg.solve(G + damp + 1e-30 * np.eye(len(block)), g[..., None])[..., 0]
            for k, t in enumerate(block):
                limit = 0.999 * t.bound * t.scale
                new = np.asarray(values[t.name], np.float64) + step[:, k].reshape(shape)
                trial[t.name] = jnp.asarray(
                    np.clip(new, t.nominal - limit, t.nominal + limit), t.nominal.dtype
                )
        new_res = residuals(run(trial))
        for n, (shape, block) in nodes.items():
            P = _prior_precision(problem, block)

            def cost(r, vals, P=P, block=block):
                dev = np.stack([
                    (np.asarray(vals[t.name], np.float64) - t.nominal).reshape(-1)
                    for t in block
                ], -1)
                return (r**2).sum(0) + (P * dev**2).sum(-1)

            better = (cost(new_res[n], trial) < cost(res[n], values)).reshape(shape)
            for t in block:
                values[t.name] = jnp.where(better, trial[t.name], values[t.name])
    if any(name is not None for name in problem.thresholds.values()):
        values = _recenter_thresholds(problem, values, run(values))
    return values


def uncertainties(problem: Problem, values, xs, mse: float | None):
    """Per-neuron Gauss-Newton blocks for parameters of trace-recorded nodes (and the per-row
    gains of the weights that feed only them); for thresholds of forced nodes, the interval of
    consistent thresholds combined with the uncertainty of `v_pre` that the Gauss-Newton
    covariance of the other parameters implies at the interval's two ends."""
    unc: dict[str, np.ndarray] = {}
    methods: dict[str, str] = {}
    forcing = problem.forcing
    run_all = _runner(problem, xs)

    ends = {}  # forced node -> flat (S*T) indices of the interval's ends, per neuron
    if forcing:
        rec = jax.jit(run_all)(values)
        for n, name in problem.thresholds.items():
            if name is None:
                continue
            v_pre, s = np.asarray(rec[n]["v_pre"]), np.asarray(forcing[n]) > 0.5
            lo, hi = threshold_interval(v_pre, s)
            width = np.abs(np.asarray(hi) - np.asarray(lo))
            unc[name] = np.where(np.isfinite(width), width / np.sqrt(12.0), np.nan)
            methods[name] = "threshold-interval"
            flat_v = v_pre.reshape(-1, *v_pre.shape[2:])
            flat_s = s.reshape(flat_v.shape)
            ends[n] = (
                np.argmax(np.where(flat_s, -np.inf, flat_v), axis=0),
                np.argmin(np.where(flat_s, flat_v, np.inf), axis=0),
            )
    if mse is None or not problem.traces:
        return unc, methods
    sigma2 = float(mse)
    jvp = jax.jit(lambda v, tg: jax.jvp(run_all, (v,), (tg,))[1])
    for n, obs in problem.traces.items():
        thr = problem.thresholds.get(n)
        shape, block = _block(problem, n, skip={thr} if n in ends else ())
        if not block:
            continue
        size = int(np.prod(shape))
        cols, pre = [], []
        for t in block:
            d = jvp(values, _tangent(values, t.name))
            cols.append(np.asarray(_flat_traces(d[n], obs, size), np.float64))
            if n in ends:
                dv = np.asarray(d[n]["v_pre"]).reshape(-1, size)
                lo_i, hi_i = (e.reshape(-1) for e in ends[n])
                idx = np.arange(size)
                pre.append(0.5 * (dv[lo_i, idx] + dv[hi_i, idx]))
        J = np.stack(cols, -1)  # (R, n, K)
        G = np.einsum("rnk,rnl->nkl", J, J)  # per neuron (n, K, K)
        # with a prior: the posterior covariance, sigma^2 (J^T J + sigma^2 / (s sigma_p)^2)^-1
        prior = _prior_precision(problem, block) * (sigma2 / max(problem.noise2, 1e-30))
        cov = sigma2 * np.linalg.pinv(G + prior[..., None] * np.eye(len(block)))
        for k, t in enumerate(block):
            unc[t.name] = np.sqrt(np.maximum(cov[:, k, k], 0.0)).reshape(shape)
            methods[t.name] = "gauss-newton"
        if pre:
            D = np.stack(pre, -1)  # (n, K): d v_pre at the interval's middle / d parameter
            var = np.einsum("nk,nkl,nl->n", D, cov, D).reshape(shape)
            unc[thr] = np.sqrt(unc[thr] ** 2 + np.maximum(var, 0.0))
            methods[thr] = "threshold-interval+gauss-newton"
    return unc, methods
