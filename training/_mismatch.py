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

**Uncertainty.** For parameters of a node whose trace is recorded (and per-row gains of the
weight feeding it): the Gauss-Newton (Fisher) estimate $\sigma^2 [(J^\top J)^{-1}]_{kk}$ per
neuron, from the Jacobian of that neuron's trace with respect to its own parameters (exact when a
neuron's trace depends only on its own parameters, as under teacher forcing). For thresholds under
teacher forcing: the width of the interval of consistent thresholds / √12. Otherwise, with
`multi_start > 1`, the spread across starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax
from tqdm.auto import tqdm

import nirjax
from nirjax._import import options_from_metadata
from nirjax.primitives import Affine, Linear

from ._losses import spike_count_error, van_rossum_distance
from ._mismatch_data import Recording, read_recording, write_recording
from ._mismatch_forcing import Forced, can_force, threshold_consistency, threshold_interval

NEURON_FIELDS = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in")
WEIGHT_FIELDS = ("weight", "gain")
FIELDS = NEURON_FIELDS + WEIGHT_FIELDS
POSITIVE = ("tau", "tau_syn", "tau_mem")
LOSSES = ("trace_mse", "van_rossum", "spike_count")
TRACE_OBSERVABLES = ("v", "I")
DEFAULT_PARAMS = ("tau", "tau_syn", "tau_mem", "r", "v_threshold")


# ------------------------------------------------------------------------------ graph helpers
def _walk(graph: nirjax.Graph, prefix: str = ""):
    """Yield `(path, node, parent graph, name in parent)` for every node, depth first."""
    for name, node in graph.nodes.items():
        path = f"{prefix}/{name}" if prefix else name
        yield path, node, graph, name
        if isinstance(node, nirjax.Graph):
            yield from _walk(node, path)


def _get(graph: nirjax.Graph, path: str):
    node: Any = graph
    for part in path.split("/"):
        node = node.nodes[part]
    return node


def _node_or_error(graph: nirjax.Graph, path: str, what: str):
    """The node at `path`, or a ValueError "<what> (nodes: [...])"."""
    try:
        return _get(graph, path)
    except (KeyError, AttributeError):
        raise ValueError(
            f"{what} (nodes: {sorted(p for p, *_ in _walk(graph))})."
        ) from None


def _parent(graph: nirjax.Graph, path: str) -> tuple[nirjax.Graph, str]:
    head, _, leaf = path.rpartition("/")
    return (_get(graph, head) if head else graph), leaf


def _neuron_shape(graph: nirjax.Graph, path: str) -> tuple[int, ...]:
    parent, leaf = _parent(graph, path)
    node = parent.nodes[leaf]
    shape = dict(parent.plan.in_shapes)[leaf]
    return tuple(np.broadcast_shapes(tuple(node.expected_input_shape() or ()), tuple(shape)))


def _out_shape(graph: nirjax.Graph, path: str) -> tuple[int, ...]:
    parent, leaf = _parent(graph, path)
    shape = dict(parent.plan.out_shapes)[leaf]
    if isinstance(shape, dict):
        raise ValueError(
            f"recording of {path!r}: the node is a subgraph with several outputs; record nodes "
            "inside it ('sub/node') instead."
        )
    return tuple(shape)


def _has_field(node, field: str) -> bool:
    if field in WEIGHT_FIELDS:
        return isinstance(node, (Affine, Linear))
    return field in getattr(node, "_fields", ())


def _replace_nodes(graph: nirjax.Graph, new: Mapping[str, Any]) -> nirjax.Graph:
    if not new:
        return graph
    paths = list(new)
    return eqx.tree_at(lambda g: [_get(g, p) for p in paths], graph, [new[p] for p in paths])


def as_graph(src, *, dt: float | None = None) -> nirjax.Graph:
    """A `nirjax.Graph` from a Graph, a `nir.NIRGraph` or a .nir path. `dt` is used only if the
    graph does not record its own time step."""
    if isinstance(src, nirjax.Graph):
        return src
    if isinstance(src, (str, os.PathLike)):
        src = nirjax.read(src)
    if not isinstance(src, nir.NIRGraph):
        raise TypeError(
            f"expected a nirjax.Graph, a nir.NIRGraph or a .nir path, got {type(src).__name__}."
        )
    recorded = "dt" in options_from_metadata(getattr(src, "metadata", None))
    return nirjax.from_nir(src, dt=None if recorded else dt)


