r"""Event-camera and event-audio datasets in tonic's on-disk layouts, binned to a time step.

Readers for four datasets that tonic (`pip install nirjax[data]`) knows, reading the files as
tonic stores them after download and extraction (the `save_to` folder of `tonic.datasets.X`),
without tonic's download check, so a local copy, or a few files written by a test, is enough:

| reader | files | classes | step shape |
|---|---|---|---|
| `read_nmnist` | `NMNIST/{Train,Test}/<digit>/*.bin` (40-bit events) | 10 | `(2, 34, 34)` |
| `read_dvs_gesture` | `DVSGesture/ibmGesture{Train,Test}/user*/<label>.npy` | 11 | `(2,128,128)` |
| `read_shd_events` | `SHD/shd_{train,test}.h5` | 20 | `(700,)` |
| `read_ssc_events` | `SSC/ssc_{train,valid,test}.h5` | 35 | `(700,)` |

**Binning.** Time is measured from the recording's origin ($t = 0$ of the file, not its first
event), in whole microseconds as tonic does (SHD/SSC's seconds are rounded to them; with a
$\Delta t$ of whole microseconds the binning is exact integer division). Step $k$ of a sample
holds the events with $k\,\Delta t \le t < (k + 1)\,\Delta t$,
for $k = 0, \dots, T - 1$; events at or after $T\,\Delta t$ are outside the window and not
binned (choose `n_steps` and `dt` to cover the recordings: `DURATION` gives their nominal
length). Per step and per (polarity, row, column) (cameras) or channel (audio):

- `binning="count"`: the number of events, saturating at 255, stored as uint8. What an
  integrating neuron sees when every event is a unit input current: nothing is lost but the
  saturation.
- `binning="binary"`: 1 if there was at least one event, stored bit-packed (8 per byte), the
  input a spiking chip takes (at most one spike per input and step).

A time surface (an exponentially decaying trace of the last event) is not offered: it is an
analogue feature map rather than a spike input, and `training.exponential_filter` makes one
from the binned spikes when wanted.

`downsample=k` (cameras) pools `k` x `k` pixels: an event at pixel $(x, y)$ counts for pixel
$(\lfloor x/k \rfloor, \lfloor y/k \rfloor)$. `flatten=True` gives one channel per
(polarity, row, column), the input of a dense network.

**Streaming.** The inputs of the returned `SpikeDataset` are an `EventFrames`: an array-like
`(N, T, *shape)` that reads and bins a sample when it is indexed, so a split is never held
whole on a device; with `cache=True` (default) the binned frames are kept in host memory in
their compact form (uint8 counts or bit-packed spikes), so every file is read once.
`training.fit` draws its batches through a prefetching iterator (`training.batches`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from ._datasets import SpikeDataset

__all__ = [
    "BINNINGS",
    "DURATION",
    "EVENT_DATASETS",
    "EventFrames",
    "bin_events",
    "read_nmnist",
    "read_dvs_gesture",
    "read_shd_events",
    "read_ssc_events",
    "load_events",
]

BINNINGS = ("count", "binary")
# nominal length (s) of a recording: the window a default binning covers
DURATION = {"nmnist": 0.32, "dvsgesture": 6.0, "shd": 1.0, "ssc": 1.0}


def bin_events(
    events: np.ndarray,
    *,
    sensor_size: tuple[int, int, int],
    dt: float,
    n_steps: int,
    binning: str = "count",
    downsample: int = 1,
) -> np.ndarray:
    """Bin one recording's events into `(n_steps, *frame)` uint8 frames (see the module
    docstring for the rule).

    **Arguments:**

    - `events`: a structured array with fields `t` (microseconds), `x`, `p`, and `y` for a
      camera (tonic's convention), e.g. from `tonic.io.read_mnist_file`.
    - `sensor_size`: tonic's `(width, height, polarities)`; `(channels, 1, 1)` for audio.
    - `dt` (s), `n_steps`, `binning` (`"count"` or `"binary"`), `downsample`.

    **Returns:** `(n_steps, polarities, height // k, width // k)` for a camera (height > 1),
    `(n_steps, channels)` for audio; counts saturate at 255.
    """
    if binning not in BINNINGS:
        raise ValueError(f"bin_events: binning={binning!r} is not known; use one of {BINNINGS}")
    w, h, pol = (int(s) for s in sensor_size)
    k = int(downsample)
    camera = h > 1
    shape = (pol, -(-h // k), -(-w // k)) if camera else (w,)
    dt_us = dt * 1e6
    if abs(dt_us - round(dt_us)) < 1e-6 * dt_us:  # whole microseconds: exact integer binning
        step = np.asarray(events["t"], np.int64) // int(round(dt_us))
    else:
        step = np.floor(np.asarray(events["t"], np.float64) / dt_us).astype(np.int64)
    keep = (step >= 0) & (step < n_steps)
    x = np.asarray(events["x"], np.int64)[keep]
    step = step[keep]
    if camera:
        y = np.asarray(events["y"], np.int64)[keep]
        p = np.asarray(events["p"], np.int64)[keep]
        bad = (x < 0) | (x >= w) | (y < 0) | (y >= h) | (p < 0) | (p >= pol)
        index = (step, p, y // k, x // k)
    else:
        bad = (x < 0) | (x >= w)
        index = (step, x)
    if bad.any():
        raise ValueError(
            f"bin_events: {int(bad.sum())} events lie outside the sensor {tuple(sensor_size)} "
            "(width, height, polarities); pass the dataset's sensor_size"
        )
    counts = np.zeros((n_steps, *shape), np.int64)
    np.add.at(counts, index, 1)
    if binning == "binary":
        return (counts > 0).astype(np.uint8)
    return np.minimum(counts, 255).astype(np.uint8)


class EventFrames:
    """Recordings binned on demand: an array-like of shape `(N, n_steps, *frame)`, dtype uint8.

    Indexing with an int gives one sample `(n_steps, *frame)`; with a slice or an int array, a
    batch `(B, n_steps, *frame)` (numpy). `subset(index)` is a lazy selection (no reading).

    **Arguments:** `sources` (one per sample, passed to `read`); `read` (a source to tonic's
    structured events); `sensor_size`, `dt`, `n_steps`, `binning`, `downsample` as in
    `bin_events`; `flatten` (one channel per frame entry); `cache` (keep each binned sample
    in host memory, compact: uint8 counts, bit-packed binary spikes).
    """

    def __init__(
        self,
        sources: Sequence,
        read: Callable[[object], np.ndarray],
        *,
        sensor_size: tuple[int, int, int],
        dt: float,
        n_steps: int,
        binning: str = "count",
        downsample: int = 1,
        flatten: bool = False,
        cache: bool = True,
        _store: dict | None = None,
        _rows: np.ndarray | None = None,
    ):
        if binning not in BINNINGS:
            raise ValueError(
                f"EventFrames: binning={binning!r} is not known; use one of {BINNINGS}"
            )
        if not (dt > 0 and int(n_steps) >= 1 and int(downsample) >= 1):
            raise ValueError(
                f"EventFrames: need dt > 0, n_steps >= 1 and downsample >= 1, received dt={dt}, "
                f"n_steps={n_steps}, downsample={downsample}"
            )
        self.sources = list(sources)
        self.read = read
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.dt = float(dt)
        self.n_steps = int(n_steps)
        self.binning = binning
        self.downsample = int(downsample)
        self.flatten = bool(flatten)
        self.cache = bool(cache)
        self._store = {} if _store is None else _store  # shared by subsets: keyed by source row
        self._lock = threading.Lock()
        self._rows = np.arange(len(self.sources)) if _rows is None else np.asarray(_rows)
        w, h, pol = self.sensor_size
        k = self.downsample
        frame = (pol, -(-h // k), -(-w // k)) if h > 1 else (w,)
        self._frame = frame
        self.frame_shape = (int(np.prod(frame)),) if self.flatten else frame

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._rows), self.n_steps, *self.frame_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return (
            f"EventFrames({len(self)} samples, {self.n_steps} steps of {self.dt:g} s, frame "
            f"{self.frame_shape}, binning={self.binning!r})"
        )

    def nbytes_cached(self) -> int:
        """Host memory held by the cache (bytes)."""
        return sum(a.nbytes for a in self._store.values())

    def _sample(self, row: int) -> np.ndarray:
        packed = self._store.get(row)
        if packed is None:
            frames = bin_events(
                self.read(self.sources[row]),
                sensor_size=self.sensor_size,
                dt=self.dt,
                n_steps=self.n_steps,
                binning=self.binning,
                downsample=self.downsample,
            )
            packed = np.packbits(frames.reshape(-1)) if self.binning == "binary" else frames
            if self.cache:
                with self._lock:
                    self._store[row] = packed
        if self.binning == "binary":
            size = self.n_steps * int(np.prod(self._frame))
            frames = np.unpackbits(packed, count=size).reshape(self.n_steps, *self._frame)
        else:
            frames = packed
        return frames.reshape(self.n_steps, *self.frame_shape)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._sample(int(self._rows[index]))
        rows = self._rows[index]
        if not len(rows):
            return np.zeros((0, self.n_steps, *self.frame_shape), np.uint8)
        return np.stack([self._sample(int(r)) for r in rows])

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def subset(self, index) -> EventFrames:
        """The samples at `index`, lazily (sharing this object's cache)."""
        return EventFrames(
            self.sources,
            self.read,
            sensor_size=self.sensor_size,
            dt=self.dt,
            n_steps=self.n_steps,
            binning=self.binning,
            downsample=self.downsample,
            flatten=self.flatten,
            cache=self.cache,
            _store=self._store,
            _rows=self._rows[index],
        )


def _missing(path: str, what: str, layout: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{path}: {what}; expected tonic's layout after extraction, {layout} (a download with "
        "tonic.datasets, or the files from the dataset's site unpacked there)"
    )


def _folder(path: str, name: str, marker: str) -> str:
    """`path` itself if it holds `marker`, else `path/name` (tonic's `save_to/<Dataset>`)."""
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, marker)):
        return path
    return os.path.join(path, name)


