"""The derived reverse pass (`Options.gradient="custom"`, `nirjax._reverse`) against plain
autodiff (`gradient="autodiff"`), the independent reference: for every registered neuron, both
discretizations, both resets, with and without `detach_reset`, and the spike options, in a
feed-forward layer (the neuron's own scan) and in a recurrent one (a cycle, the per-step rule):
the gradients with respect to the input, the weights, every neuron parameter and the initial
state agree to 1e-5 relative (in float64, so that rounding cannot hide a wrong rule)."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from custom_neurons import adaptive_node, refractory_node
from random_graphs import random_node

import nirjax

N, T, B, DT = 4, 25, 2, 1e-3
NEURONS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "AdaptiveLIF", "RefractoryLIF")
DISCRETIZATIONS = ("euler", "exact")
RESETS = ("value", "subtract")


def _registered():
    return sorted(c.__name__ for c in nirjax.module_to_nir.registry
                  if isinstance(c, type) and issubclass(c, nirjax.Neuron))


def test_every_registered_neuron_is_covered():
    assert set(_registered()) <= set(NEURONS), sorted(set(_registered()) - set(NEURONS))


def _neuron_node(name, rng):
    if name == "AdaptiveLIF":
        node = adaptive_node(N, rng)
        node.r = node.r * 20.0  # enough drive to spike often
        return node
    if name == "RefractoryLIF":
        node = refractory_node(N, rng, DT)
        node.r = node.r * 20.0
        return node
    return random_node(name, N, rng, DT)


def _graph(name, recurrent, **options):
    rng = np.random.default_rng(1)
    nodes = {"in": nir.Input(np.array([N])),
             "fc": nir.Affine(rng.normal(0, 1.0, (N, N)), rng.normal(0.2, 0.2, N)),
             "n": _neuron_node(name, rng), "out": nir.Output(np.array([N]))}
    edges = [("in", "fc"), ("fc", "n"), ("n", "out")]
    if recurrent:
        nodes["rec"] = nir.Linear(rng.normal(0, 0.5, (N, N)))
        edges += [("n", "rec"), ("rec", "n")]
    return nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT, dtype=jnp.float64,
                           **options)


def _grads(graph, xs, state, wy, ws):
    def loss(g, xs, state):
        def one(x, s):
            r = g.run(x, state=s)
            total = jnp.sum(r.output * wy)
            for k, v in r.state["nodes"]["n"].items():
                total = total + jnp.sum(v * ws[k])
            return total
        return jnp.sum(jax.vmap(one)(xs, state))

    return eqx.filter_grad(lambda args: loss(*args))((graph, xs, state))


def _check(name, recurrent, **options):
    with jax.enable_x64(True):
        g = _graph(name, recurrent, **options)
        key = jax.random.split(jax.random.PRNGKey(0), 4)
        xs = jax.random.bernoulli(key[0], 0.3, (B, T, N)).astype(jnp.float64)
        state = jax.vmap(lambda _: g.init_state())(jnp.arange(B))
        var = g.nodes["n"].state_vars
        # a random start (RefractoryLIF's clock in seconds: at most a few steps)
        state["nodes"]["n"] = {
            k: (3 * DT if k == "ref" else 0.3) * jax.random.uniform(key[1], (B, N), jnp.float64)
            for k in var}
        wy = jax.random.normal(key[2], (T, N), jnp.float64)
        ws = {k: jax.random.normal(key[3], (N,), jnp.float64) for k in var}
        custom = _grads(g.with_options(gradient="custom"), xs, state, wy, ws)
        plain = _grads(g.with_options(gradient="autodiff"), xs, state, wy, ws)
        leaves_c = jax.tree.leaves_with_path(custom)
        leaves_p = jax.tree.leaves(plain)
        assert len(leaves_c) == len(leaves_p)
        zero = []
        for (path, c), p in zip(leaves_c, leaves_p, strict=True):
            c, p = np.asarray(c), np.asarray(p)
            scale = np.maximum(np.abs(p).max(), 1e-12)
            err = np.abs(c - p).max() / scale
            assert err <= 1e-5, f"{jax.tree_util.keystr(path)}: max rel diff {err:.2e}"
            if not np.abs(p).max() > 0:
                zero.append(jax.tree_util.keystr(path))
        # The gradients reach the input, the weights, every parameter and the initial state;
        # RefractoryLIF's refractory clock only gates (a step function), so it has none, and
        # its recurrent input can arrive only while the neurons are refractory.
        gated = ("ref", "rec") if name == "RefractoryLIF" else ()
        assert [z for z in zero if not any(g in z for g in gated)] == [], zero


def _spiking(name):
    return name in ("IF", "LIF", "CubaLIF", "AdaptiveLIF", "RefractoryLIF")


# The default suite: every neuron feed-forward, every other one also recurrent, with the discretization and the
# reset options cycling through their combinations; the full product is marked slow.
_COMBOS = list(itertools.product(DISCRETIZATIONS, RESETS, (False, True)))
FAST = [(n, _COMBOS[(3 * i + 5 * k) % 8][0], rec, *_COMBOS[(3 * i + 5 * k) % 8][1:])
        for i, n in enumerate(NEURONS) for k, rec in enumerate((False, True)) if i % 2 or not rec]
FULL = [c for c in itertools.product(NEURONS, DISCRETIZATIONS, (False, True), RESETS,
                                     (False, True)) if c not in FAST]


@pytest.mark.parametrize("name,disc,recurrent,reset,detach", FAST)
def test_custom_gradient_equals_autodiff(name, disc, recurrent, reset, detach):
    _check(name, recurrent, discretization=disc, reset=reset, detach_reset=detach)


@pytest.mark.slow
@pytest.mark.parametrize("name,disc,recurrent,reset,detach", FULL)
def test_custom_gradient_equals_autodiff_every_combination(name, disc, recurrent, reset, detach):
    _check(name, recurrent, discretization=disc, reset=reset, detach_reset=detach)


SPIKE_OPTIONS = [
    {"threshold_comparison": "greater_equal"},
    {"spikes_per_step": "multi", "reset": "subtract"},
    {"spike_order": "before_input"},
    {"input_mode": "impulse"},
    {"cuba_order": "voltage_first"},
    {"surrogate": "arctan", "detach_reset": True},
]


def _ids(o):
    return "-".join(map(str, o.values()))


@pytest.mark.parametrize("options,recurrent", [(o, i % 2 == 1) for i, o in enumerate(SPIKE_OPTIONS)],
                         ids=lambda o: _ids(o) if isinstance(o, dict) else str(o))
def test_custom_gradient_equals_autodiff_spike_options(options, recurrent):
    name = "CubaLIF" if "cuba_order" in options else "LIF"
    _check(name, recurrent, **options)


@pytest.mark.slow
@pytest.mark.parametrize("options", SPIKE_OPTIONS, ids=_ids)
@pytest.mark.parametrize("recurrent", (False, True))
def test_custom_gradient_equals_autodiff_spike_options_all(options, recurrent):
    name = "CubaLIF" if "cuba_order" in options else "LIF"
    _check(name, recurrent, **options)


def test_custom_gradient_with_checkpoint_and_unroll():
    with jax.enable_x64(True):
        g = _graph("LIF", False)
        xs = jax.random.bernoulli(jax.random.PRNGKey(3), 0.3, (T, N)).astype(jnp.float64)

        def grad(graph):
            return eqx.filter_grad(lambda m: jnp.sum(m(xs) * jnp.arange(T, dtype=jnp.float64)[:, None]))(graph)

        ref = grad(g.with_options(gradient="autodiff"))
        for ex in ({"checkpoint": 7}, {"unroll": 4}):
            got = grad(g.with_execution(**ex))
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_gradient_option_is_in_the_codec():
    opts = nirjax.Options(dt=1e-3, gradient="autodiff")
    md = opts.to_metadata()
    assert md["nirjax_gradient"] == "autodiff"
    assert nirjax.Options(**nirjax.Options.from_metadata(md)) == opts
    with pytest.raises(ValueError, match="gradient: expected one of"):
        nirjax.Options(dt=1e-3, gradient="manual")


def test_forward_is_the_same_under_both_rules():
    with jax.enable_x64(True):
        for recurrent in (False, True):
            g = _graph("CubaLIF", recurrent)
            xs = jax.random.bernoulli(jax.random.PRNGKey(5), 0.3, (T, N)).astype(jnp.float64)
            a = g.with_options(gradient="custom")(xs)
            b = g.with_options(gradient="autodiff")(xs)
            assert jnp.array_equal(a, b)
            assert jnp.sum(a) > 0


@pytest.mark.parametrize("recurrent", (False, True))
def test_forward_mode_differentiation_works(recurrent):
    """`jax.jacfwd` (forward mode, e.g. Gauss-Newton in mismatch fitting) under the default
    rule: the plain scan runs there, and agrees with reverse mode."""
    with jax.enable_x64(True):
        g = _graph("LIF", recurrent)
        xs = jax.random.bernoulli(jax.random.PRNGKey(7), 0.3, (T, N)).astype(jnp.float64)
        w = jnp.arange(T * N, dtype=jnp.float64).reshape(T, N) / (T * N)

        def f(x):
            return jnp.sum(jax.vmap(g)(x[None]) * w)

        def f_rec(x):
            return jnp.sum(g.run(x, record=["n"]).record["n"]["v"] * w)

        for fn in (f, f_rec):
            np.testing.assert_allclose(jax.jacfwd(fn)(xs), jax.grad(fn)(xs), rtol=1e-9,
                                       atol=1e-12)