# ------------------------------------------------------------------------------ targets
@dataclasses.dataclass(frozen=True)
class Target:
    """One fitted parameter array: `node` (path), `field`, relative `bound`, prior σp (or None),
    its nominal value and the scale of its deviations."""

    node: str
    field: str
    bound: float
    prior: float | None
    nominal: np.ndarray = dataclasses.field(compare=False, repr=False)
    scale: np.ndarray = dataclasses.field(compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.node}.{self.field}"

    def value(self, u):
        """The parameter for unconstrained `u` (same shape as the nominal)."""
        return self.nominal + self.bound * self.scale * jnp.tanh(u)

    def unconstrained(self, value):
        """The `u` of a value (clipped just inside the bounds)."""
        x = (jnp.asarray(value) - self.nominal) / (self.bound * self.scale)
        return jnp.arctanh(jnp.clip(x, -0.999999, 0.999999))

    def deviation(self, value):
        """The deviation from nominal in units of the scale (relative where nominal != 0)."""
        return (np.asarray(value) - self.nominal) / self.scale


def _lookup(option, target_node: str, field: str, default):
    if not isinstance(option, Mapping):
        return default if option is None and default is not None else option
    for key in (f"{target_node}.{field}", field, "default"):
        if key in option:
            return option[key]
    return default


def _parse_spec(graph: nirjax.Graph, spec: str) -> list[tuple[str, str]]:
    if not isinstance(spec, str):
        raise TypeError(f"params: expected names such as 'tau_mem' or 'lif.tau_mem', got {spec!r}.")
    if spec in FIELDS:
        found = [(p, spec) for p, n, _, _ in _walk(graph) if _has_field(n, spec)]
        return found
    node, dot, field = spec.rpartition(".")
    if not dot or field not in FIELDS:
        raise ValueError(
            f"params: {spec!r} is not a parameter. Use a field name {list(FIELDS)} (all nodes "
            "that have it) or 'node.field' (one node; 'sub/node.field' inside a subgraph)."
        )
    target = _node_or_error(
        graph, node, f"params: {spec!r} names node {node!r}, which is not in the graph"
    )
    if not _has_field(target, field):
        raise ValueError(
            f"params: node {node!r} ({type(target).__name__}) has no parameter {field!r}."
        )
    return [(node, field)]


def _fallback_scale(node, field: str, nominal: np.ndarray) -> np.ndarray:
    if field in ("v_leak", "v_threshold") and hasattr(node, "v_reset"):
        ref = np.abs(np.asarray(node.v_threshold) - np.asarray(node.v_reset))
        ref = np.broadcast_to(ref, nominal.shape)
        return np.where(ref > 0, ref, 1.0)
    nonzero = np.abs(nominal[nominal != 0])
    return np.full(nominal.shape, nonzero.mean() if nonzero.size else 1.0)


