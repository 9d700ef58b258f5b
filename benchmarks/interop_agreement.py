"""Spike agreement between nirjax and its peers (snnTorch, Norse, Sinabs, Rockpool, Spyx,
Nengo), in both directions.

For each peer and neuron type, a small network is built in one simulator, converted through NIR
with the peers' own converters (and the explicit corrections of `nirjax.interop`), and both
simulators run the same random input spikes. Agreement is the fraction of (step, sample,
neuron) entries whose output spike is identical; for LI (a voltage output) the fraction within
an absolute tolerance of 1e-5, and the largest difference.

    python benchmarks/interop_agreement.py --steps 500 --batch 16 --seeds 3
    # -> benchmarks/results/interop_agreement.json (~10 min on 2 shared cores)

Rows marked "(as written)" run the peer's graph without nirjax's correction (nirjax's
defaults), to measure each defect; the paper rows run the NIR paper's graphs against the peer
running the same file (Sinabs) or its recording (Rockpool, Nengo).

The same case functions drive `tests/test_interop.py` (with fewer steps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable

import numpy as np

LI_ATOL = 1e-5
CONFORMANCE = os.environ.get("NIRJAX_CONFORMANCE", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "conformance"))


# ------------------------------------------------------------------------------- simulation
def _torch_run(net, xs, stateful_call: bool):
    """Run a torch module over time: xs (T, B, ...) -> outputs (T, B, ...)."""
    import torch

    outs, state = [], None
    with torch.no_grad():
        for t in range(xs.shape[0]):
            if stateful_call:
                out, state = net(xs[t], state)
            else:
                out = net(xs[t])
            if isinstance(out, tuple):
                out = out[0]
            outs.append(out)
    return torch.stack(outs).numpy()


def _nirjax_run(graph, xs: np.ndarray, state=None) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    batch = jnp.asarray(np.swapaxes(xs, 0, 1))
    if state is None:
        ys = jax.vmap(graph)(batch)
    else:
        ys = jax.vmap(lambda x: graph.run(x, state).output)(batch)
    return np.swapaxes(np.asarray(ys), 0, 1)


def _inputs(shape, steps, batch, seed, p=0.3):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.rand((steps, batch) + tuple(shape), generator=g) < p).float()


def _reset_snntorch(net):
    from snntorch import utils

    utils.reset(net)


# -------------------------------------------------------------------------------- snnTorch
N_IN, N = 5, 6


def _snntorch_model(kind: str, seed: int, reset_delay: bool, reset_mechanism: str = "zero"):
    import snntorch as snn
    import torch

    torch.manual_seed(seed)
    full = lambda v, shape=(N,): torch.full(shape, v)  # noqa: E731 - per-neuron tensors
    common = dict(reset_mechanism=reset_mechanism, init_hidden=True, reset_delay=reset_delay)
    if kind == "Leaky":
        neuron, shape = snn.Leaky(beta=full(0.9), threshold=full(0.5), **common), (N_IN,)
    elif kind == "Synaptic":
        neuron = snn.Synaptic(alpha=full(0.8), beta=full(0.9), threshold=full(0.5), **common)
        shape = (N_IN,)
    elif kind in ("RLeaky", "RLeaky+bias"):
        neuron = snn.RLeaky(beta=full(0.9), threshold=full(0.5), linear_features=N, **common)
        shape = (N_IN,)
    elif kind == "RSynaptic":
        neuron = snn.RSynaptic(alpha=full(0.8), beta=full(0.9), threshold=full(0.5),
                               linear_features=N, **common)
        shape = (N_IN,)
    elif kind == "Conv2d+Leaky":
        conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        neuron = snn.Leaky(beta=full(0.9, (3, 6, 6)), threshold=full(0.5, (3, 6, 6)), **common)
        return torch.nn.Sequential(conv, neuron), (2, 6, 6)
    else:
        raise KeyError(kind)
    if kind in ("RLeaky", "RSynaptic"):
        # snnTorch evaluates recurrent(spk = 0) = bias at the first step, where NIR's back edge
        # (and nirjax) carries zeros; with a zero recurrent bias both agree (docs/interop.md).
        torch.nn.init.zeros_(neuron.recurrent.bias)
    return torch.nn.Sequential(torch.nn.Linear(N_IN, N), neuron), shape


SNNTORCH_KINDS = ("Leaky", "Synaptic", "RLeaky", "RLeaky+bias", "RSynaptic", "Conv2d+Leaky")


def snntorch_to_nirjax(kind: str, steps: int, batch: int, seed: int, reset_delay=False,
                       membrane: list | None = None, reset_mechanism: str = "zero"):
    """Build in snnTorch, export with snnTorch's exporter, import with `from_snntorch`.
    Returns (snnTorch spikes, nirjax spikes), both (T, B, ...). If `membrane` is a list, the
    snnTorch neuron's membrane at each spike decision (before its reset) is appended to it."""
    import torch
    from snntorch.export_nir import export_to_nir

    import nirjax
    import nirjax.interop

    net, shape = _snntorch_model(kind, seed, reset_delay, reset_mechanism)
    with _quiet():
        graph = export_to_nir(net, torch.zeros((1,) + shape), ignore_dims=[0])
    if reset_delay:  # not expressible: import with the zero-delay options, measured as is
        model = nirjax.from_nir(graph, **nirjax.interop.snntorch_options(reset_mechanism))
    else:
        model = nirjax.interop.from_snntorch(graph, reset_mechanism=reset_mechanism)
    xs = _inputs(shape, steps, batch, seed + 1)
    _reset_snntorch(net)
    if membrane is not None:
        neuron, fire = net[1], net[1].fire

        def spy(mem):
            membrane.append(mem.detach().clone().numpy())
            return fire(mem)

        neuron.fire = spy  # this instance only, for the measurement
    ref = _torch_run(net, xs, stateful_call=False)
    # snnTorch's first recurrent step adds the recurrent bias; nirjax reproduces it only when
    # asked, with the explicit initial state (the "RLeaky+bias" row uses it).
    state = nirjax.interop.snntorch_initial_state(model) if kind == "RLeaky+bias" else None
    return ref, _nirjax_run(model, xs.numpy(), state)


