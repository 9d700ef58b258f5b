"""Hostile input at the command line and in training: every numeric flag of every command out
of range, wrong shapes and time steps, unwritable outputs, damaged checkpoints, non-finite
data and hyper-parameters, and (marked slow) kill -9 during training.

Each case asserts its exact class of outcome: a one-line error naming the flag / field, what
was expected and what was received, with exit code 2 (the CLI) or a `ValueError` /
`TypeError` (the Python API); or a correct result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import nir
import numpy as np
import pytest

import nirjax
import training
from nirjax import atomic_path
from nirjax._cli import build_parser, main
from nirjax.cli import remove_stale_temporaries

DT = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lif_graph(shape=(2,)):
    n = int(np.prod(shape))
    nodes = {
        "input": nir.Input(input_type=np.array(shape)),
        "flat": nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
        "affine": nir.Affine(weight=np.eye(n, dtype=np.float32), bias=np.zeros(n, np.float32)),
        "lif": nir.LIF(tau=np.full(n, 1e-3, np.float32), r=np.full(n, 10.0, np.float32),
                       v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, 0.5, np.float32),
                       v_reset=np.zeros(n, np.float32)),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [("input", "flat"), ("flat", "affine"), ("affine", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.fixture
def files(tmp_path):
    graph = tmp_path / "g.nir"
    nir.write(graph, _lif_graph())
    grid = tmp_path / "grid.nir"  # Input of per-step shape (2, 3)
    nir.write(grid, _lif_graph((2, 3)))
    xs = (np.random.default_rng(0).uniform(size=(3, 20, 2)) < 0.4).astype(np.float32)
    inp = tmp_path / "in.npy"
    np.save(inp, xs)
    return {"graph": str(graph), "grid": str(grid), "inp": str(inp), "xs": xs,
            "dir": tmp_path}


def _call(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def _one_line_error(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    for needle in needles:
        assert needle in err, (needle, err)


# ---------------------------------------------------------------- every numeric flag
# (command, flag, bad value, what the message says is expected). The positional arguments and
# required flags come from _BASE; argparse refuses the value before any file is read.
_BASE = {
    "run": ["run", "g.nir", "--input", "in.npy", "--output", "out.npy"],
    "compare": ["compare", "g.nir", "--input", "in.npy"],
    "info": ["info", "g.nir"],
    "check": ["check", "g.nir", "--target", "xylo"],
    "fit": ["fit", "g.nir", "rec.h5", "--out", "fitted.nir"],
    "calibrate": ["calibrate", "g.nir", "rec.h5", "--out", "fitted.nir"],
    "characterize": ["characterize", "g.nir", "--recording", "rec.csv"],
    "train": ["train"],
}

_BAD_FLAGS = [
    ("run", "--dt", v, "> 0") for v in ("-1", "0", "nan", "inf", "-inf", "abc", "1e400")
] + [
    ("run", "--batch-size", v, ">= 1") for v in ("0", "-3", "1.5", "x")
] + [
    ("compare", "--dt", v, "> 0") for v in ("0", "-1e-4", "nan")
] + [
    ("compare", "--window", v, "> 0") for v in ("-1", "nan", "0", "inf", "1e-3s")
] + [
    ("compare", f"--{name}", v, ">= 1")
    for name in ("max-events-per-step", "max-spikes-per-step", "max-spikes", "delay-capacity")
    for v in ("0", "-1", "2.5")
] + [
    ("compare", "--rtol", v, "> 0 and < 1") for v in ("0", "1", "nan", "-1e-6")
] + [
    ("compare", "--atol", v, "> 0") for v in ("0", "-1", "nan")
] + [
    ("info", "--dt", v, "> 0") for v in ("-1", "0", "nan")
] + [
    ("check", "--dt", v, "> 0") for v in ("-1", "0", "nan")
] + [
    ("fit", "--lr", v, "> 0") for v in ("nan", "0", "-1", "inf")
] + [
    ("fit", "--prior", v, "> 0") for v in ("-1", "0", "nan", "inf")
] + [
    ("fit", "--polish", v, ">= 0") for v in ("-1", "1.5", "x")
] + [
    ("fit", "--clip", v, "> 0") for v in ("0", "-1", "nan")
] + [
    ("fit", "--bounds", v, "> 0") for v in ("0", "-0.5", "nan", "inf")
] + [
    ("fit", "--steps", v, ">= 0") for v in ("-1", "2.5")
] + [
    ("fit", "--multi-start", v, ">= 1") for v in ("0", "-2")
] + [
    ("fit", "--tolerance", v, "> 0 and < 1") for v in ("0", "1", "nan", "-0.1")
] + [
    ("fit", "--seed", v, "an integer") for v in ("x", "1.5")
] + [
    ("characterize", "--dt", v, "> 0") for v in ("0", "-1", "nan")
] + [
    ("characterize", "--tolerance", v, "> 0 and < 1") for v in ("0", "1", "inf")
] + [
    ("train", "--epochs", v, "positive integer") for v in ("0", "-1", "1.5")
] + [
    ("train", "--batch-size", v, "positive integer") for v in ("0", "-64")
] + [
    ("train", "--steps", v, "positive integer") for v in ("0", "x")
] + [
    ("train", "--lr", v, "> 0") for v in ("nan", "0", "-1", "inf")
] + [
    ("train", "--dt", v, "> 0") for v in ("0", "nan", "-1e-4")
] + [
    ("train", "--hidden", v, "layer sizes") for v in ("0", "a", "64,-1")
] + [
    ("train", "--val-fraction", v, ">= 0 and < 1") for v in ("1", "-0.1", "nan", "1.5")
] + [
    ("train", "--patience", v, "positive integer") for v in ("0", "-1")
] + [
    ("train", "--limit", v, "positive integer") for v in ("0", "-8")
] + [
    ("train", flag, v, "positive integer") for flag in ("--downsample", "--devices")
    for v in ("0", "-2", "1.5")
] + [
    ("train", "--seed", v, ">= 0") for v in ("-1", "1.5")
] + [
    ("train", flag, "bogus", "invalid choice")
    for flag in ("--encoder", "--neuron", "--readout", "--loss", "--surrogate")
] + [
    ("run", flag, "bogus", "invalid choice")
    for flag in ("--reset", "--discretization", "--spikes-per-step", "--threshold-comparison",
                 "--spike-order", "--input-mode", "--cuba-order")
] + [
    ("compare", "--input-kind", "bogus", "invalid choice"),
]


# `nirjax fit` is an alias of `nirjax calibrate`: the same flags, checked the same way.
_BAD_FLAGS += [("calibrate", f, v, e) for c, f, v, e in _BAD_FLAGS if c == "fit"]


@pytest.mark.parametrize("command, flag, value, expected", _BAD_FLAGS,
                         ids=[f"{c}{f}={v}" for c, f, v, _ in _BAD_FLAGS])
def test_bad_flag_is_one_line(command, flag, value, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _call(_BASE[command] + [f"{flag}={value}"], capsys)
    _one_line_error(code, err, flag, expected, repr(value))
    assert err.startswith(f"nirjax {command}: error: argument {flag}")
    assert os.listdir(tmp_path) == []  # nothing written, nothing started


def test_every_numeric_flag_is_range_checked():
    """Every flag of every command that takes a number has a checking type (not plain
    int/float), and the matrix above exercises it."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    tested = {(c, f) for c, f, _, _ in _BAD_FLAGS}
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.type in (int, float):
                raise AssertionError(f"{command} {action.option_strings}: unchecked {action.type}")
            if action.type is not None and action.option_strings and action.dest != "help":
                flag = action.option_strings[-1]
                if action.dest in ("hidden", "seed") or action.type.__name__ in (
                        "number", "integer", "_positive_int", "_positive_float"):
                    assert (command, flag) in tested, f"{command} {flag} is not in the matrix"


