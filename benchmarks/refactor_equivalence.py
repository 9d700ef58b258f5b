"""Old vs new: every built-in neuron under every option, the conformance graphs, and the
continuous-time solver, run on fixed random inputs; outputs saved to an .npz (`--save`) or
compared against a saved one (`--against`): spikes must be identical, voltages within float32
rounding.

    python benchmarks/refactor_equivalence.py --save old.npz        # at the old commit
    python benchmarks/refactor_equivalence.py --against old.npz     # at the new one
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax

N = 6
T = 200
DT = 1e-3


def neurons():
    rng = np.random.default_rng(0)
    tau = lambda: rng.uniform(5e-3, 30e-3, N)  # noqa: E731
    return {
        "I": nir.I(r=rng.uniform(0.5, 2, N)),
        "IF": nir.IF(r=rng.uniform(50, 200, N), v_threshold=np.ones(N), v_reset=np.zeros(N)),
        "LI": nir.LI(tau=tau(), r=rng.uniform(0.5, 2, N), v_leak=rng.normal(0, 0.1, N)),
        "LIF": nir.LIF(tau=tau(), r=rng.uniform(1, 3, N), v_leak=rng.normal(0, 0.1, N),
                       v_threshold=np.ones(N), v_reset=rng.normal(0, 0.1, N)),
        "CubaLI": nir.CubaLI(tau_syn=tau(), tau_mem=tau(), r=rng.uniform(1, 3, N),
                             v_leak=np.zeros(N), w_in=rng.uniform(0.5, 2, N)),
        "CubaLIF": nir.CubaLIF(tau_syn=np.r_[tau()[:3], np.full(3, 0.01)],
                               tau_mem=np.r_[tau()[:3], np.full(3, 0.01)], r=rng.uniform(1, 3, N),
                               v_leak=np.zeros(N), v_threshold=np.full(N, 0.5),
                               v_reset=np.zeros(N), w_in=rng.uniform(1, 4, N)),
    }


def graph_of(node):
    return nir.NIRGraph(
        nodes={"in": nir.Input(np.array([N])), "w": nir.Affine(np.eye(N) * 3, np.zeros(N)),
               "n": node, "out": nir.Output(np.array([N]))},
        edges=[("in", "w"), ("w", "n"), ("n", "out")])


def run_all() -> dict:
    out = {}
    rng = np.random.default_rng(1)
    xs = jnp.asarray((rng.random((T, N)) < 0.3).astype(np.float32))
    options = itertools.product(("euler", "exact"), ("value", "subtract"),
                                ("current", "impulse"), ("current_first", "voltage_first"))
    for (name, node), (disc, reset, mode, order) in itertools.product(neurons().items(),
                                                                     list(options)):
        g = nirjax.from_nir(graph_of(node), dt=DT, discretization=disc, reset=reset,
                            input_mode=mode, cuba_order=order)
        res = g.run(xs, record=["n"])
        key = f"{name}/{disc}/{reset}/{mode}/{order}"
        out[key + "/y"] = np.asarray(res.output)
        for var, v in res.record["n"].items():
            out[f"{key}/{var}"] = np.asarray(v)
    conf = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "conformance")
    for rel in ("lif/lif_norse.nir", "braille/braille_noDelay_bias_zero.nir",
                "braille/braille_noDelay_noBias_subtract.nir", "cnn/cnn_sinabs.nir"):
        path = os.path.join(conf, rel)
        if not os.path.exists(path):
            continue
        g = nirjax.from_nir(nirjax.read(path), dt=1e-4)
        shape = g.input_shapes()
        x = jnp.asarray((rng.random((60, *shape)) < 0.2).astype(np.float32))
        out[rel] = np.asarray(g(x))
    lif = nirjax.from_nir(graph_of(neurons()["LIF"]), dt=DT)
    res = nirjax.simulate_continuous(lif, xs[:50])
    out["continuous/LIF/times"] = np.asarray(res.spike_times["n"])
    out["continuous/LIF/v"] = np.asarray(res.record["n"]["v"])
    cuba = nirjax.from_nir(graph_of(neurons()["CubaLIF"]), dt=DT)
    res = nirjax.simulate_continuous(cuba, xs[:50], max_spikes_per_step=8)
    out["continuous/CubaLIF/times"] = np.asarray(res.spike_times["n"])
    out["continuous/CubaLIF/v"] = np.asarray(res.record["n"]["v"])
    return out


def cubalif_exact_reference() -> np.ndarray:
    """The CubaLIF "exact" case in float64 with SciPy's matrix exponential (an independent
    judge of the two float32 implementations)."""
    import scipy.linalg

    node = neurons()["CubaLIF"]
    rng = np.random.default_rng(1)
    xs = (rng.random((T, N)) < 0.3).astype(np.float64) * 3  # through the Affine (gain 3)
    i, v, out = np.zeros(N), np.zeros(N), []
    for t in range(T):
        for n in range(N):
            A = np.array([[-1 / node.tau_syn[n], 0], [node.r[n] / node.tau_mem[n],
                                                       -1 / node.tau_mem[n]]])
            c = np.array([node.w_in[n] * xs[t, n] / node.tau_syn[n],
                          node.v_leak[n] / node.tau_mem[n]])
            aug = np.zeros((4, 4))
            aug[:2, :2], aug[:2, 2:] = A * DT, np.eye(2) * DT
            E = scipy.linalg.expm(aug)
            i[n], v[n] = E[:2, :2] @ np.array([i[n], v[n]]) + E[:2, 2:] @ c
        z = v > node.v_threshold
        v = np.where(z, node.v_reset, v)
        out.append(v.copy())
    return np.array(out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--save")
    p.add_argument("--against")
    p.add_argument("--json", help="write the comparison summary here")
    p.add_argument("--old-label", default="", help="which code made the saved outputs")
    p.add_argument("--new-label", default="", help="which code runs now")
    a = p.parse_args()
    out = run_all()
    if a.save:
        np.savez(a.save, **out)
        print(f"saved {len(out)} arrays to {a.save}")
    if a.against:
        old = dict(np.load(a.against))
        worst_v, spike_diff, missing = 0.0, 0, []
        for k, ref in old.items():
            if k not in out:
                missing.append(k)
                continue
            new = out[k]
            spiking = k.endswith("/y") and set(np.unique(ref)) <= {0.0, 1.0} and "LI/" not in k
            if spiking or k.endswith(".nir") or k.endswith("times"):
                if k.endswith("times"):
                    both = np.isfinite(ref) & np.isfinite(new)
                    spike_diff += int(np.sum(np.isfinite(ref) != np.isfinite(new)))
                    if both.any():
                        worst_v = max(worst_v, float(np.max(np.abs(ref[both] - new[both])) / DT))
                else:
                    spike_diff += int(np.sum(ref != new))
            else:
                scale = max(1.0, float(np.max(np.abs(ref))))
                worst_v = max(worst_v, float(np.max(np.abs(ref - new))) / scale)
        key = "CubaLIF/exact/value/current/current_first/v"
        ref64 = cubalif_exact_reference()
        summary = {"command": "python benchmarks/refactor_equivalence.py --against OLD.npz",
                   "old": a.old_label, "new": a.new_label,
                   "arrays": len(old), "missing": missing, "spike_differences": spike_diff,
                   "max_relative_value_difference": worst_v,
                   "cubalif_exact_max_error_vs_float64": {
                       "old": float(np.max(np.abs(old[key] - ref64))),
                       "new": float(np.max(np.abs(out[key] - ref64)))},
                   "jax": jax.__version__}
        print(json.dumps(summary, indent=1))
        if a.json:
            with nirjax.atomic_path(a.json, ".json") as tmp, open(tmp, "w") as f:
                json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
