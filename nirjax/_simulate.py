"""Batch simulation at scale: chunks of batch and time, sharding across devices, HDF5 streaming."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from ._atomic import atomic_path
from ._graph import Graph, RunResult


def _batch_rows(n: int, batch_size: int, multiple_of: int = 1) -> tuple[int, list[range]]:
    """The fixed padded size and the rows of each batch for `n` samples in batches of at most
    `batch_size` (never more than `n`), the size rounded up to a multiple of `multiple_of`."""
    if n < 1:
        raise ValueError(f"batched: no samples (the leading axis has length {n}).")
    if batch_size < 1 or multiple_of < 1:
        raise ValueError(
            f"batched: batch_size and multiple_of must be >= 1, got {batch_size}, {multiple_of}."
        )
    step = min(batch_size, n)
    size = -(-step // multiple_of) * multiple_of
    return size, [range(b0, min(b0 + step, n)) for b0 in range(0, n, step)]


def _pad(tree: Any, size: int) -> Any:
    """Pad every leaf along axis 0 to `size` by repeating its last sample (a padded sample is
    a valid one, so it can trigger no check the real ones do not)."""

    def pad(a):
        m = a.shape[0]
        if m == size:
            return a
        xp = jnp if isinstance(a, jax.Array) else np
        return xp.concatenate([a, xp.repeat(a[-1:], size - m, axis=0)])

    return jax.tree.map(pad, tree)


def batched(fn: Callable[[Any], Any], xs: Any, batch_size: int, *, multiple_of: int = 1) -> Any:
    """Apply `fn` to `xs` in batches of one fixed size, so one compilation of `fn` serves them
    all.

    **Arguments:**

    - `fn`: takes a batch (the structure of `xs`, every leaf with `size` samples on axis 0) and
      returns a pytree of arrays whose axis 0 is the same batch (one entry per sample).
    - `xs`: a pytree of arrays (numpy, JAX, or anything sliceable with `.shape`) sharing the
      leading sample axis `N`.
    - `batch_size`: samples per call; `size = min(batch_size, N)`, rounded up to a multiple of
      `multiple_of` (e.g. the number of devices a batch is sharded across). The last batch is
      padded to `size` by repeating its last sample.

    **Returns:** `fn`'s outputs for the `N` samples, padding removed, concatenated along axis 0
    as numpy arrays.

        losses = jax.jit(jax.vmap(loss))  # (x, y) -> per-sample loss
        out = nirjax.batched(lambda batch: losses(*batch), (inputs, labels), batch_size=256)
    """
    leaves = jax.tree.leaves(xs)
    sizes = {int(a.shape[0]) for a in leaves}
    if not leaves:
        raise ValueError("batched: xs holds no arrays.")
    if len(sizes) != 1:
        raise ValueError(
            "batched: the arrays of xs must share their leading (sample) axis, got shapes "
            f"{[tuple(a.shape) for a in leaves]}."
        )
    size, batches = _batch_rows(sizes.pop(), int(batch_size), int(multiple_of))
    outs = []
    for rows in batches:
        batch = jax.tree.map(lambda a, r=rows: a[r.start : r.stop], xs)
        m = len(rows)
        outs.append(jax.tree.map(lambda a, m=m: np.asarray(a[:m]), fn(_pad(batch, size))))
    return jax.tree.map(lambda *a: np.concatenate(a, axis=0), *outs)


def _as_array(x: Any, name: str) -> Any:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    try:
        return np.asarray(x)
    except Exception:  # noqa: BLE001 - ragged lists and the like
        raise TypeError(
            f"simulate: input {name!r} must be an array of shape (batch, T, *shape), got a "
            f"{type(x).__name__} numpy cannot read as one."
        ) from None


def _count(value: Any, name: str, where: str) -> int:
    """A positive whole number for a size option (not a bool, not 2.5)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be a whole number >= 1, got {value!r}.")
    if value < 1:
        raise ValueError(f"{where}: {name} must be >= 1, got {value!r}.")
    return int(value)


def _as_dict(graph: Graph, xs: Any, where: str = "simulate") -> dict[str, Any]:
    if not isinstance(graph, Graph):
        raise TypeError(f"{where}: graph must be a nirjax.Graph, got {type(graph).__name__}; "
                        "build one with nirjax.from_nir(path_or_nir_graph, dt=...).")
    if isinstance(xs, Mapping):
        return {k: _as_array(v, k) for k, v in xs.items()}
    if len(graph.inputs) == 1:
        return {graph.inputs[0]: _as_array(xs, graph.inputs[0])}
    if len(graph.inputs) != 1:
        raise TypeError(
            f"simulate: the graph has Inputs {list(graph.inputs)}; pass a dict from Input name "
            "to an array of shape (batch, T, *shape)."
        )
    return {graph.inputs[0]: xs}


