"""Neurons defined outside nirjax (tests/custom_neurons.py) work in every executor.

Each is checked against an independent reference: numpy loops for Euler, SciPy's matrix
exponential (float64) for the exact discretization, closed forms and SciPy's event integration
(`solve_ivp`) for the continuous-time solver.
"""

from __future__ import annotations

import contextlib
import io

import jax.numpy as jnp
import nir
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from custom_neurons import (
    AdaptiveLIF,
    AdaptiveLIFNode,
    RefractoryLIF,
    RefractoryLIFNode,
    adaptive_node,
    refractory_node,
)

import nirjax

DT = 2.0**-10  # a power of two: refractory counters count down exactly
N = 5


def _graph(node, n=N, gain=3.0):
    return nir.NIRGraph(
        nodes={"in": nir.Input(np.array([n])), "w": nir.Linear(np.eye(n) * gain), "n": node,
               "out": nir.Output(np.array([n]))},
        edges=[("in", "w"), ("w", "n"), ("n", "out")],
    )


def _inputs(T=300, p=0.3, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((T, N)) < p).astype(np.float32) * 3.0  # the Linear's gain


def _adaptive_reference(p, xs, method, reset="value"):
    """float64 numpy loop of the adaptive LIF; `method` "euler" (v first, then w, from the
    old state: they do not depend on each other's update) or "exact" (scipy expm)."""
    v, w = np.zeros(N), np.zeros(N)
    vs, zs = [], []
    for x in xs:
        if method == "euler":
            v, w = (v + DT * (p.v_leak - v - w + p.r * x) / p.tau, w - DT * w / p.tau_w)
        else:
            for i in range(N):
                A = np.array([[-1 / p.tau[i], -1 / p.tau[i]], [0.0, -1 / p.tau_w[i]]])
                c = np.array([(p.v_leak[i] + p.r[i] * x[i]) / p.tau[i], 0.0])
                aug = np.zeros((4, 4))
                aug[:2, :2], aug[:2, 2:] = A * DT, np.eye(2) * DT
                E = scipy.linalg.expm(aug)
                s = E[:2, :2] @ np.array([v[i], w[i]]) + E[:2, 2:] @ c
                v[i], w[i] = s
        z = v > p.v_threshold
        if reset == "value":
            v = np.where(z, p.v_reset, v)
        else:
            v = v - z * (p.v_threshold - p.v_reset)
        w = w + p.b * z
        vs.append(v.copy())
        zs.append(z.astype(np.float32))
    return np.array(zs), np.array(vs)


def _refractory_reference(p, xs, method):
    v, ref = np.zeros(N), np.zeros(N)
    vs, zs = [], []
    d = np.exp(-DT / p.tau)
    for x in xs:
        g = ref <= 0
        target = p.v_leak + p.r * x
        step = DT / p.tau * (target - v) if method == "euler" else (1 - d) * (target - v)
        v = np.where(g, v + step, v)
        ref = np.where(g, ref, ref - DT)
        z = v > p.v_threshold
        v = np.where(z, p.v_reset, v)
        ref = np.where(z, p.t_ref, ref)
        vs.append(v.copy())
        zs.append(z.astype(np.float32))
    return np.array(zs), np.array(vs)


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_adaptive_lif_discrete_against_numpy(method, reset):
    p = adaptive_node(N, np.random.default_rng(0))
    g = nirjax.from_nir(_graph(p), dt=DT, discretization=method, reset=reset)
    xs = _inputs()
    res = g.run(jnp.asarray(xs / 3.0), record=["n"])
    z_ref, v_ref = _adaptive_reference(p, xs, method, reset)
    assert z_ref.sum() > 20  # the neurons do spike, and adapt
    np.testing.assert_array_equal(res.output, z_ref)
    np.testing.assert_allclose(res.record["n"]["v"], v_ref, atol=2e-5)


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_refractory_lif_discrete_against_numpy(method):
    p = refractory_node(N, np.random.default_rng(0), DT)
    g = nirjax.from_nir(_graph(p, gain=6.0), dt=DT, discretization=method)
    xs = _inputs() * 2.0
    res = g.run(jnp.asarray(xs / 6.0), record=["n"])
    z_ref, v_ref = _refractory_reference(p, xs, method)
    assert z_ref.sum() > 20
    np.testing.assert_array_equal(res.output, z_ref)
    np.testing.assert_allclose(res.record["n"]["v"], v_ref, atol=2e-5)
    # No spike within t_ref steps after a spike.
    steps = np.round(p.t_ref / DT).astype(int)
    for i in range(N):
        t = np.flatnonzero(z_ref[:, i])
        assert np.all(np.diff(t) > steps[i])


