"""Benchmark: fitting hardware mismatch (issue 7).

Two measurements, each on a simulated chip (`training.simulate_chip`) with known
Gaussian mismatch, fitted from the nominal graph by `fit_mismatch`:

1. `layer`: 64 CubaLIF neurons behind an Affine layer driven by 100 rate-modulated Poisson spike
   trains; 20 % mismatch of tau_syn, tau_mem, r and v_threshold; membrane traces recorded with
   noise sigma = 0.01 for 0.3 s at dt = 0.1 ms (3000 steps). Reports the median relative error
   per parameter before and after the fit, the wall time of the fit (compilation and
   uncertainty estimate included), and how often the truth lies within 2 estimated standard
   deviations. Targets: median error <= 2 % (tau_mem), <= 5 % (tau_syn, r, v_threshold), < 60 s.
2. `spikes`: a two-layer CubaLIF network (50 -> 32 -> 16) where only the output layer's spikes
   are recorded; 20 % mismatch of tau_syn, tau_mem, r, v_threshold in both layers. Reports the
   median relative error of the fitted parameters before and after, and the van Rossum distance
   to the recorded spikes before and after, on the fitted inputs and on held-out inputs.

Usage: `python benchmarks/mismatch.py [--part layer|spikes|all] [--json results.json]`.
Timings depend on the machine and its load; the numbers in docs/mismatch.md say where they came
from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import nir
import numpy as np

import nirjax
import training

DT = 1e-4
PARAMS = ("tau_syn", "tau_mem", "r", "v_threshold")


def cuba(n: int) -> nir.CubaLIF:
    one = np.ones(n, np.float32)
    return nir.CubaLIF(
        tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one, v_threshold=one,
        v_reset=0 * one, w_in=one,
    )


def poisson_inputs(samples: int, steps: int, n: int, seed: int, rate: float = 200.0):
    """Poisson spike trains whose rates are modulated by slow sines of random frequency (2-8 Hz)
    and phase: rich enough to excite the sub-threshold dynamics on several time scales."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    freq = rng.uniform(2, 8, (samples, 1, n))
    phase = rng.uniform(0, 2 * np.pi, (samples, 1, n))
    r = rate * (1 + 0.9 * np.sin(2 * np.pi * freq * t[None, :, None] + phase))
    return (rng.uniform(size=(samples, steps, n)) < r * DT).astype(np.float32)


def layer_graph(n_in: int = 100, n: int = 64, seed: int = 0) -> nirjax.Graph:
    rng = np.random.default_rng(seed)
    w = rng.normal(0.8, 0.6, (n, n_in)).astype(np.float32)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n_in])),
            "fc": nir.Affine(w, np.zeros(n, np.float32)),
            "lif": cuba(n),
            "output": nir.Output(np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    return nirjax.from_nir(graph, dt=DT)


def two_layer_graph(n_in=50, n_h=32, n_out=16, seed=0) -> nirjax.Graph:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(1.6, 0.8, (n_h, n_in)).astype(np.float32)
    w2 = rng.normal(6.0, 1.5, (n_out, n_h)).astype(np.float32)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n_in])),
            "fc1": nir.Affine(w1, np.zeros(n_h, np.float32)),
            "lif1": cuba(n_h),
            "fc2": nir.Affine(w2, np.zeros(n_out, np.float32)),
            "lif2": cuba(n_out),
            "output": nir.Output(np.array([n_out])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
    )
    return nirjax.from_nir(graph, dt=DT)


def medians(errors: dict) -> dict:
    return {k: float(np.median(v)) for k, v in errors.items()}


