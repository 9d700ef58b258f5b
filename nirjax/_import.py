"""`from_nir`: a NIR graph (object or .nir file) to a `nirjax.Graph`."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import h5py
import jax
import jax.numpy as jnp
import nir
import nir.serialization
import numpy as np

from ._graph import Graph
from ._options import Options, check_names, decode
from ._plan import check_node_name
from ._registry import ImportContext, nir_to_module


def read(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a .nir file into a `nir.NIRGraph`, node by node, so that every problem names the
    file, the node (`"sub/node"` when nested) and the field: an unknown type, a missing or
    unexpected field, a value NIR's constructor refuses, a malformed `version` or edge list.
    Types are checked by nirjax itself (shape inference) when the graph is built, so older
    files whose declared types are incomplete still load."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such NIR file.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder; expected a .nir file.")
    try:
        f = h5py.File(path, "r")
    except Exception as e:  # noqa: BLE001 - any HDF5 failure means: not a .nir file
        reason = " ".join(str(e).split())  # h5py's messages span lines
        raise ValueError(
            f"{path}: cannot read it as a NIR graph ({type(e).__name__}: {reason}). Is it a .nir "
            "(HDF5) file written by nir.write?"
        ) from None
    with f:
        _check_version(f, path)
        if not isinstance(f.get("node"), h5py.Group):
            raise ValueError(
                f"{path}: has no 'node' group, so it is not a NIR graph file. Write graphs with "
                "nirjax.write or nir.write."
            )
        try:
            data = nir.serialization.hdf2dict(f["node"])
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: cannot read the graph's data ({type(e).__name__}: {e}).") \
                from None
    graph = _from_dict(data, "", path)
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(
            f"{path}: holds a single {type(graph).__name__} node, not a NIRGraph. Wrap it with "
            "nir.NIRGraph.from_list(node) before writing."
        )
    return graph


_VERSION = re.compile(r"\d+\.\d+(\.\d+)?([.+-]?[0-9A-Za-z.]*)")


def _check_version(f, path: str) -> None:
    if "version" not in f:
        return  # nir.write always records one; older writers may not
    try:
        raw = f["version"][()]
    except Exception:  # noqa: BLE001 - e.g. a group named version
        raw = f["version"]
    value = decode(raw)
    match = _VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{path}: field 'version': expected a NIR version string such as '1.0.8', got "
            f"{value!r}. The file is damaged or not written by nir; write it again with "
            "nirjax.write or nir.write."
        )


def _nir_types() -> dict[str, type]:
    return {k: v for k, v in vars(nir).items()
            if isinstance(v, type) and issubclass(v, nir.NIRNode) and v is not nir.NIRNode}


def _where(path: str, name: str) -> str:
    return f"{path}: node {name!r}" if name else f"{path}: the top graph"


def _from_dict(d: Any, name: str, path: str) -> nir.NIRNode:
    where = _where(path, name)
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a group of fields, got a single value {d!r}.")
    kind = decode(d.get("type"))
    if not isinstance(kind, str):
        raise ValueError(
            f"{where}: field 'type' is {'missing' if kind is None else repr(kind)}; every NIR "
            "node records its type name (e.g. 'LIF')."
        )
    if kind == "NIRGraph":
        return _graph_from_dict(d, name, path)
    custom = {c.__name__: c for c in nir_to_module.registry if c is not object}
    known = _nir_types()
    if kind in custom and kind not in known:
        # A NIR type nirjax knows through a user's registration (nir's reader knows only its own).
        fields = {k: decode(v) if k == "metadata" else v for k, v in d.items() if k != "type"}
        try:
            return custom[kind](**fields)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{where} ({kind}): cannot build it: {type(e).__name__}: {e}") \
                from None
    if kind not in known:
        raise ValueError(
            f"{where}: field 'type': unknown NIR type {kind!r}; nirjax reads {sorted(known)} and "
            "types registered with @nirjax.nir_to_module.register."
        )
    cls = known[kind]
    d = dict(d)
    for k, v in d.items():
        # NIR's constructors cast some fields (w_in = ones * w_in), so check kinds first.
        kind_of = getattr(v, "dtype", None)
        if k not in ("type", "metadata") and kind_of is not None and kind_of.kind in "bc":
            raise TypeError(
                f"{where} ({kind}), field {k!r}: expected real numbers, got dtype {kind_of}. "
                "A boolean or complex value is not a NIR parameter: store the number you mean as "
                "a float array."
            )
    if "metadata" in d and not isinstance(d["metadata"], dict):
        raise ValueError(f"{where} ({kind}): field 'metadata' must be a group, got "
                         f"{d['metadata']!r}. Store node metadata as an HDF5 group (a dict).")
    if "metadata" in d:
        d["metadata"] = _decoded(d["metadata"])
    shapes = {k: np.shape(v) for k, v in d.items() if isinstance(v, np.ndarray) and k != "type"}
    if cls in (nir.Conv1d, nir.Conv2d):
        d.setdefault("input_shape", None)  # optional; nirjax.write leaves a None out
    try:
        return cls.from_dict(d)
    except Exception as e:  # noqa: BLE001 - every constructor failure becomes one clear error
        reason = _explain(cls, d, name) or (
            f"NIR refuses it ({type(e).__name__}: {e}); its array fields have shapes {shapes}. "
            "Write the fields as NIR defines them (see NIR's documentation of the type).")
        raise ValueError(f"{where} ({kind}): {reason}") from None


def _graph_from_dict(d: dict, name: str, path: str) -> nir.NIRGraph:
    where = _where(path, name)
    nodes = d.get("nodes")
    if not isinstance(nodes, dict):
        raise ValueError(f"{where}: field 'nodes' is missing or not a group of nodes.")
    children = {}
    for k, v in nodes.items():
        children[k] = _from_dict(v, f"{name}/{k}" if name else k, path)
    raw = d.get("edges")
    if raw is None:
        raise ValueError(f"{where}: field 'edges' is missing (write an empty list for none).")
    edges_arr = np.asarray(raw, dtype=object)
    if edges_arr.size == 0:
        edges = []
    elif edges_arr.ndim != 2 or edges_arr.shape[1] != 2:
        raise ValueError(
            f"{where}: field 'edges': expected pairs (source, destination), got an array of "
            f"shape {edges_arr.shape}."
        )
    else:
        edges = [(decode(a), decode(b)) for a, b in edges_arr]
        bad = [e for e in edges if not all(isinstance(x, str) for x in e)]
        if bad:
            raise ValueError(f"{where}: field 'edges': expected node names, got {bad[0]!r}.")
    extra = sorted(set(d) - {"type", "nodes", "edges", "metadata"})
    if extra:
        raise ValueError(f"{where}: unexpected field(s) {extra} in a NIRGraph.")
    metadata = d.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: field 'metadata' must be a group, got {metadata!r}.")
    return nir.NIRGraph(nodes=children, edges=edges, metadata=_decoded(metadata),
                        type_check=False)


def _decoded(metadata: dict) -> dict:
    """Metadata as written: HDF5 returns strings as bytes (also inside arrays of strings)."""
    out = {}
    for k, v in metadata.items():
        if isinstance(v, dict):
            v = _decoded(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray) and v.dtype.kind in "SO":
            v = np.array([x.decode() if isinstance(x, bytes) else x for x in v.ravel()],
                         dtype=object if v.dtype.kind == "O" else str).reshape(v.shape)
        out[k] = v
    return out


def _explain(cls, d: dict, name: str) -> str | None:
    """Why NIR's constructor refused the fields `d` of a `cls` node, in nirjax's words (a
    field-level message from nirjax's own converter), or None if nirjax has none to offer."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given = {k: v for k, v in d.items() if k != "type"}
    if cls in (nir.Input, nir.Output) and "shape" in given:
        key = "input" if cls is nir.Input else "output"
        given[f"{key}_type"] = {key: given.pop("shape")}
    if cls is nir.Flatten and not isinstance(given.get("input_type"), (dict, type(None))):
        given["input_type"] = {"input": given["input_type"]}  # as Flatten.from_dict does
    unexpected = sorted(set(given) - set(fields))
    if unexpected:
        return (f"unexpected field(s) {unexpected}; NIR's {cls.__name__} has "
                f"{sorted(k for k in fields if k not in ('input_type', 'output_type'))}.")
    required = [k for k, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                and f.init]
    missing = [k for k in required if k not in given]
    if missing:
        return (f"field(s) {missing} missing; NIR's {cls.__name__} requires them (e.g. a LIF "
                "needs tau, r, v_leak and v_threshold).")
    raw = object.__new__(cls)  # the fields as given, without NIR's own checks
    for k, f in fields.items():
        if k in given:
            value = given[k]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        object.__setattr__(raw, k, value)
    ctx = ImportContext(name, Options(dt=1.0, delay_rounding=True), jnp.float32)
    try:
        nir_to_module(raw, ctx)
    except (ValueError, TypeError, NotImplementedError) as e:
        # The converter names the node itself; the caller prefixes the file and node once.
        return re.sub(r"^node '[^']*'(, | \(\w+\): |: )", "", str(e))
    except Exception:  # noqa: BLE001 - nirjax has nothing clearer than NIR's own message
        return None
    return None


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
    where = f"graph {path!r}" if path else "the graph"
    nodes = getattr(graph, "nodes", None)
    if not isinstance(nodes, Mapping):
        raise TypeError(f"{where}: field 'nodes': expected a dict from node name to NIR node, "
                        f"got {type(nodes).__name__}. Build it as nir.NIRGraph(nodes={{...}}, "
                        "edges=[...]).")
    for key in nodes:
        check_node_name(key, where)
    edges = _edge_list(graph.edges, where)
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
    from ._export import user_metadata

    node_metadata = {k: user_metadata(getattr(n, "metadata", None))
                     for k, n in graph.nodes.items() if not isinstance(n, nir.NIRGraph)}
    return Graph(
        modules,
        edges,
        options=options,
        metadata=dict(getattr(graph, "metadata", None) or {}),
        name=path,
        dtype=dtype,
        node_metadata={k: v for k, v in node_metadata.items() if v},
    )


def _edge_list(raw: Any, where: str) -> list[tuple[str, str]]:
    """The edges of a graph as pairs of node names, or a clear error."""
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__iter__"):
        raise TypeError(f"{where}: field 'edges': expected a list of (source, destination) "
                        f"pairs of node names, got {type(raw).__name__} {raw!r}.")
    edges = []
    for e in raw:
        pair = tuple(decode(x) for x in e) if hasattr(e, "__iter__") and not isinstance(
            e, (str, bytes)) else (e,)
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise ValueError(f"{where}: field 'edges': expected (source, destination) pairs of "
                             f"node names, got {e!r}. Fix the edge list.")
        edges.append(pair)
    return edges


def _recorded_dts(src: nir.NIRGraph, prefix: str = ""):
    """`(where, dt)` for every dt recorded in the metadata of `src` and of its nodes."""
    key = Options.metadata_key("dt")
    meta = getattr(src, "metadata", None) or {}
    if key in meta:
        yield prefix or "the graph", Options.from_metadata({key: meta[key]})["dt"]
    nodes = getattr(src, "nodes", None)
    for name, node in (nodes.items() if isinstance(nodes, Mapping) else ()):
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
      `input_mode`, `cuba_order`, `surrogate`, `detach_reset`, `gradient`, `delay_rounding`.
      An option given here (not None) applies to every node and overrides what the file
      records (except dt: a dt that differs from a recorded one is an error, since a graph's
      parameters hold for its step; change it explicitly with `.with_options(dt=...)`); unset
      ones take the value recorded on the node, else on its enclosing graphs, else the default.
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
    if not isinstance(node_options or {}, Mapping):
        raise TypeError(f"node_options: expected a dict from node name to a dict of options, "
                        f"got {type(node_options).__name__}.")
    for k, v in (node_options or {}).items():
        if not isinstance(v, Mapping):
            raise TypeError(f"node_options[{k!r}]: expected a dict of options such as "
                            f"{{'reset': 'subtract'}}, got {type(v).__name__} {v!r}.")
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
