r"""The training loop: jit-compiled optax steps over vmapped batches, seeded shuffling,
evaluation, early stopping, a progress bar, atomic checkpoints that resume exactly, and a JSON
metrics log.

One step, for a batch $\{(x_b, y_b)\}_{b=1}^B$ and trainable (unconstrained) parameters
$\theta$:

$$L(\theta) = \frac1B\sum_b \ell\big(G_{c(\theta)}(x_b), y_b\big)
  + \lambda\,\frac1B\sum_b \sum_{n \in \text{reg}} R(s^{(n)}_b),$$

with $G$ the graph with constrained parameters $c(\theta)$ (see `training.apply_params`),
$\ell$ the loss, $R$ the firing-rate regularizer on the recorded spikes of the nodes in `reg`.
Then $\theta \leftarrow \theta + \mathrm{optax\ update}(\nabla_\theta L)$.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import nirjax
from nirjax import atomic_path

from ._batches import batches
from ._datasets import SpikeDataset, as_dataset
from ._losses import (
    cross_entropy_counts,
    cross_entropy_membrane,
    firing_rate_regularizer,
    mse,
    van_rossum_distance,
)
from ._params import DEFAULT_TRAINABLE, apply_params, init_params, select_trainable
from ._quant import fake_quantize, structural_violations
from ._sharding import placement
from ._validate import (
    check_config,
    check_finite_epoch,
    check_graph,
    check_not_empty,
    check_number,
)

__all__ = ["TrainConfig", "FitResult", "fit", "evaluate", "predict", "LOSSES", "default_loss"]

LOSSES = ("counts", "membrane_max", "membrane_last", "membrane_mean", "mse", "van_rossum")
CHECKPOINT = "checkpoint.eqx"
_HEADER = b"nirjax training checkpoint 1\n"
METRICS = "metrics.json"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of `fit`.

    **Arguments:**

    - `epochs`, `batch_size`, `lr` (peak learning rate of Adam), `seed` (shuffling).
    - `loss`: None (default: follow the readout, `default_loss(graph)`: `"counts"` for a
      spiking readout, `"membrane_max"` otherwise), or one of `LOSSES`: `"counts"`
      (cross-entropy on output spike counts),
      `"membrane_max"` / `"membrane_last"` / `"membrane_mean"` (cross-entropy on the reduced
      readout membrane), `"mse"` / `"van_rossum"` (to target traces).
    - `schedule`: `"cosine"` (decay to 0 over all steps) or `"constant"`.
    - `warmup_epochs`: linear warm-up length (cosine schedule only).
    - `weight_decay`: decoupled weight decay (AdamW) if > 0.
    - `grad_clip`: global-norm clipping if not None.
    - `train`, `train_nodes`, `freeze`: what trains (see `select_trainable`).
    - `reg_nodes`, `reg_weight`, `target_rate`, `reg_mode`: a firing-rate regularizer on the
      spikes of the named nodes (off if `reg_weight == 0`).
    - `patience`: stop after this many epochs without a better validation score (None: never).
    - `eval_batch_size`: batch size of evaluation (padded, so it compiles once).
    - `van_rossum_tau`: the kernel time constant (s) of the `"van_rossum"` loss.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    loss: str | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    train: tuple[str, ...] = DEFAULT_TRAINABLE
    train_nodes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    freeze: tuple[tuple[str, tuple[str, ...]], ...] = ()
    reg_nodes: tuple[str, ...] = ()
    reg_weight: float = 0.0
    target_rate: float = 0.05
    reg_mode: str = "upper"
    patience: int | None = None
    eval_batch_size: int = 256
    van_rossum_tau: float = 1e-3

    def __post_init__(self):
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"TrainConfig: loss={self.loss!r} is not known; use one of {LOSSES}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"TrainConfig: schedule={self.schedule!r}; use 'cosine' or 'constant'")
        check_config(self)
        object.__setattr__(self, "train", tuple(self.train))
        object.__setattr__(self, "reg_nodes", tuple(self.reg_nodes))

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    - `graph`: the trained graph (constrained parameters; the best validation epoch's when a
      validation set is given), ready for `nirjax.write`.
    - `params`: its unconstrained trainable parameters.
    - `history`: one dict per epoch (`train_loss`, `train_accuracy`, `val_loss`,
      `val_accuracy`, `seconds`, `steps`).
    - `best_epoch`: the epoch (1-based) whose parameters were kept.
    - `traces`: how many times the training step was traced (compiled) during this run; 1
      when nothing recompiles (0 when an earlier run with the same settings and the same graph
      object already compiled it).
    - `steps_per_second`: training steps per second over the epochs after the first (which
      includes compilation); over all epochs if only one ran.
    - `stopped_early`: whether early stopping ended the run.
    - `epochs_run`: the epochs trained by this call (0 when it resumed a finished run).
    - `quantized`: with `fit(..., target=...)`, the trained graph as a `nir.NIRGraph` with
      every stored parameter on the chip's grid and the quantization in its metadata (write it
      with `nirjax.write`); `graph` is then that graph imported again.
    """

    graph: nirjax.Graph
    params: dict
    history: list
    best_epoch: int
    traces: int
    steps_per_second: float
    stopped_early: bool = False
    epochs_run: int = 0
    _evaluate: Callable | None = dataclasses.field(default=None, repr=False)
    quantized: Any = None  # fit(target=...): the nir.NIRGraph on the chip's grid (training._quant)

    def evaluate(self, data: SpikeDataset | tuple) -> dict:
        """Loss and accuracy of the trained graph on `data` (a `SpikeDataset` or `(x, y)`),
        with the run's compiled evaluation (`{"loss", "accuracy", "n"}`)."""
        data = as_dataset(data, self.graph, "data")
        if self._evaluate is None:
            return evaluate(self.graph, data)
        return {**self._evaluate(data), "n": len(data)}


