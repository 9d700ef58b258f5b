"""`nirjax compare FILE.nir --input IN [--recording REC] --dt DT [--plot PNG] [--json JSON]`:
the fidelity report (discrete methods and a recording against the diffrax reference)."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from .._atomic import atomic_path
from .._cli import UsageError
from .._flags import check_outputs, check_readable, integer, number

# simulate_continuous's capacities and tolerances, as flags: (keyword, flag, type, help)
_CAPACITIES = (
    ("max_events_per_step", integer(">=1"), "events (crossings, cascades, delayed arrivals) "
     "the reference handles within one step (default 16)"),
    ("max_spikes_per_step", integer(">=1"), "spikes one neuron may emit within one step in "
     "the reference (default 2)"),
    ("max_spikes", integer(">=1"), "spike times kept per neuron (default: all that fit)"),
    ("delay_capacity", integer(">=1"), "spikes a Delay element holds in flight (default 8)"),
    ("rtol", number(">0", "<1"), "diffrax's relative step-size tolerance (default 1e-6)"),
    ("atol", number(">0"), "diffrax's absolute step-size tolerance (default 1e-8)"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="measure euler/exact runs (and a recording) against continuous time (diffrax)",
        description=(
            "Run a NIR graph with the 'euler' and 'exact' discretizations at DT and with the "
            "diffrax reference (exact spike times), optionally read a recording (a NIR data "
            "file), and report spike-time errors, missed/extra spikes and RMS voltage error."
        ),
    )
    p.add_argument("file", help="the .nir graph")
    p.add_argument("--input", required=True,
                   help="input on the dt grid: .npy (T, *shape) or .csv/.txt (rows = steps)")
    p.add_argument("--columns", default=None,
                   help="for a .csv input: comma-separated column indices to use (e.g. 0)")
    p.add_argument("--recording", default=None, help="a NIR data file (nir.write_data)")
    p.add_argument("--dt", type=number(">0", example="1e-4"), default=None,
                   help="the time step in seconds (default: recorded in the file)")
    p.add_argument("--input-kind", choices=("current", "spikes"), default=None,
                   help="how the reference reads the input (default: from the graph's input_mode)")
    p.add_argument("--window", type=number(">0", example="1e-3"), default=None,
                   help="spike matching window in seconds (default 10 dt)")
    p.add_argument("--plot", default=None, help="write a PNG of voltage traces and rasters")
    p.add_argument("--json", default=None, help="write the table as JSON")
    for name, kind, text in _CAPACITIES:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    p.set_defaults(func=run)


def _load_input(path: str, columns: str | None, shape: tuple[int, ...]) -> np.ndarray:
    """`(T, *shape)` from a .npy of exactly that shape (or `(T,)` for a one-neuron Input), or
    from a CSV/text file whose rows are steps and whose columns are the neurons in C order."""
    check_readable("--input", path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        if columns is not None:
            raise UsageError("--columns applies to .csv/.txt inputs only.")
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UsageError(f"--input {path}: not a readable .npy array ({e}).") from None
        if x.ndim == 1 and shape == (1,):
            x = x[:, None]
        if x.dtype.kind not in "biuf" or tuple(x.shape[1:]) != shape or x.ndim < 1:
            want = ", ".join(map(str, shape))
            raise UsageError(
                f"--input {path}: expected a numeric array of shape (steps, {want}) "
                f"for this graph's Input, got shape {x.shape} dtype {x.dtype}; save it in that "
                "shape (nothing is reshaped)."
            )
    elif ext in (".csv", ".txt"):
        try:
            x = np.loadtxt(path, delimiter="," if ext == ".csv" else None, ndmin=2)
        except ValueError as e:
            raise UsageError(f"--input {path}: not a numeric table ({e}).") from None
        if columns is not None:
            try:
                cols = [int(c) for c in columns.split(",")]
            except ValueError:
                raise UsageError(
                    f"--columns: expected comma-separated ints, got {columns!r}.") from None
            if max(cols) >= x.shape[1] or min(cols) < -x.shape[1]:
                raise UsageError(f"--columns {columns}: {path} has {x.shape[1]} columns.")
            x = x[:, cols]
        n = int(np.prod(shape))
        if x.shape[1] != n:
            raise UsageError(
                f"--input {path}: the graph's Input has {n} neurons {shape}, the table has "
                f"{x.shape[1]} columns; give one column per neuron (or pick them with --columns)."
            )
        x = x.reshape((x.shape[0],) + shape)  # columns are the neurons in C order (documented)
    else:
        raise UsageError(f"--input {path}: expected a .npy, .csv or .txt file.")
    if x.shape[0] < 1:
        raise UsageError(f"--input {path}: holds no time steps.")
    if not np.all(np.isfinite(x)):
        t = int(np.argwhere(~np.isfinite(x))[0][0])
        raise UsageError(f"--input {path}: holds non-finite values (first at step {t}); the "
                         "input must be finite.")
    return np.asarray(x, np.float32)


def _write_json(path: str, data: dict) -> None:
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2)


def run(args: argparse.Namespace) -> int:
    from .._compare import compare
    from .._import import from_nir

    check_outputs(("--plot", args.plot), ("--json", args.json), plot=args.plot)
    graph = from_nir(args.file, dt=args.dt)
    if len(graph.inputs) != 1:
        raise UsageError("compare: the graph has several Inputs; use nirjax.compare from Python.")
    shape = tuple(int(s) for s in np.atleast_1d(graph.input_shapes()))
    x = _load_input(args.input, args.columns, shape)
    recording = None
    if args.recording is not None:
        import nir

        check_readable("--recording", args.recording)
        try:
            recording = nir.read_data(args.recording)
        except Exception as e:  # noqa: BLE001 - any reader failure is one clear message
            detail = " ".join(str(e).split())
            raise UsageError(f"--recording {args.recording}: cannot read it as a NIR data file "
                             f"({type(e).__name__}: {detail}); write it with nir.write_data."
                             ) from None
    kwargs = {name: getattr(args, name) for name, _, _ in _CAPACITIES
              if getattr(args, name) is not None}
    try:
        report = compare(graph, x, recording=recording, input_kind=args.input_kind,
                         window=args.window, **kwargs)
    except Exception as e:  # noqa: BLE001 - a capacity check: name the flag that raises it
        from .._errors import runtime_message

        text = runtime_message(e)
        if text is None:
            raise
        for name, _, _ in _CAPACITIES:
            text = text.replace(name, "--" + name.replace("_", "-"))
        raise UsageError(text.replace("Raise ", "Raise it with ")) from None
    print(report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"plot written to {args.plot}")
    if args.json:
        _write_json(args.json, report.to_dict())
        print(f"table written to {args.json}")
    return 0
