"""Hostile input to the core library: corrupted .nir files, bad parameters, bad runtime
inputs. Every case must end in one of two outcome classes:

- `clear`: a ValueError / TypeError / NotImplementedError / FileNotFoundError whose message
  names what is at fault (the node and field, the file, the input, the option), or, for a value
  that goes non-finite while running, an error that names the node and step;
- `correct`: the graph loads with every parameter exactly as stored and runs to a finite result
  of the declared shape (or, for runtime inputs, equal to an independent numpy reference).

Never a raw exception from deep inside (AssertionError, KeyError, IndexError, AttributeError,
h5py's or XLA's errors), never a silently changed value. The hypothesis tests record the
outcome class of every example with `hypothesis.event` (see `--hypothesis-show-statistics`).
"""

from __future__ import annotations

import os
import re
import tempfile

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st

import nirjax

CLEAR = (ValueError, TypeError, NotImplementedError, FileNotFoundError)
DT = 1e-3


def lif(n=3, **kw):
    p = dict(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))
    p.update(kw)
    return nir.LIF(**p)


def io(shape):
    shape = np.array(shape)
    return nir.Input(input_type={"input": shape}), nir.Output(output_type={"output": shape})


def chain(*nodes, in_shape=(3,), out_shape=None):
    """Input -> nodes... -> Output (names n0, n1, ...)."""
    i, _ = io(in_shape)
    o = nir.Output(output_type={"output": None if out_shape is None else np.array(out_shape)})
    names = [f"n{k}" for k in range(len(nodes))]
    graph_nodes = {"in": i, **dict(zip(names, nodes)), "out": o}
    keys = list(graph_nodes)
    return nir.NIRGraph(nodes=graph_nodes, edges=list(zip(keys[:-1], keys[1:])),
                        type_check=False)


def error_names(exc: BaseException, *needles: str) -> bool:
    text = str(exc)
    return all(n in text for n in needles)


# ------------------------------------------------------------------------------ fixed cases
def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


I3, O3 = io((3,))
CI, _ = io((1, 4, 4))

BUILD_CASES = {
    # name: (graph, options, exception, regex the message must match)
    "bool tau": (chain(lif(tau=np.array([True] * 3))), {}, TypeError, r"node 'n0', field 'tau'.*bool"),
    "bool threshold": (chain(lif(v_threshold=np.array([True] * 3))), {}, TypeError,
                       r"node 'n0', field 'v_threshold'.*bool"),
    "complex weight": (chain(nir.Linear(weight=np.ones((3, 3), complex))), {}, TypeError,
                       r"node 'n0', field 'weight'.*complex"),
    "str weight": (chain(nir.Linear(weight=np.array([["a"] * 3] * 3))), {}, TypeError,
                   r"node 'n0', field 'weight'"),
    "dt=True": (chain(lif()), {"dt": True}, TypeError, r"dt: expected a positive number"),
    "dt=1e-300": (chain(lif()), {"dt": 1e-300}, ValueError, r"dt: 1e-300 s is outside"),
    "dt=nan": (chain(lif()), {"dt": float("nan")}, ValueError, r"dt: must be a finite"),
    "tau 1e-50": (chain(lif(tau=np.full(3, 1e-50))), {}, ValueError,
                  r"node 'n0', field 'tau': 1e-50 .* rounds to 0 in float32"),
    "tau 0": (chain(lif(tau=np.zeros(3))), {}, ValueError, r"field 'tau': must be > 0.*got 0"),
    "weight 1e39": (chain(nir.Linear(weight=np.full((3, 3), 1e39))), {}, ValueError,
                    r"node 'n0', field 'weight': 1e\+39 .* over the largest float32"),
    "nan weight": (chain(nir.Linear(weight=np.full((3, 3), np.nan))), {}, ValueError,
                   r"node 'n0', field 'weight': contains NaN"),
    "pool kernel too big": (
        _graph({"in": CI, "p": nir.SumPool2d(kernel_size=np.array([5, 5]),
                                             stride=np.array([1, 1]), padding=np.array([0, 0])),
                "out": nir.Output(output_type=None)}, [("in", "p"), ("p", "out")]),
        {}, ValueError, r"node 'p' \(SumPool2d\): kernel_size \(5, 5\) is larger"),
    "conv kernel too big": (
        _graph({"in": CI, "c": nir.Conv2d(input_shape=None, weight=np.ones((1, 1, 6, 6)),
                                          stride=1, padding=0, dilation=1, groups=1,
                                          bias=np.zeros(1)),
                "out": nir.Output(output_type=None)}, [("in", "c"), ("c", "out")]),
        {}, ValueError, r"node 'c' \(Conv2d\): the kernel \(6, 6\)"),
    "duplicate edge": (_graph({"in": I3, "out": O3}, [("in", "out"), ("in", "out")]), {},
                       ValueError, r"edge \('in', 'out'\) is listed twice"),
    "slash in name": (_graph({"in": I3, "a/b": lif(), "out": O3},
                             [("in", "a/b"), ("a/b", "out")]), {}, ValueError,
                      r"node name 'a/b' cannot be used"),
    "1e13 neurons": (_graph({"in": nir.Input(input_type={"input": np.array([10**13])}),
                             "out": nir.Output(output_type=None)}, [("in", "out")]), {},
                     ValueError, r"node 'in'.*1e\+13 elements.*limit"),
    "delay of 1e9 s": (chain(nir.Delay(delay=np.full(3, 1e9))), {}, ValueError,
                       r"node 'n0', field 'delay'.*steps"),
    "negative delay": (chain(nir.Delay(delay=np.full(3, -1e-3))), {}, ValueError,
                       r"node 'n0', field 'delay': must be >= 0"),
    "fractional delay": (chain(nir.Delay(delay=np.full(3, 1.5e-3))), {}, ValueError,
                         r"node 'n0', field 'delay'.*delay_rounding=True"),
    "affine bias (1, 3)": (chain(nir.Affine(weight=np.ones((3, 3)), bias=np.ones((1, 3))),
                                 lif(), out_shape=(3,)), {}, ValueError,
                           r"node 'n0' \(Affine\)|node 'n0', field 'bias'"),
}