def bench_layer(steps: int, lr: float, seed: int) -> dict:
    graph = layer_graph()
    x = poisson_inputs(1, 3000, 100, seed=1)
    chip = training.simulate_chip(graph, inputs=x, mismatch=0.2, noise=0.01, params=PARAMS,
                                  record=["lif"], seed=seed)
    counts = chip.recordings["lif"]["output"].sum(axis=(0, 1))
    t0, c0 = time.perf_counter(), time.process_time()
    fitted, report = training.fit_mismatch(graph, chip.recordings, inputs=x, params=PARAMS,
                                           steps=steps, lr=lr, progress=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    before = medians(training.relative_errors(graph, chip.graph, PARAMS))
    after = medians(training.relative_errors(fitted, chip.graph, PARAMS))
    coverage = {}
    for name, p in report.params.items():
        node, field = name.rsplit(".", 1)
        truth = np.asarray(getattr(chip.graph.nodes[node], field))
        ok = np.isfinite(p.uncertainty)
        coverage[name] = float(np.mean(np.abs(p.fitted - truth)[ok] < 2 * p.uncertainty[ok]))
    print(report.summary())
    return {
        "neurons": 64, "steps_T": 3000, "dt": DT, "noise": 0.01, "mismatch": 0.2,
        "spikes_per_neuron_median": float(np.median(counts)),
        "silent_neurons": int(np.sum(counts == 0)),
        "fit_steps": steps, "lr": lr, "fit_seconds": wall, "fit_cpu_seconds": cpu,
        "load_average": os.getloadavg()[0],
        "median_rel_error_before": before, "median_rel_error_after": after,
        "within_2_sigma": coverage,
        "loss": [report.initial_loss, report.final_loss],
    }


def bench_spikes(steps: int, lr: float, seed: int, fit_params, tau_vr: float) -> dict:
    graph = two_layer_graph()
    x = poisson_inputs(4, 3000, 50, seed=1)
    x_test = poisson_inputs(4, 3000, 50, seed=2)
    chip = training.simulate_chip(graph, inputs=x, mismatch=0.2, params=PARAMS, record=["lif2"],
                                  observables=("output",), seed=seed)
    test_rec = training.simulate(chip.graph, x_test, ["lif2"])["lif2"]["output"]
    rec = chip.recordings["lif2"]["output"]

    def distance(g, xs, target):
        out = training.simulate(g, xs, ["lif2"])["lif2"]["output"]
        return float(np.mean([
            training.van_rossum_distance(out[i], target[i], tau=tau_vr, dt=DT)
            for i in range(len(out))
        ]))

    t0 = time.perf_counter()
    fitted, report = training.fit_mismatch(graph, chip.recordings, inputs=x, params=fit_params,
                                           loss="van_rossum", van_rossum_tau=tau_vr, steps=steps,
                                           lr=lr, uncertainty=False, progress=True)
    wall = time.perf_counter() - t0
    print(report.summary())
    return {
        "layers": [50, 32, 16], "samples": 4, "steps_T": 3000, "mismatch": 0.2,
        "recorded": "lif2 output spikes only", "fitted": list(fit_params),
        "output_spikes_per_neuron_median": float(np.median(rec.sum(axis=(0, 1)))),
        "silent_output_neurons": int(np.sum(rec.sum(axis=(0, 1)) == 0)),
        "fit_steps": steps, "lr": lr, "van_rossum_tau": tau_vr, "fit_seconds": wall,
        "median_rel_error_before": medians(
            training.relative_errors(graph, chip.graph, fit_params)),
        "median_rel_error_after": medians(
            training.relative_errors(fitted, chip.graph, fit_params)),
        "van_rossum_before": distance(graph, x, rec),
        "van_rossum_after": distance(fitted, x, rec),
        "van_rossum_heldout_before": distance(graph, x_test, test_rec),
        "van_rossum_heldout_after": distance(fitted, x_test, test_rec),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("layer", "spikes", "all"), default="all")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.15)
    ap.add_argument("--spike-steps", type=int, default=300)
    ap.add_argument("--spike-lr", type=float, default=0.02)
    ap.add_argument("--spike-params", default="tau_syn,tau_mem,r,v_threshold")
    ap.add_argument("--van-rossum-tau", type=float, default=20e-3)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    results = {"jax": jax.__version__, "devices": str(jax.devices()), "cpus": os.cpu_count()}
    if args.part in ("layer", "all"):
        results["layer"] = bench_layer(args.steps, args.lr, args.seed)
    if args.part in ("spikes", "all"):
        results["spikes"] = bench_spikes(args.spike_steps, args.spike_lr, args.seed,
                                         tuple(args.spike_params.split(",")), args.van_rossum_tau)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with nirjax.atomic_path(args.json, ".json") as tmp, open(tmp, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
