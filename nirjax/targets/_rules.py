"""Rule factories: each returns a `Rule` (a check plus the source it cites) that a profile
lists. A user-defined profile is built from the same pieces, or from any function
`(view, target) -> iterable of Violation`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import nir
import numpy as np

from ._target import QUANTIZATION_KEY, NumberFormat, Rule, Target, Violation, on_grid
from ._view import SPIKING, WEIGHTS, GraphView

__all__ = [
    "node_types", "max_channels", "max_neurons", "field_format", "no_bias", "one_dt",
    "outputs_from_neurons", "neuron_inputs_are_weights", "inputs_into_weights",
    "no_consecutive_weights", "outputs_not_recurrent", "min_neuron_layers", "decay_shift",
    "decay_12bit", "unit_input_gain", "zero_leak", "reset", "homogeneous", "square_kernels",
    "max_layers", "layers_fit_cores", "not_after", "no_self_loops",
]


def _name(t) -> str:
    return t.__name__


def _rule(name: str, description: str, source: str):
    def wrap(fn):
        return Rule(name, description, source, fn)
    return wrap


def node_types(allowed: Sequence[type], source: str, name: str = "node_types") -> Rule:
    """Every node is one of `allowed` NIR types."""
    names = ", ".join(_name(t) for t in allowed)

    @_rule(name, f"nodes are {names}", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k, n in view.nodes.items():
            if not isinstance(n, tuple(allowed)):
                yield Violation(name, k, None, names, type(n).__name__,
                                f"{target.name} has no {type(n).__name__}: rebuild the network "
                                f"from {names}")
    return check


def max_channels(kind: str, limit: int, source: str, name: str | None = None) -> Rule:
    """At most `limit` input (kind `"input"`) or output (`"output"`) channels in total."""
    name = name or f"max_{kind}s"

    @_rule(name, f"at most {limit} {kind} channels", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        ports = view.inputs if kind == "input" else view.outputs
        total = sum(view.width(p) for p in ports)
        if total > limit:
            yield Violation(name, ports[0] if len(ports) == 1 else ",".join(ports), None,
                            f"at most {limit} {kind} channels", f"{total}",
                            f"reduce the {kind} to {limit} channels (e.g. fewer features or "
                            "classes)")
    return check


def _output_neurons(view: GraphView) -> set[str]:
    return {p for o in view.outputs for p in view.preds(o) if p in view.neurons}


def max_neurons(limit: int, source: str, which: str = "hidden", name: str | None = None) -> Rule:
    """At most `limit` neurons: `which="hidden"` counts neurons that do not feed an Output,
    `"output"` those that do, `"all"` every neuron."""
    name = name or f"max_{which}_neurons"

    @_rule(name, f"at most {limit} {which} neurons", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        outs = _output_neurons(view)
        chosen = [k for k in view.neurons
                  if which == "all" or (k in outs) == (which == "output")]
        total = sum(view.size(k) for k in chosen)
        if total > limit:
            yield Violation(name, ",".join(chosen), None, f"at most {limit} {which} neurons",
                            f"{total}", f"make the {which} layers smaller ({limit} in all)")
    return check


def _record_scale(view: GraphView, node: str, field: str) -> float | None:
    rec = view.quantization(node).get(field)
    return None if rec is None else float(rec["scale"])


def _shared_scale(view: GraphView, node: str) -> tuple[float | None, str]:
    """The scale of the weights that a node's `share` fields are counted in: its own weight's
    (a weight node's bias) or that of the weight nodes feeding it (a neuron's threshold)."""
    if isinstance(view.nodes[node], WEIGHTS):
        return _record_scale(view, node, "weight"), node
    feeding = view.feeding_weights(node)
    scales = {_record_scale(view, w, "weight") for w in feeding}
    if len(scales) == 1:
        return scales.pop(), ",".join(feeding)
    return None, ",".join(feeding)


def field_format(field: str, source: str, name: str | None = None) -> Rule:
    """Every `field` array is exactly representable in `target.formats[field]`: an integer in
    the format's range times a scale the chip realizes, recorded in the node's
    `nirjax.quantization` metadata (no record is needed for a fixed-scale format, which uses
    its unit, nor for integers in range when a scale of 1 is allowed)."""
    name = name or f"{field}_format"

    @_rule(name, f"{field} values are integers of the chip's format times a recorded scale",
           source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        fmt: NumberFormat = target.formats[field]
        for k, n in view.nodes.items():
            values = getattr(n, field, None)
            if values is None or isinstance(n, (nir.Input, nir.Output)):
                continue
            if field == "bias" and not np.any(np.asarray(values)):
                continue
            if fmt.share:
                s, src = _shared_scale(view, k)
                if s is None:
                    s = 1.0 if not src or not any(
                        view.quantization(w) for w in src.split(",") if w) else None
                if s is None:
                    yield Violation(name, k, field, fmt.describe(),
                                    f"the weights feeding it ({src}) have no common recorded "
                                    "scale", "quantize the graph with nirjax.targets.quantize")
                    continue
            else:
                s = _record_scale(view, k, field)
                if s is None:
                    s = fmt.unit if fmt.scale == "fixed" else 1.0
                    if not fmt.scale_allowed(s):
                        yield Violation(name, k, field, fmt.describe(),
                                        f"no {QUANTIZATION_KEY} record for {field!r}",
                                        "quantize the graph with nirjax.targets.quantize or "
                                        f"train with --target {target.name}")
                        continue
                elif not fmt.scale_allowed(s):
                    yield Violation(name, k, field, fmt.describe(), f"scale {s:g}",
                                    "quantize the graph with nirjax.targets.quantize")
                    continue
            ok, detail = on_grid(values, s, fmt)
            if not ok:
                recorded = view.quantization(k).get(field) is not None or fmt.share
                yield Violation(
                    name, k, field, fmt.describe(),
                    f"{detail} at scale {s:g}" + ("" if recorded else " (no quantization "
                                                                          "record)"),
                    f"quantize the graph with nirjax.targets.quantize(graph, {target.name!r}) "
                    f"or train with --target {target.name}")
    return check


def no_bias(source: str, name: str = "no_bias") -> Rule:
    """Weight nodes carry no (nonzero) bias."""

    @_rule(name, "weights have no biases", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.weights:
            b = getattr(view.nodes[k], "bias", None)
            if b is not None and np.any(np.asarray(b) != 0):
                yield Violation(name, k, "bias", "no bias (zero)",
                                f"max |bias| = {float(np.max(np.abs(b))):.4g}",
                                "use Linear layers (train with --target, which trains no bias)")
    return check


def one_dt(source: str, name: str = "one_dt") -> Rule:
    """The graph records one time step (`nirjax_dt`), the same for every node."""

    @_rule(name, "one time step dt for the whole graph, recorded", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        if view.dt is None:
            yield Violation(name, "graph", "dt", "a recorded dt", "none",
                            "write the graph with nirjax.write (records nirjax_dt) or pass "
                            "--dt")
            return
        for k in view.neurons:
            dt = view.options[k].get("dt")
            if dt is not None and not math.isclose(dt, view.dt, rel_tol=1e-9):
                yield Violation(name, k, "dt", f"dt = {view.dt:g} (the graph's)", f"{dt:g}",
                                "use one dt for every node")
    return check


def outputs_from_neurons(source: str, name: str = "outputs_from_neurons") -> Rule:
    """Every Output is fed directly by spiking neurons."""

    @_rule(name, "outputs come directly from spiking neurons", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for o in view.outputs:
            for p in view.preds(o):
                if not isinstance(view.nodes[p], SPIKING):
                    yield Violation(name, o, None, "a spiking neuron before the Output",
                                    f"{p} ({type(view.nodes[p]).__name__})",
                                    "end the network with a spiking neuron layer")
    return check


def neuron_inputs_are_weights(source: str, name: str = "neuron_inputs_are_weights") -> Rule:
    """Every neuron receives its input only from weight nodes."""

    @_rule(name, "neurons receive input only through weights", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.neurons:
            for p in view.preds(k):
                if not isinstance(view.nodes[p], WEIGHTS):
                    yield Violation(name, k, None, "inputs from weight nodes",
                                    f"{p} ({type(view.nodes[p]).__name__})",
                                    f"put a Linear between {p} and {k}")
    return check


def inputs_into_weights(source: str, name: str = "inputs_into_weights") -> Rule:
    """Every Input feeds weight nodes first."""

    @_rule(name, "the network input goes first through weights", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for i in view.inputs:
            for s in view.succs(i):
                if not isinstance(view.nodes[s], WEIGHTS):
                    yield Violation(name, i, None, "a weight node after the Input",
                                    f"{s} ({type(view.nodes[s]).__name__})",
                                    f"put a Linear between {i} and {s}")
    return check


def no_consecutive_weights(source: str, name: str = "no_consecutive_weights") -> Rule:
    """No weight node feeds another weight node."""

    @_rule(name, "no two weight layers in a row", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.weights:
            for s in view.succs(k):
                if isinstance(view.nodes[s], WEIGHTS):
                    yield Violation(name, s, None, "a neuron layer between weight layers",
                                    f"fed by weights {k}",
                                    f"multiply {k} into {s}, or put neurons between them")
    return check


def outputs_not_recurrent(source: str, name: str = "outputs_not_recurrent") -> Rule:
    """Neurons that feed an Output are not on a cycle."""

    @_rule(name, "output neurons are not recurrent", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in sorted(_output_neurons(view)):
            if view.recurrent(k):
                yield Violation(name, k, None, "no recurrent connection", "on a cycle",
                                "remove the recurrent weights of the output layer")
    return check


def no_self_loops(source: str, name: str = "no_self_loops") -> Rule:
    """No edge from a node to itself."""

    @_rule(name, "no self-recurrent edges", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for a, b in view.edges:
            if a == b:
                yield Violation(name, a, None, "no edge (x, x)", f"edge ({a}, {a})",
                                "remove the self-loop")
    return check


def min_neuron_layers(n: int, source: str, name: str = "min_neuron_layers") -> Rule:
    """At least `n` neuron nodes (e.g. a hidden and an output layer)."""

    @_rule(name, f"at least {n} neuron layers", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        if len(view.neurons) < n:
            yield Violation(name, "graph", None, f"at least {n} neuron layers",
                            f"{len(view.neurons)}", "add a hidden layer")
    return check


_TAUS = {nir.LIF: ("tau",), nir.LI: ("tau",), nir.CubaLIF: ("tau_syn", "tau_mem"),
         nir.CubaLI: ("tau_syn", "tau_mem")}


def _taus(view: GraphView):
    for k in view.neurons:
        n = view.nodes[k]
        for f in _TAUS.get(type(n), ()):
            yield k, f, np.asarray(getattr(n, f), np.float64)


def decay_shift(source: str, name: str = "decay_shift") -> Rule:
    """Every time constant is `dt * 2**dash` with a whole `dash >= 1` (the state decays as
    `v -= v >> dash`; forward Euler with `tau = dt 2**dash` is exactly that)."""

    @_rule(name, "time constants are dt * 2**dash (decay by bit shift)", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        if view.dt is None:
            return
        for k, f, tau in _taus(view):
            dash = np.log2(tau / view.dt)
            bad = ~((np.abs(dash - np.round(dash)) < 1e-6) & (np.round(dash) >= 1))
            if np.any(bad):
                i = int(np.argmax(bad))
                yield Violation(name, k, f, "dt * 2**dash, dash = 1, 2, ...",
                                f"{float(tau.ravel()[i]):.6g} s = dt * 2**{dash.ravel()[i]:.3f}",
                                f"set {f} to dt * 2**round(log2({f}/dt)) (train with --target "
                                f"{target.name} does)")
    return check


def decay_12bit(source: str, name: str = "decay_12bit") -> Rule:
    """Every decay `d = int(dt / tau * 4095)` is a 12-bit number in 1..4095 (the NIR paper's
    Lava conversion), i.e. `dt <= tau <= 4095 dt`."""

    @_rule(name, "decays int(dt/tau*4095) fit 12 bits and are nonzero", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        if view.dt is None:
            return
        for k, f, tau in _taus(view):
            d = np.floor(view.dt / tau * 4095)
            bad = (d < 1) | (d > 4095)
            if np.any(bad):
                i = int(np.argmax(bad))
                yield Violation(name, k, f, "dt <= tau <= 4095 dt (decay 1..4095)",
                                f"{float(tau.ravel()[i]):.6g} s (decay {int(d.ravel()[i])})",
                                f"choose {f} within [{view.dt:g}, {4095 * view.dt:g}] s")
    return check


def unit_input_gain(source: str, name: str = "unit_input_gain") -> Rule:
    """The chip adds its input to the state unscaled. Under `input_mode="current"`: `r dt / tau
    = 1` (LIF), `w_in dt / tau_syn = 1` (CubaLIF), `r dt = 1` (IF); under `"impulse"`:
    `r / tau = 1`, `w_in / tau_syn = 1`, `r = 1`; and for CubaLIF `r dt / tau_mem = 1` (the
    current feeds v continuously)."""

    @_rule(name, "inputs enter the state with gain 1 (fold any gain into the weights)",
           source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.neurons:
            n, dt = view.nodes[k], view.dt
            impulse = view.options[k].get("input_mode") == "impulse"
            step = 1.0 if impulse else dt
            if isinstance(n, nir.IF):
                gains = {"r": np.asarray(n.r) * (1.0 if step is None else step)}
            elif dt is None:
                continue
            elif isinstance(n, (nir.LIF, nir.LI)):
                gains = {"r": np.asarray(n.r) * step / np.asarray(n.tau)}
            elif isinstance(n, (nir.CubaLIF, nir.CubaLI)):
                gains = {"w_in": np.asarray(n.w_in) * step / np.asarray(n.tau_syn),
                         "r": np.asarray(n.r) * dt / np.asarray(n.tau_mem)}
            else:
                continue
            for f, g in gains.items():
                if not np.allclose(g, 1.0, rtol=1e-5):
                    yield Violation(name, k, f, "input gain 1",
                                    f"gain {float(np.ravel(g)[0]):.6g}",
                                    f"set {f} so that the gain is 1 and scale the weights "
                                    "feeding the node by the old gain")
    return check


def zero_leak(source: str, name: str = "zero_leak") -> Rule:
    """`v_leak = 0` (the chip's state decays towards 0)."""

    @_rule(name, "v_leak = 0", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.neurons:
            v = getattr(view.nodes[k], "v_leak", None)
            if v is not None and np.any(np.asarray(v) != 0):
                yield Violation(name, k, "v_leak", "0", f"max |v_leak| = "
                                f"{float(np.max(np.abs(v))):.4g}",
                                "set v_leak to 0 (a constant drive is a bias on the chip)")
    return check


def reset(allowed: Sequence[str], source: str, name: str = "reset") -> Rule:
    """The reset is one the chip does: `"zero"` (reset="value" with v_reset = 0) and/or
    `"subtract"` (reset="subtract" with v_reset = 0)."""
    text = " or ".join({"zero": "to zero (reset='value', v_reset=0)",
                        "subtract": "by subtraction (reset='subtract', v_reset=0)"}[a]
                       for a in allowed)

    @_rule(name, f"reset {text}", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.neurons:
            n = view.nodes[k]
            if not isinstance(n, SPIKING):
                continue
            mode = view.options[k].get("reset", "value")
            kind = "zero" if mode == "value" else "subtract"
            v_reset = np.asarray(getattr(n, "v_reset", 0.0))
            if kind not in allowed:
                yield Violation(name, k, "reset", text, f"reset={mode!r}",
                                f"use reset={'subtract' if 'subtract' in allowed else 'value'}"
                                " (nirjax option, recorded in the metadata)")
            elif np.any(v_reset != 0):
                yield Violation(name, k, "v_reset", "0",
                                f"max |v_reset| = {float(np.max(np.abs(v_reset))):.4g}",
                                "set v_reset to 0 and shift the threshold by -v_reset")
    return check


def homogeneous(fields: Sequence[str], source: str, name: str = "homogeneous") -> Rule:
    """Each of `fields` has one value for all neurons of a node."""

    @_rule(name, f"{', '.join(fields)} are equal across the neurons of a node", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.neurons:
            for f in fields:
                v = getattr(view.nodes[k], f, None)
                if v is not None and np.size(v) > 1 and np.ptp(np.asarray(v)) != 0:
                    yield Violation(name, k, f, "one value per node",
                                    f"values in [{float(np.min(v)):.4g}, {float(np.max(v)):.4g}]",
                                    f"set {f} to one value for the node (or split the node)")
    return check


def square_kernels(source: str, name: str = "square_kernels") -> Rule:
    """Convolution kernels are square."""

    @_rule(name, "convolution kernels are square", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.of_type(nir.Conv2d):
            shape = np.shape(view.nodes[k].weight)
            if shape[-1] != shape[-2]:
                yield Violation(name, k, "weight", "a square kernel",
                                f"kernel {shape[-2]}x{shape[-1]}", "use a square kernel")
    return check


def _layers(view: GraphView) -> list[str]:
    return view.of_type(nir.Conv2d, nir.Linear, nir.Affine)


def max_layers(limit: int, source: str, name: str = "max_layers") -> Rule:
    """At most `limit` weight layers (one core each)."""

    @_rule(name, f"at most {limit} weight layers (cores)", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        layers = _layers(view)
        if len(layers) > limit:
            yield Violation(name, ",".join(layers), None, f"at most {limit} layers",
                            f"{len(layers)}", "merge or remove layers")
    return check


def _memory(view: GraphView, k: str) -> tuple[int, int, int]:
    """Kernel, neuron and bias memory of one layer as Sinabs computes them
    (`sinabs/backend/dynapcnn/dynapcnn_layer.py:239-244`): `c 2**(ceil log2(kh kw) + ceil
    log2 f)`, `f 2**(ceil log2 h + ceil log2 w)`, the number of biases. A Linear is a 1x1
    convolution on a 1x1 map."""
    n = view.nodes[k]
    w = np.asarray(n.weight)
    if w.ndim == 4:
        f, c, kh, kw = w.shape
        out = n.output_type.get("output") if isinstance(n.output_type, dict) else None
        h, wd = (int(out[-2]), int(out[-1])) if out is not None and len(out) >= 2 else (1, 1)
    else:
        f, c = w.shape
        kh = kw = h = wd = 1
    lg = lambda x: math.ceil(math.log2(x)) if x > 1 else 0  # noqa: E731
    kernel = c * 2 ** (lg(kh * kw) + lg(f))
    neuron = f * 2 ** (lg(h) + lg(wd))
    bias = f if getattr(n, "bias", None) is not None else 0
    return kernel, neuron, bias


def layers_fit_cores(cores: Sequence[tuple[int, int, int]], source: str,
                     name: str = "layers_fit_cores") -> Rule:
    """Every weight layer goes onto its own core whose kernel, neuron and bias memories hold
    it (a bipartite matching of layers to cores, as Sinabs' mapper searches)."""

    @_rule(name, "each layer fits a core's kernel, neuron and bias memory", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        layers = _layers(view)
        if len(layers) > len(cores):
            return  # max_layers reports it
        need = {k: _memory(view, k) for k in layers}
        fits = {k: [c for c, cap in enumerate(cores) if all(a <= b for a, b in zip(need[k], cap))]
                for k in layers}
        owner: dict[int, str] = {}

        def place(k, seen):
            for c in fits[k]:
                if c not in seen:
                    seen.add(c)
                    if c not in owner or place(owner[c], seen):
                        owner[c] = k
                        return True
            return False

        for k in layers:
            if not place(k, set()):
                big = max(cores, key=lambda cap: cap[0])
                yield Violation(name, k, "weight",
                                f"kernel <= {big[0]}, neuron <= {max(c[1] for c in cores)}, "
                                f"bias <= {max(c[2] for c in cores)} words on a free core",
                                f"kernel {need[k][0]}, neuron {need[k][1]}, bias {need[k][2]}",
                                "use fewer channels or a smaller kernel in this layer")
    return check


def not_after(node: type, before: type, source: str, name: str | None = None) -> Rule:
    """No `node` is fed by a `before` node."""
    name = name or f"no_{_name(node).lower()}_after_{_name(before).lower()}"

    @_rule(name, f"no {_name(node)} after a {_name(before)}", source)
    def check(view: GraphView, target: Target) -> Iterator[Violation]:
        for k in view.of_type(node):
            for p in view.preds(k):
                if isinstance(view.nodes[p], before):
                    yield Violation(name, k, None, f"no {_name(before)} before a {_name(node)}",
                                    f"fed by {p} ({_name(before)})",
                                    f"use another neuron model after {p}")
    return check

