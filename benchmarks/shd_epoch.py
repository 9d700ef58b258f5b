"""One SHD-shaped training epoch on synthetic spikes, timed: nirjax, and optionally snnTorch.

The Spiking Heidelberg Digits training set has 8156 samples of 128 input channels; binned into
256 time steps it is a (8156, 256, 128) spike tensor with 20 classes. This benchmark builds a
synthetic tensor of that shape (each class fires a few channel groups at a higher rate, so the
task is learnable and the loss falls) and trains one epoch of

    Input(128) -> Affine(128x128) -> LIF(128) -> Affine(128x128) -> LIF(128)
               -> Affine(20x128) -> LI(20) -> Output

with Adam (optax, learning rate 1e-3), batch 128 (the last, short batch is padded and masked so
that every step has one shape), and cross-entropy on the readout's maximum voltage over time.
The network is a NIR graph imported with `nirjax.from_nir` (dt = 1e-3 s, tau = 20 ms,
r = tau/dt, threshold 1, reset to 0): per step `v <- 0.95 v + W x + b`. Only the weights and
biases are trained.

With `--peers`, the same network, loss and optimiser in snnTorch 1.0 (`nn.Linear` +
`snntorch.Leaky(beta=0.95, reset_mechanism="zero")`, the readout a `Leaky` with
`reset_mechanism="none"`), stepped in a Python loop over time, and `torch.optim.Adam`.

The nirjax graph runs as `training.fit` runs it: `with_execution(check_finite=False)` inside the
training step (fit checks the loss and the parameters once per epoch instead).

Timing: the jitted training step is compiled ahead of the epoch (compile time reported
separately); each step is synchronised (`block_until_ready` on the loss); the epoch time is the
wall time of all steps. Data generation is not timed.

    python benchmarks/shd_epoch.py                   # full epoch, nirjax only
    python benchmarks/shd_epoch.py --peers           # and snnTorch, with the time ratio
    python benchmarks/shd_epoch.py --samples 0.1     # a tenth of the epoch, for a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

SAMPLES = 8156
STEPS = 256
CHANNELS = 128
HIDDEN = 128
CLASSES = 20
BATCH = 128
DT = 1e-3
TAU = 20e-3
BETA = 1.0 - DT / TAU
LR = 1e-3
HERE = Path(__file__).resolve().parent


def make_data(samples: int, seed: int = 0):
    """Synthetic SHD-shaped spikes (samples, 256, 128) as uint8 and labels (samples,).

    Class c raises the firing probability of 3 random groups of 8 channels, each in its own
    window of 64 steps, from 2 % to 25 %."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prob = np.full((CLASSES, STEPS, CHANNELS), 0.02, np.float32)
    for c in range(CLASSES):
        for _ in range(3):
            ch = rng.integers(0, CHANNELS - 8)
            t0 = rng.integers(0, STEPS - 64)
            prob[c, t0:t0 + 64, ch:ch + 8] = 0.25
    labels = rng.integers(0, CLASSES, samples)
    x = np.empty((samples, STEPS, CHANNELS), np.uint8)
    for i in range(0, samples, BATCH):
        j = min(i + BATCH, samples)
        x[i:j] = rng.random((j - i, STEPS, CHANNELS), dtype=np.float32) < prob[labels[i:j]]
    return x, labels.astype(np.int32)


def batches(x, y):
    """Fixed-shape batches: the last one zero-padded, with a 0/1 mask of real samples."""
    import numpy as np

    n = len(y)
    for i in range(0, n, BATCH):
        j = min(i + BATCH, n)
        xb = np.zeros((BATCH, STEPS, CHANNELS), np.float32)
        yb = np.zeros((BATCH,), np.int32)
        mb = np.zeros((BATCH,), np.float32)
        xb[: j - i], yb[: j - i], mb[: j - i] = x[i:j], y[i:j], 1.0
        yield xb, yb, mb


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_nir(seed: int = 0):
    import nir
    import numpy as np

    rng = np.random.default_rng(seed)

    def dense(n_out, n_in, gain):
        w = rng.standard_normal((n_out, n_in)) * gain / np.sqrt(n_in)
        return nir.Affine(weight=w.astype(np.float32), bias=np.zeros(n_out, np.float32))

    def lif(n):
        tau = np.full(n, TAU, np.float32)
        return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n, np.float32),
                       v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))

    tau_out = np.full(CLASSES, TAU, np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([CHANNELS])}),
        "fc1": dense(HIDDEN, CHANNELS, 2.0),
        "lif1": lif(HIDDEN),
        "fc2": dense(HIDDEN, HIDDEN, 2.0),
        "lif2": lif(HIDDEN),
        "fc3": dense(CLASSES, HIDDEN, 1.0),
        "li": nir.LI(tau=tau_out, r=tau_out / DT, v_leak=np.zeros(CLASSES, np.float32)),
        "output": nir.Output(output_type={"output": np.array([CLASSES])}),
    }
    chain = ["input", "fc1", "lif1", "fc2", "lif2", "fc3", "li", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])))


