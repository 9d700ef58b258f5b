"""`nirjax run FILE.nir --input IN --dt DT --output OUT [--batch-size N] [options]`: simulate a
batch of samples and write the outputs.

IN and OUT are `.npy` arrays of shape `(samples, steps, *shape)`, or NIR data files
(`nir.read_data` / `nir.write_data`): a `nir.NIRGraphData` whose nodes are the graph's Input
(for IN) or Output (for OUT) names, each with one `TimeGriddedData` observable of shape
`(samples, steps, neurons)` (`"input"` / `"output"`; neurons = the flattened per-step shape).
A `.npy` input must have exactly the per-step shape of its Input (nothing is reshaped). The dt
of a NIR data input must be the graph's dt (an error says which to pass otherwise).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .._atomic import atomic_path, remove_stale_temporaries
from .._cli import UsageError
from .._flags import check_readable, check_writable, integer, number
from .._options import Options


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="simulate a batch of samples through a NIR graph",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("file", help="the .nir graph")
    p.add_argument("--input", required=True,
                   help=".npy (samples, steps, *shape) or a NIR data file keyed by Input names")
    p.add_argument("--output", required=True,
                   help=".npy (one Output) or a NIR data file (any other extension)")
    p.add_argument("--dt", type=number(">0", example="1e-4"), default=None,
                   help="time step in seconds (default: the one the file records)")
    p.add_argument("--batch-size", type=integer(">=1"), default=32,
                   help="samples per batch (default 32)")
    Options.add_arguments(p)
    p.set_defaults(func=run)


def _is_npy(path: str) -> bool:
    return os.path.splitext(path)[1].lower() == ".npy"


def _read_inputs(path: str, graph) -> dict[str, np.ndarray]:
    """The inputs as {Input name: (samples, steps, *shape)}."""
    import nir

    check_readable("--input", path)
    dt = graph.options.dt
    flat = set()  # inputs read from NIR data files: neurons flattened, as the format has them
    shapes = graph.input_shapes()
    if not isinstance(shapes, dict):
        shapes = {graph.inputs[0]: shapes}
    if _is_npy(path):
        if len(shapes) != 1:
            raise UsageError(
                f"--input {path}: the graph has inputs {sorted(shapes)}; a .npy holds one. Use a "
                "NIR data file keyed by the Input names."
            )
        try:
            arrays = {next(iter(shapes)): np.load(path, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as e:
            raise UsageError(f"--input {path}: not a numeric .npy array ({e}).") from None
    else:
        try:
            data = nir.read_data(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is one clear message
            raise UsageError(
                f"--input {path}: not a .npy array nor a NIR data file ({type(e).__name__}: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})."
            ) from None
        arrays = {}
        for name in shapes:
            node = data.nodes.get(name)
            if node is None:
                raise UsageError(
                    f"--input {path}: no data for Input {name!r}; the file has "
                    f"{sorted(data.nodes)}."
                )
            grids = {k: v for k, v in node.observables.items()
                     if isinstance(v, nir.TimeGriddedData)}
            if len(grids) != 1:
                raise UsageError(
                    f"--input {path}: Input {name!r} needs exactly one TimeGriddedData "
                    f"observable, found {sorted(node.observables)}."
                )
            (key, grid), = grids.items()
            data_dt = float(np.asarray(grid.dt))
            if not abs(data_dt - dt) <= 1e-9 * dt:
                raise UsageError(
                    f"--input {path}: Input {name!r} observable {key!r} is sampled at dt = "
                    f"{data_dt:g} s, the graph runs at dt = {dt:g} s; run at the data's step "
                    f"(--dt {data_dt:g}) or resample the data to {dt:g} s."
                )
            arrays[name] = np.asarray(grid.data)
            flat.add(name)
    samples = {a.shape[0] if a.ndim >= 2 else None for a in arrays.values()}
    out = {}
    for name, x in arrays.items():
        shape = tuple(shapes[name])
        if x.ndim < 2 or x.dtype.kind not in "biuf":
            raise UsageError(
                f"--input {path}: Input {name!r} needs a numeric array (samples, steps, ...), got "
                f"shape {x.shape} dtype {x.dtype}."
            )
        if x.shape[2:] != shape:
            if name not in flat or x.shape[2:] != (math.prod(shape),):
                want = (f"(samples, steps, {math.prod(shape)}) with the neurons flattened"
                        if name in flat else f"(samples, steps, {', '.join(map(str, shape))})")
                raise UsageError(
                    f"--input {path}: Input {name!r} expects per-step shape {shape}, got "
                    f"{x.shape[2:]} (array shape {x.shape}); expected {want}, nothing is "
                    "reshaped."
                )
            x = x.reshape(x.shape[:2] + shape)  # neurons flattened, as in NIR data files
        if not np.all(np.isfinite(x)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise UsageError(
                f"--input {path}: Input {name!r} holds non-finite values (first at sample "
                f"{where[0]}, step {where[1]}); inputs must be finite."
            )
        out[name] = x
    if len(samples) != 1 or len({x.shape[1] for x in out.values()}) != 1:
        raise UsageError(f"--input {path}: the inputs disagree in samples or steps.")
    return out


def _atomic(path: str, write) -> None:
    check_writable("--output", path)
    with atomic_path(path, os.path.splitext(path)[1]) as tmp:
        write(tmp)


def _write_outputs(path: str, outputs: dict[str, np.ndarray], dt: float) -> None:
    import nir

    if _is_npy(path):
        if len(outputs) != 1:
            raise UsageError(
                f"--output {path}: the graph has outputs {sorted(outputs)}; a .npy holds one. Use "
                "a NIR data file (e.g. out.h5)."
            )

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, next(iter(outputs.values())))
    else:
        nodes = {
            name: nir.NIRNodeData(observables={"output": nir.TimeGriddedData(
                data=y.reshape(y.shape[:2] + (-1,)), dt=dt)})
            for name, y in outputs.items()
        }

        def write(tmp):
            nir.write_data(tmp, nir.NIRGraphData(nodes=nodes))

    _atomic(path, write)


def run(args) -> int:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from .. import batched, from_nir
    from .._export import recorded_options
    from .._import import read

    check_writable("--output", args.output)
    remove_stale_temporaries(args.output)
    nir_graph = read(args.file)
    recorded = recorded_options(nir_graph)
    if args.dt is None and "dt" not in recorded:
        raise UsageError(f"{args.file} records no dt: pass --dt (seconds, e.g. --dt 1e-4).")
    kwargs = Options.from_arguments(args)
    if "dtype" in recorded:
        dtype = jnp.dtype(recorded["dtype"])
        if dtype == jnp.float64 and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        kwargs["dtype"] = dtype
    graph = from_nir(nir_graph, **kwargs)
    if _is_npy(args.output) and len(graph.outputs) != 1:
        raise UsageError(
            f"--output {args.output}: the graph has outputs {sorted(graph.outputs)}; a .npy "
            "holds one. Use a NIR data file (e.g. out.h5)."
        )
    inputs = _read_inputs(args.input, graph)
    n = next(iter(inputs.values())).shape[0]
    dtype = jnp.dtype(graph.dtype)
    batch = min(args.batch_size, max(n, 1))

    @eqx.filter_jit
    def simulate(g, xs):
        return jax.vmap(g)(xs)

    if n == 0:
        raise UsageError(f"--input {args.input}: holds no samples.")
    bar = tqdm(total=n, desc="nirjax run", unit="sample", disable=None)

    def one_batch(xs):  # every batch padded to one shape by nirjax.batched: one compilation
        xs = {k: jnp.asarray(np.asarray(v, dtype=dtype)) for k, v in xs.items()}
        ys = simulate(graph, xs if len(graph.inputs) > 1 else xs[graph.inputs[0]])
        bar.update(min(batch, bar.total - bar.n))
        return ys if isinstance(ys, dict) else {graph.outputs[0]: ys}

    outputs = batched(one_batch, inputs, batch)
    bar.close()
    for name, y in outputs.items():
        y = np.asarray(y)
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            s, t = (int(i) for i in np.argwhere(~np.isfinite(y))[0][:2])
            raise UsageError(
                f"the output {name!r} went non-finite (first at sample {s}, step {t}) although "
                f"the input is finite: the graph's state overflows; nothing was written to "
                f"{args.output}. Check the graph's parameters (or use --dt smaller)."
            )
    _write_outputs(args.output, outputs, graph.options.dt)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in outputs.items())
    print(f"wrote {args.output}: {shapes}")
    return 0
