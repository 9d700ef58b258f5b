"""The network builder `nirjax.nn`: the NIR paper's CNN and Braille graphs rebuilt in a few lines
equal the files; shape inference; skip connections and fan-in; errors name the layer."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import conformance

import nirjax
from nirjax import nn

SKIP_FIELDS = {"metadata", "input_type", "output_type"}


def assert_same_structure(built: nir.NIRGraph, ref: nir.NIRGraph, *, values: bool = True):
    """Same node names and types, same per-step shapes (as nirjax's plan infers them and as the
    nodes' NIR types state), same edges, and (with `values`) every field equal."""
    assert sorted(built.nodes) == sorted(ref.nodes)
    assert sorted(built.edges) == sorted(ref.edges)
    for name, r in ref.nodes.items():
        b = built.nodes[name]
        assert type(b) is type(r), name
        for port in ("input_type", "output_type"):
            rt, bt = getattr(r, port) or {}, getattr(b, port) or {}
            for key, shape in rt.items():
                if np.asarray(shape).dtype == object:  # a node type nirjax.write leaves untyped
                    continue
                np.testing.assert_array_equal(np.asarray(bt[key]), np.asarray(shape),
                                              err_msg=f"{name}.{port}")
        for field, rv in vars(r).items():
            if field in SKIP_FIELDS:
                continue
            bv = getattr(b, field)
            if values:
                np.testing.assert_array_equal(np.asarray(bv), np.asarray(rv), err_msg=f"{name}.{field}")
            else:
                assert np.shape(bv) == np.shape(rv), f"{name}.{field}"
    gb, gr = nirjax.from_nir(built, dt=1e-4), nirjax.from_nir(ref, dt=1e-4)
    assert gb.plan.in_shapes == gr.plan.in_shapes
    assert gb.plan.back_edges == gr.plan.back_edges


def _fields(node, *names):
    return {n: getattr(node, n) for n in names}


CNN_LAYERS = lambda src: [  # noqa: E731 - the paper's CNN: 13 layers in 5 lines
    nn.Conv2d(stride=2, padding=1, **_fields(src["0"], "weight", "bias")), nn.IF(),
    nn.Conv2d(padding=1, **_fields(src["2"], "weight", "bias")), nn.IF(), nn.SumPool2d(2),
    nn.Conv2d(padding=1, **_fields(src["5"], "weight", "bias")), nn.IF(), nn.SumPool2d(2),
    nn.Flatten(), nn.Affine(**_fields(src["9"], "weight", "bias")), nn.IF(),
    nn.Affine(**_fields(src["11"], "weight", "bias")), nn.IF(),
]


def test_paper_cnn_rebuilt_equals_file():
    ref = nir.read(conformance("cnn", "cnn_sinabs.nir"))
    built = nn.Sequential(*CNN_LAYERS(ref.nodes)).to_nir((2, 34, 34))
    assert_same_structure(built, ref)
    # and it computes the same: the file's and the built graph agree on a random spike input
    xs = (jax.random.uniform(jax.random.key(0), (20, 2, 34, 34)) < 0.2).astype(jnp.float32)
    ys_ref = nirjax.from_nir(ref, dt=1e-4, input_mode="impulse")(xs)
    ys = nirjax.from_nir(built, dt=1e-4, input_mode="impulse")(xs)
    np.testing.assert_array_equal(np.asarray(ys), np.asarray(ys_ref))
    assert float(jnp.sum(ys_ref)) > 0  # the comparison is not between two silent networks


def test_paper_cnn_from_sizes_has_the_files_shapes():
    ref = nir.read(conformance("cnn", "cnn_sinabs.nir"))
    net = nn.Sequential(
        nn.Conv2d(16, 5, stride=2, padding=1), nn.IF(),
        nn.Conv2d(16, 3, padding=1), nn.IF(), nn.SumPool2d(2),
        nn.Conv2d(8, 3, padding=1), nn.IF(), nn.SumPool2d(2),
        nn.Flatten(), nn.Affine(256), nn.IF(), nn.Affine(10), nn.IF(),
    )
    assert_same_structure(net.to_nir((2, 34, 34)), ref, values=False)
    shapes = net.network((2, 34, 34)).shapes
    assert shapes["0"] == ((2, 34, 34), (16, 16, 16))  # floor((34 + 2 - 5) / 2) + 1 = 16
    assert shapes["7"] == ((8, 8, 8), (8, 4, 4))
    assert shapes["8"] == ((8, 4, 4), (128,))


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero", "braille_noDelay_noBias_subtract"])
def test_paper_braille_rebuilt_equals_file(name):
    ref = nir.read(conformance("braille", f"{name}.nir"))
    src = ref.nodes
    dense = nn.Affine if isinstance(src["fc1"], nir.Affine) else nn.Linear
    cuba = lambda n: nn.CubaLIF(**{k: v for k, v in vars(src[n]).items() if k not in SKIP_FIELDS})  # noqa: E731
    w = lambda n: dense(**{k: v for k, v in vars(src[n]).items() if k in ("weight", "bias")})  # noqa: E731
    net = nn.Sequential(fc1=w("fc1"), lif1=nn.Recurrent(cuba("lif1.lif"), w("lif1.w_rec")),
                        fc2=w("fc2"), lif2=cuba("lif2"))
    built = net.to_nir(12)
    assert_same_structure(built, ref)
    back = nirjax.from_nir(built, dt=1e-4).plan.back_edges
    assert [(e.src, e.dst) for e in back] == [("lif1.w_rec", "lif1.lif")]


def test_braille_from_sizes_functional_style():
    ref = nir.read(conformance("braille", "braille_noDelay_bias_zero.nir"))
    cell = dict(tau_syn=5e-3, tau_mem=2e-2, r=200.0, w_in=50.0)
    x = nn.Input(12)
    h = nn.Recurrent(nn.CubaLIF(**cell), nn.Affine(38), name="lif1")(nn.Affine(38, name="fc1")(x))
    y = nn.CubaLIF(**cell, name="lif2")(nn.Affine(7, name="fc2")(h))
    assert_same_structure(nn.Network(x, y).to_nir(), ref, values=False)


def test_skip_connection_and_fan_in_sum():
    w1, w2 = np.arange(12.0).reshape(4, 3) / 10, -np.ones((4, 3))
    b1, b2 = np.arange(4.0), np.full(4, 0.5)
    x = nn.Input(3)
    a = nn.Affine(weight=w1, bias=b1, name="a")(x)
    skip = nn.Affine(weight=w2, bias=b2, name="skip")(x)
    net = nn.Network(x, nn.Scale(2.0, name="sum")(a + skip))
    assert sorted(net.edges()) == sorted(
        [("input", "a"), ("input", "skip"), ("a", "sum"), ("skip", "sum"), ("sum", "output")])
    xs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    ys = net.build(dt=1e-3)(jnp.asarray(xs))
    expected = 2.0 * (xs @ w1.T + b1 + xs @ w2.T + b2)
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-5, atol=1e-5)
    # several signals into one call are the same fan-in
    net2 = nn.Network(x, nn.Scale(2.0, name="sum2")(a, skip))
    assert ("a", "sum2") in net2.edges() and ("skip", "sum2") in net2.edges()


