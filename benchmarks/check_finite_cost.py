"""Cost of the finiteness check (Execution.check_finite) on a Linear -> LIF -> Linear -> LIF
network, forward and forward+backward, on whatever device JAX picks.

    python benchmarks/check_finite_cost.py [--batch 32] [--steps 500] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax


def network(n_in, hidden, n_out):
    rng = np.random.default_rng(0)

    def lif(n):
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    g = nir.NIRGraph.from_list(
        nir.Input(np.array([n_in])), nir.Linear(weight=rng.normal(0, 0.5, (hidden, n_in))),
        lif(hidden), nir.Linear(weight=rng.normal(0, 0.2, (n_out, hidden))), lif(n_out),
        nir.Output(np.array([n_out])), type_check=False)
    return nirjax.from_nir(g, dt=1e-3)


def timed(fn, *args, repeats=20):
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--hidden", type=int, default=256)
    a = p.parse_args()
    xs = jax.random.uniform(jax.random.PRNGKey(0), (a.batch, a.steps, 64)) * 2
    out = {"command": "python benchmarks/check_finite_cost.py " + " ".join(
        f"--{k} {v}" for k, v in vars(a).items()), "device": str(jax.devices()[0]),
        "machine": platform.machine(), "seconds": {}}
    for check in (False, True):
        g = network(64, a.hidden, 10).with_execution(check_finite=check)
        fwd = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))
        grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.sum(jax.vmap(m)(x))))
        out["seconds"][f"check_finite={check}"] = {"forward": timed(fwd, g, xs),
                                                   "forward+backward": timed(grad, g, xs)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
