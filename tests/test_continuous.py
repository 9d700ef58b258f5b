"""The continuous-time (diffrax) simulator against closed forms and the NIR paper's recordings."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import conformance

import nirjax
from nirjax._compare import match_spikes
from nirjax._continuous import run_method, simulate_continuous

TAU, TH, N = 0.01, 1.0, 50
CURRENTS = np.linspace(1.2, 3.0, N)  # r I / v_threshold in (1.2, 3): every neuron spikes
T_END = 0.1


def lif_layer(weights: np.ndarray, tau: float = TAU, th: float = TH) -> nir.NIRGraph:
    """Input(1) -> Affine (one input weight per neuron) -> LIF -> Output; the node names of the
    NIR paper's lif_norse.nir, so that both share compiled code."""
    n = len(weights)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "0": nir.Affine(weight=np.asarray(weights, float)[:, None], bias=np.zeros(n)),
            "1": nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                         v_threshold=np.full(n, th), v_reset=np.zeros(n)),
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "0"), ("0", "1"), ("1", "output")],
    )


def lif_times(current: float, t_end: float, tau: float = TAU, th: float = TH) -> np.ndarray:
    """Closed form: from v = 0, `v(t) = r I (1 - exp(-t / tau))` reaches th at
    `t* = -tau ln(1 - th / (r I))`; the reset to 0 restarts the same trajectory."""
    isi = -tau * np.log(1.0 - th / current)
    return isi * np.arange(1, int(np.floor(t_end / isi)) + 1)


def finite(times) -> np.ndarray:
    times = np.asarray(times)
    return times[np.isfinite(times)]


def run_lif(current: float, steps: int = 1000):
    """One LIF (the paper graph's structure, so every call shares one compilation) driven by a
    constant current."""
    graph = nirjax.from_nir(lif_layer(np.array([current])), dt=1e-4)
    return simulate_continuous(graph, jnp.ones((steps, 1), jnp.float32), input_kind="current")


@pytest.mark.parametrize("current", [1.1, 1.5, 2.0, 3.7])
def test_lif_constant_current_matches_closed_form(current):
    result = run_lif(current)
    expected = lif_times(current, T_END)
    got = finite(result.spike_times["1"][0])
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # The gridded spikes bin the same times by floor(t / dt) (either side of a grid point for
    # a spike within float32 rounding of it).
    bins = np.nonzero(np.asarray(result.spikes["1"])[:, 0])[0]
    steps = expected / 1e-4
    assert len(bins) == len(expected)
    clear = np.abs(steps - np.round(steps)) > 1e-3
    np.testing.assert_array_equal(bins[clear], np.floor(steps[clear]).astype(int))
    assert np.all(np.abs(bins - np.floor(steps)) <= 1)
    # Between spikes the voltage follows the closed form (sampled at the end of each step).
    t = (np.arange(1000) + 1) * 1e-4
    since = t - np.concatenate([[0.0], expected])[np.searchsorted(expected, t, side="right")]
    v = np.asarray(result.record["1"]["v"])[:, 0]
    near = np.min(np.abs(t[:, None] - expected[None, :]), axis=1) < 1e-6
    np.testing.assert_allclose(v[~near], (current * (1 - np.exp(-since / TAU)))[~near], atol=1e-5)


def test_vmap_over_a_batch():
    graph = nirjax.from_nir(lif_layer(np.array([1.0])), dt=1e-4)
    scales = jnp.array([1.5, 2.5], jnp.float32)
    xs = scales[:, None, None] * jnp.ones((2, 1000, 1), jnp.float32)
    batch = jax.vmap(lambda x: simulate_continuous(graph, x, input_kind="current"))(xs)
    assert batch.spike_times["1"].shape[:2] == (2, 1)
    for b, scale in enumerate(np.asarray(scales)):
        np.testing.assert_allclose(finite(batch.spike_times["1"][b, 0]),
                                   lif_times(float(scale), T_END), rtol=1e-6)
        single = simulate_continuous(graph, xs[b], input_kind="current")
        np.testing.assert_allclose(np.asarray(batch.record["1"]["v"][b]),
                                   np.asarray(single.record["1"]["v"]), atol=1e-5)


