"""Continuous time (diffrax) against the discrete scans: run time and spike-time error.

Two experiments, both at dt = 1e-4 s:

1. the NIR paper's single LIF (Input -> Affine -> LIF, tau 2.5 ms, threshold 0.1) driven by
   the paper's 34 input spikes over 0.1 s (read as currents held over each step, as the
   discrete methods read them; a pseudo-random input of 34 spikes if the conformance folder is
   absent);
2. a recurrent network of 100 CubaLIF neurons (tau_syn 5 ms, tau_mem 10 ms), 20 Poisson inputs
   at 50 Hz, random input and recurrent weights, over 1 s (10 000 steps);
3. (errors only) the same network over 0.2 s with a dt-independent meaning (impulse inputs),
   Euler and exact at dt = 1e-4, 1e-5, 1e-6 against the diffrax reference.

Each method is timed as the first call (compile + run) and the median of `--repeats` further
calls (jitted, `block_until_ready`). Spike-time errors are measured against the diffrax
reference with `nirjax.compare`'s matching (window 10 dt; a discrete spike in step k is at
k dt). Writes JSON (atomically).

    python benchmarks/continuous.py [--repeats 5] [--out benchmarks/results/continuous.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
from tqdm import tqdm

import nirjax

DT = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.join(HERE, "..", "..", "shared", "conformance", "lif")


def paper_lif():
    graph = nirjax.from_nir(nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "0": nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0])),
            "1": nir.LIF(tau=np.array([0.0025]), r=np.array([1.0]), v_leak=np.array([0.0]),
                         v_threshold=np.array([0.1]), v_reset=np.array([0.0])),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "0"), ("0", "1"), ("1", "output")],
    ), dt=DT)
    path = os.path.join(CONFORMANCE, "lif_exact.csv")
    if os.path.exists(path):
        xs, source = np.loadtxt(path, delimiter=",")[:, :1], "lif_exact.csv column 0"
    else:
        xs = np.zeros((1000, 1))
        xs[np.random.default_rng(1).choice(np.arange(50, 900), 34, replace=False), 0] = 1.0
        source = "34 pseudo-random spikes"
    return graph, xs.astype(np.float32), source


def recurrent_cubalif(n=100, n_in=20, seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    one = np.ones(n)
    graph = nirjax.from_nir(nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            "w_in": nir.Linear(weight=rng.uniform(0.0, 20.0, (n, n_in))),
            "lif": nir.CubaLIF(tau_syn=0.005 * one, tau_mem=0.01 * one, r=one,
                               v_leak=np.zeros(n), v_threshold=one, v_reset=np.zeros(n),
                               w_in=one),
            "w_rec": nir.Linear(weight=rng.normal(0.0, 40.0 / np.sqrt(n), (n, n))),
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
               ("lif", "output")],
    ), dt=DT)
    steps = round(seconds / DT)
    xs = (rng.uniform(size=(steps, n_in)) < 50.0 * DT).astype(np.float32)
    return graph, xs


def timed(fn, repeats, label):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in tqdm(range(repeats), desc=label, leave=False):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return out, {"first_call_s": first, "median_s": statistics.median(runs), "runs_s": runs}


def spike_errors(ref_trains, trains, window):
    errs, matched = [], 0
    for a, b in zip(ref_trains, trains):
        pairs = nirjax.match_spikes(a, b, window)
        matched += len(pairs)
        errs += [abs(a[i] - b[j]) for i, j in pairs]
    n_ref, n = sum(map(len, ref_trains)), sum(map(len, trains))
    return {
        "ref_spikes": n_ref, "spikes": n, "matched": matched, "missed": n_ref - matched,
        "extra": n - matched,
        "mean_abs_dt_s": float(np.mean(errs)) if errs else None,
        "max_abs_dt_s": float(np.max(errs)) if errs else None,
        "mean_abs_dt_steps": float(np.mean(errs) / DT) if errs else None,
    }


def experiment(name, graph, xs, node, repeats):
    xs = jnp.asarray(xs)
    sim = eqx.filter_jit(lambda g, x: nirjax.simulate_continuous(g, x, input_kind="current"))
    ref, t_ref = timed(lambda: sim(graph, xs), repeats, f"{name} diffrax")
    ref_trains = nirjax.trains_from_times(np.asarray(ref.spike_times[node]))
    result = {"diffrax": {"timing": t_ref, "spikes": int(sum(map(len, ref_trains)))}}
    run = eqx.filter_jit(lambda g, x: g.run(x, record=(node,)).record[node]["output"])
    for method in ("euler", "exact"):
        g = graph.with_options(discretization=method)
        z, t = timed(lambda g=g: run(g, xs), repeats, f"{name} {method}")
        trains = nirjax.trains_from_grid(np.asarray(z), DT, 0.0)
        result[method] = {"timing": t, **spike_errors(ref_trains, trains, 10 * DT)}
    return result


def convergence(seconds=0.2, dts=(1e-4, 1e-5, 1e-6)):
    """The recurrent network with a dt-independent meaning (input_mode="impulse": every spike is
    an impulse of area 1, weights scaled by 1e-4 = the charge of a spike at dt = 1e-4; inputs at
    the same instants on every grid): the discrete methods' spike-time error against the diffrax
    reference as dt shrinks."""
    graph, xs = recurrent_cubalif(seconds=seconds)
    g = nirjax.to_nir(graph)
    for key in ("w_in", "w_rec"):
        g.nodes[key] = nir.Linear(weight=np.asarray(g.nodes[key].weight) * 1e-4)
    ref_graph = nirjax.from_nir(g, dt=DT, input_mode="impulse")
    ref = nirjax.simulate_continuous(ref_graph, jnp.asarray(xs), input_kind="spikes")
    ref_trains = nirjax.trains_from_times(np.asarray(ref.spike_times["lif"]))
    run = eqx.filter_jit(lambda m, x: m.run(x, record=("lif",)).record["lif"]["output"])
    rows = []
    for dt in tqdm(dts, desc="convergence", leave=False):
        up = round(DT / dt)
        x = np.zeros((xs.shape[0] * up, xs.shape[1]), np.float32)
        x[::up] = xs
        for method in ("euler", "exact"):
            m = nirjax.from_nir(g, dt=dt, input_mode="impulse", discretization=method)
            z = np.asarray(run(m, jnp.asarray(x)))
            rows.append({"dt": dt, "method": method,
                         **spike_errors(ref_trains, nirjax.trains_from_grid(z, dt, 0.0), 1e-3)})
    return {"seconds": seconds, "ref_spikes": int(sum(map(len, ref_trains))), "rows": rows}


def write_json(path, data):
    with nirjax.atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "continuous.json"))
    args = parser.parse_args()
    graph, xs, source = paper_lif()
    out = {
        "dt": DT,
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "single_lif": {"input": source, "steps": int(xs.shape[0]),
                       **experiment("single LIF", graph, xs, "1", args.repeats)},
    }
    graph, xs = recurrent_cubalif()
    out["recurrent_cubalif_100"] = {"steps": int(xs.shape[0]),
                                    **experiment("CubaLIF x100", graph, xs, "lif", args.repeats)}
    out["recurrent_convergence"] = convergence()
    write_json(args.out, out)
    for key in ("single_lif", "recurrent_cubalif_100"):
        r = out[key]
        print(f"{key}: {r['steps']} steps")
        for m in ("diffrax", "euler", "exact"):
            t = r[m]["timing"]
            line = (f"  {m:<8} first call {t['first_call_s']:.2f} s, "
                    f"median {t['median_s'] * 1e3:.1f} ms")
            if m == "diffrax":
                line += f", {r[m]['spikes']} spikes"
            else:
                line += (f", spikes {r[m]['spikes']} (ref {r[m]['ref_spikes']}), missed "
                         f"{r[m]['missed']}, extra {r[m]['extra']}, mean |dt| "
                         f"{r[m]['mean_abs_dt_steps']:.3f} steps, max {r[m]['max_abs_dt_s']:.2e} s")
            print(line)
    c = out["recurrent_convergence"]
    print(f"recurrent network, impulse semantics, {c['seconds']} s, {c['ref_spikes']} reference "
          "spikes:")
    for r in c["rows"]:
        print(f"  dt {r['dt']:g} {r['method']:<6} missed {r['missed']}, extra {r['extra']}, "
              f"mean |dt| {r['mean_abs_dt_s']:.3g} s")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
