"""Chip targets: each profile's clean graph passes, and for every rule of every built-in
profile one graph that breaks exactly that rule is reported under that rule alone (the test
is parametrized over the rules registry, so a new rule needs a case here)."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest

import nirjax
from nirjax._cli import main
from nirjax.targets import QUANTIZATION_KEY, TARGETS, quantize

DT = 1e-4
F32 = np.float32


def full(n, v):
    return np.full(n, v, F32)


def _rng():
    return np.random.default_rng(0)


def _cuba(n, tau_syn=4 * DT, tau_mem=8 * DT, impulse=True):
    return nir.CubaLIF(tau_syn=full(n, tau_syn), tau_mem=full(n, tau_mem),
                       r=full(n, tau_mem / DT), v_leak=full(n, 0), v_threshold=full(n, 1),
                       v_reset=full(n, 0), w_in=full(n, tau_syn if impulse else tau_syn / DT))


def _lif(n, tau=10 * DT):
    return nir.LIF(tau=full(n, tau), r=full(n, tau / DT), v_leak=full(n, 0),
                   v_threshold=full(n, 1), v_reset=full(n, 0))


def _chain(n_in, layers, metadata):
    """Input -> (weight -> neuron)* -> Output."""
    nodes = {"input": nir.Input(np.array(n_in if isinstance(n_in, list) else [n_in]))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    out = layers[-1][1]
    shape = np.asarray(next(iter(out.output_type.values())))
    nodes["output"] = nir.Output(shape)
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def clean(target: str) -> nir.NIRGraph:
    """A graph that fits `target` (quantized with `quantize`)."""
    rng = _rng()
    w = lambda o, i: (rng.normal(size=(o, i)) * 0.3).astype(F32)  # noqa: E731
    if target == "xylo":
        g = _chain(16, [("fc1", nir.Linear(weight=w(20, 16))), ("lif1", _cuba(20)),
                        ("fc2", nir.Linear(weight=w(4, 20))), ("lif2", _cuba(4))],
                   {"nirjax_dt": DT, "nirjax_reset": "subtract", "nirjax_input_mode": "impulse"})
    elif target == "loihi2":
        g = _chain(4, [("fc1", nir.Linear(weight=w(10, 4))), ("lif1", _lif(10)),
                       ("fc2", nir.Linear(weight=w(3, 10))), ("lif2", _lif(3))],
                   {"nirjax_dt": DT})
    elif target == "brainscales2":
        cli = nir.CubaLI(tau_syn=full(3, 5e-3), tau_mem=full(3, 1e-2), r=full(3, 1),
                         v_leak=full(3, 0), w_in=full(3, 1))
        g = _chain(4, [("fc1", nir.Linear(weight=w(10, 4))), ("lif1", _cuba(10, impulse=False)),
                       ("fc2", nir.Linear(weight=w(3, 10))), ("li2", cli)], {"nirjax_dt": DT})
    elif target == "spinnaker2":
        g = _chain(4, [("fc1", nir.Affine(weight=w(10, 4), bias=full(10, 0.1))),
                       ("lif1", _lif(10)), ("fc2", nir.Linear(weight=w(3, 10))),
                       ("lif2", _lif(3))], {"nirjax_dt": DT, "nirjax_reset": "subtract"})
    elif target == "speck":
        conv = nir.Conv2d(input_shape=(8, 8), weight=(rng.normal(size=(4, 2, 3, 3)) * 0.3)
                          .astype(F32), stride=1, padding=1, dilation=1, groups=1,
                          bias=full(4, 0.05))
        if1 = nir.IF(r=np.ones((4, 8, 8), F32), v_threshold=np.ones((4, 8, 8), F32),
                     v_reset=np.zeros((4, 8, 8), F32))
        flat = nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0, end_dim=-1)
        if2 = nir.IF(r=full(10, 1), v_threshold=full(10, 1), v_reset=full(10, 0))
        g = _chain([2, 8, 8], [("conv1", conv), ("if1", if1), ("flat", flat),
                               ("fc2", nir.Linear(weight=w(10, 256))), ("if2", if2)],
                   {"nirjax_dt": DT, "nirjax_input_mode": "impulse"})
    else:
        raise KeyError(target)
    return quantize(g, target)


def _scale(g, node, field="weight"):
    return float(g.nodes[node].metadata[QUANTIZATION_KEY][field]["scale"])


def _set(g, node, **fields):
    n = copy.copy(g.nodes[node])
    for k, v in fields.items():
        setattr(n, k, v)
    g.nodes[node] = n


def _add_delay(g):
    g.nodes["stray"] = nir.Delay(delay=np.zeros(2, F32))


def _first_neuron(g):
    return next(k for k in ("lif1", "if1") if k in g.nodes)


def _off_grid_weight(g):
    _set(g, "fc1", weight=g.nodes["fc1"].weight * F32(1.37) + F32(0.3 * _scale(g, "fc1")))


def _off_grid_threshold(g):
    k = _first_neuron(g)
    s = _scale(g, k, "v_threshold")
    _set(g, k, v_threshold=g.nodes[k].v_threshold + F32(0.5 * s))


def _set_v_reset(g):
    k = _first_neuron(g)
    _set(g, k, v_reset=np.full(np.shape(g.nodes[k].v_reset), 0.5, F32))


def _leak(g):
    _set(g, "lif1", v_leak=full(np.size(g.nodes["lif1"].v_leak), 0.1))


def _no_dt(g):
    g.metadata.pop("nirjax_dt")


def _gain(g):
    _set(g, "lif1", r=g.nodes["lif1"].r * F32(2))


def _bias(g):
    n = g.nodes["fc1"]
    g.nodes["fc1"] = nir.Affine(weight=n.weight, bias=full(n.weight.shape[0], 0.5),
                                metadata=n.metadata)


def _xylo_rec_output(g):
    g.nodes["rec2"] = nir.Linear(weight=np.zeros((4, 4), F32),
                                 metadata=copy.deepcopy(g.nodes["fc2"].metadata))
    g.edges += [("lif2", "rec2"), ("rec2", "lif2")]


def _xylo_one_layer(g):
    del g.nodes["fc1"], g.nodes["lif1"]
    g.edges[:] = [("input", "fc2"), ("fc2", "lif2"), ("lif2", "output")]


def _xylo_two_weights(g):
    g.nodes["fc1b"] = nir.Linear(weight=np.eye(20, dtype=F32))
    g.edges[:] = [e for e in g.edges if e != ("fc1", "lif1")] + [("fc1", "fc1b"),
                                                                 ("fc1b", "lif1")]


def _taus(g):
    _set(g, "lif1", tau_mem=full(20, 10 * DT), r=full(20, 10.0))


def _speck_rect_kernel(g):
    _set(g, "conv1", weight=np.ascontiguousarray(g.nodes["conv1"].weight[..., :2]))


def _speck_ten_layers(g):
    for i in range(9):
        g.nodes[f"extra{i}"] = nir.Linear(weight=np.zeros((2, 2), F32))


def _speck_big_layer(g):
    g.nodes["big"] = nir.Conv2d(input_shape=(8, 8), weight=np.zeros((128, 64, 3, 3), F32),
                                stride=1, padding=1, dilation=1, groups=1,
                                bias=np.zeros(128, F32))


def _speck_bias_off_grid(g):
    _set(g, "conv1", bias=g.nodes["conv1"].bias + F32(0.5 * _scale(g, "conv1")))


def _loihi_tau(g):
    _set(g, "lif1", tau=full(10, 0.5 * DT), r=full(10, 0.5))


def _bss2_inhomogeneous(g):
    _set(g, "lif1", tau_mem=np.linspace(7, 9, 10).astype(F32) * F32(DT))


def _s2_conv_cuba(g):
    g.nodes["conv"] = nir.Conv2d(input_shape=(4, 4), weight=np.zeros((1, 1, 3, 3), F32),
                                 stride=1, padding=1, dilation=1, groups=1,
                                 bias=np.zeros(1, F32))
    g.nodes["cuba"] = _cuba(16, impulse=False)
    g.edges.append(("conv", "cuba"))


BREAK = {
    ("xylo", "node_types"): _add_delay,
    ("xylo", "max_inputs"): lambda g: g.nodes.update(input=nir.Input(np.array([17]))),
    ("xylo", "max_outputs"): lambda g: g.nodes.update(output=nir.Output(np.array([9]))),
    ("xylo", "max_hidden_neurons"): lambda g: g.nodes.update(lif1=_cuba(1001)),
    ("xylo", "max_output_neurons"): lambda g: g.nodes.update(lif2=_cuba(9)),
    ("xylo", "weight_format"): _off_grid_weight,
    ("xylo", "v_threshold_format"): _off_grid_threshold,
    ("xylo", "no_bias"): _bias,
    ("xylo", "one_dt"): _no_dt,
    ("xylo", "outputs_from_neurons"): lambda g: g.edges.append(("fc2", "output")),
    ("xylo", "neuron_inputs_are_weights"): lambda g: g.edges.append(("lif1", "lif2")),
    ("xylo", "inputs_into_weights"): lambda g: g.edges.append(("input", "input")),
    ("xylo", "no_consecutive_weights"): _xylo_two_weights,
    ("xylo", "outputs_not_recurrent"): _xylo_rec_output,
    ("xylo", "min_neuron_layers"): _xylo_one_layer,
    ("xylo", "decay_shift"): _taus,
    ("xylo", "unit_input_gain"): _gain,
    ("xylo", "zero_leak"): _leak,
    ("xylo", "reset"): lambda g: g.metadata.pop("nirjax_reset"),
    ("speck", "node_types"): _add_delay,
    ("speck", "weight_format"): lambda g: _set(
        g, "fc2", weight=g.nodes["fc2"].weight + F32(0.5 * _scale(g, "fc2"))),
    ("speck", "bias_format"): _speck_bias_off_grid,
    ("speck", "v_threshold_format"): _off_grid_threshold,
    ("speck", "square_kernels"): _speck_rect_kernel,
    ("speck", "max_layers"): _speck_ten_layers,
    ("speck", "layers_fit_cores"): _speck_big_layer,
    ("speck", "reset"): _set_v_reset,
    ("speck", "no_self_loops"): lambda g: g.edges.append(("if1", "if1")),
    ("loihi2", "node_types"): _add_delay,
    ("loihi2", "weight_format"): _off_grid_weight,
    ("loihi2", "v_threshold_format"): _off_grid_threshold,
    ("loihi2", "no_bias"): _bias,
    ("loihi2", "decay_12bit"): _loihi_tau,
    ("loihi2", "unit_input_gain"): _gain,
    ("loihi2", "zero_leak"): _leak,
    ("loihi2", "reset"): _set_v_reset,
    ("brainscales2", "node_types"): _add_delay,
    ("brainscales2", "weight_format"): _off_grid_weight,
    ("brainscales2", "homogeneous"): _bss2_inhomogeneous,
    ("spinnaker2", "node_types"): _add_delay,
    ("spinnaker2", "weight_format"): _off_grid_weight,
    ("spinnaker2", "reset"): _set_v_reset,
    ("spinnaker2", "no_cubalif_after_conv2d"): _s2_conv_cuba,
    ("spinnaker2", "one_dt"): _no_dt,
}

BUILTIN = ("xylo", "speck", "loihi2", "brainscales2", "spinnaker2")
RULES = [(t, r.name) for t in BUILTIN for r in TARGETS[t].rules]


def test_every_rule_has_a_breaking_graph():
    assert sorted(RULES) == sorted(BREAK), "add a case to BREAK for every new rule"


def test_every_rule_cites_file_and_line():
    for t in BUILTIN:
        for r in TARGETS[t].rules:
            assert ".py" in r.source and any(c.isdigit() for c in r.source), (t, r.name)


@pytest.mark.parametrize("target", BUILTIN)
def test_clean_graph_fits(target):
    assert nirjax.check(clean(target), target) == []


@pytest.mark.parametrize(("target", "rule"), RULES)
def test_rule_catches_exactly_its_violation(target, rule):
    g = clean(target)
    g = nir.NIRGraph(nodes=dict(g.nodes), edges=list(g.edges), metadata=dict(g.metadata),
                     type_check=False)
    BREAK[(target, rule)](g)
    found = nirjax.check(g, target)
    assert found, f"{target}: rule {rule} did not fire"
    assert {v.rule for v in found} == {rule}, [str(v) for v in found]
    for v in found:
        assert v.allowed and v.received and v.fix


def test_violation_message_names_node_field_allowed_and_fix():
    g = clean("xylo")
    _off_grid_weight(g)
    (v,) = nirjax.check(g, "xylo")
    text = str(v)
    assert text.startswith("fc1.weight: [weight_format]")
    assert "signed 8-bit integers in [-128, 127]" in text and "fix: quantize" in text


def test_unquantized_float_graph_is_reported_and_quantize_fixes_it():
    rng = _rng()
    g = _chain(4, [("fc1", nir.Linear(weight=rng.normal(size=(10, 4)).astype(F32))),
                   ("lif1", _lif(10)), ("fc2", nir.Linear(weight=rng.normal(size=(3, 10))
                                                          .astype(F32))), ("lif2", _lif(3))],
               {"nirjax_dt": DT})
    found = nirjax.check(g, "loihi2")
    assert {(v.node, v.rule) for v in found} == {("fc1", "weight_format"),
                                                ("fc2", "weight_format")}
    q = quantize(g, "loihi2")
    assert nirjax.check(q, "loihi2") == []
    for k in ("fc1", "fc2"):  # integer mantissas in int8 times 2**e / 256
        rec = q.nodes[k].metadata[QUANTIZATION_KEY]["weight"]
        m = q.nodes[k].weight / rec["scale"]
        np.testing.assert_array_equal(m, np.round(m))
        assert np.abs(m).max() <= 128 and np.log2(rec["scale"] * 256) % 1 == 0
        # the finest power of two: the largest weight needs more than half the mantissa range
        assert np.abs(m).max() > 63
    assert q.metadata["nirjax.target"]["name"] == "loihi2"
    np.testing.assert_array_equal(q.nodes["lif1"].v_threshold * 256, 256)


def test_quantize_keeps_threshold_exact_with_reciprocal_scales():
    q = clean("xylo")
    s = _scale(q, "fc1")
    n = round(1 / s)
    assert abs(1 / s - n) < 1e-4
    assert np.abs(np.round(q.nodes["fc1"].weight * n)).max() <= 127
    np.testing.assert_array_equal(q.nodes["lif1"].v_threshold, 1.0)  # = n * (1/n)


def test_quantize_refuses_a_bias_the_chip_lacks():
    g = clean("loihi2")
    _bias(g)
    with pytest.raises(ValueError, match="node 'fc1' .*nonzero bias, which loihi2 does not"):
        quantize(g, "loihi2")


def test_quantization_survives_the_file(tmp_path):
    path = tmp_path / "q.nir"
    nirjax.write(path, clean("xylo"))
    assert nirjax.check(path, "xylo") == []
    rec = nirjax.targets.quantization(nir.read(path).nodes["fc1"])
    assert rec["weight"]["bits"] == 8 and rec["weight"]["signed"] is True


def test_user_defined_target():
    from nirjax.targets import NumberFormat, Target, register_target, rules

    mine = Target(
        name="mychip-test", description="a made-up chip",
        formats={"weight": NumberFormat(4, True, "power_of_two")},
        rules=(rules.max_channels("input", 3, "mychip/spec.py:1"),
               rules.field_format("weight", "mychip/spec.py:2")),
    )
    register_target(mine)
    try:
        g = clean("loihi2")  # 4 inputs, 8-bit weights
        found = nirjax.check(g, "mychip-test")
        assert {v.rule for v in found} == {"max_inputs", "weight_format"}
        assert nirjax.check(quantize(g, "mychip-test"), "mychip-test")[0].rule == "max_inputs"
        with pytest.raises(ValueError, match="already registered"):
            register_target(mine)
    finally:
        TARGETS.pop("mychip-test")


def test_unknown_target_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown target 'tpu'; known targets: \['brainscales2'"):
        nirjax.check(clean("xylo"), "tpu")


def test_cli_check_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.nir", tmp_path / "bad.nir"
    g = clean("xylo")
    nirjax.write(good, g)
    assert main(["check", str(good), "--target", "xylo"]) == 0
    assert "fits xylo" in capsys.readouterr().out
    _off_grid_weight(g)
    _leak(g)
    nirjax.write(bad, g)
    assert main(["check", str(bad), "--target", "xylo"]) == 2
    out = capsys.readouterr()
    assert "2 violation(s) of xylo" in out.out
    assert "fc1.weight: [weight_format]" in out.out and "lif1.v_leak: [zero_leak]" in out.out
    assert "xylo_mapper.py:327" in out.out
    assert main(["check", str(good), "--target", "tpu"]) == 2
    assert "--target 'tpu' is not known" in capsys.readouterr().err
