r"""Loihi 2, bit-accurate: Lava's Dense and LIF (CUBA) process models in integer JAX.

Sources (github:lava-nc/lava, src/lava/...; see docs/fixed_point.md for line numbers):

- `proc/lif/models.py`, `AbstractPyLifModelFixed.subthr_dynamics` and `PyLifModelBitAcc`:
  `u <- sign(u) (|u| (4096 - (du + 1)) >> 12) + (a_in << 6)`, wrapped to 24 bits;
  `v <- sign(v) (|v| (4096 - dv) >> 12) + u + bias`, clipped to +-(2^23 - 1); spike where
  `v > vth << 6`; then `v <- 0`.
- `proc/dense/models.py`, `AbstractPyDenseModelBitAcc.run_spk`: the activation sent at step t
  is the one accumulated from the spikes received at step t - 1 (the synapse pipeline: the
  one-step latency of Lava and Loihi); weights clipped to 8 bits by sign mode and, for mixed
  signs, their least significant bit dropped (`utils/weightutils.py`); binary spikes in
  (`num_message_bits = 0`).
- The hardware's voltage after a spike: Loihi holds its refractory counter in v, so a state
  probe reads 128 on the step a neuron fires (lava-nc/lava issue #282; nengo-loihi issue
  #170); the internal v is 0 as in Lava's CPU model. `probe="hardware"` (default) reports
  what the chip's probe reads, `probe="lava_cpu"` what `PyLifModelBitAcc` reports.

Default conversion (no recorded quantization), the NIR paper's Lava script
(github:neuromorphs/NIR, paper/01_lif/_lava_nir.py at commit 2988704, lines 37-67; now
paper/nir_to_lava.py lines 63-93): `dv = int(dt/tau * 4095)`, `du = 4095` for LIF (no current
decay) or `int(dt/tau_syn * 4095)` for CubaLIF, `vth = int(v_threshold * 131071) >> 9`,
weights `int(W * g * 256)` where `g` is the neuron's per-step input gain (`dt r / tau` for an
Euler LIF: the script's `correction = dt / tau` Dense in front of the LIF, folded into the
incoming Affine), and a per-step bias (v_leak, an Affine's bias) `int(b * 256 * 64)`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._fixed import FixedTarget, GraphView, decays, euler_response, integer_multiple
from .primitives._base import Primitive
from .primitives._linear import Affine
from .primitives._neuron import Neuron

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6
VTH_SHIFT = 6
UV_MAX = 1 << 23  # u, v are 24-bit
REFRACTORY_PROBE = 128  # what the hardware probe reads on a spike step (refractory counter)
WEIGHT_BITS = 8


def _decay(x: jax.Array, d: jax.Array) -> jax.Array:
    """`sign(x) * ((|x| * (4096 - d)) >> 12)` exactly in int32 (|x| < 2^24, 0 <= d <= 4096):
    the product is split at bit 12 so no intermediate exceeds 2^24."""
    m = DECAY_UNITY - d
    a = jnp.abs(x)
    hi, lo = a >> DECAY_SHIFT, a & (DECAY_UNITY - 1)
    return jnp.sign(x) * (hi * m + ((lo * m) >> DECAY_SHIFT))


class LoihiDense(Primitive):
    r"""Lava's bit-accurate Dense: `a(t) = (W s(t-1)) << weight_exp` (an arithmetic right shift
    for a negative `weight_exp`, flooring the accumulated sum) with integer W (8 bit) and
    binary s.

    **Arguments:** `weight` (int32, `(out, in)`), `weight_exp` (Lava's shared weight exponent,
    applied to the accumulated sum as `proc/dense/models.py` `run_spk` does), `buffered` (the
    one-step synapse pipeline; False only where a back edge of the graph already carries the
    previous step).
    **Returns:** the integer activation (as float), `(out,)`. State: `{"a": (out,)}`.
    """

    weight: jax.Array
    weight_exp: int = eqx.field(static=True, default=0)
    buffered: bool = eqx.field(static=True, default=True)
    name: str = eqx.field(static=True, default="")
    stateful: ClassVar[bool] = True

    def init_state(self, input_shape, dtype):
        return {"a": jnp.zeros(self.weight.shape[:-1], jnp.int32)}

    def expected_input_shape(self):
        return (self.weight.shape[-1],)

    def step(self, state, x):
        x = eqx.error_if(
            x, jnp.any((x != 0) & (x != 1)),
            f"loihi2: node {self.name!r} (Dense) receives non-binary values; Loihi 2 Dense "
            "takes spikes (0/1, num_message_bits=0). Feed it spikes.",
        )
        a = self.weight @ (x != 0).astype(jnp.int32)
        a = a << self.weight_exp if self.weight_exp > 0 else a >> -self.weight_exp
        if not self.buffered:
            return state, a.astype(x.dtype)
        return {"a": a}, state["a"].astype(x.dtype)

    def observables(self, state):
        return dict(state)


class LoihiNeuron(Primitive):
    r"""Lava's bit-accurate LIF (CUBA) neuron (see the module docstring for the update).

    **Arguments:** int32 per-neuron `du`, `dv` (12 bit), `vth` (17-bit mantissa), `bias` (in v
    units), `probe` (`"hardware"` or `"lava_cpu"`).
    **Returns:** spikes (0/1). State: `{"u", "v", "z"}` (int32; z: spiked this step).
    Observables: `u`, and `v` as the chosen probe reads it.
    """

    du: jax.Array
    dv: jax.Array
    vth: jax.Array
    bias: jax.Array
    probe: str = eqx.field(static=True, default="hardware")
    stateful: ClassVar[bool] = True
    elementwise: ClassVar[bool] = True

    def expected_input_shape(self):
        return tuple(self.vth.shape)

    def init_state(self, input_shape, dtype):
        z = jnp.zeros(self.vth.shape, jnp.int32)
        return {"u": z, "v": z, "z": z}

    def step(self, state, a):
        a_in = jnp.round(a).astype(jnp.int32)
        du = self.du + 1  # ds_offset = 1 (lif/models.py): du = 4095 decays u fully
        cur = _decay(state["u"], du) + (a_in << ACT_SHIFT)
        wrapped = jnp.where(cur > UV_MAX, cur - 2 * UV_MAX, cur)
        u = jnp.where(wrapped <= -UV_MAX, cur + 2 * UV_MAX, wrapped)
        v = _decay(state["v"], self.dv) + u + self.bias
        v = jnp.clip(v, -UV_MAX + 1, UV_MAX - 1)
        z = v > (self.vth << VTH_SHIFT)
        v = jnp.where(z, 0, v)
        zi = z.astype(jnp.int32)
        return {"u": u, "v": v, "z": zi}, zi.astype(a.dtype)

    def observables(self, state):
        v = state["v"]
        if self.probe == "hardware":
            v = jnp.where(state["z"] == 1, REFRACTORY_PROBE, v)
        return {"u": state["u"], "v": v}


PROBES = ("hardware", "lava_cpu")


class Loihi2(FixedTarget):
    """Intel Loihi 2 through Lava's bit-accurate process models (see the module docstring)."""

    name: ClassVar[str] = "loihi2"

    def convert(self, view: GraphView, probe: str = "hardware", **options: Any):
        if options:
            raise TypeError(f"loihi2: unknown option(s) {sorted(options)}; valid: ['probe'].")
        if probe not in PROBES:
            raise ValueError(f"loihi2: probe must be one of {list(PROBES)}, got {probe!r}.")
        out: dict[str, Primitive] = {}
        weights = view.weights()
        for n in view.neurons():
            out[n], dense = self._neuron(view, n, probe)
            out.update(dense)
        for w in weights:
            if w not in out:
                raise view.error(w, "its output reaches no neuron",
                                 "Loihi 2 Dense feeds LIF neurons; connect it to a LIF/CubaLIF.")
        return out

    # ------------------------------------------------------------------ one neuron
    def _neuron(self, view: GraphView, n: str, probe: str):
        node: Neuron = view.nodes[n]
        o = node.options
        checks = (
            (not node.spiking, "is not a spiking neuron", "Loihi 2's LIF spikes; use LIF/CubaLIF"),
            (len(node.state_vars) > 2 or node.state_vars[-1] != "v",
             f"has state {node.state_vars}", "Loihi 2 runs LIF (v) and CUBA (I, v) neurons"),
            (o.reset != "value", f"uses reset={o.reset!r}",
             "Loihi 2's LIF resets v to 0: use reset='value' with v_reset = 0"),
            (o.threshold_comparison != "greater",
             f"uses threshold_comparison={o.threshold_comparison!r}",
             "Loihi 2 spikes where v > threshold: use 'greater'"),
            (o.spike_order != "after_input", f"uses spike_order={o.spike_order!r}",
             "Loihi 2 decides spikes after integrating: use 'after_input'"),
            (o.spikes_per_step != "single", f"uses spikes_per_step={o.spikes_per_step!r}",
             "Loihi 2 emits one spike per step: use 'single'"),
            (o.input_mode != "current", f"uses input_mode={o.input_mode!r}",
             "the Loihi 2 conversion is defined for input_mode='current'"),
            (len(node.state_vars) == 2 and o.cuba_order != "current_first",
             f"uses cuba_order={o.cuba_order!r}",
             "Loihi 2 updates u before v (v sees the new u): use 'current_first'"),
        )
        for failed, problem, fix in checks:
            if failed:
                raise view.error(n, problem, fix + ".")
        v_reset = np.asarray(node.v_reset, np.float64)
        if np.any(v_reset != 0):
            raise view.error(n, f"has v_reset = {v_reset.ravel()[:3]} (not 0)",
                             "Loihi 2's LIF resets v to 0; shift v_leak/v_threshold so that "
                             "v_reset = 0")
        shape = node.expected_input_shape()
        dec = decays(node, view.dt)
        for k, d in dec.items():
            if np.any(d < 0) or np.any(d > 1):
                raise view.error(n, f"decays {k} by dt/tau = {d.ravel()[:3]} per step",
                                 "Loihi 2's 12-bit decay needs 0 <= dt/tau <= 1: a smaller dt")
        dv = np.trunc(dec["v"] * 4095).astype(np.int64)
        du = (np.trunc(dec[node.state_vars[0]] * 4095).astype(np.int64) if len(dec) == 2
              else np.full(shape, 4095))
        gain = euler_response(node, view.dt, 1.0)["v"] - euler_response(node, view.dt, 0.0)["v"]
        bias_f = euler_response(node, view.dt, 0.0)["v"]

        preds = view.preds[n]
        if not preds:
            raise view.error(n, "has no input", "connect it through an Affine/Linear")
        for p in preds:
            if p not in view.weights():
                raise view.error(n, f"receives {p!r} ({type(view.nodes[p]).__name__}) directly",
                                 "Loihi 2 delivers input to a neuron through a Dense: put an "
                                 "Affine/Linear (e.g. the identity) between them")
        unit = view.scale(n, "v_threshold")
        weight_scales = {p: view.scale(p, "weight") for p in preds}
        if unit is None and any(s is not None for s in weight_scales.values()):
            p, s = next((p, s) for p, s in weight_scales.items() if s is not None)
            unit = s * gain  # a mantissa unit of the voltage = one weight unit's effect
        thr = np.asarray(node.v_threshold, np.float64)
        if unit is None:
            vth = np.trunc(thr * 131071).astype(np.int64) >> 9
        else:
            vth = integer_multiple(thr / unit * np.ones(shape), 1.0, f"loihi2: node {n!r}",
                                   "v_threshold")
        if np.any(vth < 0) or np.any(vth > 131071):
            raise view.error(n, f"threshold mantissa {vth.ravel()[:3]} outside 0..131071 "
                             "(17 bits)", "scale v_threshold (or its recorded scale)")

        dense = {}
        for p in preds:
            wnode = view.nodes[p]
            if view.succs[p] != [n]:
                raise view.error(p, f"feeds {view.succs[p]}",
                                 f"a Loihi 2 Dense feeds one neuron population: give {n!r} its "
                                 "own Affine/Linear")
            for q in view.preds[p]:
                if q in view.weights():
                    raise view.error(p, f"receives weights {q!r} directly",
                                     "Loihi 2 has no two Dense in a row: merge the two maps")
            W = np.asarray(wnode.weight, np.float64)
            if W.ndim != 2:
                raise view.error(p, f"has weight shape {W.shape}", "Loihi 2 Dense is 2-D (out, in)")
            s_w = weight_scales[p]
            exp = 0
            if unit is None:
                wi = np.trunc(W * gain.reshape(-1, 1) * 256).astype(np.int64)
            elif s_w is not None:
                wi, exp = _recorded_weights(view, p, n, W, s_w, gain, unit)
            else:
                wi = integer_multiple(W * gain.reshape(-1, 1) / unit, 1.0,
                                      f"loihi2: node {p!r}", "weight")
            if isinstance(wnode, Affine):
                b = np.broadcast_to(np.asarray(wnode.bias, np.float64), shape)
                if np.any(b != 0):
                    if len(node.state_vars) == 2:
                        raise view.error(p, "has a bias into a CubaLIF",
                                         "Loihi 2's bias adds to v, not to the current: move it "
                                         "to v_leak or drop it")
                    bias_f = bias_f + gain * b
            dense[p] = LoihiDense(jnp.asarray(_lava_weights(view, p, wi), jnp.int32),
                                  weight_exp=exp,
                                  buffered=not any((p, d) in view.back or (s, p) in view.back
                                                   for d in view.succs[p]
                                                   for s in view.preds[p]),
                                  name=p)
        if unit is None:
            bias = np.trunc(bias_f * 256 * 64).astype(np.int64)
        else:  # v counts in units of unit / 2^6 (the threshold mantissa is shifted by 6)
            bias = integer_multiple(bias_f, unit / (1 << VTH_SHIFT), f"loihi2: node {n!r}",
                                    "v_leak / Affine bias")
        ints = {k: jnp.asarray(np.broadcast_to(a, shape), jnp.int32)
                for k, a in (("du", du), ("dv", dv), ("vth", vth), ("bias", bias))}
        return LoihiNeuron(**ints, probe=probe), dense


