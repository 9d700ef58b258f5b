"""Characterize a chip recording with the chip's own integer arithmetic (`--platform loihi2`).

A float model explains an integer recording only up to its rounding (the float fit of the
paper's Loihi recording keeps an RMS of about 8 Loihi units, most of it at the spike steps where
the chip's probe reads 128). With the platform's bit-accurate execution
(`nirjax.fixed_point(nominal, platform)`) the question becomes which integer constants and
timing the chip ran:

1. the nominal graph is converted with the chip's default conversion (or its recorded
   quantization), which includes the chip's own pipeline latency (Loihi: one step, the Lava
   Dense buffer);
2. an extra latency of 0..`max_latency` whole steps on the input, and integer offsets of
   `-radius..radius` on each of the recorded neuron's integer constants and the weights into
   it, are searched exhaustively (every combination, batched with `jax.vmap`) for the lowest
   voltage residual (the probe reads the spikes too); among exact ties the one closest to the
   nominal constants (smallest summed |offset|) is kept;
3. the probe: first the chip's own units (`recording = v`); only if they cannot explain the
   recording, `recording = scale * v + offset` fitted in closed form (it trades off against
   the weights); reported;
4. the verdict: "explained" when the spike steps are reproduced and the residual is within
   3x the resolution floor (integer recordings: 1/sqrt(12)); else "unexplained".
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import nirjax

from ._mismatch_targets import as_graph


@dataclasses.dataclass
class FixedCharacterization:
    """What `characterize_fixed` found: `platform`, `node`, `latency` (total input-to-voltage
    steps: the chip's pipeline plus `extra_latency`), `constants` (`{"node.field": (nominal,
    fitted)}` integers, first element of each array), the probe `scale` / `offset`, the
    residual `rms` (recording units), `rms_outside_spikes`, `span`, `floor`,
    `spikes_reproduced`, `missing` / `extra` spike steps, `verdict`, `message`, `seconds`."""

    platform: str
    node: str
    latency: int
    extra_latency: int
    constants: dict[str, tuple[int, int]]
    scale: float
    offset: float
    rms: float
    rms_outside_spikes: float
    span: float
    floor: float
    spikes_reproduced: bool
    missing: list[int]
    extra: list[int]
    verdict: str
    message: str
    seconds: float

    @property
    def explained(self) -> bool:
        return self.verdict != "unexplained"

    def row(self) -> dict[str, Any]:
        """One row of the platform table (plain Python values)."""
        return {
            "node": self.node, "platform_model": f"{self.platform} fixed point",
            "latency": self.latency, "extra_latency": self.extra_latency,
            "constants": {k: list(v) for k, v in self.constants.items()},
            "scale": self.scale, "offset": self.offset,
            "spikes_reproduced": self.spikes_reproduced, "rms": self.rms,
            "rms_outside_spikes": self.rms_outside_spikes,
            "rms_rel_range": self.rms / self.span if self.span else float("nan"),
            "floor": self.floor, "verdict": self.verdict, "message": self.message,
        }

    def summary(self) -> str:
        lines = [f"node {self.node!r} on {self.platform} (bit-accurate fixed point): latency "
                 f"{self.latency} step(s) (chip pipeline {self.latency - self.extra_latency}, "
                 f"extra {self.extra_latency})",
                 f"  probe: recording = {self.scale:.6g} * v + {self.offset:.4g}"]
        for k, (nom, fit) in self.constants.items():
            lines.append(f"  {k}: nominal {nom}, fitted {fit}")
        lines.append(f"  spike steps reproduced: {'yes' if self.spikes_reproduced else 'no'}"
                     + ("" if self.spikes_reproduced else
                        f" (missing {self.missing[:5]}, extra {self.extra[:5]})"))
        lines.append(f"  voltage residual RMS {self.rms:.4g} ({100 * self.rms / self.span:.3g} % "
                     f"of the range {self.span:.4g}); resolution floor {self.floor:.3g}")
        lines.append(f"  verdict: {self.verdict}: {self.message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _knobs(chip: nirjax.Graph, node: str, names=None) -> list[tuple[str, str]]:
    """The integer constants searched: by default those of the recorded neuron that are in use
    (non-zero, and not a 12-bit decay at its limit 4095, i.e. "no current state") and the
    weights into it; `names` ("node.field") chooses others."""
    if names is not None:
        out = []
        for k in names:
            n, _, f = k.rpartition(".")
            if n not in chip.nodes or not hasattr(chip.nodes[n], f):
                raise ValueError(f"characterize_fixed: no integer constant {k!r} in the chip "
                                 f"graph (nodes {sorted(chip.nodes)}).")
            out.append((n, f))
        return out
    out = []
    neuron = chip.nodes[node]
    for f in dataclasses.fields(neuron):
        val = getattr(neuron, f.name)
        if isinstance(val, jax.Array) and jnp.issubdtype(val.dtype, jnp.integer):
            arr = np.asarray(val)
            if np.any(arr != 0) and not np.all(arr == 4095):
                out.append((node, f.name))
    for src, dst in chip.edges:
        if dst == node and hasattr(chip.nodes[src], "weight"):
            out.append((src, "weight"))
    return out


def characterize_fixed(
    nominal: Any,
    platform: str,
    *,
    inputs: Any,
    v: Any,
    spikes: Any,
    node: str | None = None,
    max_latency: int = 3,
    radius: int = 3,
    constants: Sequence[str] | None = None,
    dt: float | None = None,
    **chip_options: Any,
) -> tuple[nirjax.Graph, FixedCharacterization]:
    """Characterize one recorded neuron of a chip with the chip's bit-accurate execution.

    **Arguments:** `nominal` (graph, NIR graph or path), `platform` (a `nirjax.fixed_point`
    target, e.g. `"loihi2"`), `inputs` `(T, n_in)`, `v` and `spikes` `(T,)` or `(T, n)` of
    `node` (default: the only spiking neuron), the search (`max_latency` extra steps, every
    combination of integer offsets within `radius` on the `constants`, see `_knobs`), `dt`
    for a NIR graph without one, and chip options (e.g. `probe="lava_cpu"`).

    **Returns:** `(calibrated chip graph, FixedCharacterization)`.
    """
    t0 = time.perf_counter()
    graph = as_graph(nominal, dt=dt)
    if node is None:
        spiking = [p for p, m in graph.walk() if isinstance(m, nirjax.Neuron) and m.spiking]
        if len(spiking) != 1:
            raise ValueError(f"characterize_fixed: node is required; spiking nodes {spiking}.")
        node = spiking[0]
    if len(graph.inputs) != 1:
        raise ValueError(f"characterize_fixed: expected one Input, got {list(graph.inputs)}.")
    chip = nirjax.fixed_point(graph, platform, **chip_options)
    xs = np.asarray(inputs, np.float32)
    if xs.ndim == 1:
        xs = xs[:, None]
    T = xs.shape[0]
    y = np.asarray(v, np.float64).reshape(T, -1)
    z = np.asarray(spikes, np.float64).reshape(T, -1)
    span = float(y.max() - y.min()) or 1.0
    integer = bool(np.all(y == np.round(y)))
    floor = 1.0 / np.sqrt(12.0) if integer else 1e-6 * span

    knobs = _knobs(chip, node, constants)
    base = [getattr(chip.nodes[n], f) for n, f in knobs]

    def with_offsets(offsets):
        values = [b + o.astype(b.dtype) for b, o in zip(base, offsets)]
        return eqx.tree_at(lambda g: [getattr(g.nodes[n], f) for n, f in knobs], chip, values)

    @functools.partial(jax.jit, static_argnums=1)
    def simulate(offsets, k):  # offsets: (N, len(knobs)) integer offsets, one row per candidate
        x = jnp.asarray(xs)
        x = jnp.where(jnp.arange(T)[:, None] >= k, jnp.roll(x, k, axis=0), 0.0)

        def one(row):
            res = with_offsets(list(row)).run(x, record=(node,))
            return res.record[node]["v"], res.record[node]["output"]

        return jax.vmap(one)(offsets)

    def scores(offsets, k, fit_probe):
        vv, zz = simulate(jnp.asarray(offsets, jnp.int32), k)
        vv = np.asarray(vv, np.float64).reshape(len(offsets), T, -1)
        zz = np.asarray(zz).reshape(len(offsets), T, -1)
        out = []
        for i in range(len(offsets)):
            scale, offset = 1.0, 0.0  # the chip's own units
            if fit_probe and not np.allclose(vv[i], vv[i].ravel()[0]):
                A = np.stack([vv[i].ravel(), np.ones(vv[i].size)], 1)
                (scale, offset), *_ = np.linalg.lstsq(A, y.ravel(), rcond=None)
            r = y - (scale * vv[i] + offset)
            out.append((float(np.sqrt(np.mean(r**2))), int(np.sum((zz[i] > 0) != (z > 0))),
                        (float(scale), float(offset), r, zz[i])))
        return out

    span_offsets = np.arange(-radius, radius + 1)
    grid = np.stack(np.meshgrid(*[span_offsets] * len(knobs), indexing="ij"), -1).reshape(
        -1, len(knobs)) if knobs else np.zeros((1, 0), int)
    best = None
    # The chip's own units first (an integer recording of the chip's state); a fitted probe
    # scale only if they cannot explain the recording (it trades off against the weights).
    for fit_probe in (False, True):
        for k in range(max_latency + 1):
            found = []
            for i in range(0, len(grid), 512):
                found += scores(grid[i:i + 512], k, fit_probe)
            j = min(range(len(found)),
                    key=lambda i: (found[i][0], found[i][1], np.abs(grid[i]).sum()))
            if best is None or (found[j][0], found[j][1]) < (best[2][0], best[2][1]):
                best = (k, grid[j], found[j])
        if best[2][1] == 0 and best[2][0] <= 3 * floor:
            break
    k, offsets, (rms, mism, (scale, offset, r, zz)) = best
    g = with_offsets([jnp.asarray(o) for o in offsets])
    spike_steps = z.sum(1) > 0
    outside = r[~spike_steps]
    missing = [int(t) for t in np.nonzero((z > 0) & (zz <= 0))[0]]
    extra = [int(t) for t in np.nonzero((zz > 0) & (z <= 0))[0]]
    reproduced = mism == 0
    if reproduced and rms <= 3 * floor:
        verdict = "explained"
        message = (f"spike steps reproduced and residual {rms:.3g} within 3x the resolution "
                   f"floor {floor:.3g}" + (" (bit exact)" if rms == 0 else ""))
    else:
        verdict = "unexplained"
        left = [] if reproduced else [f"{len(missing)} missed and {len(extra)} extra spikes"]
        if rms > 3 * floor:
            left.append(f"a voltage residual of {rms:.3g} (floor {floor:.3g})")
        message = f"the {platform} fixed-point model leaves " + " and ".join(left)
    constants = {f"{n}.{f}": (int(np.asarray(getattr(chip.nodes[n], f)).ravel()[0]),
                              int(np.asarray(getattr(g.nodes[n], f)).ravel()[0]))
                 for n, f in knobs}
    pipeline = _pipeline(chip, node)
    report = FixedCharacterization(
        platform=platform if isinstance(platform, str) else platform.name, node=node,
        latency=pipeline + k, extra_latency=k, constants=constants, scale=float(scale),
        offset=float(offset), rms=rms,
        rms_outside_spikes=float(np.sqrt(np.mean(outside**2))) if outside.size else 0.0,
        span=span, floor=floor, spikes_reproduced=reproduced, missing=missing, extra=extra,
        verdict=verdict, message=message, seconds=time.perf_counter() - t0)
    return g, report


def _pipeline(chip: nirjax.Graph, node: str) -> int:
    """The chip's own steps from input to the node's voltage (buffered weight stages)."""
    steps = 0
    for src, dst in chip.edges:
        if dst == node:
            m = chip.nodes[src]
            steps = max(steps, int(bool(getattr(m, "buffered", False) or
                                        getattr(m, "delayed", False))))
    return steps


def run_fixed(args, graph, inputs, v, spikes, node) -> int:
    """`nirjax characterize ... --platform NAME` (see training/_cli_characterize.py)."""
    import json

    from nirjax import UsageError

    if args.out:
        raise UsageError("--out: with --platform the calibrated model is the chip's integer "
                         "constants, not a NIR graph; write them with --json.")
    if inputs.shape[1] != 1 or v.shape[1] != 1:
        raise UsageError("--platform: expected one input column and one recorded neuron.")
    _, report = characterize_fixed(graph, args.platform, inputs=inputs, v=v[:, 0],
                                   spikes=spikes[:, 0], node=node)
    print(report.summary())
    if args.json:
        with nirjax.atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report.row(), f, indent=1)
        print(f"wrote {args.json}")
    if not report.explained:
        print(f"error: the {args.platform} fixed-point model cannot explain {args.recording}: "
              f"{report.message}")
        return 3
    return 0