@pytest.mark.parametrize("name", sorted(BUILD_CASES))
def test_build_refuses_with_node_and_field(name):
    graph, options, exc, pattern = BUILD_CASES[name]
    options = {"dt": DT, **options}
    with pytest.raises(exc, match=pattern):
        nirjax.from_nir(graph, **options)


def test_nir_accepts_what_nirjax_accepts():
    """Array-likes of any numeric kind: float Input shapes, torch Parameters (and tensors),
    and an Output without a type (NIR's infer_types fills it in)."""
    w = np.arange(9.0).reshape(3, 3) / 10
    for weight in (torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)),
                   torch.tensor(w), w.astype(np.float32), (w * 10).astype(np.int64)):
        g = nirjax.from_nir(_graph({"in": nir.Input(input_type={"input": np.array([3.0])}),
                                    "w": nir.Linear(weight=weight),
                                    "out": nir.Output(output_type=None)},
                                   [("in", "w"), ("w", "out")]), dt=DT)
        assert g.input_shapes() == (3,) and g.output_shapes() == (3,)
        x = np.ones((2, 3), np.float32)
        want = x @ np.asarray(torch.as_tensor(weight).detach().numpy(), np.float32).T
        np.testing.assert_allclose(np.asarray(g(x)), want, rtol=1e-6)


