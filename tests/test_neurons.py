"""Every registered neuron (NIR's six and the two of tests/custom_neurons.py), through every
executor: parametrized over the registry, so registering a neuron (and adding its case to
`CASES`) tests it here.

The executors are checked against each other where the definition makes them equal: the exact
discretization against the continuous-time solver (exact for linear neurons below threshold),
Euler converging to it at first order, step-by-step against the compiled scan, chunked runs, the
associative scan, gradients reaching every declared parameter, and `with_options` against a
fresh import.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from custom_neurons import adaptive_node, refractory_node
from helpers import spikes, tree_allclose

import nirjax

N = 3


def _cases(dt):
    one = np.ones(N)
    return {
        "I": nir.I(r=np.array([0.5, 1.0, 2.0])),
        "IF": nir.IF(r=np.array([50.0, 80.0, 120.0]), v_threshold=one, v_reset=0 * one),
        "LI": nir.LI(tau=np.array([0.01, 0.02, 0.03]), r=one * 1.5, v_leak=one * 0.1),
        "LIF": nir.LIF(tau=np.array([0.01, 0.02, 0.03]), r=one * 1.5, v_leak=one * 0.1,
                       v_threshold=one, v_reset=0 * one),
        "CubaLI": nir.CubaLI(tau_syn=np.array([0.005, 0.01, 0.02]),
                             tau_mem=np.array([0.01, 0.01, 0.03]), r=one, v_leak=0 * one,
                             w_in=one * 2),
        "CubaLIF": nir.CubaLIF(tau_syn=np.array([0.005, 0.01, 0.02]),
                               tau_mem=np.array([0.01, 0.01, 0.03]), r=one, v_leak=0 * one,
                               v_threshold=one, v_reset=0 * one, w_in=one * 2),
        "AdaptiveLIF": adaptive_node(N, np.random.default_rng(0)),
        "RefractoryLIF": refractory_node(N, np.random.default_rng(0), dt),
    }


NAMES = tuple(_cases(1e-3))


def _registered():
    return sorted(c.__name__ for c in nirjax.module_to_nir.registry
                  if isinstance(c, type) and issubclass(c, nirjax.Neuron))


def test_every_registered_neuron_has_a_case():
    assert set(_registered()) <= set(NAMES), sorted(set(_registered()) - set(NAMES))


def _graph(name, dt, **options):
    node = _cases(dt)[name]
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([N])), "n": node,
                            "out": nir.Output(np.array([N]))},
                     edges=[("in", "n"), ("n", "out")])
    return nirjax.from_nir(g, dt=dt, **options)


def _state_var(graph):
    return graph.nodes["n"].state_vars


@pytest.mark.parametrize("name", NAMES)
def test_exact_equals_the_continuous_solver_below_threshold(name):
    """A small constant current keeps every neuron below threshold: the exact discretization
    is then the exact solution of the field (up to the solver's tolerance)."""
    dt, T = 1e-3, 40
    g = _graph(name, dt, discretization="exact")
    if not g.nodes["n"].linear:
        pytest.skip("the exact discretization of a gated neuron is exact only piecewise")
    xs = jnp.full((T, N), 0.2, jnp.float32)
    disc = g.run(xs, record=["n"]).record["n"]
    cont = nirjax.simulate_continuous(g, xs, input_kind="current").record["n"]
    for k in _state_var(g):
        scale = max(1.0, float(jnp.max(jnp.abs(cont[k]))))
        np.testing.assert_allclose(disc[k], cont[k], atol=2e-5 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_euler_converges_at_first_order(name):
    """Below threshold, Euler's error at a fixed time halves when dt halves."""
    T_end, errors = 0.02, []
    for dt in (1e-3, 5e-4, 2.5e-4):
        g = _graph(name, dt, discretization="euler")
        steps = round(T_end / dt)
        xs = jnp.full((steps, N), 0.2, jnp.float32)
        euler = g.run(xs, record=["n"]).record["n"]["v"][-1]
        exact = _graph(name, dt, discretization="exact").run(xs, record=["n"]).record["n"]["v"][-1]
        errors.append(float(jnp.max(jnp.abs(euler - exact))))
    if errors[0] == 0:  # integrators: Euler is exact for a held current
        assert max(errors) < 1e-6
        return
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.4)), errors


