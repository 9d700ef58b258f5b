"""Event datasets in tonic's on-disk layouts (files written here, in each dataset's own format),
the streaming batch iterator, and the forgiving parts of `training.fit`: `(x, y)` arrays, the
loss that follows the readout, per-epoch callbacks, TensorBoard event files."""

import importlib.util
import json
import os
import struct

import h5py
import numpy as np
import pytest

import nirjax
import training

# N-MNIST files are decoded by tonic (the `data` extra, which CI installs: there it must be)
needs_tonic = pytest.mark.skipif(
    importlib.util.find_spec("tonic") is None and os.environ.get("CI") != "true",
    reason="tonic not installed (pip install 'nirjax[data]')",
)


# ------------------------------------------------------------------ files in their formats


def write_nmnist_bin(path, x, y, p, t_us):
    """N-MNIST's 40-bit events (Orchard et al.): byte 0 x, byte 1 y, byte 2 bit 7 polarity
    and bits 6..0 the timestamp's bits 22..16, bytes 3-4 its bits 15..0 (microseconds)."""
    x, y, p, t = (np.asarray(a, np.int64) for a in (x, y, p, t_us))
    raw = np.zeros((len(x), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw.tofile(path)


def nmnist_folder(root, samples):
    """`samples`: {split: [(label, (x, y, p, t_us)), ...]} -> root/NMNIST/{Train,Test}/..."""
    for split, items in samples.items():
        sub = "Train" if split == "train" else "Test"
        for i, (label, ev) in enumerate(items):
            write_nmnist_bin(os.path.join(root, "NMNIST", sub, str(label), f"{i:05d}.bin"), *ev)
    return root


@needs_tonic
def test_nmnist_bins_counts_to_dt(tmp_path):
    # events (x, y, p, t): two in step 0 at one pixel, one at the step edge, one past the window
    ev = ([3, 3, 5, 7, 1], [2, 2, 9, 0, 1], [1, 1, 0, 1, 0], [100, 900, 1000, 2999, 3000])
    nmnist_folder(tmp_path, {"train": [(7, ev)], "test": [(2, ev)]})
    ds = training.read_nmnist(tmp_path, split="train", dt=1e-3, n_steps=3)
    assert ds.inputs.shape == (1, 3, 2, 34, 34) and ds.n_classes == 10 and ds.dt == 1e-3
    expected = np.zeros((3, 2, 34, 34), np.uint8)
    expected[0, 1, 2, 3] = 2  # t = 100 us and 900 us: step 0, polarity 1, row 2, column 3
    expected[1, 0, 9, 5] = 1  # t = 1000 us opens step 1
    expected[2, 1, 0, 7] = 1  # t = 2999 us: the last step; t = 3000 us is past 3 steps of 1 ms
    np.testing.assert_array_equal(ds.inputs[0], expected)
    np.testing.assert_array_equal(ds.labels, [7])
    # the NMNIST folder itself works as well as tonic's save_to
    te = training.read_nmnist(tmp_path / "NMNIST", split="test", dt=1e-3, n_steps=3)
    np.testing.assert_array_equal(te.labels, [2])


@needs_tonic
def test_nmnist_timestamps_above_16_bits(tmp_path):
    t = [70_000, 300_000]  # bits 16+ in byte 2 (below polarity)
    nmnist_folder(tmp_path, {"train": [(1, ([0, 33], [0, 33], [0, 1], t))]})
    ds = training.read_nmnist(tmp_path, dt=0.01, n_steps=32, flatten=True)
    assert ds.inputs.shape == (1, 32, 2 * 34 * 34)
    frames = ds.inputs[0].reshape(32, 2, 34, 34)
    assert frames[7, 0, 0, 0] == 1 and frames[30, 1, 33, 33] == 1 and frames.sum() == 2


@needs_tonic
def test_binary_binning_is_bit_packed_and_saturates(tmp_path):
    ev = ([4] * 300, [4] * 300, [0] * 300, np.arange(300))  # 300 events, one pixel, step 0
    nmnist_folder(tmp_path, {"train": [(0, ev), (1, ev)]})
    count = training.read_nmnist(tmp_path, dt=1e-3, n_steps=5)
    binary = training.read_nmnist(tmp_path, dt=1e-3, n_steps=5, binning="binary")
    assert count.inputs[0][0, 0, 4, 4] == 255  # saturates
    np.testing.assert_array_equal(binary.inputs[:], (count.inputs[:] > 0).astype(np.uint8))
    # cached bit-packed: 5 steps x 2312 entries / 8 per byte, per sample
    assert binary.inputs.nbytes_cached() == 2 * -(-5 * 2312 // 8)
    assert count.inputs.nbytes_cached() == 2 * 5 * 2312


@needs_tonic
def test_event_frames_are_lazy_and_subsets_share_the_cache(tmp_path):
    ev = ([1], [1], [0], [10])
    nmnist_folder(tmp_path, {"train": [(c, ev) for c in range(4)]})
    reads = []
    ds = training.read_nmnist(tmp_path, dt=1e-3, n_steps=2)
    inner = ds.inputs.read
    ds.inputs.read = lambda p: (reads.append(p), inner(p))[1]
    part = ds.subset(np.array([3, 1]))
    assert reads == [] and len(part) == 2 and part.inputs.shape == (2, 2, 2, 34, 34)
    np.testing.assert_array_equal(part.labels, [3, 1])
    part.inputs[:]
    assert len(reads) == 2
    ds.inputs[[1, 3]]  # already binned through the subset: no new reads
    assert len(reads) == 2


def test_dvs_gesture_layout_and_downsample(tmp_path):
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    # x, y, p, t (ms): tonic's preprocessed .npy
    np.save(folder / "4.npy", np.array([[0, 0, 1, 0], [3, 1, 1, 10], [127, 127, 0, 49]]))
    np.save(folder / "10.npy", np.array([[5, 6, 0, 60]]))
    ds = training.read_dvs_gesture(tmp_path, dt=0.05, n_steps=2, downsample=4)
    assert ds.inputs.shape == (2, 2, 2, 32, 32) and ds.n_classes == 11
    np.testing.assert_array_equal(ds.labels, [10, 4])  # files sorted by name: 10.npy, 4.npy
    x = ds.inputs[1]
    assert x[0, 1, 0, 0] == 2 and x[0, 0, 31, 31] == 1 and x.sum() == 3  # (0,0), (3,1) pool
    assert ds.inputs[0][1, 0, 1, 1] == 1


def _write_shd(path, samples, labels):
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes")
        times = g.create_dataset("times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = g.create_dataset("units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint8))


def test_shd_in_tonic_layout_streamed(tmp_path):
    (tmp_path / "SHD").mkdir()
    _write_shd(tmp_path / "SHD" / "shd_train.h5", [([0.005, 0.015, 0.0151], [699, 3, 3])], [19])
    _write_shd(tmp_path / "SHD" / "shd_test.h5", [([0.5], [0])], [0])
    train, test = training.load_events("shd", tmp_path, dt=0.01, n_steps=2)
    assert train.inputs.shape == (1, 2, 700) and train.n_classes == 20
    x = train.inputs[0]
    assert x[0, 699] == 1 and x[1, 3] == 2 and x.sum() == 3
    assert test.inputs[0].sum() == 0  # 0.5 s is past the 20 ms window


@needs_tonic
def test_event_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no folder Train/.*NMNIST/Train/<digit>/\*\.bin"):
        training.read_nmnist(tmp_path)
    nmnist_folder(tmp_path, {"train": [(0, ([40], [0], [0], [0]))]})
    ds = training.read_nmnist(tmp_path)
    with pytest.raises(ValueError, match=r"1 events lie outside the sensor \(34, 34, 2\)"):
        ds.inputs[0]
    with pytest.raises(ValueError, match="binning='surface' is not known"):
        training.read_nmnist(tmp_path, binning="surface")
    with pytest.raises(FileNotFoundError, match="SSC/ssc_valid.h5"):
        training.read_ssc_events(tmp_path, split="valid")
    with pytest.raises(ValueError, match="unknown event dataset 'mnist'"):
        training.load_events("mnist", tmp_path, dt=1e-3, n_steps=3)


# ----------------------------------------------------------------------------- batches


def test_batches_follow_the_order_and_drop_the_partial_batch():
    x = np.arange(10)[:, None] * np.ones((1, 3))
    y = np.arange(10)
    order = np.array([9, 2, 5, 0, 1, 3, 4])
    for prefetch in (0, 2):
        got = [(np.asarray(a), np.asarray(b)) for a, b in
               training.batches((x, y), order, 3, prefetch=prefetch)]
        assert [b.tolist() for _, b in got] == [[9, 2, 5], [0, 1, 3]]
        np.testing.assert_array_equal(got[1][0][:, 0], [0, 1, 3])


def test_batches_raise_the_readers_error():
    class Bad:
        def __getitem__(self, idx):
            raise OSError("disk gone")

    it = training.batches((Bad(), np.arange(4)), np.arange(4), 2)
    with pytest.raises(OSError, match="disk gone"):
        next(it)


# --------------------------------------------------------------- fit that forgives


def _graph(readout="lif", n_in=6, n_out=3):
    g = training.feedforward_snn(n_in, n_out, hidden=(8,), readout=readout, dt=1e-3,
                                 tau_mem=1e-2, tau_syn=5e-3, seed=0)
    return nirjax.from_nir(g, dt=1e-3)


def _xy(n=24, t=6, n_in=6):
    rng = np.random.default_rng(1)
    y = np.arange(n) % 3
    x = (rng.random((n, t, n_in)) < 0.1).astype(np.float32)
    x[np.arange(n), :, y] = 1.0  # class c drives input c at every step
    return x, y


def test_fit_accepts_arrays_and_the_loss_follows_the_readout(tmp_path):
    x, y = _xy()
    cfg = training.TrainConfig(epochs=2, batch_size=8)
    assert cfg.loss is None
    res = training.fit(_graph("lif"), (x, y), (x, y), config=cfg, progress=False,
                       out_dir=tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["loss"] == "counts"
    assert set(res.evaluate((x, y))) == {"loss", "accuracy", "n"}
    same = training.fit(_graph("lif"), training.as_dataset((x, y), _graph("lif")),
                        config=training.TrainConfig(epochs=2, batch_size=8, loss="counts"),
                        progress=False)
    res2 = training.fit(_graph("lif"), (x, y), config=cfg, progress=False)
    np.testing.assert_array_equal(same.history[-1]["train_loss"], res2.history[-1]["train_loss"])
    li = training.fit(_graph("li"), (x, y), config=cfg, progress=False, out_dir=tmp_path / "li")
    assert json.loads((tmp_path / "li" / "metrics.json").read_text())["config"]["loss"] == (
        "membrane_max")
    assert li.history


def test_fit_array_errors():
    x, y = _xy()
    g = _graph()
    with pytest.raises(TypeError, match="train must be a training.SpikeDataset or a pair"):
        training.fit(g, x, progress=False)
    with pytest.raises(ValueError, match="24 input sequences but 5 labels"):
        training.fit(g, (x, y[:5]), progress=False)
    with pytest.raises(ValueError, match=r"labels have dtype float64; class labels must be"):
        training.fit(g, (x, y.astype(float)), progress=False)
    with pytest.raises(ValueError, match=r"must be \(N, T, \*shape\)"):
        training.fit(g, (x[:, 0, 0], y), progress=False)


def test_callbacks_see_every_epoch_and_can_stop():
    x, y = _xy()
    seen = []
    stop = training.StopWhen(lambda h: len(h) == 2)
    res = training.fit(_graph(), (x, y), config=training.TrainConfig(epochs=5, batch_size=8),
                       progress=False, callbacks=[seen.append, stop])
    assert [r["epoch"] for r in seen] == [1, 2] and res.stopped_early
    assert len(res.history) == 2 and "train_loss" in seen[0]


def _read_tfrecords(path):
    """TFRecord framing: u64 length, u32 crc, payload, u32 crc."""
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        out.append(data[i + 12 : i + 12 + n])
        i += 12 + n + 4
    return out


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    x, y = _xy()
    tb = training.TensorBoard(tmp_path / "tb")
    res = training.fit(_graph(), (x, y), config=training.TrainConfig(epochs=2, batch_size=8),
                       progress=False, callbacks=[tb])
    tb.close()
    (name,) = os.listdir(tmp_path / "tb")
    scalars = {}
    for rec in _read_tfrecords(tmp_path / "tb" / name):
        ev = event_pb2.Event.FromString(rec)
        for v in ev.summary.value:
            scalars[(v.tag, ev.step)] = v.simple_value
    for epoch in (1, 2):
        assert scalars[("train_loss", epoch)] == pytest.approx(
            res.history[epoch - 1]["train_loss"], rel=1e-6)


def test_nmnist_without_tonic_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tonic.io", None)
    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(ImportError, match=r"needs tonic .* pip install 'nirjax\[data\]'"):
        training.read_nmnist(tmp_path)


def test_tensorboard_without_tensorboardx_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install tensorboardX"):
        training.TensorBoard(tmp_path)


# ------------------------------------------------------------ nirjax train --dataset


def _learnable_nmnist(root, n_train=8, n_test=3):
    """Three classes; class c fires in rows 10c .. 10c + 9, at random columns and times."""
    rng = np.random.default_rng(0)

    def sample(c):
        k = 300
        return (rng.integers(0, 34, k), rng.integers(10 * c, 10 * c + 10, k),
                rng.integers(0, 2, k), rng.integers(0, 300_000, k))

    return nmnist_folder(root, {
        "train": [(c, sample(c)) for c in range(3) for _ in range(n_train)],
        "test": [(c, sample(c)) for c in range(3) for _ in range(n_test)],
    })


@needs_tonic
def test_nirjax_train_on_a_tonic_nmnist_folder(tmp_path, capsys):
    from nirjax._cli import main

    root = _learnable_nmnist(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", "--dataset", f"nmnist:{root}", "--steps", "8", "--hidden", "16",
            "--epochs", "8", "--batch-size", "8", "--lr", "1e-2", "--out", str(out),
            "--no-progress", "--tensorboard", str(tmp_path / "tb")]
    if importlib.util.find_spec("tensorboardX") is None:
        args = args[:-2]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["job"]["dataset"] == f"nmnist:{root}"
    assert metrics["n_test"] == 9 and metrics["test_accuracy"] > 0.5  # chance: 1/3
    g = nirjax.load(out / "model.nir")
    assert g.options.dt == pytest.approx(0.32 / 8)  # binned to the graph's dt
    assert g.input_shapes() == (2312,)
    assert (out / "training.png").exists()
    if "--tensorboard" in args:
        assert os.listdir(tmp_path / "tb")


def test_nirjax_train_event_usage_errors(tmp_path, capsys):
    from nirjax._cli import main

    assert main(["train", "--dataset", f"nmnist:{tmp_path}", "--no-progress",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no folder Train/" in capsys.readouterr().err
    assert main(["train", "--devices", "3", "--batch-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "--devices 3" in err