def _events_dataset(
    sources, labels, read, *, sensor_size, n_classes, name, dt, n_steps, binning, downsample,
    flatten, cache, max_samples,
) -> SpikeDataset:
    labels = np.asarray(labels, np.int32)
    if max_samples is not None:
        sources, labels = sources[:max_samples], labels[:max_samples]
    frames = EventFrames(
        sources,
        read,
        sensor_size=sensor_size,
        dt=dt,
        n_steps=n_steps,
        binning=binning,
        downsample=downsample,
        flatten=flatten,
        cache=cache,
    )
    return SpikeDataset(frames, labels=labels, n_classes=n_classes, dt=float(dt), name=name)


def _tonic_io():
    try:
        import tonic.io
    except ImportError:
        raise ImportError(
            "read_nmnist needs tonic (it decodes the N-MNIST files): pip install 'nirjax[data]'"
        ) from None
    return tonic.io


def _read_nmnist_file(path: str) -> np.ndarray:
    read_mnist_file = _tonic_io().read_mnist_file
    dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    return read_mnist_file(path, dtype=dtype)


def read_nmnist(
    path: str | os.PathLike,
    *,
    split: str = "train",
    dt: float = 1e-3,
    n_steps: int = 320,
    binning: str = "count",
    flatten: bool = False,
    first_saccade_only: bool = False,
    cache: bool = True,
    max_samples: int | None = None,
) -> SpikeDataset:
    """N-MNIST (Orchard et al. 2015) as tonic stores it: `path` is tonic's `save_to` folder
    (holding `NMNIST/`) or the `NMNIST` folder itself, with `Train/` and `Test/`, each with
    one folder per digit `0` ... `9` of `.bin` files (5 bytes an event: x, y, then polarity in
    bit 7 and a 23-bit timestamp in microseconds; decoded by `tonic.io.read_mnist_file`).

    `split` is `"train"` or `"test"`; `first_saccade_only` keeps the events before 100 ms (as
    tonic's option). Binning as in the module docstring; the default covers 320 ms in 1 ms
    steps. **Returns:** a `SpikeDataset`, inputs `(N, n_steps, 2, 34, 34)` (or
    `(N, n_steps, 2312)` with `flatten`), 10 classes.
    """
    if split not in ("train", "test"):
        raise ValueError(f"read_nmnist: split={split!r}; use 'train' or 'test'")
    _tonic_io()  # fail here, not at the first batch
    sub = "Train" if split == "train" else "Test"
    root = os.path.join(_folder(path, "NMNIST", sub), sub)
    layout = "NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin"
    if not os.path.isdir(root):
        raise _missing(os.fspath(path), f"no folder {sub}/ here or in NMNIST/", layout)
    sources, labels = [], []
    for digit in sorted(os.listdir(root)):
        folder = os.path.join(root, digit)
        if not (os.path.isdir(folder) and digit.isdigit() and 0 <= int(digit) <= 9):
            continue
        for f in sorted(os.listdir(folder)):
            if f.endswith(".bin"):
                sources.append(os.path.join(folder, f))
                labels.append(int(digit))
    if not sources:
        raise _missing(root, "no .bin files in its digit folders", layout)
    read = _read_nmnist_file
    if first_saccade_only:
        def read(p):
            ev = _read_nmnist_file(p)
            return ev[ev["t"] < 100_000]
    return _events_dataset(
        sources, labels, read, sensor_size=(34, 34, 2), n_classes=10, name=f"nmnist-{split}",
        dt=dt, n_steps=n_steps, binning=binning, downsample=1, flatten=flatten, cache=cache,
        max_samples=max_samples,
    )


