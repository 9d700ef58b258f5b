"""`for_peer`: turn a network with NIR's semantics (such as `nirjax train`'s) into the nearest
network a peer's importer runs exactly, as an explicit, documented change of the model.

A network built with NIR's discrete semantics (one spike per step at `v > v_threshold`, reset to
`v_reset`, forward Euler) cannot be imported by Sinabs, Rockpool or Spyx as it is: their neurons
are different models (see docs/interop.md). `for_peer(model, peer)` returns the model the peer
does run, with the same weights and time constants; train (or fine-tune) that model, and then
`to_<peer>` exports it and the peer reproduces it spike for spike. The changes, per peer:

- `"sinabs"` (LIF, IF): `reset="subtract"`, `spikes_per_step="multi"`,
  `threshold_comparison="greater_equal"`; a LIF gets `discretization="exact"` and
  `r = 1 / (1 - exp(-dt / tau))` (`LIFSqueeze(norm_input=False)`: `v <- e^{-dt/tau} v + x`,
  where the Euler LIF with `r = tau / dt` stepped `v <- (1 - dt / tau) v + x`); an IF gets
  `input_mode="impulse"` (it needs `r = 1`).
- `"rockpool"` (CubaLIF only; Rockpool's importer has no LIF): `input_mode="impulse"` with
  `w_in = tau_syn`, `cuba_order="current_first"`, Euler, `reset="subtract"`,
  `spikes_per_step="multi"`, `threshold_comparison="greater_equal"`. Where the Euler CubaLIF
  with `w_in = tau_syn / dt` stepped `I <- (1 - dt / tau_syn) I + x`, Rockpool's `LIFTorch`
  steps `I <- (1 - dt / tau_syn) (I + x)`: the step's input is decayed once.
- `"spyx"` (LIF): `reset="subtract"`, `spike_order="before_input"` (Spyx decides the spike on
  the state at the start of the step).

Anything else is refused with the reason (LI readouts: none of the three imports NIR's LI; use a
spiking readout). `v_leak` and `v_reset` must be 0 (the peers have neither).
"""

from __future__ import annotations

import nir
import numpy as np

from .._graph import Graph
from ._common import _array, _map_nodes, _replace, _require, as_model, as_nir_graph

PEERS = ("sinabs", "rockpool", "spyx")

_OPTIONS = {
    "sinabs": {"LIF": dict(discretization="exact", input_mode="current"),
               "IF": dict(input_mode="impulse"),
               "*": dict(reset="subtract", spikes_per_step="multi",
                         threshold_comparison="greater_equal", spike_order="after_input")},
    "rockpool": {"CubaLIF": dict(discretization="euler", input_mode="impulse",
                                 cuba_order="current_first", reset="subtract",
                                 spikes_per_step="multi", threshold_comparison="greater_equal",
                                 spike_order="after_input")},
    "spyx": {"LIF": dict(discretization="euler", input_mode="current", reset="subtract",
                         spikes_per_step="single", threshold_comparison="greater",
                         spike_order="before_input")},
}
_FIX = {"sinabs": "Sinabs imports LIF and IF",
        "rockpool": "Rockpool's importer builds LIFTorch from a CubaLIF only (nirjax train "
                    "--neuron cubalif; feedforward_snn(neuron='cubalif'))",
        "spyx": "use LIF neurons (Spyx's CuBaLIF lags one step: build it with from_spyx's "
                "Delay)"}


def for_peer(model: Graph | nir.NIRGraph, peer: str) -> Graph:
    """The nearest network `peer` (`"sinabs"`, `"rockpool"` or `"spyx"`) runs exactly: the same
    graph, weights and time constants, with that peer's neuron model (see the module docstring
    for each change). **Returns:** a nirjax `Graph`, ready for `to_<peer>` (and for training).
    """
    if peer not in PEERS:
        raise ValueError(f"for_peer: peer={peer!r} is not known; use one of {PEERS}.")
    model = as_model(model, "for_peer")
    dt = model.options.dt
    table = _OPTIONS[peer]
    graph = as_nir_graph(model, "for_peer")
    spiking = (nir.LIF, nir.IF, nir.CubaLIF)

    def fn(path, node):
        kind = type(node).__name__
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I)):
            raise NotImplementedError(
                f"node {path!r}: {peer} has no importer for NIR's {kind}; build the network "
                "with a spiking readout (nirjax train --readout lif; "
                "feedforward_snn(readout='lif'))."
            )
        if not isinstance(node, spiking):
            return node
        _require(kind in table, path, f"for_peer({peer!r}) does not take a {kind}: "
                 f"{_FIX[peer]}.")
        _require(np.allclose(_array(node.v_reset), 0), path,
                 f"{peer} subtracts the threshold from 0: v_reset must be 0.")
        if not isinstance(node, nir.IF):
            _require(np.allclose(_array(node.v_leak), 0), path,
                     f"{peer}'s importer has no v_leak: it must be 0.")
        if peer == "sinabs" and isinstance(node, nir.LIF):
            tau = np.asarray(_array(node.tau), np.float64)
            r = 1.0 / -np.expm1(-dt / tau)
            return _replace(node, r=r.astype(np.asarray(_array(node.r)).dtype))
        if peer == "sinabs" and isinstance(node, nir.IF):
            _require(np.allclose(_array(node.r), 1), path, "Sinabs's IAF adds x: r must be 1.")
        if peer == "rockpool":
            tau_syn = np.asarray(_array(node.tau_syn))
            return _replace(node, w_in=tau_syn.copy())
        return node

    new = as_model(_map_nodes(graph, fn), "for_peer")
    for path, module in new.walk():
        kind = type(module).__name__
        if kind in table:
            new = new.with_options(path, **{**table.get("*", {}), **table[kind]})
    return new
