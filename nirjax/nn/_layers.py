"""Layers of the network builder: each one makes one NIR node once it knows its input shape.

A layer is a recipe, not a node: `layer.node(name, input_shape, rng)` returns the NIR node
(`nir.Affine`, `nir.Conv2d`, `nir.LIF`, ...) for that input shape, drawing its initial weights
from `rng` unless they were given. The shapes that follow from the input (an Affine's input
features, a Conv2d's input channels and `input_shape`, a neuron's size, a Flatten's
`input_type`) are filled in; the sizes a layer chooses (output features, channels, kernel) are
its arguments.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import nir
import numpy as np

Shape = tuple[int, ...]

__all__ = [
    "Layer", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
    "Flatten", "Threshold", "Delay", "Neuron", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF",
    "Node",
]


class Layer:
    """A recipe for one NIR node. Call it on a signal (`layer(x)`, `layer(a, b)` for fan-in)
    inside a `Network`, or list it in a `Sequential`.

    `name` names the node in the graph (default: its index in a `Sequential`, else the layer
    kind and a counter, e.g. `affine1`).
    """

    kind = "layer"

    def __init__(self, *, name: str | None = None):
        self.name = name

    def node(self, name: str, input_shape: Shape, rng: np.random.Generator) -> nir.NIRNode:
        raise NotImplementedError(f"{type(self).__name__} does not define node()")

    def __call__(self, *signals):
        from ._network import apply

        return apply(self, signals)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _where(layer: Layer, name: str) -> str:
    return f"layer {name!r} ({type(layer).__name__})"


def _array(value: Any, what: str) -> np.ndarray:
    """A given parameter as an array: a float array keeps its dtype (a file's float64 stays
    float64); Python numbers, lists and int arrays become float32."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected numbers, received dtype {arr.dtype}.")
    if arr.dtype.kind != "f" or not hasattr(value, "dtype"):
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or infinite values; pass finite numbers.")
    return arr


def _uniform(rng, bound: float, shape: Shape) -> np.ndarray:
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _flat_features(layer: Layer, name: str, input_shape: Shape) -> int:
    if len(input_shape) != 1:
        raise ValueError(
            f"{_where(layer, name)}: takes a flat input (features,), received shape "
            f"{tuple(input_shape)}. Put nn.Flatten() before it."
        )
    return int(input_shape[0])


class _Dense(Layer):
    bias = False

    def __init__(self, out_features: int | None = None, *, weight=None, bias=None,
                 gain: float = 1.0, name: str | None = None):
        super().__init__(name=name)
        self.out_features, self.weight, self.gain = out_features, weight, float(gain)
        self.bias_value = bias
        if weight is not None:
            w = np.asarray(weight)
            if w.ndim != 2:
                raise ValueError(
                    f"{type(self).__name__}{'' if name is None else f' {name!r}'}: weight must "
                    f"be 2-d (out_features, in_features), received shape {w.shape}."
                )
            if out_features is not None and w.shape[0] != out_features:
                raise ValueError(
                    f"{type(self).__name__}{'' if name is None else f' {name!r}'}: "
                    f"out_features={out_features} but weight has {w.shape[0]} rows; pass one "
                    "of them."
                )

    def _weight_bias(self, name, input_shape, rng):
        n_in = _flat_features(self, name, input_shape)
        where = _where(self, name)
        if self.weight is not None:
            w = _array(self.weight, f"{where}, weight")
            if w.shape[1] != n_in:
                raise ValueError(
                    f"{where}: weight {w.shape} expects {w.shape[1]} input features, received "
                    f"input of shape {tuple(input_shape)}. Pass a weight of shape "
                    f"({w.shape[0]}, {n_in}) or fix the layer before."
                )
        else:
            n_out = n_in if self.out_features is None else int(self.out_features)
            if n_out < 1:
                raise ValueError(f"{where}: out_features must be >= 1, received {n_out}.")
            w = _uniform(rng, self.gain / math.sqrt(n_in), (n_out, n_in))
        b = None
        if self.bias:
            if self.bias_value is not None:
                b = _array(self.bias_value, f"{where}, bias")
                if b.shape != (w.shape[0],):
                    raise ValueError(
                        f"{where}: bias must have shape ({w.shape[0]},), received {b.shape}."
                    )
            else:
                b = _uniform(rng, self.gain / math.sqrt(n_in), (w.shape[0],))
        return w, b


