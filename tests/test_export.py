"""Round trips: from_nir -> to_nir -> nir.write -> nir.read -> from_nir.

Parameters must come back bit for bit, options without being passed again, and the rebuilt graph
must compute exactly the same outputs. Every registered primitive has a case here (a new
registry entry without one fails `test_every_primitive_has_a_case`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from custom_neurons import adaptive_node, refractory_node
from helpers import conformance
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import nirjax
from nirjax._export import recorded_options

DT = 1e-3
RNG = np.random.default_rng(1234)


def _f32(*shape, low=-1.0, high=1.0):
    """Random float32 values that are not round numbers, so a lossy cast would show."""
    return RNG.uniform(low, high, shape).astype(np.float32)


def _neuron(kind: str, n: int):
    if kind == "I":
        return nir.I(r=_f32(n, low=0.5, high=2))
    if kind == "IF":
        return nir.IF(r=_f32(n, low=0.5, high=2), v_threshold=_f32(n, low=0.5, high=1),
                      v_reset=_f32(n, low=-0.2, high=0.1))
    if kind == "LI":
        return nir.LI(tau=_f32(n, low=2e-3, high=5e-2), r=_f32(n, low=0.5, high=2),
                      v_leak=_f32(n, low=-0.1, high=0.1))
    if kind == "LIF":
        return nir.LIF(tau=_f32(n, low=2e-3, high=5e-2), r=_f32(n, low=5, high=20),
                       v_leak=_f32(n, low=-0.1, high=0.1), v_threshold=_f32(n, low=0.3, high=1),
                       v_reset=_f32(n, low=-0.2, high=0.1))
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=_f32(n, low=2e-3, high=2e-2), tau_mem=_f32(n, low=3e-3, high=5e-2),
                          r=_f32(n, low=0.5, high=2), v_leak=_f32(n, low=-0.1, high=0.1),
                          w_in=_f32(n, low=0.5, high=2))
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=_f32(n, low=2e-3, high=2e-2),
                           tau_mem=_f32(n, low=3e-3, high=5e-2), r=_f32(n, low=10, high=40),
                           v_leak=_f32(n, low=-0.1, high=0.1), v_threshold=_f32(n, low=0.3, high=1),
                           v_reset=_f32(n, low=-0.2, high=0.1), w_in=_f32(n, low=5, high=20))
    if kind in CUSTOM:  # the neurons defined outside nirjax (tests/custom_neurons.py)
        node = CUSTOM[kind](n, RNG)
        for f in type(node).__dataclass_fields__:
            if isinstance(getattr(node, f, None), np.ndarray):
                setattr(node, f, np.asarray(getattr(node, f), np.float32))
        return node
    raise KeyError(kind)


CUSTOM = {"AdaptiveLIF": adaptive_node,
          "RefractoryLIF": lambda n, rng: refractory_node(n, rng, DT)}
NEURONS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", *CUSTOM)


def _chain(*nodes, shape, out=None):
    """Input(shape) -> nodes... -> Output(out), with NIR's type inference where `out` is None."""
    g = nir.NIRGraph.from_list(*nodes, type_check=False)
    g.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    if out is not None:
        g.nodes["output"] = nir.Output(output_type={"output": np.array(out)})
    return g


