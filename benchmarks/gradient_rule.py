"""The derived reverse pass against plain autodiff (and Spyx), interleaved in one process.

For each layer of `lif_layer.py` (`lif`, `cubalif`, `rlif`) and each N: nirjax forward +
backward under `gradient="custom"` (the default) and `gradient="autodiff"`, and Spyx's
equivalent layer, each compiled once; then `--rounds` rounds in which every variant is called
once, in turn. The medians over the rounds are comparable even when the machine's load drifts,
because every variant sees the same drift. XLA's temporary memory
(`memory_analysis().temp_size_in_bytes`) does not depend on the load at all.

    python benchmarks/gradient_rule.py --sizes 1024 2048
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--layers", nargs="+", default=["lif", "cubalif", "rlif"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-spyx", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gradient_rule.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import lif_layer as L

    from nirjax import atomic_path

    doc = {"benchmark": "gradient_rule", "command": "python " + " ".join(sys.argv),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "loadavg_start": os.getloadavg(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
           "batch": L.BATCH, "steps": L.STEPS, "results": []}
    for layer in args.layers:
        for n in args.sizes:
            x, w, b = L._data(n)
            xs = jnp.asarray(x)
            variants = {}
            for grad in ("custom", "autodiff"):
                graph = L._nirjax_graph(n, w, b, None, layer, grad)
                fn = eqx.filter_jit(eqx.filter_value_and_grad(
                    lambda m, xs: jnp.sum(jax.vmap(m)(xs))))
                compiled = fn.lower(graph, xs).compile()
                variants[f"nirjax {grad}"] = (compiled, (graph, xs),
                                              getattr(compiled, "compiled", compiled))
            if not args.no_spyx:
                try:
                    import spyx.nn as snn
                    from flax import nnx
                except ImportError:
                    snn = None
                if snn is not None:
                    rngs = nnx.Rngs(0)
                    neuron = {"lif": lambda: snn.LIF((n,), beta=L.BETA, threshold=1.0, rngs=rngs),
                              "cubalif": lambda: snn.CuBaLIF((n,), alpha=L.ALPHA, beta=L.BETA,
                                                             threshold=1.0, rngs=rngs),
                              "rlif": lambda: snn.RLIF((n,), beta=L.BETA, threshold=1.0,
                                                       rngs=rngs)}[layer]()
                    model = snn.Sequential(nnx.Linear(n, n, rngs=rngs), neuron)
                    model.layers[0].kernel[...] = jnp.asarray(w.T)
                    if layer == "rlif":
                        model.layers[1].recurrent_w[...] = jnp.asarray(L._recurrent_weight(n).T)
                    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
                    xt = jnp.asarray(x.transpose(1, 0, 2))

                    def loss(p, xt, graphdef=graphdef, rest=rest):
                        return jnp.sum(snn.run(nnx.merge(graphdef, p, rest), xt)[0])

                    c = jax.jit(jax.value_and_grad(loss)).lower(params, xt).compile()
                    variants["spyx"] = (c, (params, xt), c)
            times = {k: [] for k in variants}
            for c, a, _ in variants.values():
                jax.block_until_ready(c(*a))
            for _ in range(args.rounds):
                for k, (c, a, _) in variants.items():
                    t0 = time.perf_counter()
                    jax.block_until_ready(c(*a))
                    times[k].append(time.perf_counter() - t0)
            row = {"layer": layer, "n": n}
            for k, (_, _, inner) in variants.items():
                row[k] = {"median_s": statistics.median(times[k]), "times_s": times[k],
                          "temp_mb": inner.memory_analysis().temp_size_in_bytes / 2**20}
            doc["results"].append(row)
            c, a = row["nirjax custom"], row["nirjax autodiff"]
            line = (f"{layer:<8} N={n:5d} custom {1000 * c['median_s']:8.1f} ms ({c['temp_mb']:.0f}"
                    f" MB)  autodiff {1000 * a['median_s']:8.1f} ms ({a['temp_mb']:.0f} MB)  "
                    f"autodiff/custom {a['median_s'] / c['median_s']:.2f}")
            if "spyx" in row:
                s = row["spyx"]
                line += (f"  spyx {1000 * s['median_s']:8.1f} ms ({s['temp_mb']:.0f} MB) "
                         f"spyx/custom {s['median_s'] / c['median_s']:.2f}")
            print(line, flush=True)
            doc["loadavg_end"] = os.getloadavg()
            with atomic_path(args.out, ".json") as tmp, open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