def test_refractory_lif_continuous_against_closed_form():
    """Constant current: first spike at tau ln(v_inf / (v_inf - thr)), then every
    t_ref + tau ln((v_inf - v_reset) / (v_inf - thr))."""
    tau, t_ref, r, thr, i0 = 0.02, 3 * DT, 1.0, 1.0, 1.5
    node = RefractoryLIFNode(tau=np.array([tau]), r=np.array([r]), v_leak=np.zeros(1),
                             v_threshold=np.array([thr]), v_reset=np.zeros(1),
                             t_ref=np.array([t_ref]))
    g = nirjax.from_nir(nir.NIRGraph.from_list(nir.Input(np.array([1])), node,
                                               nir.Output(np.array([1]))), dt=DT)
    T = 200
    res = nirjax.simulate_continuous(g, jnp.full((T, 1), i0, jnp.float32),
                                     input_kind="current", max_spikes_per_step=1)
    times = np.asarray(next(iter(res.spike_times.values())))[0]
    times = times[np.isfinite(times)]
    v_inf = r * i0
    first = tau * np.log(v_inf / (v_inf - thr))
    isi = t_ref + tau * np.log(v_inf / (v_inf - thr))
    expected = first + isi * np.arange(len(times))
    assert len(times) == int((T * DT - first) // isi) + 1
    np.testing.assert_allclose(times, expected, atol=1e-6)


def test_adaptive_lif_continuous_against_scipy_events():
    p = adaptive_node(1, np.random.default_rng(3))
    g = nirjax.from_nir(nir.NIRGraph.from_list(nir.Input(np.array([1])), p,
                                               nir.Output(np.array([1]))), dt=DT)
    i0, T = 2.5, 300
    res = nirjax.simulate_continuous(g, jnp.full((T, 1), i0, jnp.float32),
                                     input_kind="current", max_spikes_per_step=1)
    times = np.asarray(next(iter(res.spike_times.values())))[0]
    times = times[np.isfinite(times)]

    def field(t, s):
        v, w = s
        return [(p.v_leak[0] - v - w + p.r[0] * i0) / p.tau[0], -w / p.tau_w[0]]

    def crossing(t, s):
        return s[0] - p.v_threshold[0]

    crossing.terminal, crossing.direction = True, 1
    t0, s, ref = 0.0, [0.0, 0.0], []
    while True:
        sol = scipy.integrate.solve_ivp(field, (t0, T * DT), s, events=crossing, rtol=1e-10,
                                        atol=1e-12)
        if not sol.t_events[0].size:
            break
        t0 = sol.t_events[0][0]
        ref.append(t0)
        s = [p.v_reset[0], sol.y_events[0][0][1] + p.b[0]]
    assert len(ref) >= 5 and np.diff(ref)[-1] > np.diff(ref)[0]  # adaptation slows it down
    assert len(times) == len(ref)
    np.testing.assert_allclose(times, ref, atol=2e-6)


@pytest.mark.parametrize("make", [adaptive_node, lambda n, rng: refractory_node(n, rng, DT)])
def test_export_and_reimport_bitwise(make, tmp_path):
    node = make(N, np.random.default_rng(5))
    g = nirjax.from_nir(_graph(node), dt=DT, discretization="exact", reset="subtract")
    xs = jnp.asarray(_inputs(100) / 3.0)
    for again in (nirjax.from_nir(nirjax.to_nir(g)), _written(g, tmp_path)):
        a, b = g.nodes["n"], again.nodes["n"]
        assert type(a) is type(b) and a.options == b.options
        for f in type(a).parameters:
            assert np.asarray(getattr(a, f)).tobytes() == np.asarray(getattr(b, f)).tobytes()
        np.testing.assert_array_equal(g(xs), again(xs))


def _written(g, tmp_path):
    path = tmp_path / "custom.nir"
    nirjax.write(path, g)
    return nirjax.load(path)


def test_nirjax_info_lists_the_custom_neurons(tmp_path):
    from nirjax._cli import main

    node = adaptive_node(N, np.random.default_rng(0))
    path = tmp_path / "adaptive.nir"
    nirjax.write(path, nirjax.from_nir(_graph(node), dt=DT))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["info", str(path)]) == 0
    text = out.getvalue()
    assert "AdaptiveLIF" in text and "n" in text