def _nirjax_model(kind: str, seed: int, dt: float, peer: str):
    """A nirjax graph in the form a peer's importer accepts, trained for a few steps."""
    import nir

    import nirjax

    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    n, nin = N, N_IN
    tau = f32(np.full(n, 1e-3 if peer == "snntorch" else 5e-3))
    w = f32(rng.normal(0.0, 1.0, (n, nin)))
    b = f32(rng.normal(0.0, 0.1, n))
    zeros = f32(np.zeros(n))
    thr = f32(np.full(n, 0.5))
    r = f32(tau / dt) if peer == "snntorch" else f32(np.ones(n))
    shape = (nin,)
    options: dict = {}
    if kind == "LIF":
        nodes = [nir.Affine(weight=w, bias=b),
                 nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=thr, v_reset=zeros)]
    elif kind == "CubaLIF":
        tau_syn = f32(tau / 2)
        w_in = f32(tau_syn / dt) if peer == "snntorch" else f32(np.full(n, 2.0))
        nodes = [nir.Affine(weight=w, bias=b),
                 nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=zeros, v_threshold=thr,
                             v_reset=zeros, w_in=w_in)]
    elif kind == "IF":
        nodes = [nir.Affine(weight=w, bias=b),
                 nir.IF(r=f32(np.ones(n)), v_threshold=f32(np.full(n, 1.5)), v_reset=zeros)]
        options = dict(input_mode="impulse")
    elif kind == "RLIF":
        inner = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                   "lif": nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=thr, v_reset=zeros),
                   "w_rec": nir.Linear(weight=f32(rng.normal(0.0, 0.3, (n, n)))),
                   "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            type_check=False)
        graph = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([nin])}),
                   "fc": nir.Affine(weight=w, bias=b), "rnn": inner,
                   "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")], type_check=False)
        return _train(nirjax.from_nir(graph, dt=dt), shape, seed), shape
    elif kind == "Conv2d+LIF":
        shape = (2, 6, 6)
        tau3 = f32(np.full((3, 6, 6), 1e-3))
        kernel = f32(rng.normal(0, 0.5, (3, 2, 3, 3)))
        nodes = [nir.Conv2d(input_shape=np.array([6, 6]), weight=kernel,
                            stride=np.array([1, 1]), padding=np.array([1, 1]),
                            dilation=np.array([1, 1]), groups=1, bias=f32(rng.normal(0, 0.1, 3))),
                 nir.LIF(tau=tau3, r=f32(tau3 / dt), v_leak=f32(np.zeros((3, 6, 6))),
                         v_threshold=f32(np.full((3, 6, 6), 0.5)),
                         v_reset=f32(np.zeros((3, 6, 6))))]
    else:
        raise KeyError(kind)
    graph = nir.NIRGraph.from_list(*nodes, type_check=False)
    graph.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    if kind == "Conv2d+LIF":
        graph.nodes["output"] = nir.Output(output_type={"output": np.array([3, 6, 6])})
    return _train(nirjax.from_nir(graph, dt=dt, **options), shape, seed), shape


def _train(model, shape, seed, steps=2, lr=0.05):
    """A few gradient steps on the weights and biases (a stand-in for real training), so the
    exported parameters are ones nirjax produced."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    xs = jnp.asarray(_inputs(shape, 20, 2, seed + 7).numpy()).swapaxes(0, 1)

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(m):
        return jnp.mean((jnp.mean(jax.vmap(m)(xs)) - 0.3) ** 2)

    def is_weight(path, _):
        return jax.tree_util.keystr(path).endswith((".weight", ".bias"))

    for _ in range(steps):
        g = grad(model)
        upd = jax.tree_util.tree_map_with_path(
            lambda p, v: -lr * v if is_weight(p, v) else jnp.zeros_like(v), g)
        model = eqx.apply_updates(model, upd)
    return model


NIRJAX_TO_SNNTORCH = ("LIF", "CubaLIF", "RLIF", "Conv2d+LIF")


def nirjax_to_snntorch(kind: str, steps: int, batch: int, seed: int):
    """Build (and train) in nirjax, export with `to_snntorch`, import with snnTorch's
    `import_from_nir`. Returns (snnTorch spikes, nirjax spikes)."""
    from snntorch.import_nir import import_from_nir

    import nirjax.interop

    model, shape = _nirjax_model(kind, seed, dt=1e-4, peer="snntorch")
    graph = nirjax.interop.to_snntorch(model)
    with _quiet():
        net = import_from_nir(_through_file(graph))
    xs = _inputs(shape, steps, batch, seed + 1)
    _reset_snntorch(net)
    ref = _torch_run(net, xs, stateful_call=False)
    # snnTorch's first recurrent step adds the recurrent bias; nirjax reproduces it only when
    # asked, with the explicit initial state (the "RLeaky+bias" row uses it).
    state = nirjax.interop.snntorch_initial_state(model) if kind == "RLeaky+bias" else None
    return ref, _nirjax_run(model, xs.numpy(), state)


# ----------------------------------------------------------------------------------- Norse
NORSE_KINDS = ("LIFBoxCell", "LIFCell", "IAFCell", "LIBoxCell")
NORSE_DT = 1e-3


def _norse_model(kind: str, seed: int):
    import norse.torch as norse
    import torch

    torch.manual_seed(seed)
    if kind == "LIFBoxCell":
        cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0),
                                                       v_th=torch.tensor(0.1)), dt=NORSE_DT)
    elif kind == "LIFCell":
        cell = norse.LIFCell(norse.LIFParameters(tau_mem_inv=torch.tensor(200.0),
                                                 tau_syn_inv=torch.tensor(400.0),
                                                 v_th=torch.tensor(0.3)), dt=NORSE_DT)
    elif kind == "IAFCell":
        cell = norse.IAFCell(norse.IAFParameters(v_th=torch.tensor(0.8)), dt=NORSE_DT)
    elif kind == "LIBoxCell":
        cell = norse.LIBoxCell(dt=NORSE_DT)
    else:
        raise KeyError(kind)
    return norse.SequentialState(torch.nn.Linear(N_IN, N), cell)


def norse_to_nirjax(kind: str, steps: int, batch: int, seed: int):
    """Build in Norse, export with `norse.torch.to_nir`, import with `nirjax.interop.from_norse`.
    Returns (Norse outputs, nirjax outputs)."""
    import norse.torch as norse
    import torch

    import nirjax.interop

    net = _norse_model(kind, seed)
    with _quiet():
        graph = norse.to_nir(net, torch.zeros((1, N_IN)), dt=NORSE_DT)
    model = nirjax.interop.from_norse(graph, dt=NORSE_DT)
    xs = _inputs((N_IN,), steps, batch, seed + 1)
    ref = _torch_run(net, xs, stateful_call=True)
    return ref, _nirjax_run(model, xs.numpy())


NIRJAX_TO_NORSE = ("LIF", "CubaLIF", "IF")


def nirjax_to_norse(kind: str, steps: int, batch: int, seed: int):
    """Build (and train) in nirjax, export with `to_norse`, import with `norse.torch.from_nir`.
    Returns (Norse outputs, nirjax outputs)."""
    import norse.torch as norse

    import nirjax.interop

    model, shape = _nirjax_model(kind, seed, dt=NORSE_DT, peer="norse")
    graph = nirjax.interop.to_norse(model)
    with _quiet():
        net = norse.from_nir(_through_file(graph), dt=model.options.dt)
    xs = _inputs(shape, steps, batch, seed + 1)
    ref = _torch_run(net, xs, stateful_call=True)
    return ref, _nirjax_run(model, xs.numpy())


# ---------------------------------------------------------------------------------- Sinabs
SINABS_KINDS = ("IAF", "LIF", "LIF(norm_input=False)", "IAF(SingleSpike)", "CNN")


def _sinabs_layers(kind: str, batch: int, seed: int):
    import sinabs.layers as sl
    import torch
    from sinabs.activation import SingleSpike

    torch.manual_seed(seed)
    if kind == "CNN":  # the shape of the paper's cnn_sinabs.nir, smaller
        return torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), sl.IAFSqueeze(batch_size=batch),
            torch.nn.Conv2d(4, 4, 3, padding=1), sl.IAFSqueeze(batch_size=batch),
            sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 2 * 2, N),
            sl.IAFSqueeze(batch_size=batch)), (2, 8, 8)
    if kind == "IAF":
        neuron = sl.IAFSqueeze(batch_size=batch, spike_threshold=1.0)
    elif kind == "IAF(SingleSpike)":
        neuron = sl.IAFSqueeze(batch_size=batch, spike_threshold=1.0, spike_fn=SingleSpike)
    elif kind == "LIF":
        # scalar parameters: with a per-neuron tau and a scalar threshold Sinabs's exporter
        # fails NIR's shape check
        neuron = sl.LIFSqueeze(tau_mem=8.0, batch_size=batch, spike_threshold=0.4)
    elif kind == "LIF(norm_input=False)":
        neuron = sl.LIFSqueeze(tau_mem=8.0, batch_size=batch, spike_threshold=1.0,
                               norm_input=False)
    else:
        raise KeyError(kind)
    return torch.nn.Sequential(torch.nn.Linear(N_IN, N), neuron), (N_IN,)


def _sinabs_run(net, xs):
    """Run a Sinabs network of Squeeze layers: xs (T, B, ...) -> (T, B, ...)."""
    import torch

    T, B = xs.shape[:2]
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
    flat = xs.transpose(0, 1).reshape((B * T,) + tuple(xs.shape[2:]))  # (b, t) batch-major
    with torch.no_grad():
        out = net(flat)
    if isinstance(out, tuple):  # nirtorch's GraphExecutor returns (output, state)
        out = out[0]
    return out.reshape((B, T) + tuple(out.shape[1:])).transpose(0, 1).numpy()


def sinabs_to_nirjax(kind: str, steps: int, batch: int, seed: int, corrected: bool = True):
    """Build in Sinabs, export with `sinabs.nir.to_nir`, import with `from_sinabs` (or, with
    `corrected=False`, plain `from_nir` with nirjax's defaults at dt = 1, as written)."""
    import sinabs.nir
    import torch

    import nirjax
    import nirjax.interop

    net, shape = _sinabs_layers(kind, batch, seed)
    with _quiet():
        graph = sinabs.nir.to_nir(net, torch.zeros((batch,) + shape))
    if corrected:
        spike_fn = "single" if "SingleSpike" in kind else "multi"
        model = nirjax.interop.from_sinabs(graph, norm_input="norm_input=False" not in kind and
                                           None, spike_fn=spike_fn)
    else:
        model = nirjax.from_nir(nirjax.interop.fix_sinabs_export(graph, norm_input=True), dt=1.0)
    xs = _inputs(shape, steps, batch, seed + 1)
    return _sinabs_run(net, xs), _nirjax_run(model, xs.numpy())


NIRJAX_TO_SINABS = ("IF", "LIF", "CNN")


def _nirjax_sinabs_model(kind: str, seed: int):
    import nir

    import nirjax

    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    dt = 1e-3
    opts = dict(dt=dt, discretization="exact", reset="subtract", spikes_per_step="multi",
                threshold_comparison="greater_equal")
    imp = {"input_mode": "impulse"}
    if kind == "IF":
        nodes = [nir.Affine(weight=f32(rng.normal(0.5, 1.0, (N, N_IN))), bias=f32(np.zeros(N))),
                 nir.IF(r=f32(np.ones(N)), v_threshold=f32(np.full(N, 1.0)),
                        v_reset=f32(np.zeros(N)))]
        shape, node_options = (N_IN,), {"if": imp}
    elif kind == "LIF":
        tau = f32(np.full(N, 8 * dt))
        nodes = [nir.Affine(weight=f32(rng.normal(0.5, 1.0, (N, N_IN))),
                            bias=f32(rng.normal(0, 0.1, N))),
                 nir.LIF(tau=tau, r=f32(1 / (1 - np.exp(-dt / tau.astype(np.float64)))),
                         v_leak=f32(np.zeros(N)), v_threshold=f32(np.full(N, 1.0)),
                         v_reset=f32(np.zeros(N)))]
        shape, node_options = (N_IN,), {}
    elif kind == "CNN":
        shape = (2, 8, 8)

        def conv(cin, cout, stride, hw):
            return nir.Conv2d(input_shape=np.array(hw), weight=f32(rng.normal(0.05, 0.4,
                              (cout, cin, 3, 3))), stride=np.array([stride, stride]),
                              padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1,
                              bias=f32(np.zeros(cout)))

        def iaf(s):
            return nir.IF(r=f32(np.ones(s)), v_threshold=f32(np.full(s, 1.0)),
                          v_reset=f32(np.zeros(s)))

        nodes = [conv(2, 4, 2, (8, 8)), iaf((4, 4, 4)), conv(4, 4, 1, (4, 4)), iaf((4, 4, 4)),
                 nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
                 nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0),
                 nir.Affine(weight=f32(rng.normal(0.2, 0.5, (N, 16))), bias=f32(np.zeros(N))),
                 iaf((N,))]
        names = ["0", "1", "2", "3", "4", "5", "6", "7"]
        graph = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array(shape)}),
                   **dict(zip(names, nodes)),
                   "output": nir.Output(output_type={"output": np.array([N])})},
            edges=[("input", "0")] + list(zip(names[:-1], names[1:])) + [("7", "output")],
            type_check=False)
        model = nirjax.from_nir(graph, **opts,
                                node_options={n: imp for n in ("1", "3", "7")})
        return _train(model, shape, seed), shape
    else:
        raise KeyError(kind)
    graph = nir.NIRGraph.from_list(*nodes, type_check=False)
    graph.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    return _train(nirjax.from_nir(graph, **opts, node_options=node_options), shape, seed), shape


