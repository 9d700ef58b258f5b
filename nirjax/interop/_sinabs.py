"""Sinabs 3.1.3: the explicit corrections (see `nirjax.interop` and docs/interop.md).

Sinabs steps time in units of one step: a layer's `tau_mem` is in steps and its decay is
`alpha = exp(-1 / tau_mem)`. Its neurons (`sinabs/layers/functional/lif.py`,
`lif_forward_single`):

    i = x                                  (no synapse: tau_syn=None)
    v <- alpha v + (1 - alpha) i           (norm_input=True, LIF's default)
    v <- alpha v + i                       (norm_input=False; IAF: alpha = 1; ExpLeak's default)
    z = spike_fn(v, thr)                   MultiSpike (default): (v > 0) trunc(v / thr);
                                           SingleSpike: [v - thr >= 0]
    v <- reset_fn(z, v)                    MembraneSubtract (default): v - z thr;
                                           MembraneReset(0): v (z == 0)

In NIR terms that is the exact discretization of `tau dv/dt = -v + r I` with
`tau = tau_mem dt`, a held current, `r = 1` (norm_input=True) or `r = 1 / (1 - alpha)`
(norm_input=False); an IF with an impulse input (`v <- v + r x`, `r = 1`); `v_reset = 0`;
`threshold_comparison="greater_equal"`; `spikes_per_step="multi"` with `reset="subtract"`.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from .._graph import Graph
from .._import import from_nir
from .._paths import walk
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
    rescale_time,
)

SPIKE_FNS = ("multi", "single")
RESET_FNS = ("subtract", "reset")


def sinabs_options(spike_fn: str = "multi", reset_fn: str = "subtract") -> dict:
    """The `from_nir` options of Sinabs's neurons: exact steps of a held current, an impulse
    input for IF (`IAF`: `v <- v + x`), `v >= thr`, and `spike_fn` (`"multi"`: Sinabs's default
    `MultiSpike`, `"single"`: `SingleSpike`) with `reset_fn` (`"subtract"`: `MembraneSubtract`,
    Sinabs's default; `"reset"`: `MembraneReset(reset_value=0)`). `MultiSpike` with
    `MembraneReset` (several spikes, then one reset to 0) has no NIR equivalent and raises."""
    if spike_fn not in SPIKE_FNS or reset_fn not in RESET_FNS:
        raise ValueError(
            f"sinabs_options: spike_fn must be one of {list(SPIKE_FNS)} and reset_fn one of "
            f"{list(RESET_FNS)}, got {spike_fn!r}, {reset_fn!r}."
        )
    if spike_fn == "multi" and reset_fn == "reset":
        raise NotImplementedError(
            "sinabs_options: MultiSpike with MembraneReset emits floor(v / thr) spikes and then "
            "resets v to 0, which no nirjax option expresses (multi-spike neurons subtract). "
            "Use SingleSpike with MembraneReset, or MultiSpike with MembraneSubtract."
        )
    return dict(discretization="exact", input_mode="current",
                reset="subtract" if reset_fn == "subtract" else "value",
                spikes_per_step=spike_fn, threshold_comparison="greater_equal",
                spike_order="after_input")


def fix_sinabs_export(graph: nir.NIRGraph | Graph, *, dt: float = 1.0,
                      norm_input: bool | None = None) -> nir.NIRGraph:
    r"""Correct a graph written by `sinabs.nir.to_nir` (Sinabs 3.1.3), explicitly:

    1. **r is always written as 1** (`sinabs/nir.py:166-177`), whatever `norm_input` was. With
       `norm_input=False` (`v <- alpha v + x`) NIR's exact step needs `r = 1 / (1 - alpha)`,
       which is set for every LIF and LI. `norm_input=None` takes Sinabs's defaults: True for
       `LIF`, False for `ExpLeak` (LI). The exporter does not record it: pass what the layers
       used.
    2. **Time in steps**: `tau` is Sinabs's `tau_mem` in steps; it is multiplied by `dt`
       (seconds per step; the default 1 keeps the numbers as written, exactly).
    3. `v_reset` is not written (NIR fills 0, which is what `MembraneSubtract` and
       `MembraneReset(0)` do); torch tensors are copied to numpy.
    """
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"fix_sinabs_export: dt must be > 0 seconds per step, got {dt!r}.")
    graph = as_nir_graph(graph, "fix_sinabs_export")

    def fn(path, node):
        changes = {f: _array(getattr(node, f)) for f in _NODE_FIELDS
                   if getattr(node, f, None) is not None}
        if isinstance(node, (nir.LIF, nir.LI)):
            norm = (isinstance(node, nir.LIF)) if norm_input is None else bool(norm_input)
            tau = np.asarray(changes["tau"])
            if not norm:
                alpha = np.exp(-1.0 / tau.astype(np.float64))
                changes["r"] = (1.0 / (1.0 - alpha)).astype(tau.dtype)
            else:
                changes["r"] = np.ones_like(tau)
        return _replace(node, **changes) if changes else node

    fixed = _map_nodes(graph, fn)
    return rescale_time(fixed, dt) if dt != 1.0 else fixed


def from_sinabs(graph: nir.NIRGraph | Graph, *, dt: float = 1.0, norm_input: bool | None = None,
                spike_fn: str = "multi", reset_fn: str = "subtract", **kwargs) -> Graph:
    """Import a graph written by `sinabs.nir.to_nir`: `fix_sinabs_export`, then `from_nir` with
    `sinabs_options(spike_fn, reset_fn)` (IF nodes take an impulse input). Other keyword
    arguments go to `from_nir`. The layers must not clip the membrane (`min_v_mem=None`,
    Sinabs's default for its own layers): the exporter does not record a clip."""
    fixed = fix_sinabs_export(graph, dt=dt, norm_input=norm_input)
    options = sinabs_options(spike_fn, reset_fn)
    node_options = {p: {"input_mode": "impulse"} for p, n in _walk(fixed) if isinstance(n, nir.IF)}
    for k, v in dict(kwargs.pop("node_options", None) or {}).items():
        node_options[k] = {**node_options.get(k, {}), **v}
    return from_nir(fixed, dt=float(dt), **options, node_options=node_options, **kwargs)


def to_sinabs(model: Graph | nir.NIRGraph) -> nir.NIRGraph:
    """Export a nirjax graph for `sinabs.nir.from_nir(graph, batch_size=...)`, or say why it
    cannot be; then call `fix_sinabs_import` on the module Sinabs built.

    Sinabs 3.1.3's importer (`sinabs/nir.py:25-120`) builds `IAFSqueeze` for an IF and
    `LIFSqueeze(norm_input=False)` for a LIF, both with `MultiSpike` and `MembraneSubtract`,
    ignoring `r` and `v_reset`, reading `tau` in steps, and gives IF a clip
    `min_v_mem = -v_threshold` (undone by `fix_sinabs_import`). It returns no module for a
    `Linear` (written here as an `Affine` with a zero bias), a CubaLIF, CubaLI, I, Delay,
    Threshold or Scale (refused here: the peer would drop them silently), and requires LI's
    `r = 1` while stepping `v <- alpha v + x` (refused: not NIR's LI). The nirjax graph must run
    Sinabs's semantics: `reset="subtract"`, `spikes_per_step="multi"` (or "single", set by
    `fix_sinabs_import`), `threshold_comparison="greater_equal"`, `v_reset = 0`; IF with
    `input_mode="impulse"` and `r = 1`; LIF with `discretization="exact"`, a held current,
    `v_leak = 0` and `r = 1 / (1 - exp(-dt / tau))`. Time constants are divided by dt (steps).
    """
    model = as_model(model, "to_sinabs")
    for path, module in _named_modules(model):
        options = getattr(module, "options", None)
        kind = type(module).__name__
        if options is None or not getattr(module, "spiking", False):
            continue
        _require(options.dt == model.options.dt, path, "Sinabs runs one step for the graph.")
        _require(options.reset == "subtract" or options.spikes_per_step == "single", path,
                 "Sinabs's importer subtracts the threshold (MembraneSubtract): use "
                 "reset='subtract' (or spikes_per_step='single' and fix_sinabs_import).")
        _require(options.threshold_comparison == "greater_equal", path,
                 "Sinabs spikes at v >= v_threshold: use threshold_comparison='greater_equal'.")
        _require(options.spike_order == "after_input", path,
                 "Sinabs decides the spike after the step's input (spike_order='after_input').")
        if kind == "IF":
            _require(options.input_mode == "impulse", path,
                     "Sinabs's IAF adds x per step: use input_mode='impulse' with r = 1.")
        elif kind == "LIF":
            _require(options.discretization == "exact", path,
                     "Sinabs's LIF decays by exp(-dt / tau): use discretization='exact'.")
            _require(options.input_mode == "current", path,
                     "Sinabs's LIF reads a held current: use input_mode='current'.")
    dt = model.options.dt
    graph = rescale_time(as_nir_graph(model, "to_sinabs"), 1.0 / dt)  # tau in steps

    def fn(path, node):
        if isinstance(node, nir.Linear):
            w = np.asarray(node.weight)
            return nir.Affine(weight=w, bias=np.zeros(w.shape[0], w.dtype))
        if isinstance(node, (nir.IF, nir.LIF)):
            _require(np.allclose(node.v_reset, 0), path,
                     "Sinabs's importer ignores v_reset (it subtracts v_threshold); it must be 0.")
        if isinstance(node, nir.IF):
            _require(np.allclose(node.r, 1), path, "Sinabs's importer ignores r; it must be 1.")
        if isinstance(node, nir.LIF):
            _require(np.allclose(node.v_leak, 0), path, "Sinabs's importer needs v_leak = 0.")
            alpha = np.exp(-1.0 / np.asarray(node.tau, np.float64))
            _require(np.allclose(np.asarray(node.r) * (1 - alpha), 1, rtol=1e-5), path,
                     "Sinabs's importer builds LIFSqueeze(norm_input=False), v <- alpha v + x, "
                     "so r must be 1 / (1 - exp(-dt / tau)).")
        if isinstance(node, nir.SumPool2d):
            _require(np.all(np.asarray(node.padding) == 0), path,
                     "Sinabs's importer ignores a SumPool2d's padding; it must be 0.")
        if isinstance(node, nir.LI):
            raise NotImplementedError(
                f"node {path!r}: Sinabs's importer requires LI's r = 1 but steps "
                "v <- alpha v + x (ExpLeakSqueeze(norm_input=False)), which is NIR's LI only "
                "with r = 1 / (1 - alpha); no LI can be imported exactly."
            )
        if isinstance(node, (nir.CubaLIF, nir.CubaLI, nir.I, nir.Delay, nir.Threshold,
                             nir.Scale, nir.Conv1d, nir.AvgPool2d)):
            raise NotImplementedError(
                f"node {path!r}: Sinabs 3.1.3's importer has no {type(node).__name__} (it "
                "returns no module, and the node would be dropped silently)."
            )
        return node

    for path, node in walk(graph):
        _require(not isinstance(node, nir.NIRGraph), path,
                 "Sinabs's importer builds no layer from a subgraph (a recurrent layer).")
    return _map_nodes(graph, fn)


def fix_sinabs_import(net: Any, model: Graph | nir.NIRGraph) -> Any:
    """Undo what `sinabs.nir.from_nir` adds to the module it builds from `to_sinabs(model)`:
    IF layers get `min_v_mem = -v_threshold` (`sinabs/nir.py:88`), a clip nirjax's graph does not
    have; it is removed. And each spiking layer takes the spike function of its nirjax node
    (`MultiSpike` or `SingleSpike`) and, for `reset="value"`, `MembraneReset()`. Modifies and
    returns `net` (a torch module; layers are matched by node name)."""
    from sinabs.activation import MembraneReset, MultiSpike, SingleSpike

    model = as_model(model, "fix_sinabs_import")
    layers = dict(net.named_modules())
    for path, module in _named_modules(model):
        if not getattr(module, "spiking", False):
            continue
        layer = layers.get(path.replace("/", "."))
        if layer is None:
            raise KeyError(f"fix_sinabs_import: the Sinabs module has no layer {path!r}.")
        layer.min_v_mem = None
        single = module.options.spikes_per_step == "single"
        layer.spike_fn = SingleSpike if single else MultiSpike
        if module.options.reset == "value":
            layer.reset_fn = MembraneReset()
    return net
