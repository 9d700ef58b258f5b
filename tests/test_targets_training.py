"""Quantization-aware training for chip targets (`training.fit(..., target=...)`,
`nirjax train --target`) and the export to Rockpool's Xylo mapper."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax
import training
from nirjax._cli import main
from nirjax.targets import QUANTIZATION_KEY


def _graph(target, n_in=64, n_out=10, hidden=(16,)):
    net = training.target_network(target, n_in, n_out, hidden=hidden, dt=1e-4, seed=0)
    return nirjax.from_nir(net, dt=1e-4, **training.target_options(target))


@pytest.mark.parametrize("target", ["xylo", "loihi2", "speck", "brainscales2", "spinnaker2"])
def test_target_network_fits_its_target_once_quantized(target):
    g = _graph(target, n_in=16, n_out=4)
    assert nirjax.check(nirjax.targets.quantize(g, target), target) == []


def test_fake_quantize_matches_quantize_and_passes_gradients_straight_through():
    g = _graph("loihi2")
    fq = training.fake_quantize(g, "loihi2")
    q = nirjax.targets.quantize(g, "loihi2")
    for k in ("fc1", "fc_out"):
        np.testing.assert_array_equal(np.asarray(fq.nodes[k].weight), q.nodes[k].weight)
        s = q.nodes[k].metadata[QUANTIZATION_KEY]["weight"]["scale"]
        m = q.nodes[k].weight / s
        np.testing.assert_array_equal(m, np.round(m))
    c = jnp.asarray(np.random.default_rng(1).normal(size=g.nodes["fc1"].weight.shape),
                    jnp.float32)
    grad = jax.grad(lambda w: jnp.sum(
        training.fake_quantize(_with(g, w), "loihi2").nodes["fc1"].weight * c
    ))(g.nodes["fc1"].weight)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(c))  # d(w_hat)/dw = 1


def _with(g, w):
    import equinox as eqx

    return eqx.tree_at(lambda t: t.nodes["fc1"].weight, g, w)


def test_fit_with_target_exports_a_chip_exact_graph_that_computes_what_was_trained():
    train, test = training.digits(n_steps=8)
    train = train.subset(np.arange(128))
    g = _graph("loihi2")
    cfg = training.TrainConfig(epochs=1, batch_size=32, loss="counts", train=("weight",))
    r = training.fit(g, train, config=cfg, progress=False, target="loihi2")
    assert isinstance(r.quantized, nir.NIRGraph)
    assert nirjax.check(r.quantized, "loihi2") == []
    assert r.quantized.metadata["nirjax.target"]["name"] == "loihi2"
    # the exported graph, run as plain float NIR, gives what the QAT forward pass computed
    assert training.evaluate(r.graph, test)["accuracy"] == r.evaluate(test)["accuracy"]


def test_fit_with_target_refuses_a_network_the_chip_cannot_run():
    train, _ = training.random_manifolds(n_steps=8, n_inputs=16, samples_per_class=4)
    g = nirjax.from_nir(training.feedforward_snn(16, 4, hidden=(8,)), dt=1e-4)
    with pytest.raises(ValueError, match=r"fit\(target='xylo'\): the graph breaks \d+ rule"
                                         r"\(s\) of xylo that training cannot fix, first: "):
        training.fit(g, train, config=training.TrainConfig(epochs=1), progress=False,
                     target="xylo")


def test_train_command_with_target(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--target", "xylo", "--dataset", "manifolds", "--epochs", "1",
                 "--hidden", "8", "--limit", "32", "--no-progress", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == "xylo" and metrics["violations"] == []
    assert metrics["job"]["target"] == "xylo"
    model = nir.read(out / "model.nir")
    assert model.nodes["input"].input_type["input"].tolist() == [16]  # Xylo: <= 16 inputs
    assert main(["check", str(out / "model.nir"), "--target", "xylo"]) == 0
    assert os.path.exists(out / "training.png")


@pytest.mark.interop
@pytest.mark.filterwarnings("ignore::DeprecationWarning:rockpool.*")  # numpy 2 copy keyword
def test_xylo_graph_passes_rockpools_mapper():
    pytest.importorskip("rockpool")
    import nirjax.interop

    g = _graph("xylo", n_in=16, n_out=4, hidden=(12,))
    q = nirjax.targets.quantize(g, "xylo")
    spec = nirjax.interop.to_xylo(q)
    s_in = q.nodes["fc1"].metadata[QUANTIZATION_KEY]["weight"]["scale"]
    s_out = q.nodes["fc_out"].metadata[QUANTIZATION_KEY]["weight"]["scale"]
    np.testing.assert_array_equal(spec["weights_in"], np.round(q.nodes["fc1"].weight.T / s_in))
    np.testing.assert_array_equal(spec["weights_out"],
                                  np.round(q.nodes["fc_out"].weight.T / s_out))
    np.testing.assert_array_equal(spec["threshold"], round(1 / s_in))
    np.testing.assert_array_equal(spec["threshold_out"], round(1 / s_out))
    assert set(spec["dash_mem"]) == {3} and set(spec["dash_syn"]) == {2}  # 8 dt, 4 dt
    assert np.abs(spec["weights_in"]).max() <= 127


@pytest.mark.interop
@pytest.mark.filterwarnings("ignore::DeprecationWarning:rockpool.*")
def test_xylo_export_of_an_unquantized_graph_is_refused():
    pytest.importorskip("rockpool")
    import nirjax.interop

    g = nirjax.to_nir(_graph("xylo", n_in=16, n_out=4, hidden=(4,)))
    with pytest.raises(ValueError, match="quantize the graph with nirjax.targets.quantize"):
        nirjax.interop.to_xylo(g)


def test_a_float_checkpoint_does_not_resume_as_quantization_aware(tmp_path):
    train, _ = training.digits(n_steps=4)
    train = train.subset(np.arange(32))
    g = _graph("loihi2", hidden=(4,))
    cfg = training.TrainConfig(epochs=2, batch_size=16, loss="counts", train=("weight",))
    training.fit(g, train, config=cfg, progress=False, out_dir=tmp_path, stop_after=1)
    with pytest.raises(ValueError, match="written with other settings"):
        training.fit(g, train, config=cfg, progress=False, out_dir=tmp_path, target="loihi2")