def test_euler_converges_at_first_order():
    """The first three spikes of 30 LIFs (currents spread over [1.2, 3]): the mean spike-time
    error of Euler against the diffrax reference halves when dt halves."""
    currents = CURRENTS[::5][:10].tolist() + np.linspace(1.25, 2.9, 20).tolist()
    ref = [finite(run_lif(c).spike_times["1"][0])[:3] for c in currents]
    for c, r in zip(currents, ref):
        np.testing.assert_allclose(r, lif_times(c, T_END)[:3], rtol=1e-6)
    errors = []
    for dt in (4e-4, 2e-4, 1e-4):
        g = nirjax.from_nir(lif_layer(np.array(currents)), dt=dt, discretization="euler")
        z = np.asarray(g(jnp.ones((round(T_END / dt), 1), jnp.float32)))
        err = []
        for j, r in enumerate(ref):
            t = np.nonzero(z[:, j])[0] * dt  # a spike in step k is at k dt
            pairs = match_spikes(r, t, 5e-3)
            assert len(pairs) == len(r)
            err += [abs(r[a] - t[b]) for a, b in pairs]
        errors.append(np.mean(err))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert errors[-1] < 1e-4  # about one step at dt = 1e-4
    assert np.all((ratios > 1.6) & (ratios < 2.8)), (errors, ratios)


def test_paper_lif_spikes_within_one_step_of_exact_recording():
    path = conformance("lif", "lif_norse.nir")
    data = np.loadtxt(conformance("lif", "lif_exact.csv"), delimiter=",")
    graph = nirjax.from_nir(path, dt=1e-4)
    xs = jnp.asarray(data[:, :1], jnp.float32)
    result = simulate_continuous(graph, xs, input_kind="current")
    steps = np.floor(finite(result.spike_times["1"][0]) / 1e-4).astype(int)
    expected = np.nonzero(data[:, 2])[0]
    np.testing.assert_array_equal(expected, [460, 510, 710, 760])
    assert len(steps) == len(expected)
    assert np.all(np.abs(steps - expected) <= 1)
    # The recording is the analytic solution on the grid: the voltage agrees too.
    np.testing.assert_allclose(np.asarray(result.record["1"]["v"])[:, 0], data[:, 1], atol=1e-6)
    np.testing.assert_array_equal(np.nonzero(np.asarray(result.spikes["1"])[:, 0])[0], expected)


@pytest.mark.slow
def test_paper_lif_with_impulse_inputs_spikes_like_rockpool():
    """Reading each input spike as a Dirac impulse (area dt) instead of a held current moves
    the first spikes one input earlier: the steps that Rockpool and Sinabs report."""
    graph = nirjax.from_nir(conformance("lif", "lif_norse.nir"), dt=1e-4)
    data = np.loadtxt(conformance("lif", "lif_exact.csv"), delimiter=",")
    result = simulate_continuous(graph, jnp.asarray(data[:, :1], jnp.float32), input_kind="spikes")
    steps = np.floor(finite(result.spike_times["1"][0]) / 1e-4 + 1e-3).astype(int)
    np.testing.assert_array_equal(steps, [450, 500, 710, 760])


def test_simulate_method_dispatch():
    graph = nirjax.from_nir(lif_layer(CURRENTS[:3]), dt=1e-4)
    xs = jnp.ones((200, 1), jnp.float32)
    euler = run_method(graph, xs, method="euler")
    np.testing.assert_array_equal(np.asarray(euler.output), np.asarray(graph(xs)))
    exact = run_method(graph, xs, method="exact")
    manual = nirjax.from_nir(lif_layer(CURRENTS[:3]), dt=1e-4, discretization="exact")(xs)
    np.testing.assert_array_equal(np.asarray(exact.output), np.asarray(manual))
    assert set(euler.record) == {"1"}
    with pytest.raises(ValueError, match="method"):
        run_method(graph, xs, method="rk4")