def _case(name: str):
    """A small NIR graph exercising one primitive, and its per-step input shape."""
    n = 4
    if name in NEURONS:
        return _chain(nir.Affine(weight=_f32(n, 3), bias=_f32(n)), _neuron(name, n), shape=(3,)), (3,)
    if name == "Affine":
        return _chain(nir.Affine(weight=_f32(n, 3), bias=_f32(n)), shape=(3,)), (3,)
    if name == "Linear":
        return _chain(nir.Linear(weight=_f32(n, 3)), shape=(3,)), (3,)
    if name == "Scale":
        return _chain(nir.Scale(scale=_f32(n)), shape=(n,)), (n,)
    if name == "Threshold":
        return _chain(nir.Threshold(threshold=_f32(n, low=0, high=0.5)), shape=(n,)), (n,)
    if name == "Delay":
        delay = np.array([0, 1, 3, 2], np.float64) * DT
        return _chain(nir.Delay(delay=delay.astype(np.float32)), shape=(n,)), (n,)
    if name == "Conv1d":
        conv = nir.Conv1d(input_shape=10, weight=_f32(3, 2, 3), stride=2, padding=1, dilation=1,
                          groups=1, bias=_f32(3))
        return _chain(conv, shape=(2, 10)), (2, 10)
    if name == "Conv2d":
        conv = nir.Conv2d(input_shape=np.array([6, 6]), weight=_f32(4, 2, 3, 3),
                          stride=np.array([1, 2]), padding=np.array([1, 0]),
                          dilation=np.array([1, 1]), groups=1, bias=_f32(4))
        return _chain(conv, shape=(2, 6, 6)), (2, 6, 6)
    if name == "Conv2d_groups":
        conv = nir.Conv2d(input_shape=np.array([6, 6]), weight=_f32(4, 1, 3, 3),
                          stride=np.array([1, 2]), padding=np.array([1, 0]),
                          dilation=np.array([1, 1]), groups=2, bias=_f32(4))
        return _chain(conv, shape=(2, 6, 6)), (2, 6, 6)
    if name == "SumPool2d":
        pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 1]),
                             padding=np.array([0, 1]))
        return _chain(pool, shape=(2, 6, 6), out=(2, 3, 7)), (2, 6, 6)
    if name == "AvgPool2d":
        pool = nir.AvgPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 2]),
                             padding=np.array([1, 1]))
        return _chain(pool, shape=(2, 6, 6), out=(2, 4, 3)), (2, 6, 6)
    if name == "Flatten":
        flat = nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=1, end_dim=2)
        return _chain(flat, shape=(2, 3, 4), out=(2, 12)), (2, 3, 4)
    if name == "Input" or name == "Output":
        return _chain(nir.Scale(scale=_f32(n)), shape=(n,)), (n,)
    if name == "subgraph":
        inner = nir.NIRGraph(
            nodes={
                "in": nir.Input(input_type={"input": np.array([n])}),
                "lif": _neuron("LIF", n),
                "w_rec": nir.Linear(weight=_f32(n, n)),
                "out": nir.Output(output_type={"output": np.array([n])}),
            },
            edges=[("in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "out")],
            type_check=False,
        )
        outer = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([3])}),
                "fc": nir.Affine(weight=_f32(n, 3), bias=_f32(n)),
                "rnn": inner,
                "readout": _neuron("CubaLI", n),
                "output": nir.Output(output_type={"output": np.array([n])}),
            },
            edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "readout"), ("readout", "output")],
            type_check=False,
        )
        return outer, (3,)
    raise KeyError(name)


PRIMITIVES = (
    "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten",
    "Threshold", "Delay", *NEURONS, "subgraph",
)


# ----------------------------------------------------------------------------------- helpers
def _round_trip(graph: nirjax.Graph, tmp_path, name="g.nir", type_check=True,
                **load_kw) -> nirjax.Graph:
    path = tmp_path / name
    nirjax.write(path, graph)
    # A valid NIR file: the plain NIR reader loads it, with its own type checks. (With type
    # checks NIR's reader also adds an Output for every node without successors, so the round
    # trip itself reads the file as written.)
    # Node types of the user's own (tests/custom_neurons.py) are read by nirjax.read only.
    if all(hasattr(nir, type(m).__name__) or isinstance(m, (nirjax.Graph, nirjax.Input,
                                                           nirjax.Output))
           for _, m in nirjax.walk(graph)):
        assert isinstance(nir.read(path, type_check=type_check), nir.NIRGraph)
        return nirjax.from_nir(nir.read(path, type_check=False), **load_kw)
    return nirjax.from_nir(nirjax.read(path), **load_kw)


def _static(module) -> dict:
    """Every static field of a module (options, shapes, strides...), except graph metadata."""
    out = {}
    for f in dataclasses.fields(module):
        if f.metadata.get("static", False) and f.name != "metadata":
            out[f.name] = getattr(module, f.name)
    return out


