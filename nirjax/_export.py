"""`to_nir`: a `nirjax.Graph` (with its current, e.g. trained, parameters) back to NIR.

What a round trip `from_nir -> to_nir -> nir.write -> nir.read -> from_nir` keeps:

- every parameter bit for bit (arrays are exported in the graph's dtype, which `from_nir`
  reads back exactly; `load` also restores a recorded non-default dtype);
- node names, edges (as written, including `"sub.port"` endpoints) and nested subgraphs;
- the graph's metadata and every node's own metadata, verbatim (keys nirjax does not
  interpret included), and the dynamics options as flat keys `nirjax_<option>` (NIR's HDF5
  writer keeps one level of metadata): all of them on the top graph, and on a node or subgraph
  only those that differ from its parent. This includes the options that live outside
  `Options` in a module: a `Threshold`'s surrogate, and a `Delay`'s step `dt` and rounding;
- the types that shape inference fills in where the source left them out (an Output without
  an `output_type`, a Conv without `input_shape`, a Flatten without `input_type`) are written
  as inferred, so the file is fully typed for NIR's own reader.

`write` refuses NaN or infinite parameters (naming the node and field) instead of writing them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import h5py
import jax.numpy as jnp
import nir
import numpy as np

from ._atomic import atomic_path
from ._graph import Graph
from ._import import from_nir, read
from ._options import METADATA_PREFIX, Options, decode, option_names
from ._registry import module_to_nir, to_numpy

DTYPE_KEY = METADATA_PREFIX + "dtype"


def recognized_keys() -> set[str]:
    """The metadata keys nirjax interprets (the options, the surrogate scale, the dtype); every
    other key is the user's and is kept verbatim."""
    return {METADATA_PREFIX + n for n in (*option_names(), "surrogate_scale")} | {DTYPE_KEY}


def user_metadata(metadata: Any) -> dict:
    """The part of a node's or graph's metadata that nirjax does not interpret."""
    keys = recognized_keys()
    return {k: v for k, v in dict(metadata or {}).items() if k not in keys}


def _node_to_nir(module, graph_options: Options, in_shape, metadata: dict):
    if isinstance(module, Graph):
        return to_nir(module, _parent=graph_options)
    node = module_to_nir(_typed(module, in_shape))
    options = module.options_or(graph_options)
    extra = options.to_metadata(graph_options) if options != graph_options else {}
    if metadata or extra:
        node.metadata = {**(node.metadata or {}), **metadata, **extra}
    return node


def _typed(module, in_shape):
    """The module with the shapes that inference found filled in where it left them open."""
    from .primitives._conv import _ConvNd
    from .primitives._flatten import Flatten
    from .primitives._io import Output

    if isinstance(in_shape, dict):
        return module
    if isinstance(module, Output) and module.shape is None:
        return dataclasses.replace(module, shape=tuple(int(d) for d in in_shape))
    if isinstance(module, _ConvNd) and module.input_shape is None:
        return dataclasses.replace(module, input_shape=tuple(int(d) for d in in_shape[1:]))
    if isinstance(module, Flatten) and module.input_shape is None:
        return dataclasses.replace(module, input_shape=tuple(int(d) for d in in_shape))
    return module