def mixed_graph() -> nir.NIRGraph:
    """Every neuron type, a Delay of a non-whole number of steps, a recurrent IF and Scale."""
    one, z = np.ones(1), np.zeros(1)
    nodes = {
        "input": nir.Input(input_type=np.array([1])),
        "w_lif": nir.Affine(weight=np.array([[1.5]]), bias=z),
        "lif": nir.LIF(tau=0.01 * one, r=one, v_leak=z, v_threshold=one, v_reset=z),
        "delay": nir.Delay(delay=np.array([0.00237])),
        "w_big": nir.Linear(weight=np.array([[1e4]])),
        "lif_d": nir.LIF(tau=0.01 * one, r=one, v_leak=z, v_threshold=one, v_reset=z),
        "w_if": nir.Scale(scale=np.array([100.0])),
        "if": nir.IF(r=one, v_threshold=one, v_reset=z),
        "w_rec": nir.Linear(weight=np.array([[-50.0]])),
        "w_cuba": nir.Affine(weight=np.array([[2.0]]), bias=z),
        "cubalif": nir.CubaLIF(tau_syn=0.005 * one, tau_mem=0.01 * one, r=one, v_leak=z,
                               v_threshold=one, v_reset=z, w_in=one),
        "li": nir.LI(tau=0.01 * one, r=one, v_leak=0.2 * one),
        "w_i": nir.Linear(weight=np.array([[0.5]])),
        "i": nir.I(r=2 * one),
        "cubali": nir.CubaLI(tau_syn=0.004 * one, tau_mem=0.008 * one, r=one, v_leak=z,
                             w_in=one),
        "output": nir.Output(output_type=np.array([1])),
    }
    edges = [
        ("input", "w_lif"), ("w_lif", "lif"), ("lif", "delay"), ("delay", "w_big"),
        ("w_big", "lif_d"), ("lif_d", "output"),
        ("input", "w_if"), ("w_if", "if"), ("if", "w_rec"), ("w_rec", "if"),
        ("input", "w_cuba"), ("w_cuba", "cubalif"),
        ("input", "li"), ("input", "w_i"), ("w_i", "i"), ("input", "cubali"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _cuba_v(t, amplitude, tau_syn, tau_mem):
    """v(t) of `tau_syn I' = -I + A`, `tau_mem v' = -v + I` from I = v = 0 (closed form)."""
    b = -amplitude * tau_syn / (tau_syn - tau_mem)
    return amplitude + b * np.exp(-t / tau_syn) + (-amplitude - b) * np.exp(-t / tau_mem)


@pytest.mark.slow
def test_every_primitive_delay_and_recurrence_against_closed_forms():
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp

    dt, steps = 1e-4, 1000
    graph = nirjax.from_nir(mixed_graph(), dt=dt, delay_rounding=True)
    r = simulate_continuous(graph, jnp.ones((steps, 1), jnp.float32), input_kind="current")
    lif = finite(r.spike_times["lif"][0])
    np.testing.assert_allclose(lif, lif_times(1.5, T_END), rtol=1e-6)
    # Delay: an exact shift by 2.37 ms (not a whole number of steps); the huge weight makes
    # lif_d spike at each arrival.
    lif_d = finite(r.spike_times["lif_d"][0])
    expected_d = lif[lif + 0.00237 < T_END] + 0.00237
    np.testing.assert_allclose(lif_d, expected_d, rtol=1e-6)
    # Recurrent IF: v = 100 t reaches 1 at 10 ms; each spike feeds back -50 dt = -0.005.
    t_if = finite(r.spike_times["if"][0])
    n = np.arange(len(t_if))
    np.testing.assert_allclose(t_if, 0.01 + n * (1.005 / 100), rtol=1e-6)
    assert len(t_if) == 9
    # CubaLIF against scipy's event detection (an independent solver).
    def rhs(t, y):
        return [(2.0 - y[0]) / 0.005, (-y[1] + y[0]) / 0.01]

    def hit(t, y):
        return y[1] - 1.0

    hit.terminal, hit.direction = True, 1
    t0, y, ref = 0.0, [0.0, 0.0], []
    while True:
        sol = solve_ivp(rhs, (t0, T_END), y, events=hit, rtol=1e-11, atol=1e-12)
        if not sol.t_events[0].size:
            break
        t0 = sol.t_events[0][0]
        ref.append(t0)
        y = [sol.y_events[0][0][0], 0.0]
    np.testing.assert_allclose(finite(r.spike_times["cubalif"][0]), ref, rtol=1e-6)
    # Non-spiking neurons, sampled at the end of each step.
    t = (np.arange(steps) + 1) * dt
    np.testing.assert_allclose(r.record["li"]["v"][:, 0], 1.2 * (1 - np.exp(-t / 0.01)),
                               atol=1e-6)
    np.testing.assert_allclose(r.record["i"]["v"][:, 0], t, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r.record["cubali"]["v"][:, 0], _cuba_v(t, 1.0, 0.004, 0.008),
                               rtol=1e-5, atol=1e-6)
    # The Output is lif_d's spikes per step (nir adds Outputs for the other leaves).
    np.testing.assert_array_equal(np.nonzero(np.asarray(r.output["output"])[:, 0])[0],
                                  np.floor(expected_d / dt).astype(int))
    np.testing.assert_allclose(np.asarray(r.output["output_li"]), r.record["li"]["v"])


@pytest.mark.slow
def test_gradient_through_spike_times_matches_finite_differences():
    graph = nirjax.from_nir(lif_layer(np.array([1.5])), dt=1e-4)
    xs = jnp.ones((300, 1), jnp.float32)
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def loss(p):
        r = simulate_continuous(eqx.combine(p, static), xs, input_kind="current")
        return jnp.sum(r.spike_times["1"][0, :2])  # t1 + t2 = 3 t*

    value, grads = eqx.filter_jit(jax.value_and_grad(loss))(params)
    isi = -TAU * np.log(1 - TH / 1.5)
    np.testing.assert_allclose(value, 3 * isi, rtol=1e-6)
    f = eqx.filter_jit(loss)

    def fd(get, h):
        up = eqx.tree_at(get, params, get(params) * (1 + h))
        down = eqx.tree_at(get, params, get(params) * (1 - h))
        return float((f(up) - f(down)) / (2 * h * float(get(params).reshape(-1)[0])))

    checks = [
        (lambda p: p.nodes["1"].tau, grads.nodes["1"].tau, 3 * isi / TAU),
        (lambda p: p.nodes["1"].v_threshold, grads.nodes["1"].v_threshold, 3 * TAU / (1.5 - TH)),
        (lambda p: p.nodes["0"].weight, grads.nodes["0"].weight,
         -3 * TAU * TH / (1.5 * (1.5 - TH))),
    ]
    for get, grad, closed in checks:
        g = float(np.asarray(grad).reshape(-1)[0])
        np.testing.assert_allclose(g, closed, rtol=1e-3)
        np.testing.assert_allclose(g, fd(get, 1e-2), rtol=2e-2)


# ------------------------------------------------------------------------------------ errors
def test_unsupported_nodes_and_inputs_are_errors():
    threshold = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2])), nir.Threshold(threshold=np.ones(2)),
        nir.Output(output_type=np.array([2])),
    )
    g = nirjax.from_nir(threshold, dt=1e-4)
    with pytest.raises(NotImplementedError, match="Threshold"):
        simulate_continuous(g, jnp.zeros((5, 2), jnp.float32))
    delayed = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1])), nir.Delay(delay=np.array([2e-4])),
        nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1),
                v_reset=np.zeros(1)),
        nir.Output(output_type=np.array([1])),
    )
    g = nirjax.from_nir(delayed, dt=1e-4)
    with pytest.raises(NotImplementedError, match="Delay.*current input"):
        simulate_continuous(g, jnp.zeros((5, 1), jnp.float32), input_kind="current")
    g = nirjax.from_nir(lif_layer(CURRENTS[:2]), dt=1e-4)
    with pytest.raises(ValueError, match="input_kind"):
        simulate_continuous(g, jnp.zeros((5, 1), jnp.float32), input_kind="voltage")
    with pytest.raises(ValueError, match="t_end"):
        simulate_continuous(g, jnp.zeros((5, 1), jnp.float32), t_end=1.5e-4 + 1e-5)
    with pytest.raises(ValueError, match="expected shape"):
        simulate_continuous(g, jnp.zeros((5, 2), jnp.float32))