def _read_gesture_file(path: str) -> np.ndarray:
    a = np.load(path)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(
            f"{path}: a DVS Gesture sample is an (events, 4) array of x, y, p, t (ms), "
            f"received shape {a.shape}"
        )
    out = np.zeros(len(a), np.dtype([("x", np.int64), ("y", np.int64), ("p", np.int64),
                                     ("t", np.int64)]))
    out["x"], out["y"], out["p"] = a[:, 0], a[:, 1], a[:, 2]
    out["t"] = np.round(np.asarray(a[:, 3], np.float64) * 1000)  # ms -> us, as tonic does
    return out


def read_dvs_gesture(
    path: str | os.PathLike,
    *,
    split: str = "train",
    dt: float = 0.05,
    n_steps: int = 120,
    binning: str = "count",
    downsample: int = 1,
    flatten: bool = False,
    cache: bool = True,
    max_samples: int | None = None,
) -> SpikeDataset:
    """IBM DVS Gesture (Amir et al. 2017) in tonic's preprocessed form: `path` is tonic's
    `save_to` (holding `DVSGesture/`) or the `DVSGesture` folder, with `ibmGestureTrain/` and
    `ibmGestureTest/`, each with folders `userNN_<lighting>/` of `<label>.npy` files, an
    `(events, 4)` array of x, y, polarity, time in ms.

    Binning as in the module docstring (default: 6 s in 50 ms steps); `downsample=4` gives
    32 x 32 frames. **Returns:** a `SpikeDataset`, inputs `(N, n_steps, 2, 128/k, 128/k)`,
    11 classes.
    """
    if split not in ("train", "test"):
        raise ValueError(f"read_dvs_gesture: split={split!r}; use 'train' or 'test'")
    sub = "ibmGestureTrain" if split == "train" else "ibmGestureTest"
    root = os.path.join(_folder(path, "DVSGesture", sub), sub)
    layout = "DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy (and ibmGestureTest)"
    if not os.path.isdir(root):
        raise _missing(os.fspath(path), f"no folder {sub}/ here or in DVSGesture/", layout)
    sources, labels = [], []
    for user in sorted(os.listdir(root)):
        folder = os.path.join(root, user)
        if not (os.path.isdir(folder) and user.startswith("user")):
            continue
        for f in sorted(os.listdir(folder)):
            stem = f[:-4]
            if f.endswith(".npy") and stem.isdigit() and 0 <= int(stem) <= 10:
                sources.append(os.path.join(folder, f))
                labels.append(int(stem))
    if not sources:
        raise _missing(root, "no <label>.npy files in its user folders", layout)
    return _events_dataset(
        sources, labels, _read_gesture_file, sensor_size=(128, 128, 2), n_classes=11,
        name=f"dvsgesture-{split}", dt=dt, n_steps=n_steps, binning=binning,
        downsample=downsample, flatten=flatten, cache=cache, max_samples=max_samples,
    )