def nirjax_to_sinabs(kind: str, steps: int, batch: int, seed: int, corrected: bool = True):
    """Build (and train) in nirjax, export with `to_sinabs`, import with `sinabs.nir.from_nir`
    and `fix_sinabs_import` (without it, `corrected=False`: Sinabs's importer as is)."""
    import sinabs.nir

    import nirjax.interop

    model, shape = _nirjax_sinabs_model(kind, seed)
    graph = nirjax.interop.to_sinabs(model)
    with _quiet():
        net = sinabs.nir.from_nir(_through_file(graph), batch_size=batch)
    if corrected:
        nirjax.interop.fix_sinabs_import(net, model)
    xs = _inputs(shape, steps, batch, seed + 1)
    return _sinabs_run(net, xs), _nirjax_run(model, xs.numpy())


def sinabs_paper_cnn(steps: int, batch: int, seed: int, corrected: bool = True,
                     path: str | None = None):
    """The NIR paper's `cnn_sinabs.nir`, run by Sinabs (`sinabs.nir.from_nir` of the same file)
    and by nirjax (`from_sinabs`), on random input spikes. With `corrected=False`: nirjax's
    defaults (one spike, `v > thr`, an impulse input at the paper's dt = 1e-4) against Sinabs's
    importer as is."""
    import sinabs.nir

    import nirjax
    import nirjax.interop

    path = path or os.path.join(CONFORMANCE, "cnn", "cnn_sinabs.nir")
    graph = nirjax.read(path)
    if corrected:
        model = nirjax.interop.from_sinabs(graph)
    else:
        model = nirjax.from_nir(graph, dt=1e-4, input_mode="impulse")
    with _quiet():
        net = sinabs.nir.from_nir(nirjax.read(path), batch_size=batch)
    if corrected:
        nirjax.interop.fix_sinabs_import(net, model)
    xs = _inputs((2, 34, 34), steps, batch, seed + 1)
    return _sinabs_run(net, xs), _nirjax_run(model, xs.numpy())


