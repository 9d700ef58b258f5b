"""The compile plan and the execution options give the step-by-step result."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import spikes, tree_allclose
from random_graphs import random_graph

import nirjax


def stepwise(model, xs):
    step = eqx.filter_jit(model.step)
    state = model.init_state()
    outs = []
    for t in range(xs.shape[0]):
        state, y = step(state, xs[t])
        outs.append(y)
    return np.stack(outs), state


def _check_components(plan):
    """Components partition the nodes, are strongly connected, and every edge between two of
    them goes forward."""
    where = {n: i for i, (members, _) in enumerate(plan.components) for n in members}
    assert sorted(where) == sorted(plan.order)
    for e in plan.edges:
        assert where[e.src] <= where[e.dst] or e.back, e
        if e.back:
            assert where[e.src] == where[e.dst], e


def test_plan_is_a_pure_function_of_nodes_and_edges():
    """A cycle entered at its first node, fed again from a later branch: the branch's component
    must run before the cycle, though the cycle's first node comes first in the order."""
    n = 2
    lin = lambda: nir.Linear(np.eye(n))  # noqa: E731
    lif = nir.LIF(tau=np.ones(n) * 0.01, r=np.ones(n), v_leak=np.zeros(n),
                  v_threshold=np.ones(n), v_reset=np.zeros(n))
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([n])), "a": lin(), "b": lif, "c": lin(),
               "out": nir.Output(np.array([n]))},
        edges=[("in", "a"), ("in", "c"), ("a", "b"), ("b", "a"), ("c", "b"), ("b", "out")],
        type_check=False,
    )
    model = nirjax.from_nir(g, dt=1e-3)
    plan = nirjax.compile_plan(model.nodes, model.edges)
    assert plan == model.plan and hash(plan) == hash(model.plan)
    assert plan.components == ((("in",), False), (("c",), False), (("a", "b"), True),
                               (("out",), False))
    _check_components(plan)
    assert [e.key for e in plan.back_edges] == ["b"]
    assert plan.in_shapes["b"] == (n,) and plan.incoming["b"][0].src == "a"
    xs = spikes(jax.random.PRNGKey(0), (20, n), 0.5) * 3
    np.testing.assert_allclose(model(xs), stepwise(model, xs)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("cyclic", [False, True])
def test_plan_equals_step_by_step_on_random_graphs(seed, cyclic):
    rng = np.random.default_rng(seed)
    model = nirjax.from_nir(random_graph(rng, cyclic=cyclic), dt=1e-3)
    if cyclic:
        assert any(c for _, c in model.plan.components)
    _check_components(model.plan)
    xs = spikes(jax.random.PRNGKey(seed), (30, 4), 0.5) * 3
    ref, ref_state = stepwise(model, xs)
    res = model.run(xs)
    np.testing.assert_allclose(res.output, ref, rtol=1e-5, atol=1e-5)
    assert tree_allclose(res.state, ref_state, rtol=1e-5, atol=1e-5)


def _lif_layer(n=16, dt=1e-3):
    rng = np.random.default_rng(0)
    tau = 20 * dt
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([n])),
               "fc": nir.Affine(rng.normal(0, 1 / np.sqrt(n), (n, n)), np.zeros(n)),
               "lif": nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),
                              v_threshold=np.ones(n), v_reset=np.zeros(n)),
               "ro": nir.CubaLI(tau_syn=np.full(n, 5 * dt), tau_mem=np.full(n, 10 * dt),
                                r=np.ones(n), v_leak=np.zeros(n), w_in=np.ones(n)),
               "out": nir.Output(np.array([n]))},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "ro"), ("ro", "out")],
        type_check=False,
    )
    return nirjax.from_nir(g, dt=dt)


def _loss(m, xs):
    res = m.run(xs, record=["lif"])
    return res.output.sum() + res.record["lif"]["output"].sum()


@pytest.mark.parametrize(
    "options, rtol",
    [pytest.param(dict(checkpoint=7), 1e-6, marks=pytest.mark.slow), (dict(unroll=4), 1e-6),
     pytest.param(dict(associative_scan=True), 1e-4, marks=pytest.mark.slow)],
)
def test_execution_options_keep_values_and_gradients(options, rtol):
    model = _lif_layer()
    xs = spikes(jax.random.PRNGKey(1), (50, 16), 0.3) * 2
    fast = model.with_execution(**options)
    a, b = model.run(xs, record=["lif", "ro"]), fast.run(xs, record=["lif", "ro"])
    np.testing.assert_array_equal(a.record["lif"]["output"], b.record["lif"]["output"])
    np.testing.assert_allclose(a.output, b.output, rtol=rtol, atol=1e-6)
    assert tree_allclose(a.record, b.record, rtol=rtol, atol=1e-6)
    ga = jax.tree.leaves(eqx.filter_grad(_loss)(model, xs))
    gb = jax.tree.leaves(eqx.filter_grad(_loss)(fast, xs))
    assert tree_allclose(ga, gb, rtol=1e-3, atol=1e-4)