class Affine(_Dense):
    """`nir.Affine`, `y = W x + b`, on a flat input. `out_features` (default: as many as the
    input; omit it when `weight` is given); `weight (out, in)` and `bias (out,)` are used as
    given, else drawn uniform in `±gain / sqrt(in)` (PyTorch's default range)."""

    kind, bias = "affine", True

    def node(self, name, input_shape, rng):
        w, b = self._weight_bias(name, input_shape, rng)
        return nir.Affine(weight=w, bias=b)


class Linear(_Dense):
    """`nir.Linear`, `y = W x`, on a flat input; arguments as `Affine` (no bias)."""

    kind = "linear"

    def __init__(self, out_features: int | None = None, *, weight=None, gain: float = 1.0,
                 name: str | None = None):
        super().__init__(out_features, weight=weight, gain=gain, name=name)

    def node(self, name, input_shape, rng):
        w, _ = self._weight_bias(name, input_shape, rng)
        return nir.Linear(weight=w)


def _broadcast(layer: Layer, name: str, field: str, value: Any, shape: Shape) -> np.ndarray:
    arr = _array(value, f"{_where(layer, name)}, field {field!r}")
    try:
        return np.array(np.broadcast_to(arr, shape))
    except ValueError:
        raise ValueError(
            f"{_where(layer, name)}, field {field!r}: shape {arr.shape} does not broadcast to "
            f"the layer's shape {tuple(shape)} (from its input); pass a scalar or an array of "
            f"shape {tuple(shape)}."
        ) from None


class Scale(Layer):
    """`nir.Scale`, `y = s * x` elementwise; `scale` a scalar or an array of the input shape."""

    kind = "scale"

    def __init__(self, scale, *, name: str | None = None):
        super().__init__(name=name)
        self.scale = scale

    def node(self, name, input_shape, rng):
        return nir.Scale(scale=_broadcast(self, name, "scale", self.scale, input_shape))


class Threshold(Layer):
    """`nir.Threshold`, `y = H(x - threshold)`; `threshold` a scalar or an array."""

    kind = "threshold"

    def __init__(self, threshold, *, name: str | None = None):
        super().__init__(name=name)
        self.threshold = threshold

    def node(self, name, input_shape, rng):
        return nir.Threshold(
            threshold=_broadcast(self, name, "threshold", self.threshold, input_shape)
        )


class Delay(Layer):
    """`nir.Delay`, `y(t) = x(t - delay)`; `delay` in seconds, a scalar or an array."""

    kind = "delay"

    def __init__(self, delay, *, name: str | None = None):
        super().__init__(name=name)
        self.delay = delay

    def node(self, name, input_shape, rng):
        return nir.Delay(delay=_broadcast(self, name, "delay", self.delay, input_shape))