# -------------------------------------------------------------------------------- Rockpool
ROCKPOOL_KINDS = ("LIFNeuronTorch", "LIFTorch", "LIFTorch(has_rec)", "ExpSynTorch")
ROCKPOOL_DT = 1e-3


def _rockpool_model(kind: str, seed: int):
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import ExpSynTorch, LIFNeuronTorch, LIFTorch, LinearTorch

    torch.manual_seed(seed)
    dt = ROCKPOOL_DT
    if kind == "LIFNeuronTorch":
        neuron = LIFNeuronTorch(N, tau_mem=0.01, threshold=1.0, bias=0.05, dt=dt)
    elif kind == "LIFTorch":
        neuron = LIFTorch(N, tau_mem=0.02, tau_syn=0.01, threshold=1.0, bias=0.05, dt=dt)
    elif kind == "LIFTorch(has_rec)":
        # Rockpool's default w_rec initialisation makes the activity run away (to its
        # max_spikes_per_dt clamp, 2**16, which NIR has no field for): a small w_rec.
        neuron = LIFTorch(N, tau_mem=0.02, tau_syn=0.01, threshold=1.0, bias=0.05, dt=dt,
                          has_rec=True, w_rec=0.01 * torch.randn(N, N) - 0.02)
    elif kind == "ExpSynTorch":
        neuron = ExpSynTorch(N, tau=0.01, dt=dt)
    else:
        raise KeyError(kind)
    return Sequential(LinearTorch((N_IN, N), has_bias=False), neuron)


def _rockpool_run(net, xs):
    """Run a Rockpool torch network on xs (T, B, n) -> (T, B, n) (it loops time itself)."""
    import torch

    if hasattr(net, "reset_state"):
        net.reset_state()
    for m in net.modules():
        if hasattr(m, "reset_state"):
            m.reset_state()
    with torch.no_grad():
        out = net(xs.transpose(0, 1))
    if isinstance(out, tuple):
        out = out[0]
    return out.transpose(0, 1).numpy()


def _rockpool_layers(net):
    """The modules of a Rockpool network (its `modules()` is a dict of name -> module)."""
    modules = net.modules()
    return list(modules.values()) if isinstance(modules, dict) else list(modules)


def _rockpool_float64(net, graph):
    """Rockpool's torch modules in float64 (the same parameter values: float32 widens
    exactly), and the exported graph's arrays in float64. Rockpool casts its states and spike
    counts to `torch.float` (`lif_torch.py:254`, `StepPWL.forward` line 43); the states are
    widened after each reset and the spike function returns float64 (the counts are integers, so
    nothing changes but the dtype of the recurrent product)."""
    import torch
    from rockpool.nn.modules.torch.lif_torch import StepPWL

    net = net.double()
    for m in _rockpool_layers(net):
        if hasattr(m, "spike_generation_fn"):
            m.spike_generation_fn = lambda *a: StepPWL.apply(*a).double()
    for node in graph.nodes.values():
        for f in ("weight", "bias", "tau", "tau_mem", "tau_syn", "r", "v_leak", "w_in",
                  "v_threshold", "v_reset"):
            value = getattr(node, f, None)
            if value is not None:
                value = value.detach().numpy() if isinstance(value, torch.Tensor) else value
                setattr(node, f, np.asarray(value, np.float64))
    return net


def _rockpool_run64(net, xs):
    import torch

    net.reset_state()
    for m in _rockpool_layers(net):
        for name in ("vmem", "isyn", "spikes"):
            if name in getattr(m, "_buffers", {}):
                m._buffers[name] = m._buffers[name].double()
    with torch.no_grad():
        out = net(xs.double().transpose(0, 1))
    return (out[0] if isinstance(out, tuple) else out).transpose(0, 1).numpy()


def rockpool_to_nirjax(kind: str, steps: int, batch: int, seed: int, corrected: bool = True,
                       float64: bool = False, discretization: str = "rockpool"):
    """Build in Rockpool, export with its `to_nir`, import with `from_rockpool` (passing the
    bias and `w_rec` its exporter drops), or with plain `from_nir` at the true dt as written
    (`corrected=False`; the batch/time Input shape removed so that nirjax reads it at all).
    `float64=True` runs both sides in float64 (needs `jax_enable_x64`; see `_rockpool_float64`):
    the same arithmetic as float32, rounded 2**29 times finer. `discretization` goes to
    `from_rockpool`: `"rockpool"` (Rockpool's float32 order) or NIR's plain `"euler"`."""
    import jax.numpy as jnp
    import torch
    from rockpool.nn.modules.torch.nir import to_nir

    import nirjax
    import nirjax.interop

    net = _rockpool_model(kind, seed)
    with _quiet():
        graph = to_nir(net, torch.zeros((1, 4, N_IN)))
    if float64:
        net = _rockpool_float64(net, graph)
    neuron = net[1] if hasattr(net, "__getitem__") else list(net.modules())[-1]
    name = [k for k in graph.nodes if k not in ("input", "output") and "Linear" not in k][0]
    bias = {name: neuron.bias.detach().numpy()} if hasattr(neuron, "bias") else {}
    w_rec = {name: neuron.w_rec.detach().numpy()} if kind.endswith("(has_rec)") else {}
    if float64:
        if not corrected:
            raise ValueError("float64=True is for the corrected import")
        model = nirjax.interop.from_rockpool(graph, bias=bias, w_rec=w_rec, dtype=jnp.float64)
        xs = _inputs((N_IN,), steps, batch, seed + 1)
        return _rockpool_run64(net, xs), _nirjax_run(model, xs.double().numpy())
    if corrected:
        model = nirjax.interop.from_rockpool(graph, bias=bias, w_rec=w_rec,
                                             discretization=discretization)
    else:
        shapes, _ = nirjax.interop.fix_rockpool_export(graph)
        for key, node in graph.nodes.items():  # torch parameters to numpy; shapes fixed
            for f in ("weight", "bias", "tau", "tau_mem", "tau_syn", "r", "v_leak", "w_in",
                      "v_threshold"):
                if hasattr(getattr(node, f, None), "detach"):
                    setattr(node, f, getattr(node, f).detach().numpy())
            if key in ("input", "output"):
                graph.nodes[key] = shapes.nodes[key]
        model = nirjax.from_nir(graph, dt=ROCKPOOL_DT)
    xs = _inputs((N_IN,), steps, batch, seed + 1)
    return _rockpool_run(net, xs), _nirjax_run(model, xs.numpy())


NIRJAX_TO_ROCKPOOL = ("CubaLIF", "RCubaLIF")


