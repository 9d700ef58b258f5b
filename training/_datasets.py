r"""Datasets as arrays of input sequences and labels.

- `digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images, shipped inside the
  scikit-learn wheel, no download), encoded as spikes.
- `random_manifolds`: a generated spike-timing task (after Zenke & Vogels 2021): each class
  is a smooth random manifold in the space of input spike times.
- `read_spiking_hdf5` (`read_shd`, `read_ssc`): the Spiking Heidelberg Digits / Spiking Speech
  Commands HDF5 files (`/spikes/times`, `/spikes/units` ragged, `/labels`), binned in time.
- `read_nir_data`: a NIR data file (`nir.read_data`): inputs, and optionally target traces,
  from the observables of named nodes.

A `SpikeDataset` holds `inputs` `(N, T, *shape)` and `labels` `(N,)` (classification) or
`targets` `(N, T, ...)` (regression).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from ._encoders import direct_current, latency, rate_bernoulli, rate_poisson
from ._validate import check_dataset, check_number

__all__ = [
    "SpikeDataset",
    "as_dataset",
    "digits",
    "random_manifolds",
    "read_spiking_hdf5",
    "read_shd",
    "read_ssc",
    "read_nir_data",
    "encode",
]


@dataclasses.dataclass(frozen=True)
class SpikeDataset:
    """A set of input sequences with class labels or target traces.

    **Arguments:**

    - `inputs`: `(N, T, *input_shape)`; float32, or uint8 spike counts (cast per batch); a
      numpy array, or an array-like with `shape`, `__getitem__` and a lazy `subset(index)`
      (`training.EventFrames`: binned on demand).
    - `labels`: `(N,)` int32 class labels, or None.
    - `targets`: `(N, T, *output_shape)` float32 target traces, or None.
    - `n_classes`: number of classes (0 for regression).
    - `dt`: the step in seconds the sequences were binned / encoded with.
    - `name`: for logs.
    """

    inputs: np.ndarray
    labels: np.ndarray | None = None
    targets: np.ndarray | None = None
    n_classes: int = 0
    dt: float = 1e-4
    name: str = "dataset"

    def __post_init__(self):
        if self.inputs.ndim < 2:
            raise ValueError(
                f"SpikeDataset {self.name!r}: inputs must be (N, T, ...), received shape "
                f"{self.inputs.shape}"
            )
        n = len(self.inputs)
        for field in ("labels", "targets"):
            value = getattr(self, field)
            if value is not None and len(value) != n:
                raise ValueError(
                    f"SpikeDataset {self.name!r}: {field} has {len(value)} entries but inputs "
                    f"have {n}; they must match"
                )
        if self.labels is None and self.targets is None:
            raise ValueError(
                f"SpikeDataset {self.name!r}: needs labels (classification) or targets (regression)"
            )
        check_dataset(self)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_steps(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[2:])

    @property
    def is_classification(self) -> bool:
        return self.labels is not None

    def subset(self, index: np.ndarray, name: str | None = None) -> SpikeDataset:
        """The samples at `index` (a new dataset)."""
        return dataclasses.replace(
            self,
            inputs=(self.inputs.subset(index) if hasattr(self.inputs, "subset")
                    else self.inputs[index]),  # lazy inputs (EventFrames) stay lazy
            labels=None if self.labels is None else self.labels[index],
            targets=None if self.targets is None else self.targets[index],
            name=name or self.name,
        )

    def split(self, fraction: float, *, seed: int = 0) -> tuple[SpikeDataset, SpikeDataset]:
        """Split off `fraction` of the samples (stratified by label where there are labels),
        with a seeded shuffle: returns `(rest, held_out)`."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split: fraction must be in (0, 1), received {fraction}")
        rng = np.random.default_rng(seed)
        if self.labels is not None:
            held = []
            for c in np.unique(self.labels):
                idx = np.flatnonzero(self.labels == c)
                idx = rng.permutation(idx)
                held.append(idx[: max(1, int(round(fraction * len(idx))))])
            held = np.sort(np.concatenate(held))
        else:
            held = np.sort(rng.permutation(len(self))[: max(1, int(round(fraction * len(self))))])
        rest = np.setdiff1d(np.arange(len(self)), held)
        return self.subset(rest, f"{self.name}-train"), self.subset(held, f"{self.name}-held")