@pytest.mark.slow
def test_gradient_through_a_delay_and_a_second_layer():
    """lif -> Delay(d) -> Linear(1e4) -> lif_d: lif_d spikes at t_k + d, so the gradient of the
    sum of its first two spike times is 2 w.r.t. d and 3 t*/tau w.r.t. lif's tau."""
    one, z = np.ones(1), np.zeros(1)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "w": nir.Affine(weight=np.array([[1.5]]), bias=z),
            "lif": nir.LIF(tau=0.01 * one, r=one, v_leak=z, v_threshold=one, v_reset=z),
            "delay": nir.Delay(delay=np.array([0.00237])),
            "w_big": nir.Linear(weight=np.array([[1e4]])),
            "lif_d": nir.LIF(tau=0.01 * one, r=one, v_leak=z, v_threshold=one, v_reset=z),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "delay"), ("delay", "w_big"),
               ("w_big", "lif_d"), ("lif_d", "output")],
    )
    graph = nirjax.from_nir(g, dt=1e-4, delay_rounding=True)
    xs = jnp.ones((300, 1), jnp.float32)
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def loss(p):
        r = simulate_continuous(eqx.combine(p, static), xs, input_kind="current")
        return jnp.sum(r.spike_times["lif_d"][0, :2])

    value, grads = eqx.filter_jit(jax.value_and_grad(loss))(params)
    isi = -0.01 * np.log(1 - 1 / 1.5)
    np.testing.assert_allclose(value, 3 * isi + 2 * 0.00237, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grads.nodes["delay"].delay), [2.0], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(grads.nodes["lif"].tau), [3 * isi / 0.01], rtol=1e-3)
    # the delayed layer's own time constant does not move spikes forced by the big weight
    np.testing.assert_allclose(np.asarray(grads.nodes["lif_d"].tau), [0.0], atol=1e-3)
    f = eqx.filter_jit(loss)
    h = 1e-5
    up = eqx.tree_at(lambda p: p.nodes["delay"].delay, params, params.nodes["delay"].delay + h)
    down = eqx.tree_at(lambda p: p.nodes["delay"].delay, params, params.nodes["delay"].delay - h)
    np.testing.assert_allclose(float((f(up) - f(down)) / (2 * h)), 2.0, rtol=2e-2)


