"""Nengo 4.1: run a NIR graph in Nengo's own simulator (`to_nengo`).

Nengo has no NIR package; the NIR paper ran its graphs in Nengo through scripts in the NIR
repository (`paper/`). `to_nengo` builds the network from a nirjax graph instead:

- every neuron node is a `nengo.Ensemble` whose neurons are driven directly (`ens.neurons`,
  gain 1, bias 0) with a `NIRNeuron` neuron type, which steps the node's own NIR update (the
  nirjax definition: `Neuron.advance`, in the node's dtype) inside Nengo's simulator; spikes
  leave it with Nengo's amplitude `1 / dt` (so Nengo's probes and synapses read them as
  spikes) and enter the next layer scaled by `dt`;
- every stateless linear node (Affine, Linear, Scale, Flatten, convolutions, pooling) is a
  passthrough `nengo.Node` with its matrix (`transform`) and bias (a constant Node);
- NIR's edges are `nengo.Connection`s with `synapse=None` (the same step); the edges nirjax
  cuts cycles at (back edges) get a one-step delay, `LinearFilter([1], [1, 0], analog=False)`,
  which is what a back edge is in nirjax.

With `neuron_type="nengo"`, LIF nodes use Nengo's native `nengo.LIF` instead (see
`nengo_lif`), which is not NIR's discrete update: measured in docs/interop.md.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import nir
import numpy as np

from .._graph import Graph
from ..primitives._io import Input, Output
from ..primitives._neuron import Neuron
from ._common import as_model

NEURON_TYPES = ("nir", "nengo")


def _flat_edges(model: Graph):
    """`(src, dst, back)` between leaf paths, with nirjax's own back edges."""
    out = []

    def endpoint(prefix, nodes, name, port, role):
        node = nodes[name]
        if isinstance(node, Graph):
            ports = node.plan.outputs if role == "src" else node.plan.inputs
            return f"{prefix}{name}/{port if port is not None else ports[0]}"
        return f"{prefix}{name}"

    def visit(graph: Graph, prefix: str):
        for name, node in graph.nodes.items():
            if isinstance(node, Graph):
                visit(node, f"{prefix}{name}/")
        for e in graph.plan.edges:
            out.append((endpoint(prefix, graph.nodes, e.src, e.src_port, "src"),
                        endpoint(prefix, graph.nodes, e.dst, e.dst_port, "dst"), e.back))

    visit(model, "")
    return out


def _affine_of(node, in_shape, dtype):
    """The matrix and bias of a stateless affine node on the flattened input (float64)."""
    n_in = int(np.prod(in_shape))

    def f(x):
        return jnp.ravel(node(jnp.reshape(x, in_shape)))

    zero = jnp.zeros(n_in, dtype)
    bias = np.asarray(f(zero), np.float64)
    matrix = np.asarray(jax.jacfwd(f)(zero), np.float64)
    return matrix, bias


def _nengo_types():
    import nengo

    class NIRNeuron(nengo.neurons.NeuronType):
        """A Nengo neuron type that steps a nirjax neuron node's NIR update (`advance`):
        `J` is the node's per-step input, the output its spikes times `1 / dt` (spiking
        neurons) or its output variable. State variables are the node's `state_vars`."""

        negative = True

        def __init__(self, module: Neuron):
            self.__dict__["_module"] = module  # not a Nengo parameter: the NIR node itself
            self.__dict__["_shape"] = tuple(module.expected_input_shape())
            self.__dict__["spiking"] = bool(module.spiking)
            self.__dict__["state"] = {k: nengo.dists.Choice([0.0]) for k in module.state_vars}
            super().__init__()
            coeffs = module.prepare()
            self.__dict__["_advance"] = jax.jit(lambda s, x: module.advance(coeffs, s, x))
            self.__dict__["_dtype"] = np.asarray(module.zero_state()[module.state_vars[0]]).dtype

        def max_rates_intercepts(self, gain, bias):
            """Not defined for a NIR neuron (no rate approximation); NaN for Nengo's records."""
            nan = np.full(np.shape(gain), np.nan)
            return nan, nan

        def step(self, dt, J, output, **state):
            shape, dtype = self._shape, self._dtype
            s = {k: jnp.asarray(np.reshape(v, shape), dtype) for k, v in state.items()}
            new, y = self._advance(s, jnp.asarray(np.reshape(J, shape), dtype))
            for k in state:
                state[k][...] = np.ravel(np.asarray(new[k]))
            y = np.ravel(np.asarray(y, np.float64))
            output[...] = y / dt if self.spiking else y

    return NIRNeuron


def nengo_lif(module: Neuron, path: str):
    """Nengo's native `nengo.LIF` for a NIR LIF node, and the input scale: Nengo's
    `dv/dt = (J - v) / tau_rc` with threshold 1 is NIR's LIF with `J = r x / v_threshold` when
    `v_leak = v_reset = 0` and one tau per layer (`tau_rc` is a scalar). `tau_ref = 0` and
    `min_voltage = -inf` (Nengo clips at 0 by default). Nengo steps it exactly (not Euler),
    places the spike inside the step and integrates only the rest of that step after a reset:
    its spikes are not NIR's discrete ones (measured in docs/interop.md)."""
    import nengo

    if type(module).__name__ != "LIF":
        raise NotImplementedError(
            f"node {path!r}: neuron_type='nengo' maps LIF nodes to nengo.LIF; a "
            f"{type(module).__name__} has no native Nengo neuron. Use neuron_type='nir'."
        )
    tau = np.unique(np.asarray(module.tau, np.float64))
    if tau.size != 1:
        raise NotImplementedError(f"node {path!r}: nengo.LIF takes one tau_rc per layer.")
    for f in ("v_leak", "v_reset"):
        if not np.allclose(np.asarray(getattr(module, f)), 0):
            raise NotImplementedError(f"node {path!r}: nengo.LIF needs {f} = 0.")
    scale = np.ravel(np.broadcast_to(np.asarray(module.r, np.float64) /
                                     np.asarray(module.v_threshold, np.float64),
                                     module.expected_input_shape()))
    return nengo.LIF(tau_rc=float(tau[0]), tau_ref=0.0, min_voltage=-np.inf, amplitude=1.0), scale


