"""Data-parallel `training.fit(devices=...)`: four (host-platform) devices give the one-device
result within float tolerance. JAX fixes its device count when it starts, so the comparison
runs in a fresh process with XLA_FLAGS=--xla_force_host_platform_device_count=4; this process
has one device."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nirjax
import training

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    import nirjax, training

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    y = np.arange(32) % 4
    x = (rng.random((32, 6, 8)) < 0.15).astype(np.uint8)
    x[np.arange(32), :, y] = 1
    g = nirjax.from_nir(training.feedforward_snn(8, 4, hidden=(12,), readout="li", dt=1e-3,
                                                 tau_mem=1e-2, tau_syn=5e-3, seed=0), dt=1e-3)
    cfg = training.TrainConfig(epochs=3, batch_size=8, lr=5e-3)
    runs = {}
    for devices in (None, 1, 4):
        res = training.fit(g, (x, y), (x, y), config=cfg, progress=False, devices=devices)
        w = res.params
        runs[str(devices)] = {
            "params": {"/".join(map(str, k)): np.asarray(v).tolist()
                       for k, v in jax.tree_util.tree_flatten_with_path(w)[0]
                       for k in [[getattr(p, "key", getattr(p, "idx", p)) for p in k]]},
            "loss": [h["train_loss"] for h in res.history],
            "val": [h["val_accuracy"] for h in res.history],
            "sharding": str(jax.tree.leaves(w)[0].sharding),
        }
    try:
        training.fit(g, (x, y), config=training.TrainConfig(epochs=1, batch_size=6),
                     progress=False, devices=4)
    except ValueError as e:
        runs["error"] = str(e)
    json.dump(runs, sys.stdout)
    """
)


def test_four_devices_equal_one():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    one, four = runs["None"], runs["4"]
    assert "SingleDevice" in one["sharding"] and "'batch': 4" in four["sharding"]
    assert set(one["params"]) == set(four["params"]) and one["params"]
    for k in one["params"]:
        np.testing.assert_allclose(four["params"][k], one["params"][k], rtol=1e-4, atol=1e-5,
                                   err_msg=k)
        np.testing.assert_allclose(runs["1"]["params"][k], one["params"][k], rtol=1e-5,
                                   atol=1e-6, err_msg=k)
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-5)
    assert four["val"] == one["val"]
    assert "batch_size 6 does not split over 4 devices; use a multiple of 4" in runs["error"]


def test_device_errors():
    g = nirjax.from_nir(training.feedforward_snn(3, 2, hidden=(4,), dt=1e-3, tau_mem=1e-2,
                                                 tau_syn=5e-3), dt=1e-3)
    x, y = np.zeros((8, 2, 3), np.float32), np.arange(8) % 2
    cfg = training.TrainConfig(epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"devices=2, but 1 device\(s\) are visible"):
        training.fit(g, (x, y), config=cfg, progress=False, devices=2)
    with pytest.raises(TypeError, match="devices must be None, a count, or a list of jax.Device"):
        training.fit(g, (x, y), config=cfg, progress=False, devices=["gpu0"])
    import jax

    dev = jax.devices()
    with pytest.raises(ValueError, match="lists a device twice"):
        training.fit(g, (x, y), config=cfg, progress=False, devices=dev * 2)

