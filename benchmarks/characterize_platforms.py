"""The NIR paper's platform table: characterize every `lif_<platform>.csv` against lif_norse.nir.

    python benchmarks/characterize_platforms.py [--conformance ../shared/conformance]
    python benchmarks/characterize_platforms.py --table \
        benchmarks/results/characterize_platforms.json

Writes `benchmarks/results/characterize_platforms.json` (atomically) with one row per platform
(see `training.Characterization.row`), and for the Loihi recording a second row
`lava_loihi_fixed+loihi2_fixed_point` from the chip's bit-accurate fixed-point execution
(`training.characterize_fixed`); docs/mismatch.md's platform table comes from it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np

import nirjax
from training import characterize, characterize_fixed

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "characterize_platforms.json")


ORDER = ("norse", "snntorch", "spinnaker2", "nengo", "exact", "lava_cpu_float",
         "lava_loihi_fixed", "rockpool", "sinabs", "spyx")


def markdown_table(result: dict) -> str:
    """docs/mismatch.md's platform table from a results file."""
    out = ["| platform | latency | spike latency | input | reset | discretization | probe | "
           "voltage scale | tau | threshold | v_reset shift | spike steps reproduced | "
           "residual RMS (% of range) | verdict |", "|" + "---|" * 14]
    rows = result["platforms"]
    for name in [k for k in ORDER if k in rows] + sorted(set(rows) - set(ORDER)):
        r = rows[name]
        label = name.replace("lava_cpu_float", "lava (cpu float)").replace(
            "lava_loihi_fixed", "lava (loihi fixed)")
        shift = r["v_reset_shift"]
        shift = "0" if shift is None or abs(shift) < 1e-5 else f"{shift:+.2g}"
        out.append(
            f"| {label} | {r['latency']} | {r['spike_latency']} | {r['input_mode']} | "
            f"{r['reset']} | {r['discretization']} | {r['probe']} | {r['scale']:.5g} | "
            f"x{r['tau_rel']:.4f} | x{r['threshold_rel']:.4f} | {shift} | "
            f"{'yes' if r['spikes_reproduced'] else 'no'} | {100 * r['rms_rel_range']:.2g} | "
            f"{r['verdict']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conformance",
                    default=os.path.join(HERE, "..", "..", "shared", "conformance"))
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--table", metavar="JSON",
                    help="print docs/mismatch.md's table from a results file, exit")
    args = ap.parse_args()
    if args.table:
        with open(args.table) as f:
            print(markdown_table(json.load(f)))
        return
    lif = os.path.join(args.conformance, "lif")
    nominal = nirjax.from_nir(os.path.join(lif, "lif_norse.nir"), dt=1e-4)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    if not os.access(folder, os.W_OK):  # fail now, not after the work
        raise SystemExit(f"--out {args.out}: folder {folder} is not writable; choose another.")
    rows = {}
    for path in sorted(glob.glob(os.path.join(lif, "lif_*.csv"))):
        platform = os.path.basename(path)[4:-4]
        d = np.loadtxt(path, delimiter=",")
        # Sinabs records the input already weighted (0.04 = dt / tau per spike): read spikes.
        d[:, 0] = d[:, 0] > 0
        t0 = time.perf_counter()
        # "full": every structure at once, so that the table shows the one closest to the
        # nominal parameters among all that explain the recording
        _, rep = characterize(nominal, inputs=d[:, :1], v=d[:, 1], spikes=d[:, 2],
                              structure="full", progress=False)
        row = rep.row()
        row["seconds"] = time.perf_counter() - t0
        row["spike_steps"] = [int(i) for i in np.nonzero(d[:, 2])[0]]
        rows[platform] = row
        print(f"{platform:18s} {rep.structure.describe():75s} scale {rep.scale:<10.5g} "
              f"tau x{row['tau_rel']:.4f} th x{row['threshold_rel']:.4f} "
              f"spikes {'yes' if rep.spikes_reproduced else 'no'} "
              f"rms {100 * row['rms_rel_range']:.3g} % {rep.verdict}")
        if platform == "lava_loihi_fixed":  # also with the chip's own integer arithmetic
            t0 = time.perf_counter()
            _, fixed = characterize_fixed(nominal, "loihi2", inputs=d[:, :1], v=d[:, 1],
                                          spikes=d[:, 2])
            frow = fixed.row()
            frow["seconds"] = time.perf_counter() - t0
            frow["spike_steps"] = row["spike_steps"]
            rows[platform + "+loihi2_fixed_point"] = frow
            print(f"{platform + ' (loihi2 fixed point)':18s} latency {fixed.latency} "
                  f"constants {fixed.constants} rms {fixed.rms:.3g} {fixed.verdict}")
    result = {"command": "python benchmarks/characterize_platforms.py", "nominal": "lif_norse.nir",
              "platforms": rows}
    with nirjax.atomic_path(args.out) as tmp:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
