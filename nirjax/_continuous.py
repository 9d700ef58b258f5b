r"""Continuous time: NIR's hybrid ODEs solved with diffrax, with exact spike times.

NIR defines every neuron as a continuous-time hybrid system: a linear ODE between spikes, a
threshold crossing `v(t) = v_threshold` that emits a spike at that instant, and a reset. The
discrete methods (`"euler"`, `"exact"`) step this system on a grid of `dt` and place each spike
on the grid. `simulate_continuous` solves the system itself:

- Every stateful node's ODE is integrated with diffrax (Tsit5, adaptive steps).
- A threshold crossing is a diffrax `Event` whose condition is `max over neurons of
  (v - v_threshold)`, located by a Newton root find on the dense solution. The crossing neuron
  spikes at that time, is reset, and its spike propagates at once through the linear maps.
- Between two consecutive events (grid points, input spikes, threshold crossings, delayed spike
  arrivals) all dynamics are linear with a constant input, so one event loop drives the whole
  network: a `lax.scan` over the grid steps, and inside each step a bounded loop (an
  `equinox.internal.while_loop`, reverse-mode differentiable) that integrates to the next event.

**Signals.** A spiking neuron's output is a train of Dirac impulses, one per spike. A
non-spiking neuron's output (I, LI, CubaLI: its voltage) is a continuous signal. Affine /
Linear / Scale (and Conv, pooling, Flatten) act on both: an impulse of area `a` through weight
`W` is an impulse of area `W a`; a bias is a constant current.

**The area of a spike.** A Dirac impulse of unit "spike" reaching a neuron carries the charge
of the discrete methods' unit spike, so that both agree in the limit of small steps:
with the neuron's `input_mode="current"` (the default) a discrete spike is a current of 1
held over one step, charge `dt`, so the impulse has area `dt` (an LIF jumps by
`r w dt / tau`); with `input_mode="impulse"` the area is 1 (an LIF jumps by `r w / tau`). The
jump in each neuron, for an impulse of area `a` arriving at its input:

- I, IF: `v <- v + r a`;  LI, LIF: `v <- v + r a / tau`;
- CubaLI, CubaLIF: `I <- I + w_in a / tau_syn` (v is continuous).

If a jump takes a spiking neuron to or over its threshold, it spikes at that instant.

**Inputs.** `xs` is on the grid of `dt` (the graph's step). With `input_kind="spikes"` each
value `xs[k]` is an impulse at `t = k dt` of `xs[k]` spikes (area `xs[k] dt` under
`input_mode="current"`). With `input_kind="current"` it is a current held constant over
`[k dt, (k + 1) dt)`, exactly what the discrete methods assume under `input_mode="current"`;
that is the default for such graphs (`"spikes"` for `input_mode="impulse"`, whose discrete
reading is an impulse of area `xs[k]`). The two readings differ in where, inside a step, the
charge arrives: for the NIR paper's single LIF, "current" gives the exact recording's spike
steps 460/510/710/760 and "spikes" gives 450/500/710/760 (Rockpool's and Sinabs's).

**Delay** is an exact time shift of impulses: a spike at `t` leaves a Delay at `t + delay`.
Continuous signals (a current input, a non-spiking neuron, a bias) cannot pass a Delay here:
that is an error, not an approximation.

**Resets.** `reset="value"` sets `v <- v_reset`; `"subtract"` sets
`v <- v - (v_threshold - v_reset)`. At a crossing both give `v_reset`; they differ after a jump
that overshoots the threshold (`"subtract"` may then spike several times at the same instant).
**Spike options.** `spikes_per_step="multi"` (which needs `"subtract"`) is what the cascade
above does: a jump to `v` emits `floor((v - v_reset) / (v_threshold - v_reset))` spikes at once.
`threshold_comparison` does not change a crossing, which is an instant; a state exactly at the
threshold (a jump that lands on it) spikes under both values. `spike_order="before_input"` (a
one-step lag of the grid) has no continuous-time meaning and is refused.
The surrogate gradient and `detach_reset` do not apply: gradients flow through the exact spike
times (implicit differentiation of the root find), so a loss of spike times is differentiable
wherever the number of spikes does not change.

**Gridded results** (for comparison with the discrete methods, whose `v[k]` is the state at the
end of step k): `record[node]["v"][k]` is the state at `(k + 1) dt`, just before the input of
step k + 1; `spikes[node][k]` counts the spikes in `[k dt, (k + 1) dt)` (NIR's
`EventData.to_time_gridded` binning); `output[k]` is each Output's continuous value at the end of
step k plus the impulses (in spikes) it received during step k.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._graph import Graph
from ._plan import FlatPlan, kahn_order
from .primitives._delay import Delay
from .primitives._neuron import Neuron

INPUT_KINDS = ("spikes", "current")
_EMPTY = np.iinfo(np.int32).max
_LOOP_KIND = "checkpointed"


# --------------------------------------------------------------------------------- the net
@dataclasses.dataclass(frozen=True)
class _Net:
    """The graph's flat plan (subgraphs inlined, names "sub/node") split by what each node is
    (read from the node's own definition): sources (Inputs, neurons, Delays), stateless linear
    maps in the order a signal propagates through them within an instant, and sinks."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    neurons: tuple[str, ...]
    spiking: tuple[str, ...]
    delays: tuple[str, ...]
    order: tuple[str, ...]
    flat: FlatPlan

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.flat.in_shapes


def build_net(graph: Graph, input_kind: str) -> _Net:
    """Classify the flat plan's nodes; every node the solver cannot integrate is an error."""
    flat = graph.plan.flat
    inputs, outputs = tuple(graph.inputs), tuple(graph.outputs)
    neurons, spiking, delays, stateless = [], [], [], []
    for name in flat.nodes:
        node = graph.node(name)
        if name in inputs or name in outputs:
            continue
        if isinstance(node, Neuron):
            neurons.append(name)
            if node.spiking:
                spiking.append(name)
                if node.options.spike_order != "after_input":
                    raise NotImplementedError(
                        f"node {name!r} ({type(node).__name__}): spike_order="
                        f"{node.options.spike_order!r} decides a spike one grid step late, which "
                        "has no continuous-time meaning (a spike is the threshold crossing "
                        "itself). Run it with the discrete methods (graph.run), or use "
                        "spike_order='after_input'."
                    )
        elif isinstance(node, Delay):
            delays.append(name)
        elif not node.stateful and node.linear:
            stateless.append(name)
        else:
            raise NotImplementedError(
                f"node {name!r} ({type(node).__name__}): method 'diffrax' integrates neurons "
                "(nirjax.Neuron), Delay, and stateless nodes whose output is affine in their "
                "input (`linear = True`). Run this graph with the discrete methods (graph.run), "
                "or define the node as a nirjax.Neuron."
            )
    incoming = flat.incoming()
    # Propagation order of the stateless nodes; sources (Inputs, neurons, Delays) cut cycles.
    sources = set(inputs) | set(neurons) | set(delays)
    deps = {n: {s for s in incoming[n] if s not in sources} for n in stateless}
    users: dict[str, list[str]] = {n: [] for n in stateless}
    for n in stateless:
        for s in deps[n]:
            users[s].append(n)
    order = kahn_order(users)
    if len(order) != len(stateless):
        loop = sorted(set(stateless) - set(order))
        raise ValueError(
            f"nodes {loop} form a cycle without a neuron or Delay (an algebraic loop), which has "
            "no continuous-time meaning. Put a stateful node in the cycle."
        )
    # Continuous signals cannot pass a Delay (that would be a delay differential equation).
    continuous = {n for n in neurons if n not in spiking}
    if input_kind == "current":
        continuous |= set(inputs)
    for d in delays:
        seen, stack = set(), list(incoming[d])
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in continuous:
                what = "a current input" if n in inputs else "a non-spiking neuron's voltage"
                raise NotImplementedError(
                    f"node {d!r} (Delay): its input carries {what} from {n!r}; method 'diffrax' "
                    "delays spikes (impulses) exactly but not continuous signals. Use "
                    "input_kind='spikes' or a discrete method."
                )
            if n in stateless:
                stack.extend(incoming[n])
    return _Net(
        inputs=inputs,
        outputs=outputs,
        neurons=tuple(sorted(neurons)),
        spiking=tuple(sorted(spiking)),
        delays=tuple(sorted(delays)),
        order=tuple(order),
        flat=flat,
    )


def _propagate(mods: Mapping[str, Any], net: _Net, sources: dict) -> dict:
    """Evaluate the linear maps: the summed input of every neuron, Delay and Output, given the
    values of the sources (Inputs, neurons, Delays)."""
    values = dict(sources)
    incoming = net.flat.incoming()

    def gather(n):
        terms = [values[s] for s in incoming[n]]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total

    for n in net.order:
        values[n] = mods[n](gather(n))
    return {n: gather(n) for n in net.neurons + net.delays + net.outputs}


# --------------------------------------------------------------------------------- result
class ContinuousResult(NamedTuple):
    """What `simulate_continuous` returns (one sample; a leading batch axis under vmap).

    - `spike_times`: per spiking node, `(*shape, max_spikes)` spike times in seconds, ascending
      per neuron, padded with `inf`.
    - `spikes`: per spiking node, `(T, *shape)` spike counts per grid step `[k dt, (k+1) dt)`.
    - `record`: per neuron node, `{"v": (T, *shape), "I": ... (Cuba), "output": ...}` sampled at
      the end of each step (`t = (k + 1) dt`); `"output"` is the spike count or the voltage.
    - `output`: the Outputs on the grid, `(T, *shape)` (a dict if several), like `graph(xs)`.
    - `state`: the neuron states at `t_end`.
    """

    spike_times: dict
    spikes: dict
    record: dict
    output: Any
    state: dict


# --------------------------------------------------------------------------------- simulate
def simulate_continuous(
    graph: Graph,
    xs: Any,
    *,
    input_kind: str | None = None,
    t_end: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_spikes: int | None = None,
    max_spikes_per_step: int = 2,
    max_events_per_step: int = 16,
    delay_capacity: int = 8,
    solver: diffrax.AbstractSolver | None = None,
) -> ContinuousResult:
    r"""Simulate `graph` in continuous time with diffrax; spikes have exact times.

    See the module docstring (`nirjax._continuous`) for the semantics: spikes are Dirac
    impulses, thresholds are located by root finding, resets happen at the crossing time,
    Delays shift spikes exactly.

    **Arguments:**

    - `graph`: a `nirjax.Graph` (from `nirjax.from_nir`). Its `options.dt` is the grid of
      `xs` and of the gridded results; each neuron's `options.input_mode` sets the area of a
      spike (`dt` for `"current"`, 1 for `"impulse"`).
    - `xs`: `(T, *input_shape)` on the grid (a dict by Input name if several).
    - `input_kind`: `"spikes"` (each `xs[k]` is an impulse at `k dt`) or `"current"` (held
      over `[k dt, (k+1) dt)`). Default: what the graph's `input_mode` says the discrete
      methods do, `"current"` for `"current"` and `"spikes"` for `"impulse"`.
    - `t_end`: simulate `[0, t_end)`; a whole number of steps; `xs` is cut or padded with zeros.
      Default `T dt`.
    - `rtol`, `atol`: diffrax's step-size tolerances (the event times are found to within
      `1e-5 dt` by Newton's method on the dense solution).
    - `max_spikes`: spike times kept per neuron (default: all that fit the grid buffers).
    - `max_spikes_per_step`: spikes one neuron may emit within one grid step.
    - `max_events_per_step`: events (crossings, simultaneous-spike cascades, delayed
      arrivals, plus one) handled within one grid step.
    - `delay_capacity`: spikes a Delay element can hold in flight at once.
    - `solver`: a diffrax solver (default `diffrax.Tsit5()`).

    Exceeding a capacity is a runtime error (`eqx.error_if`) that names the argument to raise.

    **Returns:** a `ContinuousResult(spike_times, spikes, record, output, state)`.
    Differentiable with `jax.grad` (reverse mode) and batched with `jax.vmap`.
    """
    if not isinstance(graph, Graph):
        raise TypeError(
            f"simulate_continuous: expected a nirjax.Graph, got {type(graph).__name__}. Build "
            "one with nirjax.from_nir."
        )
    if input_kind is None:
        input_kind = "current" if graph.options.input_mode == "current" else "spikes"
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind: expected one of {list(INPUT_KINDS)}, got {input_kind!r}.")
    for name, value in (("max_spikes_per_step", max_spikes_per_step),
                        ("max_events_per_step", max_events_per_step),
                        ("delay_capacity", delay_capacity)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}.")
    dt = graph.options.dt
    xs = graph._check_inputs(xs, sequence=True)
    T = next(iter(xs.values())).shape[0]
    if t_end is not None:
        steps = round(float(t_end) / dt)
        if steps < 1 or abs(steps * dt - float(t_end)) > 1e-6 * dt:
            raise ValueError(
                f"t_end: {t_end} s is not a positive whole number of steps of dt = {dt} s. Pass a "
                "multiple of dt."
            )
        xs = {
            k: (v[:steps] if steps <= T else
                jnp.concatenate([v, jnp.zeros((steps - T,) + v.shape[1:], v.dtype)]))
            for k, v in xs.items()
        }
        T = steps
    if T < 1:
        raise ValueError("xs: needs at least one time step.")
    S = max_spikes_per_step
    keep = T * S if max_spikes is None else int(max_spikes)
    if keep < 1:
        raise ValueError(f"max_spikes: expected an int >= 1, got {max_spikes!r}.")
    net = build_net(graph, input_kind)
    # Only the modules go through jit (not the graph, whose metadata is compared by identity), so
    # graphs with the same structure share one compilation.
    mods = {n: graph.node(n) for n in net.order + net.neurons + net.delays}
    return _simulate(
        mods, xs, net=net, dtype=jnp.dtype(graph.dtype).name, input_kind=input_kind, dt=dt, T=T,
        rtol=float(rtol), atol=float(atol), keep=min(keep, T * S), S=S, E=max_events_per_step,
        Q=delay_capacity,
        solver=diffrax.Tsit5() if solver is None else solver,
    )


@eqx.filter_jit
def _simulate(mods, xs, *, net, dtype, input_kind, dt, T, rtol, atol, keep, S, E, Q, solver):
    dtype = jnp.dtype(dtype)
    shapes = net.shapes
    area = {n: (mods[n].options.dt if mods[n].options.input_mode == "current" else 1.0)
            for n in net.neurons}
    y0 = {n: mods[n].init_state(shapes[n], dtype) for n in net.neurons}
    zeros_src = {n: jnp.zeros(shapes[n], dtype) for n in net.inputs}
    for n in net.neurons:
        out = mods[n].threshold(y0[n]) if n in net.spiking else y0[n][mods[n].output_var]
        zeros_src[n] = jnp.zeros_like(out)
    out_shapes = {}
    probe = _propagate(mods, net, zeros_src | {
        d: jnp.zeros(np.broadcast_shapes(mods[d].delay.shape, shapes[d]), dtype)
        for d in net.delays})
    for d in net.delays:
        zeros_src[d] = jnp.zeros(np.broadcast_shapes(mods[d].delay.shape, shapes[d]), dtype)
    for o in net.outputs:
        out_shapes[o] = probe[o].shape
    # Biases must not reach a Delay (a delayed constant current is not an impulse).
    bias_ok = jnp.array(True)
    for d in net.delays:
        bias_ok = bias_ok & jnp.all(probe[d] == 0)

    pend0 = {
        d: (jnp.full(zeros_src[d].shape + (Q,), _EMPTY, jnp.int32),
            jnp.zeros(zeros_src[d].shape + (Q,), dtype),
            jnp.zeros(zeros_src[d].shape + (Q,), dtype))
        for d in net.delays
    }

    def continuous_sources(y, u):
        src = dict(zeros_src)
        if input_kind == "current":
            src.update(u)
        for n in net.neurons:
            if n not in net.spiking:
                src[n] = y[n][mods[n].output_var]
        return src

    def vector_field(t, y, args):
        mods_, u = args
        sinks = _propagate(mods_, net, continuous_sources(y, u))
        return {n: mods_[n].vector_field(y[n], sinks[n]) for n in net.neurons}

    def gaps(y):
        return {n: mods[n].threshold(y[n]) for n in net.spiking}

    def max_gap(y):
        return jnp.max(jnp.stack([jnp.max(g) for g in gaps(y).values()]))

    # The root find stops when both the step in t and the condition are below `atol`; the
    # condition is scaled so that float32 rounding of v (~1e-7 v_threshold) stays far below it,
    # while the time tolerance (1e-5 dt) decides. The zero crossing is unchanged.
    scale = jnp.ones((), dtype)
    for n in net.spiking:  # the size of the threshold gap from rest and from a reset
        gap0 = mods[n].threshold(y0[n])
        gap1 = mods[n].threshold(mods[n].reset(y0[n], jnp.ones_like(gap0)))
        scale = jnp.maximum(scale, jnp.max(jnp.abs(gap0) + jnp.abs(gap1 - gap0)))
    scale = jax.lax.stop_gradient(scale) * 1e4 / dt

    def cond_fn(t, y, args, **kwargs):
        return max_gap(y) / scale

    root = optx.Newton(rtol=1e-5, atol=1e-5 * dt)
    event = (diffrax.Event(cond_fn, root, direction=True) if net.spiking else None)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    term = diffrax.ODETerm(vector_field)

    def apply_jump(y, pend, out_acc, amounts, k, s):
        """Impulses at the sources (in spikes) -> jumps in the neurons, Delay queues, Outputs."""
        tangents = {n: amounts.get(n, jnp.zeros_like(v)) for n, v in zeros_src.items()}
        _, d = jax.jvp(lambda src: _propagate(mods, net, src), (zeros_src,), (tangents,))
        y = dict(y)
        for n in net.neurons:
            y[n] = mods[n].jump(y[n], area[n] * d[n])
        pend = dict(pend)
        overflow = jnp.array(False)
        for n in net.delays:
            pend[n], over = _enqueue(pend[n], d[n], mods[n].delay, k, s, dt)
            overflow = overflow | over
        out_acc = {o: out_acc[o] + d[o] for o in net.outputs}
        return y, pend, out_acc, overflow

    def bin_step(carry, inp):
        y, pend = carry
        k, x_k = inp
        out_acc = {o: jnp.zeros(out_shapes[o], dtype) for o in net.outputs}
        s0 = jnp.zeros((), dtype)
        if input_kind == "spikes":
            y, pend, out_acc, over0 = apply_jump(y, pend, out_acc, x_k, k, s0)
            u = {}
        else:
            u, over0 = x_k, jnp.array(False)
        shape = {n: gaps(y)[n].shape for n in net.spiking}
        slots = {n: jnp.full(shape[n] + (S,), jnp.inf, dtype) for n in net.spiking}
        counts = {n: jnp.zeros(shape[n], jnp.int32) for n in net.spiking}
        forced = {n: jnp.zeros(shape[n], bool) for n in net.spiking}

        def due(pend, s):
            return {d: (p[0] == k) & (p[1] <= s) for d, p in pend.items()}

        def above(y):
            flags = [jnp.any(g >= 0) for g in gaps(y).values()]
            return jnp.any(jnp.stack(flags)) if flags else jnp.array(False)

        def pending(c):
            s, y, pend, forced = c["s"], c["y"], c["pend"], c["forced"]
            flags = [s < dt, above(y)]
            flags += [jnp.any(f) for f in forced.values()]
            flags += [jnp.any(m) for m in due(pend, s).values()]
            return jnp.any(jnp.stack(flags))

        def body(c):
            s, y, pend, out_acc = c["s"], dict(c["y"]), dict(c["pend"]), dict(c["out_acc"])
            overflow = c["overflow"]
            # A. delayed spikes arriving now.
            if net.delays:
                arrived = {}
                for d, mask in due(pend, s).items():
                    b, off, amt = pend[d]
                    arrived[d] = jnp.sum(jnp.where(mask, amt, 0), axis=-1)
                    pend[d] = (jnp.where(mask, _EMPTY, b), off, jnp.where(mask, 0, amt))
                y, pend, out_acc, over = apply_jump(y, pend, out_acc, arrived, k, s)
                overflow = overflow | over
            # B. every neuron at or over threshold (or found crossing) spikes now and resets.
            g = gaps(y)
            fire = {n: (g[n] >= 0) | c["forced"][n] for n in net.spiking}
            slots_, counts_ = dict(c["slots"]), dict(c["counts"])
            t_abs = k.astype(dtype) * dt + s
            y = dict(y)
            for n in net.spiking:
                hit = fire[n][..., None] & (jnp.arange(S) == counts_[n][..., None])
                slots_[n] = jnp.where(hit, t_abs, slots_[n])
                overflow = overflow | jnp.any(fire[n] & (counts_[n] >= S))
                counts_[n] = counts_[n] + fire[n].astype(jnp.int32)
                reset = mods[n].reset(y[n], fire[n].astype(dtype))
                y[n] = {k: jnp.where(fire[n], reset[k], y[n][k]) for k in y[n]}
            if net.spiking:
                spikes_now = {n: fire[n].astype(dtype) for n in net.spiking}
                y, pend, out_acc, over = apply_jump(y, pend, out_acc, spikes_now, k, s)
                overflow = overflow | over
            # C. integrate to the next stop (end of step or next arrival), or stay if a neuron is
            # still over threshold (a cascade: it spikes in the next iteration at the same time).
            stop = jnp.asarray(dt, dtype)
            for b, off, _ in pend.values():
                stop = jnp.minimum(stop, jnp.min(jnp.where(b == k, off, dt)))
            t1 = jnp.where(above(y), s, jnp.maximum(stop, s))
            sol = diffrax.diffeqsolve(
                term, solver, s, t1, None, y, args=(mods, u), event=event,
                stepsize_controller=controller, saveat=diffrax.SaveAt(t1=True),
                max_steps=512, throw=False,
            )
            failed = ~(diffrax.is_successful(sol.result) | diffrax.is_event(sol.result))
            y_new = jax.tree.map(lambda a: a[-1], sol.ys)
            s_new = sol.ts[-1]
            if net.spiking:
                hit_event = diffrax.is_event(sol.result)
                g_new = gaps(y_new)
                gmax = max_gap(y_new)
                forced_new = {n: hit_event & (g_new[n] >= gmax) for n in net.spiking}
            else:
                forced_new = {}
            return dict(
                s=s_new, y=y_new, pend=pend, out_acc=out_acc, forced=forced_new,
                slots=slots_, counts=counts_, overflow=overflow, failed=c["failed"] | failed,
            )

        init = dict(
            s=s0, y=y, pend=pend, out_acc=out_acc, forced=forced, slots=slots, counts=counts,
            overflow=over0, failed=jnp.array(False),
        )
        c = eqxi.while_loop(pending, body, init, max_steps=E, kind=_LOOP_KIND)
        unfinished = pending(c)
        out = _propagate(mods, net, continuous_sources(c["y"], u))
        outputs = {o: out[o] + c["out_acc"][o] for o in net.outputs}
        per_step = dict(
            y=c["y"], slots=c["slots"], counts=c["counts"], outputs=outputs,
            overflow=c["overflow"], failed=c["failed"], unfinished=unfinished,
        )
        return (c["y"], c["pend"]), per_step

    ks = jnp.arange(T, dtype=jnp.int32)
    (y_end, _), per = jax.lax.scan(bin_step, (y0, pend0), (ks, xs))

    # Runtime checks: each names the argument to change.
    flag = per["overflow"].any()
    token = eqx.error_if(
        jnp.zeros((), dtype), ~bias_ok,
        "simulate_continuous: a bias (a constant current) reaches a Delay node; method 'diffrax' "
        "delays only spikes. Set the bias on the far side of the Delay.",
    )
    token = eqx.error_if(
        token, flag,
        "simulate_continuous: a capacity was exceeded (a neuron spiked more than "
        "max_spikes_per_step times in one step, or more than delay_capacity spikes were in "
        "flight in one Delay element). Raise max_spikes_per_step / delay_capacity.",
    )
    token = eqx.error_if(
        token, per["unfinished"].any(),
        "simulate_continuous: a grid step needed more than max_events_per_step events "
        "(crossings, cascades, delayed arrivals). Raise max_events_per_step.",
    )
    token = eqx.error_if(
        token, per["failed"].any(),
        "simulate_continuous: diffrax failed to integrate a segment (too many steps or a root "
        "find that did not converge). Loosen rtol/atol.",
    )

    spike_times, spikes, record = {}, {}, {}
    for n in net.neurons:
        rec = {key: value + token for key, value in per["y"][n].items()}
        if n in net.spiking:
            slots = per["slots"][n]  # (T, *shape, S)
            flat = jnp.moveaxis(slots, 0, -2).reshape(slots.shape[1:-1] + (T * S,))
            times = jnp.sort(flat, axis=-1)[..., :keep]
            counts = per["counts"][n]
            over = jnp.any(jnp.sum(counts, axis=0) > keep)
            times = eqx.error_if(
                times, over,
                f"simulate_continuous: a neuron of {n!r} spiked more than max_spikes = {keep} "
                "times. Raise max_spikes.",
            )
            spike_times[n] = times
            spikes[n] = counts.astype(dtype)
            rec["output"] = spikes[n]
        else:
            rec["output"] = rec[mods[n].output_var]
        record[n] = rec
    outputs = per["outputs"]
    output = outputs[net.outputs[0]] if len(net.outputs) == 1 else dict(outputs)
    return ContinuousResult(spike_times, spikes, record, output, y_end)


def _enqueue(p, amount, delay, k, s, dt):
    """Queue impulses `amount` (per Delay element) to arrive at `k dt + s + delay`, stored as
    (step, offset within the step)."""
    b, off, amt = p
    valid = amount != 0
    total = s + jnp.broadcast_to(delay, amount.shape).astype(amount.dtype)
    q = jnp.floor(jax.lax.stop_gradient(total) / dt)
    offset = total - q * dt
    wrap = jax.lax.stop_gradient(offset) >= dt
    q = jnp.where(wrap, q + 1, q)
    offset = jnp.where(wrap, offset - dt, offset)
    step = k + q.astype(jnp.int32)
    free = b == _EMPTY
    slot = jnp.argmax(free, axis=-1)
    put = valid[..., None] & (jnp.arange(b.shape[-1]) == slot[..., None])
    overflow = jnp.any(valid & ~jnp.any(free, axis=-1))
    b = jnp.where(put, step[..., None], b)
    off = jnp.where(put, offset[..., None], off)
    amt = jnp.where(put, amount[..., None], amt)
    return (b, off, amt), overflow


# --------------------------------------------------------------------------------- methods
METHODS = ("euler", "exact", "diffrax")


def run_method(graph: Graph, xs: Any, *, method: str = "diffrax", **kwargs) -> Any:
    """Run `graph` on `xs` with a method: `"euler"` or `"exact"` (the discrete executor, the
    graph with that discretization; returns a `nirjax.RunResult` recording every neuron) or
    `"diffrax"` (`simulate_continuous(graph, xs, **kwargs)`)."""
    if method == "diffrax":
        return simulate_continuous(graph, xs, **kwargs)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}.")
    if kwargs:
        raise TypeError(f"method {method!r} takes no options, got {sorted(kwargs)}.")
    rebuilt = graph.with_options(discretization=method)
    neurons = [p for p, n in rebuilt.walk() if isinstance(n, Neuron)]
    return rebuilt.run(xs, record=neurons)


__all__ = ["ContinuousResult", "run_method", "simulate_continuous"]