def test_residual_spiking_block_trains_gradients():
    x = nn.Input(6)
    h = nn.LIF(tau=1e-3, r=10.0, name="lif1")(nn.Affine(6, name="fc1")(x))
    y = nn.LIF(tau=1e-3, r=10.0, name="lif2")(nn.Affine(6, name="fc2")(h) + x)  # residual
    graph = nn.Network(x, {"spikes": y}).build(dt=1e-4, seed=1)
    assert graph.outputs == ("spikes",)
    xs = (jax.random.uniform(jax.random.key(1), (30, 6)) < 0.5).astype(jnp.float32)
    grads = jax.grad(lambda g: g(xs).sum())(graph)
    assert float(jnp.abs(grads.nodes["fc1"].weight).sum()) > 0


def test_auto_names_and_seeded_weights():
    def net(extra: bool):
        x = nn.Input(4)
        h = nn.LIF(tau=1e-3)(nn.Affine(5)(x))
        if extra:
            h = nn.Affine(5, name="extra")(h)
        return nn.Network(x, nn.LIF(tau=1e-3)(nn.Affine(3)(h)))

    g = net(False).to_nir(seed=3)
    assert sorted(g.nodes) == ["affine1", "affine2", "input", "lif1", "lif2", "output"]
    again, other = net(False).to_nir(seed=3), net(False).to_nir(seed=4)
    np.testing.assert_array_equal(g.nodes["affine1"].weight, again.nodes["affine1"].weight)
    assert not np.array_equal(g.nodes["affine1"].weight, other.nodes["affine1"].weight)
    # a layer added elsewhere leaves the other layers' draws unchanged (seeded by name)
    np.testing.assert_array_equal(g.nodes["affine1"].weight,
                                  net(True).to_nir(seed=3).nodes["affine1"].weight)
    bound = 1 / np.sqrt(4)  # PyTorch's range: uniform in +-1/sqrt(fan_in)
    assert np.abs(g.nodes["affine1"].weight).max() <= bound