def test_training_fit_trains_the_custom_neurons():
    import training

    rng = np.random.default_rng(0)
    n_in, n_out, T, S = 4, 2, 30, 32
    nodes = {
        "in": nir.Input(np.array([n_in])),
        "fc": nir.Linear(rng.normal(0, 1.0, (N, n_in))),
        "ad": adaptive_node(N, rng),
        "fc2": nir.Linear(rng.normal(0, 1.0, (n_out, N))),
        "ro": RefractoryLIFNode(tau=np.full(n_out, 0.02), r=np.ones(n_out),
                                v_leak=np.zeros(n_out), v_threshold=np.full(n_out, 0.5),
                                v_reset=np.zeros(n_out), t_ref=np.full(n_out, DT)),
        "out": nir.Output(np.array([n_out])),
    }
    edges = [("in", "fc"), ("fc", "ad"), ("ad", "fc2"), ("fc2", "ro"), ("ro", "out")]
    g = nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
    labels = rng.integers(0, n_out, S)
    rates = np.where(labels[:, None] == np.arange(n_in) % n_out, 0.6, 0.05)
    x = (rng.random((S, T, n_in)) < rates[:, None, :]).astype(np.float32) * 5.0
    data = training.SpikeDataset(x, labels.astype(np.int32), n_classes=n_out, dt=DT)
    config = training.TrainConfig(epochs=8, batch_size=16, lr=5e-2, loss="counts",
                                  train=("weight", "tau_w", "b", "t_ref"))
    result = training.fit(g, data, config=config, progress=False)
    losses = [e["train_loss"] for e in result.history]
    assert losses[-1] < losses[0]
    assert not np.array_equal(np.asarray(result.graph.nodes["ad"].b), np.asarray(g.nodes["ad"].b))
    assert isinstance(result.graph.nodes["ro"], RefractoryLIF)


def test_the_definition_is_checked_when_the_class_is_defined():
    with pytest.raises(TypeError, match=r"must set the class variable\(s\) \['spiking'\]"):
        class NoSpiking(nirjax.Neuron):  # noqa: F841
            parameters = {"tau": "positive"}

            def vector_field(self, state, u):
                return {}

    with pytest.raises(TypeError, match="is spiking: define threshold"):
        class NoThreshold(nirjax.Neuron):  # noqa: F841
            parameters, spiking = {"tau": "positive"}, True

            def vector_field(self, state, u):
                return {}

    with pytest.raises(TypeError, match="must define vector_field"):
        class NoField(nirjax.Neuron):  # noqa: F841
            parameters, spiking = {"tau": "positive"}, False

    with pytest.raises(TypeError, match="constraints must be one of"):
        class BadConstraint(nirjax.Neuron):  # noqa: F841
            parameters, spiking = {"tau": "nonnegative"}, False

            def vector_field(self, state, u):
                return {}

    with pytest.raises(ValueError, match="AdaptiveLIF.tau_w: must be > 0"):
        p = adaptive_node(2, np.random.default_rng(0))
        AdaptiveLIF(**{f: jnp.asarray(getattr(p, f), jnp.float32) for f in AdaptiveLIF.parameters
                       if f != "tau_w"}, tau_w=jnp.array([0.1, -1.0], jnp.float32),
                    options=nirjax.Options(dt=DT))