# ---------------------------------------------------------------- run
def test_run_refuses_transposed_npy(files, capsys):
    """A (3, 2) per-step array for an Input of (2, 3) is refused, not reshaped."""
    x = np.zeros((2, 5, 3, 2), np.float32)
    path = files["dir"] / "t.npy"
    np.save(path, x)
    out = files["dir"] / "o.npy"
    code, err = _call(["run", files["grid"], "--input", path, "--dt", DT, "--output", out],
                      capsys)
    _one_line_error(code, err, "per-step shape (2, 3)", "(3, 2)", "nothing is reshaped")
    assert not out.exists()


def test_run_exact_shape_runs(files, capsys):
    x = (np.random.default_rng(1).uniform(size=(2, 6, 2, 3)) < 0.5).astype(np.float32)
    path = files["dir"] / "ok.npy"
    np.save(path, x)
    out = files["dir"] / "o.npy"
    code, err = _call(["run", files["grid"], "--input", path, "--dt", DT, "--output", out],
                      capsys)
    assert code == 0, err
    # one neuron per input element, weight 1: forward Euler by hand
    v = np.zeros((2, 6))
    want = np.zeros((2, 6, 6))
    flat = x.reshape(2, 6, 6)
    for t in range(6):
        v = v + 0.1 * (10.0 * flat[:, t] - v)
        want[:, t] = v > 0.5
        v = np.where(v > 0.5, 0.0, v)
    np.testing.assert_array_equal(np.load(out), want)


