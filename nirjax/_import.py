"""`from_nir`: a NIR graph (object or .nir file) to a `nirjax.Graph`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import h5py
import jax
import jax.numpy as jnp
import nir
import nir.serialization

from ._graph import Graph
from ._options import Options, check_names, decode
from ._registry import ImportContext, nir_to_module


def read(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a .nir file into a `nir.NIRGraph`, with a clear error for a missing or malformed
    file. Types are checked by nirjax itself (shape inference), so older files whose declared
    types are incomplete still load."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such NIR file.")
    try:
        return nir.read(path, type_check=False)
    except Exception as e:  # noqa: BLE001 - every reader failure becomes one clear error
        first = e
    try:
        # nir checks nested graphs itself and stops at the first problem; read them unchecked so
        # that nirjax's validation can name the subgraph and node at fault.
        with h5py.File(path, "r") as f:
            return _unchecked(nir.serialization.hdf2dict(f["node"]))
    except Exception:  # noqa: BLE001
        pass
    raise ValueError(
        f"{path}: cannot read it as a NIR graph ({type(first).__name__}: {first}). Is it a .nir "
        "(HDF5) file written by nir.write?"
    ) from first


def _unchecked(d: dict) -> nir.NIRNode:
    kind = decode(d.get("type"))
    if kind != "NIRGraph":
        # A NIR type nirjax knows through a user's registration (nir's reader knows only its own).
        custom = {c.__name__: c for c in nir_to_module.registry if c is not object}
        if kind in custom and not hasattr(nir, kind):
            fields = {k: v for k, v in d.items() if k != "type"}
            return custom[kind](**{k: decode(v) if k == "metadata" else v
                                   for k, v in fields.items()})
        return nir.dict2NIRNode(d)
    nodes = {k: _unchecked(v) for k, v in d["nodes"].items()}
    edges = [(decode(a), decode(b)) for a, b in d["edges"]]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=d.get("metadata", {}), type_check=False)


def _resolve_dtype(dtype: Any) -> Any:
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a floating dtype such as jnp.float32, got {dtype!r}.")
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype: expected a floating dtype such as jnp.float32, got {dt}.")
    if dt == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype=float64 needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) first."
        )
    return dt


def _build(
    graph: nir.NIRGraph,
    path: str,
    options: Options,
    explicit: dict[str, Any],
    node_options: dict[str, dict],
    used: set,
    dtype,
) -> Graph:
    """Precedence, from strongest to weakest: `node_options` for the node, the explicit
    `from_nir` keywords, the options recorded on the node (or subgraph), those recorded on the
    enclosing graphs, the defaults."""
    if not isinstance(getattr(graph, "nodes", None), Mapping):
        raise TypeError(f"graph {path!r}: expected a nir.NIRGraph with a dict of nodes.")
    modules = {}
    for key, node in graph.nodes.items():
        full = f"{path}/{key}" if path else key
        recorded = Options.from_metadata(getattr(node, "metadata", None), f"node {full!r}")
        if full in node_options:
            used.add(full)
        overrides = {**recorded, **explicit, **node_options.get(full, {})}
        try:
            node_opts = options.replace(**overrides) if overrides else options
        except (TypeError, ValueError) as e:
            raise type(e)(f"node {full!r}: {e}") from None
        if isinstance(node, nir.NIRGraph):
            modules[key] = _build(node, full, node_opts, explicit, node_options, used, dtype)
        else:
            modules[key] = nir_to_module(node, ImportContext(full, node_opts, dtype))
    edges = [(decode(a), decode(b)) for a, b in graph.edges]
    return Graph(
        modules,
        edges,
        options=options,
        metadata=dict(getattr(graph, "metadata", None) or {}),
        name=path,
        dtype=dtype,
    )


def _recorded_dts(src: nir.NIRGraph, prefix: str = ""):
    """`(where, dt)` for every dt recorded in the metadata of `src` and of its nodes."""
    key = Options.metadata_key("dt")
    meta = getattr(src, "metadata", None) or {}
    if key in meta:
        yield prefix or "the graph", Options.from_metadata({key: meta[key]})["dt"]
    for name, node in getattr(src, "nodes", {}).items():
        where = f"{prefix}/{name}" if prefix else name
        if isinstance(node, nir.NIRGraph):
            yield from _recorded_dts(node, where)
        elif key in (getattr(node, "metadata", None) or {}):
            yield f"node {where!r}", Options.from_metadata({key: node.metadata[key]})["dt"]


def _check_recorded_dt(src: nir.NIRGraph, dt: Any) -> None:
    """A dt passed to `from_nir` must agree with the one the file records: a graph's
    parameters (e.g. `r = tau / dt` of a trained network) hold for the step it was made with,
    so running it at another step is a choice to make explicitly, not by accident."""
    for where, recorded in _recorded_dts(src):
        if not math.isclose(float(dt), float(recorded), rel_tol=1e-9, abs_tol=0.0):
            raise ValueError(
                f"from_nir: {where} records dt={recorded!r}, but dt={dt!r} was passed. Leave "
                "dt out to use the recorded step, or run it at another step on purpose: "
                f"nirjax.from_nir(graph).with_options(dt={dt!r})."
            )


def from_nir(
    src: nir.NIRGraph | str | os.PathLike,
    *,
    node_options: Mapping[str, Mapping[str, Any]] | None = None,
    dtype: Any = jnp.float32,
    **options: Any,
) -> Graph:
    """Build a `nirjax.Graph` from a NIR graph or a .nir file.

    Every node becomes the module registered for its NIR type (`nirjax.nir_to_module`), with its
    parameters kept exactly as given (cast to `dtype`); a subgraph becomes a nested `Graph`.

    **Arguments:**

    - `src`: a `nir.NIRGraph`, or the path of a .nir file.
    - `**options`: the dynamics options, by the names of `nirjax.Options`: `dt` (the time step
      in seconds; required unless the graph records one), `discretization`, `reset`,
      `input_mode`, `cuba_order`, `surrogate`, `detach_reset`, `delay_rounding`. An option
      given here (not None) applies to every node and overrides what the file records (except
      dt: a dt that differs from a recorded one is an error, since a graph's parameters hold
      for its step; change it explicitly with `.with_options(dt=...)`); unset ones take
      the value recorded on the node, else on its enclosing graphs, else the default.
    - `node_options`: per-node overrides, `{"node name": {"reset": "subtract", ...}}` (a nested
      node is `"sub/node"`); they override everything else for that node.
    - `dtype`: the floating dtype of parameters, inputs and state (default float32).

    **Returns:** a `nirjax.Graph` (an `equinox.Module`).
    """
    if isinstance(src, (str, os.PathLike)):
        src = read(src)
    if not isinstance(src, nir.NIRGraph):
        raise TypeError(
            f"from_nir: expected a nir.NIRGraph or a path to a .nir file, got "
            f"{type(src).__name__}. Wrap a single node with nir.NIRGraph.from_list(node)."
        )
    dtype = _resolve_dtype(dtype)
    check_names(options, "from_nir: ")
    explicit = {k: v for k, v in options.items() if v is not None}
    if "dt" in explicit:
        _check_recorded_dt(src, explicit["dt"])
    settings = {**Options.from_metadata(getattr(src, "metadata", None), "graph metadata"),
                **explicit}
    if "dt" not in settings:
        raise ValueError(
            "from_nir: dt is required (the time step in seconds; the NIR paper's graphs use "
            "dt=1e-4). Pass e.g. nirjax.from_nir(graph, dt=1e-4)."
        )
    options = Options(**settings)
    node_options = {k: dict(v) for k, v in (node_options or {}).items()}
    for k, v in node_options.items():
        check_names(v, f"node_options[{k!r}]: ")
    used: set = set()
    graph = _build(src, "", options, explicit, node_options, used, dtype)
    unknown = sorted(set(node_options) - used)
    if unknown:
        raise ValueError(
            f"node_options: no node(s) {unknown} in the graph; nested nodes are named 'sub/node'."
        )
    return graph
