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


def _grads(graph, xs, state, wy, ws, neuron_params=True, record=()):
    """Gradients w.r.t. the graph, the input and the initial state. With `neuron_params=False`
    the neuron's parameters are constants (`stop_gradient`), as when only the weights are
    trained: the reverse pass then keeps only each step's integrated state. `record`: nodes
    to trace (a recorded cycle member runs the per-step rule)."""

    def loss(g, xs, state):
        if not neuron_params:
            g = eqx.tree_at(lambda m: m.nodes["n"], g,
                            replace_fn=lambda n: jax.tree.map(jax.lax.stop_gradient, n))

        def one(x, s):
            r = g.run(x, state=s, record=record)
            total = jnp.sum(r.output * wy)
            for k, v in r.state["nodes"]["n"].items():
                total = total + jnp.sum(v * ws[k])
            return total
        return jnp.sum(jax.vmap(one)(xs, state))

    return eqx.filter_grad(lambda args: loss(*args))((graph, xs, state))


def _check(name, recurrent, neuron_params=True, cycle_rule=False, graph=None, checked=False,
           **options):
    """`cycle_rule`: a cycle runs under the whole-cycle rule (`nirjax._reverse.cycle_sequence`),
    with the finiteness check off as in training (on with `checked`); otherwise the neuron "n"
    is recorded, so a cycle runs the per-step rule (`step_vjp`). `graph`: another graph than
    `_graph`'s (inputs, outputs and the neuron "n" of width N)."""
    with jax.enable_x64(True):
        g = _graph(name, recurrent, **options) if graph is None else graph
        if cycle_rule:
            g = g.with_execution(check_finite=checked)
        record = () if cycle_rule or not recurrent else ("n",)
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
        custom = _grads(g.with_options(gradient="custom"), xs, state, wy, ws, neuron_params,
                        record)
        plain = _grads(g.with_options(gradient="autodiff"), xs, state, wy, ws, neuron_params)
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
        gated = gated + ("['dl'].delay",)  # a delay of whole steps has no gradient
        if not neuron_params:
            gated = gated + ("nodes['n']",)
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
def test_custom_gradient_equals_autodiff(name, disc, recurrent, reset, detach, rule_calls):
    _check(name, recurrent, discretization=disc, reset=reset, detach_reset=detach)
    assert not rule_calls  # a cycle here runs the per-step rule (its neuron is recorded)


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


# The weights alone (neuron parameters constant): the lean reverse pass (only the integrated
# state of each step is kept), for every neuron, discretization, reset and spike option in a
# feed-forward layer; inside a cycle the per-step rule runs, as above.
LEAN = [(n, d, r, det) for n in NEURONS for d in DISCRETIZATIONS for r in RESETS
        for det in (False, True)]
LEAN_FAST = [c for i, c in enumerate(LEAN) if i % 11 == 0]  # 3 of 32; all under -m slow


@pytest.mark.parametrize("name,disc,reset,detach", LEAN_FAST)
def test_custom_gradient_weights_only_equals_autodiff(name, disc, reset, detach):
    _check(name, False, neuron_params=False, discretization=disc, reset=reset,
           detach_reset=detach)


@pytest.mark.slow
@pytest.mark.parametrize("name,disc,reset,detach", [c for c in LEAN if c not in LEAN_FAST])
def test_custom_gradient_weights_only_equals_autodiff_all(name, disc, reset, detach):
    _check(name, False, neuron_params=False, discretization=disc, reset=reset,
           detach_reset=detach)


@pytest.mark.parametrize("options", [
    o if i in (1, 3) else pytest.param(o, marks=pytest.mark.slow)
    for i, o in enumerate(SPIKE_OPTIONS)], ids=_ids)
def test_custom_gradient_weights_only_spike_options(options):
    name = "CubaLIF" if "cuba_order" in options else "LIF"
    _check(name, False, neuron_params=False, **options)


