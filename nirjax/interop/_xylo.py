"""Xylo (SYNS61201) through Rockpool 3.1.0: a chip-exact nirjax graph to Rockpool's network, its
Xylo mapper, and the integer hardware specification.

    spec = nirjax.interop.to_xylo(nir.read("model.nir"))   # quantized for "xylo"

1. `to_rockpool` writes the graph in Rockpool's NIR encoding and
   `rockpool.nn.modules.torch.nir.from_nir` builds the `LIFTorch` network (output neurons
   trained with `spikes_per_step="single"`, what Xylo's output neurons do, are given Rockpool's
   multi-spike rule for this step only: the mapper's specification has no per-step limit);
2. Rockpool's own design-rule check and mapper (`rockpool/devices/xylo/syns61201/
   xylo_mapper.py`, `mapper`) allocate the hidden and output neurons and return the
   specification (float weights, thresholds, dash = log2(tau / dt));
3. every weight and threshold is divided by the scale `nirjax.targets.quantize` recorded for
   the layer feeding that neuron: the result must be integers (int8 weights, int16
   thresholds) and whole dashes, else a ValueError names the array.

`config_from_specification` (`xylo_samna.py:50`) builds a samna configuration object, so it
needs samna, which nirjax never installs or imports; `to_xylo` returns the integer
specification that is its input. Rockpool's `rockpool.devices.xylo` package imports samna
unconditionally for other Xylo versions (`syns65302/afe_samna_pdm.py:6`); when that import
fails, the pure-Python modules `xylo_graph_modules` and `xylo_mapper` are loaded from their
files without running that package's `__init__` (they do not use samna).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any

import nir
import numpy as np

from .._graph import Graph
from .._import import from_nir
from ..targets import QUANTIZATION_KEY
from ..targets._view import quantization
from ._common import _map_nodes, _replace, _walk
from ._rockpool import to_rockpool


def xylo_mapper_module():
    """Rockpool's `rockpool.devices.xylo.syns61201.xylo_mapper` (see the module docstring for
    how it is loaded without samna)."""
    name = "rockpool.devices.xylo.syns61201.xylo_mapper"
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if "samna" not in str(e):
            raise
    import rockpool.devices as devices

    base = os.path.join(os.path.dirname(devices.__file__), "xylo")
    for pkg, path in (("rockpool.devices.xylo", base),
                      ("rockpool.devices.xylo.syns61201", os.path.join(base, "syns61201"))):
        stale = sys.modules.get(pkg)
        if stale is None or not hasattr(stale, "__path__"):
            module = types.ModuleType(pkg)
            module.__path__ = [path]
            sys.modules[pkg] = module
    return importlib.import_module(name)


def _integers(name: str, values: np.ndarray, scale: np.ndarray, lo: int, hi: int) -> np.ndarray:
    x = np.asarray(values, np.float64) / scale
    q = np.round(x)
    if x.size and (np.max(np.abs(x - q)) > 1e-3 or q.min() < lo or q.max() > hi):
        raise ValueError(
            f"to_xylo: {name} is not integers in [{lo}, {hi}] at the recorded scales (worst "
            f"{float(np.max(np.abs(x - q))):.3g} off a step, range [{q.min()}, {q.max()}]); "
            "quantize the graph with nirjax.targets.quantize(graph, 'xylo') first")
    return q.astype(np.int64)


def _chip_taus(encoded: nir.NIRGraph, graph: nir.NIRGraph) -> nir.NIRGraph:
    """Rockpool's mapper reads `dash = log2(tau / dt)` from a module's tau
    (`xylo_graph_modules.py:71-72`), while `to_rockpool` encodes tau for Rockpool's exponential
    decay. The chip's `v -= v >> dash` is the Euler step with `tau = dt 2**dash`, the graph's
    own tau: give the module that tau (and `r = tau / dt - 1`, from which Rockpool's importer
    reads dt) so the mapper yields the graph's dash."""
    original = dict(_walk(graph))
    dt = float(from_nir(graph).options.dt)

    def fn(path, node):
        if isinstance(node, nir.CubaLIF) and isinstance(original.get(path), nir.CubaLIF):
            src = original[path]
            f = np.asarray(node.tau_mem).dtype
            return _replace(node, tau_mem=np.asarray(src.tau_mem, f),
                            tau_syn=np.asarray(src.tau_syn, f),
                            r=(np.asarray(src.tau_mem, np.float64) / dt - 1).astype(f))
        return node

    return _map_nodes(encoded, fn)


