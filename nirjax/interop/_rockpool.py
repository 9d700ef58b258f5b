"""Rockpool 3.1.0 (torch modules): the explicit corrections (see `nirjax.interop` and
docs/interop.md).

Rockpool's neurons step with decays `alpha = exp(-dt / tau_mem)`, `beta = exp(-dt / tau_syn)`
(`rockpool/nn/modules/torch/lif_torch.py:684-708`, `lif_neuron_torch.py:254-270`,
`exp_syn_torch.py:128-131`):

    LIFTorch:        isyn <- beta (isyn + x + w_rec^T s_prev);  v <- alpha v + isyn + bias
    LIFNeuronTorch:  v <- alpha v + x + bias
    ExpSynTorch:     isyn <- beta (isyn + x)                     (the output is isyn)
    spikes:          z = [v >= thr] floor(v / thr)  (StepPWL, several per step), v <- v - z thr

In NIR terms that is forward Euler with `tau' = dt / (1 - alpha)` (so that `1 - dt / tau' =
alpha`): a LIF with a held current, `r = tau' / dt`, `v_leak = bias tau' / dt`; a CubaLIF whose
synapse takes an impulse (`w_in = tau_syn'`, `cuba_order="current_first"`); an LI with an
impulse (`r = tau'`); and `spikes_per_step="multi"`, `threshold_comparison="greater_equal"`,
`reset="subtract"`, `v_reset = 0`.

In float32 that Euler update rounds differently from Rockpool's `alpha v + isyn + bias`; the
discretization `"rockpool"` (`RockpoolOrder`, the default of `from_rockpool`) evaluates it in
Rockpool's order with Rockpool's own float32 coefficients (see `fix_rockpool_export`). It lives
here, not in `nirjax._discretization`, because its order and the parameter search that goes
with it are Rockpool's, not NIR's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import nir
import numpy as np

from .._discretization import Discretization, jacobian, register_discretization
from .._graph import Graph
from .._import import from_nir
from ._common import (
    _NODE_FIELDS,
    _array,
    _map_nodes,
    _named_modules,
    _replace,
    _require,
    _walk,
    as_model,
    as_nir_graph,
)


def rockpool_dt(tau: Any, r: Any) -> np.ndarray:
    r"""The time step Rockpool's exporter encoded in `r = tau exp(-dt / tau) / dt`
    (`rockpool/nn/modules/torch/nir.py:249, 267, 288`), solved for dt per neuron (Newton on
    `log tau - dt / tau - log dt - log r = 0`, decreasing in dt; float64)."""
    tau = np.asarray(_array(tau), np.float64)
    r = np.asarray(_array(r), np.float64)
    if np.any(r <= 0) or np.any(tau <= 0):
        raise ValueError("rockpool_dt: tau and r must be > 0 (Rockpool writes r > 0).")
    dt = tau / (1.0 + r)  # Rockpool's own importer's guess; the start of the iteration
    for _ in range(60):
        g = np.log(tau) - dt / tau - np.log(dt) - np.log(r)
        dg = -1.0 / tau - 1.0 / dt
        dt = np.clip(dt - g / dg, dt / 4, dt * 4)
    return dt


def _rounded(p: jax.Array) -> jax.Array:
    """`p`, rounded to its dtype before it is added to anything: XLA's CPU backend contracts
    `a * b + c` into a fused multiply-add (one rounding), torch rounds the product first. The
    select is the identity (`0 * p` is NaN where `p` is NaN) that the contraction cannot see
    through."""
    return jnp.where(p != p, 0 * p, p)


@dataclasses.dataclass(frozen=True, eq=False)
class RockpoolOrder(Discretization):
    r"""Forward Euler evaluated in Rockpool's floating-point order (the option
    `discretization="rockpool"`, registered by `nirjax.interop`).

    In exact arithmetic this is `Euler`: the field of a linear neuron is affine,
    `f_k(s, u) = \sum_j A_{kj} s_j + G_k u + b_k` (`A`, `G`, `b` derived from the neuron by
    forward-mode differentiation at the zero state), and the step is
    `s_k <- (1 + dt A_{kk}) s_k + \sum_{j \ne k} dt A_{kj} s_j + dt G_k u + dt b_k`, the variables
    in order under `cuba_order="current_first"`. What differs is the rounding: the coefficients
    are computed once (`prepare`, in the state's dtype) and the terms are added left to right
    in that order, each product rounded to the dtype before it is added (`_rounded`), which is
    how Rockpool's torch modules evaluate their update (`lif_torch.py:684-701`:
    `isyn *= beta`, then `vmem = alpha vmem + isyn + noise + bias`;
    `lif_neuron_torch.py:253-264`: `vmem *= alpha; vmem += x; vmem + noise + bias`). Plain
    `Euler` computes `s + dt f(s, u)`, which rounds differently: in float32 a recurrent Rockpool
    network and nirjax then drift apart by rounding until a spike count can flip at a boundary.
    `fix_rockpool_export` writes the parameters so that these coefficients are
    Rockpool's own float32 values (`1 + dt A_vv == alpha`, `dt r / tau_mem == 1`, ...), so
    the two runs round identically.

    Only for neurons with `linear = True` (every NIR neuron).
    """

    name: ClassVar[str] = "rockpool"

    def prepare(self, neuron, dt):
        if not neuron.linear:
            raise NotImplementedError(
                f"discretization='rockpool': {type(neuron).__name__} is not linear (its field "
                "is not affine with constant coefficients); use 'euler'.")
        names = neuron.state_vars
        zero = neuron.zero_state()
        u0 = jnp.zeros((), next(iter(zero.values())).dtype)
        A = jacobian(lambda s: neuron.vector_field(s, u0), zero, names)
        _, G = jax.jvp(lambda u: neuron.vector_field(zero, u), (u0,), (jnp.ones_like(u0),))
        b = neuron.vector_field(zero, u0)
        D = [[(1 + dt * A[i][j]) if i == j else dt * A[i][j] for j in range(len(names))]
             for i in range(len(names))]
        return D, {k: dt * G[k] for k in names}, {k: dt * b[k] for k in names}

    def advance(self, neuron, coeffs, state, u, dt):
        D, G, B = coeffs
        names = neuron.state_vars
        sequential = neuron.options.cuba_order == "current_first"
        new = dict(state)
        for i, k in enumerate(names):
            seen = new if sequential else state
            acc = _rounded(D[i][i] * state[k])
            for j, kj in enumerate(names):
                if j != i:
                    acc = acc + _rounded(D[i][j] * seen[kj])
            acc = acc + _rounded(G[k] * u)
            acc = acc + B[k]
            new[k] = jnp.broadcast_to(acc, state[k].shape).astype(state[k].dtype)
        return new


register_discretization(RockpoolOrder())


def rockpool_decay(tau: Any, dt: float) -> np.ndarray:
    """Rockpool's float32 decay `exp(-dt / tau)` exactly as it computes it
    (`lif_torch.py:128-129`, `torch.exp(-dt / tau)` on a float32 tensor; torch's float32
    division by a Python scalar and its `exp` round differently from numpy's, so torch is used
    when it is installed; without torch, `exp` in float64 rounded to float32)."""
    tau32 = np.asarray(_array(tau), np.float32)
    try:
        import torch
    except ImportError:  # pragma: no cover - Rockpool itself needs torch
        return np.exp(-dt / tau32.astype(np.float64)).astype(np.float32)
    return torch.exp(-dt / torch.from_numpy(np.ascontiguousarray(tau32))).numpy()


def _candidates(start) -> np.ndarray:
    """The float32 values within 64 ulps of `start`, nearest first: shape `(129, *start.shape)`."""
    up, down = [start], [start]
    for _ in range(64):
        up.append(np.nextafter(up[-1], np.float32(np.inf)))
        down.append(np.nextafter(down[-1], np.float32(-np.inf)))
    return np.stack([start] + [x for pair in zip(up[1:], down[1:]) for x in pair])


def _solve_f32(fn, target, start):
    """The float32 `p` nearest `start` (within 64 ulps) with `fn(p) == target` elementwise (`fn`
    is the float32 expression `RockpoolOrder.prepare` evaluates), and where one was found."""
    target = np.asarray(target, np.float32)
    start = np.broadcast_to(np.asarray(start, np.float32), target.shape)
    cand = _candidates(start)
    ok = fn(cand) == target
    return np.take_along_axis(cand, ok.argmax(0)[None], 0)[0], ok.any(0)


def _rockpool_form(node, dt: float, path: str, bias=None):
    r"""Rockpool's float32 coefficients written as Euler parameters: for each time constant
    `tau` of the node, the float32 `tau'` whose Euler decay in float32 (`1 + dt (-1 / tau')`,
    as `RockpoolOrder.prepare` derives it) is Rockpool's decay `rockpool_decay(tau, dt)`; for a
    LIF / CubaLIF also `r` with `dt (r / tau') == 1` (Rockpool adds the input or the current
    unscaled) and `v_leak` with `dt (v_leak / tau') == bias`. Several `tau'` give the same
    decay; the nearest for which `r` and `v_leak` exist too is taken. **Returns:** a dict of the
    fields."""
    dt32 = np.float32(dt)
    taus = ["tau"] if hasattr(node, "tau") else ["tau_mem", "tau_syn"]
    out = {}
    for name in taus:
        decay = rockpool_decay(getattr(node, name), dt)
        if np.any(decay <= 0) or np.any(decay >= 1):
            raise ValueError(f"fix_rockpool_export: node {path!r}: {name} gives Rockpool's decay "
                             f"{decay}, outside (0, 1).")
        cand = _candidates(np.asarray(dt / (1.0 - decay.astype(np.float64)), np.float32))
        good = (np.float32(1) + dt32 * (np.float32(-1) / cand)) == decay
        if name in ("tau", "tau_mem") and not isinstance(node, nir.LI):
            target = np.broadcast_to(np.asarray(bias, np.float32), decay.shape)
            r = np.zeros_like(cand)
            v_leak = np.zeros_like(cand)
            for k in range(len(cand)):  # r and v_leak for each candidate tau'
                r[k], ok_r = _solve_f32(lambda x: dt32 * (x / cand[k]), np.ones_like(decay),
                                        cand[k] / dt32)
                v_leak[k], ok_v = _solve_f32(lambda x: dt32 * (x / cand[k]), target,
                                             target.astype(np.float64) * cand[k] / dt)
                good[k] &= ok_r & ok_v
        if not np.all(good.any(0)):
            bad = ~good.any(0)
            raise ValueError(
                f"fix_rockpool_export: node {path!r}: no float32 {name} within 64 ulps of "
                f"{cand[0][bad][:3]} reproduces Rockpool's float32 coefficients (decay "
                f"{decay[bad][:3]}); import with discretization='euler' (rounding-level "
                "agreement).")
        pick = good.argmax(0)[None]
        out[name] = np.take_along_axis(cand, pick, 0)[0]
        if name in ("tau", "tau_mem") and not isinstance(node, nir.LI):
            out["r"] = np.take_along_axis(r, pick, 0)[0]
            out["v_leak"] = np.take_along_axis(v_leak, pick, 0)[0]
    return out


def _strip_batch_time(shape, path):
    shape = np.asarray(shape)
    if shape.ndim == 1 and shape.size == 3 and shape[0] == 1:
        return shape[2:]  # (batch, time, n) as Rockpool writes them -> (n,)
    return shape


def fix_rockpool_export(graph: nir.NIRGraph | Graph, *, dt: float | None = None,
                        bias: Mapping[str, Any] | None = None,
                        w_rec: Mapping[str, Any] | None = None) -> tuple[nir.NIRGraph, float]:
    r"""Correct a graph written by `rockpool.nn.modules.torch.nir.to_nir` (Rockpool 3.1.0):

    1. **dt is encoded in r** (`r = tau exp(-dt / tau) / dt`): it is recovered with
       `rockpool_dt` (the same for every neuron, else an error) or checked against `dt` if
       given (relative 1e-4).
    2. **Time constants and r** are rewritten to the Euler form above (`tau' = dt / (1 -
       exp(-dt / tau))`, `r = tau' / dt`; CubaLIF `w_in = tau_syn'`; LI `r = tau'`). For a
       float32 graph the float32 values are chosen (within 64 float32 steps of those) so that
       `RockpoolOrder`'s coefficients are Rockpool's own float32 ones: `1 + dt (-1 / tau')`
       equals `rockpool_decay(tau, dt)`, `dt (r / tau') == 1`, `dt (v_leak / tau') == bias`.
       Pass Rockpool's exact `dt` for that (the one recovered from r is float32-accurate only).
    3. **The bias is written as v_leak = 0** (`nir.py:271, 292`) and **`w_rec` is dropped**
       (`nir.py:258-275`): pass them, by node name (`bias={"1_LIFTorch": b}`, `w_rec=` the
       `(N, N)` matrix Rockpool multiplies `s_prev @ w_rec` by). A node with `w_rec` becomes a
       recurrent subgraph (`lif -> w_rec (Linear) -> lif`).
    4. **Input and Output shapes carry batch and time** (`[1, T, n]`): reduced to `[n]`.

    **Returns:** `(graph, dt)`.
    """
    graph = as_nir_graph(graph, "fix_rockpool_export")
    bias, w_rec = dict(bias or {}), dict(w_rec or {})
    found = []
    for path, node in _walk(graph):
        if isinstance(node, (nir.LIF, nir.LI)):
            found.append(rockpool_dt(node.tau, node.r))
        elif isinstance(node, nir.CubaLIF):
            found.append(rockpool_dt(node.tau_mem, node.r))
    if found:
        all_dt = np.concatenate([np.ravel(f) for f in found])
        if not np.allclose(all_dt, all_dt[0], rtol=1e-4):
            raise ValueError(
                f"fix_rockpool_export: the r values encode different time steps "
                f"({all_dt.min():g} .. {all_dt.max():g} s); Rockpool runs one dt."
            )
        if dt is None:
            dt = float(np.median(all_dt))
        elif not np.allclose(all_dt, dt, rtol=1e-4):
            raise ValueError(
                f"fix_rockpool_export: dt={dt!r} does not match the time step the exporter "
                f"encoded in r ({float(np.median(all_dt)):g} s)."
            )
    if dt is None:
        raise ValueError("fix_rockpool_export: the graph has no neuron to read dt from; pass dt.")
    dt = float(dt)
    unknown = (set(bias) | set(w_rec)) - {p for p, _ in _walk(graph)}
    if unknown:
        raise KeyError(f"fix_rockpool_export: no node named {sorted(unknown)} in the graph.")

    def euler_tau(tau):
        tau = np.asarray(_array(tau), np.float64)
        return dt / (1.0 - np.exp(-dt / tau))

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) for f in _NODE_FIELDS
                   if getattr(node, f, None) is not None}
        f32 = np.asarray(changes.get("tau", changes.get("tau_mem", 0.0))).dtype
        f32 = f32 if np.issubdtype(f32, np.floating) else np.float32
        b = np.asarray(bias.get(path, 0.0), np.float64)
        exact32 = f32 == np.float32  # Rockpool's float32 values reproduced (RockpoolOrder)
        if isinstance(node, (nir.LIF, nir.LI, nir.CubaLIF)) and exact32:
            form = _rockpool_form(node, dt, path, b)
            if isinstance(node, nir.LI):
                form.update(r=form["tau"], v_leak=np.zeros_like(form["tau"]))
            if isinstance(node, nir.CubaLIF):
                form["w_in"] = form["tau_syn"]
            changes.update(form)
        elif isinstance(node, (nir.LIF, nir.LI)):
            tau = euler_tau(node.tau).astype(f32)
            changes.update(tau=tau, r=tau if isinstance(node, nir.LI) else (tau / dt).astype(f32),
                           v_leak=np.zeros_like(tau) if isinstance(node, nir.LI) else
                           np.broadcast_to(b * tau / dt, tau.shape).astype(f32))
        elif isinstance(node, nir.CubaLIF):
            tau_mem = euler_tau(node.tau_mem).astype(f32)
            tau_syn = euler_tau(node.tau_syn).astype(f32)
            changes.update(tau_mem=tau_mem, tau_syn=tau_syn, r=(tau_mem / dt).astype(f32),
                           w_in=tau_syn, v_leak=np.broadcast_to(b * tau_mem / dt,
                                                                tau_mem.shape).astype(f32))
        elif isinstance(node, nir.Input):
            return nir.Input(input_type={"input": _strip_batch_time(node.input_type["input"],
                                                                    path)})
        elif isinstance(node, nir.Output):
            return nir.Output(output_type={"output": _strip_batch_time(
                node.output_type["output"], path)})
        elif path in bias:
            raise NotImplementedError(f"node {path!r}: only Rockpool's neurons have a bias.")
        new = _replace(node, **changes) if changes else node
        if path in w_rec:
            _require(isinstance(node, nir.CubaLIF), path,
                     "only LIFTorch (CubaLIF) has w_rec in Rockpool.")
            w = np.asarray(_array(w_rec[path]), f32)
            n = np.asarray(new.tau_mem).shape
            return nir.NIRGraph(
                nodes={"input": nir.Input(input_type={"input": np.array(n)}), "lif": new,
                       "w_rec": nir.Linear(weight=np.ascontiguousarray(w.T)),
                       "output": nir.Output(output_type={"output": np.array(n)})},
                edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                type_check=False)
        return new

    return _map_nodes(graph, fn), dt


def rockpool_options(graph: nir.NIRGraph | Graph, dt: float,
                     discretization: str = "rockpool") -> dict:
    """The `from_nir` options of Rockpool's neurons for a `fix_rockpool_export`ed graph (see the
    module docstring): Euler at `dt`, a held current (LIF), an impulse for CubaLIF and LI
    (`cuba_order="current_first"`), several spikes per step at `v >= thr`, subtracted."""
    node_options = {}
    for path, node in _walk(as_nir_graph(graph, "rockpool_options")):
        if isinstance(node, (nir.CubaLIF, nir.LI)):
            node_options[path] = {"input_mode": "impulse"}
    return dict(dt=float(dt), discretization=discretization, input_mode="current",
                cuba_order="current_first", reset="subtract", spikes_per_step="multi",
                threshold_comparison="greater_equal", spike_order="after_input",
                node_options=node_options)


def from_rockpool(graph: nir.NIRGraph | Graph, *, dt: float | None = None,
                  bias: Mapping[str, Any] | None = None, w_rec: Mapping[str, Any] | None = None,
                  discretization: str = "rockpool", **kwargs) -> Graph:
    """Import a graph written by Rockpool's `to_nir`: `fix_rockpool_export`, then `from_nir`
    with `rockpool_options`. Pass the biases and recurrent weights the exporter drops
    (`bias=`, `w_rec=`, by node name) and, for float32 runs identical to Rockpool's, its exact
    `dt` (`module.dt`; the `dt` recovered from r is exact only to float32 rounding, and
    Rockpool's decays `exp(-dt / tau)` depend on every bit of it).
    `discretization="rockpool"` (the default) evaluates the Euler update in Rockpool's
    floating-point order (`RockpoolOrder`); `"euler"` is NIR's plain Euler reading, equal in
    exact arithmetic. Other keyword arguments go to `from_nir`."""
    fixed, dt = fix_rockpool_export(graph, dt=dt, bias=bias, w_rec=w_rec)
    options = rockpool_options(fixed, dt, discretization)
    for k, v in dict(kwargs.pop("node_options", None) or {}).items():
        options["node_options"][k] = {**options["node_options"].get(k, {}), **v}
    return from_nir(fixed, **options, **kwargs)


def to_rockpool(model: Graph | nir.NIRGraph) -> nir.NIRGraph:
    """Export a nirjax graph for `rockpool.nn.modules.torch.nir.from_nir`, or say why it cannot
    be.

    Rockpool 3.1.0's importer (`rockpool/nn/modules/torch/nir.py:58-153`) builds `LIFTorch`
    from a CubaLIF (and from a 4-node subgraph CubaLIF + Linear/Affine: `w_rec`), reading
    `dt = min(tau_mem / (1 + r))`, `bias = v_leak`, ignoring `w_in` and `v_reset`; it fails on a
    LIF (`'LIF' object has no attribute 'tau_mem'`, line 118), truncates an LI's tau to an int
    (line 111), and has no IF, I, CubaLI, convolution, Delay, Threshold or Scale. This checks
    the nirjax graph runs Rockpool's CubaLIF (the Euler form of the module docstring:
    `w_in = tau_syn`, `r = tau_mem / dt`, impulse input, current first, several spikes per step
    at `>=`, subtracted, `v_reset = 0`) and writes it in Rockpool's encoding:
    `tau = -dt / log(1 - dt / tau')`, `r = tau / dt - 1` (so its importer reads dt back),
    `v_leak = bias = v_leak' dt / tau_mem'`.
    """
    model = as_model(model, "to_rockpool")
    dt = model.options.dt
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        kind = type(module).__name__
        if options is None:
            continue
        _require(options.dt == dt, path, "Rockpool runs one dt for the whole graph.")
        if kind != "CubaLIF":
            continue
        _require(options.discretization in ("euler", "rockpool"), path,
                 "Rockpool's LIFTorch runs discretization='euler' (or its float32 order, "
                 f"'rockpool'); the node has {str(options.discretization)!r}.")
        for field, value in dict(input_mode="impulse",
                                 cuba_order="current_first", reset="subtract",
                                 spikes_per_step="multi", threshold_comparison="greater_equal",
                                 spike_order="after_input").items():
            _require(getattr(options, field) == value, path,
                     f"Rockpool's LIFTorch runs {field}={value!r}; the node has "
                     f"{getattr(options, field)!r}.")
    graph = as_nir_graph(model, "to_rockpool")

    def fn(path, node):
        if isinstance(node, nir.CubaLIF):
            tau_mem = np.asarray(node.tau_mem, np.float64)
            tau_syn = np.asarray(node.tau_syn, np.float64)
            _require(np.allclose(node.w_in, tau_syn, rtol=1e-5), path,
                     "Rockpool adds the input to isyn as is: w_in must equal tau_syn.")
            _require(np.allclose(node.r, tau_mem / dt, rtol=1e-5), path,
                     "Rockpool adds isyn to v as is: r must equal tau_mem / dt.")
            _require(np.allclose(node.v_reset, 0), path,
                     "Rockpool subtracts v_threshold (v_reset = 0).")
            _require(np.all(tau_mem > dt) and np.all(tau_syn > dt), path,
                     "Rockpool's decays need tau > dt.")
            rp_mem = -dt / np.log1p(-dt / tau_mem)
            rp_syn = -dt / np.log1p(-dt / tau_syn)
            f = np.asarray(node.tau_mem).dtype
            return nir.CubaLIF(tau_mem=rp_mem.astype(f), tau_syn=rp_syn.astype(f),
                               r=(rp_mem / dt - 1).astype(f),
                               v_leak=(np.asarray(node.v_leak, np.float64) * dt /
                                       tau_mem).astype(f),
                               v_threshold=np.asarray(node.v_threshold), w_in=np.ones_like(
                                   np.asarray(node.w_in)), v_reset=np.asarray(node.v_reset))
        if isinstance(node, nir.Affine) and path.count("/"):
            _require(np.allclose(node.bias, 0), path,
                     "Rockpool's importer ignores a recurrent Affine's bias; it must be 0.")
        if isinstance(node, nir.LIF):
            raise NotImplementedError(
                f"node {path!r}: Rockpool 3.1.0's importer fails on nir.LIF ('LIF' object has "
                "no attribute 'tau_mem', rockpool/nn/modules/torch/nir.py:118). Use a CubaLIF."
            )
        if isinstance(node, nir.LI):
            raise NotImplementedError(
                f"node {path!r}: Rockpool 3.1.0's importer truncates an LI's tau to an int "
                "(nir.py:111), which changes it."
            )
        if not isinstance(node, (nir.Input, nir.Output, nir.Affine, nir.Linear)):
            raise NotImplementedError(
                f"node {path!r}: Rockpool 3.1.0's importer has no {type(node).__name__}."
            )
        return node

    for path, node in _walk(graph):
        fn(path, node)
    for key, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            kinds = sorted(type(n).__name__ for n in node.nodes.values())
            _require(len(node.nodes) == 4 and "CubaLIF" in kinds and
                     ("Linear" in kinds or "Affine" in kinds), key,
                     "Rockpool's importer reads only a subgraph of Input, CubaLIF, Linear/Affine "
                     f"(the recurrent weights) and Output; got {kinds}.")
    return _map_nodes(graph, fn)
