"""The spike options (`spikes_per_step`, `threshold_comparison`, `spike_order`), defined once in
`nirjax.Neuron.spikes` / `advance` for every neuron: checked against closed forms (numpy loops
written from the equations), through the options codec, and in continuous time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax

N = 4
SPIKING = ("IF", "LIF", "CubaLIF")


def _graph(kind="IF", thr=1.0, v_reset=0.0, r=1.0, tau=0.01):
    one = np.ones(N, np.float32)
    neuron = {
        "IF": nir.IF(r=r * one, v_threshold=thr * one, v_reset=v_reset * one),
        "LIF": nir.LIF(tau=tau * one, r=r * one, v_leak=0 * one, v_threshold=thr * one,
                       v_reset=v_reset * one),
        "CubaLIF": nir.CubaLIF(tau_syn=tau / 2 * one, tau_mem=tau * one, r=r * one,
                               v_leak=0 * one, v_threshold=thr * one, v_reset=v_reset * one,
                               w_in=one),
    }[kind]
    return nir.NIRGraph.from_list(nir.Linear(weight=np.eye(N, dtype=np.float32)), neuron)


def _xs(T=60, seed=0, high=3.5):
    return np.random.default_rng(seed).uniform(0, high, (T, N)).astype(np.float32)


def test_multi_spike_if_matches_closed_form():
    """IF with impulse input: v <- v + x; z = floor((v - v_reset) / (thr - v_reset)); v -= z d."""
    thr, v_reset = 1.0, -0.25
    g = nirjax.from_nir(_graph("IF", thr, v_reset), dt=1e-3, input_mode="impulse",
                        reset="subtract", spikes_per_step="multi",
                        threshold_comparison="greater_equal")
    xs = _xs()
    d = thr - v_reset
    v, zs = np.zeros(N, np.float32), []
    for x in xs:
        v = v + x
        z = np.maximum(np.floor((v - v_reset) / np.float32(d)), 0)
        v = v - z * np.float32(d)
        zs.append(z)
    out = np.asarray(g(jnp.asarray(xs)))
    np.testing.assert_array_equal(out, np.stack(zs))
    assert out.max() >= 2  # several spikes in one step did happen


def test_multi_spike_strict_comparison_closed_form():
    """Under '>' a state exactly at k thresholds emits k - 1 spikes (ceil(q) - 1)."""
    g = nirjax.from_nir(_graph("IF"), dt=1e-3, input_mode="impulse", reset="subtract",
                        spikes_per_step="multi")
    xs = jnp.asarray(np.array([[0.5, 1.0, 2.0, 2.5]], np.float32))
    np.testing.assert_array_equal(np.asarray(g(xs))[0], [0, 0, 1, 2])
    ge = g.with_options(threshold_comparison="greater_equal")
    np.testing.assert_array_equal(np.asarray(ge(xs))[0], [0, 1, 2, 2])


@pytest.mark.parametrize("kind", SPIKING)
def test_comparison_at_the_threshold(kind):
    """A state exactly at v_threshold spikes under '>=' and not under '>' (single spikes)."""
    g = nirjax.from_nir(_graph(kind), dt=1e-3)
    state = g.nodes[_name(kind)].zero_state()
    state = {**state, "v": jnp.ones(N, jnp.float32)}
    node = g.nodes[_name(kind)]
    assert np.all(np.asarray(node.spikes(state)) == 0)
    ge = node.options.replace(threshold_comparison="greater_equal")
    node_ge = g.with_options(threshold_comparison="greater_equal").nodes[_name(kind)]
    assert node_ge.options == ge
    assert np.all(np.asarray(node_ge.spikes(state)) == 1)


def _name(kind):
    return {"IF": "if", "LIF": "lif", "CubaLIF": "cubalif"}[kind]


@pytest.mark.parametrize("kind", SPIKING)
def test_multi_spike_leaves_v_below_threshold(kind):
    """For every NIR spiking neuron: after a multi-spike step (>=), v < v_threshold, and every
    spike was needed (v + d >= v_threshold where z > 0)."""
    r = 4000.0 if kind == "IF" else 40.0  # large steps in v for every neuron
    g = nirjax.from_nir(_graph(kind, r=r), dt=1e-3, reset="subtract",
                        spikes_per_step="multi", threshold_comparison="greater_equal")
    res = g.run(jnp.asarray(_xs(high=8.0)), record=[_name(kind)])
    v = np.asarray(res.record[_name(kind)]["v"])
    z = np.asarray(res.output)
    assert z.max() >= 2
    assert np.all(v < 1.0)
    assert np.all((v + 1.0 >= 1.0 - 1e-6)[z > 0])


def test_spike_before_input_is_spyx_lif():
    """Spyx's LIF: z[t] = H(V[t-1] - thr); V[t] = beta V[t-1] + x[t] - z[t] thr. With
    tau = dt / (1 - beta), r = tau / dt under Euler that is nirjax's LIF with
    spike_order='before_input', reset='subtract'."""
    dt, beta, thr = 1e-3, 0.8, 1.0
    tau = dt / (1 - beta)
    g = nirjax.from_nir(_graph("LIF", thr, r=tau / dt, tau=tau), dt=dt, reset="subtract",
                        spike_order="before_input")
    xs = _xs(high=1.0)
    V, zs = np.zeros(N), []
    for x in xs:
        z = (V > thr).astype(np.float64)
        V = beta * V + x - z * thr
        zs.append(z)
    out = np.asarray(g(jnp.asarray(xs)))
    np.testing.assert_array_equal(out, np.stack(zs))
    assert out[0].sum() == 0 and out.sum() > 0
    # the same graph after input lags by exactly one step where no reset intervenes differently
    after = np.asarray(g.with_options(spike_order="after_input")(jnp.asarray(xs)))
    assert not np.array_equal(after, out)


def test_multi_needs_subtract():
    with pytest.raises(ValueError, match="needs reset='subtract'"):
        nirjax.Options(dt=1e-3, spikes_per_step="multi")
    with pytest.raises(ValueError, match="spike_order: expected one of"):
        nirjax.Options(dt=1e-3, spike_order="late")


def test_spike_options_round_trip_through_metadata(tmp_path):
    g = nirjax.from_nir(_graph("LIF"), dt=1e-3, reset="subtract", spikes_per_step="multi",
                        threshold_comparison="greater_equal", spike_order="before_input")
    md = nirjax.to_nir(g).metadata
    assert md["nirjax_spikes_per_step"] == "multi"
    assert md["nirjax_threshold_comparison"] == "greater_equal"
    assert md["nirjax_spike_order"] == "before_input"
    path = tmp_path / "g.nir"
    nirjax.write(path, g)
    again = nirjax.load(path)
    assert again.options == g.options
    xs = jnp.asarray(_xs(high=30.0))
    np.testing.assert_array_equal(np.asarray(again(xs)), np.asarray(g(xs)))


def test_multi_spike_gradient_flows():
    g = nirjax.from_nir(_graph("LIF", r=40.0), dt=1e-3, reset="subtract",
                        spikes_per_step="multi")
    xs = jnp.asarray(_xs(high=8.0))

    def loss(w):
        import equinox as eqx

        m = eqx.tree_at(lambda m: m.nodes["linear"].weight, g, w)
        return jnp.sum(m(xs))

    grad = jax.grad(loss)(g.nodes["linear"].weight)
    assert np.all(np.isfinite(np.asarray(grad))) and np.abs(np.asarray(grad)).sum() > 0


def test_spike_count_closed_form():
    lif = nirjax.from_nir(_graph("LIF", v_reset=-0.5), dt=1e-3, reset="subtract",
                          spikes_per_step="multi").nodes["lif"]
    v = jnp.asarray([0.9, 1.0, 2.5, 4.0], jnp.float32)  # q = (v + 0.5) / 1.5
    assert np.asarray(lif.spike_count({"v": v})).tolist() == [0.0, 0.0, 1.0, 2.0]


def test_continuous_multi_equals_discrete_for_if_impulses():
    """A jump to v emits floor((v - v_reset) / d) spikes at once in continuous time (the
    subtractive cascade), which is spikes_per_step='multi' with '>='."""
    g = nirjax.from_nir(_graph("IF"), dt=1e-3, input_mode="impulse", reset="subtract",
                        spikes_per_step="multi", threshold_comparison="greater_equal")
    xs = jnp.asarray(np.round(_xs(T=12, high=3.4), 2))
    res = nirjax.simulate_continuous(g, xs, input_kind="spikes", max_spikes_per_step=4)
    np.testing.assert_array_equal(np.asarray(res.spikes["if"]), np.asarray(g(xs)))


def test_continuous_refuses_spike_before_input():
    g = nirjax.from_nir(_graph("LIF"), dt=1e-3, spike_order="before_input")
    with pytest.raises(NotImplementedError, match="no continuous-time meaning"):
        nirjax.simulate_continuous(g, jnp.zeros((3, N), jnp.float32))
