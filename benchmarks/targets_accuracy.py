"""Accuracy on a chip target: the float model, the same model quantized after training, the
model trained with quantization-aware training (QAT), and, where the fixed-point executor
exists (`nirjax.fixed_point`), the QAT model run in the chip's integer arithmetic.

    python benchmarks/targets_accuracy.py [--json benchmarks/results/targets_accuracy.json]
                                          [--cases xylo-manifolds,loihi2-digits,...] [--cli]

For each case the network is `training.target_network(target, ...)` with the target's options
(`training.target_options`), trained twice with the same seed and settings: once in float
(`training.fit`) and once with `training.fit(..., target=...)` (what `nirjax train --target`
runs). Reported per case:

- `float_accuracy`: the float model on the test split;
- `float_quantized_accuracy`: the float model after `nirjax.targets.quantize` (post-training
  quantization, no QAT);
- `qat_accuracy`: the exported QAT graph (every parameter on the chip's grid) reloaded from
  its `.nir` file;
- `qat_violations`: `nirjax.check` of that file (0 means it fits the chip);
- `fixed_point_accuracy`: the QAT file through `nirjax.fixed_point(path)` (the chip's integer
  arithmetic; target and scales read from the file), classified like training does (argmax of
  the output spike counts, first index on ties). The chip's synapse pipeline delays the output
  by `fixed_point_latency` steps (Loihi 2: one per Dense; Xylo: one per neuron-to-neuron
  weight), so the fixed-point run gets that many zero steps appended to each sample and its
  counts cover the same input; `fixed_point_accuracy_unpadded` is the run on the bare T steps;
- `fixed_point_agreement`: the fraction of test samples whose fixed-point prediction equals the
  QAT float prediction, and `fixed_point_count_mismatch`: of samples whose output spike counts
  differ in any class;
- Xylo only, `rockpool_mapper`: the QAT file through `nirjax.interop.to_xylo` (Rockpool's
  `from_nir`, design-rule check and Xylo mapper) and the ranges of the integer specification.
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

import jax
import jax.numpy as jnp
import numpy as np

import nirjax
import training

CASES = {
    # name: (target, dataset, epochs, lr)
    "xylo-manifolds": ("xylo", "manifolds", 60, 1e-2),
    "loihi2-digits": ("loihi2", "digits", 30, 2e-3),
    "spinnaker2-digits": ("spinnaker2", "digits", 30, 2e-3),
    "brainscales2-digits": ("brainscales2", "digits", 30, 2e-3),
    "speck-digits": ("speck", "digits", 30, 2e-3),
}


def _data(target: str, dataset: str):
    if dataset == "digits":
        return training.digits(n_steps=25)
    limit = nirjax.targets.get_target(target).max_inputs
    return training.random_manifolds(n_steps=25, n_inputs=min(32, limit or 32))


def counts(graph: nirjax.Graph, xs: np.ndarray, pad: int = 0) -> np.ndarray:
    """Output spike counts per sample, `(N, n_classes)`, of `graph` on `xs` (N, T, C) with
    `pad` zero steps appended."""
    xs = np.concatenate([xs, np.zeros((xs.shape[0], pad, *xs.shape[2:]), xs.dtype)], axis=1)
    run = jax.jit(jax.vmap(lambda x: jnp.sum(graph.run(x).output, axis=0)))
    return nirjax.batched(run, np.asarray(xs, np.float32), 128)


def latency(chip: nirjax.Graph) -> int:
    """Steps of synapse pipeline along a layered chain: the buffered (Loihi 2) or delayed
    (Xylo) weight stages of a `fixed_point` graph."""
    return sum(bool(getattr(m, "buffered", False) or getattr(m, "delayed", False))
               for m in chip.nodes.values())


def _fixed_point(path: str, qat: nirjax.Graph, test) -> dict:
    try:
        chip = nirjax.fixed_point(path)
    except Exception as e:  # noqa: BLE001 - record why the fixed-point run failed
        return {"fixed_point_accuracy": None,
                "fixed_point_note": f"nirjax.fixed_point failed: {type(e).__name__}: {e}"}
    xs, ys = np.asarray(test.inputs), np.asarray(test.labels)
    lat = latency(chip)
    ref = counts(qat, xs)
    got = counts(chip, xs, pad=lat)
    bare = counts(chip, xs)
    pred = lambda c: np.argmax(c, axis=-1)  # noqa: E731 - training's rule (first on ties)
    return {
        "fixed_point_accuracy": float(np.mean(pred(got) == ys)),
        "fixed_point_accuracy_unpadded": float(np.mean(pred(bare) == ys)),
        "fixed_point_latency": lat,
        "fixed_point_agreement": float(np.mean(pred(got) == pred(ref))),
        "fixed_point_count_mismatch": float(np.mean(np.any(got != ref, axis=-1))),
        "fixed_point_note": f"nirjax.fixed_point(path), {lat} zero steps appended",
    }


def _rockpool_mapper(path: str) -> dict:
    try:
        import nirjax.interop

        spec = nirjax.interop.to_xylo(path)
    except Exception as e:  # noqa: BLE001 - record why the mapper refused it
        return {"passed": False, "error": f"{type(e).__name__}: {e}"}
    keys = ("weights_in", "weights_rec", "weights_out", "threshold", "threshold_out",
            "dash_mem", "dash_syn", "dash_mem_out", "dash_syn_out")
    return {"passed": True, **{k: [int(spec[k].min()), int(spec[k].max())] for k in keys}}


def run_case(name: str, out_dir: str) -> dict:
    target, dataset, epochs, lr = CASES[name]
    train, test = _data(target, dataset)
    net = training.target_network(target, train.input_shape[0], train.n_classes,
                                  hidden=(128,), dt=1e-4, seed=0)
    graph = nirjax.from_nir(net, dt=1e-4,
                            **training.target_options(target, outputs=("readout",)))
    config = training.TrainConfig(epochs=epochs, lr=lr, loss="counts", seed=0,
                                  train=training.target_trainable(target))
    t0 = time.perf_counter()
    flt = training.fit(graph, train, config=config, progress=False)
    t_float = time.perf_counter() - t0
    t0 = time.perf_counter()
    qat = training.fit(graph, train, config=config, progress=False, target=target)
    t_qat = time.perf_counter() - t0
    path = os.path.join(out_dir, f"{name}.nir")
    nirjax.write(path, qat.quantized)
    reloaded = nirjax.load(path)
    ptq = nirjax.from_nir(nirjax.targets.quantize(flt.graph, target))
    acc = lambda g: float(training.evaluate(g, test, loss="counts")["accuracy"])  # noqa: E731
    extra = {"rockpool_mapper": _rockpool_mapper(path)} if target == "xylo" else {}
    qat_acc = acc(reloaded)
    return {
        "target": target,
        "dataset": dataset,
        "n_inputs": int(train.input_shape[0]),
        "n_train": len(train),
        "n_test": len(test),
        "epochs": epochs,
        "lr": lr,
        "float_accuracy": acc(flt.graph),
        "float_quantized_accuracy": acc(ptq),
        "float_quantized_violations": len(nirjax.check(nirjax.targets.quantize(flt.graph,
                                                                               target), target)),
        "qat_accuracy": qat_acc,
        "qat_violations": [str(v) for v in nirjax.check(path, target)],
        **_fixed_point(path, reloaded, test),
        "float_train_seconds": t_float,
        "qat_train_seconds": t_qat,
        **extra,
    }


CLI = {  # name: (target, the `nirjax train` arguments after --target)
    "cli-xylo-manifolds": ("xylo", "manifolds", ["--dataset", "manifolds", "--epochs", "60",
                                                 "--lr", "1e-2"]),
    "cli-loihi2-digits": ("loihi2", "digits", []),
}


def run_cli(name: str, out_dir: str) -> dict:
    """`nirjax train --target ...` as a user runs it, then its model.nir in fixed point."""
    target, dataset, extra = CLI[name]
    out = os.path.join(out_dir, name)
    cmd = [sys.executable, "-m", "nirjax", "train", "--target", target, *extra, "--out", out,
           "--no-progress"]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    _, test = _data(target, dataset)
    path = os.path.join(out, "model.nir")
    reloaded = nirjax.load(path)
    return {
        "command": "nirjax train --target " + " ".join([target, *extra]),
        "target": target,
        "dataset": dataset,
        "train_reported_test_accuracy": metrics["test_accuracy"],
        "qat_accuracy": float(training.evaluate(reloaded, test, loss="counts")["accuracy"]),
        "qat_violations": [str(v) for v in nirjax.check(path, target)],
        **_fixed_point(path, reloaded, test),
        **({"rockpool_mapper": _rockpool_mapper(path)} if target == "xylo" else {}),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--cli", action="store_true",
                   help="also run `nirjax train --target xylo|loihi2` and its model.nir in "
                        "fixed point")
    args = p.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            results[name] = run_case(name, tmp)
            r = results[name]
            print(f"{name}: float {100 * r['float_accuracy']:.2f} %, float quantized "
                  f"{100 * r['float_quantized_accuracy']:.2f} %, QAT "
                  f"{100 * r['qat_accuracy']:.2f} % ({len(r['qat_violations'])} violations), "
                  f"fixed point: {r['fixed_point_accuracy']} (agreement "
                  f"{r.get('fixed_point_agreement')}; {r['fixed_point_note']})",
                  flush=True)
        for name in CLI if args.cli else ():
            results[name] = r = run_cli(name, tmp)
            print(f"{name}: QAT {100 * r['qat_accuracy']:.2f} %, fixed point "
                  f"{r['fixed_point_accuracy']} (agreement {r.get('fixed_point_agreement')})",
                  flush=True)
    doc = {
        "command": "python benchmarks/targets_accuracy.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, jax {jax.__version__}, "
                   f"{jax.devices()[0].platform}",
        "network": "training.target_network(target, n_in, n_classes, hidden=(128,), dt=1e-4, "
                   "seed=0), spike-count readout, loss counts, batch 64, Adam cosine",
        "cases": results,
    }
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