def test_written_and_read_back(tmp_path):
    net = nn.Sequential(nn.Conv2d(4, 3, padding="same"), nn.LIF(tau=2e-3), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Affine(5), nn.LI(tau=2e-3))
    graph = net.build((2, 8, 8), dt=1e-4)
    nirjax.write(tmp_path / "m.nir", graph)
    back = nirjax.read(tmp_path / "m.nir")
    assert_same_structure(net.to_nir((2, 8, 8)), back, values=True)


def test_shape_error_names_layer_expected_and_received():
    w = np.zeros((38, 12))
    with pytest.raises(ValueError, match=r"layer 'fc1' \(Affine\): weight \(38, 12\) expects 12 "
                       r"input features, received input of shape \(10,\)"):
        nn.Sequential(fc1=nn.Affine(weight=w)).network(10)
    with pytest.raises(ValueError, match=r"layer '2' \(Affine\): takes a flat input .* received "
                       r"shape \(4, 4, 4\)\. Put nn.Flatten\(\) before it"):
        nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.IF(), nn.Affine(10)).network((1, 4, 4))
    with pytest.raises(ValueError, match=r"layer 'c' \(Conv2d\): takes a per-step input \(C, H, W\), "
                       r"received shape \(16,\)"):
        nn.Sequential(c=nn.Conv2d(4, 3)).network(16)
    with pytest.raises(ValueError, match=r"layer 'c' \(Conv2d\): weight \(4, 3, 3, 3\) expects 3 "
                       r"input channels, received input of shape \(2, 8, 8\)"):
        nn.Sequential(c=nn.Conv2d(weight=np.zeros((4, 3, 3, 3)))).network((2, 8, 8))
    with pytest.raises(ValueError, match=r"layer 'lif' \(LIF\), field 'tau'.*shape \(3,\) does not "
                       r"broadcast to the layer's shape \(5,\)"):
        nn.Sequential(fc=nn.Affine(5), lif=nn.LIF(tau=np.ones(3))).network(2)


def test_structural_errors():
    x = nn.Input(3)
    a, b = nn.Affine(4, name="a")(x), nn.Affine(5, name="b")(x)
    with pytest.raises(ValueError, match=r"fan-in: summed signals must have one shape, received "
                       r"'a' \(4,\), 'b' \(5,\)"):
        nn.LIF(tau=1e-3)(a, b)
    with pytest.raises(ValueError, match=r"recurrent block 'r': the recurrent weight maps \(4,\) "
                       r"to \(2,\), but the neuron takes \(4,\)"):
        nn.Recurrent(nn.LIF(tau=1e-3), nn.Linear(2), name="r")(a)
    with pytest.raises(ValueError, match=r"node names \['a'\] are used more than once"):
        nn.Network(x, nn.Affine(2, name="a")(a))
    other = nn.Input(3, name="other")
    with pytest.raises(ValueError, match=r"depend on Input 'other', which is not among `inputs`"):
        nn.Network(x, a + nn.Affine(4)(other))
    with pytest.raises(TypeError, match=r"LIF: missing tau"):
        nn.LIF()
    with pytest.raises(TypeError, match=r"expected signals .* received ndarray"):
        nn.Affine(3)(np.zeros(3))


def test_any_nir_node_and_custom_neuron_as_layer():
    from custom_neurons import AdaptiveLIF, AdaptiveLIFNode  # registered in tests/custom_neurons

    assert issubclass(AdaptiveLIF, nirjax.Neuron)
    fields = dict(tau=1e-3, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0, tau_w=1e-2, b=0.1)
    net = nn.Sequential(nn.Affine(4), nn.Neuron(AdaptiveLIFNode, **fields),
                        nn.Node(nir.Scale(scale=np.full(4, 2.0, np.float32))))
    g = net.to_nir(3)
    assert isinstance(g.nodes["1"], AdaptiveLIFNode) and g.nodes["1"].tau.shape == (4,)
    with pytest.raises(ValueError, match=r"layer 's' \(Scale\): expects per-step input of shape "
                       r"\(5,\), received \(4,\)"):
        nn.Sequential(nn.Affine(4), s=nn.Node(nir.Scale(scale=np.ones(5, np.float32)))).network(3)
