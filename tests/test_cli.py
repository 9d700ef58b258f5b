"""The `nirjax info` and `nirjax run` commands (in-process through `nirjax._cli.main`, plus one
subprocess smoke test of the installed console script)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nir
import numpy as np
import pytest
from helpers import conformance

import nirjax
from nirjax._cli import main

DT = 1e-4


def _lif_graph():
    """Input(2) -> Affine -> LIF -> Output, with parameters whose response is easy to compute."""
    return nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[1.0, 0.0], [0.0, 2.0]], np.float32),
                   bias=np.zeros(2, np.float32)),
        nir.LIF(tau=np.full(2, 1e-3, np.float32), r=np.full(2, 10.0, np.float32),
                v_leak=np.zeros(2, np.float32), v_threshold=np.full(2, 0.5, np.float32),
                v_reset=np.zeros(2, np.float32)),
    )


def _reference(xs, reset="value"):
    """Forward Euler by hand: v <- v + dt/tau (r W x - v); spike where v > 0.5; reset."""
    w = np.array([1.0, 2.0])
    a = DT / 1e-3
    v = np.zeros(xs.shape[:1] + (2,))
    out = np.zeros(xs.shape)
    for t in range(xs.shape[1]):
        v = v + a * (10.0 * w * xs[:, t] - v)
        z = v > 0.5
        out[:, t] = z
        v = np.where(z, 0.0 if reset == "value" else v - 0.5, v)
    return out


@pytest.fixture
def files(tmp_path):
    graph = tmp_path / "g.nir"
    nir.write(graph, _lif_graph())
    xs = (np.random.default_rng(0).uniform(size=(5, 30, 2)) < 0.4).astype(np.float32)
    inp = tmp_path / "in.npy"
    np.save(inp, xs)
    return graph, inp, xs


def test_run_npy(files, tmp_path, capsys):
    graph, inp, xs = files
    out = tmp_path / "out.npy"
    assert main(["run", str(graph), "--input", str(inp), "--dt", str(DT), "--output", str(out),
                 "--batch-size", "2"]) == 0
    ys = np.load(out)
    assert ys.shape == xs.shape
    np.testing.assert_array_equal(ys, _reference(xs))
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir", "in.npy", "out.npy"]


def test_run_options_change_dynamics(files, tmp_path):
    graph, inp, xs = files
    out = tmp_path / "out.npy"
    assert main(["run", str(graph), "--input", str(inp), "--dt", str(DT), "--output", str(out),
                 "--reset", "subtract"]) == 0
    np.testing.assert_array_equal(np.load(out), _reference(xs, reset="subtract"))


def test_run_nir_data_files_and_recorded_dt(files, tmp_path):
    graph, _, xs = files
    # A graph written by nirjax records dt: no --dt needed.
    recorded = tmp_path / "rec.nir"
    nirjax.write(recorded, nirjax.from_nir(str(graph), dt=DT))
    data = tmp_path / "in.h5"
    nir.write_data(data, nir.NIRGraphData(nodes={"input": nir.NIRNodeData(
        observables={"input": nir.TimeGriddedData(data=xs, dt=DT)})}))
    out = tmp_path / "out.h5"
    assert main(["run", str(recorded), "--input", str(data), "--output", str(out)]) == 0
    result = nir.read_data(out)
    grid = result.nodes["output"].observables["output"]
    assert grid.dt == DT
    np.testing.assert_array_equal(grid.data, _reference(xs))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "{graph}", "--input", "{inp}", "--output", "{out}"], "records no dt"),
        (["run", "{missing}", "--input", "{inp}", "--dt", "1e-4", "--output", "{out}"],
         "no such NIR file"),
        (["run", "{graph}", "--input", "{missing}", "--dt", "1e-4", "--output", "{out}"],
         "no such file"),
        (["run", "{graph}", "--input", "{graph}", "--dt", "1e-4", "--output", "{out}"],
         "nor a NIR data file"),
        (["run", "{graph}", "--input", "{bad}", "--dt", "1e-4", "--output", "{out}"],
         "expects per-step shape"),
        (["run", "{graph}", "--input", "{inp}", "--dt", "-1", "--output", "{out}"], "dt"),
        (["run", "{graph}", "--input", "{inp}", "--dt", "1e-4", "--output", "{out}",
          "--batch-size", "0"], "batch-size"),
        (["info", "{inp}"], "cannot read it as a NIR graph"),
    ],
)
def test_errors_are_one_line(argv, message, files, tmp_path, capsys):
    graph, inp, _ = files
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3, 5), np.float32))
    names = dict(graph=graph, inp=inp, out=tmp_path / "out.npy", missing=tmp_path / "nope.nir",
                 bad=bad)
    code = main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()


def test_bad_flag_exits_nonzero(files, capsys):
    graph, inp, _ = files
    code = main(["run", str(graph), "--input", str(inp), "--output", "x.npy", "--reset", "bogus"])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and len(err.strip().splitlines()) == 1


def test_info_table(tmp_path, capsys):
    g = nirjax.from_nir(_lif_graph(), dt=DT, reset="subtract",
                        node_options={"lif": {"discretization": "exact"}})
    path = tmp_path / "g.nir"
    nirjax.write(path, g)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    row = next(line for line in lines if line.startswith("lif "))
    assert row.split()[:5] == ["lif", "LIF", "(2)", "(2)", "10"]  # 5 fields x 2 neurons
    affine = next(line for line in lines if line.startswith("affine "))
    assert affine.split()[:5] == ["affine", "Affine", "(2)", "(2)", "6"]
    assert "back edges (carry the previous step): none" in out
    assert "reset=subtract" in out and "dt=0.0001" in out
    assert "node lif: discretization=exact" in out


def test_info_shows_back_edges():
    path = conformance("braille", "braille_noDelay_bias_zero.nir")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["info", path]) == 0
    out = buf.getvalue()
    assert "lif1.w_rec -> lif1.lif" in out
    assert "recorded options: none" in out
    row = next(line for line in out.splitlines() if line.startswith("lif1.lif "))
    assert row.split()[:4] == ["lif1.lif", "CubaLIF", "(38)", "(38)"]


def test_console_script_smoke(files, tmp_path):
    graph, inp, xs = files
    exe = shutil.which("nirjax")
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from nirjax._cli import main; "
                                                   "sys.exit(main())"]
    out = tmp_path / "out.npy"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run(cmd + ["run", str(graph), "--input", str(inp), "--dt", str(DT),
                                 "--output", str(out)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(out), _reference(xs))
    bad = subprocess.run(cmd + ["info", str(tmp_path / "nope.nir")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "no such NIR file" in bad.stderr


def test_info_nested_subgraph(tmp_path, capsys):
    inner = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([2])}),
               "lif": _lif_graph().nodes["lif"],
               "w_rec": nir.Linear(weight=np.eye(2, dtype=np.float32)),
               "out": nir.Output(output_type={"output": np.array([2])})},
        edges=[("in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "out")],
        type_check=False)
    outer = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}), "rnn": inner,
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "rnn"), ("rnn", "output")], type_check=False)
    path = tmp_path / "nested.nir"
    nirjax.write(path, nirjax.from_nir(outer, dt=DT))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rnn/w_rec -> rnn/lif" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    assert rows["rnn"][1:3] == ["NIRGraph", "(2)"]
    assert rows["rnn/lif"][:2] == ["rnn/lif", "LIF"] and rows["rnn/lif"][4] == "10"
    assert rows["rnn/w_rec"][4] == "4"