def _data_file(path, name, x, dt):
    nir.write_data(path, nir.NIRGraphData(nodes={name: nir.NIRNodeData(
        observables={"output": nir.TimeGriddedData(data=x, dt=dt)})}))


def test_run_refuses_nir_data_at_another_dt(files, capsys):
    data = files["dir"] / "in.h5"
    _data_file(data, "input", files["xs"], 1e-3)
    out = files["dir"] / "o.npy"
    code, err = _call(["run", files["graph"], "--input", data, "--dt", DT, "--output", out],
                      capsys)
    _one_line_error(code, err, "dt = 0.001", "dt = 0.0001", "--dt 0.001")
    assert not out.exists()
    # at the data's dt it runs
    code, err = _call(["run", files["graph"], "--input", data, "--dt", "1e-3", "--output", out],
                      capsys)
    assert code == 0, err and out.exists()


def test_run_nir_data_flattened_neurons(files, capsys):
    """A NIR data file holds (samples, steps, neurons): the flat neurons are read into the
    Input's (2, 3) in C order, and the result is the .npy run's."""
    x = (np.random.default_rng(3).uniform(size=(2, 4, 2, 3)) < 0.5).astype(np.float32)
    flat, grid = files["dir"] / "flat.h5", files["dir"] / "grid.npy"
    _data_file(flat, "input", x.reshape(2, 4, 6), DT)
    np.save(grid, x)
    a, b = files["dir"] / "a.npy", files["dir"] / "b.npy"
    for path, out in ((flat, a), (grid, b)):
        code, err = _call(["run", files["grid"], "--input", path, "--dt", DT, "--output", out],
                          capsys)
        assert code == 0, err
    np.testing.assert_array_equal(np.load(a), np.load(b))


def test_run_refuses_nonfinite_input(files, capsys):
    x = files["xs"].copy()
    x[1, 7, 0] = np.nan
    path = files["dir"] / "nan.npy"
    np.save(path, x)
    code, err = _call(["run", files["graph"], "--input", path, "--dt", DT, "--output",
                       files["dir"] / "o.npy"], capsys)
    _one_line_error(code, err, "non-finite", "sample 1, step 7")


@pytest.mark.parametrize("target, message", [
    ("missing/out.npy", "does not exist"),
    ("in.npy/out.npy", "is a file, not a folder"),
    (".", "is a folder"),
    ("", "expected a path"),
])
def test_run_unwritable_output_before_work(files, capsys, monkeypatch, target, message):
    monkeypatch.chdir(files["dir"])
    calls = []
    monkeypatch.setattr(nirjax.Graph, "__call__", lambda *a, **k: calls.append(1))
    code, err = _call(["run", files["graph"], "--input", files["inp"], "--dt", DT, "--output",
                       target], capsys)
    _one_line_error(code, err, "--output", message)
    assert target in err and ".tmp-" not in err
    assert calls == []  # refused before anything ran


def test_run_garbage_npy(files, capsys):
    path = files["dir"] / "junk.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    code, err = _call(["run", files["graph"], "--input", path, "--dt", DT, "--output",
                       files["dir"] / "o.npy"], capsys)
    _one_line_error(code, err, "--input", "junk.npy")


def test_run_bad_surrogate_is_one_line(files, capsys):
    code, err = _call(["run", files["graph"], "--input", files["inp"], "--dt", DT, "--output",
                       files["dir"] / "o.npy", "--surrogate", "bogus"], capsys)
    _one_line_error(code, err, "bogus")