def default_loss(graph: nirjax.Graph) -> str:
    """`"counts"` if the nodes feeding the (single) Output spike (a `nirjax.Neuron` with
    `spiking`), else `"membrane_max"`."""
    (out,) = graph.outputs[:1] or (None,)
    if out is None:
        return "membrane_max"
    srcs = [e.src for e in graph.plan.edges if e.dst == out]
    if srcs and all(getattr(graph.nodes[s], "spiking", False) for s in srcs):
        return "counts"
    return "membrane_max"


def _sample_loss(config: TrainConfig, dt: float) -> Callable:
    kind = config.loss
    if kind == "counts":
        return cross_entropy_counts
    if kind.startswith("membrane_"):
        reduce = kind.split("_", 1)[1]
        return lambda v, y: cross_entropy_membrane(v, y, reduce)
    if kind == "mse":
        return mse
    return lambda a, b: van_rossum_distance(a, b, tau=config.van_rossum_tau, dt=dt)


def _sample_correct(config: TrainConfig) -> Callable:
    kind = config.loss
    if kind == "counts":
        return lambda s, y: jnp.argmax(jnp.sum(s, axis=0)) == y
    if kind == "membrane_max":
        return lambda v, y: jnp.argmax(jnp.max(v, axis=0)) == y
    if kind == "membrane_last":
        return lambda v, y: jnp.argmax(v[-1]) == y
    if kind == "membrane_mean":
        return lambda v, y: jnp.argmax(jnp.mean(v, axis=0)) == y
    return None


def _targets(data: SpikeDataset, config: TrainConfig) -> np.ndarray:
    if config.loss in ("mse", "van_rossum"):
        if data.targets is None:
            raise ValueError(
                f"loss {config.loss!r} needs target traces, but dataset {data.name!r} has none; "
                "use a classification loss or a dataset with targets"
            )
        return np.asarray(data.targets, np.float32)
    if data.labels is None:
        raise ValueError(
            f"loss {config.loss!r} needs class labels, but dataset {data.name!r} has none"
        )
    return np.asarray(data.labels, np.int32)


def _check_shapes(graph: nirjax.Graph, data: SpikeDataset) -> None:
    if len(data) == 0:
        raise ValueError(f"fit: dataset {data.name!r} holds no samples; give it at least one")
    want = tuple(graph.input_shapes()) if not isinstance(graph.input_shapes(), dict) else None
    if want is None:
        raise ValueError("fit: the graph has several Inputs; training needs a single Input node")
    if tuple(data.input_shape) != want:
        raise ValueError(
            f"fit: dataset {data.name!r} has per-step inputs of shape {data.input_shape}, but "
            f"the graph's Input {graph.inputs[0]!r} takes {want}; build the network for this "
            "dataset or pick a matching dataset"
        )
    out = graph.output_shapes()
    if data.labels is not None and not isinstance(out, dict):
        if data.n_classes and tuple(out) != (data.n_classes,):
            raise ValueError(
                f"fit: dataset {data.name!r} has {data.n_classes} classes, but the graph's "
                f"output has shape {tuple(out)}; the readout needs {data.n_classes} neurons"
            )


def _forward(graph: nirjax.Graph, x, reg_nodes: Sequence[str]):
    x = x.astype(jnp.dtype(graph.dtype))
    if reg_nodes:
        res = graph.run(x, record=tuple(reg_nodes))
        return res.output, {n: res.record[n]["output"] for n in reg_nodes}
    return graph(x), {}


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "cosine":
        warm = int(config.warmup_epochs * steps_per_epoch)
        if warm > 0:
            lr = optax.warmup_cosine_decay_schedule(0.0, config.lr, warm, total)
        else:
            lr = optax.cosine_decay_schedule(config.lr, total)
    else:
        lr = config.lr
    opt = (
        optax.adamw(lr, weight_decay=config.weight_decay)
        if config.weight_decay > 0
        else optax.adam(lr)
    )
    if config.grad_clip is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
    return opt


class _Trainer:
    """Holds the compiled step and evaluation functions of one run."""

    def __init__(self, config: TrainConfig, dt: float, steps_per_epoch: int, target=None):
        self.config = config
        quant = (lambda g: fake_quantize(g, target)) if target is not None else (lambda g: g)
        self.loss_fn = _sample_loss(config, dt)
        self.correct_fn = _sample_correct(config)
        self.optimizer = _optimizer(config, steps_per_epoch)
        self.traces = 0
        reg = tuple(config.reg_nodes)

        def batch_terms(params, base, x, y):
            g = quant(apply_params(base, params))
            out, rec = jax.vmap(lambda xi: _forward(g, xi, reg))(x)
            losses = jax.vmap(self.loss_fn)(out, y)
            total = jnp.mean(losses)
            if reg and config.reg_weight:
                for n in reg:
                    pen = jax.vmap(
                        lambda s: firing_rate_regularizer(
                            s, config.target_rate, mode=config.reg_mode
                        )
                    )(rec[n])
                    total = total + config.reg_weight * jnp.mean(pen)
            if self.correct_fn is not None:
                acc = jnp.mean(jax.vmap(self.correct_fn)(out, y).astype(jnp.float32))
            else:
                acc = jnp.zeros((), jnp.float32)
            return total, (jnp.mean(losses), acc)

        def step(params, opt_state, base, x, y):
            self.traces += 1  # runs only while tracing: counts compilations
            (_, (loss, acc)), grads = jax.value_and_grad(batch_terms, has_aux=True)(
                params, base, x, y
            )
            # optax mixes Python floats and int32 step counts (Adam's bias correction), which
            # strict dtype promotion rejects; the update itself is float32 either way.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = self.optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, opt_state, loss, acc

        def eval_batch(params, base, x, y):
            g = quant(apply_params(base, params))
            out, _ = jax.vmap(lambda xi: _forward(g, xi, ()))(x)
            losses = jax.vmap(self.loss_fn)(out, y)
            if self.correct_fn is not None:
                correct = jax.vmap(self.correct_fn)(out, y).astype(jnp.float32)
            else:
                correct = jnp.zeros(losses.shape, jnp.float32)
            return losses, correct

        self.step = jax.jit(step, donate_argnums=())
        self.eval_batch = jax.jit(eval_batch)

    def evaluate(self, params, base, data: SpikeDataset, targets: np.ndarray, place=None) -> dict:
        n = len(data)
        if place is None:
            def run(batch):
                return self.eval_batch(params, base, *map(jnp.asarray, batch))
        else:
            def run(batch):
                return place.gather(self.eval_batch(params, base, *place.put_batch(batch)))
        losses, correct = nirjax.batched(  # padded batches: one compilation for all
            run,
            (data.inputs, targets),
            self.config.eval_batch_size,
            multiple_of=place.n if place is not None else 1,
        )
        result = {"loss": float(np.mean(losses))}
        if self.correct_fn is not None:
            # a count over n, so that every path computes the identical number
            result["accuracy"] = int(np.sum(correct > 0)) / n
        return result


_TRAINERS: dict = {}


def _trainer(config: TrainConfig, dt: float, steps_per_epoch: int, target=None) -> _Trainer:
    """The compiled functions depend only on the config, dt and the schedule length (the graph
    is an argument), so runs with the same settings share them: fitting the same graph object
    again does not recompile."""
    key = (config, float(dt), int(steps_per_epoch), target)
    if key not in _TRAINERS:
        if len(_TRAINERS) >= 8:
            _TRAINERS.pop(next(iter(_TRAINERS)))
        _TRAINERS[key] = _Trainer(config, dt, steps_per_epoch, target)
    return _TRAINERS[key]


def _atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str, obj: Any) -> None:
    """Write JSON atomically (temporary file, then `os.replace`)."""
    _atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _save_checkpoint(path: str, state: tuple, meta: dict) -> None:
    """One file, written atomically: a header line, `meta` as one line of JSON (epoch, history,
    best epoch and score, early-stopping counters, the run's fingerprint), then the leaves of
    `state` = (params, optimizer state, best params) by `eqx.tree_serialise_leaves`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_HEADER)
        f.write(json.dumps(meta).encode() + b"\n")
        eqx.tree_serialise_leaves(f, state)
        f.flush()
        os.fsync(f.fileno())


def _unreadable(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path}: not a readable training checkpoint: {why}. It may be damaged (e.g. by an "
        "interrupted copy) or come from another program; delete it to start afresh, or pass "
        "resume=False (--no-resume for nirjax train) to ignore and overwrite it"
    )


def _load_checkpoint(path: str, template: tuple, fingerprint: dict) -> tuple[tuple, dict]:
    """The `(state, meta)` saved by `_save_checkpoint`, with the leaves of `template`'s
    structure, shapes and dtypes; a clear `ValueError` naming `path` if the file is empty,
    truncated or corrupt, or was written with other settings."""
    with open(path, "rb") as f:
        head = f.read(len(_HEADER))
        if head != _HEADER:
            raise _unreadable(path, "the file is empty" if not head else
                              "it does not start with the nirjax checkpoint header")
        line = f.readline()
        try:
            meta = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            meta = None
        if not line.endswith(b"\n") or not isinstance(meta, dict):
            raise _unreadable(path, "its metadata line is cut off or corrupt")
        if meta.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{path}: this checkpoint was written with other settings (config, dataset or "
                "trainable parameters); use another output folder, or resume=False (--no-resume "
                "for nirjax train) to overwrite it"
            )
        try:
            state = eqx.tree_deserialise_leaves(f, template)
        except Exception as e:  # noqa: BLE001 - truncated arrays raise many kinds of error
            leaf = getattr(e, "path", None)  # eqx names the leaf it failed on
            cause = e
            while cause.__cause__ is not None:
                cause = cause.__cause__
            detail = " ".join(str(cause).split())
            raise _unreadable(
                path, "its arrays are cut off or do not fit this run ("
                + (f"leaf {jax.tree_util.keystr(leaf)}: " if leaf is not None else "")
                + type(cause).__name__ + (f": {detail})" if detail else ")")
            ) from None
        if f.read(1):
            raise _unreadable(path, "it holds more arrays than this run has")
    return state, meta


def _fingerprint(config: TrainConfig, train: SpikeDataset, trainable) -> dict:
    return {
        "config": config.to_json(),
        "n_train": len(train),
        "input_shape": list(train.input_shape),
        "n_steps": train.n_steps,
        "trainable": [list(t) for t in trainable],
    }


def fit(
    graph: nirjax.Graph,
    train: SpikeDataset | tuple,
    val: SpikeDataset | tuple | None = None,
    *,
    config: TrainConfig = TrainConfig(),
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    test: SpikeDataset | tuple | None = None,
    stop_after: int | None = None,
    extra_metrics: Mapping[str, Any] | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    callbacks: Sequence[Callable[[dict], bool | None]] = (),
    prefetch: int = 2,
    target: Any = None,
) -> FitResult:
    """Train `graph` on `train`; evaluate on `val` after every epoch.

    **Arguments:**

    - `graph`: a `nirjax.Graph` (e.g. `nirjax.from_nir(feedforward_snn(...), dt=...)`).
    - `train`, `val`: `SpikeDataset`s, or `(inputs, labels)` / `(inputs, targets)` arrays
      (`training.as_dataset`). With `val`, the parameters of the best validation epoch
      (accuracy, or loss for regression) are kept and early stopping (`config.patience`)
      watches it.
    - `config`: a `TrainConfig`.
    - `out_dir`: if given, `checkpoint.eqx` (after every epoch, atomic) and `metrics.json` are
      written there, and a run finds its checkpoint and resumes exactly where it stopped
      (`resume=True`): same shuffles, same optimizer state, same result.
    - `progress`: show a tqdm bar with the loss and accuracy.
    - `test`: if given, evaluated after every epoch and logged (`test_loss`,
      `test_accuracy`) for the curves; never used to choose parameters or to stop.
    - `stop_after`: stop (as if interrupted) after this many epochs in total, leaving the
      checkpoint to resume from (for tests and time-boxed runs).
    - `extra_metrics`: more entries for `metrics.json`.
    - `devices`: None (the default device), a number of devices (the first of
      `jax.devices()`) or a list of them: each batch is split over them along the sample axis,
      parameters and optimizer state are replicated (`batch_size` must split evenly).
    - `callbacks`: called after every epoch with its `history` record; one returning True
      stops the run (`training.TensorBoard`, `training.StopWhen`).
    - `prefetch`: batches prepared ahead by a background thread (`training.batches`); the
      training split stays on the host, one batch at a time goes to the device(s).
    - `target`: a chip (`"xylo"`, `"speck"`, `"loihi2"`, `"brainscales2"`, `"spinnaker2"` or a
      `nirjax.targets.Target`): quantization-aware training. The forward pass uses the chip's
      quantized weights, biases and thresholds with straight-through gradients (see
      `training._quant`); the graph must already meet the chip's other rules (build it with
      `training.target_network`), else a ValueError lists them. The result's `quantized` is
      the exported chip-exact graph.

    **Returns:** a `FitResult`.
    """
    from tqdm.auto import tqdm

    check_graph("fit", graph)
    check_number("fit", "stop_after", stop_after, low=1, integer=True, optional=True)
    train = as_dataset(train, graph, "train")
    val = None if val is None else as_dataset(val, graph, "val")
    test = None if test is None else as_dataset(test, graph, "test")
    if config.loss is None:
        config = dataclasses.replace(config, loss=default_loss(graph))
    if target is not None:
        target = nirjax.targets.get_target(target)
        broken = structural_violations(graph, target)
        if broken:
            raise ValueError(
                f"fit(target={target.name!r}): the graph breaks {len(broken)} rule(s) of "
                f"{target.name} that training cannot fix, first: {broken[0]}; build the network "
                "with training.target_network"
            )
    _check_shapes(graph, train)
    for extra in (val, test):
        if extra is not None:
            _check_shapes(graph, extra)
    # Training checks finiteness itself once per epoch (training._validate: it names the epoch
    # and the fix, and nothing non-finite is written); the run's own per-step check would stop
    # inside the compiled step with a runtime error instead. The trained graph gets it back.
    check_finite = graph.execution.check_finite
    graph = graph.with_execution(check_finite=False)
    node_spec = {k: tuple(v) for k, v in config.train_nodes}
    freeze_spec = {k: tuple(v) for k, v in config.freeze}
    trainable = select_trainable(graph, config.train, nodes=node_spec, freeze=freeze_spec)
    if not trainable:
        raise ValueError(
            f"fit: nothing to train: no node has a parameter in {config.train}; choose "
            "parameters with TrainConfig(train=...) (--train for nirjax train)"
        )
    for n in config.reg_nodes:
        if n not in graph.nodes:
            raise ValueError(
                f"fit: reg_nodes names {n!r}, which is not a node; nodes are {sorted(graph.nodes)}"
            )
    dt = graph.options.dt
    targets = _targets(train, config)
    val_targets = _targets(val, config) if val is not None else None
    test_targets = _targets(test, config) if test is not None else None
    n = len(train)
    bs = min(config.batch_size, n)
    steps_per_epoch = n // bs
    trainer = _trainer(config, dt, steps_per_epoch, target)
    place = placement(devices, bs)
    traces_before = trainer.traces

    params = init_params(graph, trainable)
    opt_state = trainer.optimizer.init(params)
    best_params = params
    meta = {
        "epoch": 0,
        "history": [],
        "best_epoch": 0,
        "best_score": None,
        "bad_epochs": 0,
        "stopped_early": False,
        "fingerprint": _fingerprint(config, train, trainable),
    }
    if target is not None:  # a float checkpoint must not resume as quantization-aware
        meta["fingerprint"]["target"] = target.name
    ckpt = os.path.join(os.fspath(out_dir), CHECKPOINT) if out_dir is not None else None
    if ckpt and resume:
        legacy = os.path.join(os.fspath(out_dir), "checkpoint.npz")
        if not os.path.exists(ckpt) and os.path.exists(legacy):
            raise ValueError(
                f"{legacy}: a checkpoint in the .npz format of earlier versions, which this one "
                "does not read; delete it to start afresh, or pass resume=False (--no-resume "
                "for nirjax train)"
            )
        if os.path.exists(ckpt):
            (params, opt_state, best_params), meta = _load_checkpoint(
                ckpt, (params, opt_state, best_params), meta["fingerprint"]
            )

    if place is not None:
        params, opt_state, best_params = place.put_replicated((params, opt_state, best_params))
        graph = place.put_replicated(graph)
    history = meta["history"]
    start_epoch = meta["epoch"]
    classify = trainer.correct_fn is not None
    total_steps = config.epochs * steps_per_epoch
    bar = tqdm(
        total=total_steps,
        initial=start_epoch * steps_per_epoch,
        desc="train",
        disable=not progress,
        dynamic_ncols=True,
        leave=True,
        unit="step",
    )
    epochs_run = 0
    try:
        for epoch in range(start_epoch, config.epochs):
            if meta["stopped_early"] or (stop_after is not None and epoch >= stop_after):
                break
            t0 = time.perf_counter()
            perm = np.random.default_rng([config.seed, epoch]).permutation(n)
            loss_sum = jnp.zeros((), jnp.float32)
            acc_sum = jnp.zeros((), jnp.float32)
            stream = batches((train.inputs, targets), perm, bs, prefetch=prefetch,
                             put=place.put_batch if place is not None else None)
            for k, (x, y) in enumerate(stream):
                params, opt_state, loss, acc = trainer.step(params, opt_state, graph, x, y)
                loss_sum = loss_sum + loss
                acc_sum = acc_sum + acc
                bar.update(1)
                if progress and (k % 10 == 9 or k == steps_per_epoch - 1):
                    post = {"epoch": epoch + 1, "loss": f"{float(loss_sum) / (k + 1):.4f}"}
                    if classify:
                        post["acc"] = f"{float(acc_sum) / (k + 1):.3f}"
                    if history and "val_accuracy" in history[-1]:
                        post["val_acc"] = f"{history[-1]['val_accuracy']:.3f}"
                    bar.set_postfix(post)
            jax.block_until_ready(params)
            check_finite_epoch(epoch + 1, loss_sum, params)  # before anything is written
            record = {
                "epoch": epoch + 1,
                "steps": steps_per_epoch,
                "train_loss": float(loss_sum) / steps_per_epoch,
            }
            if classify:
                record["train_accuracy"] = float(acc_sum) / steps_per_epoch
            record["train_seconds"] = time.perf_counter() - t0
            if val is not None:
                ev = trainer.evaluate(params, graph, val, val_targets, place)
                record["val_loss"] = ev["loss"]
                if classify:
                    record["val_accuracy"] = ev["accuracy"]
                score = ev["accuracy"] if classify else -ev["loss"]
                if meta["best_score"] is None or score > meta["best_score"]:
                    meta["best_score"], meta["best_epoch"], meta["bad_epochs"] = score, epoch + 1, 0
                    best_params = params
                else:
                    meta["bad_epochs"] += 1
                    if config.patience is not None and meta["bad_epochs"] >= config.patience:
                        meta["stopped_early"] = True
            else:
                meta["best_epoch"] = epoch + 1
                best_params = params
            if test is not None:
                ev = trainer.evaluate(params, graph, test, test_targets, place)
                record["test_loss"] = ev["loss"]
                if classify:
                    record["test_accuracy"] = ev["accuracy"]
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if any([bool(cb(dict(record))) for cb in callbacks]):  # every callback sees it
                meta["stopped_early"] = True
            meta["epoch"] = epoch + 1
            epochs_run += 1
            if progress:
                post = {"epoch": epoch + 1, "loss": f"{record['train_loss']:.4f}"}
                if classify:
                    post["acc"] = f"{record['train_accuracy']:.3f}"
                for split in ("val", "test"):
                    if f"{split}_accuracy" in record:
                        post[f"{split}_acc"] = f"{record[f'{split}_accuracy']:.3f}"
                bar.set_postfix(post)
            if ckpt:
                _save_checkpoint(ckpt, (params, opt_state, best_params), meta)
                write_json(
                    os.path.join(os.fspath(out_dir), METRICS),
                    {
                        "config": config.to_json(),
                        "trainable": [":".join(t) for t in trainable],
                        "history": history,
                        "best_epoch": meta["best_epoch"],
                        "stopped_early": meta["stopped_early"],
                        **dict(extra_metrics or {}),
                    },
                )
    finally:
        bar.close()

    timed = [h for h in history if h["epoch"] > 1] or history
    steps = sum(h["steps"] for h in timed)
    secs = sum(h["train_seconds"] for h in timed)
    sps = steps / secs if secs > 0 else float("nan")
    final = best_params if val is not None else params
    trained = apply_params(graph, final).with_execution(check_finite=check_finite)
    quantized = None
    if target is not None:
        quantized = nirjax.targets.quantize(trained, target)
        trained = nirjax.from_nir(quantized, dtype=jnp.dtype(graph.dtype))
    return FitResult(
        graph=trained,
        quantized=quantized,
        params=final,
        history=history,
        best_epoch=meta["best_epoch"],
        traces=trainer.traces - traces_before,
        steps_per_second=sps,
        stopped_early=meta["stopped_early"],
        epochs_run=epochs_run,
        _evaluate=lambda data: trainer.evaluate(
            final, graph, data, _targets(data, config), place
        ),
    )


@eqx.filter_jit
def _run_batch(graph, x):
    return jax.vmap(graph)(x.astype(jnp.dtype(graph.dtype)))


def predict(graph: nirjax.Graph, inputs: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Run `graph` on inputs `(N, T, ...)` in fixed-size (padded) jit-compiled batches
    (`nirjax.batched`); returns outputs `(N, T, ...)`."""
    inputs = inputs if hasattr(inputs, "shape") else np.asarray(inputs)
    return nirjax.batched(lambda x: _run_batch(graph, jnp.asarray(x)), inputs, batch_size)


def evaluate(
    graph: nirjax.Graph, data: SpikeDataset | tuple, *, loss: str | None = None,
    batch_size: int = 256,
) -> dict:
    """Loss and accuracy of `graph` on `data` (accuracy for classification losses):
    `{"loss": ..., "accuracy": ..., "n": ...}`. `loss` defaults to `default_loss(graph)`."""
    check_graph("evaluate", graph)
    data = as_dataset(data, graph, "data")
    check_not_empty("evaluate", data, "data")
    check_number("evaluate", "batch_size", batch_size, low=1, integer=True)
    loss = loss or default_loss(graph)
    config = TrainConfig(loss=loss)
    targets = _targets(data, config)
    out = predict(graph, data.inputs, batch_size=batch_size)
    lf = _sample_loss(config, graph.options.dt)
    losses = np.asarray(jax.jit(jax.vmap(lf))(jnp.asarray(out), jnp.asarray(targets)))
    result = {"loss": float(np.mean(losses)), "n": len(data)}
    cf = _sample_correct(config)
    if cf is not None:
        correct = np.asarray(jax.jit(jax.vmap(cf))(jnp.asarray(out), jnp.asarray(targets)))
        result["accuracy"] = int(np.sum(correct)) / len(data)
    return result
