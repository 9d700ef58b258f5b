"""Below the dense bound? The input matmul of a spiking layer with sparse spike inputs.

A layer's input matmul `(T*B, N_in) @ (N_in, N_out)` (batch 16, 500 steps, as in
`lif_layer.py`) with Bernoulli spike inputs at rates 1, 5, 10 and 20 %, three ways, forward and
forward + backward (the weight gradient `x^T g` for a fixed dense cotangent g):

- `dense`: `x @ W` (XLA's dot; what nirjax runs);
- `bcoo`: `jax.experimental.sparse` (`BCOO` of the spikes, built outside the timed call, with
  `nse` the largest number of spikes; `x @ W` as `bcoo_dot_general`);
- `gather`: the active rows of W summed per time step and sample: the spike indices padded to
  the largest count per row `k`, `sum_j W[idx[r, j]]` (padding points at an all-zero row), run in
  chunks of rows so the gathered block stays small.

The spikes' conversion to indices is not timed (event data arrive as indices). The median of
`--runs` timed calls after one warm-up; compile excluded. Results to
`benchmarks/results/sparse_input.json` with the command, date and load.

    python benchmarks/sparse_input.py                 # N = 1024, rates 1 5 10 20 %
    python benchmarks/sparse_input.py --sizes 512 2048
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

BATCH, STEPS = 16, 500
HERE = Path(__file__).resolve().parent
CHUNK = 256  # rows per gather block


def _time(fn, args, runs):
    import jax

    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    temp = compiled.memory_analysis().temp_size_in_bytes / 2**20
    return {"median_s": statistics.median(times), "times_s": times, "temp_mb": temp}


def run(n: int, rate: float, runs: int, methods=("dense", "bcoo", "gather")) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import sparse

    rng = np.random.default_rng(0)
    rows = BATCH * STEPS
    x = (rng.random((rows, n)) < rate).astype(np.float32)
    w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)  # (N_in, N_out)
    g = jnp.asarray(rng.standard_normal((rows, n)).astype(np.float32))
    counts = x.sum(1).astype(int)
    k = max(1, int(counts.max()))
    idx = np.full((rows, k), n, np.int32)  # n: the zero row appended to W
    for r in range(rows):
        nz = np.flatnonzero(x[r])
        idx[r, : len(nz)] = nz
    pad = (-rows) % CHUNK
    idx = jnp.asarray(np.concatenate([idx, np.full((pad, k), n, np.int32)]))
    xd, wj = jnp.asarray(x), jnp.asarray(w)
    xs = sparse.BCOO.fromdense(xd, nse=int(counts.sum())) if "bcoo" in methods else None

    def dense(w, x):
        return x @ w

    def bcoo(w, x):
        return x @ w

    def gather(w, idx):
        wz = jnp.concatenate([w, jnp.zeros((1, w.shape[1]), w.dtype)])
        blocks = idx.reshape(-1, CHUNK, idx.shape[1])
        out = jax.lax.map(lambda b: jnp.take(wz, b, axis=0).sum(1), blocks)
        return out.reshape(-1, w.shape[1])[:rows]

    out = {"n": n, "rate": rate, "k_max": k, "mean_spikes_per_row": float(counts.mean())}
    ref = np.asarray(dense(wj, xd))
    for name, fn, arg in (("dense", dense, xd), ("bcoo", bcoo, xs), ("gather", gather, idx)):
        if name not in methods:
            continue
        got = np.asarray(jax.jit(fn)(wj, arg))
        err = float(np.abs(got - ref).max())
        fwd = _time(fn, (wj, arg), runs)

        def loss(w, a, g, fn=fn):
            return jnp.vdot(fn(w, a), g)

        fb = _time(jax.value_and_grad(loss), (wj, arg, g), runs)
        out[name] = {"fwd": fwd, "fwdbwd": fb, "max_abs_diff_vs_dense": err}
        print(f"N={n} rate={rate:.2f} {name:<7} fwd {1000 * fwd['median_s']:8.1f} ms  "
              f"f+b {1000 * fb['median_s']:8.1f} ms  temp {fb['temp_mb']:.0f} MB  "
              f"(max |diff| {err:.1e})", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.05, 0.10, 0.20])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--methods", nargs="+", default=["dense", "bcoo", "gather"],
                    choices=["dense", "bcoo", "gather"],
                    help="bcoo needs temporary memory that grows with the spike count")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "sparse_input.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    from nirjax import atomic_path

    doc = {"benchmark": "sparse_input", "command": "python " + " ".join(sys.argv),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "loadavg_start": os.getloadavg(), "cpu_count": os.cpu_count(),
           "jax": jax.__version__, "batch": BATCH, "steps": STEPS, "results": []}
    for n in args.sizes:
        for rate in args.rates:
            doc["results"].append(run(n, rate, args.runs, args.methods))
            doc["loadavg_end"] = os.getloadavg()
            with atomic_path(args.out, ".json") as tmp, open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