def run_nirjax(x, y, execution=None) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    from tqdm import tqdm

    import nirjax

    # As `training.fit` runs a graph: without the per-step finiteness check (fit checks the
    # loss and the parameters once per epoch instead); `--execution` can turn it back on.
    graph = nirjax.from_nir(build_nir(), dt=DT).with_execution(check_finite=False)
    if execution:
        graph = graph.with_execution(**execution)
    # Train the weights and biases only (the time constants and thresholds stay fixed).
    trainable = jax.tree.map(lambda _: False, graph)
    for name in ("fc1", "fc2", "fc3"):
        trainable = eqx.tree_at(
            lambda g, name=name: (g.nodes[name].weight, g.nodes[name].bias),
            trainable, replace=(True, True),
        )
    params, static = eqx.partition(graph, trainable)
    optim = optax.adam(LR)
    opt_state = optim.init(params)

    def loss_fn(params, xb, yb, mb):
        model = eqx.combine(params, static)
        v = jax.vmap(model)(xb)  # (B, T, classes)
        logits = jnp.max(v, axis=1)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
        return jnp.sum(ce * mb) / jnp.sum(mb)

    @eqx.filter_jit
    def train_step(params, opt_state, xb, yb, mb):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(params, xb, yb, mb)
        updates, opt_state = optim.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss

    data = list(batches(x, y))
    xb0, yb0, mb0 = (jnp.asarray(a) for a in data[0])
    t0 = time.perf_counter()
    step = train_step.lower(params, opt_state, xb0, yb0, mb0).compile()
    compile_s = time.perf_counter() - t0

    losses, times = [], []
    t_epoch = time.perf_counter()
    for xb, yb, mb in tqdm(data, desc="nirjax epoch", unit="batch"):
        t0 = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, jnp.asarray(xb), jnp.asarray(yb),
                                       jnp.asarray(mb))
        losses.append(float(jax.block_until_ready(loss)))
        times.append(time.perf_counter() - t0)
    epoch_s = time.perf_counter() - t_epoch
    return {"epoch_s": epoch_s, "compile_s": compile_s, "step_median_s": statistics.median(times),
            "steps": len(times), "loss_first": losses[0], "loss_last": losses[-1],
            "loss_first5_mean": statistics.fmean(losses[:5]),
            "loss_last5_mean": statistics.fmean(losses[-5:]), "maxrss_mb": _maxrss_mb()}


def run_snntorch(x, y) -> dict:
    import snntorch
    import torch
    from tqdm import tqdm

    g = build_nir()
    nodes = g.nodes

    def linear(node):
        lin = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(node.weight))
            lin.bias.copy_(torch.as_tensor(node.bias))
        return lin

    fc1, fc2, fc3 = linear(nodes["fc1"]), linear(nodes["fc2"]), linear(nodes["fc3"])
    lif1 = snntorch.Leaky(beta=BETA, threshold=1.0, reset_mechanism="zero")
    lif2 = snntorch.Leaky(beta=BETA, threshold=1.0, reset_mechanism="zero")
    li = snntorch.Leaky(beta=BETA, threshold=1.0, reset_mechanism="none")
    params = [*fc1.parameters(), *fc2.parameters(), *fc3.parameters()]
    optim = torch.optim.Adam(params, lr=LR)
    ce = torch.nn.CrossEntropyLoss(reduction="none")

    def forward(xb):  # xb: (T, B, C)
        m1, m2, m3 = lif1.reset_mem(), lif2.reset_mem(), li.reset_mem()
        vs = []
        for t in range(xb.shape[0]):
            s1, m1 = lif1(fc1(xb[t]), m1)
            s2, m2 = lif2(fc2(s1), m2)
            _, m3 = li(fc3(s2), m3)
            vs.append(m3)
        return torch.stack(vs)

    losses, times = [], []
    t_epoch = time.perf_counter()
    for xb, yb, mb in tqdm(list(batches(x, y)), desc="snntorch epoch", unit="batch"):
        t0 = time.perf_counter()
        xt = torch.as_tensor(xb).transpose(0, 1)
        optim.zero_grad(set_to_none=True)
        logits = forward(xt).amax(dim=0)
        m = torch.as_tensor(mb)
        loss = (ce(logits, torch.as_tensor(yb, dtype=torch.long)) * m).sum() / m.sum()
        loss.backward()
        optim.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - t0)
    epoch_s = time.perf_counter() - t_epoch
    return {"epoch_s": epoch_s, "compile_s": None, "step_median_s": statistics.median(times),
            "steps": len(times), "loss_first": losses[0], "loss_last": losses[-1],
            "loss_first5_mean": statistics.fmean(losses[:5]),
            "loss_last5_mean": statistics.fmean(losses[-5:]), "maxrss_mb": _maxrss_mb()}