def assert_same_graph(a: nirjax.Graph, b: nirjax.Graph) -> None:
    """Same structure, same static configuration, bitwise identical array leaves."""
    la, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(a, eqx.is_array))
    lb, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(b, eqx.is_array))
    assert [jax.tree_util.keystr(p) for p, _ in la] == [jax.tree_util.keystr(p) for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype, jax.tree_util.keystr(path)
        assert np.array_equal(x, y), f"{jax.tree_util.keystr(path)} differs after the round trip"
    na, nb = dict(nirjax.walk(a)), dict(nirjax.walk(b))
    assert sorted(na) == sorted(nb)
    for key in na:
        assert type(na[key]) is type(nb[key]), key
        assert _static(na[key]) == _static(nb[key]), key
    assert _static(a) == _static(b)


def _inputs(graph: nirjax.Graph, T=12, batch=3, seed=0):
    """Bernoulli(0.4) input spikes (numpy's generator: jax.random compiles per shape, which
    would dominate these tests)."""
    shape = graph.input_shapes()
    if isinstance(shape, dict):
        (shape,) = shape.values()
    x = np.random.default_rng(seed).uniform(size=(batch, T) + tuple(shape)) < 0.4
    return jnp.asarray(x, dtype=jnp.float32)


def assert_same_outputs(a: nirjax.Graph, b: nirjax.Graph, xs) -> None:
    ya = np.asarray(jax.vmap(a)(xs))
    yb = np.asarray(jax.vmap(b)(xs))
    assert np.array_equal(ya, yb)


# ----------------------------------------------------------------------------- every primitive
def test_every_primitive_has_a_case():
    registered = {cls.__name__ for cls in nirjax.module_to_nir.registry if cls is not object}
    covered = set(PRIMITIVES) | {"Input", "Output"}
    assert registered <= covered, f"no round-trip case for {sorted(registered - covered)}"


@pytest.mark.parametrize("name", PRIMITIVES)
def test_round_trip_primitive(name, tmp_path):
    src, _ = _case(name)
    g1 = nirjax.from_nir(src, dt=DT)
    g2 = _round_trip(g1, tmp_path)  # no dt passed: it comes from the file
    assert_same_graph(g1, g2)
    assert g2.options == g1.options
    assert_same_outputs(g1, g2, _inputs(g1))
    # A second round trip changes nothing either.
    assert_same_graph(g2, _round_trip(g2, tmp_path, "again.nir"))


def test_round_trip_subgraph_port_edges(tmp_path):
    """Edges that name a subgraph's Input/Output (`"rnn.in"`, `"rnn.out"`) are written as they
    were. (nir 1.0.8's type-checked reader does not resolve such ports, so the file is read with
    `type_check=False`.)"""
    src, _ = _case("subgraph")
    src.edges = [("input", "fc"), ("fc", "rnn.in"), ("rnn.out", "readout"), ("readout", "output")]
    g1 = nirjax.from_nir(src, dt=DT)
    exported = nirjax.to_nir(g1)
    assert sorted(exported.edges) == sorted(src.edges)
    g2 = _round_trip(g1, tmp_path, type_check=False)
    assert sorted(e.key for e in g2.plan.edges) == sorted(e.key for e in g1.plan.edges)
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1))


def test_round_trip_grouped_conv(tmp_path):
    """nir 1.0.8's type inference ignores `groups` (it expects C_in = weight.shape[1]), so a
    grouped convolution is read back with `type_check=False`, as NIR's reader recommends."""
    src, _ = _case("Conv2d_groups")
    g1 = nirjax.from_nir(src, dt=DT)
    g2 = _round_trip(g1, tmp_path, type_check=False)
    assert g2.nodes["conv2d"].groups == 2
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1))


def test_trained_parameters_are_exported(tmp_path):
    """A parameter changed after import (as by training) is what the file carries."""
    src, _ = _case("LIF")
    g = nirjax.from_nir(src, dt=DT)
    new_tau = g.nodes["lif"].tau * 1.25
    g = eqx.tree_at(lambda m: m.nodes["lif"].tau, g, new_tau)
    exported = nirjax.to_nir(g)
    assert np.array_equal(exported.nodes["lif"].tau, np.asarray(new_tau))
    g2 = _round_trip(g, tmp_path)
    assert np.array_equal(np.asarray(g2.nodes["lif"].tau), np.asarray(new_tau))