def _nirjax_rockpool_model(kind: str, seed: int):
    import nir

    import nirjax

    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    dt = ROCKPOOL_DT
    n = N
    tau_mem, tau_syn = f32(np.full(n, 0.02)), f32(np.full(n, 0.01))
    cuba = nir.CubaLIF(tau_mem=tau_mem, tau_syn=tau_syn, r=f32(tau_mem / dt), w_in=tau_syn,
                       v_leak=f32(np.full(n, 0.5)), v_threshold=f32(np.full(n, 1.0)),
                       v_reset=f32(np.zeros(n)))
    fc = nir.Affine(weight=f32(rng.normal(0.0, 0.5, (n, N_IN))), bias=f32(rng.normal(0, .1, n)))
    opts = dict(dt=dt, reset="subtract", spikes_per_step="multi",
                threshold_comparison="greater_equal")
    if kind == "CubaLIF":
        graph = nir.NIRGraph.from_list(fc, cuba, type_check=False)
        graph.nodes["input"] = nir.Input(input_type={"input": np.array([N_IN])})
        model = nirjax.from_nir(graph, **opts, node_options={"cubalif": {
            "input_mode": "impulse"}})
    elif kind == "RCubaLIF":
        inner = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": cuba,
                   "w_rec": nir.Linear(weight=f32(rng.normal(-0.02, 0.01, (n, n)))),
                   "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            type_check=False)
        graph = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([N_IN])}), "fc": fc,
                   "rnn": inner, "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")], type_check=False)
        model = nirjax.from_nir(graph, **opts, node_options={"rnn/lif": {
            "input_mode": "impulse"}})
    else:
        raise KeyError(kind)
    # a small step: multi-spike counts make the stand-in loss's gradient large
    return _train(model, (N_IN,), seed, steps=1, lr=0.002), (N_IN,)


def nirjax_to_rockpool(kind: str, steps: int, batch: int, seed: int):
    """Build (and train) in nirjax, export with `to_rockpool`, import with Rockpool's
    `from_nir`."""
    from rockpool.nn.modules.torch.nir import from_nir

    import nirjax.interop

    model, shape = _nirjax_rockpool_model(kind, seed)
    graph = nirjax.interop.to_rockpool(model)
    with _quiet():
        net = from_nir(_through_file(graph))
    xs = _inputs(shape, steps, batch, seed + 1)
    return _rockpool_run(net, xs), _nirjax_run(model, xs.numpy())


def rockpool_paper_lif(path: str | None = None):
    """The NIR paper's `lif_rockpool.nir` (Rockpool's export of the single LIF), imported with
    `from_rockpool`, on the paper's input (`lif_rockpool.csv` column 0). Returns (recorded
    spikes, nirjax spikes, recorded v, nirjax v), each (T,)."""
    import jax.numpy as jnp

    import nirjax
    import nirjax.interop

    folder = os.path.join(CONFORMANCE, "lif") if path is None else os.path.dirname(path)
    data = np.loadtxt(os.path.join(folder, "lif_rockpool.csv"), delimiter=",")
    graph = nirjax.read(os.path.join(folder, "lif_rockpool.nir"))
    model = nirjax.interop.from_rockpool(graph)
    node = [k for k in model.nodes if "LIF" in k][0]
    res = model.run(jnp.asarray(data[:, :1], jnp.float32), record=[node])
    return (data[:, 2], np.asarray(res.output)[:, 0], data[:, 1],
            np.asarray(res.record[node]["v"])[:, 0])


# ----------------------------------------------------------------------------------- Nengo
NIRJAX_TO_NENGO = ("LIF", "IF", "CubaLIF", "RLIF")
NENGO_DT = 1e-3


def nirjax_to_nengo(kind: str, steps: int, batch: int, seed: int, neuron_type: str = "nir"):
    """Build (and train) in nirjax, build the Nengo network with `to_nengo`, run both (Nengo's
    reference simulator, one sample at a time). Returns (Nengo spikes, nirjax spikes)."""
    import nengo

    import nirjax.interop

    model, shape = _nirjax_model(kind, seed, dt=NENGO_DT, peer="nengo")
    xs = _inputs(shape, steps, batch, seed + 1).numpy()
    ref = []
    for b in range(batch):
        net = nirjax.interop.to_nengo(model, xs[:, b], neuron_type=neuron_type)
        with _quiet(), nengo.Simulator(net, dt=NENGO_DT, progress_bar=False) as sim:
            sim.run_steps(steps)
        (probe,) = net.output_probes.values()
        ref.append(sim.data[probe].reshape((steps,) + tuple(model.output_shapes())))
    return np.stack(ref, axis=1).astype(np.float32), _nirjax_run(model, xs)


def nengo_paper_lif(neuron_type: str = "nir", path: str | None = None):
    """`lif_norse.nir` through `to_nengo` on the paper's input (`lif_nengo.csv` column 0):
    (recorded spikes, Nengo spikes), each (T,)."""
    import nengo

    import nirjax
    import nirjax.interop

    folder = os.path.join(CONFORMANCE, "lif") if path is None else os.path.dirname(path)
    data = np.loadtxt(os.path.join(folder, "lif_nengo.csv"), delimiter=",")
    model = nirjax.from_nir(os.path.join(folder, "lif_norse.nir"), dt=1e-4)
    net = nirjax.interop.to_nengo(model, data[:, :1], neuron_type=neuron_type)
    with _quiet(), nengo.Simulator(net, dt=1e-4, progress_bar=False) as sim:
        sim.run_steps(len(data))
    return data[:, 2], sim.data[net.output_probes["output"]][:, 0]


# ------------------------------------------------------------------------------------ Spyx
SPYX_KINDS = ("LIF", "IF", "CuBaLIF", "LIF+LIF", "CNN", "RIF", "RLIF", "RCuBaLIF")
SPYX_CNN = (2, 8, 8)  # NIR's (C, H, W); Spyx runs (H, W, C)
SPYX_DT = 1e-3


def _spyx_model(kind: str, seed: int):
    import jax.numpy as jnp
    from flax import nnx
    from spyx import nn as snn

    rngs = nnx.Rngs(seed)
    fc = nnx.Linear(N_IN, N, rngs=rngs)
    if kind == "LIF":
        layers = [fc, snn.LIF((N,), beta=0.8, threshold=1.0, rngs=rngs)]
    elif kind == "IF":
        layers = [fc, snn.IF((N,), threshold=1.0)]
    elif kind == "CuBaLIF":
        layers = [fc, snn.CuBaLIF((N,), alpha=0.7, beta=0.8, threshold=1.0, rngs=rngs)]
    elif kind == "CNN":
        c, h, w = SPYX_CNN
        layers = [nnx.Conv(c, 4, (3, 3), padding="SAME", rngs=rngs),
                  snn.IF((h, w, 4), threshold=1.0), snn.Flatten(),
                  nnx.Linear(h * w * 4, N, rngs=rngs),
                  snn.LIF((N,), beta=0.8, threshold=1.0, rngs=rngs)]
        fc = None
    elif kind == "LIF+LIF":  # two spiking layers: each lags one step
        layers = [fc, snn.LIF((N,), beta=0.8, threshold=0.5, rngs=rngs),
                  nnx.Linear(N, N, rngs=rngs), snn.LIF((N,), beta=0.9, threshold=0.5,
                                                      rngs=rngs)]
    elif kind in ("RIF", "RLIF", "RCuBaLIF"):
        kw = {"RIF": {}, "RLIF": {"beta": 0.8}, "RCuBaLIF": {"alpha": 0.7, "beta": 0.8}}[kind]
        rec = getattr(snn, kind)((N,), threshold=1.0, rngs=rngs, **kw)
        # weaker recurrent weights than the default init (a running-away layer compares
        # nothing), with a diagonal so that RLIF's reset correction is exercised
        rec.recurrent_w[...] = 0.3 * rec.recurrent_w[...] - 0.1
        layers = [fc, rec]
    else:
        raise KeyError(kind)
    for layer in layers:  # larger weights than NNX's default init, so that layers spike
        if isinstance(layer, (nnx.Linear, nnx.Conv)):
            after_flatten = kind == "CNN" and isinstance(layer, nnx.Linear)
            # (no common offset after the Flatten: the output then depends on the order)
            layer.kernel[...] = (6.0 * layer.kernel[...] if after_flatten else
                                 2.0 * layer.kernel[...] + 0.2)
            layer.bias[...] = jnp.zeros_like(layer.bias[...])
    return snn.Sequential(*layers)


