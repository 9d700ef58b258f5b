r"""What `fit_mismatch` minimises: the recorded data as a `Problem`, its data terms (trace MSE,
van Rossum, spike count, threshold consistency) and the objective with the prior's penalty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import nirjax

from ._losses import spike_count_error, van_rossum_distance
from ._mismatch_forcing import Forced, infer_spikes, threshold_consistency
from ._mismatch_neurons import is_spiking
from ._mismatch_targets import Target, out_shape, substitute
from ._paths import get, node_or_error

LOSSES = ("trace_mse", "van_rossum", "spike_count")
TRACE_OBSERVABLES = ("v", "I")


def as_samples(name: str, obs: str, x, shape: tuple[int, ...], dtype) -> jax.Array:
    x = np.asarray(x)
    n = int(np.prod(shape))
    if x.ndim >= 2 and int(np.prod(x.shape[2:])) == n:
        return jnp.asarray(x.reshape(x.shape[:2] + shape), dtype)
    raise ValueError(
        f"recording of {name!r}, observable {obs!r}: expected shape (samples, T, *{shape}), got "
        f"{x.shape}. Add a leading samples axis for a single recording (x[None])."
    )


def as_inputs(graph: nirjax.Graph, inputs) -> dict[str, jax.Array]:
    """Inputs `(S, T, *input_shape)` (a dict by Input name if several), in the graph's dtype."""
    if not isinstance(inputs, Mapping):
        inputs = {graph.inputs[0]: inputs} if len(graph.inputs) == 1 else inputs
    if not isinstance(inputs, Mapping) or set(inputs) != set(graph.inputs):
        raise ValueError(f"inputs: expected a dict with keys {sorted(graph.inputs)}.")
    dtype = jnp.dtype(graph.dtype)
    return {
        k: as_samples(k, "inputs", v, tuple(graph.nodes[k].shape), dtype)
        for k, v in inputs.items()
    }


def batch(inputs: dict[str, jax.Array]):
    """What `graph.run` takes: the array of the one input, else the dict."""
    return inputs if len(inputs) > 1 else next(iter(inputs.values()))


def _noise_sigma(traces: list[np.ndarray]) -> float:
    """Robust observation-noise estimate from second differences along time (the dynamics are
    smooth at the step scale; resets are outliers): `MAD / 0.6745 / sqrt(6)`."""
    parts = []
    for x in traces:
        d2 = np.diff(np.asarray(x, np.float64), n=2, axis=1).ravel()
        if d2.size:
            parts.append(d2)
    if not parts:
        return 0.0
    d2 = np.concatenate(parts)
    return float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / np.sqrt(6.0))


def _parse_loss(loss, has_trace: bool, has_spikes: bool) -> dict[str, float]:
    if loss == "auto":
        loss = "trace_mse" if has_trace else "van_rossum"
    if isinstance(loss, str):
        weights = {k.strip(): 1.0 for k in loss.split("+") if k.strip()}
    elif isinstance(loss, Mapping):
        weights = {k: float(v) for k, v in loss.items()}
    else:
        raise TypeError(f"loss: expected a name, 'a+b' or a dict of weights, got {loss!r}.")
    for k in weights:
        if k not in LOSSES:
            raise ValueError(f"loss: {k!r} is not a loss; choose from {list(LOSSES)}.")
    if "trace_mse" in weights and not has_trace:
        raise ValueError(
            "loss 'trace_mse' needs recorded membrane traces ('v'); the recording has none. "
            "Use loss='van_rossum' or 'spike_count' for spikes."
        )
    if ("van_rossum" in weights or "spike_count" in weights) and not has_spikes:
        raise ValueError(
            "spike losses need recorded spikes ('output') of a node that is not teacher-forced; "
            "use loss='trace_mse', or teacher_forcing=False."
        )
    return weights


class Problem(NamedTuple):
    base: nirjax.Graph
    targets: list[Target]
    traces: dict  # node -> {obs: (S, T, ...)}
    spikes: dict  # node -> (S, T, ...), for spike losses
    forcing: dict  # node -> (S, T, ...)
    thresholds: dict  # forced node -> target name of its v_threshold (or None)
    record: tuple[str, ...]
    weights: dict
    tau_vr: float
    prior_weight: float
    noise: float | None  # estimated trace noise sigma (None without traces)
    noise2: float  # the variance used for the prior (0 without traces)