def _recorded_weights(view: GraphView, p: str, n: str, W, s_w: float, gain, unit):
    """Stored 8-bit weights and the shared exponent for a weight node quantized as `q * s_w`
    (integer q, metadata): one q is worth `s_w * gain / unit = 2**k` threshold-mantissa units.
    The weights are stored as `2 q` (even, so the mixed-sign mode's dropped least significant
    bit loses nothing) with `weight_exp = k - 1`; for k >= 0 the chip's input is exactly
    `q 2**k` per spike, for k < 0 Lava floors the shifted sum (what the chip computes)."""
    q = integer_multiple(W, s_w, f"loihi2: node {p!r}", "weight")
    ratio = np.asarray(s_w * gain / unit, np.float64)
    k = np.round(np.log2(np.maximum(ratio, 1e-300)))
    if not np.allclose(ratio, 2.0 ** k, rtol=1e-4) or np.any(k != k.ravel()[0]):
        raise view.error(
            p, f"weight scale {s_w} x input gain {np.ravel(gain)[:1]} of {n!r} over {n!r}'s "
            f"recorded v_threshold scale {unit} is {np.ravel(ratio)[:1]}, not one power of two",
            "Loihi 2 scales a Dense's weights by a shared power of two (weight_exp): record "
            "weight_scale * dt*r/tau = 2**k * v_threshold_scale")
    if q.min() < -128 or q.max() > 127:
        raise view.error(p, f"integer weights span {q.min()}..{q.max()}, outside -128..127",
                         "scale the weights down (or the recorded weight scale up)")
    return 2 * q, int(k.ravel()[0]) - 1


def _lava_weights(view: GraphView, p: str, w: np.ndarray) -> np.ndarray:
    """Lava's 8-bit weights by sign mode (utils/weightutils.py, clip_weights and
    truncate_weights with num_weight_bits = 8): excitatory 0..255, inhibitory -255..0, mixed
    -256..255 with the least significant bit dropped. Out-of-range weights are an error."""
    lo, hi = (0, 255) if w.min() >= 0 else (-255, 0) if w.max() <= 0 else (-256, 255)
    if w.min() < lo or w.max() > hi:
        raise view.error(p, f"integer weights span {w.min()}..{w.max()}, outside the 8-bit "
                         f"range {lo}..{hi}", "scale the weights down (or the neuron's "
                         "v_threshold scale up)")
    if lo < 0 < hi:
        w = (w >> 1) << 1
    return w


from ._fixed import register_fixed_target  # noqa: E402

register_fixed_target(Loihi2())

__all__ = ["Loihi2", "LoihiDense", "LoihiNeuron"]