def _check_batch(graph: Graph, xs: dict[str, Any]) -> tuple[int, int]:
    extra = sorted(set(xs) - set(graph.inputs))
    if extra:
        raise ValueError(
            f"simulate: {extra} are not Inputs of the graph; expected keys {list(graph.inputs)}."
        )
    sizes = set()
    for name in graph.inputs:
        if name not in xs:
            raise ValueError(
                f"simulate: missing input {name!r}; expected keys {list(graph.inputs)}."
            )
        x = xs[name]
        shape = tuple(graph.nodes[name].shape)
        if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != shape:
            raise ValueError(
                f"simulate: input {name!r} must have shape (batch, T, *{shape}), got "
                f"{tuple(x.shape)}. For one sample use graph(xs) or add a batch axis."
            )
        sizes.add(tuple(x.shape[:2]))
    if len(sizes) != 1:
        raise ValueError(f"simulate: inputs disagree on (batch, T): {sorted(sizes)}.")
    return sizes.pop()


@eqx.filter_jit
def _run_batch(graph: Graph, state, xs, record):
    return jax.vmap(lambda s, x: graph.run(x, s, record))(state, xs)


def _init_states(graph: Graph, n: int):
    one = graph.init_state()
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + a.shape), one)


class _Runner:
    """Runs a batch whose size is a multiple of the device count (see `batched`), sharded along
    the batch axis."""

    def __init__(self, graph: Graph, devices, record):
        self.graph = graph
        self.record = tuple(record)
        self.devices = list(jax.devices() if devices is None else devices)
        if not self.devices:
            raise ValueError("simulate: devices is empty; pass None to use all visible devices.")
        mesh = Mesh(np.array(self.devices), ("batch",))
        self.sharding = NamedSharding(mesh, PartitionSpec("batch"))

    def __call__(self, state, xs: dict):
        if len(self.devices) > 1:
            xs = jax.device_put(xs, self.sharding)
            state = jax.device_put(state, self.sharding)
        return _run_batch(self.graph, state, xs, self.record)


