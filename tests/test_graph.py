"""Graph semantics: fan-in, cycles, subgraphs, several inputs/outputs, chunking, jit and vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import spikes, tree_allclose

import nirjax

DT = 1e-3


def li(n, tau=0.01):
    return nir.LI(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n))


def lif(n, thr=0.5, tau=0.01):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n))


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def io(n):
    return {"in": nir.Input(np.array([n])), "out": nir.Output(np.array([n]))}


def test_fan_in_is_summed():
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    g = graph({**io(2), "a": nir.Linear(W1), "b": nir.Linear(W2), "out": nir.Output(np.array([3]))},
              [("in", "a"), ("in", "b"), ("a", "out"), ("b", "out")])
    xs = jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)
    ys = nirjax.from_nir(g, dt=DT)(xs)
    np.testing.assert_allclose(ys, np.asarray(xs) @ (W1 + W2).T, rtol=1e-5, atol=1e-5)


def _cycle_reference(xs, Win, Wrec, tau, thr, dt):
    """in -> Win -> LIF -> Wrec -> back into LIF (previous step), by hand."""
    n = Win.shape[0]
    v, z = np.zeros(n), np.zeros(n)
    out = []
    for x in xs:
        current = Win @ x + Wrec @ z
        v = v + dt / tau * (-v + current)
        z = (v > thr).astype(float)
        v = np.where(z > 0, 0.0, v)
        out.append(z)
    return np.array(out)


def test_two_cycle_against_hand_written_loop():
    rng = np.random.default_rng(1)
    n = 5
    Win, Wrec = rng.uniform(0, 2, (n, 3)), rng.normal(0, 1.0, (n, n))
    g = graph({**io(3), "w": nir.Linear(Win), "lif": lif(n), "rec": nir.Linear(Wrec),
               "out": nir.Output(np.array([n]))},
              [("in", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    model = nirjax.from_nir(g, dt=DT)
    assert [(e.src, e.dst) for e in model.plan.back_edges] == [("rec", "lif")]
    xs = spikes(jax.random.PRNGKey(1), (200, 3), 0.3)
    ref = _cycle_reference(np.asarray(xs, np.float64), Win, Wrec, 0.01, 0.5, DT)
    assert ref.sum() > 10
    np.testing.assert_array_equal(model(xs), ref)


def test_three_node_cycle_against_hand_written_loop():
    # in -> a (LI) -> b (Scale) -> c (LIF) -> a: the back edge is c -> a.
    g = graph({**io(2), "a": li(2), "b": nir.Scale(np.array([3.0, -2.0])), "c": lif(2, thr=0.2),
               "out": nir.Output(np.array([2]))},
              [("in", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "out")])
    model = nirjax.from_nir(g, dt=DT)
    assert [(e.src, e.dst) for e in model.plan.back_edges] == [("c", "a")]
    xs = np.asarray(spikes(jax.random.PRNGKey(2), (300, 2), 0.5) * 5, np.float64)
    va, vc, zc = np.zeros(2), np.zeros(2), np.zeros(2)
    ref = []
    for x in xs:
        va = va + DT / 0.01 * (-va + x + zc)
        b = va * np.array([3.0, -2.0])
        vc = vc + DT / 0.01 * (-vc + b)
        zc = (vc > 0.2).astype(float)
        vc = np.where(zc > 0, 0.0, vc)
        ref.append(zc)
    ref = np.array(ref)
    assert ref.sum() > 5
    np.testing.assert_array_equal(model(jnp.asarray(xs, jnp.float32)), ref)


def test_self_loop_is_a_cycle():
    g = graph({**io(2), "lif": lif(2), "out": nir.Output(np.array([2]))},
              [("in", "lif"), ("lif", "lif"), ("lif", "out")])
    model = nirjax.from_nir(g, dt=DT)
    assert model.plan.components[1] == (("lif",), True)
    xs = spikes(jax.random.PRNGKey(3), (100, 2), 0.9) * 40
    # The self edge adds the previous step's spikes to the input.
    ref = _cycle_reference(np.asarray(xs, np.float64), np.eye(2), np.eye(2), 0.01, 0.5, DT)
    np.testing.assert_array_equal(model(xs), ref)


def _sub():
    return graph({"i": nir.Input(np.array([3])), "w": nir.Affine(np.eye(3) * 2, np.ones(3)),
                  "n": lif(3), "o": nir.Output(np.array([3]))},
                 [("i", "w"), ("w", "n"), ("n", "o")])


def test_nested_subgraph_equals_flattened():
    nested = graph({**io(3), "sub": _sub(), "out": nir.Output(np.array([3]))},
                   [("in", "sub"), ("sub", "out")])
    flat = graph({**io(3), "w": nir.Affine(np.eye(3) * 2, np.ones(3)), "n": lif(3),
                  "out": nir.Output(np.array([3]))},
                 [("in", "w"), ("w", "n"), ("n", "out")])
    xs = spikes(jax.random.PRNGKey(4), (100, 3), 0.5)
    a = nirjax.from_nir(nested, dt=DT).run(xs, record=["sub/n"])
    b = nirjax.from_nir(flat, dt=DT).run(xs, record=["n"])
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.record["sub/n"]["v"], b.record["n"]["v"])


def test_subgraph_inside_a_cycle():
    nested = graph({**io(3), "sub": _sub(), "rec": nir.Linear(-0.5 * np.ones((3, 3))),
                    "out": nir.Output(np.array([3]))},
                   [("in", "sub"), ("sub", "rec"), ("rec", "sub"), ("sub", "out")])
    flat = graph({**io(3), "w": nir.Affine(np.eye(3) * 2, np.ones(3)), "n": lif(3),
                  "rec": nir.Linear(-0.5 * np.ones((3, 3))), "out": nir.Output(np.array([3]))},
                 [("in", "w"), ("w", "n"), ("n", "rec"), ("rec", "w"), ("n", "out")])
    xs = spikes(jax.random.PRNGKey(5), (100, 3), 0.5) * 3
    np.testing.assert_array_equal(nirjax.from_nir(nested, dt=DT)(xs), nirjax.from_nir(flat, dt=DT)(xs))


def test_multiple_inputs_and_outputs_are_dicts():
    g = graph({"a": nir.Input(np.array([2])), "b": nir.Input(np.array([3])),
               "wa": nir.Linear(np.ones((4, 2))), "wb": nir.Linear(np.ones((4, 3))),
               "n": li(4), "o1": nir.Output(np.array([4])), "o2": nir.Output(np.array([4]))},
              [("a", "wa"), ("b", "wb"), ("wa", "n"), ("wb", "n"), ("n", "o1"), ("wa", "o2")])
    model = nirjax.from_nir(g, dt=DT)
    xs = {"a": jnp.ones((5, 2)), "b": 2 * jnp.ones((5, 3))}
    ys = model(xs)
    assert set(ys) == {"o1", "o2"}
    np.testing.assert_allclose(ys["o2"], 2 * np.ones((5, 4)))
    v_inf = 2 + 6
    ref = v_inf * (1 - (1 - DT / 0.01) ** np.arange(1, 6))
    np.testing.assert_allclose(ys["o1"][:, 0], ref, rtol=1e-5)


def test_delay_inside_a_graph_shifts_by_steps():
    g = graph({**io(2), "d": nir.Delay(np.array([2e-3, 5e-3])), "out": nir.Output(np.array([2]))},
              [("in", "d"), ("d", "out")])
    xs = jnp.zeros((10, 2)).at[1].set(1.0)
    ys = np.asarray(nirjax.from_nir(g, dt=DT)(xs))
    assert np.nonzero(ys[:, 0])[0].tolist() == [3]
    assert np.nonzero(ys[:, 1])[0].tolist() == [6]


def _recurrent_model():
    rng = np.random.default_rng(6)
    cuba = nir.CubaLIF(tau_syn=np.full(6, 5e-3), tau_mem=np.full(6, 1e-2), r=np.ones(6),
                       v_leak=np.zeros(6), v_threshold=np.full(6, 0.3), v_reset=np.zeros(6),
                       w_in=np.ones(6))
    g = graph({**io(4), "fc": nir.Affine(rng.uniform(0, 1, (6, 4)), np.zeros(6)), "l": cuba,
               "rec": nir.Linear(rng.normal(0, 0.5, (6, 6))), "d": nir.Delay(np.array([1e-3] * 6)),
               "ro": li(6), "out": nir.Output(np.array([6]))},
              [("in", "fc"), ("fc", "l"), ("l", "rec"), ("rec", "l"), ("l", "d"), ("d", "ro"),
               ("ro", "out")])
    return nirjax.from_nir(g, dt=DT)


def test_chunked_runs_equal_one_run():
    model = _recurrent_model()
    xs = spikes(jax.random.PRNGKey(7), (120, 4), 0.4)
    whole = model.run(xs, record=["l"])
    first = model.run(xs[:50], record=["l"])
    second = model.run(xs[50:], state=first.state, record=["l"])
    # Spikes are identical; voltages agree to float rounding (XLA may block the input matmul
    # differently for a different number of steps).
    np.testing.assert_array_equal(jnp.concatenate([first.output, second.output]), whole.output)
    np.testing.assert_allclose(
        jnp.concatenate([first.record["l"]["v"], second.record["l"]["v"]]),
        whole.record["l"]["v"], rtol=1e-6, atol=1e-7,
    )
    assert tree_allclose(second.state, whole.state, rtol=1e-6, atol=1e-7)


def test_step_by_step_equals_the_compiled_plan():
    model = _recurrent_model()
    xs = spikes(jax.random.PRNGKey(8), (80, 4), 0.4)
    state = model.init_state()
    outs = []
    step = eqx.filter_jit(model.step)
    for t in range(80):
        state, y = step(state, xs[t])
        outs.append(y)
    res = model.run(xs)
    np.testing.assert_allclose(np.stack(outs), res.output, atol=1e-6)
    assert tree_allclose(state, res.state)


def test_jit_and_vmap_equal_eager():
    model = _recurrent_model()
    batch = spikes(jax.random.PRNGKey(9), (3, 60, 4), 0.4)
    eager = np.stack([np.asarray(model(x)) for x in batch])
    np.testing.assert_allclose(jax.vmap(model)(batch), eager, atol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(model))(batch), eager, atol=1e-6)
    np.testing.assert_allclose(eqx.filter_jit(model)(batch[0]), eager[0], atol=1e-6)


def test_gradients_reach_every_parameter():
    model = _recurrent_model()
    xs = spikes(jax.random.PRNGKey(10), (60, 4), 0.4)

    def loss(m):
        res = m.run(xs, record=["l"])
        return res.output.sum() + res.record["l"]["v"].sum()

    grads = eqx.filter_grad(loss)(model)
    for name in ("fc", "rec"):
        assert float(jnp.abs(grads.nodes[name].weight).sum()) > 0
    for field in ("tau_syn", "tau_mem", "r", "v_threshold", "w_in"):
        assert float(jnp.abs(getattr(grads.nodes["l"], field)).sum()) > 0, field


def test_record_unknown_node_is_an_error():
    model = _recurrent_model()
    with pytest.raises(ValueError, match="record: no node 'nope'"):
        model.run(jnp.zeros((3, 4)), record=["nope"])


def test_edges_may_name_the_single_port_of_a_subgraph():
    named = graph({**io(3), "sub": _sub(), "out": nir.Output(np.array([3]))},
                  [("in", "sub.i"), ("sub.o", "out")])
    plain = graph({**io(3), "sub": _sub(), "out": nir.Output(np.array([3]))},
                  [("in", "sub"), ("sub", "out")])
    xs = spikes(jax.random.PRNGKey(11), (30, 3), 0.5)
    a = nirjax.from_nir(named, dt=DT)
    np.testing.assert_array_equal(a(xs), nirjax.from_nir(plain, dt=DT)(xs))
    assert [(e[0], e[1]) for e in nirjax.to_nir(a).edges] == [("in", "sub.i"), ("sub.o", "out")]


def test_two_separate_cycles_equal_step_by_step():
    rng = np.random.default_rng(12)
    g = graph({**io(3), "w1": nir.Linear(rng.uniform(0, 2, (4, 3))), "l1": lif(4),
               "r1": nir.Linear(rng.normal(0, 1, (4, 4))), "w2": nir.Linear(rng.uniform(0, 2, (3, 4))),
               "l2": lif(3), "r2": nir.Linear(rng.normal(0, 1, (3, 3)))},
              [("in", "w1"), ("w1", "l1"), ("l1", "r1"), ("r1", "l1"), ("l1", "w2"), ("w2", "l2"),
               ("l2", "r2"), ("r2", "l2"), ("l2", "out")])
    model = nirjax.from_nir(g, dt=DT)
    assert sum(c for _, c in model.plan.components) == 2
    xs = spikes(jax.random.PRNGKey(12), (60, 3), 0.5) * 4
    state, outs = model.init_state(), []
    for t in range(60):
        state, y = model.step(state, xs[t])
        outs.append(y)
    res = model.run(xs)
    assert float(res.output.sum()) > 0
    np.testing.assert_allclose(res.output, np.stack(outs), atol=1e-6)
    assert tree_allclose(res.state, state)


def test_two_imports_of_one_graph_compile_once():
    traces = []

    @eqx.filter_jit
    def run(model, xs):
        traces.append(1)
        return model(xs)

    for _ in range(2):
        model = _recurrent_model()
        run(model, jnp.zeros((5, 4)))
    assert len(traces) == 1


def test_structural_mistakes_are_refused_with_the_fix():
    n = np.ones(2)
    lif = nir.LIF(tau=n * 0.01, r=n, v_leak=0 * n, v_threshold=n, v_reset=0 * n)
    base = {"in": nir.Input(np.array([2])), "lif": lif, "out": nir.Output(np.array([2]))}
    dup = nir.NIRGraph(nodes=base, edges=[("in", "lif"), ("in", "lif"), ("lif", "out")],
                       type_check=False)
    with pytest.raises(ValueError, match=r"edge \('in', 'lif'\) is listed twice"):
        nirjax.from_nir(dup, dt=1e-3)
    slash = nir.NIRGraph(nodes={"in": base["in"], "a/b": lif, "out": base["out"]},
                         edges=[("in", "a/b"), ("a/b", "out")], type_check=False)
    with pytest.raises(ValueError, match="node name 'a/b' cannot be used"):
        nirjax.from_nir(slash, dt=1e-3)
    no_out = nirjax.from_nir(nir.NIRGraph(nodes={"in": base["in"], "lif": lif},
                                          edges=[("in", "lif")], type_check=False), dt=1e-3)
    assert no_out.plan.out_shapes["lif"] == (2,)  # shapes can still be probed
    with pytest.raises(ValueError, match="has no Output node"):
        no_out(jnp.zeros((3, 2), jnp.float32))
