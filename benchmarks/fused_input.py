"""Hoisted or fused input matmul? The two formulations of a Linear + LIF layer, in plain JAX.

- `hoisted` (what nirjax's plan runs outside cycles): the input matmul once over the whole time
  axis, `(T*B, N) @ (N, N)`, then a `lax.scan` of the elementwise LIF update;
- `fused` (what Spyx runs): one `lax.scan` whose step does the `(B, N) @ (N, N)` matmul and
  the LIF update.

Batch 16, 500 steps, Bernoulli(0.1) inputs, the LIF update of `lif_layer.py` (decay 0.95,
threshold 1, reset to zero, SuperSpike surrogate), plain autodiff for forward + backward.
Reports the median time of `--runs` calls (compile excluded) and XLA's temporary memory
(`memory_analysis().temp_size_in_bytes`, which does not depend on the machine's load). Results
to `benchmarks/results/fused_input.json` with the command, date and load.

    python benchmarks/fused_input.py --sizes 256 512 1024 2048
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH, STEPS = 16, 500


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "fused_input.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nirjax import atomic_path

    @jax.custom_jvp
    def spike(u):
        return (u > 0).astype(u.dtype)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        (u,), (du,) = primals, tangents
        return spike(u), du / (1.0 + 25.0 * jnp.abs(u)) ** 2

    def lif(v, i):
        v = 0.95 * v + i
        z = spike(v - 1.0)
        return v * (1.0 - z), z

    def hoisted(p, xt):
        w, b = p
        current = jnp.einsum("tbi,oi->tbo", xt, w) + b
        return jax.lax.scan(lif, jnp.zeros(current.shape[1:]), current)[1]

    def fused(p, xt):
        w, b = p
        return jax.lax.scan(lambda v, x: lif(v, x @ w.T + b),
                            jnp.zeros((xt.shape[1], w.shape[0])), xt)[1]

    def timed(fn, fargs):
        compiled = jax.jit(fn).lower(*fargs).compile()
        jax.block_until_ready(compiled(*fargs))
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(*fargs))
            times.append(time.perf_counter() - t0)
        return {"median_s": statistics.median(times), "times_s": times,
                "temp_mb": compiled.memory_analysis().temp_size_in_bytes / 2**20}

    doc = {"benchmark": "fused_input", "command": "python " + " ".join(sys.argv),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "loadavg_start": os.getloadavg(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
           "batch": BATCH, "steps": STEPS, "results": []}
    for n in args.sizes:
        rng = np.random.default_rng(0)
        xt = jnp.asarray((rng.random((STEPS, BATCH, n)) < 0.1).astype(np.float32))
        p = (jnp.asarray((rng.standard_normal((n, n)) * 1.5 / np.sqrt(n)).astype(np.float32)),
             jnp.zeros((n,), jnp.float32))
        for name, fn in (("hoisted", hoisted), ("fused", fused)):
            loss = jax.value_and_grad(lambda p, x, fn=fn: jnp.sum(fn(p, x)))
            row = {"n": n, "formulation": name, "fwd": timed(fn, (p, xt)),
                   "fwdbwd": timed(loss, (p, xt))}
            doc["results"].append(row)
            print(f"N={n:5d} {name:<8} fwd {1000 * row['fwd']['median_s']:8.1f} ms "
                  f"(temp {row['fwd']['temp_mb']:.0f} MB)  f+b "
                  f"{1000 * row['fwdbwd']['median_s']:8.1f} ms (temp "
                  f"{row['fwdbwd']['temp_mb']:.0f} MB)", flush=True)
            doc["loadavg_end"] = os.getloadavg()
            with atomic_path(args.out, ".json") as tmp, open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