# --------------------------------------------------------------------------------- options
OPTION_CASES = {
    "reset_subtract": dict(reset="subtract"),
    "exact": dict(discretization="exact"),
    "impulse": dict(input_mode="impulse"),
    "voltage_first": dict(cuba_order="voltage_first"),
    "surrogate": dict(surrogate=nirjax.Surrogate("arctan", 3.5)),
    "detach_reset": dict(detach_reset=True),
    "multi_spike": dict(reset="subtract", spikes_per_step="multi"),
    "greater_equal": dict(threshold_comparison="greater_equal"),
    "before_input": dict(spike_order="before_input"),
}


def _options_graph():
    n = 4
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Affine(weight=_f32(n, 3, low=0, high=2), bias=_f32(n)),
            "lif": _neuron("LIF", n),
            "cuba": _neuron("CubaLIF", n),
            "thr": nir.Threshold(threshold=_f32(n, low=0.1, high=0.5)),
            "li": _neuron("LI", n),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("fc", "cuba"), ("lif", "thr"), ("cuba", "thr"),
               ("thr", "li"), ("li", "output")],
        type_check=False,
    )


def _grads(graph, xs):
    def loss(g):
        return jnp.sum(jax.vmap(g)(xs) ** 2)

    return eqx.filter_grad(loss)(graph)


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_round_trip_restores_options(case, tmp_path):
    g1 = nirjax.from_nir(_options_graph(), dt=DT, **OPTION_CASES[case])
    g2 = _round_trip(g1, tmp_path)  # nothing passed again
    assert g2.options == g1.options != nirjax.Options(dt=DT)
    for name in ("lif", "cuba", "li"):
        assert g2.nodes[name].options == g1.nodes[name].options == g1.options
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1, T=8, batch=2))


def test_round_trip_restores_gradients(tmp_path):
    """The surrogate and the reset detachment show only in gradients: those must match too."""
    n = 2
    src = _chain(nir.Linear(weight=_f32(n, n, low=1, high=3)), _neuron("LIF", n), shape=(n,))
    g1 = nirjax.from_nir(src, dt=DT, surrogate=nirjax.Surrogate("arctan", 3.5),
                         node_options={"lif": {"detach_reset": True}})
    g2 = _round_trip(g1, tmp_path)
    assert g2.nodes["lif"].options.surrogate == nirjax.Surrogate("arctan", 3.5)
    assert g2.nodes["lif"].options.detach_reset
    xs = _inputs(g1, T=6, batch=1)
    ga, gb = _grads(g1, xs), _grads(g2, xs)
    leaves = jax.tree.leaves(ga)
    assert any(np.any(np.asarray(x) != 0) for x in leaves)
    for x, y in zip(leaves, jax.tree.leaves(gb)):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_restores_per_node_options(tmp_path):
    node_options = {
        "lif": {"reset": "subtract", "discretization": "exact"},
        "cuba": {"cuba_order": "voltage_first", "surrogate": nirjax.Surrogate("sigmoid", 7.0)},
        "thr": {"surrogate": "rectangle"},
        "li": {"dt": 2 * DT, "input_mode": "impulse"},
    }
    g1 = nirjax.from_nir(_options_graph(), dt=DT, surrogate=nirjax.Surrogate("arctan", 3.0),
                         node_options=node_options)
    exported = nirjax.to_nir(g1)
    # Only what differs from the graph's defaults is recorded on a node.
    assert exported.nodes["fc"].metadata == {}
    assert set(exported.nodes["lif"].metadata) == {"nirjax_reset", "nirjax_discretization"}
    g2 = _round_trip(g1, tmp_path)
    assert g2.nodes["lif"].options == g1.nodes["lif"].options
    assert g2.nodes["lif"].options.reset == "subtract"
    assert g2.nodes["cuba"].options.surrogate == nirjax.Surrogate("sigmoid", 7.0)
    assert g2.nodes["cuba"].options.cuba_order == "voltage_first"
    assert g2.nodes["thr"].surrogate == nirjax.Surrogate("rectangle")
    assert g2.nodes["li"].options.dt == 2 * DT
    assert g2.nodes["li"].options.input_mode == "impulse"
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1, T=8, batch=2))


