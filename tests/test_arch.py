"""`nirjax train --arch`: architecture strings, built with `nirjax.nn`, train end to end."""

import json

import nir
import numpy as np
import pytest

import nirjax
from training._arch import arch_snn, parse_arch


def test_parse_arch_tokens():
    a = parse_arch("1x8x8:c8k3p1,sp2,c4k3s2,ap2,flat,fc64")
    assert a.input_shape == (1, 8, 8)
    assert a.layers == (("conv", 8, 3, 1, 1), ("pool", "sp", 2), ("conv", 4, 3, 2, 0),
                        ("pool", "ap", 2), ("flat",), ("fc", 64))
    assert parse_arch("fc128,fc64").input_shape is None


@pytest.mark.parametrize("text, message", [
    ("1x8x8:c8k3,q", r"layer 'q' is not known\. Syntax: \[CxHxW:\]LAYER"),
    ("axb:fc3", r"input shape 'axb' is not like 1x8x8"),
    ("fc0", r"layer 'fc0' needs sizes >= 1"),
    ("c8k0", r"layer 'c8k0' needs sizes >= 1"),
    ("", r"no layers"),
])
def test_parse_arch_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_arch(text)


def test_conv_arch_on_digits_shapes():
    g = arch_snn("1x8x8:c8k3p1,sp2,fc64", (64,), 10, dt=1e-4, tau_mem=1e-3)
    assert list(g.nodes) == ["input", "conv1", "lif1", "pool1", "flat1", "fc1", "lif2",
                             "fc_out", "readout", "output"]
    assert isinstance(g.nodes["conv1"], nir.Conv2d) and isinstance(g.nodes["pool1"], nir.SumPool2d)
    shapes = nirjax.from_nir(g).plan.in_shapes
    # a 3x3 kernel with padding 1 keeps 8x8; the 2x2 sum pool halves it: 8 * 4 * 4 = 128
    assert shapes["lif1"] == (8, 8, 8) and shapes["flat1"] == (8, 4, 4) and shapes["fc1"] == (128,)
    assert shapes["readout"] == (10,)
    lif = g.nodes["lif1"]  # r = tau / dt: the snnTorch convention of feedforward_snn
    np.testing.assert_allclose(lif.r, 1e-3 / 1e-4)
    assert g.metadata["arch"] == "1x8x8:c8k3s1p1,sp2,fc64"


def test_recurrent_neuron_gets_recurrent_weights_on_fc_layers_only():
    g = arch_snn("fc16", (12,), 3, neuron="rlif")
    assert {"lif1.lif", "lif1.w_rec"} <= set(g.nodes)
    assert ("lif1.w_rec", "lif1.lif") in g.edges
    with pytest.raises(ValueError, match="recurrent weights for fc layers only"):
        arch_snn("1x8x8:c4k3", (64,), 10, neuron="rcubalif")
    with pytest.raises(ValueError, match=r"the first layer takes an image \(C, H, W\) per step, "
                       r"but the inputs are flat, shape \(64,\)"):
        arch_snn("c4k3", (64,), 10)


def test_train_conv_arch_end_to_end(tmp_path, capsys):
    from nirjax._cli import main

    out = tmp_path / "run"
    rc = main(["train", "--arch", "1x8x8:c8k3p1,sp2", "--epochs", "4", "--limit", "400",
               "--batch-size", "32", "--lr", "5e-3", "--out", str(out), "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0]
    assert metrics["test_accuracy"] > 0.3  # chance is 0.1
    graph = nirjax.load(out / "model.nir")
    assert isinstance(graph.nodes["conv1"], nirjax.Conv2d) and graph.input_shapes() == (1, 8, 8)


def test_train_arch_usage_errors(tmp_path, capsys):
    from nirjax._cli import main

    assert main(["train", "--arch", "fc8", "--hidden", "8", "--out", str(tmp_path)]) == 2
    assert "--arch and --hidden both give the architecture" in capsys.readouterr().err
    assert main(["train", "--arch", "2x8x8:c4k3", "--out", str(tmp_path), "--no-progress"]) == 2
    assert ("input shape 2x8x8 has 128 values per step, but dataset 'digits-train' has per-step "
            "shape (64,)") in capsys.readouterr().err
    assert main(["train", "--arch", "c8k3,zz"]) == 2
    assert "layer 'zz' is not known" in capsys.readouterr().err