def resolve_targets(
    graph: nirjax.Graph,
    params: Sequence[str] | str,
    *,
    per_row_gain: bool | Sequence[str] = False,
    bounds: float | Mapping[str, float] = 0.5,
    prior: float | Mapping[str, float] | None = None,
    strict: bool = True,
) -> list[Target]:
    """The parameter arrays that `params` names (see `fit_mismatch`), with nominal values."""
    if isinstance(params, str):
        params = [p for p in params.split(",") if p]
    specs = list(params)
    if per_row_gain is True:
        specs.append("gain")
    elif per_row_gain:
        specs += [f"{n}.gain" for n in per_row_gain]
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        found = _parse_spec(graph, spec)
        if not found and strict:
            raise ValueError(
                f"params: no node of the graph has parameter {spec!r}. Nodes and types: "
                f"{ {p: type(n).__name__ for p, n, _, _ in _walk(graph)} }."
            )
        pairs += [p for p in found if p not in pairs]
    if not pairs:
        raise ValueError(f"params: {list(specs)} selects no parameter of the graph.")
    dtype = jnp.dtype(graph.dtype)
    targets = []
    for path, field in pairs:
        node = _get(graph, path)
        bound = float(_lookup(bounds, path, field, 0.5))
        if not (bound > 0 and math.isfinite(bound)):
            raise ValueError(f"bounds for {path}.{field}: must be > 0, got {bound}.")
        if field in POSITIVE and bound >= 1:
            raise ValueError(
                f"bounds for {path}.{field}: a time constant needs a relative bound < 1 to stay "
                f"positive, got {bound}. Use e.g. bounds=0.5 (±50 %)."
            )
        sigma = _lookup(prior, path, field, None)
        sigma = None if sigma is None else float(sigma)
        if field == "gain":
            nominal = np.ones(node.weight.shape[:-1], dtype)
            scale = np.ones_like(nominal)
        else:
            nominal = np.asarray(getattr(node, field), dtype)
            if field in NEURON_FIELDS:
                nominal = np.broadcast_to(nominal, _neuron_shape(graph, path)).copy()
            scale = np.where(nominal != 0, np.abs(nominal), _fallback_scale(node, field, nominal))
        targets.append(
            Target(path, field, bound, sigma, nominal.astype(dtype), scale.astype(dtype))
        )
    return targets


def substitute(graph: nirjax.Graph, targets: Sequence[Target], values: Mapping[str, Any]):
    """The graph with the targets' parameter arrays replaced by `values` (by target name)."""
    arrays: dict[tuple[str, str], Any] = {}
    for t in targets:
        if t.field != "gain":
            arrays[(t.node, t.field)] = values[t.name]
    for t in targets:
        if t.field == "gain":
            w = arrays.get((t.node, "weight"), _get(graph, t.node).weight)
            arrays[(t.node, "weight")] = w * values[t.name][..., None]
    keys = list(arrays)
    return eqx.tree_at(
        lambda g: [getattr(_get(g, n), f) for n, f in keys], graph, [arrays[k] for k in keys]
    )


def _with_options(graph: nirjax.Graph, **changes) -> nirjax.Graph:
    new = {}
    for path, node, _, _ in _walk(graph):
        options = getattr(node, "options", None)
        fields = getattr(node, "_fields", None)
        if isinstance(options, nirjax.Options) and fields is not None:
            new[path] = type(node)(
                **{f: getattr(node, f) for f in fields}, options=options.replace(**changes)
            )
    return _replace_nodes(graph, new)


# ------------------------------------------------------------------------------ report
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


# ------------------------------------------------------------------------------ data
def _as_samples(name: str, obs: str, x, shape: tuple[int, ...], dtype) -> jax.Array:
    x = np.asarray(x)
    n = int(np.prod(shape))
    if x.ndim >= 2 and int(np.prod(x.shape[2:])) == n:
        return jnp.asarray(x.reshape(x.shape[:2] + shape), dtype)
    raise ValueError(
        f"recording of {name!r}, observable {obs!r}: expected shape (samples, T, *{shape}), got "
        f"{x.shape}. Add a leading samples axis for a single recording (x[None])."
    )