def _spyx_run(model, xs):
    from spyx.nir import run

    outputs, _ = run(model, np.asarray(xs))
    return np.asarray(outputs)


def spyx_to_nirjax(kind: str, steps: int, batch: int, seed: int, corrected: bool = True):
    """Build in Spyx, export with `spyx.nir.to_nir(..., dt)`, import with `from_spyx` (or plain
    `from_nir` at the same dt, as written)."""
    import spyx.nir

    import nirjax
    import nirjax.interop

    model = _spyx_model(kind, seed)
    shape = SPYX_CNN if kind == "CNN" else (N_IN,)
    with _quiet():
        graph = spyx.nir.to_nir(model, {"input": np.array(shape)},
                                {"output": np.array([N])}, dt=SPYX_DT)
    if corrected:
        ours = nirjax.interop.from_spyx(graph, SPYX_DT)
    else:
        ours = nirjax.from_nir(graph, dt=SPYX_DT)
    xs = _inputs(shape, steps, batch, seed + 1).numpy()
    spyx_xs = np.moveaxis(xs, 2, -1) if kind == "CNN" else xs  # Spyx runs (H, W, C)
    return _spyx_run(model, spyx_xs), _nirjax_run(ours, xs)


NIRJAX_TO_SPYX = ("LIF", "IF", "CubaLIF", "CNN", "RLIF", "RCubaLIF")


def nirjax_to_spyx(kind: str, steps: int, batch: int, seed: int):
    """Build in nirjax (Spyx's semantics: `spike_order="before_input"`; CubaLIF + a one-step
    Delay), export with `to_spyx`, import and run with `spyx.nir.from_nir`."""
    import jax.numpy as jnp
    import nir
    import spyx.nir

    import nirjax
    import nirjax.interop

    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    dt, n = SPYX_DT, N
    fc = nir.Affine(weight=f32(rng.normal(0.4, 1.0, (n, N_IN))), bias=f32(np.zeros(n)))
    zeros, thr = f32(np.zeros(n)), f32(np.ones(n))
    tau = f32(np.full(n, dt / (1 - 0.8)))
    node_options: dict = {}
    if kind == "LIF":
        neuron = nir.LIF(tau=tau, r=f32(tau / dt), v_leak=zeros, v_threshold=thr, v_reset=zeros)
        node_options = {"lif": {"spike_order": "before_input"}}
    elif kind == "IF":
        neuron = nir.IF(r=f32(np.ones(n)), v_threshold=thr, v_reset=zeros)
        node_options = {"if": {"spike_order": "before_input", "input_mode": "impulse"}}
    elif kind == "CubaLIF":
        tau_syn = f32(np.full(n, dt / (1 - 0.7)))
        neuron = nir.CubaLIF(tau_mem=tau, tau_syn=tau_syn, r=f32(tau / dt),
                             w_in=f32(tau_syn / dt), v_leak=zeros, v_threshold=thr,
                             v_reset=zeros)
    elif kind == "CNN":
        c, h, w = SPYX_CNN
        s3 = (4, h, w)
        nodes = {
            "input": nir.Input(input_type={"input": np.array(SPYX_CNN)}),
            "conv": nir.Conv2d(input_shape=np.array([h, w]),
                               weight=f32(rng.normal(0.1, 0.5, (4, c, 3, 3))),
                               stride=np.array([1, 1]), padding=np.array([1, 1]),
                               dilation=np.array([1, 1]), groups=1, bias=f32(np.zeros(4))),
            "if": nir.IF(r=f32(np.ones(s3)), v_threshold=f32(np.ones(s3)),
                         v_reset=f32(np.zeros(s3))),
            "flat": nir.Flatten(input_type={"input": np.array(s3)}, start_dim=0),
            "fc": nir.Affine(weight=f32(rng.normal(0.0, 0.4, (n, 4 * h * w))),
                             bias=f32(np.zeros(n))),
            "n": nir.LIF(tau=tau, r=f32(tau / dt), v_leak=zeros, v_threshold=thr,
                         v_reset=zeros),
            "output": nir.Output(output_type={"output": np.array([n])})}
        names = ["input", "conv", "if", "flat", "fc", "n", "output"]
        model = nirjax.from_nir(
            nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                         type_check=False), dt=dt, reset="subtract",
            node_options={"if": {"spike_order": "before_input", "input_mode": "impulse"},
                          "n": {"spike_order": "before_input"}})
        graph = nirjax.interop.to_spyx(model)
        xs = _inputs(SPYX_CNN, steps, batch, seed + 1).numpy()
        with _quiet():
            _, ref = spyx.nir.from_nir(_through_file(graph), jnp.asarray(np.moveaxis(xs, 2, -1)),
                                       dt=dt)
        return np.asarray(ref), _nirjax_run(model, xs)
    elif kind in ("RLIF", "RCubaLIF"):  # NIR's order inside, then a one-step Delay
        if kind == "RLIF":
            inner = nir.LIF(tau=tau, r=f32(tau / dt), v_leak=zeros, v_threshold=thr,
                            v_reset=zeros)
        else:
            tau_syn = f32(np.full(n, dt / (1 - 0.7)))
            inner = nir.CubaLIF(tau_mem=tau, tau_syn=tau_syn, r=f32(tau / dt),
                                w_in=f32(tau_syn / dt), v_leak=zeros, v_threshold=thr,
                                v_reset=zeros)
        neuron = nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": inner,
                   "w_rec": nir.Linear(weight=f32(rng.normal(-0.1, 0.3, (n, n)))),
                   "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            type_check=False)
    else:
        raise KeyError(kind)
    nodes = {"input": nir.Input(input_type={"input": np.array([N_IN])}), "fc": fc, "n": neuron,
             "output": nir.Output(output_type={"output": np.array([n])})}
    edges = [("input", "fc"), ("fc", "n"), ("n", "output")]
    if kind in ("CubaLIF", "RLIF", "RCubaLIF"):
        nodes["lag"] = nir.Delay(delay=np.full(n, dt))
        edges = [("input", "fc"), ("fc", "n"), ("n", "lag"), ("lag", "output")]
    node_options = {"n": v for v in node_options.values()}
    model = nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=dt,
                            reset="subtract", node_options=node_options)
    graph = nirjax.interop.to_spyx(model)
    xs = _inputs((N_IN,), steps, batch, seed + 1).numpy()
    with _quiet():
        _, ref = spyx.nir.from_nir(_through_file(graph), jnp.asarray(xs), dt=dt)
    return np.asarray(ref), _nirjax_run(model, xs)


# ------------------------------------------------------------- the default `nirjax train` model
DEFAULT_MODEL_PEERS = ("snntorch", "norse", "nengo", "sinabs", "rockpool", "spyx")