@dataclasses.dataclass(frozen=True)
class _Hdf5Sample:
    """Reads sample `index` of an SHD/SSC file (opened per read, so threads can share it)."""

    path: str

    def __call__(self, index: int) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            t = np.asarray(f["spikes/times"][index], np.float64)
            u = np.asarray(f["spikes/units"][index], np.int64)
        if len(t) != len(u):
            raise ValueError(
                f"{self.path}: sample {index} has {len(t)} spike times but {len(u)} units; "
                "they must pair up"
            )
        out = np.zeros(len(t), np.dtype([("x", np.int64), ("p", np.int64), ("t", np.int64)]))
        out["x"], out["t"] = u, np.round(t * 1e6)  # seconds -> us, as tonic does
        return out


def _read_hdf5_events(
    path, *, kind, n_classes, splits, split, dt, n_steps, binning, flatten, cache, max_samples
) -> SpikeDataset:
    import h5py

    if split not in splits:
        raise ValueError(f"read_{kind}_events: split={split!r}; use one of {splits}")
    path = os.fspath(path)
    fname = f"{kind}_{split}.h5"
    if os.path.isdir(path):
        folder = _folder(path, kind.upper(), fname)
        path = os.path.join(folder, fname)
    layout = f"{kind.upper()}/{fname} (or the .h5 file itself)"
    if not os.path.isfile(path):
        raise _missing(path, "no such file", layout)
    with h5py.File(path, "r") as f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise ValueError(
                    f"{path}: missing dataset /{key}; an SHD/SSC file has /spikes/times, "
                    "/spikes/units and /labels"
                )
        labels = np.asarray(f["labels"][()], np.int32)
    return _events_dataset(
        list(range(len(labels))), labels, _Hdf5Sample(path), sensor_size=(700, 1, 1),
        n_classes=n_classes, name=f"{kind}-{split}", dt=dt, n_steps=n_steps, binning=binning,
        downsample=1, flatten=flatten, cache=cache, max_samples=max_samples,
    )


