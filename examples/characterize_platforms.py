"""Characterize every platform of the NIR paper's LIF experiment against lif_norse.nir.

    python examples/characterize_platforms.py [../shared/conformance/lif]

For each lif_<platform>.csv (input spike, voltage, output spike per step) it runs
`training.characterize` and prints the platform table: latency, spike latency, input reading,
reset, discretization, probe point, voltage scale, tau and threshold relative to nominal,
whether the spike steps are reproduced, and the residual. The same as running
`nirjax characterize lif_norse.nir --dt 1e-4 --recording lif_<platform>.csv` per file.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

import nirjax
from training import characterize


def main(folder: str) -> None:
    nominal = nirjax.from_nir(os.path.join(folder, "lif_norse.nir"), dt=1e-4)
    print("platform | latency | spike latency | input | reset | discretization | probe | "
          "scale | tau | threshold | spikes | residual (% range) | verdict")
    for path in sorted(glob.glob(os.path.join(folder, "lif_*.csv"))):
        d = np.loadtxt(path, delimiter=",")
        _, r = characterize(nominal, inputs=d[:, :1] > 0, v=d[:, 1], spikes=d[:, 2],
                            structure="full", progress=False)
        s, row = r.structure, r.row()
        print(f"{os.path.basename(path)[4:-4]} | {s.latency} | {s.spike_latency} | "
              f"{s.input_mode} | {s.reset} | {s.discretization} | {s.probe} | {r.scale:.5g} | "
              f"x{row['tau_rel']:.4f} | x{row['threshold_rel']:.4f} | "
              f"{'yes' if r.spikes_reproduced else 'no'} | {100 * row['rms_rel_range']:.3g} | "
              f"{r.verdict}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(here, "..", "..", "shared", "conformance", "lif"))
