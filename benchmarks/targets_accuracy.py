"""Accuracy on a chip target: the float model, the same model quantized after training, the
model trained with quantization-aware training (QAT), and, where the fixed-point executor
exists (`nirjax.fixed_point`), the QAT model run in the chip's integer arithmetic.

    python benchmarks/targets_accuracy.py [--json benchmarks/results/targets_accuracy.json]
                                          [--cases xylo-manifolds,loihi2-digits,...]

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
- `fixed_point_accuracy`: the QAT graph through `nirjax.fixed_point(graph, target)` if that
  public name exists (else the reason it was not measured);
- Xylo only, `rockpool_mapper`: the QAT file through `nirjax.interop.to_xylo` (Rockpool's
  `from_nir`, design-rule check and Xylo mapper) and the ranges of the integer specification.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import jax

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


def _fixed_point_accuracy(path: str, target: str, test) -> tuple[float | None, str]:
    if not hasattr(nirjax, "fixed_point"):
        return None, "nirjax.fixed_point does not exist in this build"
    try:
        runner = nirjax.fixed_point(nirjax.read(path), target)
        return float(training.evaluate(runner, test, loss="counts")["accuracy"]), "measured"
    except Exception as e:  # noqa: BLE001 - record why the fixed-point run failed
        return None, f"nirjax.fixed_point failed: {type(e).__name__}: {e}"


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
    graph = nirjax.from_nir(net, dt=1e-4, **training.target_options(target))
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
    fixed, why = _fixed_point_accuracy(path, target, test)
    acc = lambda g: float(training.evaluate(g, test, loss="counts")["accuracy"])  # noqa: E731
    extra = {"rockpool_mapper": _rockpool_mapper(path)} if target == "xylo" else {}
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
        "qat_accuracy": acc(reloaded),
        "qat_violations": [str(v) for v in nirjax.check(path, target)],
        "fixed_point_accuracy": fixed,
        "fixed_point_note": why,
        "float_train_seconds": t_float,
        "qat_train_seconds": t_qat,
        **extra,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None)
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            results[name] = run_case(name, tmp)
            r = results[name]
            print(f"{name}: float {100 * r['float_accuracy']:.2f} %, float quantized "
                  f"{100 * r['float_quantized_accuracy']:.2f} %, QAT "
                  f"{100 * r['qat_accuracy']:.2f} % ({len(r['qat_violations'])} violations), "
                  f"fixed point: {r['fixed_point_accuracy']} ({r['fixed_point_note']})",
                  flush=True)
    doc = {
        "command": "python benchmarks/targets_accuracy.py " + " ".join(sys.argv[1:]),
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