def _infer_spikes(v: jax.Array, node) -> jax.Array:
    """Spike steps from a recorded trace: a drop of more than half of |v_threshold - v_reset| in
    one step (a reset)."""
    jump = jnp.abs(jnp.asarray(node.v_threshold) - jnp.asarray(node.v_reset))
    prev = jnp.concatenate([jnp.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
    return (prev - v > 0.5 * jump).astype(v.dtype)


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


# ------------------------------------------------------------------------------ fitting
class _Problem(NamedTuple):
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
    noise2: float  # estimated trace noise variance (0 without traces)


def _sample_outputs(problem: _Problem, values, xs, forcing):
    g = substitute(problem.base, problem.targets, values)
    if forcing:
        g = _replace_nodes(g, {n: Forced(_get(g, n), s) for n, s in forcing.items()})
    return g.run(xs, record=problem.record).record


def _data_terms(problem: _Problem, values, inputs):
    """The per-loss data terms, averaged over samples."""

    def one(xs, traces, spikes, forcing):
        rec = _sample_outputs(problem, values, xs, forcing)
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


def _check_observables(problem: _Problem, values, xs) -> None:
    """Every recorded observable must be one the model records (checked on shapes only)."""
    first = jax.tree.map(lambda a: a[0], (xs, problem.forcing))
    rec = jax.eval_shape(lambda v, x, f: _sample_outputs(problem, v, x, f), values, *first)
    wanted = {n: set(o) for n, o in problem.traces.items()}
    for n in problem.spikes:
        wanted.setdefault(n, set()).add("output")
    for n, keys in wanted.items():
        missing = keys - set(rec[n])
        if missing:
            raise ValueError(
                f"recordings of {n!r}: the model has no observable {sorted(missing)} for this "
                f"{type(_get(problem.base, n)).__name__} node (it records {sorted(rec[n])}). "
                "Record 'v' and 'I' only for neurons."
            )


def _objective(problem: _Problem, u, inputs):
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
    - `polish`: after gradient descent, this many Gauss-Newton iterations on the per-neuron
      blocks of trace-recorded nodes that are teacher-forced or do not spike (each neuron's step
      is kept only if it lowers that neuron's residual), and thresholds of forced nodes moved to
      the middle of their consistent interval. 0 turns it off.
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
    if not isinstance(inputs, Mapping):
        inputs = {graph.inputs[0]: inputs} if len(graph.inputs) == 1 else inputs
    if not isinstance(inputs, Mapping) or set(inputs) != set(graph.inputs):
        raise ValueError(f"inputs: expected a dict with keys {sorted(graph.inputs)}.")
    inputs = {
        k: _as_samples(k, "inputs", v, tuple(graph.nodes[k].shape), dtype)
        for k, v in inputs.items()
    }
    S, T = next(iter(inputs.values())).shape[:2]
    xs = inputs if len(inputs) > 1 else next(iter(inputs.values()))

    targets = resolve_targets(graph, params, per_row_gain=per_row_gain, bounds=bounds, prior=prior)

    # Recorded data, reshaped to the nodes' shapes.
    traces: dict[str, dict[str, jax.Array]] = {}
    spikes: dict[str, jax.Array] = {}
    forcing: dict[str, jax.Array] = {}
    if not recordings:
        raise ValueError("recordings: nothing recorded; pass {node: {'v': ..., 'output': ...}}.")
    for name, obs in recordings.items():
        node = _node_or_error(graph, name, f"recordings: no node {name!r} in the graph")
        shape = _out_shape(graph, name)
        unknown = set(obs) - {"output", *TRACE_OBSERVABLES}
        if unknown:
            raise ValueError(
                f"recordings of {name!r}: unknown observable(s) {sorted(unknown)}; use 'v', 'I' "
                "and 'output'."
            )
        arrs = {k: _as_samples(name, k, v, shape, dtype) for k, v in obs.items()}
        for k, a in arrs.items():
            if a.shape[:2] != (S, T):
                raise ValueError(
                    f"recordings of {name!r}, {k!r}: {a.shape[:2]} samples x steps, but the "
                    f"inputs have {(S, T)}."
                )
        tr = {k: a for k, a in arrs.items() if k in TRACE_OBSERVABLES}
        if tr:
            traces[name] = tr
        if teacher_forcing and can_force(node) and "v" in arrs:
            forcing[name] = arrs["output"] if "output" in arrs else _infer_spikes(arrs["v"], node)
        elif "output" in arrs:
            spikes[name] = arrs["output"]
    weights = _parse_loss(loss, bool(traces), bool(spikes))
    if "trace_mse" not in weights:
        traces = {}
    if not ({"van_rossum", "spike_count"} & set(weights)):
        spikes = {}
    by_name = {t.name: t for t in targets}
    thresholds = {
        n: (f"{n}.v_threshold" if f"{n}.v_threshold" in by_name else None) for n in forcing
    }

    sigma = (
        _noise_sigma([np.asarray(a) for o in traces.values() for a in o.values()])
        if traces
        else None
    )
    n_obs = sum(a.size for o in traces.values() for a in o.values())
    if traces:
        prior_weight = max(sigma, 1e-6) ** 2 / n_obs
    else:
        prior_weight = 1.0 / max(sum(s.size for s in spikes.values()), 1)

    base = _with_options(graph, detach_reset=True) if detach_reset else graph
    record = tuple(sorted(set(traces) | set(spikes) | set(forcing)))
    problem = _Problem(
        base,
        targets,
        traces,
        spikes,
        forcing,
        thresholds,
        record,
        weights,
        van_rossum_tau,
        prior_weight,
        max(sigma, 1e-6) ** 2 if traces else 0.0,
    )
    _check_observables(problem, {t.name: jnp.asarray(t.nominal) for t in targets}, xs)

    # Starts: the nominal graph, then random deviations (u ~ N(0, 0.5^2)).
    key = jax.random.PRNGKey(seed)
    u0 = {}
    for i, t in enumerate(targets):
        noise = 0.5 * jax.random.normal(
            jax.random.fold_in(key, i), (multi_start - 1, *t.nominal.shape), dtype
        )
        u0[t.name] = jnp.concatenate([jnp.zeros((1, *t.nominal.shape), dtype), noise])

    def schedule(count):  # cosine decay from lr to lr / 10 (dtype-strict)
        frac = jnp.minimum(jnp.asarray(count, dtype) / max(steps, 1), 1.0)
        return lr * (0.1 + 0.45 * (1.0 + jnp.cos(jnp.pi * frac)))

    parts = [optax.clip_by_global_norm(clip)] if clip else []
    optimizer = optax.chain(*parts, optax.adam(schedule))

    def start_step(u, opt_state, best_u, best_loss):
        (total, data), grads = jax.value_and_grad(
            lambda u: _objective(problem, u, xs), has_aux=True
        )(u)
        better = total < best_loss
        best_u = jax.tree.map(lambda a, b: jnp.where(better, a, b), u, best_u)
        best_loss = jnp.where(better, total, best_loss)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts and floats
            updates, opt_state = optimizer.update(grads, opt_state, u)
        return optax.apply_updates(u, updates), opt_state, best_u, best_loss, total

    step_fn = jax.jit(jax.vmap(start_step))
    objective = jax.jit(jax.vmap(lambda u: _objective(problem, u, xs)))

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
    final_total, _ = objective(u)
    better = final_total < best_loss
    best_u = jax.tree.map(lambda a, b: jnp.where(_expand(better, a), a, b), u, best_u)
    best_loss = jnp.where(better, final_total, best_loss)
    winner = int(jnp.argmin(best_loss))

    u_best = {k: v[winner] for k, v in best_u.items()}
    values = {t.name: t.value(u_best[t.name]) for t in targets}
    if polish and traces:
        values = _polish(problem, values, xs, polish)
        u_best = {t.name: t.unconstrained(values[t.name]) for t in targets}

    def at_starts(u):  # evaluate at the batch shape of the starts: nothing compiles again
        return float(objective(jax.tree.map(
            lambda v: jnp.broadcast_to(v, (multi_start, *v.shape)), u))[1][0])

    initial_data = at_starts({k: jnp.zeros_like(v) for k, v in u_best.items()})
    final_data = at_starts(u_best)
    fitted = substitute(graph, targets, values)

    all_values = {t.name: np.asarray(t.value(best_u[t.name])) for t in targets}
    unc, methods = {}, {}
    if uncertainty:
        unc, methods = _uncertainties(problem, values, xs, final_data if traces else None)
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
        dict(weights),
        hist,
        initial_data,
        final_data,
        sigma,
        tuple(sorted(forcing)),
        np.asarray(best_loss),
        time.perf_counter() - t_start,
        steps,
    )
    return fitted, report


def _expand(mask, a):
    return mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))


