"""Every bad input gives a clear error naming the node or field, what was expected, and the fix."""

import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax


def lif(n=2, **over):
    p = dict(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(over)
    return nir.LIF(**p)


def chain(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def test_dt_is_required():
    with pytest.raises(ValueError, match="dt is required"):
        nirjax.from_nir(chain(lif()))


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan")])
def test_dt_must_be_positive(dt):
    with pytest.raises(ValueError, match="dt: must be a finite number > 0"):
        nirjax.from_nir(chain(lif()), dt=dt)


@pytest.mark.parametrize("tau", [0.0, -0.01])
def test_tau_must_be_positive(tau):
    with pytest.raises(ValueError, match="node 'lif', field 'tau': must be > 0"):
        nirjax.from_nir(chain(lif(tau=np.array([0.01, tau]))), dt=1e-3)


def test_nan_parameters():
    with pytest.raises(ValueError, match="node 'lif', field 'v_threshold': contains NaN"):
        nirjax.from_nir(chain(lif(v_threshold=np.array([1.0, np.nan]))), dt=1e-3)


def test_shape_mismatch_along_an_edge():
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([3])), "w": nir.Linear(np.ones((4, 3))), "lif": lif(5),
               "out": nir.Output(np.array([5]))},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")],
        type_check=False,
    )
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\) expects per-step input of shape "
                                         r"\(5,\), but its incoming edges \(from 'w'\) carry \(4,\)"):
        nirjax.from_nir(g, dt=1e-3)


def test_dangling_edge():
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "lif": lif(), "out": nir.Output(np.array([2]))},
        edges=[("in", "lif"), ("lif", "ghost"), ("lif", "out")],
        type_check=False,
    )
    with pytest.raises(ValueError, match="destination node 'ghost', which does not exist"):
        nirjax.from_nir(g, dt=1e-3)


def test_graph_without_input():
    g = nir.NIRGraph(nodes={"lif": lif(), "out": nir.Output(np.array([2]))},
                     edges=[("lif", "out")], type_check=False)
    with pytest.raises(ValueError, match="has no Input node"):
        nirjax.from_nir(g, dt=1e-3)


def test_unreachable_node():
    g = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "a": lif(), "b": lif(), "out": nir.Output(np.array([2]))},
        edges=[("in", "a"), ("a", "out"), ("b", "out")],
        type_check=False,
    )
    with pytest.raises(ValueError, match=r"node\(s\) \['b'\] cannot be reached"):
        nirjax.from_nir(g, dt=1e-3)


def test_input_of_wrong_shape_or_dtype():
    model = nirjax.from_nir(chain(lif(3)), dt=1e-3)
    with pytest.raises(ValueError, match=r"input 'input': expected shape \(T, \*shape\) with shape = \(3,\), got \(10, 4\)"):
        model(jnp.zeros((10, 4)))
    with pytest.raises(ValueError, match="jax.vmap"):
        model(jnp.zeros((2, 10, 3)))
    with pytest.raises(TypeError, match="expected a floating-point array, got dtype int32"):
        model(jnp.zeros((10, 3), jnp.int32))


@pytest.mark.parametrize(
    "option, value, match",
    [("discretization", "rk4", "discretization: expected one of"),
     ("reset", "zero", "reset: expected one of"),
     ("input_mode", "spikes", "input_mode: expected one of"),
     ("cuba_order", "both", "cuba_order: expected one of"),
     ("surrogate", "nope", "surrogate: unknown family 'nope'")],
)
def test_bad_options(option, value, match):
    with pytest.raises(ValueError, match=match):
        nirjax.from_nir(chain(lif()), dt=1e-3, **{option: value})


def test_unknown_node_in_node_options():
    with pytest.raises(ValueError, match=r"node_options: no node\(s\) \['nope'\]"):
        nirjax.from_nir(chain(lif()), dt=1e-3, node_options={"nope": {"reset": "subtract"}})


def test_node_options_override_one_node():
    g = nir.NIRGraph.from_list(lif(), lif(), type_check=False)
    model = nirjax.from_nir(g, dt=1e-3, node_options={"lif_1": {"reset": "subtract"}})
    assert model.nodes["lif"].options.reset == "value"
    assert model.nodes["lif_1"].options.reset == "subtract"


def test_malformed_file(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="bad.nir: cannot read it as a NIR graph"):
        nirjax.from_nir(bad, dt=1e-3)
    with pytest.raises(FileNotFoundError, match="no such NIR file"):
        nirjax.from_nir(tmp_path / "missing.nir", dt=1e-3)


def test_float64_needs_x64():
    with pytest.raises(ValueError, match="jax_enable_x64"):
        nirjax.from_nir(chain(lif()), dt=1e-3, dtype=jnp.float64)


def test_direct_construction_checks_tau():
    with pytest.raises(ValueError, match="LIF.tau: must be > 0"):
        nirjax.LIF(tau=jnp.array([-1.0]), r=jnp.ones(1), v_leak=jnp.zeros(1),
                   v_threshold=jnp.ones(1), v_reset=jnp.zeros(1), options=nirjax.Options(dt=1e-3))
