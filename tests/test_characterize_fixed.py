"""Characterizing a chip recording with the chip's own fixed-point arithmetic (issue 15, the
Loihi row): the paper's recording bit exactly, a synthetic Loihi with other integer constants
and latency (made with an independent numpy loop), and a recording it cannot explain."""

import json

import numpy as np
import pytest
from helpers import conformance

import nirjax
from nirjax._cli import main
from training import characterize_fixed

DT = 1e-4


def _paper():
    return nirjax.from_nir(conformance("lif", "lif_norse.nir"), dt=DT)


def _loihi_lif(x, w, dv, vth, latency):
    """Lava's Dense (one-step buffer) + LIF bit-accurate with du = 4095, written out in numpy,
    with `latency` extra steps on the input; the probe reads 128 on spike steps (hardware)."""
    x = np.concatenate([np.zeros(latency), x[: len(x) - latency]])
    a_prev, v = 0, 0
    vs, zs = [], []
    for t in range(len(x)):
        u = a_prev << 6  # u decays fully (du + 1 = 4096)
        a_prev = int(w * x[t])
        prod = v * (4096 - dv)
        v = int(np.sign(prod)) * (abs(prod) >> 12) + u
        z = v > (vth << 6)
        v = 0 if z else v
        vs.append(128 if z else v)
        zs.append(int(z))
    return np.array(vs, float), np.array(zs, float)


def test_loihi_recording_is_explained_bit_exactly():
    d = np.loadtxt(conformance("lif", "lif_lava_loihi_fixed.csv"), delimiter=",")
    _, rep = characterize_fixed(_paper(), "loihi2", inputs=d[:, :1], v=d[:, 1], spikes=d[:, 2])
    assert rep.verdict == "explained" and rep.rms == 0.0 and rep.spikes_reproduced
    assert rep.latency == 1 and rep.extra_latency == 0  # the Lava Dense pipeline
    assert rep.scale == 1.0 and rep.offset == 0.0
    assert rep.constants["1.dv"] == (163, 163) and rep.constants["1.vth"] == (25, 25)
    assert rep.constants["0.weight"] == (10, 10)


def test_synthetic_loihi_constants_and_latency_are_recovered():
    x = np.loadtxt(conformance("lif", "lif_lava_loihi_fixed.csv"), delimiter=",")[:, 0]
    v, z = _loihi_lif(x, w=12, dv=160, vth=27, latency=2)
    assert z.sum() >= 3
    _, rep = characterize_fixed(_paper(), "loihi2", inputs=x[:, None], v=v, spikes=z)
    assert rep.verdict == "explained" and rep.rms == 0.0
    assert rep.extra_latency == 2 and rep.latency == 3
    assert rep.constants["1.dv"][1] == 160
    # the recording bounds the threshold only to 26 <= vth <= 27 (v never lands between
    # 26 << 6 and 27 << 6 on the way up); the tie closest to the nominal 25 is kept
    assert rep.constants["1.vth"][1] in (26, 27)
    assert rep.constants["0.weight"][1] == 12


def test_float_recording_is_unexplained_by_the_integer_model():
    d = np.loadtxt(conformance("lif", "lif_lava_cpu_float.csv"), delimiter=",")
    _, rep = characterize_fixed(_paper(), "loihi2", inputs=d[:, :1], v=d[:, 1], spikes=d[:, 2])
    assert rep.verdict == "unexplained"
    assert "voltage residual" in rep.message


def test_cli_platform(tmp_path):
    out = tmp_path / "row.json"
    code = main(["characterize", conformance("lif", "lif_norse.nir"), "--dt", str(DT),
                 "--platform", "loihi2", "--recording",
                 conformance("lif", "lif_lava_loihi_fixed.csv"), "--json", str(out)])
    assert code == 0
    row = json.loads(out.read_text())
    assert row["verdict"] == "explained" and row["rms"] == 0.0 and row["latency"] == 1


@pytest.mark.slow
def test_cli_platform_unexplained_exits_3(capsys):
    code = main(["characterize", conformance("lif", "lif_norse.nir"), "--dt", str(DT),
                 "--platform", "loihi2", "--recording",
                 conformance("lif", "lif_lava_cpu_float.csv")])
    assert code == 3
    assert "cannot explain" in capsys.readouterr().out


def test_cli_platform_refuses_out(tmp_path, capsys):
    code = main(["characterize", conformance("lif", "lif_norse.nir"), "--dt", str(DT),
                 "--platform", "loihi2", "--recording",
                 conformance("lif", "lif_lava_loihi_fixed.csv"), "--out", str(tmp_path / "c.nir")])
    assert code == 2
    assert "--out: with --platform" in capsys.readouterr().err