# ---------------------------------------------------------------- compare
def test_compare_shape_and_outputs(files, capsys):
    path = files["dir"] / "x.npy"
    np.save(path, np.zeros((10, 3), np.float32))
    code, err = _call(["compare", files["graph"], "--input", path, "--dt", DT], capsys)
    _one_line_error(code, err, "(steps, 2)", "(10, 3)")
    code, err = _call(["compare", files["graph"], "--input", path, "--dt", DT, "--json",
                       files["dir"] / "no" / "t.json"], capsys)
    _one_line_error(code, err, "--json", "does not exist")


@pytest.mark.slow  # kept out of the default suite for time (CI < 10 min)
def test_compare_capacity_names_an_existing_flag(files, capsys):
    """The diffrax reference's capacity errors name a flag compare has (and raising it
    works), not a Python keyword or an Equinox debugging variable."""
    path = files["dir"] / "strong.npy"
    np.save(path, np.full((10, 2), 2.0, np.float32))  # about 4 spikes per step
    code, err = _call(["compare", files["graph"], "--input", path, "--dt", DT], capsys)
    _one_line_error(code, err, "--max-spikes-per-step")
    assert "EQX_ON_ERROR" not in err
    flags = {f for a in build_parser()._subparsers._group_actions[0].choices["compare"]._actions
             for f in a.option_strings}
    assert "--max-spikes-per-step" in flags
    code, err = _call(["compare", files["graph"], "--input", path, "--dt", DT,
                       "--max-spikes-per-step",
                       "64", "--max-events-per-step", "256"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------- the top-level handler
def test_unexpected_error_is_internal_error(files, capsys, monkeypatch):
    from nirjax._commands import info

    def boom(args):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(info, "run", boom)
    code, err = _call(["info", files["graph"]], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "internal error" in err and "RuntimeError: something nobody expected" in err
    assert "please report" in err


def test_runtime_check_is_one_line(files, capsys, monkeypatch):
    import equinox as eqx
    import jax.numpy as jnp

    from nirjax._commands import info

    def fails(args):
        x = eqx.error_if(jnp.zeros(()), jnp.array(True), "node 'lif': v went non-finite at "
                         "step 3")
        return int(x)

    monkeypatch.setattr(info, "run", fails)
    code, err = _call(["info", files["graph"]], capsys)
    _one_line_error(code, err, "node 'lif': v went non-finite at step 3")
    assert "EQX_ON_ERROR" not in err


# ---------------------------------------------------------------- fit / characterize paths
def test_fit_output_checked_before_reading(files, capsys):
    code, err = _call(["calibrate", files["graph"], files["inp"], "--out",
                       files["dir"] / "no" / "fitted.nir"], capsys)
    _one_line_error(code, err, "--out", "does not exist")
    code, err = _call(["calibrate", files["graph"], files["dir"] / "missing.h5", "--out",
                       files["dir"] / "fitted.nir"], capsys)
    _one_line_error(code, err, "RECORDING", "no such file")


def test_characterize_output_checked(files, capsys):
    csv = files["dir"] / "rec.csv"
    csv.write_text("0,0,0\n")
    code, err = _call(["characterize", files["graph"], "--recording", csv, "--json",
                       files["dir"] / "no" / "r.json"], capsys)
    _one_line_error(code, err, "--json", "does not exist")


# ---------------------------------------------------------------- train
def test_train_val_fraction_leaves_nothing(tmp_path, capsys):
    code, err = _call(["train", "--val-fraction", "0.99", "--limit", "8", "--epochs", "1",
                       "--out", tmp_path / "r", "--no-progress"], capsys)
    _one_line_error(code, err, "--val-fraction 0.99", "no training samples")


def test_train_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    code, err = _call(["train", "--out", f / "sub", "--no-progress"], capsys)
    _one_line_error(code, err, "--out", "is a file")


def _ragged(rows, dtype):
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = np.asarray(r, dtype)
    return out


def _shd(path, times, units, labels):
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=_ragged(times, np.float64),
                         dtype=h5py.vlen_dtype(np.float64))
        f.create_dataset("spikes/units", data=_ragged(units, np.int64),
                         dtype=h5py.vlen_dtype(np.int64))
        f.create_dataset("labels", data=np.asarray(labels))


@pytest.mark.parametrize("bad", [np.nan, -0.01, np.inf])
def test_shd_reader_refuses_bad_spike_times(tmp_path, bad):
    path = tmp_path / "shd.h5"
    _shd(path, [[0.1, 0.2], [0.3, bad, 0.5]], [[0, 1], [2, 3, 4]], [0, 1])
    with pytest.raises(ValueError, match=r"sample 1 has spike time .*spike 1.*finite and >= 0"):
        training.read_spiking_hdf5(path, n_units=8)


def test_shd_reader_refuses_negative_label(tmp_path):
    path = tmp_path / "shd.h5"
    _shd(path, [[0.1], [0.2]], [[0], [1]], [0, -1])
    with pytest.raises(ValueError, match=r"/labels holds -1"):
        training.read_spiking_hdf5(path, n_units=8)


def _small_shd(path, n=24, n_units=700, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    times = [np.sort(rng.uniform(0, 1, 20)) for _ in range(n)]
    units = [rng.integers(0, n_units // 2, 20) + (n_units // 2) * y for y in labels]
    _shd(path, times, units, labels)


def test_train_hdf5_records_the_binning_dt(tmp_path, capsys):
    """--steps 10 bins the file's 1 s at 0.1 s; model.nir records dt = 0.1 (not 1e-4), and a
    contradicting --dt is refused with the flag that fixes it."""
    data = tmp_path / "shd.h5"
    _small_shd(data)
    out = tmp_path / "r"
    argv = ["train", "--dataset", data, "--steps", "10", "--epochs", "1", "--hidden", "4",
            "--batch-size", "8", "--out", out, "--no-progress"]
    code, err = _call(argv + ["--dt", "1e-4"], capsys)
    _one_line_error(code, err, "dt = 0.1", "--steps 10000", "--dt 0.1")
    code, err = _call(argv, capsys)
    assert code == 0, err
    recorded = nirjax.recorded_options(nir.read(out / "model.nir"))
    assert recorded["dt"] == pytest.approx(0.1)


def _train_argv(out, epochs=2, limit=64):
    return ["train", "--epochs", str(epochs), "--limit", str(limit), "--batch-size", "16",
            "--hidden", "16", "--steps", "8", "--out", str(out), "--no-progress"]


def test_train_resume_finished_run_says_so(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_train_argv(out, 1)) == 0
    capsys.readouterr()
    before = {p: os.stat(out / p).st_mtime_ns for p in ("model.nir", "metrics.json",
                                                          "checkpoint.eqx")}
    assert main(_train_argv(out, 1)) == 0
    text = capsys.readouterr().out
    assert "holds a finished run" in text and "--no-resume" in text
    assert before == {p: os.stat(out / p).st_mtime_ns for p in before}


@pytest.mark.parametrize("damage, message", [
    (b"", "the file is empty"),
    (b"garbage bytes, not a checkpoint", "does not start with the nirjax checkpoint header"),
    ("truncate", "cut off"),
])
def test_train_damaged_checkpoint(tmp_path, capsys, damage, message):
    out = tmp_path / "r"
    assert main(_train_argv(out, 1)) == 0
    ckpt = out / "checkpoint.eqx"
    if damage == "truncate":
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) - 100])
    else:
        ckpt.write_bytes(damage)
    capsys.readouterr()
    code, err = _call(_train_argv(out, 1), capsys)
    _one_line_error(code, err, "checkpoint.eqx", message, "--no-resume")


# ---------------------------------------------------------------- training values
_BAD_CONFIGS = [
    ({"grad_clip": -1}, ValueError, "grad_clip must be a finite number > 0 or None"),
    ({"grad_clip": 0.0}, ValueError, "grad_clip"),
    ({"grad_clip": float("nan")}, ValueError, "grad_clip"),
    ({"weight_decay": -1}, ValueError, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": float("inf")}, ValueError, "weight_decay"),
    ({"warmup_epochs": -5}, ValueError, "warmup_epochs must be a finite number >= 0"),
    ({"warmup_epochs": 50, "epochs": 5}, ValueError, "longer than the run"),
    ({"warmup_epochs": 1, "schedule": "constant"}, ValueError, "cosine schedule only"),
    ({"patience": 0}, ValueError, "patience must be an int >= 1 or None"),
    ({"patience": 2.5}, TypeError, "patience"),
    ({"lr": float("inf")}, ValueError, "lr must be a finite number > 0"),
    ({"lr": float("nan")}, ValueError, "lr"),
    ({"lr": 0}, ValueError, "lr"),
    ({"lr": "0.1"}, TypeError, "lr"),
    ({"reg_weight": float("nan")}, ValueError, "reg_weight must be a finite number >= 0"),
    ({"reg_weight": -1.0}, ValueError, "reg_weight"),
    ({"reg_weight": 0.1}, ValueError, "reg_nodes is empty"),
    ({"target_rate": 2.0}, ValueError, "target_rate"),
    ({"van_rossum_tau": 0.0}, ValueError, "van_rossum_tau"),
    ({"epochs": True}, TypeError, "epochs"),
    ({"batch_size": 1.5}, TypeError, "batch_size"),
    ({"seed": -1}, ValueError, "seed"),
    ({"reg_mode": "sideways"}, ValueError, "reg_mode"),
]


@pytest.mark.parametrize("kwargs, error, message", _BAD_CONFIGS,
                         ids=[str(k) for k, _, _ in _BAD_CONFIGS])
def test_train_config_refuses(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        training.TrainConfig(**kwargs)


_X = np.zeros((4, 5, 3), np.float32)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"inputs": np.where(np.arange(60).reshape(4, 5, 3) == 37, np.nan, 0).astype(np.float32),
      "labels": np.zeros(4, np.int32), "n_classes": 2}, ValueError,
     r"non-finite values \(first at sample 2, step 2, neuron \(1,\)\)"),
    ({"inputs": _X, "labels": np.array([0, 1, 2, 1]), "n_classes": 2}, ValueError,
     r"label 2 of sample 2 is outside \[0, 2\)"),
    ({"inputs": _X, "labels": np.array([0, -1, 1, 1]), "n_classes": 2}, ValueError,
     r"label -1 of sample 1 is outside \[0, 2\)"),
    ({"inputs": _X, "labels": np.array([0.0, 1.0, 1.0, 0.0]), "n_classes": 2}, TypeError,
     "labels must be integers"),
    ({"inputs": _X, "labels": np.array([0, 1, 1, 0])}, ValueError, "n_classes = 0"),
    ({"inputs": _X, "targets": np.full((4, 5, 2), np.inf, np.float32)}, ValueError,
     "targets hold non-finite"),
    ({"inputs": _X.astype(str), "labels": np.zeros(4, np.int32), "n_classes": 1}, TypeError,
     "numeric array"),
    ({"inputs": _X, "labels": np.zeros(4, np.int32), "n_classes": 1, "dt": 0.0}, ValueError,
     "dt must be"),
])
def test_dataset_refuses(kwargs, error, message):
    with pytest.raises(error, match=message):
        training.SpikeDataset(**kwargs)


