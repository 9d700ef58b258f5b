"""Each primitive against a closed form or an independent numpy reference."""

import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import spikes

import nirjax


def one_node(node, dt=1e-3, **options) -> nirjax.Graph:
    """A graph Input -> node -> Output around one NIR node."""
    return nirjax.from_nir(nir.NIRGraph.from_list(node), dt=dt, **options)


def around(node, in_shape, dt=1e-3, **options) -> nirjax.Graph:
    """Input(in_shape) -> node -> Output, with nirjax inferring the output shape (an Output
    without a declared type, as NIR's infer_types would fill in)."""
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array(in_shape)), "n": node,
               "out": nir.Output(output_type=None)},
        edges=[("in", "n"), ("n", "out")],
        type_check=False,
    )
    return nirjax.from_nir(graph, dt=dt, **options)


def const(T, shape, value):
    return jnp.full((T, *shape), value, jnp.float32)


def f64(x):
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- registry
NIR_PRIMITIVES = [
    nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d,
    nir.SumPool2d, nir.AvgPool2d, nir.Flatten, nir.Threshold, nir.Delay, nir.I, nir.IF, nir.LI,
    nir.LIF, nir.CubaLI, nir.CubaLIF, nir.NIRGraph,
]


@pytest.mark.parametrize("cls", [c for c in NIR_PRIMITIVES if c is not nir.NIRGraph])
def test_every_nir_primitive_is_registered(cls):
    assert nirjax.nir_to_module.dispatch(cls) is not nirjax.nir_to_module.dispatch(object)


def test_unregistered_type_is_a_clear_error():
    class Custom(nir.NIRNode):
        def __init__(self):
            self.input_type = {"input": np.array([2])}
            self.output_type = {"output": np.array([2])}
            self.metadata = {}

    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "c": Custom(), "out": nir.Output(np.array([2]))},
        edges=[("in", "c"), ("c", "out")],
        type_check=False,
    )
    with pytest.raises(NotImplementedError, match="node 'c'.*no module for NIR type Custom"):
        nirjax.from_nir(graph, dt=1e-3)


def test_user_registered_primitive():
    class Gain(nir.NIRNode):
        def __init__(self, gain):
            self.gain = gain
            self.input_type = {"input": np.array(gain.shape)}
            self.output_type = {"output": np.array(gain.shape)}
            self.metadata = {}

    class GainModule(nirjax.Primitive):
        gain: jax.Array

        def __call__(self, x):
            return 2.0 * self.gain * x

    @nirjax.nir_to_module.register
    def _(node: Gain, ctx):
        return GainModule(ctx.param(node, "gain"))

    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([3])), "g": Gain(np.array([1.0, 2.0, 3.0])),
               "out": nir.Output(np.array([3]))},
        edges=[("in", "g"), ("g", "out")],
        type_check=False,
    )
    model = nirjax.from_nir(graph, dt=1e-3)
    ys = model(jnp.ones((4, 3)))
    np.testing.assert_allclose(ys, np.tile([2.0, 4.0, 6.0], (4, 1)))


# ----------------------------------------------------------------------------- linear maps
def test_affine_linear_scale_against_numpy():
    rng = np.random.default_rng(1)
    W, b, s = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
    xs = rng.normal(size=(5, 3)).astype(np.float32)
    aff = one_node(nir.Affine(W, b))(jnp.asarray(xs))
    lin = one_node(nir.Linear(W))(jnp.asarray(xs))
    sca = one_node(nir.Scale(s))(jnp.asarray(xs))
    np.testing.assert_allclose(aff, f64(xs) @ W.T + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin, f64(xs) @ W.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sca, f64(xs) * s, rtol=1e-6)


def _conv_reference(x, w, b, stride, pad, dilation, groups):
    """Direct convolution in numpy, (C, *spatial) with explicit (lo, hi) padding per dim."""
    n = w.ndim - 2
    x = np.pad(x, [(0, 0)] + list(pad))
    cout, cin_g = w.shape[:2]
    k = w.shape[2:]
    out_sp = [
        (x.shape[1 + d] - dilation[d] * (k[d] - 1) - 1) // stride[d] + 1 for d in range(n)
    ]
    y = np.zeros((cout, *out_sp))
    per_group = cout // groups
    for o in range(cout):
        g = o // per_group
        for idx in np.ndindex(*out_sp):
            acc = 0.0
            for c in range(cin_g):
                for kk in np.ndindex(*k):
                    pos = tuple(idx[d] * stride[d] + kk[d] * dilation[d] for d in range(n))
                    acc += w[(o, c) + kk] * x[(g * cin_g + c,) + pos]
            y[(o,) + idx] = acc + b[o]
    return y