def _atomic_write_json(path: Path, obj) -> None:
    from nirjax import atomic_path

    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=float, default=1.0,
                    help="fraction of the 8156 samples (<= 1) or a sample count (> 1)")
    ap.add_argument("--peers", action="store_true", help="also run the epoch in snnTorch")
    ap.add_argument("--execution", type=json.loads, default=None,
                    help="JSON dict of Graph.with_execution options for nirjax")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch (set_num_threads); 1 also makes XLA's CPU backend "
                    "single-threaded. Default: each library's own default")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file (default benchmarks/results/shd_epoch_<platform>.json)")
    args = ap.parse_args(argv)
    samples = int(round(args.samples * SAMPLES)) if args.samples <= 1 else int(args.samples)
    if samples < 1:
        raise SystemExit("--samples: need at least one sample.")

    if args.threads:
        os.environ.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        if args.threads == 1:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_"
                                       "thread_eigen=false intra_op_parallelism_threads=1").strip()
    import jax

    platform_name = jax.devices()[0].platform
    out_path = args.out or HERE / "results" / f"shd_epoch_{platform_name}.json"
    t0 = time.perf_counter()
    x, y = make_data(samples)
    gen_s = time.perf_counter() - t0
    doc = {"benchmark": "shd_epoch", "command": "python " + " ".join(sys.argv),
           "samples": samples, "steps": STEPS, "channels": CHANNELS,
           "hidden": HIDDEN, "classes": CLASSES, "batch": BATCH, "data_gen_s": gen_s,
           "device": str(jax.devices()[0]), "threads": args.threads,
           "loadavg_start": os.getloadavg(),
           "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": {}}
    doc["results"]["nirjax"] = run_nirjax(x, y, args.execution)
    _atomic_write_json(out_path, doc)
    if args.peers:
        try:
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            doc["results"]["snntorch"] = run_snntorch(x, y)
        except ImportError as e:
            doc["results"]["snntorch"] = {"error": f"{e} (pip install -e '.[bench]')"}
    doc["loadavg_end"] = os.getloadavg()
    _atomic_write_json(out_path, doc)

    nj = doc["results"]["nirjax"]
    print(f"\nSHD-shaped epoch: {samples} samples x {STEPS} steps x {CHANNELS} channels, batch "
          f"{BATCH}, {nj['steps']} Adam steps; load average {doc['loadavg_start']} -> "
          f"{doc['loadavg_end']}")
    print(f"{'impl':<10} {'epoch s':>9} {'step ms':>9} {'compile s':>10} {'loss first5':>12} "
          f"{'loss last5':>11} {'rss MB':>8}")
    for name, r in doc["results"].items():
        if "error" in r:
            print(f"{name:<10} ERROR {r['error']}")
            continue
        comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        print(f"{name:<10} {r['epoch_s']:9.2f} {1000 * r['step_median_s']:9.1f} {comp:>10} "
              f"{r['loss_first5_mean']:12.3f} {r['loss_last5_mean']:11.3f} {r['maxrss_mb']:8.0f}")
    if "snntorch" in doc["results"] and "error" not in doc["results"]["snntorch"]:
        ratio = doc["results"]["snntorch"]["epoch_s"] / nj["epoch_s"]
        doc["snntorch_over_nirjax"] = ratio
        _atomic_write_json(out_path, doc)
        print(f"snntorch / nirjax epoch time: {ratio:.2f}")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