def _tuple(value, n: int, what: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype.kind not in "iu" or arr.size not in (1, n):
        raise ValueError(f"{what}: expected an int or {n} ints, received {value!r}.")
    return tuple(int(v) for v in np.broadcast_to(arr, (n,)))


class _Conv(Layer):
    ndim = 2

    def __init__(self, out_channels: int | None = None, kernel_size=None, *, stride=1,
                 padding=0, dilation=1, groups: int = 1, weight=None, bias=None,
                 gain: float = 1.0, name: str | None = None):
        super().__init__(name=name)
        label = f"{type(self).__name__}{'' if name is None else f' {name!r}'}"
        if weight is None and (out_channels is None or kernel_size is None):
            raise TypeError(
                f"{label}: pass out_channels and kernel_size (or a weight of shape "
                f"(C_out, C_in / groups, {'K' if self.ndim == 1 else 'KH, KW'}))."
            )
        if weight is not None:
            shape = np.shape(weight)
            if len(shape) != self.ndim + 2:
                raise ValueError(
                    f"{label}: weight must have {self.ndim + 2} dimensions (C_out, C_in / "
                    f"groups, kernel), received shape {shape}."
                )
            if out_channels is not None and out_channels != shape[0]:
                raise ValueError(
                    f"{label}: out_channels={out_channels} but weight has {shape[0]} output "
                    "channels; pass one of them."
                )
            if kernel_size is not None and _tuple(kernel_size, self.ndim, label) != shape[2:]:
                raise ValueError(
                    f"{label}: kernel_size={kernel_size} but weight has kernel {shape[2:]}."
                )
            out_channels, kernel_size = shape[0], shape[2:]
        self.out_channels = int(out_channels)
        self.kernel_size = _tuple(kernel_size, self.ndim, f"{label}, kernel_size")
        self.stride = _tuple(stride, self.ndim, f"{label}, stride")
        self.padding = (padding if isinstance(padding, str)
                        else _tuple(padding, self.ndim, f"{label}, padding"))
        self.dilation = _tuple(dilation, self.ndim, f"{label}, dilation")
        self.groups, self.weight, self.bias, self.gain = int(groups), weight, bias, float(gain)

    def node(self, name, input_shape, rng):
        where = _where(self, name)
        if len(input_shape) != self.ndim + 1:
            layout = "(C, L)" if self.ndim == 1 else "(C, H, W)"
            raise ValueError(
                f"{where}: takes a per-step input {layout}, received shape "
                f"{tuple(input_shape)}."
            )
        c_in = int(input_shape[0])
        if c_in % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"{where}: groups={self.groups} must divide the input channels ({c_in}) and "
                f"the output channels ({self.out_channels})."
            )
        fan_in = c_in // self.groups * math.prod(self.kernel_size)
        if self.weight is not None:
            w = _array(self.weight, f"{where}, weight")
            if w.shape[1] * self.groups != c_in:
                raise ValueError(
                    f"{where}: weight {w.shape} expects {w.shape[1] * self.groups} input "
                    f"channels, received input of shape {tuple(input_shape)}."
                )
        else:
            w = _uniform(rng, self.gain / math.sqrt(fan_in),
                         (self.out_channels, c_in // self.groups, *self.kernel_size))
        if self.bias is not None:
            b = _array(self.bias, f"{where}, bias")
            if b.shape != (self.out_channels,):
                raise ValueError(
                    f"{where}: bias must have shape ({self.out_channels},), received {b.shape}."
                )
        else:
            b = _uniform(rng, self.gain / math.sqrt(fan_in), (self.out_channels,))
        spatial = tuple(int(d) for d in input_shape[1:])
        padding = self.padding if isinstance(self.padding, str) else np.array(self.padding)
        if self.ndim == 1:
            return nir.Conv1d(input_shape=spatial[0], weight=w, stride=self.stride[0],
                              padding=padding if isinstance(padding, str) else int(padding[0]),
                              dilation=self.dilation[0], groups=self.groups, bias=b)
        return nir.Conv2d(input_shape=spatial, weight=w, stride=np.array(self.stride),
                          padding=padding, dilation=np.array(self.dilation), groups=self.groups,
                          bias=b)


class Conv2d(_Conv):
    """`nir.Conv2d` on a `(C, H, W)` input: `Conv2d(out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1)` as in PyTorch, with the input channels and NIR's
    `input_shape` (H, W) taken from the input. `padding` may be an int, a pair, `"same"` or
    `"valid"`. `weight (C_out, C_in / groups, KH, KW)` and `bias (C_out,)` are used as given
    (then out_channels and kernel_size may be omitted), else drawn uniform in
    `±gain / sqrt(fan_in)`."""

    kind, ndim = "conv", 2


class Conv1d(_Conv):
    """`nir.Conv1d` on a `(C, L)` input; arguments as `Conv2d`, with ints for the sizes."""

    kind, ndim = "conv", 1


class _Pool(Layer):
    nir_cls: type = nir.SumPool2d

    def __init__(self, kernel_size, stride=None, padding=0, *, name: str | None = None):
        super().__init__(name=name)
        label = f"{type(self).__name__}{'' if name is None else f' {name!r}'}"
        self.kernel_size = _tuple(kernel_size, 2, f"{label}, kernel_size")
        self.stride = self.kernel_size if stride is None else _tuple(stride, 2, f"{label}, stride")
        self.padding = _tuple(padding, 2, f"{label}, padding")

    def node(self, name, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(
                f"{_where(self, name)}: takes a per-step input (C, H, W), received shape "
                f"{tuple(input_shape)}."
            )
        return self.nir_cls(kernel_size=np.array(self.kernel_size),
                            stride=np.array(self.stride), padding=np.array(self.padding))


class SumPool2d(_Pool):
    """`nir.SumPool2d(kernel_size, stride=kernel_size, padding=0)` on a `(C, H, W)` input."""

    kind, nir_cls = "sumpool", nir.SumPool2d


class AvgPool2d(_Pool):
    """`nir.AvgPool2d(kernel_size, stride=kernel_size, padding=0)` on a `(C, H, W)` input."""

    kind, nir_cls = "avgpool", nir.AvgPool2d


class Flatten(Layer):
    """`nir.Flatten`: merges dimensions `start_dim..end_dim` of the per-step shape (default
    all of them, `(C, H, W) -> (C*H*W,)`; NIR indexes the unbatched shape)."""

    kind = "flatten"

    def __init__(self, start_dim: int = 0, end_dim: int = -1, *, name: str | None = None):
        super().__init__(name=name)
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def node(self, name, input_shape, rng):
        return nir.Flatten(input_type={"input": np.array(input_shape)},
                           start_dim=self.start_dim, end_dim=self.end_dim)


class Neuron(Layer):
    """Any neuron type as a layer: `Neuron(nir_cls, **fields)`, each field a scalar
    (broadcast to the input shape) or an array of the input shape. Works for a neuron
    registered with `nirjax.register_neuron` as for the built-ins below."""

    kind = "neuron"
    required: tuple[str, ...] = ()
    defaults: dict[str, float] = {}

    def __init__(self, nir_cls: type, *, name: str | None = None, **fields):
        super().__init__(name=name)
        self.nir_cls = nir_cls
        self.fields = {**self.defaults, **fields}
        missing = [f for f in self.required if f not in fields]
        if missing:
            raise TypeError(
                f"{type(self).__name__}{'' if name is None else f' {name!r}'}: missing "
                f"{', '.join(missing)} (seconds or values, scalars or arrays)."
            )

    def node(self, name, input_shape, rng):
        fields = {f: _broadcast(self, name, f, v, tuple(input_shape))
                  for f, v in self.fields.items()}
        try:
            return self.nir_cls(**fields)
        except TypeError as e:
            raise TypeError(f"{_where(self, name)}: {self.nir_cls.__name__}: {e}") from None


def _neuron_class(nir_cls, kind: str, required: Sequence[str], defaults: dict, doc: str):
    def __init__(self, *, name: str | None = None, **fields):
        Neuron.__init__(self, nir_cls, name=name, **fields)

    return type(nir_cls.__name__, (Neuron,), {
        "__init__": __init__, "kind": kind, "required": tuple(required),
        "defaults": dict(defaults), "__doc__": doc, "__module__": __name__,
    })


_SPIKE = {"v_threshold": 1.0, "v_reset": 0.0}
I = _neuron_class(nir.I, "i", (), {"r": 1.0},
                  "`nir.I` (integrator), `dv/dt = r x`; defaults r = 1.")
IF = _neuron_class(nir.IF, "if", (), {"r": 1.0, **_SPIKE},
                   "`nir.IF`, `dv/dt = r x`, spike and reset at v_threshold; defaults r = 1, "
                   "v_threshold = 1, v_reset = 0.")
LI = _neuron_class(nir.LI, "li", ("tau",), {"r": 1.0, "v_leak": 0.0},
                   "`nir.LI`, `tau dv/dt = v_leak - v + r x`; `tau` (s) required, defaults "
                   "r = 1, v_leak = 0.")
LIF = _neuron_class(nir.LIF, "lif", ("tau",), {"r": 1.0, "v_leak": 0.0, **_SPIKE},
                    "`nir.LIF`, `tau dv/dt = v_leak - v + r x` with spike and reset; `tau` "
                    "(s) required, defaults r = 1, v_leak = 0, v_threshold = 1, v_reset = 0 "
                    "(snnTorch's `beta = 1 - dt/tau` with unit input gain is `r = tau/dt`).")
CubaLI = _neuron_class(nir.CubaLI, "cubali", ("tau_syn", "tau_mem"),
                       {"r": 1.0, "v_leak": 0.0, "w_in": 1.0},
                       "`nir.CubaLI`: a synaptic current into a leaky integrator; `tau_syn`, "
                       "`tau_mem` (s) required, defaults r = 1, v_leak = 0, w_in = 1.")
CubaLIF = _neuron_class(nir.CubaLIF, "cubalif", ("tau_syn", "tau_mem"),
                        {"r": 1.0, "v_leak": 0.0, "w_in": 1.0, **_SPIKE},
                        "`nir.CubaLIF`: a synaptic current into a LIF; `tau_syn`, `tau_mem` "
                        "(s) required, defaults r = 1, v_leak = 0, w_in = 1, v_threshold = 1, "
                        "v_reset = 0.")


class Node(Layer):
    """A ready NIR node used as it is (e.g. one read from a file, or a custom primitive);
    its input shape is checked against what it expects."""

    kind = "node"

    def __init__(self, node: nir.NIRNode, *, name: str | None = None):
        super().__init__(name=name)
        self.nir_node = node

    def node(self, name, input_shape, rng):
        return copy.deepcopy(self.nir_node)  # the network sets its types; the given one stays
