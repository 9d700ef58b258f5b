"""Options: one codec (from_nir keywords, NIR metadata, CLI flags), strict parsing, the
precedence of recorded and explicit options, and `Graph.with_options`."""

from __future__ import annotations

import argparse
import dataclasses

import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import spikes

import nirjax


def _lif(n=3):
    one = np.ones(n)
    return nir.LIF(tau=one * 0.01, r=one * 20, v_leak=0 * one, v_threshold=one, v_reset=0 * one)


def _graph(metadata=None, node_metadata=None):
    lif = _lif()
    lif.metadata = dict(node_metadata or {})
    return nir.NIRGraph(
        nodes={"in": nir.Input(np.array([3])), "lif": lif, "li": nir.LI(
            tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3)),
            "out": nir.Output(np.array([3]))},
        edges=[("in", "lif"), ("lif", "li"), ("li", "out")],
        metadata=dict(metadata or {}),
    )


def test_every_option_round_trips_through_metadata():
    opts = nirjax.Options(dt=2e-4, discretization="exact", reset="subtract", input_mode="impulse",
                          cuba_order="voltage_first", surrogate=nirjax.Surrogate("arctan", 3.0),
                          detach_reset=True, delay_rounding=True, spikes_per_step="multi",
                          threshold_comparison="greater_equal", spike_order="before_input")
    md = opts.to_metadata()
    assert set(md) == {nirjax.Options.metadata_key(f.name)
                       for f in dataclasses.fields(nirjax.Options)} | {"nirjax_surrogate_scale"}
    assert nirjax.Options(**nirjax.Options.from_metadata(md)) == opts
    # Only what differs from a base is written; the surrogate's two keys go together.
    base = nirjax.Options(dt=2e-4)
    diff = opts.replace(discretization="euler", reset="value", input_mode="current",
                        cuba_order="current_first", detach_reset=False,
                        delay_rounding=False, spikes_per_step="single",
                        threshold_comparison="greater", spike_order="after_input",
                        ).to_metadata(base)
    assert set(diff) == {"nirjax_surrogate", "nirjax_surrogate_scale"}


@pytest.mark.parametrize("key, value, match", [
    ("nirjax_detach_reset", "False", "must be True or False"),
    ("nirjax_detach_reset", 2, "must be True or False"),
    ("nirjax_delay_rounding", np.int64(1), "must be True or False"),
    ("nirjax_dt", "1e-3", "must be a number of seconds"),
    ("nirjax_dt", True, "must be a number of seconds"),
    ("nirjax_reset", 1, "must be a name"),
    ("nirjax_surrogate_scale", "big", "must be a number"),
])
def test_metadata_is_parsed_strictly(key, value, match):
    with pytest.raises(ValueError, match=f"graph metadata: '{key}' {match}"):
        nirjax.from_nir(_graph({key: value, "nirjax_dt": 1e-3}) if key != "nirjax_dt"
                        else _graph({key: value}))


def test_bad_choice_in_metadata_names_the_node():
    with pytest.raises(ValueError, match="node 'lif': reset: expected one of"):
        nirjax.from_nir(_graph(node_metadata={"nirjax_reset": "zero"}), dt=1e-3)


def test_precedence_node_options_over_explicit_over_recorded():
    """Strongest first: node_options, explicit from_nir keywords, the node's recorded options,
    the graph's recorded options, the defaults."""
    src = _graph(metadata={"nirjax_dt": 1e-3, "nirjax_reset": "subtract"},
                 node_metadata={"nirjax_discretization": "exact", "nirjax_reset": "value"})
    g = nirjax.from_nir(src)
    assert g.options.reset == "subtract" and g.nodes["li"].options.reset == "subtract"
    assert g.nodes["lif"].options.reset == "value"  # the node's record beats the graph's
    assert g.nodes["lif"].options.discretization == "exact"
    g = nirjax.from_nir(src, reset="subtract", discretization="euler")
    assert g.nodes["lif"].options.reset == "subtract"  # explicit beats recorded
    assert g.nodes["lif"].options.discretization == "euler"
    g = nirjax.from_nir(src, reset="subtract", node_options={"lif": {"reset": "value"}})
    assert g.nodes["lif"].options.reset == "value"  # node_options beat everything
    assert g.nodes["li"].options.reset == "subtract"


def test_with_options_replaces_the_nir_round_trip():
    g = nirjax.from_nir(_graph(), dt=1e-3)
    xs = spikes(__import__("jax").random.PRNGKey(0), (50, 3), 0.5)
    new = g.with_options(reset="subtract", discretization="exact")
    ref = nirjax.from_nir(_graph(), dt=1e-3, reset="subtract", discretization="exact")
    np.testing.assert_array_equal(new(xs), ref(xs))
    assert new.nodes["lif"].tau is g.nodes["lif"].tau  # parameters kept, not copied
    one = g.with_options(node="lif", reset="subtract")
    assert one.nodes["lif"].options.reset == "subtract" and one.options.reset == "value"
    assert one.nodes["li"].options.reset == "value"
    exported = nirjax.to_nir(one)
    assert exported.nodes["lif"].metadata == {"nirjax_reset": "subtract"}
    with pytest.raises(TypeError, match="unknown option"):
        g.with_options(resett="subtract")
    with pytest.raises(ValueError, match="no node 'nope'"):
        g.with_options(node="nope", reset="subtract")


def test_with_options_dt_rebuilds_delays():
    src = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Delay(np.array([2e-3, 4e-3])),
                                 nir.Output(np.array([2])))
    g = nirjax.from_nir(src, dt=1e-3)
    h = g.with_options(dt=2e-3)
    xs = jnp.eye(2, dtype=jnp.float32).repeat(3, axis=0)[:6]
    np.testing.assert_array_equal(h(xs), nirjax.from_nir(src, dt=2e-3)(xs))
    with pytest.raises(ValueError, match="not a whole number"):
        g.with_options(dt=3e-3)


def test_graph_supports_tree_at_and_dataclasses_replace():
    import equinox as eqx

    g = nirjax.from_nir(_graph(), dt=1e-3)
    h = eqx.tree_at(lambda m: m.nodes["lif"].tau, g, g.nodes["lif"].tau * 2)
    assert np.allclose(h.nodes["lif"].tau, 0.02) and h.plan == g.plan
    r = dataclasses.replace(g, name="renamed")
    assert r.name == "renamed" and r.plan.order == g.plan.order


def test_cli_flags_come_from_the_options():
    p = argparse.ArgumentParser()
    nirjax.Options.add_arguments(p)
    args = p.parse_args(["--reset", "subtract", "--detach-reset", "--discretization", "exact"])
    assert nirjax.Options.from_arguments(args) == {
        "reset": "subtract", "detach_reset": True, "discretization": "exact"}
    flags = {a.dest for a in p._actions}
    assert flags >= {f.name for f in dataclasses.fields(nirjax.Options)} - {"dt"}
    with pytest.raises(SystemExit):
        p.parse_args(["--reset", "zero"])


def test_discretization_objects_and_names():
    assert nirjax.Options(dt=1e-3, discretization="exact").discretization == nirjax.Exact()
    assert nirjax.Options(dt=1e-3, discretization=nirjax.Euler()).discretization == "euler"

    class Midpoint(nirjax.Discretization):
        name = "test_midpoint"

        def advance(self, neuron, coeffs, state, u, dt):
            half = {k: state[k] + dt / 2 * f for k, f in neuron.vector_field(state, u).items()}
            return {k: state[k] + dt * f for k, f in neuron.vector_field(half, u).items()}

    with pytest.raises(ValueError, match="register it with nirjax.register_discretization"):
        nirjax.Options(dt=1e-3, discretization=Midpoint())
    nirjax.register_discretization(Midpoint())
    g = nirjax.from_nir(_graph(), dt=1e-3, discretization="test_midpoint")
    assert nirjax.from_nir(nirjax.to_nir(g)).nodes["lif"].options.discretization == Midpoint()
    xs = jnp.full((30, 3), 0.5, jnp.float32)
    v = g.run(xs, record=["li"]).record["li"]["v"]
    exact = nirjax.from_nir(_graph(), dt=1e-3, discretization="exact")
    np.testing.assert_allclose(v, exact.run(xs, record=["li"]).record["li"]["v"], atol=1e-3)
    with pytest.raises(ValueError, match="discretization: expected one of"):
        nirjax.Options(dt=1e-3, discretization="rk4")
