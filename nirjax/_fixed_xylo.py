r"""Xylo (SYNS61201, Xylo Audio 2), bit-accurate: the digital SNN core as Rockpool simulates it.

Rockpool's `XyloSim` (`rockpool/devices/xylo/syns61201/xylo_sim.py`, `from_specification`)
builds a `xylosim.v2.XyloLayer` (SynSense's C++ simulator) and evolves it; this module computes
the same integers. Per step, for every neuron (int16 state, arithmetic shifts):

1. `J = sat16(I + sum_j (w_j << weight_shift) s_j)`, `I <- J - decay(J, dash_syn)`;
2. `V <- sat16(V - decay(V, dash_mem) + I + bias)`;
3. hidden neurons emit `n = min(V // threshold, 31)` spikes where `V >= threshold` and
   `V <- V - n threshold`; output neurons (those feeding an Output) emit one, `V <- V - threshold`;

where `decay(x, d) = x >> d`, except that a positive `x` with `x >> d == 0` loses 1 (the
hardware decays towards zero; a negative x does so through the floor of the shift). Input events
saturate at 15 per channel and step. Spikes reach other neurons (recurrent and output
synapses) on the next step; input events act in the same step. These rules were read off
`xylosim.v2.XyloLayer` (installed without samna) and are checked against it step for step in
tests/test_fixed_xylo.py; `XyloSim` itself cannot be imported here (its package imports samna).

Default conversion (no recorded quantization): `dash = round(log2(tau / dt))` for tau_syn and
tau_mem (Rockpool `nn/modules/torch/lif_bitshift_torch.py`, `calc_bitshift_decay`), one scale
per neuron population such that the largest weight into it maps to 127 (int8), weights and
threshold divided by it and rounded (Rockpool `transform/quantize_methods.py`,
`global_quantize`, does the same for the whole network). The float weight is the neuron's
per-step input gain times W, divided by Xylo's own first-step gain `1 - 2^-dash_syn`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._fixed import (
    FixedTarget,
    GraphView,
    decays,
    euler_response,
    integer_multiple,
    register_fixed_target,
)
from .primitives._base import Primitive
from .primitives._io import Output
from .primitives._linear import Affine
from .primitives._neuron import Neuron

I16 = (-(1 << 15), (1 << 15) - 1)
MAX_SPIKES = 31
MAX_INPUT_EVENTS = 15


def _decay(x: jax.Array, dash: jax.Array) -> jax.Array:
    d = x >> dash
    return jnp.where((d == 0) & (x > 0) & (dash > 0), 1, d)


def _sat(x: jax.Array) -> jax.Array:
    return jnp.clip(x, *I16)


class XyloDense(Primitive):
    r"""A Xylo weight matrix: `a(t) = (W << weight_shift) s`, with `s` the input events (clipped
    to 15) or the spike counts of the previous step (`delayed`).

    **Arguments:** `weight` (int8 values, `(out, in)`), `weight_shift`, `delayed`, `from_input`.
    **Returns:** the integer synaptic input (as float), `(out,)`.
    """

    weight: jax.Array
    weight_shift: int = eqx.field(static=True, default=0)
    delayed: bool = eqx.field(static=True, default=False)
    from_input: bool = eqx.field(static=True, default=False)
    name: str = eqx.field(static=True, default="")
    stateful: ClassVar[bool] = True

    def expected_input_shape(self):
        return (self.weight.shape[-1],)

    def init_state(self, input_shape, dtype):
        return {"a": jnp.zeros(self.weight.shape[:-1], jnp.int32)}

    def step(self, state, x):
        x = eqx.error_if(
            x, jnp.any((x < 0) | (x != jnp.round(x))),
            f"xylo: node {self.name!r} receives values that are not event counts (whole "
            "numbers >= 0); Xylo takes spike events.",
        )
        s = jnp.round(x).astype(jnp.int32)
        if self.from_input:
            s = jnp.minimum(s, MAX_INPUT_EVENTS)
        a = (self.weight << self.weight_shift) @ s
        if not self.delayed:
            return state, a.astype(x.dtype)
        return {"a": a}, state["a"].astype(x.dtype)


class XyloNeuron(Primitive):
    r"""A Xylo neuron population (see the module docstring for the update).

    **Arguments:** int per-neuron `dash_syn`, `dash_mem`, `threshold`, `bias`; `max_spikes`
    (31 hidden, 1 output). **Returns:** spike counts. State: `{"I", "v"}` (int32 holding int16).
    """

    dash_syn: jax.Array
    dash_mem: jax.Array
    threshold: jax.Array
    bias: jax.Array
    max_spikes: int = eqx.field(static=True, default=MAX_SPIKES)
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def expected_input_shape(self):
        return tuple(self.threshold.shape)

    def init_state(self, input_shape, dtype):
        z = jnp.zeros(self.threshold.shape, jnp.int32)
        return {"I": z, "v": z}

    def step(self, state, a):
        J = _sat(state["I"] + jnp.round(a).astype(jnp.int32))
        i_syn = J - _decay(J, self.dash_syn)
        v = _sat(state["v"] - _decay(state["v"], self.dash_mem) + i_syn + self.bias)
        n = jnp.where(v >= self.threshold, v // self.threshold, 0)
        n = jnp.minimum(n, self.max_spikes)
        v = v - n * self.threshold
        return {"I": i_syn, "v": v}, n.astype(a.dtype)

    def observables(self, state):
        return dict(state)


class Xylo(FixedTarget):
    """SynSense Xylo Audio 2 (SYNS61201) through Rockpool's simulator (module docstring)."""

    name: ClassVar[str] = "xylo"

    def convert(self, view: GraphView, **options: Any):
        if options:
            raise TypeError(f"xylo: unknown option(s) {sorted(options)}; it takes none.")
        out: dict[str, Primitive] = {}
        for n in view.neurons():
            out[n], dense = self._neuron(view, n)
            out.update(dense)
        for w in view.weights():
            if w not in out:
                raise view.error(w, "its output reaches no neuron",
                                 "Xylo weights feed neurons; connect it to a CubaLIF")
        return out

    def _neuron(self, view: GraphView, n: str):
        node: Neuron = view.nodes[n]
        o = node.options
        is_output = any(isinstance(view.nodes[s], Output) for s in view.succs[n])
        checks = (
            (node.state_vars != ("I", "v") or not node.spiking,
             f"is a {type(node).__name__}",
             "Xylo neurons have a synaptic current and a membrane: use CubaLIF "
             "(tau_syn >= 2 dt)"),
            (o.reset != "subtract", f"uses reset={o.reset!r}",
             "Xylo subtracts the threshold on a spike: use reset='subtract'"),
            (o.threshold_comparison != "greater_equal",
             f"uses threshold_comparison={o.threshold_comparison!r}",
             "Xylo spikes where V >= threshold: use 'greater_equal'"),
            (o.spike_order != "after_input", f"uses spike_order={o.spike_order!r}",
             "Xylo decides spikes after integrating: use 'after_input'"),
        )
        for failed, problem, fix in checks:
            if failed:
                raise view.error(n, problem, fix + ".")
        if np.any(np.asarray(node.v_reset, np.float64) != 0):
            raise view.error(n, "has v_reset != 0", "Xylo's reset subtracts the threshold from "
                             "V (v_reset = 0)")
        shape = node.expected_input_shape()
        dash = {}
        for k, d in decays(node, view.dt).items():
            tau = view.dt / np.maximum(d, 1e-30)
            dash[k] = np.round(np.log2(np.maximum(tau / view.dt, 1.0))).astype(np.int64)
            if np.any(dash[k] < 1) or np.any(dash[k] > 15):
                raise view.error(n, f"tau_{'syn' if k == 'I' else 'mem'} / dt gives dash "
                                 f"{dash[k].ravel()[:3]}", "Xylo decays need 1 <= "
                                 "round(log2(tau/dt)) <= 15: tau between 2 dt and 2^15 dt")
        gain = euler_response(node, view.dt, 1.0)["v"] - euler_response(node, view.dt, 0.0)["v"]
        gain = gain / (1.0 - 2.0 ** -dash["I"].astype(np.float64))
        if np.any(euler_response(node, view.dt, 0.0)["v"] != 0):
            raise view.error(n, "has v_leak != 0", "Xylo has no leak potential; set v_leak = 0")
        preds = view.preds[n]
        for p in preds:
            if p not in view.weights():
                raise view.error(n, f"receives {p!r} ({type(view.nodes[p]).__name__}) directly",
                                 "Xylo neurons take input through weights: put a Linear between")
            if view.succs[p] != [n]:
                raise view.error(p, f"feeds {view.succs[p]}", f"give {n!r} its own Linear")
            if isinstance(view.nodes[p], Affine) and np.any(
                    np.asarray(view.nodes[p].bias) != 0):
                raise view.error(p, "has a bias", "Xylo has no synaptic bias: use Linear or "
                                 "a zero bias")
        effs = {p: np.asarray(view.nodes[p].weight, np.float64) * gain.reshape(-1, 1)
                for p in preds}
        unit = view.scale(n, "v_threshold")
        if unit is None:
            scales = [view.scale(p, "weight") for p in preds]
            if any(s is not None for s in scales):
                unit = next(s for s in scales if s is not None) * gain
        if unit is None:
            peak = max(float(np.abs(e).max()) for e in effs.values())
            unit = peak / 127 if peak > 0 else 1.0
            thr = np.round(np.asarray(node.v_threshold, np.float64) / unit).astype(np.int64)
            ints = {p: np.round(e / unit).astype(np.int64) for p, e in effs.items()}
        else:
            thr = integer_multiple(np.asarray(node.v_threshold, np.float64) / unit, 1.0,
                                   f"xylo: node {n!r}", "v_threshold")
            ints = {p: integer_multiple(e / np.reshape(unit, (-1, 1)) if np.ndim(unit) else
                                        e / unit, 1.0, f"xylo: node {p!r}", "weight")
                    for p, e in effs.items()}
        thr = np.broadcast_to(thr, shape)
        if np.any(thr < 1) or np.any(thr > I16[1]):
            raise view.error(n, f"threshold {thr.ravel()[:3]} outside 1..32767 (int16)",
                             "rescale the threshold against the weights")
        dense = {}
        for p, w in ints.items():
            if w.min() < -128 or w.max() > 127:
                raise view.error(p, f"integer weights span {w.min()}..{w.max()}, outside int8",
                                 "scale the weights (or the recorded scale)")
            from_input = all(q in view.graph.inputs for q in view.preds[p])
            src_neurons = [q for q in view.preds[p] if q in view.neurons()]
            if not from_input and len(src_neurons) != len(view.preds[p]):
                raise view.error(p, "mixes Input and neuron sources", "split it in two")
            delayed = not from_input and not any((p, n) in view.back or (q, p) in view.back
                                                 for q in view.preds[p])
            dense[p] = XyloDense(jnp.asarray(w, jnp.int32), delayed=delayed,
                                 from_input=from_input, name=p)
        ints_n = {"dash_syn": dash["I"], "dash_mem": dash["v"], "threshold": thr,
                  "bias": np.zeros(shape, np.int64)}
        module = XyloNeuron(**{k: jnp.asarray(np.broadcast_to(v, shape), jnp.int32)
                               for k, v in ints_n.items()},
                            max_spikes=1 if is_output else MAX_SPIKES)
        return module, dense


register_fixed_target(Xylo())

__all__ = ["Xylo", "XyloDense", "XyloNeuron"]