def test_subgraph_options_are_restored(tmp_path):
    src, _ = _case("subgraph")
    g1 = nirjax.from_nir(src, dt=DT, node_options={"rnn": {"reset": "subtract"},
                                                   "rnn/lif": {"discretization": "exact"}})
    g2 = _round_trip(g1, tmp_path)
    assert g2.nodes["rnn"].options.reset == "subtract"
    assert g2.nodes["rnn"].nodes["lif"].options.reset == "subtract"
    assert g2.nodes["rnn"].nodes["lif"].options.discretization == "exact"
    assert g2.nodes["readout"].options.reset == "value"
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1))


def test_delay_rounding_and_dt_are_restored(tmp_path):
    src = _chain(nir.Delay(delay=np.array([0.0, 1.4e-3, 2.6e-3], np.float32)), shape=(3,))
    with pytest.raises(ValueError, match="not a whole number"):
        nirjax.from_nir(src, dt=DT)
    g1 = nirjax.from_nir(src, dt=DT, delay_rounding=True)
    g2 = _round_trip(g1, tmp_path)
    assert g2.options.delay_rounding
    assert_same_graph(g1, g2)
    xs = _inputs(g1)
    assert_same_outputs(g1, g2, xs)
    # The rounded delays (1 and 3 steps) against a shift computed by hand.
    ys = np.asarray(jax.vmap(g2)(xs))
    x = np.asarray(xs)
    assert np.array_equal(ys[:, :, 0], x[:, :, 0])
    assert np.array_equal(ys[:, 1:, 1], x[:, :-1, 1]) and np.all(ys[:, :1, 1] == 0)
    assert np.array_equal(ys[:, 3:, 2], x[:, :-3, 2]) and np.all(ys[:, :3, 2] == 0)


def test_float64_graph_round_trips_with_load(tmp_path):
    jax.config.update("jax_enable_x64", True)
    try:
        src, _ = _case("CubaLIF")
        g1 = nirjax.from_nir(src, dt=DT, dtype=jnp.float64)
        path = tmp_path / "g64.nir"
        nirjax.write(path, g1)
        assert recorded_options(path)["dtype"] == "float64"
        g2 = nirjax.load(path)
        assert_same_graph(g1, g2)
        assert_same_outputs(g1, g2, _inputs(g1).astype(jnp.float64))
    finally:
        jax.config.update("jax_enable_x64", False)


def test_options_given_at_load_override_recorded_ones(tmp_path):
    g1 = nirjax.from_nir(_options_graph(), dt=DT, reset="subtract")
    path = tmp_path / "g.nir"
    nirjax.write(path, g1)
    assert nirjax.load(path).options.reset == "subtract"
    g3 = nirjax.load(path, reset="value", dt=DT)  # the recorded dt may be repeated
    assert g3.options.reset == "value" and g3.options.dt == DT
    # another dt than the recorded one is refused (the parameters hold for the recorded step),
    # and asked for explicitly with with_options
    with pytest.raises(ValueError, match=r"the graph records dt=0\.001, but dt=0\.002 was "
                       r"passed.*with_options\(dt=0\.002\)"):
        nirjax.load(path, dt=2 * DT)
    g4 = nirjax.load(path).with_options(dt=2 * DT)
    assert g4.options.dt == 2 * DT and g4.options.reset == "subtract"


def test_graph_metadata_and_names_survive(tmp_path):
    src, _ = _case("subgraph")
    src.metadata = {"author": "test", "epochs": 3}
    g1 = nirjax.from_nir(src, dt=DT)
    r = nir.read(_write(g1, tmp_path))
    assert r.metadata["author"] == "test" and int(r.metadata["epochs"]) == 3
    assert set(r.nodes) == set(src.nodes)
    assert sorted(r.edges) == sorted(src.edges)
    assert sorted(r.nodes["rnn"].edges) == sorted(src.nodes["rnn"].edges)


