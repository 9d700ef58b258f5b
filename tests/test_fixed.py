"""Fixed-point execution: Loihi 2 against the paper's on-chip recording and an independent numpy
transcription of Lava's bit-accurate process models; metadata; errors."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import conformance

import nirjax

DT = 1e-4


# ------------------------------------------------------------------ independent reference
def lava_decay(x, d):
    """lava/proc/lif/models.py, AbstractPyLifModelFixed.subthr_dynamics (int64, as Lava)."""
    y = np.int64(x) * (4096 - d)
    return (np.sign(y) * np.right_shift(np.abs(y), 12)).astype(np.int64)


def lava_net(layers, spikes, recurrent=None):
    """Lava's Dense (one-step buffer, binary spikes in) + LIF bit-accurate, layer by layer in
    lock step. layers: list of dicts with w (int), du, dv, vth, bias. recurrent: optional
    (layer index, int weight) of a Dense from the layer's spikes back to itself. Returns the
    per-step v (after reset) and spikes of every layer."""
    T = spikes.shape[0]
    n = [len(L["vth"]) for L in layers]
    u = [np.zeros(k, np.int64) for k in n]
    v = [np.zeros(k, np.int64) for k in n]
    buf = [np.zeros(k, np.int64) for k in n]
    rbuf = np.zeros(n[recurrent[0]], np.int64) if recurrent else None
    prev = [np.zeros(k, bool) for k in n]
    vs = [np.zeros((T, k), np.int64) for k in n]
    zs = [np.zeros((T, k), np.int64) for k in n]
    M = 2**23
    for t in range(T):
        for i, L in enumerate(layers):
            s_in = spikes[t].astype(bool) if i == 0 else prev[i - 1]  # sent this step
            a_in = buf[i].copy()  # a Dense sends what it accumulated last step
            buf[i] = L["w"][:, s_in].sum(axis=1)
            if recurrent and recurrent[0] == i:
                a_in = a_in + rbuf
            cur = lava_decay(u[i], L["du"] + 1) + (a_in << 6)
            w = np.where(cur > M, cur - 2 * M, cur)
            u[i] = np.where(w <= -M, cur + 2 * M, w)
            vv = lava_decay(v[i], L["dv"]) + u[i] + L["bias"]
            vv = np.clip(vv, -M + 1, M - 1)
            z = vv > (L["vth"] << 6)
            vv[z] = 0
            v[i] = vv
            vs[i][t], zs[i][t] = vv, z
            prev[i] = z
            if recurrent and recurrent[0] == i:  # the recurrent Dense receives z(t) now
                rbuf = recurrent[1][:, z].sum(axis=1)
    return vs, zs


# ------------------------------------------------------------------ the paper's recording
def test_loihi2_reproduces_the_paper_recording_exactly():
    data = np.loadtxt(conformance("lif", "lif_lava_loihi_fixed.csv"), delimiter=",")
    chip = nirjax.fixed_point(conformance("lif", "lif_norse.nir"), "loihi2", dt=DT)
    res = chip.run(jnp.asarray(data[:, :1], jnp.float32), record=["1"])
    v = np.asarray(res.record["1"]["v"])[:, 0]
    z = np.asarray(res.output)[:, 0]
    assert v.shape == (1000,)
    np.testing.assert_array_equal(v, data[:, 1])  # every one of the 1000 values
    assert np.nonzero(z)[0].tolist() == [461, 511, 711, 761]
    np.testing.assert_array_equal(z, data[:, 2])


def test_loihi2_paper_conversion_constants():
    chip = nirjax.fixed_point(conformance("lif", "lif_norse.nir"), "loihi2", dt=DT)
    lif, dense = chip.nodes["1"], chip.nodes["0"]
    # paper/01_lif/_lava_nir.py: dv = int(dt/tau*4095), du = 4095, vth = int(vth*131071) >> 9,
    # weight = int(dt/tau * 256) (the LIF's correction Dense; the Affine's weight is 1).
    assert int(lif.dv[0]) == int(1e-4 / 0.0025 * 4095) == 163
    assert int(lif.du[0]) == 4095
    assert int(lif.vth[0]) == int(0.1 * 131071) >> 9 == 25
    assert int(dense.weight[0, 0]) == int(1e-4 / 0.0025 * 256) == 10
    assert dense.buffered


def test_lava_cpu_probe_differs_from_the_chip_only_on_spike_steps():
    data = np.loadtxt(conformance("lif", "lif_lava_loihi_fixed.csv"), delimiter=",")
    chip = nirjax.fixed_point(conformance("lif", "lif_norse.nir"), "loihi2", dt=DT,
                              probe="lava_cpu")
    v = np.asarray(chip.run(jnp.asarray(data[:, :1], jnp.float32), record=["1"])
                   .record["1"]["v"])[:, 0]
    spiked = data[:, 2] == 1
    np.testing.assert_array_equal(v[~spiked], data[~spiked, 1])
    assert np.all(v[spiked] == 0) and np.all(data[spiked, 1] == 128)
    ref_v, ref_z = lava_net([dict(w=np.array([[10]]), du=np.array([4095]), dv=np.array([163]),
                                  vth=np.array([25]), bias=np.array([0]))], data[:, :1])
    np.testing.assert_array_equal(v, ref_v[0][:, 0])


# ------------------------------------------------------------------ random networks
def _cuba_graph(rng, n_in, n_h, n_out, recurrent, scales):
    """Input -> w1 -> CubaLIF h (optionally h -> w_rec -> h) -> w2 -> LIF o -> Output, with
    parameters that are exact on Loihi under the recorded scales."""
    s_v = scales
    dt = DT
    tau_syn, tau_mem = 4e-4, 8e-4
    g_h = (dt / tau_syn) * (dt / tau_mem)  # CubaLIF input gain (r = w_in = 1)
    g_o = dt / tau_mem
    w1 = rng.integers(-40, 60, (n_h, n_in))
    w2 = rng.integers(-30, 50, (n_out, n_h))
    nodes = {
        "in": nir.Input(np.array([n_in])),
        "w1": nir.Linear(w1 * s_v / g_h),
        "h": nir.CubaLIF(tau_syn=np.full(n_h, tau_syn), tau_mem=np.full(n_h, tau_mem),
                         r=np.ones(n_h), v_leak=np.zeros(n_h), v_threshold=np.full(n_h, 40 * s_v),
                         v_reset=np.zeros(n_h), w_in=np.ones(n_h)),
        "w2": nir.Linear(w2 * s_v / g_o),
        "o": nir.LIF(tau=np.full(n_out, tau_mem), r=np.ones(n_out), v_leak=np.zeros(n_out),
                     v_threshold=np.full(n_out, 30 * s_v), v_reset=np.zeros(n_out)),
        "out": nir.Output(np.array([n_out])),
    }
    edges = [("in", "w1"), ("w1", "h"), ("h", "w2"), ("w2", "o"), ("o", "out")]
    wr = None
    if recurrent:
        wr = rng.integers(-20, 20, (n_h, n_h)) * 2  # even: mixed-sign Lava weights drop the LSB
        nodes["wr"] = nir.Linear(wr * s_v / g_h)
        edges += [("h", "wr"), ("wr", "h")]
    for k in ("h", "o"):
        nodes[k].metadata = {"nirjax.quantization": {"v_threshold": {
            "scale": s_v, "bits": 17, "signed": False}}}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    d_h = dict(du=np.full(n_h, int(dt / tau_syn * 4095)), dv=np.full(n_h, int(dt / tau_mem * 4095)),
               vth=np.full(n_h, 40), bias=np.zeros(n_h, np.int64), w=(w1 >> 1) << 1)
    d_o = dict(du=np.full(n_out, 4095), dv=np.full(n_out, int(dt / tau_mem * 4095)),
               vth=np.full(n_out, 30), bias=np.zeros(n_out, np.int64), w=(w2 >> 1) << 1)
    return graph, [d_h, d_o], wr


@pytest.mark.parametrize("recurrent", [False, True])
def test_loihi2_cuba_network_matches_lava_models(recurrent):
    rng = np.random.default_rng(1)
    graph, layers, wr = _cuba_graph(rng, 5, 12, 3, recurrent, 2.0**-10)
    chip = nirjax.fixed_point(graph, dt=DT, target="loihi2")
    xs = (rng.random((3, 200, 5)) < 0.3).astype(np.float32)
    run = jax.vmap(lambda x: chip.run(x, record=["h", "o"]))
    res = run(jnp.asarray(xs))
    for b in range(xs.shape[0]):
        ref_v, ref_z = lava_net(layers, xs[b], recurrent=(0, wr) if recurrent else None)
        assert ref_z[0].sum() > 20 and ref_z[1].sum() > 3  # the test exercises spikes
        np.testing.assert_array_equal(np.asarray(res.record["h"]["output"])[b], ref_z[0])
        np.testing.assert_array_equal(np.asarray(res.output)[b], ref_z[1])
        hw = np.where(ref_z[0] == 1, 128, ref_v[0])
        np.testing.assert_array_equal(np.asarray(res.record["h"]["v"])[b], hw)
    single = chip.run(jnp.asarray(xs[0]), record=["h"])  # one sample, no vmap
    np.testing.assert_array_equal(np.asarray(single.output), np.asarray(res.output)[0])


def test_recorded_target_name_selects_the_chip(tmp_path):
    rng = np.random.default_rng(2)
    graph, _, _ = _cuba_graph(rng, 2, 3, 2, False, 2.0**-8)
    graph.metadata = {"nirjax.target": {"name": "loihi2"}}
    path = tmp_path / "q.nir"
    nir.write(path, graph)
    chip = nirjax.fixed_point(path, dt=DT)  # target and per-node scales from the file
    assert int(chip.nodes["h"].vth[0]) == 40 and int(chip.nodes["o"].vth[0]) == 30
    assert chip.metadata.value["nirjax.target"] == {"name": "loihi2"}


# ------------------------------------------------------------------ errors
def _lif_graph(weight=1.0, **lif):
    base = dict(tau=np.array([2.5e-3]), r=np.array([1.0]), v_leak=np.array([0.0]),
                v_threshold=np.array([0.1]), v_reset=np.array([0.0]))
    base.update(lif)
    return nir.NIRGraph(nodes={"in": nir.Input(np.array([1])),
                               "w": nir.Affine(np.array([[weight]]), np.array([0.0])),
                               "lif": nir.LIF(**base), "out": nir.Output(np.array([1]))},
                        edges=[("in", "w"), ("w", "lif"), ("lif", "out")], type_check=False)


def test_errors_name_the_node_and_the_fix():
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): has v_reset .* resets v to 0"):
        nirjax.fixed_point(_lif_graph(v_reset=np.array([0.02])), "loihi2", dt=DT)
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): uses reset='subtract'"):
        nirjax.fixed_point(_lif_graph(), "loihi2", dt=DT, reset="subtract")
    with pytest.raises(ValueError, match=r"'w' \(Affine\): integer weights span 307..307.*8-bit"):
        nirjax.fixed_point(_lif_graph(weight=30.0), "loihi2", dt=DT)
    g = _lif_graph()
    g.nodes["lif"].metadata = {"nirjax.quantization": {"v_threshold": {"scale": 0.03}}}
    with pytest.raises(ValueError, match="v_threshold.*not an integer multiple of its recorded"):
        nirjax.fixed_point(g, "loihi2", dt=DT)
    direct = nir.NIRGraph(nodes={"in": nir.Input(np.array([1])), "lif": _lif_graph().nodes["lif"],
                                 "out": nir.Output(np.array([1]))},
                          edges=[("in", "lif"), ("lif", "out")], type_check=False)
    with pytest.raises(ValueError, match=r"receives 'in' \(Input\) directly.*Affine/Linear"):
        nirjax.fixed_point(direct, "loihi2", dt=DT)
    with pytest.raises(ValueError, match=r"unknown target 'spinnaker9'.*\['loihi2'"):
        nirjax.fixed_point(_lif_graph(), "spinnaker9", dt=DT)
    with pytest.raises(ValueError, match="no target given and the graph records none"):
        nirjax.fixed_point(_lif_graph(), dt=DT)


def test_non_binary_input_to_a_dense_is_an_error():
    chip = nirjax.fixed_point(_lif_graph(), "loihi2", dt=DT)
    with pytest.raises(Exception, match="receives non-binary values"):
        chip(jnp.full((3, 1), 0.5, jnp.float32))