def test_diverging_training_stops_and_writes_nothing(tmp_path):
    """An absurd learning rate makes the weights overflow: fit stops with the epoch, and no
    checkpoint, metrics or model with non-finite weights is written."""
    train, _ = training.digits(n_steps=8)
    train = train.subset(np.arange(32))
    graph = nirjax.from_nir(training.feedforward_snn(64, 10, hidden=(16,), dt=DT,
                                                     tau_mem=1e-3, tau_syn=5e-4), dt=DT)
    config = training.TrainConfig(lr=1e38, epochs=3, schedule="constant", batch_size=16)
    with pytest.raises(ValueError, match=r"training went non-finite in epoch 1.*grad_clip"):
        training.fit(graph, train, config=config, out_dir=tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- temporaries
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_removed_live_ones_kept(tmp_path):
    target = tmp_path / "model.nir"
    dead, live = _dead_pid(), os.getppid()
    stale = tmp_path / f".tmp-model.nir.pid{dead}-abcd1234.nir"
    running = tmp_path / f".tmp-model.nir.pid{live}-efgh5678.nir"
    other = tmp_path / f".tmp-model.nir.json.pid{dead}-ijkl9012"  # another target's
    unrelated = tmp_path / ".tmp-user-file"
    for p in (stale, running, other, unrelated):
        p.write_bytes(b"x" * 1000)
    with atomic_path(target, ".nir") as tmp:
        with open(tmp, "w") as f:
            f.write("done")
    assert target.read_text() == "done"
    assert not stale.exists() and running.exists() and other.exists() and unrelated.exists()
    assert remove_stale_temporaries(tmp_path) == [str(other)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model.nir", running.name, unrelated.name])


def test_atomic_path_error_names_the_target(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"file/out.nir: cannot write it") as e:
        with atomic_path(blocker / "out.nir"):
            pass
    assert ".tmp-" not in str(e.value)


def test_run_removes_temporaries_of_a_killed_run(files, capsys):
    out = files["dir"] / "o.npy"
    stale = files["dir"] / f".tmp-o.npy.pid{_dead_pid()}-zzzz0000.npy"
    stale.write_bytes(b"\0" * 10_000)
    code, err = _call(["run", files["graph"], "--input", files["inp"], "--dt", DT,
                       "--output", out], capsys)
    assert code == 0, err
    assert not stale.exists() and out.exists()


# ---------------------------------------------------------------- kill -9 (slow)
def _spawn(argv, log):
    """`python -m nirjax ARGV` in a child process, its stderr to the file `log`."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "nirjax", *argv], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _finish(p, log):
    assert p.wait(timeout=600) == 0, open(log).read()


def _params(path):
    graph = nir.read(path)
    return {f"{k}.{f}": np.asarray(v) for k, node in graph.nodes.items()
            for f, v in vars(node).items() if isinstance(v, np.ndarray)}


@pytest.mark.slow
def test_kill9_resume_is_bit_identical(tmp_path):
    """Train, kill -9 right after the first checkpoint, resume: the model is bit-identical to
    an uninterrupted run's, nothing half-written is left, the temporaries are removed."""
    log = tmp_path / "log"
    ref = tmp_path / "ref"
    _finish(_spawn(_train_argv(ref, 8, 256), log), log)
    killed = tmp_path / "killed"
    p = _spawn(_train_argv(killed, 8, 256), log)
    ckpt = killed / "checkpoint.eqx"
    deadline = time.time() + 600
    while not ckpt.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "model.nir").exists()  # killed in epoch 2 of 8: no model yet
    planted = killed / f".tmp-checkpoint.eqx.pid{p.pid}-killed00"
    planted.write_bytes(b"\0" * 1_000_000)  # as if killed mid-write of a 1 MB checkpoint
    _finish(_spawn(_train_argv(killed, 8, 256), log), log)
    assert [n for n in os.listdir(killed) if n.startswith(".tmp-")] == []
    a, b = _params(ref / "model.nir"), _params(killed / "model.nir")
    assert a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.slow
def test_kill9_during_run_leaves_no_partial_output(files, tmp_path):
    """`nirjax run` killed while it works leaves no output, and the next run writes the
    complete one and removes the killed run's temporaries."""
    xs = (np.random.default_rng(2).uniform(size=(400, 200, 2)) < 0.3).astype(np.float32)
    inp = tmp_path / "big.npy"
    np.save(inp, xs)
    out = tmp_path / "big_out.h5"
    log = tmp_path / "log"
    argv = ["run", files["graph"], "--input", str(inp), "--dt", str(DT), "--output", str(out),
            "--batch-size", "8"]
    p = _spawn(argv, log)
    time.sleep(4.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if out.exists():  # finished before the kill: then it is complete
        assert nir.read_data(out).nodes["output"].observables["output"].data.shape[0] == 400
    stale = tmp_path / f".tmp-big_out.h5.pid{p.pid}-killed00.h5"
    stale.write_bytes(b"\0" * 100_000)
    _finish(_spawn(argv, log), log)
    data = nir.read_data(out).nodes["output"].observables["output"].data
    assert data.shape == (400, 200, 2)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")] == []


@pytest.mark.parametrize("argv, message", [
    (["--train", "bogus"], "nothing to train"),
    (["--graph", "{garbage}"], "cannot read it as a NIR graph"),
    (["--dataset", "{garbage}"], "cannot read it as HDF5"),
    (["--dataset", "nosuch"], "not a built-in dataset"),
    (["--graph", "{missing}"], "no such file"),
])
def test_train_bad_files_and_names(tmp_path, capsys, argv, message):
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("garbage")
    names = {"garbage": garbage, "missing": tmp_path / "missing.nir"}
    code, err = _call(["train", "--epochs", "1", "--limit", "16", "--no-progress", "--out",
                       tmp_path / "r"] + [a.format(**names) for a in argv], capsys)
    _one_line_error(code, err, message)


def test_compare_garbage_recording(files, capsys):
    junk = files["dir"] / "junk.h5"
    junk.write_text("junk")
    x = files["dir"] / "x.npy"
    np.save(x, np.zeros((10, 2), np.float32))
    code, err = _call(["compare", files["graph"], "--input", x, "--dt", DT, "--recording", junk],
                      capsys)
    _one_line_error(code, err, "--recording", "junk.h5", "cannot read it as a NIR data file")