def as_dataset(data: Any, graph: Any = None, role: str = "data") -> SpikeDataset:
    """`data` as a `SpikeDataset`: a `SpikeDataset` as it is, or a pair `(inputs, y)` with
    `inputs` `(N, T, *shape)` and `y` either integer class labels `(N,)` or float target traces
    `(N, T, ...)`. The number of classes is the graph's output size when `graph` is given
    (else `max(y) + 1`), and `dt` the graph's (`graph.options.dt`).

    `role` names the argument in errors (`"train"`, `"val"`, ...)."""
    if isinstance(data, SpikeDataset):
        return data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(
            f"fit: {role} must be a training.SpikeDataset or a pair (inputs, labels) / "
            f"(inputs, targets) of arrays, received {type(data).__name__}"
        )
    x, y = data
    if not hasattr(x, "subset"):  # lazy inputs (EventFrames) stay lazy
        x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2:
        raise ValueError(
            f"fit: {role} inputs must be (N, T, *shape) (samples, time steps, ...), received "
            f"shape {tuple(x.shape)}; add the time axis, e.g. x[:, None] for one step"
        )
    if len(y) != len(x):
        raise ValueError(
            f"fit: {role} has {len(x)} input sequences but {len(y)} labels/targets; they must "
            "match"
        )
    dt = float(graph.options.dt) if graph is not None else 1e-4
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        n_classes = int(y.max()) + 1 if len(y) else 0
        if graph is not None:
            out = graph.output_shapes()
            if not isinstance(out, dict) and len(out) == 1:
                n_classes = int(out[0])
        return SpikeDataset(x, labels=y.astype(np.int32), n_classes=n_classes, dt=dt, name=role)
    if y.ndim == 1:
        raise ValueError(
            f"fit: {role} labels have dtype {y.dtype}; class labels must be integers (pass "
            "y.astype(int)), target traces must be (N, T, ...)"
        )
    return SpikeDataset(x, targets=y.astype(np.float32), dt=dt, name=role)


def encode(
    features: np.ndarray,
    *,
    encoder: str,
    n_steps: int,
    seed: int = 0,
    dt: float = 1e-4,
    max_prob: float = 1.0,
    max_rate: float = 1000.0,
    gain: float = 1.0,
) -> np.ndarray:
    """Encode features `(N, ...)` in [0, 1] as `(N, T, ...)` float32 with one of the encoders
    (`"rate"` Bernoulli, `"poisson"`, `"latency"`, `"current"`); random encoders use a key per
    sample derived from `seed`, so the same seed gives the same spikes."""
    host = np.asarray(features)
    if host.dtype.kind not in "iuf" or not np.all(np.isfinite(host)):
        first = () if host.dtype.kind not in "iuf" else np.argwhere(~np.isfinite(host))[0]
        where = f" (first at index {tuple(int(i) for i in first)})" if len(first) else ""
        raise ValueError(f"encode: features must be finite real numbers in [0, 1], received "
                         f"dtype {host.dtype}{where}; clean them before encoding")
    x = jax.numpy.asarray(features, dtype=jax.numpy.float32)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(features))
    if encoder == "rate":
        out = jax.jit(jax.vmap(lambda k, f: rate_bernoulli(k, f, n_steps, max_prob=max_prob)))(
            keys, x
        )
    elif encoder == "poisson":
        out = jax.jit(jax.vmap(lambda k, f: rate_poisson(k, f, n_steps, max_rate=max_rate, dt=dt)))(
            keys, x
        )
    elif encoder == "latency":
        out = jax.jit(jax.vmap(lambda f: latency(f, n_steps)))(x)
    elif encoder == "current":
        out = jax.jit(jax.vmap(lambda f: direct_current(f, n_steps, gain=gain)))(x)
    else:
        raise ValueError(
            f"encode: unknown encoder {encoder!r}; use 'rate', 'poisson', 'latency' or 'current'"
        )
    return np.asarray(out, dtype=np.float32)


