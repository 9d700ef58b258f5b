r"""Quantization-aware training for a chip target: straight-through quantizers in the forward
pass, networks built to the target's constraints, and the export of a graph whose every
stored parameter is exactly representable on the chip.

In the forward pass each weight $w$ of a node (a group of nodes feeding one neuron, when the
neuron's threshold is counted in their units) becomes

$$\hat w = w + \mathrm{sg}\big(s\,\mathrm{clip}(\mathrm{round}(w / s), q_{min}, q_{max}) - w\big),
\qquad s = \mathrm{sg}\big(\mathrm{choose\_scale}(\max |w|)\big),$$

with $\mathrm{sg}$ the stop-gradient, so the loss sees the chip's values and the gradient
passes straight through to the float weights (the straight-through estimator). Biases and
thresholds that the chip stores as integers are quantized the same way, in the units the chip
counts them in. The scales are the ones `nirjax.targets.quantize` chooses, so exporting the
trained float weights with it gives exactly the values the last forward pass used.

The constraints that are not number formats (no biases, decays as bit shifts on Xylo, unit
input gains, the reset, the node types and sizes) are met by the network `target_network`
builds and are checked with `nirjax.check` before training starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax
from nirjax.targets import NumberFormat, Target, get_target

__all__ = ["fake_quantize", "target_network", "target_options", "target_trainable",
           "structural_violations"]

_WEIGHTS = (nirjax.Linear, nirjax.Affine, nirjax.Conv1d, nirjax.Conv2d)


def _ste(x: jax.Array, s: jax.Array, fmt: NumberFormat) -> jax.Array:
    q = jnp.clip(jnp.round(x / s), fmt.qmin, fmt.qmax) * s
    return x + jax.lax.stop_gradient(q - x)


def _feeding(graph: nirjax.Graph, name: str) -> list[str]:
    return [e.src for e in graph.plan.edges
            if e.dst == name and isinstance(graph.nodes[e.src], _WEIGHTS)]


def fake_quantize(graph: nirjax.Graph, target: str | Target) -> nirjax.Graph:
    """`graph` with its weights, biases and thresholds replaced by their straight-through
    quantized values for `target` (differentiable; use inside the loss). Top-level nodes
    only: a graph with nested subgraphs is an error."""
    target = get_target(target)
    if any(isinstance(m, nirjax.Graph) for m in graph.nodes.values()):
        raise NotImplementedError(
            "quantization-aware training reads a flat graph; inline the nested subgraphs")
    fw, fb, fth = (target.formats.get(k) for k in ("weight", "bias", "v_threshold"))
    scales: dict[str, jax.Array] = {}
    if fw is not None:
        groups, grouped = [], set()
        if fth is not None and fth.share:
            for name, m in graph.nodes.items():
                if isinstance(m, nirjax.Neuron):
                    g = [w for w in _feeding(graph, name) if w not in grouped]
                    if g:
                        groups.append(g)
                        grouped |= set(g)
        groups += [[k] for k, m in graph.nodes.items()
                   if isinstance(m, _WEIGHTS) and k not in grouped]
        for g in groups:
            peak = jnp.max(jnp.stack([jnp.max(jnp.abs(graph.nodes[w].weight)) for w in g]))
            s = jax.lax.stop_gradient(fw.choose_scale(peak))
            for w in g:
                scales[w] = s
                graph = eqx.tree_at(lambda t, w=w: t.nodes[w].weight, graph,
                                    _ste(graph.nodes[w].weight, s, fw))
    for name, m in list(graph.nodes.items()):
        if fb is not None and isinstance(m, _WEIGHTS) and getattr(m, "bias", None) is not None:
            s = scales.get(name, jnp.float32(1.0)) if fb.share else jax.lax.stop_gradient(
                fb.choose_scale(jnp.max(jnp.abs(m.bias))))
            graph = eqx.tree_at(lambda t, n=name: t.nodes[n].bias, graph, _ste(m.bias, s, fb))
        if fth is not None and isinstance(m, nirjax.Neuron) and hasattr(m, "v_threshold"):
            if fth.share:
                feed = {id(scales[w]): scales[w] for w in _feeding(graph, name) if w in scales}
                s = next(iter(feed.values())) if len(feed) == 1 else jnp.float32(1.0)
            else:
                s = jax.lax.stop_gradient(fth.choose_scale(jnp.max(jnp.abs(m.v_threshold))))
            graph = eqx.tree_at(lambda t, n=name: t.nodes[n].v_threshold, graph,
                                _ste(m.v_threshold, s, fth))
    return graph


def target_options(target: str | Target, outputs: Sequence[str] = ()) -> dict:
    """The `nirjax.from_nir` options that give the chip's dynamics: its reset and
    `target.options` (Xylo: Rockpool's LIFTorch reading, several spikes per step at `>=`,
    input events as impulses); IF inputs as impulses on Speck, whose neurons add each input
    event to v.

    `outputs`: the names of the neuron nodes that feed the graph's Output (`"readout"` in a
    `target_network`). On Xylo those emit at most one spike per step (its output neurons;
    `nirjax/_fixed_xylo.py`), so they get `spikes_per_step="single"` through `node_options`."""
    target = get_target(target)
    options = {"reset": target.reset, **target.options}
    if "IF" in target.neurons and len(target.neurons) == 1:
        options.setdefault("input_mode", "impulse")
    if outputs and target.name == "xylo":
        options["node_options"] = {k: {"spikes_per_step": "single"} for k in outputs}
    return options


def target_trainable(target: str | Target) -> tuple[str, ...]:
    """The fields that train for a target: the weights, and the biases where the chip has
    them."""
    return ("weight", "bias") if get_target(target).bias else ("weight",)


def target_network(target: str | Target, n_inputs: int, n_outputs: int, *,
                   hidden: Sequence[int] = (128,), dt: float = 1e-4, seed: int = 0,
                   gain: float = 1.0) -> nir.NIRGraph:
    """A layered network that meets `target`'s constraints, as a `nir.NIRGraph`:

    - weights as `Linear` (an `Affine` with a bias where the chip has biases);
    - the chip's first neuron model (`target.neurons[0]`) in every layer, the readout spiking
      (trained on spike counts);
    - time constants the chip realizes exactly: on Xylo (decay by bit shift) `tau_mem = 8 dt`,
      `tau_syn = 4 dt` (dash 3 and 2); elsewhere `tau_mem = 10 dt`, `tau_syn = 5 dt`; input
      gains 1 (`r = tau_mem / dt`, `w_in = tau_syn / dt`, or `w_in = tau_syn` when the target
      reads inputs as impulses), `v_leak = v_reset = 0`,
      `v_threshold = 1`;
    - weights uniform in `+-gain / sqrt(fan_in)` (times `dt / tau_syn` for CubaLIF, as
      `feedforward_snn`).
    """
    target = get_target(target)
    kind = target.neurons[0]
    tau_mem, tau_syn = ((8 * dt, 4 * dt) if target.decay == "shift" else (10 * dt, 5 * dt))
    rng = np.random.default_rng(seed)
    impulse = target_options(target).get("input_mode") == "impulse"
    w_in = tau_syn if impulse else tau_syn / dt  # input gain 1 under either reading
    full = lambda n, v: np.full((n,), v, np.float32)  # noqa: E731

    def neuron(n):
        if kind == "LIF":
            return nir.LIF(tau=full(n, tau_mem), r=full(n, tau_mem / dt), v_leak=full(n, 0.0),
                           v_threshold=full(n, 1.0), v_reset=full(n, 0.0))
        if kind == "CubaLIF":
            return nir.CubaLIF(tau_syn=full(n, tau_syn), tau_mem=full(n, tau_mem),
                               r=full(n, tau_mem / dt), v_leak=full(n, 0.0),
                               v_threshold=full(n, 1.0), v_reset=full(n, 0.0),
                               w_in=full(n, w_in))
        if kind == "IF":
            return nir.IF(r=full(n, 1.0), v_threshold=full(n, 1.0), v_reset=full(n, 0.0))
        raise NotImplementedError(f"target_network: no builder for {kind!r} neurons")

    if kind == "CubaLIF":  # offset the synaptic current's steady-state gain tau_syn / dt
        gain = gain * dt / tau_syn

    def weight(n_in, n_out):
        bound = gain / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        if target.bias:
            return nir.Affine(weight=w, bias=np.zeros(n_out, np.float32))
        return nir.Linear(weight=w)

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([n_inputs]))}
    edges, prev, width = [], "input", n_inputs
    sizes = [int(h) for h in hidden] + [n_outputs]
    for k, h in enumerate(sizes, start=1):
        last = k == len(sizes)
        fc, lif = ("fc_out", "readout") if last else (f"fc{k}", f"lif{k}")
        nodes[fc], nodes[lif] = weight(width, h), neuron(h)
        edges += [(prev, fc), (fc, lif)]
        prev, width = lif, h
    nodes["output"] = nir.Output(output_type=np.array([n_outputs]))
    edges.append((prev, "output"))
    metadata = {nirjax.Options.metadata_key("dt"): float(dt),
                "created_by": f"training.target_network({target.name!r})"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def structural_violations(graph: nirjax.Graph, target: str | Target) -> list:
    """The violations of `target`'s rules other than number formats (which quantization-aware
    training fixes): what must hold before training starts."""
    target = get_target(target)
    found = nirjax.check(nirjax.to_nir(graph), target)
    formats = {f"{f}_format" for f in target.formats}
    return [v for v in found if v.rule not in formats]