def _rotating(names, combos):
    """Every neuron with one of `combos` in turn in the default suite; the rest of the full
    product under `-m slow` (CI's default suite stays under 10 minutes)."""
    out = []
    for i, name in enumerate(names):
        for k, combo in enumerate(combos):
            keep = k == i % len(combos)
            out.append(pytest.param(name, *combo, marks=() if keep else pytest.mark.slow))
    return out


@pytest.mark.parametrize("name,method,mode", _rotating(
    NAMES, [(m, d) for m in ("euler", "exact") for d in ("current", "impulse")]))
def test_step_chunks_jit_and_vmap_agree(name, method, mode):
    dt = 2.0**-10
    g = _graph(name, dt, discretization=method, input_mode=mode, reset="subtract")
    xs = spikes(jax.random.PRNGKey(1), (4, 50, N), 0.5) * 40.0
    whole = jax.vmap(g)(xs)
    state = g.init_state()
    stepped = []
    for t in range(xs.shape[1]):
        state, y = g.step(state, xs[0, t])
        stepped.append(y)
    np.testing.assert_allclose(jnp.stack(stepped), whole[0], rtol=1e-5, atol=1e-5)
    first = g.run(xs[0, :20])
    rest = g.run(xs[0, 20:], state=first.state)
    np.testing.assert_allclose(jnp.concatenate([first.output, rest.output]), whole[0],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(g))(xs), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_declared_parameter(name):
    dt = 1e-3
    g = _graph(name, dt)
    xs = spikes(jax.random.PRNGKey(2), (60, N), 0.5) * 30.0

    def loss(model):
        rec = model.run(xs, record=["n"]).record["n"]
        return jnp.sum(rec["v"] ** 2) + jnp.sum(rec["output"])

    if g.nodes["n"].spiking:
        assert float(jnp.sum(g(xs))) > 0  # the neurons spike: the reset has a gradient too
    grads = jax.grad(loss)(g).nodes["n"]
    fields = type(g.nodes["n"]).parameters
    for field in fields:
        assert np.all(np.isfinite(np.asarray(getattr(grads, field)))), field
    nonzero = {f for f in fields if np.any(np.asarray(getattr(grads, f)) != 0)}
    # t_ref acts only through the refractory gate, a step function: no gradient.
    assert nonzero == set(fields) - {"t_ref"}


@pytest.mark.parametrize("name", NAMES)
def test_associative_scan_for_reset_free_linear_neurons(name):
    g = _graph(name, 1e-3, discretization="exact", input_mode="impulse")
    node = g.nodes["n"]
    if node.spiking or not node.linear:
        pytest.skip("the associative scan applies to reset-free linear neurons")
    xs = spikes(jax.random.PRNGKey(3), (64, N), 0.5)
    state = jax.tree.map(lambda a: a + 0.3, g.init_state())
    a = g.run(xs, state=state)
    b = g.with_execution(associative_scan=True).run(xs, state=state)
    np.testing.assert_allclose(a.output, b.output, rtol=1e-4, atol=1e-5)
    assert tree_allclose(a.state, b.state, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_with_options_equals_a_fresh_import(name):
    dt = 1e-3
    changes = dict(discretization="exact", reset="subtract", input_mode="impulse")
    a = _graph(name, dt).with_options(**changes)
    b = _graph(name, dt, **changes)
    assert a.nodes["n"].options == b.nodes["n"].options == a.options
    xs = spikes(jax.random.PRNGKey(4), (40, N), 0.5) * 20.0
    np.testing.assert_array_equal(a(xs), b(xs))