def digits(
    *,
    n_steps: int = 16,
    encoder: str = "rate",
    test_fraction: float = 0.2,
    seed: int = 0,
    dt: float = 1e-4,
    max_prob: float = 1.0,
) -> tuple[SpikeDataset, SpikeDataset]:
    """scikit-learn's 8x8 digits (bundled, no download), pixels scaled to [0, 1] and encoded.

    The train / test split (stratified, `test_fraction`) and the encoding are seeded by `seed`
    (split and encoding use fixed offsets of it), so the same seed gives the same data.

    **Returns:** `(train, test)`, inputs `(N, n_steps, 64)`, 10 classes.
    """
    from sklearn.datasets import load_digits

    check_number("digits", "test_fraction", test_fraction, low=0, low_open=True, high=1,
                 high_open=True)
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int32)
    spikes = encode(x, encoder=encoder, n_steps=n_steps, seed=seed + 1, dt=dt, max_prob=max_prob)
    full = SpikeDataset(spikes, labels=y, n_classes=10, dt=dt, name="digits")
    train, test = full.split(test_fraction, seed=seed)
    return (
        dataclasses.replace(train, name="digits-train"),
        dataclasses.replace(test, name="digits-test"),
    )


def _smooth_random_function(rng, n_functions: int, dim: int, n_modes: int, alpha: float):
    """Random smooth maps [0,1]^dim -> [0,1]: sums of Fourier modes with amplitudes decaying as
    k^-alpha, rescaled to [0, 1] over a dense grid of the unit cube."""
    freqs = np.arange(1, n_modes + 1)
    amp = rng.uniform(0, 1, (n_functions, dim, n_modes)) * freqs ** (-alpha)
    phase = rng.uniform(0, 2 * np.pi, (n_functions, dim, n_modes))

    def f(u):  # u (S, dim) -> (S, n_functions)
        arg = 2 * np.pi * freqs[None, None, None, :] * u[:, None, :, None] + phase[None]
        return np.sum(amp[None] * np.sin(arg), axis=(2, 3))

    grid = rng.uniform(0, 1, (2048, dim))
    vals = f(grid)
    lo, hi = vals.min(axis=0), vals.max(axis=0)
    return lambda u: np.clip((f(u) - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)


def random_manifolds(
    *,
    n_classes: int = 4,
    n_inputs: int = 32,
    n_steps: int = 50,
    samples_per_class: int = 100,
    dim: int = 1,
    alpha: float = 2.0,
    n_modes: int = 3,
    test_fraction: float = 0.25,
    seed: int = 0,
    dt: float = 1e-4,
) -> tuple[SpikeDataset, SpikeDataset]:
    r"""A generated spike-timing task: random manifolds (after Zenke & Vogels 2021).

    Class c owns a smooth random map $f_c : [0,1]^{d} \to [0,1]^{n}$; a sample draws
    $u \sim U[0,1]^d$ and input neuron i fires exactly once, at step
    $\mathrm{round}(f_{c,i}(u)\,(T-1))$. Only spike times carry the class.

    **Returns:** `(train, test)`, inputs `(N, n_steps, n_inputs)`.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(n_classes):
        f = _smooth_random_function(rng, n_inputs, dim, n_modes, alpha)
        u = rng.uniform(0, 1, (samples_per_class, dim))
        times = np.round(f(u) * (n_steps - 1)).astype(np.int64)  # (S, n_inputs)
        s = np.zeros((samples_per_class, n_steps, n_inputs), np.float32)
        s[np.arange(samples_per_class)[:, None], times, np.arange(n_inputs)[None, :]] = 1.0
        xs.append(s)
        ys.append(np.full(samples_per_class, c, np.int32))
    full = SpikeDataset(
        np.concatenate(xs),
        labels=np.concatenate(ys),
        n_classes=n_classes,
        dt=dt,
        name="manifolds",
    )
    train, test = full.split(test_fraction, seed=seed)
    return (
        dataclasses.replace(train, name="manifolds-train"),
        dataclasses.replace(test, name="manifolds-test"),
    )


def read_spiking_hdf5(
    path: str | os.PathLike,
    *,
    n_steps: int = 100,
    max_time: float = 1.0,
    n_units: int = 700,
    max_samples: int | None = None,
    name: str | None = None,
) -> SpikeDataset:
    r"""Read a Spiking Heidelberg Digits / Spiking Speech Commands HDF5 file.

    Format: `/spikes/times` and `/spikes/units` are ragged arrays (one float array of spike
    times in seconds and one int array of input channels per sample), `/labels` the class of
    each sample. Spikes are binned into `n_steps` bins over `[0, max_time)`
    ($\Delta t$ = `max_time / n_steps`); spikes at or after `max_time` are dropped; a bin holds
    the spike count (uint8, saturating at 255).

    **Arguments:** `path`; `n_steps`; `max_time` (s); `n_units` the number of input channels
    (700 for SHD and SSC); `max_samples` read only the first ones.

    **Returns:** a `SpikeDataset` with inputs `(N, n_steps, n_units)` uint8.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file (expected an SHD/SSC .h5 file)")
    where = f"read_spiking_hdf5({os.path.basename(path)!r})"
    check_number(where, "n_steps", n_steps, low=1, integer=True)
    check_number(where, "max_time", max_time, low=0, low_open=True)
    check_number(where, "n_units", n_units, low=1, integer=True)
    check_number(where, "max_samples", max_samples, low=0, integer=True, optional=True)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder; expected an SHD/SSC .h5 file with "
                                "/spikes/times, /spikes/units and /labels")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        e = " ".join(str(e).split())  # h5py's messages span lines
        raise ValueError(f"{path}: cannot read it as HDF5 ({e}); expected an SHD/SSC .h5 file "
                         "with /spikes/times, /spikes/units and /labels") from None
    with f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise ValueError(
                    f"{path}: missing dataset /{key}; an SHD/SSC file has /spikes/times, "
                    "/spikes/units and /labels"
                )
        times = f["spikes/times"]
        units = f["spikes/units"]
        labels = np.asarray(f["labels"][()])
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{path}: /labels must be a 1-D array of integer class indices, got shape "
                f"{labels.shape} dtype {labels.dtype}"
            )
        if len(labels) and labels.min() < 0:
            raise ValueError(f"{path}: /labels holds {int(labels.min())}; class indices are >= 0")
        labels = labels.astype(np.int32)
        n = len(labels) if max_samples is None else min(max_samples, len(labels))
        if len(times) < n or len(units) < n:
            raise ValueError(
                f"{path}: /labels has {len(labels)} entries but /spikes/times {len(times)} and "
                f"/spikes/units {len(units)}; every sample needs its times and units"
            )
        out = np.zeros((n, n_steps, n_units), np.uint8)
        for i in range(n):
            t = np.asarray(times[i], dtype=np.float64)
            u = np.asarray(units[i], dtype=np.int64)
            if len(t) != len(u):
                raise ValueError(
                    f"{path}: sample {i} has {len(t)} spike times but {len(u)} units; they "
                    "must pair up"
                )
            if len(u) and (u.min() < 0 or u.max() >= n_units):
                raise ValueError(
                    f"{path}: sample {i} has unit {int(u.max())} outside [0, {n_units}); pass "
                    "n_units= the number of input channels"
                )
            bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
            if len(bad):
                raise ValueError(
                    f"{path}: sample {i} has spike time {t[bad[0]]!r} (spike {int(bad[0])}, "
                    f"{len(bad)} such); spike times must be finite and >= 0 seconds. Clean the "
                    "file (nothing is dropped silently)."
                )
            keep = t < max_time
            b = np.floor(t[keep] / max_time * n_steps).astype(np.int64)
            counts = np.zeros((n_steps, n_units), np.int64)
            np.add.at(counts, (b, u[keep]), 1)
            out[i] = np.minimum(counts, 255)
        labels = labels[:n]
    return SpikeDataset(
        out,
        labels=labels,
        n_classes=int(labels.max()) + 1 if n else 0,
        dt=max_time / n_steps,
        name=name or os.path.basename(path),
    )