@pytest.mark.parametrize(
    "padding, stride, dilation, groups",
    [(0, 1, 1, 1), (1, 2, 1, 1), ("same", 1, 2, 1), ("valid", 1, 1, 2), ((1, 2), (2, 1), 1, 1)],
)
def test_conv2d_against_direct_convolution(padding, stride, dilation, groups):
    rng = np.random.default_rng(2)
    cin, cout, H, W = 4, 4, 7, 6
    w = rng.normal(size=(cout, cin // groups, 3, 3))
    b = rng.normal(size=cout)
    node = nir.Conv2d((H, W), w, stride, padding, dilation, groups, b)
    model = around(node, (cin, H, W))  # nir's Conv2d.input_type ignores groups
    x = rng.normal(size=(2, cin, H, W)).astype(np.float32)
    ys = model(jnp.asarray(x))
    two = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    if padding == "same":
        pads = [(dilation * 2 // 2, dilation * 2 - dilation * 2 // 2)] * 2
    elif padding == "valid":
        pads = [(0, 0)] * 2
    else:
        pads = [(p, p) for p in two(padding)]
    for t in range(2):
        ref = _conv_reference(f64(x[t]), w, b, two(stride), pads, two(dilation), groups)
        np.testing.assert_allclose(ys[t], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding, stride", [(0, 1), (2, 2), ("same", 1)])
def test_conv1d_against_direct_convolution(padding, stride):
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(3, 2, 4)), rng.normal(size=3)
    model = one_node(nir.Conv1d(9, w, stride, padding, 1, 1, b))
    x = rng.normal(size=(3, 2, 9)).astype(np.float32)
    ys = model(jnp.asarray(x))
    pads = [(1, 2)] if padding == "same" else [(padding, padding)]
    for t in range(3):
        ref = _conv_reference(f64(x[t]), w, b, (stride,), pads, (1,), 1)
        np.testing.assert_allclose(ys[t], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, divisor", [(nir.SumPool2d, 1), (nir.AvgPool2d, 4)])
def test_pooling_against_reshape_sum(cls, divisor):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 2, 6, 4)).astype(np.float32)
    node = cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    ys = around(node, (2, 6, 4))(jnp.asarray(x))
    ref = f64(x).reshape(3, 2, 3, 2, 2, 2).sum(axis=(3, 5)) / divisor
    np.testing.assert_allclose(ys, ref, rtol=1e-5, atol=1e-5)


def test_flatten_indexes_the_unbatched_shape():
    x = jnp.arange(2 * 8 * 4 * 4, dtype=jnp.float32).reshape(2, 8, 4, 4)
    ys = one_node(nir.Flatten({"input": np.array([8, 4, 4])}, start_dim=0, end_dim=-1))(x)
    assert ys.shape == (2, 128)
    np.testing.assert_array_equal(ys, np.asarray(x).reshape(2, 128))
    ys = one_node(nir.Flatten({"input": np.array([8, 4, 4])}, start_dim=1, end_dim=2))(x)
    assert ys.shape == (2, 8, 16)


def test_threshold_is_a_strict_step():
    th = np.array([0.5, 0.0, -1.0])
    xs = jnp.array([[0.5, 0.1, -1.0], [0.6, -0.1, -0.9]], jnp.float32)
    ys = one_node(nir.Threshold(th))(xs)
    np.testing.assert_array_equal(ys, [[0, 1, 0], [1, 0, 1]])


# ----------------------------------------------------------------------------- delay
def test_delay_shifts_each_neuron_by_its_steps():
    dt = 1e-3
    delay = np.array([0.0, 1e-3, 3e-3])
    xs = spikes(jax.random.PRNGKey(5), (12, 3), 0.5)
    ys = np.asarray(one_node(nir.Delay(delay), dt=dt)(xs))
    for i, d in enumerate([0, 1, 3]):
        np.testing.assert_array_equal(ys[d:, i], np.asarray(xs)[: 12 - d, i])
        np.testing.assert_array_equal(ys[:d, i], 0)


def test_delay_not_a_whole_number_of_steps():
    with pytest.raises(ValueError, match="not a whole number.*delay_rounding=True"):
        one_node(nir.Delay(np.array([1.5e-3])), dt=1e-3)
    model = one_node(nir.Delay(np.array([1.6e-3])), dt=1e-3, delay_rounding=True)
    ys = model(jnp.eye(5, 1, dtype=jnp.float32))
    np.testing.assert_array_equal(np.asarray(ys)[:, 0], [0, 0, 1, 0, 0])


def test_delay_step_by_step_equals_sequence():
    model = one_node(nir.Delay(np.array([2e-3, 0.0, 4e-3])), dt=1e-3)
    xs = spikes(jax.random.PRNGKey(6), (10, 3), 0.5)
    state = model.init_state()
    outs = []
    for t in range(10):
        state, y = model.step(state, xs[t])
        outs.append(y)
    np.testing.assert_array_equal(np.stack(outs), model(xs))


# ----------------------------------------------------------------------------- neurons
def test_integrator_is_linear_in_time():
    ys = one_node(nir.I(np.array([2.0, 0.5])), dt=1e-2)(const(10, (2,), 3.0))
    t = np.arange(1, 11)[:, None] * 1e-2
    np.testing.assert_allclose(ys, t * np.array([2.0, 0.5]) * 3.0, rtol=1e-5)


def test_if_spike_count_for_constant_input():
    # v grows by dt r x = 0.3 per step: spikes at steps 4, 8, ... (1.2 > 1), reset to 0.
    node = nir.IF(r=np.array([1.0]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    ys = one_node(node, dt=0.1)(const(100, (1,), 3.0))
    assert float(ys.sum()) == 25
    np.testing.assert_array_equal(np.nonzero(np.asarray(ys)[:, 0])[0][:3], [3, 7, 11])


def test_if_impulse_reading_adds_r_x():
    node = nir.IF(r=np.array([0.5]), v_threshold=np.array([0.9]), v_reset=np.array([0.0]))
    res = one_node(node, dt=1e-4, input_mode="impulse").run(const(5, (1,), 1.0), record=["if"])
    np.testing.assert_allclose(res.record["if"]["v"][:, 0], [0.5, 0.0, 0.5, 0.0, 0.5])
    np.testing.assert_array_equal(res.output[:, 0], [0, 1, 0, 1, 0])


@pytest.mark.parametrize("discretization", ["euler", "exact"])
def test_li_step_response(discretization):
    tau, r, v_leak, x, dt, T = np.array([0.02, 0.05]), np.array([2.0, 1.0]), np.array([0.1, -0.2]), 0.7, 1e-3, 200
    node = nir.LI(tau=tau, r=r, v_leak=v_leak)
    ys = np.asarray(one_node(node, dt=dt, discretization=discretization)(const(T, (2,), x)))
    k = np.arange(1, T + 1)[:, None]
    v_inf = v_leak + r * x
    if discretization == "exact":
        ref = v_inf * (1 - np.exp(-k * dt / tau))  # the analytic solution from v = 0
    else:
        ref = v_inf * (1 - (1 - dt / tau) ** k)  # the closed form of the Euler recursion
    np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-6)


def _lif_reference(xs, tau, r, v_leak, thr, v_reset, dt, reset="value"):
    v = np.zeros_like(tau)
    vs, zs = [], []
    for x in xs:
        v = v + dt / tau * (v_leak - v + r * x)
        z = (v > thr).astype(float)
        v = np.where(z > 0, v_reset if reset == "value" else v - (thr - v_reset), v)
        vs.append(v.copy())
        zs.append(z)
    return np.array(vs), np.array(zs)


@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_lif_against_numpy_loop(reset):
    rng = np.random.default_rng(7)
    n = 6
    tau = rng.uniform(5e-3, 3e-2, n)
    r = rng.uniform(0.5, 2.0, n)
    v_leak = rng.uniform(-0.1, 0.1, n)
    thr = rng.uniform(0.5, 1.0, n)
    v_reset = rng.uniform(-0.2, 0.1, n)
    xs = rng.uniform(0, 3.0, (300, n)).astype(np.float32)
    node = nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=thr, v_reset=v_reset)
    res = one_node(node, dt=1e-3, reset=reset).run(jnp.asarray(xs), record=["lif"])
    v_ref, z_ref = _lif_reference(f64(xs), tau, r, v_leak, thr, v_reset, 1e-3, reset)
    assert z_ref.sum() > 20
    agree = (np.asarray(res.output) == z_ref).mean()
    assert agree == 1.0
    np.testing.assert_allclose(res.record["lif"]["v"], v_ref, atol=1e-4)


def test_lif_exact_first_spike_time_matches_analytic():
    # From v = 0 with constant drive, v(t) = r x (1 - exp(-t / tau)) crosses the threshold at
    # t* = -tau ln(1 - thr / (r x)); on the grid, the first spike is at the first step >= t*.
    tau, r, x, thr, dt = 0.02, 1.0, 2.0, 1.0, 1e-4
    node = nir.LIF(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([0.0]),
                   v_threshold=np.array([thr]), v_reset=np.array([0.0]))
    ys = np.asarray(one_node(node, dt=dt, discretization="exact")(const(400, (1,), x)))
    t_star = -tau * math.log(1 - thr / (r * x))
    first = np.nonzero(ys[:, 0])[0][0]
    assert first + 1 == math.ceil(t_star / dt - 1e-9)


def _cuba_reference(xs, p, dt, order="current_first", reset="value", spiking=True):
    i = np.zeros_like(p["tau_syn"])
    v = np.zeros_like(i)
    outs, vs = [], []
    for x in xs:
        if order == "current_first":
            i = i + dt / p["tau_syn"] * (p["w_in"] * x - i)
            v = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i)
        else:
            v_new = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i)
            i = i + dt / p["tau_syn"] * (p["w_in"] * x - i)
            v = v_new
        if spiking:
            z = (v > p["v_threshold"]).astype(float)
            drop = p["v_threshold"] - p["v_reset"]
            v = np.where(z > 0, p["v_reset"] if reset == "value" else v - drop, v)
            outs.append(z)
        else:
            outs.append(v.copy())
        vs.append(v.copy())
    return np.array(outs), np.array(vs)


def _cuba_params(n, rng):
    return dict(
        tau_syn=rng.uniform(3e-3, 1e-2, n), tau_mem=rng.uniform(1e-2, 3e-2, n),
        r=rng.uniform(0.5, 2, n), v_leak=rng.uniform(-0.05, 0.05, n),
        v_threshold=rng.uniform(0.3, 0.6, n), v_reset=np.zeros(n), w_in=rng.uniform(0.5, 1.5, n),
    )


@pytest.mark.parametrize("order", ["current_first", "voltage_first"])
@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_cubalif_against_numpy_loop(order, reset):
    rng = np.random.default_rng(8)
    p = _cuba_params(5, rng)
    xs = rng.uniform(0, 2.0, (300, 5)).astype(np.float32)
    res = one_node(nir.CubaLIF(**p), dt=1e-3, cuba_order=order, reset=reset).run(
        jnp.asarray(xs), record=["cubalif"]
    )
    z_ref, v_ref = _cuba_reference(f64(xs), p, 1e-3, order, reset)
    assert z_ref.sum() > 20
    assert (np.asarray(res.output) == z_ref).mean() == 1.0
    np.testing.assert_allclose(res.record["cubalif"]["v"], v_ref, atol=1e-4)


def test_cubali_euler_against_numpy_loop():
    rng = np.random.default_rng(9)
    p = _cuba_params(4, rng)
    p = {k: v for k, v in p.items() if k not in ("v_threshold", "v_reset")}
    xs = rng.uniform(0, 2.0, (100, 4)).astype(np.float32)
    ys = one_node(nir.CubaLI(**p), dt=1e-3)(jnp.asarray(xs))
    ref, _ = _cuba_reference(f64(xs), p, 1e-3, spiking=False)
    np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("equal", [False, True])
def test_cubali_exact_step_response(equal):
    ts, tm, r, w, x, dt, T = 5e-3, (5e-3 if equal else 2e-2), 1.5, 0.8, 1.0, 1e-3, 100
    node = nir.CubaLI(tau_syn=np.array([ts]), tau_mem=np.array([tm]), r=np.array([r]),
                      v_leak=np.array([0.0]), w_in=np.array([w]))
    ys = np.asarray(one_node(node, dt=dt, discretization="exact")(const(T, (1,), x)))[:, 0]
    t = np.arange(1, T + 1) * dt
    if equal:
        ref = r * w * x * (1 - np.exp(-t / tm) * (1 + t / tm))
    else:
        ref = r * w * x * (1 - (ts * np.exp(-t / ts) - tm * np.exp(-t / tm)) / (ts - tm))
    np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-6)


def test_cuba_exact_impulse_decays_freely():
    # One input spike of area 1 at t = 0: I jumps by w_in / tau_syn, then both decay freely.
    ts, tm, dt = 4e-3, 1e-2, 1e-3
    node = nir.CubaLI(tau_syn=np.array([ts]), tau_mem=np.array([tm]), r=np.array([1.0]),
                      v_leak=np.array([0.0]), w_in=np.array([1.0]))
    xs = jnp.zeros((30, 1)).at[0, 0].set(1.0)
    ys = np.asarray(one_node(node, dt=dt, discretization="exact", input_mode="impulse")(xs))
    t = np.arange(1, 31) * dt
    ref = (1 / ts) * ts / (ts - tm) * (np.exp(-t / ts) - np.exp(-t / tm))
    np.testing.assert_allclose(ys[:, 0], ref, rtol=1e-4, atol=1e-7)


def test_per_neuron_parameters_are_kept_as_given():
    rng = np.random.default_rng(10)
    p = _cuba_params(7, rng)
    model = one_node(nir.CubaLIF(**p), dt=1e-3)
    for field, value in p.items():
        np.testing.assert_array_equal(
            np.asarray(getattr(model.nodes["cubalif"], field)), value.astype(np.float32)
        )
