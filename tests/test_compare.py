"""The fidelity report (`nirjax.compare`) and the `nirjax compare` command."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import CONFORMANCE, paper_lif_graph

import nirjax
from nirjax import compare, match_spikes
from nirjax._cli import main

DT = 1e-4




@pytest.fixture(scope="module")
def paper():
    """(graph, input (1000, 1), exact recording (1000, 3) or None)."""
    path = os.path.join(CONFORMANCE, "lif", "lif_exact.csv")
    if os.path.exists(path):
        data = np.loadtxt(path, delimiter=",")
        xs = data[:, :1]
    else:  # the same experiment with a fixed pseudo-random input of 34 spikes
        data = None
        xs = np.zeros((1000, 1))
        xs[np.random.default_rng(1).choice(np.arange(50, 900), 34, replace=False), 0] = 1.0
    graph = nirjax.from_nir(paper_lif_graph(), dt=DT)
    return graph, xs.astype(np.float32), data


def test_match_spikes_is_order_preserving_and_windowed():
    ref = np.array([1.0, 2.0, 3.0])
    assert match_spikes(ref, np.array([1.1, 2.05, 3.3]), 0.2) == [(0, 0), (1, 1)]
    # one extra spike in between: the closest partners win
    assert match_spikes(ref, np.array([1.0, 1.5, 2.0, 3.0]), 0.6) == [(0, 0), (1, 2), (2, 3)]
    assert match_spikes(ref, np.array([]), 1.0) == []
    # never crossing: 2.0 -> 1.9 and 3.0 -> 2.9 rather than 2.0 -> 2.9
    assert match_spikes(np.array([2.0, 3.0]), np.array([1.9, 2.9]), 1.0) == [(0, 0), (1, 1)]


def test_spike_trains_from_grid_and_from_times():
    """The public converters that compare (and benchmarks/continuous.py) match spikes with."""
    grid = np.zeros((5, 2, 2))
    grid[1, 0, 1] = 1.0
    grid[3, 0, 1] = 2.0  # two spikes in one step: two equal times
    grid[4, 1, 0] = 1.0
    trains = nirjax.trains_from_grid(grid, dt=0.5, shift=0.25)
    expected = [[], [0.75, 1.75, 1.75], [2.25], []]  # flattened (C) neuron order
    assert [list(t) for t in trains] == expected
    times = np.array([[[0.3, np.inf], [0.2, 0.1]]])  # (1, 2, K=2), inf-padded, unsorted
    assert [list(t) for t in nirjax.trains_from_times(times)] == [[0.3], [0.1, 0.2]]


def _recording(path, spikes_grid, v_grid):
    data = nir.NIRGraphData(nodes={"1": nir.NIRNodeData(observables={
        "spikes": nir.TimeGriddedData(np.asarray(spikes_grid, bool)[None], DT),
        "v": nir.TimeGriddedData(np.asarray(v_grid, float)[None], DT),
    })})
    nir.write_data(str(path), data)
    return path


def test_compare_paper_lif(paper, tmp_path):
    graph, xs, data = paper
    euler = nirjax.from_nir(paper_lif_graph(), dt=DT).run(jnp.asarray(xs), record=("1",)).record["1"]
    rec = _recording(tmp_path / "euler.nir-data", np.asarray(euler["output"]),
                     np.asarray(euler["v"]))
    report = compare(graph, xs, dt=DT, recording=rec)
    ref = report.reference.spike_times["1"][0]
    ref = ref[np.isfinite(ref)]
    assert len(ref) > 0
    for method in ("euler", "exact"):
        row = report.row(method)
        assert row.ref_spikes == len(ref)
        assert row.missed == 0 and row.extra == 0
        # spike in step k is timed k dt: within one step of the crossing
        assert 0 <= row.mean_dt <= row.max_dt < DT
        assert row.rms_v > 0
    # A recording made of the Euler run scores exactly like the Euler run.
    e, r = report.row("euler"), report.row("recording")
    assert (r.spikes, r.missed, r.extra) == (e.spikes, e.missed, e.extra)
    assert r.mean_dt == pytest.approx(e.mean_dt) and r.rms_v == pytest.approx(e.rms_v, rel=1e-6)
    # the table names every method
    table = report.table()
    assert all(m in table for m in ("euler", "exact", "recording"))
    png = tmp_path / "report.png"
    report.plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if data is not None:
        # The exact (analytic) recording of the NIR paper agrees with the reference.
        rec = _recording(tmp_path / "exact.nir-data", data[:, 2:3], data[:, 1:2])
        row = compare(graph, xs, recording=rec, methods=()).row("recording")
        assert row.missed == 0 and row.extra == 0 and row.rms_v < 1e-6
        np.testing.assert_allclose(row.mean_dt, np.mean(ref - np.floor(ref / DT) * DT),
                                   rtol=1e-3)


def test_compare_command(paper, tmp_path, capsys):
    graph, xs, data = paper
    nir_path = os.path.join(CONFORMANCE, "lif", "lif_norse.nir")
    if not os.path.exists(nir_path):
        nir_path = str(tmp_path / "lif.nir")
        nir.write(nir_path, paper_lif_graph())
    inp = tmp_path / "input.csv"
    np.savetxt(inp, np.concatenate([xs, np.zeros_like(xs)], axis=1), delimiter=",")
    png, js = tmp_path / "out.png", tmp_path / "out.json"
    rc = main(["compare", nir_path, "--input", str(inp), "--columns", "0", "--dt", str(DT),
               "--plot", str(png), "--json", str(js)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "euler" in out and "exact" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = json.loads(js.read_text())["rows"]
    assert {r["method"] for r in rows} == {"euler", "exact"}
    assert all(r["missed"] == 0 and r["extra"] == 0 for r in rows)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_public_names():
    from nirjax._continuous import run_method, simulate_continuous

    assert nirjax.compare is compare
    assert nirjax.simulate_continuous is simulate_continuous
    assert nirjax.run_method is run_method


def test_compare_command_errors(tmp_path, capsys):
    nir_path = str(tmp_path / "lif.nir")
    nir.write(nir_path, paper_lif_graph())
    assert main(["compare", nir_path, "--input", str(tmp_path / "missing.npy"),
                 "--dt", "1e-4"]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((10, 3), np.float32))
    assert main(["compare", nir_path, "--input", str(bad), "--dt", "1e-4"]) == 2
    assert "expected a numeric array of shape (steps, 1)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="time_shift"):
        compare(nirjax.from_nir(paper_lif_graph(), dt=DT), np.zeros((10, 1), np.float32),
                time_shift=DT)


def test_raster_says_which_neurons_it_shows_and_what_it_left_out():
    from nirjax._compare import _raster_selection

    per = {"diffrax": [np.array([0.1]), np.array([]), np.array([0.1, 0.2, 0.3]), np.array([])],
           "euler": [np.array([]), np.array([]), np.array([0.1]), np.array([0.5])]}
    shown, note = _raster_selection(per, max_raster=2)
    assert shown == [0, 2]  # the most active (4 and 1 spikes; neuron 3's single one ties 0's, later)
    assert note == ("2 of 4 neurons shown; left out: 1 silent in every method, 1 less active "
                    "ones (max_raster=2)")
    assert _raster_selection(per, max_raster=10) == ([0, 2, 3],
                                                     "3 of 4 neurons shown; left out: 1 silent in every method")