def read_shd(path, **kwargs) -> SpikeDataset:
    """Spiking Heidelberg Digits (20 classes, 700 channels): `read_spiking_hdf5`."""
    return read_spiking_hdf5(path, **kwargs)


def read_ssc(path, **kwargs) -> SpikeDataset:
    """Spiking Speech Commands (35 classes, 700 channels): `read_spiking_hdf5`."""
    return read_spiking_hdf5(path, **kwargs)


def _observable(node_data, node: str, observable: str | None, path: str, dt: float | None):
    import nir

    obs = node_data.observables
    if observable is None:
        if len(obs) != 1:
            raise ValueError(
                f"{path}: node {node!r} has observables {sorted(obs)}; pass observable= one of them"
            )
        (observable,) = obs
    if observable not in obs:
        raise ValueError(
            f"{path}: node {node!r} has no observable {observable!r}; it has {sorted(obs)}"
        )
    data = obs[observable]
    if isinstance(data, nir.EventData):
        if dt is None:
            raise ValueError(
                f"{path}: {node}.{observable} is event data; pass dt= to bin it on a time grid"
            )
        data = data.to_time_gridded(dt)
    return np.asarray(data.data, dtype=np.float32), float(data.dt)


def read_nir_data(
    path: str | os.PathLike,
    *,
    input_node: str = "input",
    target_node: str | None = None,
    input_observable: str | None = None,
    target_observable: str | None = None,
    labels: Any = None,
    n_classes: int = 0,
    dt: float | None = None,
) -> SpikeDataset:
    """Read a NIR data file (`nir.read_data`): the inputs come from node `input_node`'s
    observable (`(n_samples, n_time_steps, n_neurons)`; event data is binned with `dt`), the
    targets (for `mse` / `van_rossum_distance`) from `target_node`'s, or pass `labels` for
    classification."""
    import nir

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such NIR data file")
    graph_data = nir.read_data(path)
    nodes = graph_data.nodes
    if input_node not in nodes:
        raise ValueError(f"{path}: no node {input_node!r}; nodes are {sorted(nodes)}")
    x, x_dt = _observable(nodes[input_node], input_node, input_observable, path, dt)
    targets = None
    if target_node is not None:
        if target_node not in nodes:
            raise ValueError(f"{path}: no node {target_node!r}; nodes are {sorted(nodes)}")
        targets, _ = _observable(nodes[target_node], target_node, target_observable, path, dt)
    lab = None if labels is None else np.asarray(labels)
    if lab is not None and lab.dtype.kind not in "iu":
        raise TypeError(f"read_nir_data: labels must be integer class indices, received dtype "
                        f"{lab.dtype}; pass labels.astype(int) if they are whole numbers")
    if lab is not None and not n_classes:
        n_classes = int(lab.max()) + 1
    return SpikeDataset(
        x,
        labels=lab,
        targets=targets,
        n_classes=n_classes,
        dt=x_dt,
        name=os.path.basename(path),
    )