def to_nir(graph: Graph, *, _parent: Options | None = None) -> nir.NIRGraph:
    """Export a `nirjax.Graph` as a `nir.NIRGraph`.

    The result carries the current parameter values, the original node names, edges, metadata
    and nested subgraphs, and records dt and every dynamics option in the metadata (keys
    `nirjax_*`; per node only where it differs from the graph), so that `from_nir(to_nir(g))`
    behaves like `g` without passing the options again.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_nir: expected a nirjax.Graph, got {type(graph).__name__}.")
    node_metadata = graph.node_metadata.value if graph.node_metadata is not None else {}
    nodes = {k: _node_to_nir(m, graph.options, graph.plan.in_shapes[k],
                             dict(node_metadata.get(k) or {}))
             for k, m in graph.nodes.items()}
    edges = [(e.key, e.dst_key) for e in graph.plan.edges]
    metadata = user_metadata(graph.metadata.value)
    metadata.update(graph.options.to_metadata(_parent))
    if _parent is None and jnp.dtype(graph.dtype) != jnp.float32:
        metadata[DTYPE_KEY] = jnp.dtype(graph.dtype).name
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def write(path: str | os.PathLike, graph: Graph | nir.NIRGraph) -> None:
    """Write a graph to a .nir file atomically (a temporary file renamed into place), so an
    interrupted write never leaves a truncated file. The layout is `nir.write`'s (read back by
    `nir.read` and `nirjax.load`); NaN or infinite parameters are refused, naming the node and
    field, and nothing is written. Missing parent folders are created."""
    if isinstance(graph, Graph):
        graph = to_nir(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(
            f"write: expected a nirjax.Graph or a nir.NIRGraph, got {type(graph).__name__}."
        )
    check_finite_parameters(graph)
    data = graph.to_dict()
    path = os.fspath(path)
    try:
        with atomic_path(path, ".nir") as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
                _write_group(f.create_group("node"), data, "")
    except OSError as e:
        if e.errno is None:  # no OS error code: keep the message, name the user's path
            raise OSError(f"{path}: cannot write the NIR file ({e})") from e
        raise type(e)(e.errno, f"cannot write the NIR file ({e.strerror or e})", path) \
            from None


def check_finite_parameters(graph: nir.NIRGraph, prefix: str = "") -> None:
    """A ValueError naming the node and field of the first NaN or infinite parameter."""
    for key, node in graph.nodes.items():
        name = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            check_finite_parameters(node, name + "/")
            continue
        for f in dataclasses.fields(node):
            if f.name in ("input_type", "output_type", "metadata"):
                continue
            value = getattr(node, f.name)
            try:
                arr = to_numpy(value)
            except TypeError:
                continue
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                bad = np.argwhere(~np.isfinite(arr))[:3].tolist()
                raise ValueError(
                    f"write: node {name!r}, field {f.name!r}: holds NaN or inf (e.g. at index "
                    f"{bad}); nirjax never writes non-finite parameters. Fix their source (for a "
                    "trained model: a lower learning rate, gradient clipping, or an earlier "
                    "checkpoint)."
                )


def _write_group(group, data: dict, where: str, metadata: bool = False) -> None:
    """nir.write's layout: a group per dict, a string dataset per str, compressed arrays (a
    0-d array or scalar uncompressed: HDF5 cannot chunk it), a None field left out (NIR's
    readers take a missing optional field as None). A None inside metadata is refused: left
    out, it would be lost without a word."""
    for k, v in data.items():
        k = str(k)
        label = f"{where}/{k}" if where else k
        if v is None and metadata:
            raise ValueError(
                f"write: metadata entry {label!r} is None, which a .nir (HDF5) file cannot "
                "store; remove the entry or store a string such as 'none'."
            )
        if v is None or (k == "metadata" and isinstance(v, dict) and not v):
            continue
        try:
            if isinstance(v, dict):
                _write_group(group.create_group(k), v, label, metadata or k == "metadata")
            elif isinstance(v, str):
                group.create_dataset(k, data=v, dtype=h5py.string_dtype())
            elif isinstance(v, np.ndarray) and v.ndim > 0 and v.dtype.kind in "biuf":
                group.create_dataset(k, data=v, dtype=v.dtype, compression="gzip")
            else:
                group.create_dataset(k, data=to_numpy(v) if hasattr(v, "detach") else v)
        except (TypeError, ValueError) as e:
            if str(e).startswith("write: "):
                raise  # a nested entry's error, which names it
            raise ValueError(
                f"write: {label!r}: cannot be stored in a .nir file ({type(e).__name__}: {e}); "
                "metadata values must be numbers, strings, arrays or dicts of them."
            ) from None


def recorded_options(src: nir.NIRGraph | str | os.PathLike) -> dict[str, Any]:
    """The dynamics options (and dtype) that `to_nir` recorded in a graph's top-level metadata,
    decoded to Python values (`{}` for a graph nirjax did not write)."""
    if not isinstance(src, nir.NIRGraph):
        src = read(src)
    metadata = getattr(src, "metadata", None) or {}
    found = Options.from_metadata(metadata)
    if DTYPE_KEY in metadata:
        found["dtype"] = str(decode(metadata[DTYPE_KEY]))
    return found


def load(path: str | os.PathLike, **kwargs) -> Graph:
    """Read a .nir file and build the graph: `from_nir(read(path), **kwargs)`. Options and a
    dtype that the file records are used unless given here."""
    graph = read(path)
    if "dtype" not in kwargs:
        dtype = recorded_options(graph).get("dtype")
        if dtype is not None:
            kwargs["dtype"] = jnp.dtype(dtype)
    try:
        return from_nir(graph, **kwargs)
    except (ValueError, TypeError, NotImplementedError) as e:
        # Name the file too: the node and field alone do not say which file is at fault.
        raise type(e)(f"{os.fspath(path)}: {e}") from None


__all__ = ["to_nir", "write", "load", "recorded_options", "check_finite_parameters"]
