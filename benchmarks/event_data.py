"""Event datasets and data-parallel training, measured.

    PYTHONPATH=. python benchmarks/event_data.py [--json benchmarks/results/event_data.json]

(PYTHONPATH=. only where the checkout is not pip-installed.)

1. N-MNIST-sized files (a tonic-layout folder written here: 34 x 34 x 2 sensor, 4,000 events per
   sample over 300 ms, the size of a real N-MNIST sample) read with `training.read_nmnist`:
   samples read and binned per second (first pass, from the files) and per second from the
   cache, and the host bytes one cached sample takes per binning (32 steps of 10 ms), against
   the float32 array a dense copy would take.
2. `nirjax train` on the digits defaults with `--devices 1` and `--devices 4` (a fresh process
   each, XLA_FLAGS=--xla_force_host_platform_device_count=4): the test accuracy and loss of
   both, and the largest difference between their trained weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_nmnist(root: str, n: int, events: int = 4000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = os.path.join(root, "NMNIST", "Train", str(i % 10))
        os.makedirs(folder, exist_ok=True)
        x, y = rng.integers(0, 34, events), rng.integers(0, 34, events)
        p, t = rng.integers(0, 2, events), np.sort(rng.integers(0, 300_000, events))
        raw = np.zeros((events, 5), np.uint8)
        raw[:, 0], raw[:, 1] = x, y
        raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
        raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
        raw.tofile(os.path.join(folder, f"{i:05d}.bin"))


def binning(n: int = 400) -> dict:
    import training

    out = {"samples": n, "events_per_sample": 4000, "n_steps": 32, "dt": 0.01}
    with tempfile.TemporaryDirectory() as root:
        write_nmnist(root, n)
        for mode in ("count", "binary"):
            ds = training.read_nmnist(root, dt=0.01, n_steps=32, binning=mode)
            t0 = time.perf_counter()
            for b in training.batches((ds.inputs, ds.labels), np.arange(n), 50, prefetch=2):
                pass
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for b in training.batches((ds.inputs, ds.labels), np.arange(n), 50, prefetch=2):
                pass
            cached = time.perf_counter() - t0
            out[mode] = {
                "samples_per_s_from_files": n / first,
                "samples_per_s_from_cache": n / cached,
                "cached_bytes_per_sample": ds.inputs.nbytes_cached() / n,
            }
        out["float32_bytes_per_sample"] = 32 * 2 * 34 * 34 * 4
    return out


def devices() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 4):
            out = os.path.join(tmp, f"d{n}")
            cmd = [sys.executable, "-m", "nirjax", "train", "--devices", str(n), "--out", out,
                   "--no-progress"]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}:\n"
                                   f"{done.stderr[-4000:]}")
            wall = time.perf_counter() - t0
            m = json.load(open(os.path.join(out, "metrics.json")))
            runs[n] = {"command": " ".join(["nirjax"] + cmd[3:-3] + ["--out", "TMP",
                                                                     "--no-progress"]),
                       "test_accuracy": m["test_accuracy"], "test_loss": m["test_loss"],
                       "wall_seconds": wall, "steps_per_second": m["steps_per_second"],
                       "model": os.path.join(out, "model.nir")}
        import nir

        a, b = nir.read(runs[1]["model"]), nir.read(runs[4]["model"])
        diff = max(
            float(np.max(np.abs(np.asarray(a.nodes[k].weight) - np.asarray(b.nodes[k].weight))))
            for k in a.nodes if hasattr(a.nodes[k], "weight")
        )
    for r in runs.values():
        r.pop("model")
    return {"runs": {str(k): v for k, v in runs.items()}, "max_abs_weight_difference": diff,
            "environment": "XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = {
        "command": "PYTHONPATH=. python benchmarks/event_data.py "
        "--json benchmarks/results/event_data.json",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared with other work",
        "load_average_at_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d"),
        "nmnist_binning": binning(),
        "devices": devices(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