def read_shd_events(
    path: str | os.PathLike,
    *,
    split: str = "train",
    dt: float = 0.01,
    n_steps: int = 100,
    binning: str = "count",
    cache: bool = True,
    max_samples: int | None = None,
) -> SpikeDataset:
    """Spiking Heidelberg Digits (Cramer et al. 2020), streamed: `path` is an `.h5` file or
    tonic's folder (`SHD/shd_{train,test}.h5`); spike times in seconds, 700 channels.
    Binning as in the module docstring (default 1 s in 10 ms steps). 20 classes."""
    return _read_hdf5_events(
        path, kind="shd", n_classes=20, splits=("train", "test"), split=split, dt=dt,
        n_steps=n_steps, binning=binning, flatten=False, cache=cache, max_samples=max_samples,
    )


def read_ssc_events(
    path: str | os.PathLike,
    *,
    split: str = "train",
    dt: float = 0.01,
    n_steps: int = 100,
    binning: str = "count",
    cache: bool = True,
    max_samples: int | None = None,
) -> SpikeDataset:
    """Spiking Speech Commands, streamed: `path` is an `.h5` file or tonic's folder
    (`SSC/ssc_{train,valid,test}.h5`); as `read_shd_events`, 35 classes."""
    return _read_hdf5_events(
        path, kind="ssc", n_classes=35, splits=("train", "valid", "test"), split=split, dt=dt,
        n_steps=n_steps, binning=binning, flatten=False, cache=cache, max_samples=max_samples,
    )


EVENT_DATASETS = {
    "nmnist": read_nmnist,
    "dvsgesture": read_dvs_gesture,
    "shd": read_shd_events,
    "ssc": read_ssc_events,
}


def load_events(
    kind: str,
    path: str | os.PathLike,
    *,
    dt: float,
    n_steps: int,
    binning: str = "count",
    flatten: bool = False,
    downsample: int = 1,
    max_samples: int | None = None,
) -> tuple[SpikeDataset, SpikeDataset]:
    """`(train, test)` of one of `EVENT_DATASETS` (`"nmnist"`, `"dvsgesture"`, `"shd"`,
    `"ssc"`) from its tonic folder `path`, binned with `dt` and `n_steps`."""
    if kind not in EVENT_DATASETS:
        raise ValueError(
            f"load_events: unknown event dataset {kind!r}; use one of {sorted(EVENT_DATASETS)}"
        )
    kw: dict = {"dt": dt, "n_steps": n_steps, "binning": binning, "max_samples": max_samples}
    if kind in ("nmnist", "dvsgesture"):
        kw["flatten"] = flatten
    if kind == "dvsgesture":
        kw["downsample"] = downsample
    elif downsample != 1:
        raise ValueError(f"load_events: downsample applies to cameras, not to {kind!r}")
    read = EVENT_DATASETS[kind]
    return read(path, split="train", **kw), read(path, split="test", **kw)
