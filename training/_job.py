"""The whole training job behind `nirjax train`: data, network, training, evaluation, export.

`train_job(JobSpec(...))` loads a dataset, builds a network as a NIR graph (or reads one from a
.nir file), imports it with `nirjax.from_nir`, trains it with `fit`, evaluates it on the test
split, and writes into the output folder:

- `model.nir`: the trained graph (`nirjax.write`, with dt and the options in its metadata);
- `metrics.json`: the configuration, per-epoch curves, test accuracy, timing;
- `training.png`: loss / accuracy curves and one test sample's spike rasters;
- `checkpoint.eqx`: the resumable training state.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np

import nirjax

from ._datasets import SpikeDataset, digits, random_manifolds, read_spiking_hdf5
from ._loop import METRICS, TrainConfig, default_loss, fit, write_json
from ._models import feedforward_snn
from ._plot import plot_training

__all__ = ["JobSpec", "train_job", "load_dataset", "DATASETS"]

DATASETS = ("digits", "manifolds")
MODEL = "model.nir"
PLOT = "training.png"


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """Everything `nirjax train` can be told. Defaults are the tuned digits setup.

    - `dataset`: `"digits"` (embedded), `"manifolds"` (generated), or the path of an SHD/SSC
      HDF5 file (`test_data`: its test file; without one 20 % is split off).
    - `n_steps`, `encoder`: time steps and encoder for digits (`"rate"`, `"poisson"`,
      `"latency"`, `"current"`); the number of bins for HDF5 files.
    - `hidden`, `neuron` (`lif`, `cubalif`, `rlif`, `rcubalif`), `readout` (`lif`: spike-count
      readout; `li`: membrane readout; None: `lif` for digits, whose file snnTorch can load
      too, `li` otherwise, which learns spike-timing tasks more easily): the architecture,
      ignored with `graph`.
    - `graph`: start from this .nir file (architecture and initial parameters).
    - `epochs`, `batch_size`, `lr`, `seed`, `loss` (None: chosen from the readout),
      `surrogate`, `dt` (s; None: the graph's recorded dt, else 1e-4).
    - `train`: parameter names to train (default weights and biases).
    - `val_fraction`, `patience`: a validation split for best-epoch selection and early
      stopping (0: none, train on the whole training split).
    - `out`: output folder (default `runs/train-<dataset>-<time>`).
    - `limit`: train on the first `limit` training samples only (smoke tests).
    - `max_samples`: read only the first samples of an HDF5 file.
    - `peer`: `"sinabs"`, `"rockpool"` or `"spyx"`: train that peer's neuron model
      (`nirjax.interop.for_peer`), so that `model.nir` exports to it exactly (`to_<peer>`).
    """

    dataset: str = "digits"
    test_data: str | None = None
    n_steps: int = 25
    encoder: str = "rate"
    data_seed: int = 0
    hidden: tuple[int, ...] = (128,)
    neuron: str = "lif"
    readout: str | None = None
    graph: str | None = None
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    loss: str | None = None
    surrogate: str = "fast_sigmoid"
    dt: float | None = None
    train: tuple[str, ...] = ("weight", "bias")
    val_fraction: float = 0.0
    patience: int | None = None
    out: str | None = None
    progress: bool = True
    resume: bool = True
    max_samples: int | None = None
    limit: int | None = None
    peer: str | None = None


def load_dataset(spec: JobSpec) -> tuple[SpikeDataset, SpikeDataset]:
    """`(train, test)` for a job."""
    if spec.dataset == "digits":
        return digits(n_steps=spec.n_steps, encoder=spec.encoder, seed=spec.data_seed)
    if spec.dataset == "manifolds":
        return random_manifolds(n_steps=spec.n_steps, seed=spec.data_seed)
    path = spec.dataset
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"--dataset {path!r}: not a built-in dataset ({', '.join(DATASETS)}) and no such "
            "file; pass an SHD/SSC .h5 file"
        )
    kw = {"n_steps": spec.n_steps, "max_samples": spec.max_samples}
    train = read_spiking_hdf5(path, **kw)
    if spec.test_data:
        test = read_spiking_hdf5(spec.test_data, **kw)
        return train, test
    return train.split(0.2, seed=spec.data_seed)


def _spiking_nodes(graph: nirjax.Graph) -> list[str]:
    return [n for n in graph.plan.order
            if isinstance(graph.nodes[n], nirjax.Neuron) and graph.nodes[n].spiking]


def _build_graph(spec: JobSpec, train: SpikeDataset) -> nirjax.Graph:
    if spec.graph:
        kwargs: dict[str, Any] = {"surrogate": spec.surrogate}
        if spec.dt is not None:
            kwargs["dt"] = spec.dt
        src = nirjax.read(spec.graph)
        if spec.dt is None and "dt" not in nirjax.recorded_options(src):
            kwargs["dt"] = 1e-4
        return _for_peer(nirjax.from_nir(src, **kwargs), spec.peer)
    if len(train.input_shape) != 1:
        raise ValueError(
            f"dataset {train.name!r}: inputs have per-step shape {train.input_shape}; the built-in "
            "networks take flat inputs. Pass --graph with a network for this shape"
        )
    dt = spec.dt if spec.dt is not None else 1e-4
    nir_graph = feedforward_snn(
        train.input_shape[0],
        train.n_classes,
        hidden=spec.hidden,
        neuron=spec.neuron,
        readout=spec.readout or ("lif" if spec.dataset == "digits" else "li"),
        dt=dt,
        tau_mem=10 * dt,
        tau_syn=5 * dt,
        seed=spec.seed,
    )
    return _for_peer(nirjax.from_nir(nir_graph, dt=dt, surrogate=spec.surrogate), spec.peer)


def _for_peer(graph: nirjax.Graph, peer: str | None) -> nirjax.Graph:
    if peer is None:
        return graph
    import nirjax.interop

    return nirjax.interop.for_peer(graph, peer)


def default_out(spec: JobSpec) -> str:
    name = (
        spec.dataset
        if spec.dataset in DATASETS
        else os.path.splitext(os.path.basename(spec.dataset))[0]
    )
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"train-{name}-{stamp}")


def train_job(spec: JobSpec, *, log=print) -> dict:
    """Run a training job; returns the summary also written to `metrics.json` (with `out`,
    `model`, `plot`, `test_accuracy`, `wall_seconds`, `steps_per_second`, `traces`)."""
    t0 = time.perf_counter()
    out = spec.out or default_out(spec)
    os.makedirs(out, exist_ok=True)
    log(f"nirjax train: output folder {os.path.abspath(out)}")
    train, test = load_dataset(spec)
    if spec.limit is not None:
        train = train.subset(np.arange(min(spec.limit, len(train))))
    val = None
    if spec.val_fraction > 0:
        train, val = train.split(spec.val_fraction, seed=spec.data_seed)
    graph = _build_graph(spec, train)
    loss = spec.loss or default_loss(graph)
    config = TrainConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        seed=spec.seed,
        loss=loss,
        train=tuple(spec.train),
        patience=spec.patience,
    )
    log(
        f"nirjax train: {train.name} ({len(train)} train, {len(val) if val else 0} val, "
        f"{len(test)} test; T={train.n_steps}), loss {loss}, {config.epochs} epochs"
    )
    summary_base = {"job": _jsonable(dataclasses.asdict(spec)), "out": os.path.abspath(out)}
    result = fit(
        graph,
        train,
        val,
        config=config,
        out_dir=out,
        resume=spec.resume,
        progress=spec.progress,
        test=test,
        extra_metrics=summary_base,
    )
    final = result.evaluate(test)
    model_path = os.path.join(out, MODEL)
    nirjax.write(model_path, result.graph)
    sample = test.inputs[0].astype(np.float32)
    layers = _spiking_nodes(result.graph)
    record = eqx.filter_jit(lambda g, x: g.run(x, record=tuple(layers)).record)
    rec = record(result.graph, jax.numpy.asarray(sample))
    rasters = {"input": sample, **{n: np.asarray(rec[n]["output"]) for n in layers}}
    label = spec.dataset if spec.dataset in DATASETS else test.name
    plot_path = plot_training(
        result.history,
        os.path.join(out, PLOT),
        rasters=rasters,
        title=f"{label}: test accuracy {final.get('accuracy', float('nan')):.3f}",
    )
    wall = time.perf_counter() - t0
    summary = {
        **summary_base,
        "config": config.to_json(),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "test_loss": final["loss"],
        "test_accuracy": final.get("accuracy"),
        "n_test": final["n"],
        "steps_per_second": result.steps_per_second,
        "traces": result.traces,
        "wall_seconds": wall,
        "model": os.path.abspath(model_path),
        "plot": os.path.abspath(plot_path),
    }
    write_json(os.path.join(out, METRICS), summary)
    acc = final.get("accuracy")
    acc_text = f"test accuracy {100 * acc:.2f} %, " if acc is not None else ""
    log(
        f"nirjax train: {acc_text}test loss {final['loss']:.4f}, {wall:.1f} s, "
        f"{result.steps_per_second:.0f} steps/s"
    )
    log(f"nirjax train: wrote {model_path}, {os.path.join(out, METRICS)}, {plot_path}")
    return summary


def _jsonable(d: dict) -> dict:
    def conv(v):
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        return str(v)

    return {k: conv(v) for k, v in d.items()}


def _as_tuple_ints(values: Sequence[int] | str) -> tuple[int, ...]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    return tuple(int(v) for v in values)