def to_nengo(model: Graph | nir.NIRGraph, xs: Any = None, *, neuron_type: str = "nir",
             label: str = "nirjax") -> Any:
    """Build a `nengo.Network` that runs the graph in Nengo's simulator (see the module
    docstring). Run it with `nengo.Simulator(net, dt=model.options.dt)`.

    **Arguments:**

    - `model`: a nirjax `Graph` (or a NIR graph nirjax wrote).
    - `xs`: optional input, `(T, *input_shape)` (one Input), presented one row per step
      (`nengo.processes.PresentInput`). Without it, connect to `net.inputs[name]` yourself.
    - `neuron_type`: `"nir"` (the NIR update, identical to nirjax) or `"nengo"` (Nengo's
      `nengo.LIF` for LIF nodes, `nengo_lif`).

    **Returns:** the `nengo.Network`, with `net.inputs` / `net.outputs` (name -> passthrough
    Node, flattened), `net.neuron_nodes` (neuron path -> Ensemble) and `net.output_probes`
    (Output name -> a `synapse=None` Probe of the output; spikes in NIR's unit, one per spike).
    """
    import nengo

    if neuron_type not in NEURON_TYPES:
        raise ValueError(f"to_nengo: neuron_type must be one of {list(NEURON_TYPES)}, got "
                         f"{neuron_type!r}.")
    model = as_model(model, "to_nengo")
    dt = model.options.dt
    flat = model.plan.flat
    in_shapes = flat.in_shapes
    NIRNeuron = _nengo_types()
    delay = nengo.synapses.LinearFilter([1.0], [1.0, 0.0], analog=False)
    net = nengo.Network(label=label)
    net.inputs, net.outputs, net.neuron_nodes, net.output_probes = {}, {}, {}, {}
    src_obj, dst_obj, src_scale = {}, {}, {}
    with net:
        for path in flat.nodes:
            node = model.node(path)
            shape = in_shapes[path]
            n = int(np.prod(shape))
            if isinstance(node, Neuron):
                out_n = int(np.prod(node.init_state(shape, jnp.float32)[node.state_vars[0]]
                                    .shape))
                if neuron_type == "nengo" and node.spiking:
                    ntype, scale = nengo_lif(node, path)
                else:
                    ntype, scale = NIRNeuron(node), None
                ens = nengo.Ensemble(out_n, 1, neuron_type=ntype, gain=np.ones(out_n),
                                     bias=np.zeros(out_n), label=path)
                net.neuron_nodes[path] = ens
                if scale is None:
                    dst_obj[path] = ens.neurons
                else:  # nengo.LIF: scale the input into units of its threshold
                    pre = nengo.Node(size_in=out_n, label=f"{path}:in")
                    nengo.Connection(pre, ens.neurons, transform=np.diag(scale), synapse=None)
                    dst_obj[path] = pre
                src_obj[path] = ens.neurons
                src_scale[path] = dt if node.spiking else 1.0
            elif isinstance(node, (Input, Output)):
                pas = nengo.Node(size_in=n, label=path)
                src_obj[path] = dst_obj[path] = pas
                src_scale[path] = 1.0
                if path in model.inputs:
                    net.inputs[path] = pas
                if path in model.outputs:
                    net.outputs[path] = pas
                    net.output_probes[path] = nengo.Probe(pas, synapse=None)
            elif not getattr(node, "stateful", True) and getattr(node, "linear", False):
                matrix, bias = _affine_of(node, shape, jnp.float32)
                pre = nengo.Node(size_in=n, label=f"{path}:in")
                post = nengo.Node(size_in=matrix.shape[0], label=path)
                nengo.Connection(pre, post, transform=matrix, synapse=None)
                if np.any(bias != 0):
                    nengo.Connection(nengo.Node(bias, label=f"{path}:bias"), post, synapse=None)
                dst_obj[path], src_obj[path] = pre, post
                src_scale[path] = 1.0
            else:
                raise NotImplementedError(
                    f"node {path!r} ({type(node).__name__}): to_nengo builds neurons, Input / "
                    "Output and stateless linear nodes; this node has no Nengo equivalent here."
                )
        for src, dst, back in _flat_edges(model):
            nengo.Connection(src_obj[src], dst_obj[dst], transform=src_scale[src],
                             synapse=delay if back else None)
        if xs is not None:
            if len(model.inputs) != 1:
                raise ValueError("to_nengo: xs presents one input; the graph has "
                                 f"{len(model.inputs)}. Connect net.inputs yourself.")
            (name,) = model.inputs
            data = np.asarray(xs, np.float64)
            data = data.reshape(data.shape[0], -1)
            stim = nengo.Node(nengo.processes.PresentInput(data, presentation_time=dt),
                              label="xs")
            nengo.Connection(stim, net.inputs[name], synapse=None)
    return net
