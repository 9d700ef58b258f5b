"""Fitting hardware mismatch (training._mismatch): recovery, teacher forcing, uncertainty,
the NIR data round trip and the `nirjax fit` command."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
from training._mismatch import (
    fit_mismatch,
    perturb,
    read_recording,
    relative_errors,
    resolve_targets,
    simulate,
    simulate_chip,
    substitute,
)
from training._mismatch_forcing import (
    Forced,
    infer_spikes as _infer_spikes,
    threshold_consistency,
    threshold_interval,
)

DT = 1e-4
PARAMS = ("tau_syn", "tau_mem", "r", "v_threshold")


def _layer(n_in=20, n=6, seed=0) -> nirjax.Graph:
    rng = np.random.default_rng(seed)
    w = rng.normal(4.0, 2.0, (n, n_in)).astype(np.float32)
    one = np.ones(n, np.float32)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n_in])),
            "fc": nir.Affine(w, np.zeros(n, np.float32)),
            "lif": nir.CubaLIF(
                tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one,
                v_threshold=one, v_reset=0 * one, w_in=one,
            ),
            "output": nir.Output(np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    return nirjax.from_nir(graph, dt=DT)


def _inputs(samples, steps, n_in, seed=1, rate=200.0):
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    freq = rng.uniform(3, 10, (samples, 1, n_in))
    phase = rng.uniform(0, 2 * np.pi, (samples, 1, n_in))
    r = rate * (1 + 0.9 * np.sin(2 * np.pi * freq * t[None, :, None] + phase))
    return (rng.uniform(size=(samples, steps, n_in)) < r * DT).astype(np.float32)


@pytest.fixture(scope="module")
def chip():
    graph = _layer()
    x = _inputs(2, 1000, 20)
    return graph, simulate_chip(
        graph, inputs=x, mismatch=0.2, noise=0.01, params=PARAMS, record=["lif"], seed=3
    )


@pytest.mark.slow  # kept out of the default suite for time (CI < 10 min)
def test_recovery_from_noisy_traces(chip):
    graph, sim = chip
    before = relative_errors(graph, sim.graph, PARAMS)
    fitted, report = fit_mismatch(
        graph, sim.recordings, inputs=sim.inputs, params=PARAMS, steps=100, lr=0.15,
        progress=False,
    )
    after = relative_errors(fitted, sim.graph, PARAMS)
    err0 = np.median(np.concatenate(list(before.values())))
    err1 = np.median(np.concatenate(list(after.values())))
    assert err0 > 0.08  # the chip really deviates (20 % mismatch)
    assert err1 < 0.25 * err0, (err0, err1, report.summary())
    # per parameter, the median error falls well below the initial mismatch
    for name in after:
        assert np.median(after[name]) < 0.5 * np.median(before[name]), name
    assert report.forced == ("lif",)
    assert report.final_loss < 0.1 * report.initial_loss
    # the trace residual reaches the injected noise level (sigma = 0.01)
    assert report.final_loss == pytest.approx(0.01**2, rel=0.5)
    assert report.noise == pytest.approx(0.01, rel=0.2)
    # fitted values stay inside the bounds (±50 %) and the graph exports
    for p in report.params.values():
        assert np.all(np.abs(p.deviation) <= 0.5 + 1e-6)
    assert isinstance(nirjax.to_nir(fitted), nir.NIRGraph)


def _spiking_node(kind: str, n: int):
    one = np.ones(n, np.float32)
    if kind == "IF":
        return nir.IF(r=one, v_threshold=0.02 * one, v_reset=0 * one)
    if kind == "LIF":
        return nir.LIF(tau=10e-3 * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one)
    return nir.CubaLIF(tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one,
                       v_threshold=one, v_reset=0 * one, w_in=one)


@pytest.mark.parametrize("kind", ["IF", "LIF", "CubaLIF"])
@pytest.mark.parametrize("reset,discretization", [("value", "euler"), ("subtract", "exact")])
def test_forced_neuron_reproduces_free_run_given_its_own_spikes(kind, reset, discretization):
    # Forcing a neuron with the spikes it emits on its own must change nothing (an independent
    # reference: the nirjax neuron itself), for every spiking neuron and reset mode.
    n, n_in = 5, 20
    w = np.random.default_rng(0).normal(4.0, 2.0, (n, n_in)).astype(np.float32)
    graph = nirjax.from_nir(
        nir.NIRGraph(
            nodes={"input": nir.Input(np.array([n_in])), "fc": nir.Linear(w),
                   "lif": _spiking_node(kind, n), "output": nir.Output(np.array([n]))},
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        ),
        dt=DT, reset=reset, discretization=discretization,
    )
    x = jnp.asarray(_inputs(1, 600, n_in)[0])
    free = graph.run(x, record=("lif",)).record["lif"]
    assert float(free["output"].sum()) > 3
    g2 = eqx.tree_at(lambda g: g.nodes["lif"], graph, Forced(graph.nodes["lif"], free["output"]))
    rec = g2.run(x, record=("lif",)).record["lif"]
    np.testing.assert_allclose(rec["v"], free["v"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(rec["output"], free["output"])
    # v_pre crosses the threshold exactly on the spike steps
    thr = float(np.asarray(graph.nodes["lif"].v_threshold)[0])
    spiking = np.asarray(free["output"]) > 0.5
    assert np.all(np.asarray(rec["v_pre"])[spiking] > thr)
    assert np.all(np.asarray(rec["v_pre"])[~spiking] <= thr)


def test_spikes_inferred_from_resets_in_the_trace(chip):
    graph, sim = chip
    v = jnp.asarray(sim.recordings["lif"]["v"])
    inferred = _infer_spikes(v, graph.nodes["lif"])
    np.testing.assert_array_equal(np.asarray(inferred), sim.recordings["lif"]["output"])


def test_spike_losses_free_running_with_gains(chip):
    graph, sim = chip
    spikes_only = {"lif": {"output": sim.recordings["lif"]["output"]}}
    fitted, report = fit_mismatch(
        graph, spikes_only, inputs=sim.inputs, params=("v_threshold",), per_row_gain=True,
        loss={"van_rossum": 1.0, "spike_count": 1e-3}, van_rossum_tau=20e-3, steps=40, lr=0.03,
        detach_reset=True, clip=1.0, progress=False,
    )
    assert report.forced == ()
    assert set(report.params) == {"lif.v_threshold", "fc.gain"}
    assert report.final_loss < 0.7 * report.initial_loss
    # the fitted graph keeps the nominal options (detach_reset applied only while fitting)
    assert fitted.nodes["lif"].options == graph.nodes["lif"].options
    assert report.params["fc.gain"].method == "none"


def test_threshold_interval_and_consistency():
    v_pre = jnp.array([[[0.2], [0.9], [1.3], [0.5], [1.1]]])  # (S=1, T=5, n=1)
    s = jnp.array([[[0.0], [0.0], [1.0], [0.0], [1.0]]])
    lo, hi = threshold_interval(v_pre, s)
    assert float(lo[0]) == pytest.approx(0.9) and float(hi[0]) == pytest.approx(1.1)
    assert float(threshold_consistency(v_pre[0], s[0], jnp.array([1.0]))) == 0.0
    # theta = 1.2: the spike at v_pre = 1.1 is 0.1 short: (0.1^2) / 5 steps
    assert float(threshold_consistency(v_pre[0], s[0], jnp.array([1.2]))) == pytest.approx(
        0.01 / 5, rel=1e-5
    )


def test_gauss_newton_uncertainty_matches_closed_form():
    # A leaky integrator is linear in r: v = r f(t), so J = v / r and the Gauss-Newton standard
    # deviation of r is sigma / sqrt(sum f^2), sigma^2 the mean squared residual.
    n = 3
    one = np.ones(n, np.float32)
    g = nirjax.from_nir(
        nir.NIRGraph(
            nodes={
                "input": nir.Input(np.array([n])),
                "li": nir.LI(tau=10e-3 * one, r=one, v_leak=0 * one),
                "output": nir.Output(np.array([n])),
            },
            edges=[("input", "li"), ("li", "output")],
        ),
        dt=DT,
    )
    x = _inputs(1, 500, n, rate=800.0) * 5.0
    sim = simulate_chip(g, inputs=x, params=("r",), mismatch=0.2, noise=0.01, record=["li"],
                        observables=("v",), seed=5)
    fitted, report = fit_mismatch(g, sim.recordings, inputs=x, params=("r",), steps=20,
                                  lr=0.1, progress=False)
    p = report.params["li.r"]
    assert p.method == "gauss-newton"
    f = simulate(fitted, x, ["li"])["li"]["v"] / p.fitted  # (S, T, n): v per unit r
    expected = np.sqrt(report.final_loss / (f.astype(np.float64) ** 2).sum(axis=(0, 1)))
    np.testing.assert_allclose(p.uncertainty, expected, rtol=0.02)
    # and the fitted r lies within a few standard deviations of the truth
    true_r = np.asarray(sim.graph.nodes["li"].r)
    assert np.all(np.abs(p.fitted - true_r) < 5 * p.uncertainty)

    # With a Gaussian prior (relative sigma_p) the fit is the MAP estimate, which for a model
    # linear in r has the closed form r = (sum f y + lam r0) / (sum f^2 + lam),
    # lam = sigma^2 / (r0 sigma_p)^2, with f the response to r = 1 (the nominal run).
    sigma_p = 0.002
    _, rep = fit_mismatch(g, sim.recordings, inputs=x, params=("r",), prior=sigma_p, steps=20,
                          lr=0.1, progress=False)
    f = simulate(g, x, ["li"])["li"]["v"].astype(np.float64)
    y = sim.recordings["li"]["v"].astype(np.float64)
    lam = rep.noise**2 / sigma_p**2
    expected = ((f * y).sum(axis=(0, 1)) + lam) / ((f * f).sum(axis=(0, 1)) + lam)
    np.testing.assert_allclose(rep.params["li.r"].fitted, expected, rtol=2e-4)
    ml = (f * y).sum(axis=(0, 1)) / (f * f).sum(axis=(0, 1))
    # the prior pulls clearly towards nominal (much more than the tolerance above)
    assert np.all(np.abs(expected - 1) < 0.9 * np.abs(ml - 1))
    assert np.all(np.abs(expected - ml) > 50 * 2e-4 * np.abs(expected))


def test_perturb_has_the_requested_spread():
    n = 4000
    one = np.ones(n, np.float32)
    g = nirjax.from_nir(
        nir.NIRGraph.from_list(nir.Input(np.array([n])), nir.LIF(
            tau=0.02 * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one)),
        dt=DT,
    )
    chip = perturb(g, mismatch=0.2, params=("tau", "v_threshold"), seed=0)
    (name,) = [k for k in g.nodes if isinstance(g.nodes[k], nirjax.LIF)]
    rel = np.asarray(chip.nodes[name].tau) / 0.02 - 1
    assert np.std(rel) == pytest.approx(0.2, rel=0.06)
    assert abs(np.mean(rel)) < 0.02
    assert np.all(np.asarray(chip.nodes[name].r) == 1.0)  # r not selected: unchanged


def test_bounds_and_gain_parametrisation():
    g = _layer(n=4)
    targets = resolve_targets(g, ["tau_mem", "fc.gain"], bounds={"tau_mem": 0.3, "gain": 0.1})
    values = {t.name: t.value(jnp.full(t.nominal.shape, 100.0)) for t in targets}
    np.testing.assert_allclose(values["lif.tau_mem"], 0.02 * 1.3, rtol=1e-6)
    np.testing.assert_allclose(values["fc.gain"], 1.1, rtol=1e-6)
    g2 = substitute(g, targets, values)
    np.testing.assert_allclose(g2.nodes["fc"].weight, 1.1 * np.asarray(g.nodes["fc"].weight),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="bound < 1"):
        resolve_targets(g, ["tau_mem"], bounds=1.0)
    with pytest.raises(ValueError, match="not a parameter"):
        resolve_targets(g, ["lif.bogus"])
    with pytest.raises(ValueError, match="no parameter 'tau'"):
        resolve_targets(g, ["lif.tau"])


def test_errors_name_the_problem(chip):
    graph, sim = chip
    with pytest.raises(ValueError, match="no node 'nope'"):
        fit_mismatch(graph, {"nope": {"v": sim.recordings["lif"]["v"]}}, inputs=sim.inputs,
                     steps=1, progress=False)
    with pytest.raises(ValueError, match="model has no observable \\['v'\\] for this Affine"):
        fit_mismatch(graph, {"fc": {"v": sim.recordings["lif"]["v"]}}, inputs=sim.inputs,
                     steps=1, progress=False)
    spikes_only = {"lif": {"output": sim.recordings["lif"]["output"]}}
    with pytest.raises(ValueError, match="trace_mse' needs recorded membrane traces"):
        fit_mismatch(graph, spikes_only, inputs=sim.inputs, loss="trace_mse", steps=1,
                     progress=False)
    with pytest.raises(ValueError, match="inputs are required"):
        fit_mismatch(graph, sim.recordings, steps=1, progress=False)


def test_recording_round_trip_through_nir_data(tmp_path, chip):
    graph, _ = chip
    x = _inputs(2, 300, 20, seed=4)
    path = tmp_path / "rec.h5"
    sim = simulate_chip(graph, inputs=x, params=PARAMS, record=["lif"], seed=7, path=path)
    raw = nir.read_data(str(path))
    assert isinstance(raw, nir.NIRGraphData)
    obs = raw.nodes["lif"].observables
    assert isinstance(obs["v"], nir.TimeGriddedData) and obs["v"].data.shape == (2, 300, 6)
    assert obs["output"].data.dtype == np.bool_ and obs["v"].dt == pytest.approx(DT)
    assert raw.nodes["input"].observables["output"].data.shape == (2, 300, 20)
    back = read_recording(path, graph)
    assert back.dt == pytest.approx(DT)
    np.testing.assert_array_equal(back.inputs["input"], x)
    np.testing.assert_array_equal(back.recordings["lif"]["v"], sim.recordings["lif"]["v"])
    np.testing.assert_array_equal(back.recordings["lif"]["output"],
                                  sim.recordings["lif"]["output"])
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically, nothing left behind
    with pytest.raises(ValueError, match="differs from the graph's dt"):
        read_recording(path, graph.with_options(dt=2e-4))


@pytest.mark.slow  # kept out of the default suite for time (CI < 10 min)
def test_cli_fit_in_process(tmp_path, chip, capsys):
    from nirjax._cli import main

    graph, _ = chip
    nominal = tmp_path / "nominal.nir"
    nirjax.write(nominal, graph)
    x = _inputs(1, 600, 20, seed=2)
    sim = simulate_chip(graph, inputs=x, params=("tau_mem", "v_threshold"), record=["lif"],
                        seed=11, path=tmp_path / "rec.h5")
    out, fig = tmp_path / "calibrated.nir", tmp_path / "fit.png"
    rc = main([
        "calibrate", str(nominal), str(tmp_path / "rec.h5"), "--params", "tau_mem,v_threshold",
        "--out", str(out), "--steps", "30", "--lr", "0.15", "--quiet", "--plot", str(fig),
        "--multi-start", "2", "--structure", "none",  # the gradient fit alone (the default
        # structure search is tested in tests/test_characterize.py)
    ])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "alias" not in captured.err  # calibrate is the command's own name
    assert "lif.tau_mem" in text and "lif.v_threshold" in text and f"wrote {out}" in text
    calibrated = nirjax.load(out)
    before = relative_errors(graph, sim.graph, ("tau_mem", "v_threshold"))
    after = relative_errors(calibrated, sim.graph, ("tau_mem", "v_threshold"))
    for name in after:
        assert np.median(after[name]) < 0.5 * np.median(before[name]), name
    assert fig.exists() and fig.stat().st_size > 1000
    # bad parameter name: one line on stderr, exit code 2; under the old name `fit` the same
    # command, after a note that it is an alias
    for name in ("calibrate", "fit"):
        rc = main([name, str(nominal), str(tmp_path / "rec.h5"), "--params", "bogus",
                   "--out", str(tmp_path / "x.nir"), "--quiet"])
        assert rc == 2
        err = capsys.readouterr().err
        assert f"nirjax {name}: error:" in err and "is not a parameter" in err
        note = "note: `nirjax fit` is an alias of `nirjax calibrate` (hardware calibration)"
        assert (note in err) == (name == "fit")


def test_nodes_inside_subgraphs_are_fitted_and_forced():
    n_in, n = 20, 4
    rng = np.random.default_rng(0)
    one = np.ones(n, np.float32)
    inner = nir.NIRGraph(
        nodes={
            "in": nir.Input(np.array([n_in])),
            "fc": nir.Linear(rng.normal(4, 2, (n, n_in)).astype(np.float32)),
            "lif": nir.CubaLIF(tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one,
                               v_threshold=one, v_reset=0 * one, w_in=one),
            "out": nir.Output(np.array([n])),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")],
    )
    graph = nirjax.from_nir(
        nir.NIRGraph(
            nodes={"input": nir.Input(np.array([n_in])), "sub": inner,
                   "output": nir.Output(np.array([n]))},
            edges=[("input", "sub.in"), ("sub", "output")],
            type_check=False,
        ),
        dt=DT,
    )
    x = _inputs(1, 800, n_in)
    params = ("sub/lif.tau_mem", "sub/lif.v_threshold")
    sim = simulate_chip(graph, inputs=x, params=params, record=["sub/lif"], seed=2)
    fitted, report = fit_mismatch(graph, sim.recordings, inputs=x, params=params, steps=40,
                                  progress=False)
    assert report.forced == ("sub/lif",)
    before = relative_errors(graph, sim.graph, params)
    after = relative_errors(fitted, sim.graph, params)
    for name in after:
        assert np.median(after[name]) < 0.2 * np.median(before[name]), name


def test_fit_figure_has_one_axis_per_neuron_shown(tmp_path):
    import matplotlib.image

    from training import plot_fit

    rng = np.random.default_rng(0)
    T = 50
    rec = {"a": {"v": rng.normal(size=(1, T, 5)), "output": (rng.random((1, T, 5)) < 0.2) * 1.0},
           "b": {"output": (rng.random((1, T, 3)) < 0.2) * 1.0}}
    sim = {"fitted": {"a": {"v": rec["a"]["v"], "output": rec["a"]["output"]},
                      "b": {"output": rec["b"]["output"]}}}
    plot_fit(tmp_path / "f.png", rec, sim, dt=1e-3, neurons=2)
    h, _ = matplotlib.image.imread(tmp_path / "f.png").shape[:2]
    plot_fit(tmp_path / "g.png", rec, sim, dt=1e-3, neurons=3)
    h3, _ = matplotlib.image.imread(tmp_path / "g.png").shape[:2]
    assert h3 > h  # 3 + 3 axes are taller than 2 + 2
    with pytest.raises(ValueError, match="no 'v' or 'output' observable"):
        plot_fit(tmp_path / "x.png", {"a": {"i": np.zeros((1, 3, 1))}}, {}, dt=1e-3)