def to_xylo(graph: nir.NIRGraph | Graph | str | os.PathLike) -> dict[str, Any]:
    """The Xylo hardware specification of a graph quantized for `"xylo"`: Rockpool's mapper
    output with integer `weights_in`, `weights_rec`, `weights_out` (int8), `threshold`,
    `threshold_out` (int16) and `dash_*` (bit shifts), plus `"mapped_graph"`, Rockpool's graph.

    Raises if Rockpool is not installed, if Rockpool's design-rule check fails (its
    `DRCError`), or if a value is not exactly an integer of the chip's format."""
    from rockpool.graph import GenericNeurons, LinearWeights, find_modules_of_subclass
    from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir

    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if isinstance(graph, Graph):
        raise TypeError("to_xylo: pass the nir.NIRGraph from nirjax.targets.quantize (or its "
                        ".nir file); a nirjax.Graph does not carry the quantization records")
    records = {k: quantization(n) for k, n in graph.nodes.items()}
    weight_scales = {k: r["weight"]["scale"] for k, r in records.items() if "weight" in r}
    if not weight_scales:
        raise ValueError(f"to_xylo: no node carries a {QUANTIZATION_KEY!r} record; quantize "
                         "the graph with nirjax.targets.quantize(graph, 'xylo') first")
    # Xylo's output neurons spike at most once per step (xylosim; nirjax/_fixed_xylo.py), so
    # a readout trained with spikes_per_step="single" (training.target_options) is what the
    # chip runs; Rockpool's LIFTorch network is built with its own multi-spike rule only to
    # feed the mapper, which does not encode a per-step spike limit.
    outputs = {e[0] for e in graph.edges if isinstance(graph.nodes.get(e[1]), nir.Output)}
    multi = {k: {"spikes_per_step": "multi"} for k in outputs
             if isinstance(graph.nodes.get(k), nir.CubaLIF)}
    net = rockpool_from_nir(_chip_taus(to_rockpool(from_nir(graph, node_options=multi)), graph))
    mapped = net.as_graph()
    spec = xylo_mapper_module().mapper(mapped)
    # the scale of each neuron: that of the weights feeding it (matched by their values)
    n_hidden = len(spec["threshold"])
    s_hidden, s_out = np.full(n_hidden, np.nan), np.full(len(spec["threshold_out"]), np.nan)
    for w in find_modules_of_subclass(mapped, LinearWeights):
        values = np.asarray(w.weights, np.float64)
        match = [k for k in weight_scales
                 if np.shape(graph.nodes[k].weight)[::-1] == values.shape
                 and np.allclose(np.asarray(graph.nodes[k].weight, np.float64).T, values)]
        if not match:
            continue
        for node in w.output_nodes:
            for sink in node.sink_modules:
                if isinstance(sink, GenericNeurons) and getattr(sink, "hw_ids", None):
                    ids = np.asarray(sink.hw_ids)
                    hidden = ids < 1000  # the mapper numbers output neurons from 1000
                    s_hidden[ids[hidden]] = weight_scales[match[0]]
                    s_out[ids[~hidden] - 1000] = weight_scales[match[0]]
    if np.isnan(s_hidden).any() or np.isnan(s_out).any():
        raise ValueError("to_xylo: could not match every mapped neuron to a quantized weight "
                         "node of the graph")
    out = dict(spec)
    w_in = np.asarray(spec["weights_in"])
    out["weights_in"] = _integers("weights_in", w_in, s_hidden.reshape(
        (1, -1) + (1,) * (w_in.ndim - 2)), -128, 127)
    w_rec = np.asarray(spec["weights_rec"])
    out["weights_rec"] = _integers("weights_rec", w_rec, s_hidden.reshape(
        (1, -1) + (1,) * (w_rec.ndim - 2)), -128, 127)
    out["weights_out"] = _integers("weights_out", spec["weights_out"], s_out[None, :], -128, 127)
    out["threshold"] = _integers("threshold", spec["threshold"], s_hidden, -(2**15), 2**15 - 1)
    out["threshold_out"] = _integers("threshold_out", spec["threshold_out"], s_out,
                                     -(2**15), 2**15 - 1)
    for k in ("dash_mem", "dash_mem_out", "dash_syn", "dash_syn_2", "dash_syn_out"):
        d = np.asarray(spec[k], np.float64)
        if k == "dash_syn_2" and not np.any(d):
            out[k] = d.astype(np.int64)
            continue
        out[k] = _integers(k, d, np.ones(1), 0, 255)
    return out
