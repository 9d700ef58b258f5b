"""Quantization-aware training (`training.fit(..., target=...)`) meets the chip's fixed-point
execution (`nirjax.fixed_point`): a small QAT-exported graph for Xylo and for Loihi 2 runs in
the chip's integer arithmetic, with the integers QAT trained, and classifies like the QAT float
forward pass.

Measured when written (these settings, seed 0, CPU): Xylo 100 of 100 test predictions equal
(accuracy 1.0 both), Loihi 2 199 of 200 (QAT float 0.685, fixed point 0.68); the spike counts themselves differ on some samples (Xylo's decays are shifts that
floor, QAT's are exact products; Loihi's 12-bit decay is (4096 - dv) / 4096 with
dv = int(4095 dt / tau)), so the assertions leave a margin."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
import training
from nirjax.targets import QUANTIZATION_KEY, NumberFormat


def _counts(graph, xs, pad=0):
    xs = np.concatenate([xs, np.zeros((xs.shape[0], pad, *xs.shape[2:]), xs.dtype)], axis=1)
    run = jax.jit(jax.vmap(lambda x: jnp.sum(graph.run(x).output, axis=0)))
    return np.asarray(run(jnp.asarray(xs, jnp.float32)))


def _qat(target, train, epochs, lr, tmp_path):
    net = training.target_network(target, train.input_shape[0], train.n_classes,
                                  hidden=(32,), dt=1e-4, seed=0)
    graph = nirjax.from_nir(net, dt=1e-4, **training.target_options(target, outputs=("readout",)))
    cfg = training.TrainConfig(epochs=epochs, lr=lr, batch_size=64, loss="counts", seed=0,
                               train=training.target_trainable(target))
    r = training.fit(graph, train, config=cfg, progress=False, target=target)
    path = tmp_path / f"{target}.nir"
    nirjax.write(path, r.quantized)
    return path, r.quantized


def _ints(q, node):
    s = q.nodes[node].metadata[QUANTIZATION_KEY]["weight"]["scale"]
    return np.round(np.asarray(q.nodes[node].weight, np.float64) / s).astype(np.int64)


def _agreement(path, test, latency):
    qat = nirjax.load(path)
    chip = nirjax.fixed_point(path)  # target and scales from the file's metadata
    xs, ys = np.asarray(test.inputs), np.asarray(test.labels)
    ref = _counts(qat, xs)
    got = _counts(chip, xs, pad=latency)
    assert ref.sum() > 0 and got.sum() > 0  # the networks spike
    agree = np.mean(np.argmax(got, -1) == np.argmax(ref, -1))
    acc_ref, acc_chip = np.mean(np.argmax(ref, -1) == ys), np.mean(np.argmax(got, -1) == ys)
    return chip, agree, acc_ref, acc_chip


@pytest.mark.filterwarnings(  # Rockpool and torch under numpy 2
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_xylo_qat_graph_runs_in_fixed_point_and_classifies_like_qat(tmp_path):
    train, test = training.random_manifolds(n_steps=25, n_inputs=16)
    path, q = _qat("xylo", train, 40, 1e-2, tmp_path)
    chip, agree, acc_ref, acc_chip = _agreement(path, test, latency=1)
    # the integers Xylo runs are the ones QAT trained (impulse input, unit gains: W / scale)
    for k in ("fc1", "fc_out"):
        np.testing.assert_array_equal(np.asarray(chip.nodes[k].weight), _ints(q, k))
    s = q.nodes["fc1"].metadata[QUANTIZATION_KEY]["weight"]["scale"]
    np.testing.assert_array_equal(np.asarray(chip.nodes["lif1"].threshold),
                                  np.round(q.nodes["lif1"].v_threshold / s))
    assert np.all(np.asarray(chip.nodes["lif1"].dash_syn) == 2)  # tau_syn = 4 dt
    assert np.all(np.asarray(chip.nodes["lif1"].dash_mem) == 3)  # tau_mem = 8 dt
    assert chip.nodes["readout"].max_spikes == 1  # Xylo's output neurons: one spike a step
    if importlib.util.find_spec("rockpool") is not None:  # Rockpool's mapper takes it too
        import nirjax.interop

        spec = nirjax.interop.to_xylo(path)
        np.testing.assert_array_equal(spec["threshold"], np.asarray(chip.nodes["lif1"].threshold))
        np.testing.assert_array_equal(spec["threshold_out"],
                                      np.asarray(chip.nodes["readout"].threshold))
    print(f"agreement {agree}, QAT float accuracy {acc_ref}, fixed point {acc_chip}")
    assert agree >= 0.95, (agree, acc_ref, acc_chip)
    assert abs(acc_chip - acc_ref) <= 0.05


def test_loihi2_qat_graph_runs_in_fixed_point_and_classifies_like_qat(tmp_path):
    train, test = training.digits(n_steps=25)
    train = train.subset(np.arange(512))
    test = test.subset(np.arange(200))
    path, q = _qat("loihi2", train, 4, 1e-2, tmp_path)
    chip, agree, acc_ref, acc_chip = _agreement(path, test, latency=2)  # two Dense stages
    for k in ("fc1", "fc_out"):
        s = q.nodes[k].metadata[QUANTIZATION_KEY]["weight"]["scale"]
        k_exp = int(np.log2(s * 256))  # one weight step = 2**k threshold-mantissa steps
        assert k_exp >= 0  # the loihi2 weight format's emin: the chip realizes it exactly
        np.testing.assert_array_equal(np.asarray(chip.nodes[k].weight), 2 * _ints(q, k))
        assert chip.nodes[k].weight_exp == k_exp - 1
    np.testing.assert_array_equal(np.asarray(chip.nodes["lif1"].vth), 256)  # v_threshold 1
    print(f"agreement {agree}, QAT float accuracy {acc_ref}, fixed point {acc_chip}")
    assert agree >= 0.95, (agree, acc_ref, acc_chip)
    assert abs(acc_chip - acc_ref) <= 0.05


def _lif_net(weight, w_scale, th_scale):
    lif = nir.LIF(tau=np.array([1e-3]), r=np.array([10.0]), v_leak=np.array([0.0]),
                  v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    lif.metadata = {QUANTIZATION_KEY: {"v_threshold": {"scale": th_scale}}}
    w = nir.Linear(np.array([[weight]]))
    w.metadata = {QUANTIZATION_KEY: {"weight": {"scale": w_scale}}}
    return nir.NIRGraph(nodes={"in": nir.Input(np.array([1])), "w": w, "lif": lif,
                               "out": nir.Output(np.array([1]))},
                        edges=[("in", "w"), ("w", "lif"), ("lif", "out")], type_check=False)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_loihi2_weight_exponent_gives_the_recorded_weight_exactly(k):
    # dt r / tau = 1; an odd weight integer q = 37 survives the mixed-sign LSB drop as 2q
    # stored with weight_exp = k - 1; one spike puts q 2^k << 6 into u (Lava's a_in << 6)
    s = 2.0**k / 256
    chip = nirjax.fixed_point(_lif_net(37 * s, s, 1 / 256), "loihi2", dt=1e-4)
    assert int(chip.nodes["w"].weight[0, 0]) == 74 and chip.nodes["w"].weight_exp == k - 1
    xs = jnp.zeros((4, 1)).at[0, 0].set(1.0)
    res = chip.run(xs, record=["lif"])
    u = np.asarray(res.record["lif"]["u"])[:, 0]
    np.testing.assert_array_equal(u, [0, (37 << k) << 6, 0, 0])  # one step of Dense latency


def test_loihi2_weight_scale_that_is_not_a_power_of_two_is_an_error():
    with pytest.raises(ValueError, match=r"'w' \(Linear\): weight scale .* not one power of two"):
        nirjax.fixed_point(_lif_net(3 * 0.003, 0.003, 1 / 256), "loihi2", dt=1e-4)


def test_power_of_two_format_respects_emin():
    f = NumberFormat(8, True, "power_of_two", unit=1 / 256, emin=0)
    assert float(f.choose_scale(0.01)) == 1 / 256  # without emin: 2**-5 / 256 (0.01 / 127 fits)
    assert float(NumberFormat(8, True, "power_of_two", unit=1 / 256).choose_scale(0.01)) == (
        2.0**-5 / 256)
    assert not f.scale_allowed(1 / 512) and f.scale_allowed(1 / 128)
