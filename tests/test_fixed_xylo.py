"""Xylo (SYNS61201) fixed point against SynSense's simulator `xylosim.v2.XyloLayer` (what
Rockpool's XyloSim runs; XyloSim itself imports samna) and the conversion rules."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax

DT = 1e-3


def _graph(rng, n_in=4, n_h=8, n_out=3, recurrent=True):
    def cuba(n, tau_syn, tau_mem, thr):
        return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem),
                           r=np.full(n, tau_mem / DT), v_leak=np.zeros(n),
                           v_threshold=np.full(n, thr), v_reset=np.zeros(n),
                           w_in=np.full(n, tau_syn / DT))
    nodes = {"in": nir.Input(np.array([n_in])),
             "w_in": nir.Linear(rng.normal(0.6, 0.5, (n_h, n_in))),
             "h": cuba(n_h, 4 * DT, 8 * DT, 1.0),
             "w_out": nir.Linear(rng.normal(0.3, 0.5, (n_out, n_h))),
             "o": cuba(n_out, 2 * DT, 16 * DT, 1.5),
             "out": nir.Output(np.array([n_out]))}
    edges = [("in", "w_in"), ("w_in", "h"), ("h", "w_out"), ("w_out", "o"), ("o", "out")]
    if recurrent:
        nodes["w_rec"] = nir.Linear(rng.normal(0, 0.3, (n_h, n_h)))
        edges += [("h", "w_rec"), ("w_rec", "h")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _chip(graph):
    return nirjax.fixed_point(graph, "xylo", dt=DT, reset="subtract",
                              threshold_comparison="greater_equal")


def test_xylo_conversion_follows_rockpool_rules():
    chip = _chip(_graph(np.random.default_rng(0)))
    h, o = chip.nodes["h"], chip.nodes["o"]
    # dash = round(log2(tau/dt)) (Rockpool calc_bitshift_decay)
    assert np.all(np.asarray(h.dash_syn) == 2) and np.all(np.asarray(h.dash_mem) == 3)
    assert np.all(np.asarray(o.dash_syn) == 1) and np.all(np.asarray(o.dash_mem) == 4)
    w = np.asarray(chip.nodes["w_in"].weight)
    wr = np.asarray(chip.nodes["w_rec"].weight)
    assert max(np.abs(w).max(), np.abs(wr).max()) == 127  # int8, the population's peak -> 127
    assert h.max_spikes == 31 and o.max_spikes == 1
    assert chip.nodes["w_in"].from_input and not chip.nodes["w_in"].delayed
    assert chip.nodes["w_out"].delayed


@pytest.mark.parametrize("recurrent", [False, True])
def test_xylo_matches_xylosim_step_for_step(recurrent):
    xv2 = pytest.importorskip("xylosim.v2", reason="xylosim (SynSense's simulator) not installed")
    rng = np.random.default_rng(3)
    chip = _chip(_graph(rng, recurrent=recurrent))
    T, n_in = 300, 4
    xs = rng.poisson(0.4, (2, T, n_in)).astype(np.float32)
    xs[0, 5, 0] = 20  # more than 15 events: the chip saturates them
    res = jax.vmap(lambda x: chip.run(x, record=["h", "o"]))(jnp.asarray(xs))
    h, o = chip.nodes["h"], chip.nodes["o"]
    w_in = np.asarray(chip.nodes["w_in"].weight).T  # (in, hidden)
    w_rec = np.asarray(chip.nodes["w_rec"].weight).T if recurrent else np.zeros((8, 8), int)
    w_out = np.asarray(chip.nodes["w_out"].weight).T

    def syn(w):
        return [[xv2.XyloSynapse(int(j), 0, int(w[i, j])) for j in np.nonzero(w[i])[0]]
                for i in range(w.shape[0])]

    ints = lambda a: [int(v) for v in np.asarray(a)]  # noqa: E731
    args = (syn(w_in), syn(w_rec), syn(w_out), [[] for _ in range(8)], ints(h.threshold),
            ints(o.threshold), False, [0] * 8, [0] * 3, 0, 0, 0, ints(h.dash_mem),
            ints(o.dash_mem), [[int(d), 0] for d in np.asarray(h.dash_syn)],
            [[int(d)] for d in np.asarray(o.dash_syn)], "ref")
    for b in range(2):
        layer = xv2.XyloLayer(*args)  # as rockpool syns61201 XyloSim.from_specification
        out = np.array(layer.evolve(xs[b].astype(int).tolist()))
        assert np.array(layer.rec_recurrent_spikes).sum() > 50 and out.sum() > 5
        rec = res.record
        np.testing.assert_array_equal(np.asarray(rec["h"]["v"])[b], np.array(layer.rec_v_mem).T)
        np.testing.assert_array_equal(np.asarray(rec["h"]["I"])[b], np.array(layer.rec_i_syn).T)
        np.testing.assert_array_equal(np.asarray(rec["h"]["output"])[b],
                                      np.array(layer.rec_recurrent_spikes))
        np.testing.assert_array_equal(np.asarray(rec["o"]["v"])[b],
                                      np.array(layer.rec_v_mem_out).T)
        np.testing.assert_array_equal(np.asarray(res.output)[b], out)


def test_xylo_errors():
    g = _graph(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"xylo: node 'h' \(CubaLIF\): uses reset='value'"):
        nirjax.fixed_point(g, "xylo", dt=DT, threshold_comparison="greater_equal")
    lif = nir.NIRGraph(nodes={"in": nir.Input(np.array([1])), "w": nir.Linear(np.ones((1, 1))),
                              "l": nir.LIF(tau=np.array([0.01]), r=np.ones(1), v_leak=np.zeros(1),
                                           v_threshold=np.ones(1), v_reset=np.zeros(1)),
                              "out": nir.Output(np.array([1]))},
                       edges=[("in", "w"), ("w", "l"), ("l", "out")], type_check=False)
    with pytest.raises(ValueError, match=r"node 'l' \(LIF\): is a LIF.*use CubaLIF"):
        _chip(lif)
    fast = _graph(np.random.default_rng(0))
    fast.nodes["h"].tau_syn = np.full(8, 1.2 * DT)
    with pytest.raises(ValueError, match=r"node 'h' \(CubaLIF\): tau_syn / dt gives dash"):
        _chip(fast)


def test_xylo_reads_recorded_quantization():
    rng = np.random.default_rng(5)
    g = _graph(rng, recurrent=False)
    s = 0.01
    w_in = rng.integers(-128, 128, (8, 4))
    w_out = rng.integers(-128, 128, (3, 8))
    # effective weight = W * (Euler gain 1 here) / (1 - 2^-dash_syn) = integer * scale
    g.nodes["w_in"].weight = w_in * s * (1 - 2.0**-2)
    g.nodes["w_out"].weight = w_out * s * (1 - 2.0**-1)
    for k, thr in (("h", 300), ("o", 200)):
        g.nodes[k].v_threshold = np.full(g.nodes[k].v_threshold.shape, thr * s)
        g.nodes[k].metadata = {"nirjax.quantization": {"v_threshold": {
            "scale": s, "bits": 16, "signed": True}}}
    chip = _chip(g)
    np.testing.assert_array_equal(np.asarray(chip.nodes["w_in"].weight), w_in)
    np.testing.assert_array_equal(np.asarray(chip.nodes["w_out"].weight), w_out)
    assert np.all(np.asarray(chip.nodes["h"].threshold) == 300)
    g.nodes["w_in"].weight = g.nodes["w_in"].weight + 0.3 * s
    with pytest.raises(ValueError, match="node 'w_in'.*not an integer multiple"):
        _chip(g)