def test_weights_only_keeps_no_input_of_the_scan():
    """With the neuron parameters constant, a neuron's scan input (the layer's currents) is not
    kept for the reverse pass: in two layers, forward + backward needs at least one
    time-by-neuron array less at its peak (the end of the forward pass)."""
    n, steps, batch = 64, 200, 4
    rng = np.random.default_rng(0)

    def lif():
        return nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 20.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    def fc():
        return nir.Affine(rng.normal(0, 0.3, (n, n)).astype(np.float32), np.zeros(n, np.float32))

    nodes = {"in": nir.Input(np.array([n])), "fc1": fc(), "n1": lif(), "fc2": fc(), "n2": lif(),
             "out": nir.Output(np.array([n]))}
    keys = list(nodes)
    g = nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=list(zip(keys[:-1], keys[1:]))),
                        dt=DT).with_execution(check_finite=False)
    xs = jnp.asarray((rng.random((batch, steps, n)) < 0.1).astype(np.float32))

    def temp(neuron_params):
        def loss(g):
            if not neuron_params:
                for k in ("n1", "n2"):
                    g = eqx.tree_at(lambda m, k=k: m.nodes[k], g,
                                    replace_fn=lambda m: jax.tree.map(jax.lax.stop_gradient, m))
            return jnp.sum(jax.vmap(g)(xs))

        c = eqx.filter_jit(eqx.filter_grad(loss)).lower(g).compile()
        return getattr(c, "compiled", c).memory_analysis().temp_size_in_bytes

    unit = batch * steps * n * 4
    assert temp(True) - temp(False) >= 0.9 * unit


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


# The whole-cycle rule (`nirjax._reverse.cycle_sequence`): a cycle's neurons under the default
# rule (here with the finiteness check off, as in training; one case with it on). The recurrent weights' gradient is taken
# once over the whole time axis. Every neuron in the default suite (the options rotating),
# the full product under -m slow.
CYCLE = [(n, *c) for n in NEURONS for c in _COMBOS]
CYCLE_FAST = [(n, *_COMBOS[(3 * i + 1) % 8]) for i, n in enumerate(NEURONS)]


@pytest.fixture
def rule_calls(monkeypatch):
    """How often the whole-cycle rule ran (so a test cannot pass on the per-step path)."""
    calls = []
    inner = nirjax._reverse.cycle_sequence

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(nirjax._reverse, "cycle_sequence", counted)
    return calls


@pytest.mark.parametrize("name,disc,reset,detach", CYCLE_FAST)
def test_cycle_rule_equals_autodiff(name, disc, reset, detach, rule_calls):
    _check(name, True, cycle_rule=True, discretization=disc, reset=reset, detach_reset=detach)
    assert rule_calls


@pytest.mark.slow
@pytest.mark.parametrize("name,disc,reset,detach", [c for c in CYCLE if c not in CYCLE_FAST])
def test_cycle_rule_equals_autodiff_every_combination(name, disc, reset, detach, rule_calls):
    _check(name, True, cycle_rule=True, discretization=disc, reset=reset, detach_reset=detach)
    assert rule_calls


@pytest.mark.parametrize("options", [
    o if i in (0, 2) else pytest.param(o, marks=pytest.mark.slow)
    for i, o in enumerate(SPIKE_OPTIONS)], ids=_ids)
def test_cycle_rule_spike_options(options, rule_calls):
    name = "CubaLIF" if "cuba_order" in options else "LIF"
    _check(name, True, cycle_rule=True, **options)
    assert rule_calls


@pytest.mark.parametrize("name", ["LIF", pytest.param("CubaLIF", marks=pytest.mark.slow)])
def test_cycle_rule_weights_only(name, rule_calls):
    _check(name, True, neuron_params=False, cycle_rule=True)
    assert rule_calls


def _topology(kind):
    """Cycles whose hoisted members sit elsewhere than `_graph`'s `n -> rec -> n`:

    - "back_into_affine": `fc -> a -> n`, `n -> a` is the back edge, so the hoisted Affine `a`
      (with a bias) sums an input from outside the cycle and the previous step's spikes;
    - "three": `n -> r1 -> r2 -> n` through a Linear and a Scale, both hoisted;
    - "two_neurons": `n -> r -> m -> n`, a second neuron inside the cycle;
    - "delay": `n -> dl -> r -> n`, a stateful member that is not a neuron (a two-step Delay)."""
    rng = np.random.default_rng(4)
    nodes = {"in": nir.Input(np.array([N])),
             "fc": nir.Affine(rng.normal(0, 1.0, (N, N)), rng.normal(0.2, 0.2, N)),
             "n": random_node("LIF", N, rng, DT), "out": nir.Output(np.array([N]))}
    nodes["n"].r = nodes["n"].r * 20.0  # enough drive to spike often
    if kind == "back_into_affine":
        nodes["a"] = nir.Affine(rng.normal(0, 0.5, (N, N)), rng.normal(0.1, 0.1, N))
        edges = [("in", "fc"), ("fc", "a"), ("a", "n"), ("n", "a"), ("n", "out")]
    elif kind == "three":
        nodes["r1"] = nir.Linear(rng.normal(0, 0.5, (N, N)))
        nodes["r2"] = nir.Scale(rng.normal(1.0, 0.3, N))
        edges = [("in", "fc"), ("fc", "n"), ("n", "r1"), ("r1", "r2"), ("r2", "n"),
                 ("n", "out")]
    elif kind == "delay":
        nodes["dl"] = nir.Delay(np.full(N, 2 * DT))
        nodes["r"] = nir.Linear(rng.normal(0, 0.5, (N, N)))
        edges = [("in", "fc"), ("fc", "n"), ("n", "dl"), ("dl", "r"), ("r", "n"), ("n", "out")]
    else:
        nodes["r"] = nir.Linear(rng.normal(0, 0.5, (N, N)))
        nodes["m"] = random_node("CubaLIF", N, rng, DT)
        nodes["m"].r = nodes["m"].r * 20.0  # enough drive to spike
        edges = [("in", "fc"), ("fc", "n"), ("n", "r"), ("r", "m"), ("m", "n"), ("n", "out")]
    return nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT, dtype=jnp.float64)


