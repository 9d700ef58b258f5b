r"""Fit hardware mismatch: recover a chip's actual parameters from its recordings.

A chip runs its nominal NIR graph with every neuron's time constants, threshold and leak, and every
synapse's gain, off by a few to tens of percent. `fit_mismatch` starts from the nominal graph and
adjusts the chosen parameters by gradient descent until the graph reproduces the recorded membrane
traces and/or spike trains for the recorded inputs; the result is a calibrated NIR graph.

**Parametrisation.** Every fitted parameter array p (per neuron, per weight, or a per-row gain of
a weight matrix) is a bounded deviation from its nominal value p0,

$$p = p_0 + b\,s\,\tanh(u), \qquad s = |p_0| \;(\text{or a fallback scale where } p_0 = 0),$$

so a relative bound b < 1 keeps time constants positive; u starts at 0 (the nominal graph). A
per-row gain g multiplies a weight matrix row-wise, `W = g[:, None] W0` with `g = 1 + b tanh(u)`.

**Objective.** A weighted sum of

- `"trace_mse"`: the mean squared difference of recorded and simulated membrane traces (`"v"`,
  and `"I"` where recorded);
- `"van_rossum"`: the squared van Rossum distance of recorded and simulated spike trains;
- `"spike_count"`: the squared difference of spike counts per neuron;

plus, with teacher forcing, a threshold-consistency term, and with a prior (relative standard
deviation σp) the Gaussian penalty of a maximum-a-posteriori fit,
$\frac{\sigma^2}{N}\sum (\Delta/\sigma_p)^2$ for traces with noise σ and N observations.

**Teacher forcing** (default when a spiking node's membrane trace is recorded): the model neuron
resets at the recorded spike times (see `training._mismatch_forcing`), the trace loss fits the
sub-threshold dynamics, and the threshold is fitted to separate the pre-reset voltages of spike
steps from those of the other steps.

**Polish and uncertainty** (per neuron, from the traces): see `training._mismatch_polish`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax
from tqdm.auto import tqdm

import nirjax

from ._mismatch_chip import SimulatedChip, perturb, relative_errors, simulate, simulate_chip
from ._mismatch_data import Recording, read_recording, write_recording
from ._mismatch_objective import as_inputs, batch, make_problem, objective
from ._mismatch_polish import polish as _polish, uncertainties
from ._mismatch_targets import Target, as_graph, resolve_targets, substitute


@dataclasses.dataclass
class ParamFit:
    """The fit of one parameter array.

    - `nominal`, `fitted`: the values (arrays of the parameter's shape).
    - `deviation`: `(fitted - nominal) / scale`: the relative deviation where nominal != 0.
    - `uncertainty`: an estimated standard deviation of `fitted` (same units; NaN if none).
    - `method`: how the uncertainty was estimated (`"gauss-newton"`, `"threshold-interval"`,
      `"multi-start"` or `"none"`).
    - `spread`: the standard deviation of the fitted values across starts (multi-start only).
    """

    node: str
    field: str
    nominal: np.ndarray
    fitted: np.ndarray
    deviation: np.ndarray
    uncertainty: np.ndarray
    method: str
    spread: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.node}.{self.field}"


@dataclasses.dataclass
class FitReport:
    """What `fit_mismatch` found.

    - `params`: `{"node.field": ParamFit}`.
    - `loss`: the loss weights used; `history`: the objective per step (best start).
    - `initial_loss`, `final_loss`: the data loss (without prior) at the nominal and fitted graph.
    - `noise`: the estimated observation noise σ of the traces (None without traces).
    - `forced`: the nodes run with teacher forcing; `start_losses`: final loss of every start.
    - `seconds`: the wall time of the fit.
    """

    params: dict[str, ParamFit]
    loss: dict[str, float]
    history: np.ndarray
    initial_loss: float
    final_loss: float
    noise: float | None
    forced: tuple[str, ...]
    start_losses: np.ndarray
    seconds: float
    steps: int

    def summary(self) -> str:
        """A table: per parameter array, the median nominal and fitted value, the median and
        largest |relative deviation|, and the median uncertainty."""
        head = ("parameter", "n", "nominal", "fitted", "|dev| med", "|dev| max", "unc. med")
        rows = []
        for p in self.params.values():
            dev = np.abs(p.deviation)
            unc = p.uncertainty[np.isfinite(p.uncertainty)]
            rows.append(
                (
                    p.name,
                    str(p.fitted.size),
                    f"{np.median(p.nominal):.4g}",
                    f"{np.median(p.fitted):.4g}",
                    f"{100 * np.median(dev):.2f} %",
                    f"{100 * np.max(dev):.2f} %",
                    f"{np.median(unc):.3g}" if unc.size else "-",
                )
            )
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [line.format(*head), line.format(*("-" * w for w in widths))]
        out += [line.format(*r) for r in rows]
        losses = ", ".join(f"{k} x{w:g}" for k, w in self.loss.items())
        out.append(
            f"loss ({losses}): {self.initial_loss:.4g} -> {self.final_loss:.4g} in {self.steps} "
            f"steps, {self.seconds:.1f} s"
            + (f"; noise sigma ~ {self.noise:.3g}" if self.noise is not None else "")
            + (f"; teacher forcing on {', '.join(self.forced)}" if self.forced else "")
        )
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()


def fit_mismatch(
    nominal: nirjax.Graph | nir.NIRGraph | str | os.PathLike,
    recordings: Mapping[str, Mapping[str, Any]] | nir.NIRGraphData | str | os.PathLike,
    *,
    inputs: Any = None,
    params: Sequence[str] | str = ("tau_syn", "tau_mem", "r", "v_threshold"),
    per_row_gain: bool | Sequence[str] = False,
    bounds: float | Mapping[str, float] = 0.5,
    prior: float | Mapping[str, float] | None = None,
    loss: str | Mapping[str, float] = "auto",
    teacher_forcing: bool = True,
    detach_reset: bool = False,
    clip: float | None = None,
    multi_start: int = 1,
    steps: int = 400,
    lr: float = 0.1,
    van_rossum_tau: float = 5e-3,
    polish: int = 3,
    uncertainty: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> tuple[nirjax.Graph, FitReport]:
    """Fit the deviations of a chip's parameters from the nominal graph to its recordings.

    **Arguments:**

    - `nominal`: the nominal graph: a `nirjax.Graph`, a `nir.NIRGraph` or a .nir path.
    - `recordings`: `{node: {"v": (S, T, ...), "output": (S, T, ...)}}` (membrane traces and/or
      spikes of S samples; `"I"` traces are used too), or a NIR data file / `nir.NIRGraphData`
      in the layout of `training._mismatch_data` (which may hold the inputs).
    - `inputs`: `(S, T, *input_shape)` (a dict by Input name if several); may be omitted when
      the recording file holds them.
    - `params`: which parameters deviate: field names (`"tau_mem"`: every node that has one) or
      `"node.field"`; neuron fields `tau, tau_syn, tau_mem, r, v_leak, v_threshold, w_in`,
      and for Affine/Linear `weight` (every weight) or `gain` (one gain per output row).
    - `per_row_gain`: True (every Affine/Linear) or node names: add a per-row gain.
    - `bounds`: the largest relative deviation (0.5 = ±50 %), or a dict by field / "node.field".
    - `prior`: relative standard deviation of a Gaussian prior on the deviations (or a dict).
    - `loss`: `"trace_mse"`, `"van_rossum"`, `"spike_count"`, `"a+b"`, a dict of weights, or
      `"auto"` (traces if recorded, else van Rossum).
    - `teacher_forcing`: replay the recorded resets of spiking nodes whose traces are recorded
      (spikes from `"output"`, or detected as resets in `"v"`).
    - `detach_reset`: no gradient through the (model's own) resets.
    - `clip`: clip the gradient's global norm. `multi_start`: number of starts (the first at the
      nominal graph, the others at random deviations); the best final loss wins.
    - `steps`, `lr`: Adam steps and learning rate (in the unconstrained variables u).
    - `van_rossum_tau`: the kernel time constant of the van Rossum distance (s).
    - `polish`: after gradient descent, at most this many Levenberg-Marquardt steps on the
      per-neuron blocks of trace-recorded nodes that are teacher-forced or do not spike (a
      neuron keeps a step only if it lowers its residual), and thresholds of forced nodes moved
      to the middle of their consistent interval. 0 turns it off.
    - `uncertainty`: estimate uncertainties (Gauss-Newton / threshold interval / multi-start).
    - `seed`, `progress`: random seed of the starts; show a progress bar.

    **Returns:** `(fitted graph, FitReport)`; the fitted graph is the nominal graph with the fitted
    parameters (same options), ready for `nirjax.write`.
    """
    t_start = time.perf_counter()
    if isinstance(recordings, (str, os.PathLike, nir.NIRGraphData)):
        if not isinstance(nominal, nirjax.Graph):
            dt = read_recording(recordings).dt
            graph = as_graph(nominal, dt=dt)
        else:
            graph = nominal
        rec = read_recording(recordings, graph)
        recordings = rec.recordings
        if inputs is None:
            inputs = rec.inputs or None
    else:
        graph = as_graph(nominal)
    if steps < 0 or multi_start < 1:
        raise ValueError(f"steps must be >= 0 and multi_start >= 1, got {steps}, {multi_start}.")
    dtype = jnp.dtype(graph.dtype)
    if inputs is None:
        raise ValueError(
            "fit_mismatch: inputs are required: pass inputs=(samples, T, *input_shape), or a "
            "recording file that stores them under the Input node."
        )
    inputs = as_inputs(graph, inputs)
    xs = batch(inputs)
    targets = resolve_targets(graph, params, per_row_gain=per_row_gain, bounds=bounds, prior=prior)
    problem = make_problem(
        graph, targets, recordings, inputs, loss=loss, teacher_forcing=teacher_forcing,
        detach_reset=detach_reset, van_rossum_tau=van_rossum_tau,
    )

    # Starts: the nominal graph, then random deviations (u ~ N(0, 0.5^2)).
    key = jax.random.PRNGKey(seed)
    u0 = {}
    for i, t in enumerate(targets):
        noise = 0.5 * jax.random.normal(
            jax.random.fold_in(key, i), (multi_start - 1, *t.nominal.shape), dtype
        )
        u0[t.name] = jnp.concatenate([jnp.zeros((1, *t.nominal.shape), dtype), noise])

    schedule = optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.1)  # to lr / 10
    parts = [optax.clip_by_global_norm(clip)] if clip else []
    optimizer = optax.chain(*parts, optax.adam(schedule))

    def start_step(u, opt_state, best_u, best_loss):
        (total, data), grads = jax.value_and_grad(
            lambda u: objective(problem, u, xs), has_aux=True
        )(u)
        better = total < best_loss
        best_u = jax.tree.map(lambda a, b: jnp.where(better, a, b), u, best_u)
        best_loss = jnp.where(better, total, best_loss)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts and floats
            updates, opt_state = optimizer.update(grads, opt_state, u)
        return optax.apply_updates(u, updates), opt_state, best_u, best_loss, total

    step_fn = jax.jit(jax.vmap(start_step))
    at_each_start = jax.jit(jax.vmap(lambda u: objective(problem, u, xs)))

    u = u0
    opt_state = jax.vmap(optimizer.init)(u)
    best_u, best_loss = u, jnp.full((multi_start,), jnp.inf, dtype)
    history = []
    bar = tqdm(range(steps), desc="fit_mismatch", disable=not progress, leave=False)
    for i in bar:
        u, opt_state, best_u, best_loss, total = step_fn(u, opt_state, best_u, best_loss)
        history.append(np.asarray(total))
        if progress and (i % 10 == 0 or i == steps - 1):
            bar.set_postfix(loss=f"{float(np.min(history[-1])):.4g}")
    bar.close()
    # The last update is not yet evaluated: keep it if it is better.
    final_total, _ = at_each_start(u)
    better = final_total < best_loss
    best_u = jax.tree.map(lambda a, b: jnp.where(_expand(better, a), a, b), u, best_u)
    best_loss = jnp.where(better, final_total, best_loss)
    winner = int(jnp.argmin(best_loss))

    u_best = {k: v[winner] for k, v in best_u.items()}
    values = {t.name: t.value(u_best[t.name]) for t in targets}
    if polish and problem.traces:
        values = _polish(problem, values, xs, polish)
        u_best = {t.name: t.unconstrained(values[t.name]) for t in targets}

    def at_starts(u):  # evaluate at the batch shape of the starts: nothing compiles again
        return float(at_each_start(jax.tree.map(
            lambda v: jnp.broadcast_to(v, (multi_start, *v.shape)), u))[1][0])

    initial_data = at_starts({k: jnp.zeros_like(v) for k, v in u_best.items()})
    final_data = at_starts(u_best)
    fitted = substitute(graph, targets, values)

    all_values = {t.name: np.asarray(t.value(best_u[t.name])) for t in targets}
    unc, methods = {}, {}
    if uncertainty:
        unc, methods = uncertainties(problem, values, xs, final_data if problem.traces else None)
    report_params = {}
    for t in targets:
        fit_v = np.asarray(values[t.name])
        spread = all_values[t.name].std(axis=0) if multi_start > 1 else None
        u_t = unc.get(t.name)
        method = methods.get(t.name, "none")
        if u_t is None and spread is not None:
            u_t, method = spread, "multi-start"
        if u_t is None:
            u_t = np.full(fit_v.shape, np.nan)
        report_params[t.name] = ParamFit(
            t.node, t.field, t.nominal, fit_v, t.deviation(fit_v), np.asarray(u_t), method, spread
        )
    hist = np.asarray(history)[:, winner] if history else np.zeros((0,))
    report = FitReport(
        report_params,
        dict(problem.weights),
        hist,
        initial_data,
        final_data,
        problem.noise,
        tuple(sorted(problem.forcing)),
        np.asarray(best_loss),
        time.perf_counter() - t_start,
        steps,
    )
    return fitted, report


def _expand(mask, a):
    return mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))


__all__ = [
    "FitReport", "ParamFit", "Recording", "SimulatedChip", "Target", "fit_mismatch", "perturb",
    "read_recording", "relative_errors", "resolve_targets", "simulate", "simulate_chip",
    "substitute", "write_recording",
]
