"""Characterize a platform from its recording: structure, probe, parameters and goodness of fit.

`characterize(nominal, recording, node=..., inputs=...)` finds how a platform (a simulator, a
chip) deviates from the nominal graph at one recorded neuron node:

1. **Structure** (`training._characterize_structure.Structure`): latency (whole steps, written as
   a NIR `Delay`), input reading, reset, discretization and where the probe reads `v`. Every
   candidate of the search is screened at the nominal parameters; the best few are fitted
   (below), and the lowest residual wins (among near-ties, the one closest to the nominal).
2. **Probe scale and offset** (the recording's units): closed-form least squares, reported, not
   put into the network.
3. **Parameters** per neuron (time constants, input gain relative to the node's mean, v_reset)
   by Levenberg-Marquardt under teacher forcing, and the threshold from the spike steps
   (`training._characterize_fit`).
4. **Goodness of fit**: the calibrated graph is run freely by nirjax; its spike steps are
   compared with the recorded ones, and the voltage residual (through the probe) with the noise
   level estimated from the residual itself (`MAD` of its first differences: white noise stays,
   a systematic misfit does not) and with the floor of the recording's resolution (rounding to
   integers: `1/sqrt(12)`; floats: `1e-6` of the range). Verdicts:
   - `"explained"`: spikes reproduced, residual within 3x max(noise, floor);
   - `"within tolerance"`: spikes reproduced, residual above the noise but within `tolerance`
     of the recording's range (default 1 %); the report says where the rest sits;
   - `"unexplained"`: spikes not reproduced, or the residual beyond the tolerance.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import nirjax

from ._characterize_fit import (
    Problem,
    default_params,
    fit_candidate_any,
    neuron_shape,
    nominal_residual_any,
)
from ._characterize_structure import (
    Structure,
    candidates,
    delay_name,
    input_gain_field,
    input_node,
    nominal_structure,
    parse_structure,
    structured_graph,
    structured_options,
)
from ._mismatch_targets import as_graph

VERDICTS = ("explained", "within tolerance", "unexplained")


@dataclasses.dataclass
class Characterization:
    """What `characterize` found for one recorded node.

    - `structure`, `nominal_structure`: the chosen and the nominal `Structure`.
    - `scale`, `offset`: the probe, `recording = scale * v + offset`.
    - `params`: `{field: (nominal, fitted)}` per neuron arrays (nominal in the chosen input
      reading); `threshold_interval`: `(lo, hi)` per neuron, the thresholds consistent with
      the recorded spikes.
    - `rms`: RMS voltage residual of the free-running calibrated graph (recording units);
      `rms_outside_spikes`: the same without the recorded spike steps; `span`: the recording's
      range; `noise`: the noise level estimated from the residual; `floor`: the resolution floor.
    - `spikes_reproduced`, `missing`, `extra`: spike steps (flat indices `(sample, step,
      neuron)`) of the recording the graph misses, and those it adds.
    - `verdict`, `message`: see the module docstring. `ranking`: `(structure, rms, deviation,
      spikes reproduced)` of the fitted candidates, best first (`deviation`: the summed
      |log ratio| of the parameters to nominal); `equivalent`: the other structures that explain
      the recording as well (a discrete single-state step `v <- a v + c x` is reached by several
      readings and discretizations with other parameters), with their relative parameters.
      `seconds`: wall time.
    """

    node: str
    structure: Structure
    nominal_structure: Structure
    scale: float
    offset: float
    params: dict[str, tuple[np.ndarray, np.ndarray]]
    threshold_interval: tuple[np.ndarray, np.ndarray]
    rms: float
    rms_outside_spikes: float
    span: float
    noise: float
    floor: float
    integer: bool
    spikes_reproduced: bool
    missing: list[tuple[int, ...]]
    extra: list[tuple[int, ...]]
    verdict: str
    message: str
    ranking: list[tuple[Structure, float, float, bool]]
    equivalent: list[tuple[Structure, dict[str, float]]]
    seconds: float

    @property
    def spike_latency_steps(self) -> int:
        return self.structure.spike_latency

    @property
    def explained(self) -> bool:
        return self.verdict != "unexplained"

    def relative(self, field: str) -> np.ndarray:
        """Fitted / nominal per neuron (NaN where the nominal is 0)."""
        nom, fit = self.params[field]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nom != 0, fit / nom, np.nan)

    def row(self) -> dict[str, Any]:
        """One row of the platform table (plain Python values)."""
        def med(field):
            return float(np.median(self.relative(field))) if field in self.params else None

        return {
            "node": self.node,
            "latency": self.structure.latency,
            "spike_latency": self.structure.spike_latency,
            "input_mode": self.structure.input_mode,
            "reset": self.structure.reset,
            "discretization": self.structure.discretization,
            "probe": self.structure.probe,
            "scale": self.scale,
            "offset": self.offset,
            "tau_rel": med("tau"),
            "threshold_rel": med("v_threshold"),
            "params_rel": {f: float(np.median(self.relative(f))) for f in self.params
                           if np.all(self.params[f][0] != 0)},
            "v_reset_shift": (float(np.median(np.subtract(*self.params["v_reset"][::-1])))
                              if "v_reset" in self.params else None),
            "spikes_reproduced": self.spikes_reproduced,
            "rms": self.rms,
            "rms_outside_spikes": self.rms_outside_spikes,
            "rms_rel_range": self.rms / self.span if self.span else float("nan"),
            "noise": self.noise,
            "floor": self.floor,
            "verdict": self.verdict,
            "message": self.message,
            "equivalent": [{"structure": dataclasses.asdict(o), "params_rel": rel}
                           for o, rel in self.equivalent],
        }

    def summary(self) -> str:
        s = self.structure
        lines = [f"node {self.node!r}: {s.describe()}"
                 + ("" if s == self.nominal_structure else
                    f" (nominal: {self.nominal_structure.describe()})")]
        lines.append(f"  probe: recording = {self.scale:.6g} * v + {self.offset:.4g}")
        for f, (nom, fit) in self.params.items():
            rel = self.relative(f)
            lines.append(f"  {f}: nominal {np.median(nom):.5g}, fitted {np.median(fit):.5g}"
                         + (f" (x{np.median(rel):.4f}"
                            + (f", per neuron {np.min(rel):.4f}..{np.max(rel):.4f}"
                               if rel.size > 1 else "") + ")"
                            if np.all(np.isfinite(rel)) else ""))
        lines.append(f"  spike steps reproduced: {'yes' if self.spikes_reproduced else 'no'}"
                     + ("" if self.spikes_reproduced else
                        f" ({len(self.missing)} missing, {len(self.extra)} extra)"))
        lines.append(
            f"  voltage residual RMS {self.rms:.4g} ({100 * self.rms / self.span:.3g} % of the "
            f"range {self.span:.4g}; {self.rms_outside_spikes:.4g} outside spike steps); noise "
            f"~ {self.noise:.3g}, resolution floor {self.floor:.3g}"
            + (" (integer recording)" if self.integer else ""))
        for other, rel in self.equivalent[:4]:
            lines.append(f"  equally good: {other.describe()} with "
                         + ", ".join(f"{k} {'x' if k != 'v_reset' else '+'}{v:.4g}"
                                     for k, v in rel.items()))
        lines.append(f"  verdict: {self.verdict}: {self.message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _noise(residual: np.ndarray) -> float:
    d = np.diff(residual, axis=1).ravel()
    if not d.size:
        return 0.0
    return float(np.median(np.abs(d - np.median(d))) / 0.6745 / np.sqrt(2.0))


def characterize(
    nominal: nirjax.Graph | Any,
    *,
    inputs: Any,
    v: Any,
    spikes: Any,
    node: str | None = None,
    structure: str | Mapping[str, Any] | None = "auto",
    params: Sequence[str] | None = None,
    tolerance: float = 0.01,
    refine: int = 2,
    steps: int = 60,
    dt: float | None = None,
    progress: bool = True,
) -> tuple[nirjax.Graph, Characterization]:
    """Characterize the platform that recorded `v` and `spikes` of one neuron node.

    **Arguments:**

    - `nominal`: the nominal graph (`nirjax.Graph`, `nir.NIRGraph` or .nir path).
    - `inputs`: what drove the recording, `(S, T, *input_shape)` (or `(T, *input_shape)` for one
      sample); a dict by Input name if the graph has several.
    - `v`, `spikes`: the recorded voltage (the recording's units) and spikes (0/1) of `node`,
      `(S, T, n)` or `(T, n)` / `(T,)` for one sample.
    - `node`: the recorded neuron node (default: the graph's only spiking neuron).
    - `structure`: `"auto"` (every part, staged: latency, spike latency, probe point and input
      reading at the nominal reset and discretization first; the other resets and
      discretizations only if that leaves the recording unexplained), `"full"` (every part at
      once: the structures closest to the nominal parameters among all that explain it),
      `"none"`, or the parts to search / fix (`"latency,input_mode=impulse"`, see
      `parse_structure`).
    - `params`: the neuron fields to fit (default: time constants, input gain, v_reset).
    - `tolerance`: the largest RMS voltage residual, relative to the recording's range, that is
      still "within tolerance" when it exceeds the noise.
    - `refine`: for how many of the best screened timings (latency, spike latency, probe) every
      combination of the options is fitted; `steps`:
      Levenberg-Marquardt steps per fit.
    - `dt`: the time step, if `nominal` is a NIR graph without one.

    **Returns:** `(calibrated graph, Characterization)`; the calibrated graph has the structure
    (options, a `"<node>_latency"` Delay) and the fitted parameters; the probe is not in it.
    """
    t0 = time.perf_counter()
    graph = as_graph(nominal, dt=dt)
    if node is None:
        spiking = [p for p, n in graph.walk() if isinstance(n, nirjax.Neuron) and n.spiking]
        if len(spiking) != 1:
            raise ValueError(
                f"characterize: node is required when the graph has {len(spiking)} spiking "
                f"neurons ({spiking}); pass node=... (the recorded one)."
            )
        node = spiking[0]
    neuron = graph.node(node)
    if not (isinstance(neuron, nirjax.Neuron) and neuron.spiking and "v" in neuron.state_vars):
        raise ValueError(
            f"characterize: node {node!r} is a {type(neuron).__name__}; expected a spiking "
            "nirjax.Neuron with a membrane voltage 'v'."
        )
    n = int(np.prod(neuron_shape(neuron)))
    if not (0 < tolerance < 1):
        raise ValueError(f"characterize: tolerance must be in (0, 1), got {tolerance}.")

    xs = _inputs(graph, inputs)
    S, T = next(iter(xs.values())).shape[:2]
    y = _observed("v", v, S, T, n)
    z = _observed("spikes", spikes, S, T, n)
    if not np.isin(z, (0.0, 1.0)).all():
        raise ValueError("characterize: spikes must be 0 or 1 per step.")
    y64 = y.astype(np.float64)
    span = float(y64.max() - y64.min()) or 1.0
    integer = bool(np.all(y64 == np.round(y64)))
    floor = (1.0 / np.sqrt(12.0)) if integer else 1e-6 * span
    dtype = jnp.dtype(graph.dtype)

    nominal_s = nominal_structure(graph, node)
    search = parse_structure(structure)
    cands = candidates(nominal_s, search)
    names = tuple(params) if params is not None else default_params(neuron)
    unknown = [f for f in names if f not in type(neuron).parameters or f == "v_threshold"]
    if unknown:
        raise ValueError(
            f"characterize: cannot fit {unknown} of node {node!r} ({type(neuron).__name__}); "
            f"fit a subset of {[f for f in type(neuron).parameters if f != 'v_threshold']} "
            "(the threshold is always set from the spike steps)."
        )
    if n == 1:  # one neuron: its input gain is the probe scale
        names = tuple(f for f in names if f != input_gain_field(neuron))

    # The recorded node's input at latency 0 (it does not depend on the node); a latency of k
    # steps shifts it (what the Delay does; the free run below uses the Delay itself).
    pred0 = input_node(graph, node)
    u0 = jax.jit(jax.vmap(lambda x: graph.run(x, record=(pred0,)).record[pred0]["output"]))(xs)
    u0 = jnp.asarray(u0).reshape(S, T, n)

    def shift(a, k):  # a[t - k] (k > 0: later; k < 0: earlier), zero outside
        if k == 0:
            return a
        pad = jnp.zeros_like(a[:, :abs(k)])
        if k > 0:
            return jnp.concatenate([pad, a[:, :-k]], 1)
        return jnp.concatenate([a[:, -k:], pad], 1)

    zj, yj = jnp.asarray(z, dtype), jnp.asarray(y, dtype)

    def search(group: list[Structure]) -> list[tuple]:
        """Screen, fit and run freely one group of candidates (see the module docstring)."""
        # One neuron per option set (reading, reset, discretization) of the group: the
        # screening and the fits run every candidate through one compiled program (`*_any`).
        option_sets: dict[tuple, int] = {}
        for c in group:
            option_sets.setdefault((c.input_mode, c.reset, c.discretization), len(option_sets))
        neurons = tuple(structured_options(graph, node, Structure(
            input_mode=m, reset=r, discretization=d)).node(node) for m, r, d in option_sets)

        def problem(c: Structure) -> tuple[int, Problem]:
            # The node's own spikes come spike_latency steps before the recorded ones.
            return option_sets[(c.input_mode, c.reset, c.discretization)], Problem(
                shift(u0, c.latency), shift(zj, -c.spike_latency), yj,
                jnp.asarray(c.probe == "pre"), jnp.asarray(span, dtype))

        screened = []
        for c in tqdm(group, desc="characterize: screen", disable=not progress, leave=False):
            i, p = problem(c)
            screened.append((float(nominal_residual_any(neurons, jnp.asarray(i, jnp.int32),
                                                        p)), c))
        screened.sort(key=lambda t: (not np.isfinite(t[0]), t[0]))
        # Timing and probe point show at the nominal parameters; the options (reading, reset,
        # discretization) trade off against the parameters, so within the `refine` best
        # timings every option combination is fitted.
        timings: list[tuple] = []
        for _, c in screened:
            t = (c.latency, c.spike_latency, c.probe)
            if t not in timings:
                timings.append(t)
        keep = set(timings[:max(refine, 1)])
        chosen = [c for _, c in screened if (c.latency, c.spike_latency, c.probe) in keep]
        fits = []
        for c in tqdm(chosen, desc="characterize: fit", disable=not progress, leave=False):
            i, p = problem(c)
            fits.append((c, fit_candidate_any(neurons, i, names, p, steps=steps)))
        # Run freely only what the teacher-forced residual leaves in the race: the candidates
        # in order of that residual, stopping at twice the best once one reproduces the spikes.
        fits.sort(key=lambda t: t[1]["rms"] if np.isfinite(t[1]["rms"]) else np.inf)
        best_forced = fits[0][1]["rms"]
        out = []
        for c, fit in fits:
            if any(r[4]["reproduced"] for r in out) and not (
                    fit["rms"] <= 2 * best_forced + floor):
                break
            g = structured_graph(graph, node, c)
            calibrated = g.replace_nodes({node: dataclasses.replace(
                g.node(node), **{f: getattr(fit["neuron"], f) for f in (*names, "v_threshold")
                                 if hasattr(fit["neuron"], f)})})
            ev = _free_run(calibrated, node, c, xs, S, T, n, y64, z, fit)
            out.append((c, g, fit, calibrated, ev))
        return out

    # "auto" is staged: timing, probe and input reading at the nominal reset and
    # discretization first; the other resets and discretizations only when that leaves the
    # recording unexplained. "full" (or a list of parts) searches everything at once.
    if structure == "auto":
        first = [c for c in cands if c.reset == nominal_s.reset
                 and c.discretization == nominal_s.discretization]
        stages = [first, [c for c in cands if c not in first]]
    else:
        stages = [cands]
    results: list[tuple] = []
    for stage in stages:
        if not stage:
            continue
        results += search(stage)
        judged = _judge(results, node, neuron, names, nominal_s, y, z, span, floor, tolerance)
        if judged["verdict"] != "unexplained":
            break
    s, g, fit, calibrated, ev = judged["chosen"]
    tied, verdict, message = judged["tied"], judged["verdict"], judged["message"]
    rms, rms_out, noise = ev["rms"], judged["rms_out"], judged["noise"]
    missing, extra, reproduced = ev["missing"], ev["extra"], ev["reproduced"]
    fitted_neuron = calibrated.node(node)

    shape = neuron_shape(neuron)
    nominal_neuron = g.node(node)  # nominal parameters in the chosen input reading
    report_params = {}
    for f in (*names, "v_threshold") if hasattr(neuron, "v_threshold") else names:
        nom = np.broadcast_to(np.asarray(getattr(nominal_neuron, f), np.float64), shape)
        fitv = np.broadcast_to(np.asarray(getattr(fitted_neuron, f), np.float64), shape)
        report_params[f] = (nom.reshape(-1).copy(), fitv.reshape(-1).copy())
    report = Characterization(
        node, s, nominal_s, fit["scale"], fit["offset"], report_params,
        fit["interval"], rms, rms_out, span, noise, floor, integer, reproduced, missing, extra,
        verdict, message,
        [(r[0], r[4]["rms"], _deviation(r[1].node(node), r[3].node(node), names),
          r[4]["reproduced"]) for r in results],
        [(r[0], _relative(r[1].node(node), r[3].node(node), names)) for r in tied if r[0] != s],
        time.perf_counter() - t0,
    )
    return calibrated, report


def _judge(results, node, neuron, names, nominal_s, y, z, span, floor, tolerance) -> dict:
    """The winner among the free-run `results` (ties broken by the parameter deviation, then
    the fewest changes from the nominal structure) and its verdict (see the module
    docstring)."""
    def key(r):
        return (not r[4]["reproduced"], r[4]["rms"] if np.isfinite(r[4]["rms"]) else np.inf)

    results.sort(key=key)
    best = results[0]
    # Ties (within 0.1 % or the floor: structures the recording cannot tell apart, such as
    # the probe point without spikes): the structure closest to the nominal,
    # With noise, residuals within their chi-square spread (3 sigma) are ties too.
    noisy = _noise(best[4]["residual"]) > 10 * floor
    spread = 3.0 * np.sqrt(2.0 / y.size) if noisy else 0.0
    tied = [r for r in results if r[4]["reproduced"] == best[4]["reproduced"]
            and r[4]["rms"] ** 2 <= (best[4]["rms"] * 1.001) ** 2 * (1 + spread) + floor ** 2]
    # the smallest parameter deviation first (an Euler step with a longer tau mimics the exact
    # step: the exact one explains the data with nominal parameters), then the fewest changes.
    s, g, fit, calibrated, ev = min(
        tied, key=lambda r: (round(_deviation(r[1].node(node), r[3].node(node), names), 2),
                             r[0].changes(nominal_s), key(r)))
    residual, rms, missing, extra = ev["residual"], ev["rms"], ev["missing"], ev["extra"]
    reproduced = ev["reproduced"]
    zr = z > 0.5
    outside = ~zr
    rms_out = float(np.sqrt(np.mean(residual[outside] ** 2))) if outside.any() else rms
    noise = _noise(residual)
    level = max(noise, floor)
    # With noisy traces the fitted threshold is uncertain: a few spikes one step off (each
    # missing one paired with an extra one a step away) are within tolerance.
    near = _paired(missing, extra)
    few = len(missing) <= max(1, int(0.02 * zr.sum())) and len(extra) == len(missing)
    if not reproduced and noise > 10 * floor and near and few and \
            rms <= max(tolerance * span, 3 * level):
        verdict = "within tolerance"
        message = (f"{len(missing)} of {int(zr.sum())} spikes one step off (noisy traces: "
                   f"noise ~ {noise:.3g}); voltage residual {rms:.3g} = {rms / level:.3g}x the "
                   "noise level.")
    elif not reproduced:
        verdict = "unexplained"
        message = (f"spike steps not reproduced: {len(missing)} recorded spike(s) missing"
                   + (f" (first at step {missing[0][1]})" if missing else "")
                   + f", {len(extra)} extra" + (f" (first at step {extra[0][1]})" if extra else "")
                   + f"; voltage residual {rms:.3g} = {rms / level:.3g}x the noise level "
                   f"{level:.3g}. The model ({type(neuron).__name__}, {s.describe()}) cannot "
                   "express this platform's dynamics.")
    elif rms <= 3 * level:
        verdict = "explained"
        message = f"residual {rms:.3g} is at the noise level {level:.3g}."
    elif rms <= tolerance * span:
        verdict = "within tolerance"
        at_spikes = 1.0 - (np.sum(residual[outside] ** 2) / max(np.sum(residual ** 2), 1e-300))
        message = (f"residual {rms:.3g} is {rms / level:.3g}x the noise level {level:.3g} but "
                   f"within {100 * tolerance:g} % of the range; {100 * at_spikes:.0f} % of the "
                   f"squared residual sits at the {int(zr.sum())} spike steps (outside them the "
                   f"RMS is {rms_out:.3g}).")
    else:
        verdict = "unexplained"
        message = (f"voltage residual {rms:.3g} ({100 * rms / span:.3g} % of the range) is "
                   f"{rms / level:.3g}x the noise level {level:.3g} and beyond the tolerance "
                   f"{100 * tolerance:g} %: the sub-threshold dynamics are not those of the model "
                   f"({type(neuron).__name__}, {s.describe()}).")

    return {"chosen": (s, g, fit, calibrated, ev), "tied": tied, "verdict": verdict,
            "message": message, "rms_out": rms_out, "noise": noise}


def _paired(missing, extra) -> bool:
    """Whether every missing spike has an extra one at most one step away (same sample and
    neuron)."""
    pool = list(extra)
    for m in missing:
        hit = next((e for e in pool if e[0] == m[0] and e[2:] == m[2:] and abs(e[1] - m[1]) <= 1),
                   None)
        if hit is None:
            return False
        pool.remove(hit)
    return True


def _relative(nominal, fitted, names) -> dict[str, float]:
    out = {}
    for f in (*names, "v_threshold"):
        if hasattr(nominal, f):
            p0 = np.asarray(getattr(nominal, f), np.float64)
            p = np.asarray(getattr(fitted, f), np.float64)
            out[f] = float(np.median(p / p0)) if np.all(p0 != 0) else float(np.median(p - p0))
    return out


def _deviation(nominal, fitted, names) -> float:
    """Sum over parameters of the median |log(fitted / nominal)| (voltages: the shift relative
    to |v_threshold - v_reset|)."""
    total = 0.0
    vs = abs(float(np.median(np.asarray(nominal.v_threshold) - np.asarray(nominal.v_reset)))) \
        if hasattr(nominal, "v_reset") else 1.0
    for f in (*names, "v_threshold"):
        if not hasattr(nominal, f):
            continue
        p0 = np.asarray(getattr(nominal, f), np.float64)
        p = np.asarray(getattr(fitted, f), np.float64)
        if type(nominal).parameters[f] == "positive" or f == "v_threshold":
            total += float(np.median(np.abs(np.log(np.abs(p) / np.abs(p0)))))
        else:
            total += float(np.median(np.abs(p - p0))) / (vs or 1.0)
    return total


def _free_run(calibrated, node, s, xs, S, T, n, y64, z, fit) -> dict:
    """Run the calibrated graph freely (nirjax's executor, the Delays included) and compare with
    the recording through the probe."""
    neuron = calibrated.node(node)
    pred = input_node(calibrated, node)
    out = delay_name(node, "output") if s.spike_latency else node

    def free(x):
        rec = calibrated.run(x, record=tuple({pred, node, out})).record
        return rec[pred]["output"], {k: rec[node][k] for k in neuron.state_vars}, \
            rec[out]["output"]

    u_free, states, z_free = jax.jit(jax.vmap(free))(xs)
    v_free = np.asarray(states["v"]).reshape(S, T, n)
    if s.probe == "pre":
        c = neuron.prepare()
        shape = neuron_shape(neuron)
        prev = {k: jnp.concatenate([jnp.zeros_like(a[:, :1]), a[:, :-1]], 1)
                for k, a in states.items()}

        def pre_v(state, u):
            return neuron.integrate(c, state, u.reshape(shape))["v"].reshape(-1)

        v_free = np.asarray(jax.vmap(jax.vmap(pre_v))(
            prev, u_free.reshape(S, T, *shape))).reshape(S, T, n)
    z_free = np.asarray(z_free).reshape(S, T, n) > 0.5
    residual = y64 - (fit["scale"] * v_free.astype(np.float64) + fit["offset"])
    zr = z > 0.5
    missing = [tuple(int(i) for i in t) for t in np.argwhere(zr & ~z_free)]
    extra = [tuple(int(i) for i in t) for t in np.argwhere(z_free & ~zr)]
    rms = float(np.sqrt(np.mean(residual ** 2)))
    return {"residual": residual, "rms": rms if np.isfinite(rms) else np.inf,
            "missing": missing, "extra": extra, "reproduced": not missing and not extra}


def _inputs(graph: nirjax.Graph, inputs) -> dict[str, jax.Array]:
    names = graph.inputs
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise ValueError(f"characterize: the graph has inputs {list(names)}; pass a dict.")
        inputs = {names[0]: inputs}
    out = {}
    for k in names:
        if k not in inputs:
            raise ValueError(f"characterize: no inputs for Input node {k!r} (got {list(inputs)}).")
        x = np.asarray(inputs[k])
        shape = tuple(np.atleast_1d(np.asarray(graph.node(k).expected_input_shape())))
        if x.ndim == len(shape) + 1 or (x.ndim == 1 and shape == (1,)):
            x = x.reshape(1, x.shape[0], *shape)  # one sample
        out[k] = jnp.asarray(x, graph.dtype)
    return out


def _observed(name: str, x, S: int, T: int, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64 if name == "v" else np.float32)
    if x.size != S * T * n:
        raise ValueError(
            f"characterize: {name} has shape {x.shape}; expected {S} sample(s) x {T} steps x {n} "
            f"neuron(s) like the inputs."
        )
    return x.reshape(S, T, n)


__all__ = ["Characterization", "Structure", "characterize", "delay_name"]