def _write(graph, tmp_path, name="w.nir"):
    path = tmp_path / name
    nirjax.write(path, graph)
    return path


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failing write leaves an existing file untouched and no temporary file behind."""
    src, _ = _case("LIF")
    g = nirjax.from_nir(src, dt=DT)
    path = _write(g, tmp_path)
    before = path.read_bytes()

    def broken(group, data, where):
        group.create_dataset("partial", data=1)
        raise OSError("disk full")

    monkeypatch.setattr(nirjax._export, "_write_group", broken)
    with pytest.raises(OSError, match="disk full"):
        nirjax.write(path, g)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.nir"]


# ---------------------------------------------------------------------------- conformance
CONFORMANCE = {
    "lif_norse": (("lif", "lif_norse.nir"), {}),
    "two_lif_neurons": (("lif", "two_lif_neurons.nir"), {}),
    "cnn_sinabs": (("cnn", "cnn_sinabs.nir"), {}),
    "braille_zero": (("braille", "braille_noDelay_bias_zero.nir"), {}),
    "braille_subtract": (("braille", "braille_noDelay_noBias_subtract.nir"), dict(reset="subtract")),
}


@pytest.mark.parametrize("case", sorted(CONFORMANCE))
def test_round_trip_conformance(case, tmp_path):
    parts, kw = CONFORMANCE[case]
    path = conformance(*parts)
    g1 = nirjax.from_nir(path, dt=1e-4, **kw)
    g2 = _round_trip(g1, tmp_path)
    assert_same_graph(g1, g2)
    assert g2.options == g1.options
    if case != "cnn_sinabs":  # its outputs: test_round_trip_cnn_outputs (slow)
        assert_same_outputs(g1, g2, _inputs(g1, T=4, batch=1))
    # And against the original file's parameters, bitwise.
    assert_same_graph(nirjax.from_nir(path, dt=1e-4, **kw), g2)


@pytest.mark.slow
def test_round_trip_cnn_outputs(tmp_path):
    path = conformance("cnn", "cnn_sinabs.nir")
    g1 = nirjax.from_nir(path, dt=1e-4)
    g2 = _round_trip(g1, tmp_path)
    assert_same_outputs(g1, g2, _inputs(g1, T=4, batch=1))


# ------------------------------------------------------------------------------ hypothesis
ELEMENTWISE = ("Scale", "Threshold", "Delay", *NEURONS)
LAYERS = ("Affine", "Linear")


@st.composite
def random_graphs(draw, cyclic: bool):
    """A random graph of `k` nodes over vectors of `n` neurons; every node takes edges from at
    least one earlier node (so everything is reachable from the Input); cyclic graphs also get
    back edges from later to earlier (or the same) nodes."""
    n = draw(st.integers(1, 4))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    kinds = [draw(st.sampled_from(ELEMENTWISE + LAYERS)) for _ in range(k)]
    nodes = {"input": nir.Input(input_type={"input": np.array([n])})}
    edges = []

    def vec(low, high):
        return rng.uniform(low, high, n).astype(np.float32)

    for i, kind in enumerate(kinds):
        name = f"n{i}_{kind.lower()}"
        if kind == "Affine":
            node = nir.Affine(weight=rng.normal(0, 1, (n, n)).astype(np.float32), bias=vec(-0.2, 0.2))
        elif kind == "Linear":
            node = nir.Linear(weight=rng.normal(0, 1, (n, n)).astype(np.float32))
        elif kind == "Scale":
            node = nir.Scale(scale=vec(-2, 2))
        elif kind == "Threshold":
            node = nir.Threshold(threshold=vec(0, 1))
        elif kind == "Delay":
            node = nir.Delay(delay=(rng.integers(0, 4, n) * DT).astype(np.float32))
        else:
            node = _neuron_rng(kind, n, rng)
        preds = [p for p in nodes if p != "output"]
        chosen = draw(st.lists(st.sampled_from(preds), min_size=1, max_size=3, unique=True))
        edges += [(p, name) for p in chosen]
        nodes[name] = node
    names = [k for k in nodes if k != "input"]
    if cyclic:
        # One to three cycles: a forward edge i -> j (if not already there) and j -> i back.
        for _ in range(draw(st.integers(1, 3))):
            j = draw(st.integers(0, len(names) - 1))
            i = draw(st.integers(0, j))
            if i < j:
                edges.append((names[i], names[j]))
            edges.append((names[j], names[i]))
    nodes["output"] = nir.Output(output_type={"output": np.array([n])})
    edges.append((names[-1], "output"))
    edges = list(dict.fromkeys(edges))
    options = dict(
        reset=draw(st.sampled_from(["value", "subtract"])),
        discretization=draw(st.sampled_from(["euler", "exact"])),
        input_mode=draw(st.sampled_from(["current", "impulse"])),
        cuba_order=draw(st.sampled_from(["current_first", "voltage_first"])),
        surrogate=draw(st.sampled_from(sorted(nirjax.SURROGATES))),
    )
    node_options = {}
    for name in names:
        if draw(st.booleans()) and not name.endswith(("affine", "linear", "scale", "delay")):
            node_options[name] = {"reset": draw(st.sampled_from(["value", "subtract"])),
                                  "surrogate": draw(st.sampled_from(sorted(nirjax.SURROGATES)))}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    return graph, options, node_options, n


def _neuron_rng(kind, n, rng):
    def vec(low, high):
        return rng.uniform(low, high, n).astype(np.float32)

    tau = dict(tau=vec(2e-3, 5e-2))
    if kind == "I":
        return nir.I(r=vec(0.5, 2))
    if kind == "IF":
        return nir.IF(r=vec(0.5, 2), v_threshold=vec(0.2, 1), v_reset=vec(-0.2, 0.1))
    if kind == "LI":
        return nir.LI(**tau, r=vec(0.5, 2), v_leak=vec(-0.1, 0.1))
    if kind == "LIF":
        return nir.LIF(**tau, r=vec(5, 20), v_leak=vec(-0.1, 0.1), v_threshold=vec(0.2, 1),
                       v_reset=vec(-0.2, 0.1))
    common = dict(tau_syn=vec(2e-3, 2e-2), tau_mem=vec(3e-3, 5e-2), v_leak=vec(-0.1, 0.1))
    if kind == "CubaLI":
        return nir.CubaLI(**common, r=vec(0.5, 2), w_in=vec(0.5, 2))
    return nir.CubaLIF(**common, r=vec(10, 40), w_in=vec(5, 20), v_threshold=vec(0.2, 1),
                       v_reset=vec(-0.2, 0.1))


def _check_random(data, tmp_path_factory):
    graph, options, node_options, n = data
    g1 = nirjax.from_nir(graph, dt=DT, node_options=node_options, **options)
    g2 = _round_trip(g1, tmp_path_factory.mktemp("h"))
    assert_same_graph(g1, g2)
    assert_same_outputs(g1, g2, _inputs(g1, T=6, batch=2))


# No shrinking: each example compiles two graphs, and shrinking can take minutes. A failure
# prints the whole generated graph, which is small enough to read.
_HYP = settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_HYP
@given(random_graphs(cyclic=False))
def test_round_trip_random_dag(tmp_path_factory, data):
    _check_random(data, tmp_path_factory)


@_HYP
@given(random_graphs(cyclic=True))
def test_round_trip_random_cyclic(tmp_path_factory, data):
    g1 = nirjax.from_nir(data[0], dt=DT, node_options=data[2], **data[1])
    assert g1.plan.back_edges  # the strategy really made a cycle
    _check_random(data, tmp_path_factory)


def test_two_disjoint_cycles(tmp_path):
    """Two separate self-loops (each cycle carries only its own back edge)."""
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "a": nir.Scale(scale=_f32(2)), "b": nir.Scale(scale=_f32(2)),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "a"), ("input", "b"), ("a", "a"), ("b", "b"), ("a", "output"),
               ("b", "output")],
        type_check=False,
    )
    g1 = nirjax.from_nir(g, dt=DT)
    assert len(g1.plan.back_edges) == 2
    g2 = _round_trip(g1, tmp_path)
    assert_same_graph(g1, g2)
    xs = _inputs(g1, T=4, batch=1)
    assert_same_outputs(g1, g2, xs)
    # y[t] = s_a y_a[t] + s_b y_b[t] with y_n[t] = x[t] + s_n y_n[t-1], computed by hand.
    sa, sb = (np.asarray(g1.nodes[k].scale, np.float64) for k in ("a", "b"))
    x = np.asarray(xs[0], np.float64)
    ya = yb = np.zeros(2)
    expected = []
    for t in range(x.shape[0]):
        ya, yb = sa * (x[t] + ya), sb * (x[t] + yb)
        expected.append(ya + yb)
    np.testing.assert_allclose(np.asarray(g2(xs[0])), np.array(expected), rtol=1e-5, atol=1e-6)
