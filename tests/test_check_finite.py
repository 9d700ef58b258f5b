"""`Execution.check_finite`: one check per run, raised on a scalar token and tied to the results.

The check must fire wherever the results are used (plain call, `jit`, `vmap`, `value_and_grad`,
only the final state), name the earliest failing step (then the first node in the graph's
order), leave every value of a finite run as it is (signed zeros included), and add no copy of
the large per-step arrays (XLA temporary memory within a few small buffers of the unchecked
run's).
"""

from __future__ import annotations

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax

DT = 1e-3


def _chain(*nodes, n=3):
    names = [f"n{k}" for k in range(len(nodes))]
    all_nodes = {"in": nir.Input(input_type={"input": np.array([n])}), **dict(zip(names, nodes)),
                 "out": nir.Output(output_type={"output": np.array([n])})}
    keys = list(all_nodes)
    return nirjax.from_nir(nir.NIRGraph(nodes=all_nodes, edges=list(zip(keys[:-1], keys[1:]))),
                           dt=DT)


def _lif_graph(n=3, w=None):
    w = np.eye(n, dtype=np.float32) if w is None else w
    return _chain(nir.Affine(weight=w, bias=np.zeros(n, np.float32)),
                  nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 20.0), v_leak=np.zeros(n),
                          v_threshold=np.ones(n), v_reset=np.zeros(n)), n=n)


def _nan_at(step, T=12, n=3):
    x = np.ones((T, n), np.float32)
    x[step, 1] = np.nan
    return x


RUNS = {
    "call": lambda g, x: g(x),
    "jit": lambda g, x: eqx.filter_jit(lambda m, a: m(a))(g, x),
    "vmap": lambda g, x: eqx.filter_jit(jax.vmap(g))(np.stack([np.ones_like(x), x])),
    "value_and_grad": lambda g, x: eqx.filter_jit(eqx.filter_value_and_grad(
        lambda m, a: jnp.sum(jax.vmap(m)(a))))(g, x[None]),
    "state_only": lambda g, x: g.run(x).state,
}


@pytest.mark.parametrize("how", sorted(RUNS))
def test_fires_wherever_the_results_are_used(how):
    g = _lif_graph()
    with pytest.raises(RuntimeError, match=r"input 'in' \(the data fed to the graph\) became NaN "
                                           r"or inf at step 7"):
        jax.block_until_ready(RUNS[how](g, _nan_at(7)))


def test_names_the_earliest_step_over_the_batch():
    g = _lif_graph()
    xs = np.stack([_nan_at(9), _nan_at(4), _nan_at(6)])
    with pytest.raises(RuntimeError, match=r"at step 4\b"):
        jax.block_until_ready(eqx.filter_jit(jax.vmap(g))(xs))


def test_names_the_first_node_at_the_same_step():
    # A float32 overflow in the Scale node (3e38 * 10 = inf) is the first non-finite value (the
    # input is finite) and the LI after it goes non-finite at the same step: Scale is named.
    g = _chain(nir.Scale(scale=np.array([1.0, 3e38, 1.0], np.float32)),
               nir.LI(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3)))
    x = np.zeros((10, 3), np.float32)
    x[5, 1] = 10.0
    with pytest.raises(RuntimeError, match=r"node 'n0' \(Scale\) output became NaN or inf at "
                                           r"step 5\b"):
        jax.block_until_ready(g(x))


def test_a_finite_run_is_unchanged_bit_for_bit():
    # Outputs that are exactly -0.0 (-1 * 0) stay -0.0 (the tie is `x - 0.0`).
    g = _chain(nir.Scale(scale=np.full(3, -1.0, np.float32)))
    x = np.zeros((6, 3), np.float32)
    on = np.asarray(g(x))
    off = np.asarray(g.with_execution(check_finite=False)(x))
    assert np.signbit(on).all() and np.array_equal(on.view(np.uint32), off.view(np.uint32))
    rng = np.random.default_rng(0)
    g = _lif_graph(8, rng.standard_normal((8, 8)).astype(np.float32))
    x = (rng.random((50, 8)) < 0.3).astype(np.float32)
    assert np.array_equal(np.asarray(g(x)), np.asarray(g.with_execution(check_finite=False)(x)))


def test_no_copy_of_the_sequences():
    n, T, B = 64, 200, 4
    rng = np.random.default_rng(0)
    g = _lif_graph(n, (rng.standard_normal((n, n)) / 8).astype(np.float32))
    xs = jnp.asarray((rng.random((B, T, n)) < 0.1).astype(np.float32))

    def temp_bytes(model):
        f = eqx.filter_jit(eqx.filter_value_and_grad(lambda m, a: jnp.sum(jax.vmap(m)(a))))
        compiled = f.lower(model, xs).compile()
        return getattr(compiled, "compiled", compiled).memory_analysis().temp_size_in_bytes

    unit = T * B * n * 4  # one (T, B, N) float32 array
    extra = temp_bytes(g) - temp_bytes(g.with_execution(check_finite=False))
    # At most the checked output kept alive until the check (XLA schedules the check's
    # conditional after the reverse pass); threading the sequences through the conditional
    # cost more than two such arrays.
    assert extra <= 1.05 * unit, f"the check costs {extra / unit:.2f} (T, B, N) arrays"


def _diverging_cycle(gradient):
    # in -> fc -> lif <-> sc: once the LIF spikes, the Scale feeds back 3e38 and its input
    # overflows to inf; under the subtractive reset the state stays inf while every output
    # (spikes, the Scale's 3e38) is finite, so only the watch on the cycle's state can tell.
    n = 3
    nodes = {"in": nir.Input(input_type={"input": np.array([n])}),
             "fc": nir.Affine(weight=np.eye(n, dtype=np.float32), bias=np.zeros(n, np.float32)),
             "lif": nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 200.0), v_leak=np.zeros(n),
                            v_threshold=np.ones(n), v_reset=np.zeros(n)),
             "sc": nir.Scale(scale=np.array([1.0, 3e38, 1.0], np.float32)),
             "out": nir.Output(output_type={"output": np.array([n])})}
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "sc"), ("sc", "lif"), ("lif", "out")]
    return nirjax.from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT, reset="subtract",
                           gradient=gradient)


@pytest.mark.parametrize("how", ["call", "value_and_grad"])
def test_a_cycle_state_going_non_finite_is_named_with_its_step(how):
    """The same error (the cycle, its state, the step) under the whole-cycle rule
    (`gradient="custom"`) and the per-step path (`"autodiff"`)."""
    x = np.zeros((12, 3), np.float32)
    x[4, 1] = 1.0  # one spike of neuron 1 at step 4; the overflow follows at step 5
    messages = []
    for gradient in ("custom", "autodiff"):
        with pytest.raises(RuntimeError, match=r"the cycle through nodes \['lif', 'sc'\] state "
                                               r"became NaN or inf at step 5\b") as err:
            jax.block_until_ready(RUNS[how](_diverging_cycle(gradient), x))
        messages.append(re.findall(r"the cycle through .*", str(err.value)))
    assert messages[0] == messages[1] and len(messages[0]) == 1