def _feeds_only(graph: nirjax.Graph, src: str, dst: str) -> bool:
    if "/" in src or "/" in dst:
        return False
    out = [e for e in graph.plan.edges if e.src == src]
    return bool(out) and all(e.dst == dst for e in out)


def _runner(problem: _Problem, xs):
    def run_all(vals):
        def one(x, f):
            return _sample_outputs(problem, vals, x, f)

        return jax.vmap(one)(xs, problem.forcing)

    return run_all


def _block(problem: _Problem, n: str, skip=()) -> tuple[tuple[int, ...] | None, list[Target]]:
    """The targets whose value for neuron i acts on the trace of neuron i of node n: n's own
    per-neuron parameters and the per-row gains of weights that feed only n."""
    graph = problem.base
    node = _get(graph, n)
    if not hasattr(node, "_fields"):
        return None, []
    shape = _neuron_shape(graph, n)
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


def _recenter_thresholds(problem: _Problem, values, rec):
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


def _prior_precision(problem: _Problem, block) -> np.ndarray:
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


def _polish(problem: _Problem, values, xs, iterations: int):
    """Gauss-Newton iterations on the per-neuron blocks (see `fit_mismatch(polish=...)`)."""
    run_all = _runner(problem, xs)
    run = jax.jit(run_all)
    jvp = jax.jit(lambda v, tg: jax.jvp(run_all, (v,), (tg,))[1])
    nodes = {}
    for n in problem.traces:
        node = _get(problem.base, n)
        if n in problem.forcing or not hasattr(node, "v_threshold"):
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


def _uncertainties(problem: _Problem, values, xs, mse: float | None):
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


# ------------------------------------------------------------------------------ simulated chip
class SimulatedChip(NamedTuple):
    """What `simulate_chip` returns: the true (perturbed) `graph`, the noisy `recordings`
    `{node: {"v", "output", ...}}`, the `inputs` `{input node: (S, T, ...)}` and `dt`."""

    graph: nirjax.Graph
    recordings: dict[str, dict[str, np.ndarray]]
    inputs: dict[str, np.ndarray]
    dt: float


def perturb(
    graph: nirjax.Graph,
    *,
    mismatch: float | Mapping[str, float] = 0.2,
    params: Sequence[str] | str = DEFAULT_PARAMS,
    per_row_gain: bool | Sequence[str] = False,
    seed: int = 0,
) -> nirjax.Graph:
    """The graph with Gaussian mismatch: each selected parameter element becomes
    `p0 + m s z` with `z ~ N(0, 1)` clipped to ±3 and `s` the scale of `Target` (|p0|, so a
    relative mismatch m), time constants kept at least 5 % of nominal."""
    targets = resolve_targets(graph, params, per_row_gain=per_row_gain, strict=False)
    rng = np.random.default_rng(seed)
    values = {}
    for t in targets:
        m = float(_lookup(mismatch, t.node, t.field, 0.2))
        z = np.clip(rng.standard_normal(t.nominal.shape), -3.0, 3.0)
        v = t.nominal + m * t.scale * z
        if t.field in POSITIVE:
            v = np.maximum(v, 0.05 * t.nominal)
        values[t.name] = jnp.asarray(v, graph.dtype)
    return substitute(graph, targets, values)