def test_associative_scan_matches_for_every_linear_neuron():
    rng = np.random.default_rng(2)
    for kind in ("I", "LI", "CubaLI"):
        for disc, mode in (("euler", "current"), ("exact", "impulse"), ("euler", "impulse")):
            g = random_graph(rng, n_nodes=1, cyclic=False, kinds=(kind,))
            model = nirjax.from_nir(g, dt=1e-3, discretization=disc, input_mode=mode)
            xs = spikes(jax.random.PRNGKey(3), (64, 4), 0.5)
            state = jax.tree.map(lambda a: a + 0.3, model.init_state())  # a non-zero start
            a = model.run(xs, state=state)
            b = model.with_execution(associative_scan=True).run(xs, state=state)
            np.testing.assert_allclose(a.output, b.output, rtol=1e-4, atol=1e-5)
            assert tree_allclose(a.state, b.state, rtol=1e-4, atol=1e-5)


def test_bfloat16_matmul_is_close_and_keeps_float32_state():
    model = _lif_layer()
    xs = jax.random.normal(jax.random.PRNGKey(4), (30, 16))
    a = model.run(xs, record=["ro"])
    b = model.with_execution(matmul_dtype="bfloat16").run(xs, record=["ro"])
    assert b.record["ro"]["v"].dtype == jnp.float32
    assert float(jnp.abs(a.record["ro"]["v"] - b.record["ro"]["v"]).max()) < 0.05


def test_bad_execution_options():
    model = _lif_layer()
    with pytest.raises(ValueError, match="checkpoint: expected None or a whole number"):
        model.with_execution(checkpoint=0)
    with pytest.raises(ValueError, match="matmul_dtype: expected one of"):
        model.with_execution(matmul_dtype="int8")
    with pytest.raises(TypeError, match="unknown option"):
        model.with_execution(chunk=3)


def test_simulate_batches_and_chunks_equal_vmap():
    model = _lif_layer()
    xs = spikes(jax.random.PRNGKey(5), (7, 45, 16), 0.3) * 2
    ref = jax.vmap(model)(xs)
    res = nirjax.simulate(model, xs, batch_size=3, time_chunk=20, record=["lif"])
    np.testing.assert_allclose(res.output, ref, atol=1e-6)
    assert res.record["lif"]["v"].shape == (7, 45, 16)
    with pytest.raises(ValueError, match=r"must have shape \(batch, T"):
        nirjax.simulate(model, xs[0])


def test_simulate_hdf5_streams_to_an_atomic_file(tmp_path):
    model = _lif_layer()
    xs = np.asarray(spikes(jax.random.PRNGKey(6), (5, 30, 16), 0.3) * 2)
    src, dst = tmp_path / "in.h5", tmp_path / "out.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("spikes", data=xs)
    nirjax.simulate_hdf5(model, src, dst, batch_size=2, time_chunk=8, progress=False)
    with h5py.File(dst, "r") as f:
        np.testing.assert_allclose(f["out"][()], jax.vmap(model)(jnp.asarray(xs)), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_sharding_across_four_cpu_devices_equals_one_device(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        sys.path.insert(0, {tests!r})
        import jax, numpy as np, nirjax
        from test_plan import _lif_layer
        from helpers import spikes
        assert len(jax.devices()) == 4, jax.devices()
        model = _lif_layer()
        xs = spikes(jax.random.PRNGKey(7), (10, 40, 16), 0.3) * 2
        one = nirjax.simulate(model, xs, devices=jax.devices()[:1], record=["lif"])
        four = nirjax.simulate(model, xs, batch_size=6, record=["lif"])
        # The readout is a voltage: equal to float32 rounding (XLA vectorizes the two batch
        # shapes differently); the spikes are identical.
        np.testing.assert_allclose(one.output, four.output, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(one.record["lif"]["output"], four.record["lif"]["output"])
        np.testing.assert_allclose(one.record["lif"]["v"], four.record["lif"]["v"], atol=1e-6)
        print("OK")
        """
    ).format(tests=os.path.dirname(__file__))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("OK")