TOPOLOGIES = ("back_into_affine", "three", "two_neurons", "delay")


@pytest.mark.parametrize("kind", TOPOLOGIES)
def test_cycle_rule_topologies(kind, rule_calls):
    with jax.enable_x64(True):
        g = _topology(kind)
    _check("LIF", True, cycle_rule=True, graph=g)
    assert rule_calls


@pytest.mark.parametrize("kind", (None, *TOPOLOGIES))
def test_cycle_rule_forward_is_bit_identical(kind, rule_calls):
    """The rule's forward pass (finiteness check on and off) is the per-step path's (a recorded
    member) and plain autodiff's scan, bit for bit."""
    with jax.enable_x64(True):
        g = _graph("CubaLIF", True) if kind is None else _topology(kind)
        xs = jax.random.bernoulli(jax.random.PRNGKey(5), 0.3, (B, T, N)).astype(jnp.float64)
        per_step = jax.vmap(lambda x: g.run(x, record=["n"]).output)(xs)
        plain = jax.vmap(g.with_options(gradient="autodiff"))(xs)
        assert not rule_calls
        for checked in (True, False):
            rule = jax.vmap(g.with_execution(check_finite=checked))(xs)
            assert jnp.array_equal(per_step, rule) and jnp.array_equal(plain, rule)
        assert len(rule_calls) == 2
        assert jnp.sum(rule) > 0


def test_cycle_rule_forward_mode(rule_calls):
    """`jax.jacfwd` through the rule (a `custom_jvp`) agrees with reverse mode."""
    with jax.enable_x64(True):
        g = _graph("LIF", True).with_execution(check_finite=False)
        xs = jax.random.bernoulli(jax.random.PRNGKey(7), 0.3, (T, N)).astype(jnp.float64)
        w = jnp.arange(T * N, dtype=jnp.float64).reshape(T, N) / (T * N)

        def f(x):
            return jnp.sum(jax.vmap(g)(x[None]) * w)

        np.testing.assert_allclose(jax.jacfwd(f)(xs), jax.grad(f)(xs), rtol=1e-9, atol=1e-12)
        assert rule_calls


def test_cycle_rule_with_bfloat16_matmuls_outside_the_cycle(rule_calls):
    """`matmul_dtype="bfloat16"` applies outside cycles: the rule takes the recurrent weights'
    gradient in full precision, as the cycle's per-step matmuls run, so it still equals
    autodiff's."""
    with jax.enable_x64(True):
        g = _graph("LIF", True).with_execution(matmul_dtype="bfloat16")
    _check("LIF", True, cycle_rule=True, graph=g)
    assert rule_calls


@pytest.mark.parametrize("execution", ({"checkpoint": 7}, {"unroll": 4}), ids=str)
def test_cycle_rule_with_checkpoint_and_unroll(execution, rule_calls):
    """The rule inside gradient checkpointing's chunk scan, and with unrolled loops."""
    with jax.enable_x64(True):
        g = _graph("LIF", True).with_execution(check_finite=False)
        xs = jax.random.bernoulli(jax.random.PRNGKey(3), 0.3, (T, N)).astype(jnp.float64)

        def grad(graph):
            w = jnp.arange(T, dtype=jnp.float64)[:, None]
            return eqx.filter_grad(lambda m: jnp.sum(m(xs) * w))(graph)

        ref = grad(g.with_options(gradient="autodiff"))
        got = grad(g.with_execution(**execution))
        assert rule_calls
        assert jnp.abs(got.nodes["rec"].weight).max() > 0
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_cycle_rule_under_the_finiteness_check(rule_calls):
    """With the check on (the default outside training) the rule runs too, watching the state."""
    _check("CubaLIF", True, cycle_rule=True, checked=True)
    assert rule_calls