def simulate_chip(
    nominal: nirjax.Graph | nir.NIRGraph | str | os.PathLike,
    *,
    inputs: Any,
    mismatch: float | Mapping[str, float] = 0.2,
    noise: float = 0.01,
    params: Sequence[str] | str = DEFAULT_PARAMS,
    per_row_gain: bool | Sequence[str] = False,
    record: Sequence[str] | None = None,
    observables: Sequence[str] = ("v", "output"),
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> SimulatedChip:
    """A simulated chip: the nominal graph with known mismatch, run on `inputs`, recorded with
    observation noise.

    **Arguments:**

    - `nominal`: the nominal graph (Graph, nir.NIRGraph or .nir path).
    - `inputs`: `(S, T, *input_shape)` (a dict by Input name if several).
    - `mismatch`: relative standard deviation of the Gaussian mismatch (or a dict by field).
    - `noise`: standard deviation of the Gaussian noise added to recorded traces (`"v"`, `"I"`);
      spikes are recorded exactly.
    - `params`, `per_row_gain`: which parameters deviate (as in `fit_mismatch`; fields no node
      has are skipped).
    - `record`: the nodes to record (default: every neuron); `observables`: which of their
      observables (`"v"`, `"I"`, `"output"`).
    - `seed`: the seed of the mismatch and of the noise.
    - `path`: if given, write the recording and the inputs to this NIR data file (atomically).

    **Returns:** a `SimulatedChip(graph, recordings, inputs, dt)`; `graph` is the true chip.
    """
    graph = as_graph(nominal)
    chip = perturb(graph, mismatch=mismatch, params=params, per_row_gain=per_row_gain, seed=seed)
    if not isinstance(inputs, Mapping):
        inputs = {graph.inputs[0]: inputs}
    dtype = jnp.dtype(graph.dtype)
    inputs = {
        k: _as_samples(k, "inputs", v, tuple(graph.nodes[k].shape), dtype)
        for k, v in inputs.items()
    }
    xs = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    if record is None:
        record = [p for p, n, _, _ in _walk(graph) if hasattr(n, "_fields")]
    record = tuple(record)
    res = jax.jit(jax.vmap(lambda x: chip.run(x, record=record).record))(xs)
    rng = np.random.default_rng(seed + 1)
    recordings: dict[str, dict[str, np.ndarray]] = {}
    for n in record:
        recordings[n] = {}
        for k in observables:
            if k not in res[n]:
                raise ValueError(
                    f"simulate_chip: node {n!r} has no observable {k!r} (it has {sorted(res[n])})."
                )
            x = np.asarray(res[n][k])
            if k in TRACE_OBSERVABLES and noise:
                x = (x + noise * rng.standard_normal(x.shape)).astype(x.dtype)
            recordings[n][k] = x
    inputs_np = {k: np.asarray(v) for k, v in inputs.items()}
    if path is not None:
        write_recording(path, recordings, inputs=inputs_np, dt=graph.options.dt)
    return SimulatedChip(chip, recordings, inputs_np, graph.options.dt)


def relative_errors(
    graph: nirjax.Graph,
    reference: nirjax.Graph,
    params: Sequence[str] | str,
    *,
    per_row_gain: bool | Sequence[str] = False,
) -> dict[str, np.ndarray]:
    """Elementwise `|p - p_ref| / |p_ref|` of the named parameters of two graphs of the same
    structure (for a per-row gain: the least-squares gain of the row relative to the
    reference's, minus 1)."""
    targets = resolve_targets(reference, params, per_row_gain=per_row_gain, strict=False)
    out = {}
    for t in targets:
        a, b = _get(graph, t.node), _get(reference, t.node)
        if t.field == "gain":
            wa, wb = np.asarray(a.weight), np.asarray(b.weight)
            out[t.name] = np.abs((wa * wb).sum(-1) / (wb * wb).sum(-1) - 1.0)
            continue
        shape = t.nominal.shape
        pa = np.broadcast_to(np.asarray(getattr(a, t.field)), shape)
        pb = np.broadcast_to(np.asarray(getattr(b, t.field)), shape)
        out[t.name] = np.abs(pa - pb) / np.where(pb != 0, np.abs(pb), 1.0)
    return out


def simulate(graph: nirjax.Graph, inputs: Any, record: Sequence[str]) -> dict:
    """Run `graph` on a batch `(S, T, ...)` of inputs (a dict if several) and return the traces
    of `record` (free running), as numpy arrays `{node: {obs: (S, T, ...)}}`."""
    if not isinstance(inputs, Mapping):
        inputs = {graph.inputs[0]: inputs}
    xs = {k: jnp.asarray(v, graph.dtype) for k, v in inputs.items()}
    xs = xs if len(xs) > 1 else next(iter(xs.values()))
    res = jax.jit(jax.vmap(lambda x: graph.run(x, record=tuple(record)).record))(xs)
    return jax.tree.map(np.asarray, res)


__all__ = [
    "FitReport",
    "ParamFit",
    "Recording",
    "SimulatedChip",
    "Target",
    "fit_mismatch",
    "perturb",
    "read_recording",
    "relative_errors",
    "resolve_targets",
    "simulate",
    "simulate_chip",
    "substitute",
    "write_recording",
]