@pytest.mark.slow
def test_nested_subgraph_is_inlined():
    one, z = np.ones(1), np.zeros(1)
    inner = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "w": nir.Affine(weight=np.array([[2.0]]), bias=z),
            "lif": nir.LIF(tau=0.01 * one, r=one, v_leak=z, v_threshold=one, v_reset=z),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
        type_check=False,
    )
    outer = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])), "sub": inner,
               "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "sub"), ("sub", "output")],
        type_check=False,
    )
    graph = nirjax.from_nir(outer, dt=1e-4)
    r = simulate_continuous(graph, jnp.ones((1000, 1), jnp.float32) * 0.75, input_kind="current")
    np.testing.assert_allclose(finite(r.spike_times["sub/lif"][0]), lif_times(1.5, T_END),
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(r.output), np.asarray(r.spikes["sub/lif"]))


@pytest.mark.slow
def test_subtract_reset_cascade_and_capacity_error():
    """An impulse of 3.5 into an IF (threshold 1, subtractive reset) spikes three times at that
    instant and leaves v = 0.5; with room for only two spikes per step it is an error."""
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1])),
        nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)),
        nir.Output(output_type=np.array([1])),
    )
    graph = nirjax.from_nir(g, dt=1e-4, reset="subtract", input_mode="impulse")
    xs = jnp.zeros((20, 1), jnp.float32).at[5, 0].set(3.5)
    r = simulate_continuous(graph, xs, max_spikes_per_step=4)  # input_kind "spikes" (impulse)
    node = next(iter(r.spike_times))
    np.testing.assert_allclose(finite(r.spike_times[node][0]), [5e-4] * 3, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(r.spikes[node])[:, 0], np.eye(20)[5] * 3)
    np.testing.assert_allclose(np.asarray(r.record[node]["v"])[5:, 0], 0.5, rtol=1e-6)
    with pytest.raises(Exception, match="max_spikes_per_step"):
        jax.block_until_ready(simulate_continuous(graph, xs, max_spikes_per_step=2))


@pytest.mark.parametrize("cls", sorted(
    (c for c in nirjax.module_to_nir.registry if isinstance(c, type) and c is not object),
    key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_registered_primitive_says_how_continuous_time_treats_it(cls):
    """The solver reads each node's own declaration: neurons are integrated, Delays shift
    impulses, stateless affine maps (`linear`) carry impulses; the Heaviside Threshold is not
    affine and is refused."""
    if issubclass(cls, nirjax.Neuron) or cls is nirjax.Delay:
        assert cls.stateful
    elif cls is nirjax.Threshold:
        assert not cls.linear
    else:
        assert cls.linear and not cls.stateful, cls
