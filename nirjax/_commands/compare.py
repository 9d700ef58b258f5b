"""`nirjax compare FILE.nir --input IN [--recording REC] --dt DT [--plot PNG] [--json JSON]`:
the fidelity report (discrete methods and a recording against the diffrax reference)."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from .._atomic import atomic_path
from .._cli import UsageError


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
    p.add_argument("--dt", type=float, default=None,
                   help="the time step in seconds (default: recorded in the file)")
    p.add_argument("--input-kind", choices=("current", "spikes"), default=None,
                   help="how the reference reads the input (default: from the graph's input_mode)")
    p.add_argument("--window", type=float, default=None,
                   help="spike matching window in seconds (default 10 dt)")
    p.add_argument("--plot", default=None, help="write a PNG of voltage traces and rasters")
    p.add_argument("--json", default=None, help="write the table as JSON")
    p.set_defaults(func=run)


def _load_input(path: str, columns: str | None) -> np.ndarray:
    if not os.path.exists(path):
        raise FileNotFoundError(f"--input {path}: no such file.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        x = np.load(path)
        if columns is not None:
            raise UsageError("--columns applies to .csv/.txt inputs only.")
    elif ext in (".csv", ".txt"):
        x = np.loadtxt(path, delimiter="," if ext == ".csv" else None, ndmin=2)
        if columns is not None:
            try:
                cols = [int(c) for c in columns.split(",")]
            except ValueError:
                raise UsageError(f"--columns: expected comma-separated ints, got {columns!r}.")
            if max(cols) >= x.shape[1] or min(cols) < -x.shape[1]:
                raise UsageError(f"--columns {columns}: {path} has {x.shape[1]} columns.")
            x = x[:, cols]
    else:
        raise UsageError(f"--input {path}: expected a .npy, .csv or .txt file.")
    return np.asarray(x, np.float32)


def _write_json(path: str, data: dict) -> None:
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2)


def run(args: argparse.Namespace) -> int:
    from .._compare import compare
    from .._import import from_nir

    if args.dt is not None and not args.dt > 0:
        raise UsageError(f"--dt: must be > 0 seconds, got {args.dt}.")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib.") from None
    graph = from_nir(args.file, dt=args.dt)
    x = _load_input(args.input, args.columns)
    shape = tuple(np.atleast_1d(graph.input_shapes()))
    if len(graph.inputs) != 1:
        raise UsageError("compare: the graph has several Inputs; use nirjax.compare from Python.")
    if x.ndim == 1:
        x = x[:, None]
    if tuple(x.shape[1:]) != shape:
        try:
            x = x.reshape((x.shape[0],) + shape)
        except ValueError:
            raise UsageError(f"--input: shape {x.shape} does not fit (T, {shape}) for this graph.")
    report = compare(graph, x, recording=args.recording, input_kind=args.input_kind,
                     window=args.window)
    print(report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"plot written to {args.plot}")
    if args.json:
        _write_json(args.json, report.to_dict())
        print(f"table written to {args.json}")
    return 0
