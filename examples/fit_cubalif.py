"""Calibrate a CubaLIF layer to a (simulated) chip: the full loop of issue 7.

1. Write the nominal graph: 100 inputs -> Affine -> 64 CubaLIF neurons.
2. Make a "chip": the nominal graph with 20 % Gaussian mismatch of tau_syn, tau_mem, r and
   v_threshold, driven by Poisson spike trains and recorded (membrane traces with noise
   sigma = 0.01, and spikes) for 0.3 s into a NIR data file, inputs included.
3. Fit the mismatch from the nominal graph and the recording file, write the calibrated graph and
   a plot of recorded against nominal and fitted traces.
4. Compare with the chip's true parameters (known here because the chip is simulated).

The same fit from the shell:

    nirjax calibrate out/nominal.nir out/recording.h5 --params tau_syn,tau_mem,r,v_threshold \
        --out out/calibrated.nir --plot out/fit.png

Run: `python examples/fit_cubalif.py [--out OUT_DIR] [--neurons 64] [--steps 400]`.
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


def nominal_graph(n_in: int, n: int, seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    one = np.ones(n, np.float32)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n_in])),
            "fc": nir.Affine(rng.normal(0.8, 0.6, (n, n_in)).astype(np.float32),
                             np.zeros(n, np.float32)),
            "lif": nir.CubaLIF(tau_syn=5e-3 * one, tau_mem=20e-3 * one, r=one, v_leak=0 * one,
                               v_threshold=one, v_reset=0 * one, w_in=one),
            "output": nir.Output(np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata={nirjax.Options.metadata_key("dt"): DT},
    )


def poisson(samples: int, steps: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    rate = 200 * (1 + 0.9 * np.sin(2 * np.pi * rng.uniform(2, 8, (samples, 1, n)) * t[:, None]
                                   + rng.uniform(0, 2 * np.pi, (samples, 1, n))))
    return (rng.uniform(size=(samples, steps, n)) < rate * DT).astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mismatch_cubalif")
    ap.add_argument("--neurons", type=int, default=64)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    # 1. the nominal graph, as a .nir file
    nominal_path = os.path.join(args.out, "nominal.nir")
    nir.write(nominal_path, nominal_graph(100, args.neurons))
    nominal = nirjax.load(nominal_path)

    # 2. the chip: known mismatch, noisy recording written in the NIR data format
    recording_path = os.path.join(args.out, "recording.h5")
    x = poisson(1, 3000, 100, seed=1)
    chip = training.simulate_chip(nominal, inputs=x, mismatch=0.2, noise=0.01, params=PARAMS,
                                  record=["lif"], seed=3, path=recording_path)

    # 3. fit from the nominal graph and the recording file (it holds the inputs too)
    fitted, report = training.fit_mismatch(nominal_path, recording_path, params=PARAMS,
                                           steps=args.steps, lr=0.15)
    print(report.summary())
    nirjax.write(os.path.join(args.out, "calibrated.nir"), fitted)
    sims = {"nominal": training.simulate(nominal, x, ["lif"]),
            "fitted": training.simulate(fitted, x, ["lif"])}
    training.plot_fit(os.path.join(args.out, "fit.png"), chip.recordings, sims, dt=DT)

    # 4. against the truth
    before = training.relative_errors(nominal, chip.graph, PARAMS)
    after = training.relative_errors(fitted, chip.graph, PARAMS)
    print("\nmedian relative error vs the chip's true parameters")
    for name in after:
        print(f"  {name:16s} {100 * np.median(before[name]):6.2f} % -> "
              f"{100 * np.median(after[name]):6.2f} %")
    print(f"\nwrote {args.out}/calibrated.nir and {args.out}/fit.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