def test_the_node_type_is_read_back_by_name():
    assert nirjax.nir_to_module.dispatch(AdaptiveLIFNode) is not None


@pytest.mark.parametrize("kind", ["adaptive", "refractory"])
def test_fit_mismatch_with_teacher_forcing_recovers_the_custom_neurons(kind):
    """A simulated chip of the custom neuron with 20 % mismatch: the fit, with teacher forcing
    (the neuron's own reset at the recorded spikes), recovers its parameters."""
    import training

    dt, n, n_in = 1e-4, 4, 8
    rng = np.random.default_rng(0)
    if kind == "adaptive":
        node = adaptive_node(n, rng)
        node.tau, node.tau_w = np.full(n, 0.02), np.full(n, 0.05)
        params = ("tau", "tau_w", "b", "v_threshold")
    else:
        node = refractory_node(n, rng, dt)
        node.tau = np.full(n, 0.02)
        params = ("tau", "r", "v_threshold")
    graph = nirjax.from_nir(nir.NIRGraph(
        nodes={"in": nir.Input(np.array([n_in])),
               "fc": nir.Linear(rng.normal(3.0, 1.0, (n, n_in))), "lif": node,
               "out": nir.Output(np.array([n]))},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")]), dt=dt)
    x = (rng.random((2, 1500, n_in)) < 0.06).astype(np.float32) * 10.0
    chip = training.simulate_chip(graph, inputs=x, mismatch=0.2, noise=0.005, params=params,
                                  record=["lif"], seed=3)
    spikes = np.asarray(chip.recordings["lif"]["output"])
    before = training.relative_errors(graph, chip.graph, params)
    fitted, report = training.fit_mismatch(graph, chip.recordings, inputs=chip.inputs,
                                           params=params, steps=150, lr=0.1, progress=False)
    after = training.relative_errors(fitted, chip.graph, params)
    assert report.forced == ("lif",)
    assert spikes.sum() > 20  # the recorded neurons spike, so forcing matters
    err0 = np.median(np.concatenate(list(before.values())))
    err1 = np.median(np.concatenate(list(after.values())))
    assert err0 > 0.05 and err1 < 0.3 * err0, (err0, err1, report.summary())


def test_a_minimal_neuron_built_without_nir():
    """No parameters, a state variable not called v, a graph built from modules directly: the
    discrete executor (both discretizations) and continuous time agree with the closed form
    x(t) = t for a unit input."""

    with pytest.raises(TypeError, match="Counter.parameters is part of the definition"):
        class Counter(nirjax.Neuron):  # noqa: F811
            parameters: dict = {}  # annotated: it would become a field

    class Counter(nirjax.Neuron):  # noqa: F811
        parameters = {}
        state_vars = ("x",)
        output_var = "x"
        spiking = False

        def vector_field(self, state, u):
            return {"x": u}

    for method in ("euler", "exact"):
        opts = nirjax.Options(dt=1e-3, discretization=method)
        g = nirjax.Graph({"in": nirjax.Input((2,)), "c": Counter(options=opts),
                          "out": nirjax.Output((2,))}, [("in", "c"), ("c", "out")], options=opts)
        xs = jnp.ones((10, 2), jnp.float32)
        np.testing.assert_allclose(g(xs)[:, 0], 1e-3 * np.arange(1, 11), rtol=1e-6)
        cont = nirjax.simulate_continuous(g, xs, input_kind="current").output
        np.testing.assert_allclose(cont[:, 0], 1e-3 * np.arange(1, 11), rtol=1e-5)
