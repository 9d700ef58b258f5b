"""Surrogate gradients: the derivative is each family's formula, the forward pass is the exact
Heaviside step, and detach_reset removes the reset's share of the gradient."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nirjax


def _closed_form(name, x, k):
    """The documented formula of each built-in family, written out independently in numpy."""
    x = np.asarray(x, np.float64)
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + k * np.abs(x)) ** 2
    if name == "arctan":
        return (k / 2.0) / (1.0 + (math.pi * k * x / 2.0) ** 2)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-k * x))
        return k * s * (1.0 - s)
    if name == "triangle":
        return np.maximum(0.0, 1.0 - k * np.abs(x))
    if name == "rectangle":
        return np.where(np.abs(x) < 0.5 / k, 1.0, 0.0)
    if name == "straight_through":
        return np.full_like(x, k)
    return None


# Points away from the rectangle's edges at |x| = 1/(2k) for the scales used below.
X = np.array([-2.0, -0.7, -0.3, -0.11, -0.01, 0.0, 0.02, 0.13, 0.29, 0.6, 1.5], np.float32)


@pytest.mark.parametrize("name", sorted(nirjax.SURROGATES))
@pytest.mark.parametrize("scale", [None, 3.0])
def test_gradient_is_the_formula(name, scale):
    sur = nirjax.Surrogate(name, scale)
    k = sur.scale
    grad = jax.vmap(jax.grad(lambda x: sur(x)))(jnp.asarray(X))
    expected = _closed_form(name, X, k)
    if expected is None:  # a user-registered family: its own registered derivative
        expected = np.asarray(nirjax.SURROGATES[name][0](jnp.asarray(X), k))
    # float32 evaluation: allow a small error relative to the family's peak value
    atol = 1e-6 * max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name", sorted(nirjax.SURROGATES))
def test_forward_is_heaviside(name):
    sur = nirjax.Surrogate(name)
    out = np.asarray(sur(jnp.asarray(X)))
    np.testing.assert_array_equal(out, (X > 0).astype(np.float32))


def _lif(surrogate="fast_sigmoid", reset="value", detach_reset=False):
    opts = nirjax.Options(dt=1e-4, surrogate=surrogate, reset=reset, detach_reset=detach_reset)
    one = jnp.ones((1,), jnp.float32)
    return nirjax.LIF(
        tau=1e-3 * one,
        r=10.0 * one,
        v_leak=0.0 * one,
        v_threshold=one,
        v_reset=0.2 * one,
        options=opts,
    )


@pytest.mark.parametrize("name", sorted(nirjax.SURROGATES))
def test_lif_forward_does_not_depend_on_surrogate(name, key):
    xs = 0.4 * jax.random.uniform(key, (40, 1), jnp.float32)
    base = _lif("fast_sigmoid")
    other = _lif(name)
    s0 = base.init_state((1,), jnp.float32)
    _, y0, _ = base.run_sequence(s0, xs)
    _, y1, _ = other.run_sequence(s0, xs)
    np.testing.assert_array_equal(np.asarray(y0), np.asarray(y1))
    assert float(jnp.sum(y0)) > 0  # the input makes it spike: the comparison is not vacuous


@pytest.mark.parametrize("reset", ["value", "subtract"])
@pytest.mark.parametrize("detach", [False, True])
def test_detach_reset_stops_the_reset_gradient(reset, detach):
    """One Euler step from v0 with input x: v1 = v0 + a (r x - v0), a = dt/tau; z = H(v1 - th).
    After the reset, value: v = v1 (1 - z) + v_reset z; subtract: v = v1 - z (th - v_reset).
    With dz/dx = g(v1 - th) a r, the gradient dv/dx is, with the reset's share,
      value:    (1 - z) a r + (v_reset - v1) g a r
      subtract: a r - (th - v_reset) g a r
    and without it (detach_reset) only the first term."""
    lif = _lif("fast_sigmoid", reset=reset, detach_reset=detach)
    a, r, th, vr, k = 0.1, 10.0, 1.0, 0.2, nirjax.Surrogate("fast_sigmoid").scale
    v0 = 0.95

    def v_after(x):
        state = {"v": jnp.full((1,), v0, jnp.float32)}
        state, _ = lif.step(state, jnp.full((1,), x, jnp.float32))
        return state["v"][0]

    for x in (0.05, 0.2):  # 0.05: no spike (v1 = 0.905); 0.2: spike (v1 = 1.055)
        v1 = v0 + a * (r * x - v0)
        z = float(v1 > th)
        g = 1.0 / (1.0 + k * abs(v1 - th)) ** 2
        if reset == "value":
            direct, through_reset = (1 - z) * a * r, (vr - v1) * g * a * r
        else:
            direct, through_reset = a * r, -(th - vr) * g * a * r
        expected = direct if detach else direct + through_reset
        got = float(jax.grad(v_after)(jnp.float32(x)))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        # the forward value does not depend on detach_reset
        fwd = v1 * (1 - z) + vr * z if reset == "value" else v1 - z * (th - vr)
        np.testing.assert_allclose(float(v_after(jnp.float32(x))), fwd, rtol=1e-5)


def test_detach_reset_option_reaches_nodes():
    g = nirjax.from_nir(
        nirjax.to_nir(
            nirjax.from_nir(
                _single_lif_graph(),
                dt=1e-4,
                surrogate=nirjax.Surrogate("arctan", 4.0),
                detach_reset=True,
            )
        )
    )
    assert g.nodes["lif"].options.detach_reset is True
    assert g.nodes["lif"].options.surrogate == nirjax.Surrogate("arctan", 4.0)


def _single_lif_graph():
    import nir

    one = np.ones(2, np.float32)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "lif": nir.LIF(
                tau=1e-3 * one, r=10 * one, v_leak=0 * one, v_threshold=one, v_reset=0 * one
            ),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )
