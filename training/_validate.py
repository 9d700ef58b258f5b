"""Checks at the training boundary: data (finite inputs and targets, integer labels in range),
hyper-parameters (finite, in range, of the right type) and the state of a run (a loss or a
parameter that went non-finite stops training before anything is written).

Each check raises a `ValueError` / `TypeError` that names the field, what was expected, what
was received and what to do.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np


class TrainingDiverged(ValueError):
    """Training produced a non-finite loss or parameter; nothing of that epoch was written."""


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_number(where: str, name: str, value: Any, *, low: float | None = None,
                 low_open: bool = False, high: float | None = None, high_open: bool = False,
                 integer: bool = False, optional: bool = False) -> None:
    """`value` is a finite real (an int with `integer`) within the given bounds (None allowed
    with `optional`)."""
    if value is None and optional:
        return
    kind = "an int" if integer else "a finite number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    expected = kind + (" " + " and ".join(bounds) if bounds else "") + (
        " or None" if optional else "")
    ok = (_is_int(value) if integer else _is_real(value)) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = ((low is None or (v > low if low_open else v >= low))
              and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        right_type = _is_int(value) if integer else _is_real(value)
        raise (ValueError if right_type else TypeError)(
            f"{where}: {name} must be {expected}, received {value!r}.")


def check_config(config) -> None:
    """The numeric fields of a `TrainConfig`."""
    w = "TrainConfig"
    for name in ("epochs", "batch_size", "eval_batch_size"):
        check_number(w, name, getattr(config, name), low=1, integer=True)
    check_number(w, "seed", config.seed, low=0, integer=True)
    check_number(w, "lr", config.lr, low=0, low_open=True)
    check_number(w, "warmup_epochs", config.warmup_epochs, low=0)
    if _is_real(config.warmup_epochs) and config.warmup_epochs > config.epochs:
        raise ValueError(f"{w}: warmup_epochs = {config.warmup_epochs} is longer than the run "
                         f"(epochs = {config.epochs}); use warmup_epochs <= epochs.")
    if config.warmup_epochs and config.schedule != "cosine":
        raise ValueError(f"{w}: warmup_epochs = {config.warmup_epochs} applies to the cosine "
                         f"schedule only, got schedule={config.schedule!r}; set "
                         "schedule='cosine' or warmup_epochs=0.")
    check_number(w, "weight_decay", config.weight_decay, low=0)
    check_number(w, "grad_clip", config.grad_clip, low=0, low_open=True, optional=True)
    check_number(w, "reg_weight", config.reg_weight, low=0)
    check_number(w, "target_rate", config.target_rate, low=0, high=1)
    check_number(w, "patience", config.patience, low=1, integer=True, optional=True)
    check_number(w, "van_rossum_tau", config.van_rossum_tau, low=0, low_open=True)
    if config.reg_mode not in ("both", "upper", "lower"):
        raise ValueError(f"{w}: reg_mode = {config.reg_mode!r} is not known; use 'both', "
                         "'upper' or 'lower'.")
    if config.reg_weight and not config.reg_nodes:
        raise ValueError(f"{w}: reg_weight = {config.reg_weight} but reg_nodes is empty; name "
                         "the nodes whose spikes to regularize, e.g. reg_nodes=('lif1',).")


def _name(path) -> str:
    return jax.tree_util.keystr(path).strip("[]'\"").replace("']['", "/")


def _first_bad(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])


def check_dataset(data) -> None:
    """The arrays of a `SpikeDataset`: numeric finite inputs, finite targets, integer labels in
    `[0, n_classes)`."""
    w = f"SpikeDataset {data.name!r}"
    x = data.inputs
    if not hasattr(x, "dtype") or np.dtype(x.dtype).kind not in "biuf":
        raise TypeError(f"{w}: inputs must be a numeric array, received dtype "
                        f"{getattr(x, 'dtype', type(x).__name__)}.")
    if np.dtype(x.dtype).kind == "f" and not np.all(np.isfinite(x)):
        i, t, *n = _first_bad(np.asarray(x))
        raise ValueError(f"{w}: inputs hold non-finite values (first at sample {i}, step {t}, "
                         f"neuron {tuple(n)}); clean or drop those samples before training.")
    check_number(w, "n_classes", data.n_classes, low=0, integer=True)
    check_number(w, "dt", data.dt, low=0, low_open=True)
    if data.targets is not None:
        y = np.asarray(data.targets)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{w}: targets must be numeric, received dtype {y.dtype}.")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            i, t, *n = _first_bad(y)
            raise ValueError(f"{w}: targets hold non-finite values (first at sample {i}, step "
                             f"{t}); clean or drop those samples before training.")
    if data.labels is not None:
        y = np.asarray(data.labels)
        if y.ndim != 1:
            raise ValueError(f"{w}: labels must be 1-D (one class per sample), received shape "
                             f"{y.shape}.")
        if y.dtype.kind not in "iu":
            raise TypeError(f"{w}: labels must be integers (class indices), received dtype "
                            f"{y.dtype}; pass labels.astype(int) if they are whole numbers.")
        if len(y) and data.n_classes < 1:
            raise ValueError(f"{w}: labels are given but n_classes = {data.n_classes}; pass "
                             f"n_classes (at least {int(y.max()) + 1}).")
        bad = np.flatnonzero((y < 0) | (y >= data.n_classes))
        if len(bad):
            i = int(bad[0])
            raise ValueError(f"{w}: label {int(y[i])} of sample {i} is outside [0, "
                             f"{data.n_classes}) ({len(bad)} such labels); labels are class "
                             "indices 0..n_classes-1.")


def check_finite_epoch(epoch: int, loss: Any, params: Any) -> None:
    """Stop a run whose loss or parameters went non-finite in `epoch` (1-based), before its
    checkpoint or any model is written."""
    loss = float(loss)
    bad = [_name(path) for path, leaf in jax.tree_util.tree_leaves_with_path(params)
           if hasattr(leaf, "dtype") and not bool(np.all(np.isfinite(np.asarray(leaf))))]
    if math.isfinite(loss) and not bad:
        return
    what = f"the training loss is {loss}" if not math.isfinite(loss) else "the loss is finite"
    where = f"; non-finite parameters: {', '.join(bad[:4])}" if bad else ""
    raise TrainingDiverged(
        f"training went non-finite in epoch {epoch}: {what}{where}. Nothing of this epoch was "
        "written (a checkpoint holds the last finite epoch). Lower the learning rate, set "
        "grad_clip (e.g. 1.0), or check the data and hyper-parameters."
    )


def check_finite_graph(where: str, graph) -> None:
    """Refuse to hand on a graph with a non-finite parameter."""
    import equinox as eqx

    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(graph, eqx.is_array))
    bad = [jax.tree_util.keystr(p) for p, leaf in leaves
           if not bool(np.all(np.isfinite(np.asarray(leaf))))]
    if bad:
        raise TrainingDiverged(f"{where}: the result has non-finite parameters "
                               f"({', '.join(bad[:4])}); it was not written. Lower the learning "
                               "rate or set a gradient clip.")


def check_graph(where: str, graph: Any) -> None:
    """`graph` is a `nirjax.Graph` (not a path or a NIR graph, which `nirjax.from_nir` turns
    into one)."""
    import nirjax

    if not isinstance(graph, nirjax.Graph):
        raise TypeError(
            f"{where}: graph must be a nirjax.Graph, received {type(graph).__name__}; build one "
            "with nirjax.from_nir(path_or_nir_graph, dt=...).")


def check_not_empty(where: str, data: Any, role: str) -> None:
    """`data` (a `SpikeDataset`) holds at least one sample."""
    if len(data) == 0:
        raise ValueError(f"{where}: dataset {role!r} holds no samples; give it at least one")