def default_model_to_peer(peer: str, steps: int, batch: int, seed: int):
    """`nirjax train`'s network (`training.feedforward_snn`: Affine -> LIF -> Affine -> readout,
    r = tau / dt), with a spiking LIF readout (snnTorch and Norse have no LI importer), exported
    to a peer: snnTorch (`to_snntorch`), Norse (`fold_r` then `to_norse`: Norse ignores r) or
    Nengo (`to_nengo`, with the default LI readout). For Sinabs, Rockpool and Spyx the network
    is first made the peer's model with `for_peer` (what `nirjax train --peer` trains; Rockpool
    with CubaLIF neurons, `--neuron cubalif`), trained one step, then exported."""
    import jax.numpy as jnp

    import nirjax
    import nirjax.interop
    from training import feedforward_snn

    dt = 1e-3
    graph = feedforward_snn(N_IN, 3, hidden=(N,), readout="li" if peer == "nengo" else "lif",
                            neuron="cubalif" if peer == "rockpool" else "lif",
                            dt=dt, tau_mem=5e-3, tau_syn=2.5e-3, gain=8.0, seed=seed)
    model = nirjax.from_nir(graph, dt=dt)
    xs = _inputs((N_IN,), steps, batch, seed + 1)
    if peer in ("sinabs", "rockpool", "spyx"):
        model = _train(nirjax.interop.for_peer(model, peer), (N_IN,), seed, steps=1, lr=0.002)
    if peer == "sinabs":
        import sinabs.nir

        with _quiet():
            net = sinabs.nir.from_nir(_through_file(nirjax.interop.to_sinabs(model)),
                                      batch_size=batch)
        nirjax.interop.fix_sinabs_import(net, model)
        return _sinabs_run(net, xs), _nirjax_run(model, xs.numpy())
    if peer == "rockpool":
        from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir

        with _quiet():
            net = rockpool_from_nir(_through_file(nirjax.interop.to_rockpool(model)))
        return _rockpool_run(net, xs), _nirjax_run(model, xs.numpy())
    if peer == "spyx":
        import spyx.nir

        with _quiet():
            _, ref = spyx.nir.from_nir(_through_file(nirjax.interop.to_spyx(model)),
                                       jnp.asarray(xs.numpy()), dt=dt)
        return np.asarray(ref), _nirjax_run(model, xs.numpy())
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir

        with _quiet():
            net = import_from_nir(_through_file(nirjax.interop.to_snntorch(model)))
        _reset_snntorch(net)
        return _torch_run(net, xs, stateful_call=False), _nirjax_run(model, xs.numpy())
    if peer == "norse":
        import norse.torch as norse

        folded = nirjax.interop.fold_r(model)
        with _quiet():
            net = norse.from_nir(_through_file(nirjax.interop.to_norse(folded)), dt=dt)
        return _torch_run(net, xs, stateful_call=True), _nirjax_run(model, xs.numpy())
    if peer == "nengo":
        import nengo

        ref = []
        for b in range(batch):
            net = nirjax.interop.to_nengo(model, xs.numpy()[:, b])
            with _quiet(), nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
                sim.run_steps(steps)
            ref.append(sim.data[net.output_probes["output"]])
        return np.stack(ref, axis=1).astype(np.float32), _nirjax_run(model, xs.numpy())
    raise KeyError(peer)


# -------------------------------------------------------------------------------- helpers
class _quiet:
    """Silence the peers' prints and warnings while they convert."""

    def __enter__(self):
        import contextlib
        import io
        import logging

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        self._stack.callback(logging.disable, logging.NOTSET)
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False


def _through_file(graph):
    """Write with nirjax.write and read back with plain nir.read: what a peer gets from a file."""
    import nir

    import nirjax

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "g.nir")
        nirjax.write(path, graph)
        return nir.read(path)


def agreement(ref: np.ndarray, ours: np.ndarray, voltage: bool = False) -> dict:
    ref, ours = np.asarray(ref, np.float64), np.asarray(ours, np.float64)
    if ref.shape != ours.shape:
        raise ValueError(f"shapes differ: peer {ref.shape}, nirjax {ours.shape}")
    if voltage:
        diff = np.abs(ref - ours)
        return {"agreement": float(np.mean(diff <= LI_ATOL)), "max_abs_diff": float(diff.max()),
                "entries": int(ref.size)}
    return {"agreement": float(np.mean(ref == ours)), "peer_spikes": int(ref.sum()),
            "nirjax_spikes": int(ours.sum()), "entries": int(ref.size)}


CASES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "snntorch->nirjax": (snntorch_to_nirjax, SNNTORCH_KINDS),
    "nirjax->snntorch": (nirjax_to_snntorch, NIRJAX_TO_SNNTORCH),
    "norse->nirjax": (norse_to_nirjax, NORSE_KINDS),
    "nirjax->norse": (nirjax_to_norse, NIRJAX_TO_NORSE),
    "sinabs->nirjax": (sinabs_to_nirjax, SINABS_KINDS),
    "nirjax->sinabs": (nirjax_to_sinabs, NIRJAX_TO_SINABS),
    "rockpool->nirjax": (rockpool_to_nirjax, ROCKPOOL_KINDS),
    "nirjax->rockpool": (nirjax_to_rockpool, NIRJAX_TO_ROCKPOOL),
    "nirjax->nengo": (nirjax_to_nengo, NIRJAX_TO_NENGO),
    "spyx->nirjax": (spyx_to_nirjax, SPYX_KINDS),
    "nirjax->spyx": (nirjax_to_spyx, NIRJAX_TO_SPYX),
}


AS_WRITTEN = {  # the peer's graph (or network) without nirjax's correction
    "sinabs->nirjax": {"corrected": False},
    "nirjax->sinabs": {"corrected": False},
    "rockpool->nirjax": {"corrected": False},
    "spyx->nirjax": {"corrected": False},
}
NENGO_BATCH = 4  # Nengo's reference simulator runs one sample at a time


def _paper_rows(only: str | None = None) -> list[dict]:
    """The NIR paper's graphs against the peer running the same file (or its recording); with
    `only`, those whose name contains it."""
    rows = []
    if not os.path.isdir(CONFORMANCE):
        return [{"direction": "paper graphs", "neuron": "-", "error":
                 f"conformance material not found at {CONFORMANCE}"}]
    for name, fn in (("lif_rockpool.nir vs lif_rockpool.csv", lambda: rockpool_paper_lif()),
                     ("lif_norse.nir via to_nengo vs lif_nengo.csv",
                      lambda: nengo_paper_lif("nir")),
                     ("lif_norse.nir via to_nengo(nengo.LIF) vs lif_nengo.csv",
                      lambda: nengo_paper_lif("nengo"))):
        if only is not None and only not in name:
            continue
        try:
            out = fn()
            ref, ours = out[0], out[1]
            row = {"direction": "paper", "neuron": name,
                   "peer_spike_steps": np.nonzero(ref)[0].tolist(),
                   "nirjax_spike_steps": np.nonzero(ours)[0].tolist(),
                   "agreement_min": float(np.mean(ref == ours))}
            if len(out) == 4:
                row["max_abs_dv"] = float(np.abs(out[2] - out[3]).max())
            rows.append(row)
        except Exception as e:  # noqa: BLE001
            rows.append({"direction": "paper", "neuron": name,
                         "error": f"{type(e).__name__}: {str(e).strip()[:200]}"})
    return rows


