r"""Networks built as NIR graphs, so that what trains is a `nirjax.Graph` that exports as is.

`feedforward_snn` builds

    input -> fc1 -> lif1 [-> fc2 -> lif2 ...] -> fc_out -> readout -> output

with `lifK` a `nir.LIF` or `nir.CubaLIF` (optionally with a recurrent `recK` Linear edge
`lifK -> recK -> lifK`), and the readout a `nir.LI` / `nir.CubaLI` (membrane readout) or
`nir.LIF` / `nir.CubaLIF` (spiking readout, read by spike count).

Parameters follow the discrete convention of snnTorch and the NIR paper: with dt and tau,
`r = tau / dt` (and `w_in = tau_syn / dt` for Cuba neurons), so under Euler the update is
$v_t = \beta v_{t-1} + x_t$ with $\beta = 1 - \Delta t/\tau$ (and likewise
$I_t = \alpha I_{t-1} + x_t$), `v_leak = 0`, `v_reset = 0`, `v_threshold = 1`.
"""

from __future__ import annotations

from collections.abc import Sequence

import nir
import numpy as np

import nirjax

from ._validate import check_number

__all__ = ["feedforward_snn", "NEURONS", "READOUTS"]

NEURONS = ("lif", "cubalif", "rlif", "rcubalif")
READOUTS = ("li", "lif")


def _affine(rng, n_in: int, n_out: int, gain: float, bias: bool = True) -> nir.Affine:
    bound = gain / np.sqrt(n_in)
    w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
    b = (
        rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
        if bias
        else np.zeros(n_out, np.float32)
    )
    return nir.Affine(weight=w, bias=b)


def _neuron(kind: str, n: int, dt: float, tau_mem: float, tau_syn: float, spiking: bool):
    full = lambda v: np.full((n,), v, np.float32)  # noqa: E731
    if kind in ("lif", "rlif", "li"):
        if spiking:
            return nir.LIF(
                tau=full(tau_mem),
                r=full(tau_mem / dt),
                v_leak=full(0.0),
                v_threshold=full(1.0),
                v_reset=full(0.0),
            )
        return nir.LI(tau=full(tau_mem), r=full(tau_mem / dt), v_leak=full(0.0))
    if spiking:
        return nir.CubaLIF(
            tau_syn=full(tau_syn),
            tau_mem=full(tau_mem),
            r=full(tau_mem / dt),
            v_leak=full(0.0),
            v_threshold=full(1.0),
            v_reset=full(0.0),
            w_in=full(tau_syn / dt),
        )
    return nir.CubaLI(
        tau_syn=full(tau_syn),
        tau_mem=full(tau_mem),
        r=full(tau_mem / dt),
        v_leak=full(0.0),
        w_in=full(tau_syn / dt),
    )


def feedforward_snn(
    n_inputs: int,
    n_outputs: int,
    *,
    hidden: Sequence[int] = (128,),
    neuron: str = "lif",
    readout: str = "li",
    dt: float = 1e-4,
    tau_mem: float = 1e-3,
    tau_syn: float = 5e-4,
    tau_readout: float | None = None,
    gain: float = 1.0,
    recurrent_gain: float = 0.5,
    seed: int = 0,
) -> nir.NIRGraph:
    """A layered spiking network as a `nir.NIRGraph` (import it with `nirjax.from_nir`).

    **Arguments:**

    - `n_inputs`, `n_outputs`: sizes of the input and of the readout (the classes).
    - `hidden`: sizes of the hidden layers.
    - `neuron`: `"lif"`, `"cubalif"`, or the recurrent `"rlif"`, `"rcubalif"` (each hidden layer
      gets a `Linear` recurrent weight `recK`).
    - `readout`: `"li"` (leaky integrator; CubaLI for Cuba networks; train with
      `cross_entropy_membrane`) or `"lif"` (spiking; train with `cross_entropy_counts`).
    - `dt`, `tau_mem`, `tau_syn`, `tau_readout` (default `tau_mem`): seconds.
    - `gain`: weights are uniform in `±gain / sqrt(fan_in)` (biases too); for Cuba neurons
      also times `dt / tau_syn`, which offsets the synaptic current's steady-state gain
      `w_in = tau_syn / dt`.
    - `recurrent_gain`: the same for recurrent weights (also times `dt / tau_syn` for Cuba).
    - `seed`: numpy seed of the initial weights.

    **Returns:** a `nir.NIRGraph` with nodes `input`, `fc1`, `lif1`, (`rec1`), ..., `fc_out`,
    `readout`, `output`.
    """
    if neuron not in NEURONS:
        raise ValueError(f"feedforward_snn: neuron={neuron!r} is not known; use one of {NEURONS}")
    if readout not in READOUTS:
        raise ValueError(
            f"feedforward_snn: readout={readout!r} is not known; use one of {READOUTS}"
        )
    hidden = [int(h) for h in hidden]
    if any(h < 1 for h in hidden) or n_inputs < 1 or n_outputs < 1:
        raise ValueError(
            f"feedforward_snn: sizes must be >= 1, received n_inputs={n_inputs}, "
            f"hidden={hidden}, n_outputs={n_outputs}"
        )
    for name, value in (("dt", dt), ("tau_mem", tau_mem), ("tau_syn", tau_syn),
                        ("tau_readout", tau_readout)):
        check_number("feedforward_snn", name, value, low=0, low_open=True,
                     optional=name == "tau_readout")
    rng = np.random.default_rng(seed)
    cuba = neuron in ("cubalif", "rcubalif")
    if cuba:
        gain, recurrent_gain = gain * dt / tau_syn, recurrent_gain * dt / tau_syn
    recurrent = neuron.startswith("r")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([n_inputs]))}
    edges = []
    prev, width = "input", n_inputs
    for k, h in enumerate(hidden, start=1):
        fc, lif = f"fc{k}", f"lif{k}"
        nodes[fc] = _affine(rng, width, h, gain)
        nodes[lif] = _neuron(neuron, h, dt, tau_mem, tau_syn, spiking=True)
        edges += [(prev, fc), (fc, lif)]
        if recurrent:
            bound = recurrent_gain / np.sqrt(h)
            nodes[f"rec{k}"] = nir.Linear(
                weight=rng.uniform(-bound, bound, (h, h)).astype(np.float32)
            )
            edges += [(lif, f"rec{k}"), (f"rec{k}", lif)]
        prev, width = lif, h
    nodes["fc_out"] = _affine(rng, width, n_outputs, gain)
    nodes["readout"] = _neuron(
        "cubalif" if cuba else "lif",
        n_outputs,
        dt,
        tau_readout or tau_mem,
        tau_syn,
        spiking=readout == "lif",
    )
    nodes["output"] = nir.Output(output_type=np.array([n_outputs]))
    edges += [(prev, "fc_out"), ("fc_out", "readout"), ("readout", "output")]
    metadata = {nirjax.Options.metadata_key("dt"): float(dt),
                "created_by": "training.feedforward_snn"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)
