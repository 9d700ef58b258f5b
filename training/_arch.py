"""`nirjax train --arch`: an architecture as a short string, built with `nirjax.nn`.

Syntax: an optional per-step input shape, then comma-separated layers:

    [CxHxW:]LAYER,LAYER,...

- `c<C>k<K>[s<S>][p<P>]`: a Conv2d with C output channels, kernel K, stride S (default 1),
  padding P (default 0), followed by a spiking neuron layer (`--neuron`);
- `sp<K>` / `ap<K>`: a SumPool2d / AvgPool2d with kernel and stride K;
- `flat`: a Flatten (added automatically before the first `fc` after a conv or pool);
- `fc<N>`: an Affine with N outputs, followed by a spiking neuron layer (`--neuron`; with
  `rlif` / `rcubalif` the layer gets its recurrent weight, as `nn.Recurrent`).

The readout (`fc_out`, an Affine to the number of classes, and `readout`, the `--readout`
neuron) is always added. `CxHxW:` reshapes a flat input (the digits' 64 features as
`1x8x8`); without it the dataset's own per-step shape is used. Example, a conv SNN on the 8x8
digits: `--arch 1x8x8:c8k3p1,sp2,fc64`. Neuron parameters follow `training.feedforward_snn`
(`r = tau / dt`, thresholds 1, resets to 0).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import nir
import numpy as np

from nirjax import nn

__all__ = ["Arch", "parse_arch", "arch_snn", "SYNTAX"]

_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"(sp|ap)(\d+)")
_FC = re.compile(r"fc(\d+)")
SYNTAX = ("[CxHxW:]LAYER,... with LAYER one of c<C>k<K>[s<S>][p<P>] (conv + neuron), "
          "sp<K> / ap<K> (sum / avg pool), flat, fc<N> (affine + neuron); "
          "e.g. 1x8x8:c8k3p1,sp2,fc64")


@dataclass(frozen=True)
class Arch:
    """A parsed `--arch`: the input shape (or None: the dataset's) and the layer tokens."""

    input_shape: tuple[int, ...] | None
    # ("conv", C, K, S, P) | ("pool", "sp" | "ap", K) | ("flat",) | ("fc", N)
    layers: tuple[tuple, ...]


def parse_arch(text: str) -> Arch:
    """Parse an `--arch` string (see the module docstring); a bad token is a `ValueError`
    naming it and the syntax."""
    text = text.replace(" ", "")
    shape = None
    if ":" in text:
        head, text = text.split(":", 1)
        try:
            shape = tuple(int(d) for d in head.split("x"))
        except ValueError:
            shape = None
        if not shape or any(d < 1 for d in shape):
            raise ValueError(f"--arch: input shape {head!r} is not like 1x8x8. Syntax: {SYNTAX}")
    layers = []
    for token in [t for t in text.split(",") if t]:
        if m := _CONV.fullmatch(token):
            c, k, s, p = (int(g) if g else d for g, d in zip(m.groups(), (0, 0, 1, 0)))
            layers.append(("conv", c, k, s, p))
        elif m := _POOL.fullmatch(token):
            layers.append(("pool", m.group(1), int(m.group(2))))
        elif token == "flat":
            layers.append(("flat",))
        elif m := _FC.fullmatch(token):
            layers.append(("fc", int(m.group(1))))
        else:
            raise ValueError(f"--arch: layer {token!r} is not known. Syntax: {SYNTAX}")
        sizes = [v for v in layers[-1][1:] if isinstance(v, int)]
        if min(sizes[:3] if layers[-1][0] == "conv" else sizes or [1]) < 1:
            raise ValueError(f"--arch: layer {token!r} needs sizes >= 1 (padding may be 0).")
    if not layers:
        raise ValueError(f"--arch: no layers in {text!r}. Syntax: {SYNTAX}")
    return Arch(shape, tuple(layers))


def _neuron(kind: str, dt: float, tau_mem: float, tau_syn: float, spiking: bool) -> nn.Layer:
    if kind in ("lif", "rlif", "li"):
        if spiking:
            return nn.LIF(tau=tau_mem, r=tau_mem / dt)
        return nn.LI(tau=tau_mem, r=tau_mem / dt)
    cuba = dict(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt)
    return nn.CubaLIF(**cuba) if spiking else nn.CubaLI(**cuba)


def arch_snn(arch: Arch | str, input_shape: tuple[int, ...], n_outputs: int, *,
             neuron: str = "lif", readout: str = "lif", dt: float = 1e-4,
             tau_mem: float = 1e-3, tau_syn: float = 5e-4, gain: float = 1.0,
             recurrent_gain: float = 0.5, seed: int = 0) -> nir.NIRGraph:
    """The network of an `--arch` string as a `nir.NIRGraph`, built with `nirjax.nn`.

    Nodes: `conv1`, `lif1`, `pool1`, ..., `flat1`, `fc1`, `lif2`, ..., `fc_out`, `readout`
    (neurons numbered across conv and fc layers). `input_shape`: the per-step input
    (`arch.input_shape` if it names one). Other arguments as `training.feedforward_snn`.
    """
    arch = parse_arch(arch) if isinstance(arch, str) else arch
    shape = arch.input_shape or tuple(input_shape)
    cuba = neuron in ("cubalif", "rcubalif")
    if cuba:
        gain, recurrent_gain = gain * dt / tau_syn, recurrent_gain * dt / tau_syn
    recurrent = neuron.startswith("r")
    items: list[tuple[str, nn.Layer]] = []
    count = {"conv": 0, "pool": 0, "flat": 0, "fc": 0, "lif": 0}
    flat = len(shape) == 1

    def add(kind: str, layer: nn.Layer) -> None:
        count[kind] += 1
        items.append((f"{kind}{count[kind]}", layer))

    def spiking(n_out: int | None = None) -> None:
        cell = _neuron(neuron, dt, tau_mem, tau_syn, spiking=True)
        if recurrent and n_out is not None:
            w = nn.Linear(n_out, gain=recurrent_gain)
            cell = nn.Recurrent(cell, w, neuron_name="lif", weight_name="w_rec")
        elif recurrent:
            raise ValueError("--arch: a recurrent --neuron (rlif, rcubalif) has recurrent "
                             "weights for fc layers only; use --neuron lif or cubalif with "
                             "conv layers")
        add("lif", cell)

    if len(shape) == 1 and arch.layers[0][0] in ("conv", "pool"):
        raise ValueError(
            f"--arch: the first layer takes an image "
            f"(C, H, W) per step, but the inputs are flat, shape {shape}; give their shape "
            "first, e.g. 1x8x8:c8k3p1,sp2,fc64 for the 8x8 digits"
        )
    for layer in arch.layers:
        if layer[0] == "conv":
            _, c, k, s, p = layer
            add("conv", nn.Conv2d(c, k, stride=s, padding=p, gain=gain))
            spiking()
            flat = False
        elif layer[0] == "pool":
            add("pool", (nn.SumPool2d if layer[1] == "sp" else nn.AvgPool2d)(layer[2]))
            flat = False
        elif layer[0] == "flat":
            add("flat", nn.Flatten())
            flat = True
        else:
            if not flat:
                add("flat", nn.Flatten())
                flat = True
            add("fc", nn.Affine(layer[1], gain=gain))
            spiking(layer[1])
    if not flat:
        add("flat", nn.Flatten())
    items.append(("fc_out", nn.Affine(n_outputs, gain=gain)))
    items.append(("readout", _neuron("cubalif" if cuba else "lif", dt, tau_mem, tau_syn,
                                     spiking=readout == "lif")))
    net = nn.Sequential(**dict(items))
    metadata = {"created_by": "training.arch_snn", "arch": _arch_text(arch, shape)}
    return net.to_nir(shape, dt=dt, seed=seed, metadata=metadata)


def _arch_text(arch: Arch, shape) -> str:
    parts = []
    for layer in arch.layers:
        if layer[0] == "conv":
            parts.append("c{}k{}s{}p{}".format(*layer[1:]))
        elif layer[0] == "pool":
            parts.append(f"{layer[1]}{layer[2]}")
        elif layer[0] == "flat":
            parts.append("flat")
        else:
            parts.append(f"fc{layer[1]}")
    return "x".join(str(d) for d in shape) + ":" + ",".join(parts)


def shape_for_arch(arch: Arch, shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    """The per-step shape the dataset is viewed as (a `CxHxW:` prefix reshapes flat inputs of
    as many features); a mismatch is a `ValueError`."""
    if arch.input_shape is None:
        return tuple(shape)
    if math.prod(arch.input_shape) != math.prod(shape):
        raise ValueError(
            f"--arch: input shape {'x'.join(map(str, arch.input_shape))} has "
            f"{math.prod(arch.input_shape)} values per step, but dataset {name!r} has per-step "
            f"shape {tuple(shape)} ({math.prod(shape)} values); use a shape of as many values"
        )
    return tuple(arch.input_shape)


def reshaped(ds, shape: tuple[int, ...]):
    """The dataset with its per-step inputs viewed as `shape`."""
    if tuple(ds.input_shape) == tuple(shape):
        return ds
    return dataclasses.replace(ds, inputs=np.reshape(ds.inputs, ds.inputs.shape[:2] + shape))

