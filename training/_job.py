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
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np

import nirjax
from nirjax import UsageError
from nirjax.cli import check_writable, remove_stale_temporaries

from ._arch import arch_snn, parse_arch, reshaped, shape_for_arch
from ._datasets import SpikeDataset, digits, random_manifolds, read_spiking_hdf5
from ._events import DURATION, EVENT_DATASETS, load_events
from ._loop import METRICS, TrainConfig, default_loss, fit, write_json
from ._models import feedforward_snn
from ._plot import plot_training
from ._quant import target_network, target_options, target_trainable
from ._validate import check_finite_graph

__all__ = ["JobSpec", "train_job", "load_dataset", "DATASETS"]

DATASETS = ("digits", "manifolds")
MODEL = "model.nir"
PLOT = "training.png"


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """Everything `nirjax train` can be told. Defaults are the tuned digits setup.

    - `dataset`: `"digits"` (embedded), `"manifolds"` (generated), the path of an SHD/SSC
      HDF5 file (`test_data`: its test file; without one 20 % is split off), or
      `"KIND:FOLDER"` for an event dataset in tonic's layout (`nmnist`, `dvsgesture`, `shd`,
      `ssc`; `training.load_events`), binned with the graph's dt (`dt`, else the `--graph`
      file's, else the recording length `DURATION[KIND] / n_steps`) into `n_steps` steps
      (`binning`: `"count"` or `"binary"`; `downsample`: pixel pooling for DVS Gesture), and
      flattened for the built-in (dense) networks.
    - `n_steps`, `encoder`: time steps and encoder for digits (`"rate"`, `"poisson"`,
      `"latency"`, `"current"`); the number of bins for HDF5 files.
    - `hidden`, `neuron` (`lif`, `cubalif`, `rlif`, `rcubalif`), `readout` (`lif`: spike-count
      readout; `li`: membrane readout; None: `lif` for digits, whose file snnTorch can load
      too, `li` otherwise, which learns spike-timing tasks more easily): the architecture,
      ignored with `graph`.
    - `arch`: an architecture string (`"1x8x8:c8k3p1,sp2,fc64"`, syntax in docs/training.md),
      built with `nirjax.nn`; replaces `hidden`; not with `graph`.
    - `graph`: start from this .nir file (architecture and initial parameters).
    - `epochs`, `batch_size`, `lr`, `seed`, `loss` (None: chosen from the readout),
      `surrogate`, `dt` (s; None: the graph's recorded dt, else 1e-4).
    - `train`: parameter names to train (default weights and biases).
    - `val_fraction`, `patience`: a validation split for best-epoch selection and early
      stopping (0: none, train on the whole training split).
    - `out`: output folder (default `runs/train-<dataset>-<time>`).
    - `limit`: train on the first `limit` training samples only (smoke tests).
    - `max_samples`: read only the first samples of an HDF5 file or event dataset.
    - `devices`: train data-parallel over this many devices (`fit(devices=...)`).
    - `tensorboard`: also log every epoch's numbers to TensorBoard event files in this folder.
    - `target`: a chip (`xylo`, `speck`, `loihi2`, `brainscales2`, `spinnaker2`):
      quantization-aware training of a network built to the chip's rules
      (`training.target_network`, which replaces `neuron` / `readout`); `model.nir` is then the
      chip-exact graph, checked with `nirjax.check`. The manifolds set gets at most the chip's
      number of input channels.
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
    arch: str | None = None
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
    binning: str = "count"
    downsample: int = 1
    devices: int | None = None
    tensorboard: str | None = None
    target: str | None = None
    peer: str | None = None


def _event_kind(dataset: str) -> tuple[str, str] | None:
    kind, sep, path = dataset.partition(":")
    return (kind, path) if sep and kind in EVENT_DATASETS else None


def load_dataset(spec: JobSpec, dt: float | None = None) -> tuple[SpikeDataset, SpikeDataset]:
    """`(train, test)` for a job, on the time step `dt` (None: the dataset's own; 1e-4 for the
    generated sets). An HDF5 file is binned into `n_steps` bins over its 1 s, so `dt` must be
    `1 / n_steps` there (an error says which flag to change otherwise)."""
    if spec.dataset == "digits":
        return digits(n_steps=spec.n_steps, encoder=spec.encoder, seed=spec.data_seed,
                      dt=1e-4 if dt is None else dt)
    if spec.dataset == "manifolds":
        limit = nirjax.targets.get_target(spec.target).max_inputs if spec.target else None
        kw = {"n_inputs": min(32, limit)} if limit else {}
        return random_manifolds(n_steps=spec.n_steps, seed=spec.data_seed,
                                dt=1e-4 if dt is None else dt, **kw)
    event = _event_kind(spec.dataset)
    if event is not None:
        kind, folder = event
        return load_events(
            kind, folder, dt=dt or DURATION[kind] / spec.n_steps, n_steps=spec.n_steps,
            binning=spec.binning, flatten=spec.graph is None, downsample=spec.downsample,
            max_samples=spec.max_samples,
        )
    path = spec.dataset
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"--dataset {path!r}: not a built-in dataset ({', '.join(DATASETS)}), not "
            f"KIND:FOLDER with KIND in {sorted(EVENT_DATASETS)}, and no such file; pass an "
            "SHD/SSC .h5 file or e.g. nmnist:data/NMNIST"
        )
    kw = {"n_steps": spec.n_steps, "max_samples": spec.max_samples}
    train = read_spiking_hdf5(path, **kw)
    if dt is not None and abs(dt - train.dt) > 1e-9 * train.dt:
        raise UsageError(
            f"--dataset {path}: --steps {spec.n_steps} bins its {train.dt * spec.n_steps:g} s "
            f"at dt = {train.dt:g} s, but the model runs at dt = {dt:g} s (--dt or the "
            f"recorded dt of --graph); pass --steps {round(train.dt * spec.n_steps / dt)} to "
            f"bin at {dt:g} s, or --dt {train.dt:g}."
        )
    if spec.test_data:
        test = read_spiking_hdf5(spec.test_data, **kw)
        return train, test
    return train.split(0.2, seed=spec.data_seed)


def _model_dt(spec: JobSpec) -> float | None:
    """The time step the job was told: `--dt`, else the one `--graph` records, else None."""
    if spec.dt is not None:
        return spec.dt
    if spec.graph:
        return nirjax.recorded_options(nirjax.read(spec.graph)).get("dt")
    return None


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
            kwargs["dt"] = train.dt  # the step the data were binned / encoded with
        return _for_peer(nirjax.from_nir(src, **kwargs), spec.peer)
    if spec.arch:
        dt = spec.dt if spec.dt is not None else train.dt
        nir_graph = arch_snn(spec.arch, train.input_shape, train.n_classes,
                             neuron=spec.neuron, dt=dt, tau_mem=10 * dt, tau_syn=5 * dt,
                             readout=spec.readout or ("lif" if spec.dataset == "digits" else "li"),
                             seed=spec.seed)
        return _for_peer(nirjax.from_nir(nir_graph, dt=dt, surrogate=spec.surrogate), spec.peer)
    if len(train.input_shape) != 1:
        raise ValueError(
            f"dataset {train.name!r}: inputs have per-step shape {train.input_shape}; the built-in "
            "networks take flat inputs. Pass --arch (e.g. c8k3p1,sp2,fc64) or --graph with a "
            "network for this shape"
        )
    dt = spec.dt if spec.dt is not None else train.dt
    if spec.target:
        nir_graph = target_network(spec.target, train.input_shape[0], train.n_classes,
                                   hidden=spec.hidden, dt=dt, seed=spec.seed)
        return nirjax.from_nir(nir_graph, dt=dt, surrogate=spec.surrogate,
                               **target_options(spec.target, outputs=("readout",)))
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
    event = _event_kind(spec.dataset)
    name = (
        spec.dataset
        if spec.dataset in DATASETS
        else event[0] if event is not None
        else os.path.splitext(os.path.basename(spec.dataset))[0]
    )
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"train-{name}-{stamp}")


def train_job(spec: JobSpec, *, log=print) -> dict:
    """Run a training job; returns the summary also written to `metrics.json` (with `out`,
    `model`, `plot`, `test_accuracy`, `wall_seconds`, `steps_per_second`, `traces`)."""
    t0 = time.perf_counter()
    out = spec.out or default_out(spec)
    check_writable("--out", out, folder=True)
    for path in (spec.graph, spec.test_data):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
    os.makedirs(out, exist_ok=True)
    remove_stale_temporaries(out)  # left by a run of this job that was killed
    log(f"nirjax train: output folder {os.path.abspath(out)}")
    if spec.arch and spec.graph:
        raise ValueError("JobSpec: arch and graph both give the architecture; pass one of them")
    train, test = load_dataset(spec, _model_dt(spec))
    if spec.arch:  # a CxHxW: prefix views flat inputs as images
        shape = shape_for_arch(parse_arch(spec.arch), train.input_shape, train.name)
        train, test = reshaped(train, shape), reshaped(test, shape)
    if spec.limit is not None:
        train = train.subset(np.arange(min(spec.limit, len(train))))
    val = None
    if spec.val_fraction > 0:
        if len(train) < 2:
            raise UsageError(f"--val-fraction {spec.val_fraction}: the training split has "
                             f"{len(train)} sample(s), too few to split; drop --val-fraction "
                             "or raise --limit.")
        train, val = train.split(spec.val_fraction, seed=spec.data_seed)
        if len(train) == 0:
            raise UsageError(
                f"--val-fraction {spec.val_fraction}: leaves no training samples of "
                f"{len(val)} (every class keeps at least one sample for validation); use a "
                "smaller --val-fraction or a larger --limit."
            )
    graph = _build_graph(spec, train)
    if abs(graph.options.dt - train.dt) > 1e-9 * train.dt and spec.dataset not in DATASETS:
        raise UsageError(f"--graph {spec.graph}: runs at dt = {graph.options.dt:g} s, the data "
                         f"are binned at {train.dt:g} s; pass --dt {train.dt:g}.")
    loss = spec.loss or default_loss(graph)
    config = TrainConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        seed=spec.seed,
        loss=loss,
        train=target_trainable(spec.target) if spec.target else tuple(spec.train),
        patience=spec.patience,
    )
    log(
        f"nirjax train: {train.name} ({len(train)} train, {len(val) if val else 0} val, "
        f"{len(test)} test; T={train.n_steps}), loss {loss}, {config.epochs} epochs"
    )
    summary_base = {"job": _jsonable(dataclasses.asdict(spec)), "out": os.path.abspath(out)}
    callbacks = []
    if spec.tensorboard:
        from ._callbacks import TensorBoard

        callbacks.append(TensorBoard(spec.tensorboard))
        log(f"nirjax train: TensorBoard log in {os.path.abspath(spec.tensorboard)}")
    try:
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
            devices=spec.devices,
            callbacks=callbacks,
            target=spec.target,
        )
    finally:
        for cb in callbacks:
            cb.close()
    model_path = os.path.join(out, MODEL)
    metrics_path = os.path.join(out, METRICS)
    if result.epochs_run == 0 and os.path.isfile(model_path) and os.path.isfile(metrics_path):
        done = (f"stopped early after epoch {len(result.history)}" if result.stopped_early
                else f"all {config.epochs} epochs trained")
        log(f"nirjax train: {os.path.abspath(out)} holds a finished run ({done}); nothing to "
            f"train, {MODEL} and {METRICS} are left as they are. Pass --no-resume or another "
            "--out to train again.")
        with open(metrics_path) as f:
            return json.load(f)
    check_finite_graph("nirjax train", result.graph)
    final = result.evaluate(test)
    nirjax.write(model_path, result.quantized if spec.target else result.graph)
    chip = {}
    if spec.target:
        violations = nirjax.check(model_path, spec.target)
        chip = {"target": spec.target, "violations": [str(v) for v in violations]}
        log(f"nirjax train: {model_path} on {spec.target}: "
            + (f"{len(violations)} violation(s), first: {violations[0]}" if violations
               else "passes nirjax check"))
    sample = test.inputs[0].astype(np.float32)
    layers = _spiking_nodes(result.graph)
    record = eqx.filter_jit(lambda g, x: g.run(x, record=tuple(layers)).record)
    rec = record(result.graph, jax.numpy.asarray(sample))
    rasters = {"input": sample, **{n: np.asarray(rec[n]["output"]) for n in layers}}
    name = spec.dataset if spec.dataset in DATASETS else test.name
    output = np.asarray(eqx.filter_jit(lambda g, x: g(x))(result.graph, jax.numpy.asarray(sample)))
    scores, score_name = _class_scores(output, loss)
    plot_path = plot_training(
        result.history,
        os.path.join(out, PLOT),
        rasters=rasters,
        title=f"{name}: test accuracy {final.get('accuracy', float('nan')):.3f}",
        label=None if test.labels is None else int(test.labels[0]),
        scores=scores,
        score_name=score_name,
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
        **chip,
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


def _class_scores(output: np.ndarray, loss: str) -> tuple[np.ndarray | None, str]:
    """The per-class score that `loss` predicts with (its argmax is the predicted class)."""
    out = output.reshape(output.shape[0], -1)
    return {
        "counts": (out.sum(0), "output spike count"),
        "membrane_max": (out.max(0), "max readout membrane"),
        "membrane_last": (out[-1], "last readout membrane"),
        "membrane_mean": (out.mean(0), "mean readout membrane"),
    }.get(loss, (None, ""))


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
