"""Calibrate a two-layer spiking network from its output spikes alone.

The chip: 50 inputs -> Affine -> 32 CubaLIF -> Affine -> 16 CubaLIF, with 20 % Gaussian
mismatch of tau_syn, tau_mem, r and v_threshold in both layers. Only the output layer's spikes
are recorded (no membrane traces, nothing from the hidden layer), for 4 samples of 0.3 s.

Without traces there is no teacher forcing: the model runs freely and the fit follows surrogate
gradients of the van Rossum distance between its output spikes and the recorded ones. Spike
times constrain combinations of parameters (a lower threshold and a longer membrane time
constant both make a neuron fire earlier), so expect the spike-train distance to fall much more
than the parameter errors; held-out inputs show whether the calibration generalises.

Run: `python examples/fit_two_layer_spikes.py [--out OUT_DIR] [--steps 300]`.
"""

from __future__ import annotations

import argparse
import os
import sys

import nir
import numpy as np

import nirjax
import training

DT = 1e-4
PARAMS = ("tau_syn", "tau_mem", "r", "v_threshold")
TAU_VR = 20e-3  # van Rossum kernel: long enough to give gradients for spikes several ms apart


def cuba(n: int) -> nir.CubaLIF:
    one = np.ones(n, np.float32)
    return nir.CubaLIF(tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one,
                       v_threshold=one, v_reset=0 * one, w_in=one)


def nominal_graph(seed: int = 0) -> nirjax.Graph:
    rng = np.random.default_rng(seed)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([50])),
            "fc1": nir.Affine(rng.normal(1.6, 0.8, (32, 50)).astype(np.float32),
                              np.zeros(32, np.float32)),
            "lif1": cuba(32),
            "fc2": nir.Affine(rng.normal(6.0, 1.5, (16, 32)).astype(np.float32),
                              np.zeros(16, np.float32)),
            "lif2": cuba(16),
            "output": nir.Output(np.array([16])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
    )
    return nirjax.from_nir(graph, dt=DT)


def poisson(samples: int, steps: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    rate = 200 * (1 + 0.9 * np.sin(2 * np.pi * rng.uniform(2, 8, (samples, 1, n)) * t[:, None]
                                   + rng.uniform(0, 2 * np.pi, (samples, 1, n))))
    return (rng.uniform(size=(samples, steps, n)) < rate * DT).astype(np.float32)


def distance(graph, xs, target) -> float:
    out = training.simulate(graph, xs, ["lif2"])["lif2"]["output"]
    return float(np.mean([training.van_rossum_distance(o, t, tau=TAU_VR, dt=DT)
                          for o, t in zip(out, target)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mismatch_two_layer")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    nominal = nominal_graph()
    x, x_test = poisson(4, 3000, 50, seed=1), poisson(4, 3000, 50, seed=2)
    chip = training.simulate_chip(nominal, inputs=x, mismatch=0.2, params=PARAMS, record=["lif2"],
                                  observables=("output",), seed=3,
                                  path=os.path.join(args.out, "recording.h5"))
    recorded = chip.recordings["lif2"]["output"]
    recorded_test = training.simulate(chip.graph, x_test, ["lif2"])["lif2"]["output"]

    fitted, report = training.fit_mismatch(nominal, chip.recordings, inputs=x, params=PARAMS,
                                           loss="van_rossum", van_rossum_tau=TAU_VR,
                                           steps=args.steps, lr=0.02, uncertainty=False)
    print(report.summary())
    nirjax.write(os.path.join(args.out, "calibrated.nir"), fitted)
    sims = {"nominal": training.simulate(nominal, x[:1], ["lif2"]),
            "fitted": training.simulate(fitted, x[:1], ["lif2"])}
    training.plot_fit(os.path.join(args.out, "fit.png"), {"lif2": {"output": recorded[:1]}}, sims,
                      dt=DT)

    before = training.relative_errors(nominal, chip.graph, PARAMS)
    after = training.relative_errors(fitted, chip.graph, PARAMS)
    print("\nmedian relative error vs the chip's true parameters")
    for name in after:
        print(f"  {name:17s} {100 * np.median(before[name]):6.2f} % -> "
              f"{100 * np.median(after[name]):6.2f} %")
    print(f"van Rossum distance (tau {TAU_VR * 1e3:g} ms), fitted inputs: "
          f"{distance(nominal, x, recorded):.4g} -> {distance(fitted, x, recorded):.4g}")
    print(f"van Rossum distance, held-out inputs: "
          f"{distance(nominal, x_test, recorded_test):.4g} -> "
          f"{distance(fitted, x_test, recorded_test):.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