def measure(steps: int, batch: int, seeds: int, only: str | None = None) -> list[dict]:
    import jax
    from tqdm import tqdm

    jobs = [(d, k, {}) for d, (_, kinds) in CASES.items() for k in kinds]
    jobs += [("snntorch->nirjax (reset_delay=True)", k, {"reset_delay": True})
             for k in SNNTORCH_KINDS]
    jobs += [("snntorch->nirjax (subtract)", k, {"reset_mechanism": "subtract"})
             for k in ("Leaky", "Synaptic", "Conv2d+Leaky")]
    jobs += [("rockpool->nirjax (discretization=euler)", k, {"discretization": "euler"})
             for k in ("LIFTorch", "LIFTorch(has_rec)")]
    for d, kw in AS_WRITTEN.items():
        jobs += [(d + " (as written)", k, kw) for k in CASES[d][1]]
    jobs += [("nirjax->nengo (nengo.LIF)", k, {"neuron_type": "nengo"}) for k in ("LIF", "RLIF")]
    jobs += [(f"nirjax train model -> {p}", "LIF readout" if p != "nengo" else "LI readout",
              {}) for p in DEFAULT_MODEL_PEERS]
    # float64 on both sides (see rockpool_to_nirjax): last, with jax_enable_x64 switched on
    jobs += [("rockpool->nirjax (float64)", "LIFTorch(has_rec)", {"float64": True})]
    jobs += [("sinabs paper cnn_sinabs.nir", "IF CNN", {}),
             ("sinabs paper cnn_sinabs.nir (as written)", "IF CNN", {"corrected": False})]
    if only is not None:
        jobs = [j for j in jobs if j[0].startswith(only)]
    rows = []
    for direction, kind, kw in tqdm(jobs, desc="interop", unit="case"):
        if direction.startswith("sinabs paper"):
            fn = lambda kind, steps, batch, seed, **k: sinabs_paper_cnn(  # noqa: E731
                steps, batch, seed, **k)
        elif direction.startswith("nirjax train model"):
            peer = direction.rsplit(" ", 1)[-1]
            fn = lambda kind, steps, batch, seed, peer=peer: default_model_to_peer(  # noqa: E731
                peer, steps, batch, seed)
        else:
            fn = CASES[direction.split(" ")[0]][0]
        b = min(batch, NENGO_BATCH) if "nengo" in direction else batch
        per_seed = []
        try:
            jax.config.update("jax_enable_x64", bool(kw.get("float64")))
            for seed in range(seeds):
                ref, ours = fn(kind, steps, b, seed, **kw)
                voltage = kind in ("LIBoxCell", "ExpSynTorch", "LI readout")
                per_seed.append(agreement(ref, ours, voltage=voltage))
        except Exception as e:  # noqa: BLE001 - a failing converter is a result to report
            rows.append({"direction": direction, "neuron": kind, "error":
                         f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"})
            continue
        finally:
            jax.config.update("jax_enable_x64", False)
        row = {"direction": direction, "neuron": kind, "steps": steps, "batch": b,
               "seeds": seeds,
               "agreement_min": min(r["agreement"] for r in per_seed),
               "agreement_mean": float(np.mean([r["agreement"] for r in per_seed])),
               "per_seed": per_seed}
        rows.append(row)
    return rows + _paper_rows(only)


def markdown_table(result: dict) -> str:
    """The agreement table of docs/interop.md from a results JSON: each corrected row with its
    "as written" partner (minimum over seeds), then the paper rows."""
    rows = result["rows"]
    by_key = {(r["direction"], r["neuron"]): r for r in rows}

    def pct(r):
        if r is None:
            return ""
        if "error" in r:
            return "not possible: " + r["error"].split(":")[0]
        extra = ""
        if r.get("per_seed") and "max_abs_diff" in r["per_seed"][0]:
            extra = f" (max abs dv {max(x['max_abs_diff'] for x in r['per_seed']):.1e})"
        return f"{100 * r['agreement_min']:.1f} %{extra}"

    out = ["| direction | network | with nirjax's correction | as written | peer spikes per seed |",
           "|---|---|---|---|---|"]
    for r in rows:
        d = r["direction"]
        if "(as written)" in d or d == "paper":
            continue
        written = by_key.get((d + " (as written)", r["neuron"]))
        spikes = ", ".join(str(x.get("peer_spikes", "")) for x in r.get("per_seed", [])
                           if "peer_spikes" in x)
        out.append(f"| {d} | {r['neuron']} | {pct(r)} | {pct(written)} | {spikes} |")
    out += ["", "| paper graph | nirjax spike steps | peer spike steps | max abs dv |",
            "|---|---|---|---|"]
    for r in rows:
        if r["direction"] == "paper":
            if "error" in r:
                out.append(f"| {r['neuron']} | n/a: {r['error']} | | |")
                continue
            dv = f"{r['max_abs_dv']:.1e}" if "max_abs_dv" in r else ""
            out.append(f"| {r['neuron']} | {r['nirjax_spike_steps']} | "
                       f"{r['peer_spike_steps']} | {dv} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", metavar="JSON",
                        help="print docs/interop.md's markdown table from a results file, exit")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", metavar="PREFIX",
                        help="re-measure only the rows whose direction starts with PREFIX (and the "
                             "paper rows naming it) and replace them in --out (the other rows "
                             "are kept as they are)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results", "interop_agreement.json"))
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(markdown_table(json.load(f)))
        return 0
    import importlib.metadata as md

    versions = {}
    for pkg in ("nirjax", "nir", "snntorch", "norse", "nirtorch", "torch", "jax", "sinabs",
                "rockpool", "spyx", "flax", "nengo"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    rows = measure(args.steps, args.batch, args.seeds, args.only)
    print(f"{'direction':38s} {'neuron':14s} {'agreement (min over seeds)':>28s}")
    for r in rows:
        if "error" in r:
            print(f"{r['direction']:38s} {r['neuron']:14s} {'n/a: ' + r['error'][:70]}")
        elif "per_seed" not in r:
            print(f"{r['direction']:38s} {r['neuron']:14s} spikes at {r['nirjax_spike_steps']} "
                  f"(peer {r['peer_spike_steps']})")
        else:
            extra = ""
            if "max_abs_diff" in r["per_seed"][0]:
                extra = f" (max |dv| {max(s['max_abs_diff'] for s in r['per_seed']):.2e})"
            pct = 100 * r["agreement_min"]
            print(f"{r['direction']:38s} {r['neuron']:14s} {pct:27.3f}%{extra}")
    result = {"versions": versions, "steps": args.steps, "batch": args.batch,
              "seeds": args.seeds, "li_atol": LI_ATOL, "rows": rows}
    if args.only is not None:  # merge: the re-measured rows replace theirs, in place
        with open(args.out) as f:
            result = json.load(f)
        new = {(r["direction"], r["neuron"]): r for r in rows}
        kept = [new.pop((r["direction"], r["neuron"]), r) for r in result["rows"]
                if not r["direction"].startswith(args.only) or
                (r["direction"], r["neuron"]) in new]
        at = max((i + 1 for i, r in enumerate(kept) if r["direction"].startswith(args.only)),
                 default=len(kept))
        result["rows"] = kept[:at] + list(new.values()) + kept[at:]
        result.setdefault("remeasured", []).append(
            {"only": args.only, "steps": args.steps, "batch": args.batch, "seeds": args.seeds,
             "versions": versions})
    from nirjax import atomic_path

    with atomic_path(args.out, ".json") as tmp, open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
