"""Batch simulation at scale: chunks of batch and time, sharding across devices, HDF5 streaming."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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


def _as_dict(graph: Graph, xs: Any) -> dict[str, Any]:
    if isinstance(xs, Mapping):
        return dict(xs)
    if len(graph.inputs) != 1:
        raise TypeError(
            f"simulate: the graph has Inputs {list(graph.inputs)}; pass a dict from Input name "
            "to an array of shape (batch, T, *shape)."
        )
    return {graph.inputs[0]: xs}


def _check_batch(graph: Graph, xs: dict[str, Any]) -> tuple[int, int]:
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
    """Runs batches of a fixed size, padded to a multiple of the device count and sharded along
    the batch axis, so each batch size compiles once."""

    def __init__(self, graph: Graph, devices, record):
        self.graph = graph
        self.record = tuple(record)
        self.devices = list(jax.devices() if devices is None else devices)
        if not self.devices:
            raise ValueError("simulate: devices is empty; pass None to use all visible devices.")
        mesh = Mesh(np.array(self.devices), ("batch",))
        self.sharding = NamedSharding(mesh, PartitionSpec("batch"))

    def padded(self, n: int) -> int:
        d = len(self.devices)
        return -(-n // d) * d

    def __call__(self, state, xs: dict, n: int):
        size = self.padded(n)
        if size != n:
            pad = lambda a: jnp.concatenate(  # noqa: E731
                [a, jnp.zeros((size - n,) + a.shape[1:], a.dtype)]
            )
            xs, state = jax.tree.map(pad, xs), jax.tree.map(pad, state)
        if len(self.devices) > 1:
            xs = jax.device_put(xs, self.sharding)
            state = jax.device_put(state, self.sharding)
        res = _run_batch(self.graph, state, xs, self.record)
        return jax.tree.map(lambda a: a[:n], res)


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
    batch_size = B if batch_size is None else int(batch_size)
    time_chunk = T if time_chunk is None else int(time_chunk)
    if batch_size < 1 or time_chunk < 1:
        raise ValueError(
            f"simulate: batch_size and time_chunk must be >= 1, got {batch_size}, {time_chunk}."
        )
    runner = _Runner(graph, devices, record)
    outputs, states, records = [], [], []
    total = -(-B // batch_size) * -(-T // time_chunk)
    with tqdm(total=total, disable=not progress, desc="simulate", unit="chunk") as bar:
        for b0 in range(0, B, batch_size):
            n = min(batch_size, B - b0)
            st = (
                _init_states(graph, n)
                if state is None
                else jax.tree.map(lambda a: jnp.asarray(a[b0 : b0 + n]), state)
            )
            outs, recs = [], []
            for t0 in range(0, T, time_chunk):
                chunk = {
                    k: jnp.asarray(v[b0 : b0 + n, t0 : t0 + time_chunk], graph.dtype)
                    for k, v in xs.items()
                }
                res = runner(st, chunk, n)
                st = res.state
                outs.append(jax.tree.map(np.asarray, res.output))
                recs.append(jax.tree.map(np.asarray, res.record))
                bar.update()
            cat = lambda *a: np.concatenate(a, axis=1)  # noqa: E731
            outputs.append(jax.tree.map(cat, *outs))
            records.append(jax.tree.map(cat, *recs))
            states.append(jax.tree.map(np.asarray, st))
    cat0 = lambda *a: np.concatenate(a, axis=0)  # noqa: E731
    return RunResult(
        jax.tree.map(cat0, *outputs), jax.tree.map(cat0, *states), jax.tree.map(cat0, *records)
    )


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
    if not os.path.exists(src):
        raise FileNotFoundError(f"{src}: no such HDF5 file.")
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
        total = -(-B // batch_size) * -(-T // time_chunk)
        with tqdm(total=total, disable=not progress, desc="simulate", unit="chunk") as bar:
            for b0 in range(0, B, batch_size):
                n = min(batch_size, B - b0)
                st = _init_states(graph, n)
                for t0 in range(0, T, time_chunk):
                    t1 = min(T, t0 + time_chunk)
                    chunk = {k: jnp.asarray(d[b0 : b0 + n, t0:t1], graph.dtype)
                             for k, d in data.items()}
                    res = runner(st, chunk, n)
                    st = res.state
                    out = res.output if isinstance(res.output, dict) else {
                        graph.outputs[0]: res.output}
                    for k, v in out.items():
                        dsets[k][b0 : b0 + n, t0:t1] = np.asarray(v)
                    bar.update()


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