def test_direct_construction_checks():
    with pytest.raises(TypeError, match=r"Flatten.start_dim: expected an int, got 0.5"):
        nirjax.Flatten(input_shape=(3,), start_dim=0.5)
    with pytest.raises(ValueError, match=r"Conv2d.stride: every entry must be >= 1"):
        nirjax.Conv2d(weight=jnp.ones((1, 1, 2, 2)), bias=jnp.zeros(1), input_shape=None,
                      stride=(0, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    with pytest.raises(ValueError, match=r"SumPool2d.kernel_size: expected 2 ints >= 1"):
        nirjax.SumPool2d(kernel_size=(0, 2), stride=(1, 1), padding=(0, 0))
    with pytest.raises(TypeError, match=r"LIF.tau: .*bool"):
        nirjax.LIF(tau=jnp.array([True]), r=jnp.ones(1), v_leak=jnp.zeros(1),
                   v_threshold=jnp.ones(1), v_reset=jnp.zeros(1),
                   options=nirjax.Options(dt=DT))


# ------------------------------------------------------------------------------ running
def _lif_graph(n=3, tau=0.02):
    return nirjax.from_nir(chain(nir.Linear(weight=np.eye(n)), lif(n, tau=np.full(n, tau)),
                                 in_shape=(n,), out_shape=(n,)), dt=DT)


def test_runtime_inputs_are_checked():
    g = _lif_graph()
    with pytest.raises(ValueError, match=r"input 'in': expected shape \(T, \*shape\) with "
                                         r"shape = \(3,\), got \(5, 1, 3\)"):
        g(np.ones((5, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"got \(5, 2, 3\)"):  # no reshape of (2, 3) to (3, 2)
        nirjax.from_nir(chain(nir.Scale(scale=np.ones((3, 2))), in_shape=(3, 2)), dt=DT)(
            np.ones((5, 2, 3), np.float32))
    with pytest.raises(TypeError, match=r"input 'in': expected a floating-point array, got "
                                        r"dtype bool"):
        g(np.ones((5, 3), bool))
    with pytest.raises(TypeError, match=r"record: expected node names .* got 5 \(int\)"):
        g.run(np.ones((5, 3), np.float32), record=[5])
    other = _lif_graph(4)
    with pytest.raises(ValueError, match=r"state\['nodes'\]\['n1'\]\['v'\]: expected shape "
                                         r"\(3,\) and dtype float32, got \(4,\)"):
        g.run(np.ones((5, 3), np.float32), state=other.init_state())
    sim = nirjax.simulate(g, np.ones((2, 5, 3), np.float32).tolist())  # a list is an array
    np.testing.assert_array_equal(sim.output, np.asarray(jax.vmap(g)(jnp.ones((2, 5, 3)))))
    with pytest.raises(ValueError, match=r"simulate: batch_size must be >= 1, got 0"):
        nirjax.simulate(g, np.ones((2, 5, 3), np.float32), batch_size=0)
    with tempfile.TemporaryDirectory() as d:
        with h5py.File(os.path.join(d, "in.h5"), "w") as f:
            f["in"] = np.ones((2, 5, 3), np.float32)
        with pytest.raises(ValueError, match=r"simulate_hdf5: batch_size must be >= 1, got 0"):
            nirjax.simulate_hdf5(g, os.path.join(d, "in.h5"), os.path.join(d, "out.h5"),
                                 batch_size=0)
        assert not os.path.exists(os.path.join(d, "out.h5"))


def _first_nan_step_li(tau, dt, T):
    """Independent reference: forward Euler `v + dt f(v)` of f(v) = (1 - v) / tau in float32,
    v0 = 0; the first step whose v is not finite."""
    v, tau, dt = np.float32(0), np.float32(tau), np.float32(dt)
    with np.errstate(all="ignore"):
        for t in range(T):
            v = np.float32(v + dt * ((np.float32(1) - v) / tau))
            if not np.isfinite(v):
                return t
    return None


@pytest.mark.parametrize("mode", ["eager", "jit", "vmap", "checkpoint"])
def test_nan_input_to_lif_is_an_error_naming_the_step(mode):
    g = _lif_graph()
    x = np.ones((12, 3), np.float32)
    x[7, 1] = np.nan
    run = {
        "eager": lambda: g(x),
        "jit": lambda: eqx.filter_jit(lambda m, x: m(x))(g, x),
        "vmap": lambda: eqx.filter_jit(jax.vmap(g))(np.stack([np.ones_like(x), x])),
        "checkpoint": lambda: g.with_execution(checkpoint=5)(x),
    }[mode]
    with pytest.raises(Exception, match=r"input 'in' \(the data fed to the graph\) became "
                                        r"NaN or inf at step 7") as info:
        run()
    assert isinstance(info.value, RuntimeError)  # equinox's / XLA's runtime error
    off = g.with_execution(check_finite=False)(x)  # the documented opt-out
    assert np.asarray(off).shape == (12, 3)


def test_diverging_state_names_node_and_step():
    tau = 1e-4  # dt / tau = 10: forward Euler multiplies the error by -9 per step
    g = nirjax.from_nir(chain(nir.LI(tau=np.full(3, tau), r=np.ones(3), v_leak=np.zeros(3)),
                              out_shape=(3,)), dt=DT)
    T = 80
    step = _first_nan_step_li(tau, DT, T)
    assert step is not None
    with pytest.raises(Exception, match=rf"node 'n0' \(LI\) (state|output) became NaN or inf "
                                        rf"at step {step}\b"):
        g(np.ones((T, 3), np.float32))


# ------------------------------------------------------------------------------ export
def test_write_refuses_non_finite_and_keeps_metadata(tmp_path):
    g = _lif_graph()
    bad = eqx.tree_at(lambda m: m.nodes["n0"].weight, g, jnp.full((3, 3), jnp.nan))
    target = tmp_path / "bad.nir"
    with pytest.raises(ValueError, match=r"write: node 'n0', field 'weight': holds NaN"):
        nirjax.write(target, bad)
    assert not target.exists() and not list(tmp_path.iterdir())
    src = chain(nir.Scale(scale=np.array(2.0), metadata={"k": "v", "n": 3}),
                out_shape=(3,))
    src.metadata = {"owner": "me", "nirjax_not_an_option": 1.5}
    g = nirjax.from_nir(src, dt=DT)
    nirjax.write(tmp_path / "m.nir", g)
    back = nir.read(tmp_path / "m.nir", type_check=False)  # NIR types a 0-d scale as ()
    assert back.nodes["n0"].metadata == {"k": "v", "n": 3}
    assert back.metadata["owner"] == "me" and back.metadata["nirjax_not_an_option"] == 1.5
    assert np.asarray(back.nodes["n0"].scale).shape == ()  # the 0-d parameter as it was
    (tmp_path / "afile").write_text("")  # a folder that is a file: unwritable even as root
    with pytest.raises(OSError, match=re.escape(str(tmp_path / "afile" / "x.nir"))):
        nirjax.write(tmp_path / "afile" / "x.nir", g)


# ------------------------------------------------------------------------------ file mutations
def _base_graphs():
    conv = nir.Conv2d(input_shape=None, weight=np.full((2, 1, 2, 2), 0.25), stride=1,
                      padding=0, dilation=1, groups=1, bias=np.zeros(2))
    return {
        "lif": chain(nir.Affine(weight=np.eye(3) * 2, bias=np.full(3, 0.1)), lif(),
                     out_shape=(3,)),
        "cnn": _graph({"in": CI, "c": conv,
                       "p": nir.SumPool2d(kernel_size=np.array([3, 3]),
                                          stride=np.array([1, 1]), padding=np.array([0, 0])),
                       "f": nir.Flatten(input_type={"input": np.array([2, 1, 1])}, start_dim=0),
                       "out": nir.Output(output_type={"output": np.array([2])})},
                      [("in", "c"), ("c", "p"), ("p", "f"), ("f", "out")]),
        "cuba_delay": chain(nir.Delay(delay=np.full(2, 2e-3)),
                            nir.CubaLIF(tau_mem=np.full(2, 0.02), tau_syn=np.full(2, 0.01),
                                        r=np.ones(2), v_leak=np.zeros(2),
                                        v_threshold=np.ones(2), w_in=np.ones(2)),
                            in_shape=(2,), out_shape=(2,)),
    }


_FILES: dict[str, str] = {}


def _base_file(name: str) -> str:
    if name not in _FILES:
        d = tempfile.mkdtemp(prefix="nirjax-hostile-")
        path = os.path.join(d, f"{name}.nir")
        nirjax.write(path, nirjax.from_nir(_base_graphs()[name], dt=DT))
        _FILES[name] = path
    return _FILES[name]


def _datasets(path):
    found = []
    with h5py.File(path, "r") as f:
        def visit(k, v):
            if isinstance(v, h5py.Dataset) and "/metadata" not in k and k.startswith("node/"):
                found.append(k)
        f.visititems(visit)
    return sorted(found)


MUTATIONS = ["nan", "inf", "neg", "zero", "huge", "tiny", "bool", "str", "complex", "grow",
             "shrink", "float", "scalar", "delete", "type_garbage", "type_other", "empty"]


def _mutate(f, key, how, draw_value):
    old = f[key][()]
    del f[key]
    arr = np.asarray(old)
    if how == "delete":
        return
    if key.endswith("/type"):
        how = how if how.startswith("type_") else "type_garbage"
    if how == "type_garbage":
        f[key] = "NotANirType"
        return
    if how == "type_other":
        f[key] = draw_value(["LIF", "Linear", "Conv2d", "Flatten", "Delay", "NIRGraph", "Input"])
        return
    if arr.dtype.kind in "SOU" and how not in ("str", "empty"):
        how = "str"
    new = {
        "nan": lambda: np.full(arr.shape, np.nan),
        "inf": lambda: np.full(arr.shape, np.inf),
        "neg": lambda: -np.abs(arr.astype(np.float64)) - 1,
        "zero": lambda: np.zeros(arr.shape),
        "huge": lambda: np.full(arr.shape, 1e39),
        "tiny": lambda: np.full(arr.shape, 1e-50),
        "bool": lambda: np.ones(arr.shape, bool),
        "str": lambda: "garbage",
        "complex": lambda: np.ones(arr.shape, complex),
        "grow": lambda: np.ones(tuple(arr.shape[:-1]) + (arr.shape[-1] + 1,) if arr.ndim else (2,)),
        "shrink": lambda: np.ones(arr.shape[1:]) if arr.ndim else np.ones((0,)),
        "float": lambda: arr.astype(np.float64) + 0.5,
        "scalar": lambda: np.float64(7.0),
        "empty": lambda: np.zeros((0,)),
    }[how]()
    f[key] = new


def _outcome(path):
    """Load and run a (possibly corrupted) file: 'clear' or 'correct', else the test fails."""
    try:
        g = nirjax.load(path, dt=DT)
    except CLEAR as e:
        text = str(e)
        assert path in text or "node '" in text or "dt" in text, f"unclear: {text}"
        return "clear"
    # Loaded: every stored parameter must be in the module exactly (nothing changed silently).
    with h5py.File(path, "r") as f:
        for path_in_graph, node in g.walk():
            base = "node/nodes/" + "/nodes/".join(path_in_graph.split("/"))
            for field in getattr(node, "parameters", {}) or ():
                if f"{base}/{field}" in f:
                    stored = np.asarray(f[f"{base}/{field}"][()], np.float64).astype(np.float32)
                    np.testing.assert_array_equal(np.asarray(getattr(node, field)), stored)
    shapes = g.input_shapes()
    shapes = shapes if isinstance(shapes, dict) else {g.inputs[0]: shapes}
    xs = {k: np.ones((4, *s), np.float32) for k, s in shapes.items()}
    try:
        out = g(xs if len(xs) > 1 else next(iter(xs.values())))
    except CLEAR as e:
        assert "node '" in str(e) or "input" in str(e), f"unclear: {e}"
        return "clear"
    except RuntimeError as e:
        assert "became NaN or inf at step" in str(e), f"raw runtime error: {e}"
        return "clear"
    for leaf in jax.tree.leaves(out):
        assert np.all(np.isfinite(np.asarray(leaf)))
    return "correct"


@st.composite
def corrupted_files(draw):
    name = draw(st.sampled_from(sorted(_base_graphs())))
    src = _base_file(name)
    keys = _datasets(src)
    n = draw(st.integers(1, 2))
    picks = [(draw(st.sampled_from(keys)), draw(st.sampled_from(MUTATIONS))) for _ in range(n)]
    return name, src, picks, draw


def _apply(src, picks, draw, tmp):
    with open(src, "rb") as a, open(tmp, "wb") as b:
        b.write(a.read())
    with h5py.File(tmp, "a") as f:
        for key, how in picks:
            if key in f:
                _mutate(f, key, how, lambda options: draw(st.sampled_from(options)))


def _check_corrupted(case):
    name, src, picks, draw = case
    with tempfile.TemporaryDirectory() as d:
        tmp = os.path.join(d, "mutated.nir")
        _apply(src, picks, draw, tmp)
        outcome = _outcome(tmp)
    event(f"outcome: {outcome}")
    event(f"mutation: {picks[0][1]}")


_SETTINGS = dict(deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=40, **_SETTINGS)
@given(corrupted_files())
def test_corrupted_files_fail_clearly_or_load_exactly(case):
    _check_corrupted(case)


@pytest.mark.slow
@settings(max_examples=400, **_SETTINGS)
@given(corrupted_files())
def test_corrupted_files_many(case):
    _check_corrupted(case)


@st.composite
def hostile_inputs(draw):
    T = draw(st.integers(1, 6))
    shape = draw(st.sampled_from([(T, 3), (T, 1, 3), (T, 3, 1), (3,), (T, 4), (T, 3, 3), ()]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, bool, np.complex64,
                                  np.float16]))
    x = np.asarray(draw(st.lists(st.floats(-3, 3, width=32), min_size=int(np.prod(shape)),
                                 max_size=int(np.prod(shape)))), np.float64).reshape(shape)
    if draw(st.booleans()) and x.size:
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    as_list = draw(st.booleans())
    with np.errstate(invalid="ignore"):
        x = x.astype(dtype)
    return (x.tolist() if as_list else x), x


def _reference_lif(x, tau=0.02, dt=DT):
    """Independent numpy LIF (identity weight, forward Euler, reset to 0) in float32."""
    v = np.zeros(x.shape[1:], np.float32)
    a = np.float32(dt / tau)
    out = []
    for xt in x.astype(np.float32):
        v = v + a * (-v + xt)
        z = (v > 1).astype(np.float32)
        v = v * (1 - z)
        out.append(z)
    return np.stack(out)


_LIF = None


@settings(max_examples=40, **_SETTINGS)
@given(hostile_inputs())
def test_hostile_runtime_inputs(case):
    global _LIF
    if _LIF is None:
        _LIF = _lif_graph()
    given_x, x = case
    try:
        y = _LIF(given_x)
    except CLEAR as e:
        assert "input 'in'" in str(e), f"unclear: {e}"
        event("outcome: clear")
        return
    except RuntimeError as e:
        assert "became NaN or inf at step" in str(e)
        t = int(np.argmax(np.any(~np.isfinite(np.asarray(x, np.float64)).reshape(len(x), -1),
                                 axis=1)))
        assert f"at step {t} " in str(e)
        event("outcome: clear (non-finite)")
        return
    assert x.dtype.kind == "f" and x.shape[1:] == (3,)
    np.testing.assert_array_equal(np.asarray(y), _reference_lif(x))
    event("outcome: correct")


# ------------------------------------------------------------------------------ file problems
def _corrupt(path, key, value):
    with h5py.File(path, "a") as f:
        if key in f:
            del f[key]
        if value is not None:
            f[key] = value


FILE_CASES = {
    "missing tau": ("node/nodes/n1/tau", None,
                    r"node 'n1' \(LIF\): field\(s\) \['tau'\] missing"),
    "unknown type": ("node/nodes/n1/type", "Foo",
                     r"node 'n1': field 'type': unknown NIR type 'Foo'"),
    "no type": ("node/nodes/n1/type", None, r"node 'n1': field 'type' is missing"),
    "garbage version": ("version", "garbage",
                        r"field 'version': expected a NIR version string.*'garbage'"),
    "shapes disagree": ("node/nodes/n1/r", np.ones(4),
                        r"node 'n1' \(LIF\): parameter shapes \{.*'r': \(4,\)"),
    "shape NIR refuses": ("node/nodes/n1/r", np.ones(1),
                          r"node 'n1' \(LIF\): NIR refuses it .*same shape.*'r': \(1,\)"),
    "edges garbage": ("node/edges", np.float64(3.0), r"the top graph: field 'edges'"),
    "bool threshold": ("node/nodes/n1/v_threshold", np.ones(3, bool),
                       r"node 'n1'.*field 'v_threshold'.*bool"),
    "float input shape": ("node/nodes/in/shape", np.array([3.5]),
                          r"node 'in', field \"input_type\['input'\]\": expected a shape"),
}


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_file_problems_name_file_node_and_field(name, tmp_path):
    key, value, pattern = FILE_CASES[name]
    path = str(tmp_path / "g.nir")
    nirjax.write(path, nirjax.from_nir(chain(linear_node(), lif(), out_shape=(3,)), dt=DT))
    _corrupt(path, key, value)
    with pytest.raises(CLEAR, match=pattern) as info:
        nirjax.load(path, dt=DT)
    assert path in str(info.value)


def linear_node():
    return nir.Linear(weight=np.eye(3))