def make_problem(
    graph: nirjax.Graph,
    targets: list[Target],
    recordings: Mapping[str, Mapping[str, Any]],
    inputs: dict[str, jax.Array],
    *,
    loss,
    teacher_forcing: bool,
    detach_reset: bool,
    van_rossum_tau: float,
) -> Problem:
    """The recordings reshaped to the nodes' shapes and sorted into traces, spikes for spike
    losses and the spikes that teacher-force a node; see `fit_mismatch` for the arguments."""
    dtype = jnp.dtype(graph.dtype)
    S, T = next(iter(inputs.values())).shape[:2]
    traces: dict[str, dict[str, jax.Array]] = {}
    spikes: dict[str, jax.Array] = {}
    forcing: dict[str, jax.Array] = {}
    if not recordings:
        raise ValueError("recordings: nothing recorded; pass {node: {'v': ..., 'output': ...}}.")
    for name, obs in recordings.items():
        node = node_or_error(graph, name, f"recordings: no node {name!r} in the graph")
        shape = out_shape(graph, name)
        unknown = set(obs) - {"output", *TRACE_OBSERVABLES}
        if unknown:
            raise ValueError(
                f"recordings of {name!r}: unknown observable(s) {sorted(unknown)}; use 'v', 'I' "
                "and 'output'."
            )
        arrs = {k: as_samples(name, k, v, shape, dtype) for k, v in obs.items()}
        for k, a in arrs.items():
            if a.shape[:2] != (S, T):
                raise ValueError(
                    f"recordings of {name!r}, {k!r}: {a.shape[:2]} samples x steps, but the "
                    f"inputs have {(S, T)}."
                )
        tr = {k: a for k, a in arrs.items() if k in TRACE_OBSERVABLES}
        if tr:
            traces[name] = tr
        if teacher_forcing and is_spiking(node) and "v" in arrs:
            forcing[name] = arrs["output"] if "output" in arrs else infer_spikes(arrs["v"], node)
        elif "output" in arrs:
            spikes[name] = arrs["output"]
    weights = _parse_loss(loss, bool(traces), bool(spikes))
    if "trace_mse" not in weights:
        traces = {}
    if not ({"van_rossum", "spike_count"} & set(weights)):
        spikes = {}
    names = {t.name for t in targets}
    thresholds = {n: (f"{n}.v_threshold" if f"{n}.v_threshold" in names else None) for n in forcing}

    sigma = None
    if traces:
        arrays = [a for o in traces.values() for a in o.values()]
        sigma = _noise_sigma([np.asarray(a) for a in arrays])
        prior_weight = max(sigma, 1e-6) ** 2 / sum(a.size for a in arrays)
    else:
        prior_weight = 1.0 / max(sum(s.size for s in spikes.values()), 1)
    base = graph.with_options(detach_reset=True) if detach_reset else graph
    record = tuple(sorted(set(traces) | set(spikes) | set(forcing)))
    noise2 = max(sigma, 1e-6) ** 2 if traces else 0.0
    problem = Problem(base, targets, traces, spikes, forcing, thresholds, record, weights,
                      van_rossum_tau, prior_weight, sigma, noise2)
    _check_observables(problem, {t.name: jnp.asarray(t.nominal) for t in targets}, batch(inputs))
    return problem


def sample_outputs(problem: Problem, values, xs, forcing):
    """The recorded observables of one sample for parameter `values` (by target name)."""
    g = substitute(problem.base, problem.targets, values)
    if forcing:
        g = g.replace_nodes({n: Forced(get(g, n), s) for n, s in forcing.items()})
    return g.run(xs, record=problem.record).record


def run_samples(problem: Problem, values, xs):
    """`sample_outputs` of every sample: `{node: {obs: (S, T, ...)}}`."""
    return jax.vmap(lambda x, f: sample_outputs(problem, values, x, f))(xs, problem.forcing)


def _data_terms(problem: Problem, values, inputs):
    """The per-loss data terms, averaged over samples."""

    def one(xs, traces, spikes, forcing):
        rec = sample_outputs(problem, values, xs, forcing)
        terms = {}
        if "trace_mse" in problem.weights:
            sq = [
                jnp.sum((rec[n][k] - x) ** 2) for n, obs in traces.items() for k, x in obs.items()
            ]
            count = sum(x.size for obs in traces.values() for x in obs.values())
            terms["trace_mse"] = sum(sq) / count
        if "van_rossum" in problem.weights:
            d = [
                van_rossum_distance(
                    rec[n]["output"], s, tau=problem.tau_vr, dt=problem.base.options.dt
                )
                for n, s in spikes.items()
            ]
            terms["van_rossum"] = sum(d) / len(d)
        if "spike_count" in problem.weights:
            d = [spike_count_error(rec[n]["output"], s) for n, s in spikes.items()]
            terms["spike_count"] = sum(d) / len(d)
        thr = []
        for n, name in problem.thresholds.items():
            if name is not None:
                thr.append(threshold_consistency(rec[n]["v_pre"], forcing[n], values[name]))
        if thr:
            terms["threshold"] = sum(thr) / len(thr)
        return terms

    terms = jax.vmap(one)(inputs, problem.traces, problem.spikes, problem.forcing)
    return {k: jnp.mean(v) for k, v in terms.items()}


def _check_observables(problem: Problem, values, xs) -> None:
    """Every recorded observable must be one the model records (checked on shapes only)."""
    first = jax.tree.map(lambda a: a[0], (xs, problem.forcing))
    rec = jax.eval_shape(lambda v, x, f: sample_outputs(problem, v, x, f), values, *first)
    wanted = {n: set(o) for n, o in problem.traces.items()}
    for n in problem.spikes:
        wanted.setdefault(n, set()).add("output")
    for n, keys in wanted.items():
        missing = keys - set(rec[n])
        if missing:
            raise ValueError(
                f"recordings of {n!r}: the model has no observable {sorted(missing)} for this "
                f"{type(get(problem.base, n)).__name__} node (it records {sorted(rec[n])}). "
                "Record 'v' and 'I' only for neurons."
            )


def objective(problem: Problem, u, inputs):
    """`(total, data)`: the weighted data terms plus the threshold term and the prior's penalty,
    and the data terms alone, for unconstrained `u` (by target name)."""
    values = {t.name: t.value(u[t.name]) for t in problem.targets}
    terms = _data_terms(problem, values, inputs)
    data = sum(problem.weights[k] * terms[k] for k in problem.weights)
    total = data + terms.get("threshold", 0.0)
    penalty = [
        jnp.sum((t.bound * jnp.tanh(u[t.name]) / t.prior) ** 2)
        for t in problem.targets
        if t.prior is not None
    ]
    if penalty:
        total = total + problem.prior_weight * sum(penalty)
    return total, data