def simulate(
    graph: Graph,
    xs: Any,
    *,
    state: Any = None,
    batch_size: int | None = None,
    time_chunk: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    record: Sequence[str] = (),
    progress: bool = False,
) -> RunResult:
    """Simulate a batch: `xs` has a leading batch axis, `(batch, T, *input_shape)` (a dict by
    Input name if several).

    **Arguments:**

    - `state`: batched initial state (default: `init_state()` for every sample).
    - `batch_size`: samples per compiled call (default: all at once); the last partial batch is
      padded, so every call has one shape and compiles once.
    - `time_chunk`: steps per call (default: all); the state carries across chunks, which gives
      the same result as one call and bounds memory for long simulations.
    - `devices`: the devices to shard the batch across (default: all visible devices, e.g. all
      GPUs; on a CPU `XLA_FLAGS=--xla_force_host_platform_device_count=N` makes N).
    - `record`: node names to trace, as in `Graph.run`.
    - `progress`: show a progress bar over the chunks.

    **Returns:** a `RunResult` whose arrays have a leading batch axis (numpy arrays on the host).
    """
    xs = _as_dict(graph, xs)
    B, T = _check_batch(graph, xs)
    for name, x in xs.items():
        if not jnp.issubdtype(jnp.dtype(x.dtype), jnp.floating):
            raise TypeError(f"simulate: input {name!r} must be floating point, got {x.dtype}.")
    batch_size = B if batch_size is None else _count(batch_size, "batch_size", "simulate")
    time_chunk = T if time_chunk is None else _count(time_chunk, "time_chunk", "simulate")
    if not isinstance(record, (list, tuple)):
        record = (record,) if isinstance(record, str) else record
    if state is not None:
        _check_batched_state(graph, state, B)
    runner = _Runner(graph, devices, record)
    total = -(-B // batch_size) * -(-T // time_chunk)
    with tqdm(total=total, disable=not progress, desc="simulate", unit="chunk") as bar:

        def run_batch(batch):
            chunk_xs, st = batch
            if st is None:
                st = _init_states(graph, len(next(iter(chunk_xs.values()))))
            st = jax.tree.map(jnp.asarray, st)
            outs, recs = [], []
            for t0 in range(0, T, time_chunk):
                chunk = {k: jnp.asarray(v[:, t0 : t0 + time_chunk], graph.dtype)
                         for k, v in chunk_xs.items()}
                res = runner(st, chunk)
                st = res.state
                outs.append(jax.tree.map(np.asarray, res.output))
                recs.append(jax.tree.map(np.asarray, res.record))
                bar.update()
            cat = lambda *a: np.concatenate(a, axis=1)  # noqa: E731
            return RunResult(jax.tree.map(cat, *outs), st, jax.tree.map(cat, *recs))

        return batched(run_batch, (xs, state), batch_size, multiple_of=len(runner.devices))


def simulate_hdf5(
    graph: Graph,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    inputs: Mapping[str, str] | None = None,
    batch_size: int = 64,
    time_chunk: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
) -> None:
    """Stream a simulation from an HDF5 file that may be larger than memory to another.

    `src` holds one dataset per graph Input, of shape `(samples, T, *input_shape)`; by default
    the dataset named like the Input node, or the file's only dataset for a single Input
    (`inputs={"node": "dataset/path"}` maps them explicitly). Batches of `batch_size` samples and
    chunks of `time_chunk` steps are read, simulated (sharded across `devices`) and written to
    `dst`, one dataset per Output node, of shape `(samples, T, *output_shape)`. `dst` is written
    to a temporary file and renamed into place when complete, so it is never left half-written.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    batch_size = _count(batch_size, "batch_size", "simulate_hdf5")
    if time_chunk is not None:
        time_chunk = _count(time_chunk, "time_chunk", "simulate_hdf5")
    _as_dict(graph, {}, "simulate_hdf5")  # graph is a Graph
    if not graph.outputs:
        raise ValueError("simulate_hdf5: the graph has no Output node, so there is nothing to "
                         "write. Add a nir.Output node and an edge into it.")
    if not os.path.exists(src):
        raise FileNotFoundError(f"{src}: no such HDF5 file.")
    if os.path.isdir(src):
        raise IsADirectoryError(f"{src}: is a folder; expected an HDF5 file of input arrays.")
    if not h5py.is_hdf5(src):
        raise ValueError(f"{src}: is not an HDF5 file; expected one holding the input arrays "
                         "(batch, T, *shape), e.g. written with h5py.")
    runner = _Runner(graph, devices, ())
    # The output closes before atomic_path renames it into place.
    with atomic_path(dst, ".h5") as tmp, h5py.File(src, "r") as fin, h5py.File(tmp, "w") as fout:
        names = _dataset_names(graph, fin, inputs, src)
        data = {k: fin[v] for k, v in names.items()}
        B, T = _check_batch(graph, {k: _ShapeOnly(d) for k, d in data.items()})
        out_shapes = graph.output_shapes()
        if len(graph.outputs) == 1:
            out_shapes = {graph.outputs[0]: out_shapes}
        dsets = {
            k: fout.create_dataset(k, shape=(B, T, *s), dtype=graph.dtype, chunks=True)
            for k, s in out_shapes.items()
        }
        time_chunk = T if time_chunk is None else int(time_chunk)
        # batched's rows and padding, by hand: each chunk is read from the file only when due
        size, batches = _batch_rows(B, int(batch_size), len(runner.devices))
        total = len(batches) * -(-T // time_chunk)
        with tqdm(total=total, disable=not progress, desc="simulate", unit="chunk") as bar:
            for rows in batches:
                b0, b1 = rows.start, rows.stop
                st = _init_states(graph, size)
                for t0 in range(0, T, time_chunk):
                    t1 = min(T, t0 + time_chunk)
                    chunk = _pad({k: jnp.asarray(d[b0:b1, t0:t1], graph.dtype)
                                  for k, d in data.items()}, size)
                    res = runner(st, chunk)
                    st = res.state
                    out = res.output if isinstance(res.output, dict) else {
                        graph.outputs[0]: res.output}
                    for k, v in out.items():
                        dsets[k][b0:b1, t0:t1] = np.asarray(v)[: b1 - b0]
                    bar.update()


def _check_batched_state(graph: Graph, state: Any, batch: int) -> None:
    """A batched state: every leaf has the batch axis first and one sample's state after it."""
    leaves = jax.tree.leaves(state)
    bad = [tuple(np.shape(a)) for a in leaves if not np.shape(a) or np.shape(a)[0] != batch]
    if bad:
        raise ValueError(
            f"simulate: state must have a leading batch axis of {batch} on every array (as "
            f"simulate(...).state), got shapes {bad[:3]}."
        )
    graph.check_state(jax.tree.map(lambda a: a[0], state))


class _ShapeOnly:
    def __init__(self, dataset):
        self.shape = dataset.shape
        self.ndim = len(dataset.shape)


def _dataset_names(graph, fin, inputs, src) -> dict[str, str]:
    if inputs is not None:
        names = dict(inputs)
    else:
        available = []
        fin.visititems(lambda k, v: available.append(k) if isinstance(v, h5py.Dataset) else None)
        names = {}
        for name in graph.inputs:
            if name in fin:
                names[name] = name
            elif len(graph.inputs) == 1 and len(available) == 1:
                names[name] = available[0]
            else:
                raise ValueError(
                    f"{src}: no dataset for Input {name!r} (datasets: {available}); pass "
                    f"inputs={{{name!r}: 'dataset/path'}}."
                )
    for node, path in names.items():
        if node not in graph.inputs:
            raise ValueError(f"inputs: {node!r} is not an Input of the graph {list(graph.inputs)}.")
        if path not in fin:
            raise ValueError(f"{src}: no dataset {path!r} for Input {node!r}.")
    return names
