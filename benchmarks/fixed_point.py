"""Fixed-point execution against the chips' references.

    python benchmarks/fixed_point.py [--conformance ../shared/conformance]

Writes `benchmarks/results/fixed_point.json` (atomically):

- Loihi 2: `nirjax.fixed_point(lif_norse.nir, "loihi2")` on the paper's input against
  `lif_lava_loihi_fixed.csv` (the recording from the chip): equal voltage values out of 1000,
  the largest difference, the spike steps of both.
- Xylo: a random recurrent CubaLIF network (16 inputs, 64 hidden, 8 outputs, 2000 steps, 4
  samples) through `nirjax.fixed_point(..., "xylo")` against SynSense's `xylosim.v2.XyloLayer`
  (the simulator Rockpool's XyloSim wraps) with the same integers: mismatching values of the
  hidden and output voltages, currents and spikes. Skipped (recorded as such) without xylosim.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import nir
import numpy as np

import nirjax

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "fixed_point.json")


def loihi(conformance: str) -> dict:
    lif = os.path.join(conformance, "lif")
    d = np.loadtxt(os.path.join(lif, "lif_lava_loihi_fixed.csv"), delimiter=",")
    chip = nirjax.fixed_point(os.path.join(lif, "lif_norse.nir"), "loihi2", dt=1e-4)
    res = chip.run(jnp.asarray(d[:, :1], jnp.float32), record=["1"])
    v = np.asarray(res.record["1"]["v"])[:, 0]
    z = np.asarray(res.output)[:, 0]
    return {"values": int(v.size), "equal_values": int(np.sum(v == d[:, 1])),
            "max_abs_difference": float(np.abs(v - d[:, 1]).max()),
            "spike_steps": np.nonzero(z)[0].tolist(),
            "recorded_spike_steps": np.nonzero(d[:, 2])[0].tolist(),
            "constants": {"dv": int(chip.nodes["1"].dv[0]), "du": int(chip.nodes["1"].du[0]),
                          "vth": int(chip.nodes["1"].vth[0]),
                          "weight": int(chip.nodes["0"].weight[0, 0])}}


def xylo(n_in=16, n_h=64, n_out=8, T=2000, S=4, dt=1e-3) -> dict:
    try:
        import xylosim.v2 as xv2
    except ImportError:
        return {"skipped": "xylosim not installed (pip install --no-deps xylosim)"}
    rng = np.random.default_rng(0)

    def cuba(n, ts, tm, thr):
        return nir.CubaLIF(tau_syn=np.full(n, ts), tau_mem=np.full(n, tm), r=np.full(n, tm / dt),
                           v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                           v_reset=np.zeros(n), w_in=np.full(n, ts / dt))

    nodes = {"in": nir.Input(np.array([n_in])),
             "w_in": nir.Linear(rng.normal(0.05, 0.3, (n_h, n_in))),
             "h": cuba(n_h, 4 * dt, 16 * dt, 20.0),
             "w_rec": nir.Linear(rng.normal(-0.02, 0.15, (n_h, n_h))),
             "w_out": nir.Linear(rng.normal(0.1, 0.4, (n_out, n_h))),
             "o": cuba(n_out, 2 * dt, 32 * dt, 6.0), "out": nir.Output(np.array([n_out]))}
    edges = [("in", "w_in"), ("w_in", "h"), ("h", "w_rec"), ("w_rec", "h"), ("h", "w_out"),
             ("w_out", "o"), ("o", "out")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    chip = nirjax.fixed_point(graph, "xylo", dt=dt, reset="subtract",
                              threshold_comparison="greater_equal")
    xs = rng.poisson(0.3, (S, T, n_in)).astype(np.float32)
    res = jax.vmap(lambda x: chip.run(x, record=["h", "o"]))(jnp.asarray(xs))
    h, o = chip.nodes["h"], chip.nodes["o"]

    def syn(w):
        return [[xv2.XyloSynapse(int(j), 0, int(w[i, j])) for j in np.nonzero(w[i])[0]]
                for i in range(w.shape[0])]

    ints = lambda a: [int(v) for v in np.asarray(a)]  # noqa: E731
    args = (syn(np.asarray(chip.nodes["w_in"].weight).T),
            syn(np.asarray(chip.nodes["w_rec"].weight).T),
            syn(np.asarray(chip.nodes["w_out"].weight).T), [[] for _ in range(n_h)],
            ints(h.threshold), ints(o.threshold), False, [0] * n_h, [0] * n_out, 0, 0, 0,
            ints(h.dash_mem), ints(o.dash_mem), [[int(d), 0] for d in np.asarray(h.dash_syn)],
            [[int(d)] for d in np.asarray(o.dash_syn)], "reference")
    mism = {"hidden_v": 0, "hidden_I": 0, "hidden_spikes": 0, "output_v": 0, "output_spikes": 0}
    spikes, out_spikes = 0, 0
    for b in range(S):
        layer = xv2.XyloLayer(*args)
        out = np.array(layer.evolve(xs[b].astype(int).tolist()))
        pairs = {"hidden_v": (res.record["h"]["v"], layer.rec_v_mem, True),
                 "hidden_I": (res.record["h"]["I"], layer.rec_i_syn, True),
                 "hidden_spikes": (res.record["h"]["output"], layer.rec_recurrent_spikes, False),
                 "output_v": (res.record["o"]["v"], layer.rec_v_mem_out, True),
                 "output_spikes": (res.output, out, False)}
        for k, (ours, ref, transpose) in pairs.items():
            ref = np.array(ref).T if transpose else np.array(ref)
            mism[k] += int(np.sum(np.asarray(ours)[b] != ref))
        spikes += int(np.array(layer.rec_recurrent_spikes).sum())
        out_spikes += int(out.sum())
    return {"network": f"{n_in} inputs, {n_h} recurrent hidden CubaLIF, {n_out} output CubaLIF",
            "steps": T, "samples": S, "hidden_spikes": spikes,
            "hidden_spikes_per_neuron_step": spikes / (S * T * n_h), "output_spikes": out_spikes,
            "mismatching_values": mism}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conformance", default=os.path.join(HERE, "..", "..", "shared",
                                                          "conformance"))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    result = {"command": "python benchmarks/fixed_point.py", "loihi2": loihi(args.conformance),
              "xylo": xylo()}
    print(json.dumps(result, indent=1))
    with nirjax.atomic_path(args.out) as tmp, open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
