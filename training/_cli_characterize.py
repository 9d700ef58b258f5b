"""`nirjax characterize NOMINAL.nir --recording REC.csv --columns input,1.v,1.output`.

Finds a platform's structure (latency, spike latency, input reading, reset, discretization,
probe point), its probe scale and offset, and the recorded node's parameters, writes the
calibrated graph and prints the table. Exit codes: 0 explained (or within tolerance), 2 usage
error, 3 the model cannot explain the recording (the message names what is left).
"""

from __future__ import annotations

import json
import os

import numpy as np

import nirjax
from nirjax import UsageError

from ._characterize import characterize
from ._mismatch_targets import as_graph

UNEXPLAINED = 3


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "characterize",
        help="find a platform's latency, input reading, reset, probe scale and parameters",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("nominal", help="the nominal graph (.nir)")
    p.add_argument("--recording", required=True,
                   help="CSV (one row per step) with the input, the voltage and the spikes")
    p.add_argument("--columns", default=None,
                   help="the CSV columns in order, as INPUT (an Input node), NODE.v and "
                   "NODE.output; default: <input>,<neuron>.v,<neuron>.output")
    p.add_argument("--dt", type=float, default=None, help="time step (s) if the .nir has none")
    p.add_argument("--structure", default="auto",
                   help="auto (staged: timing, probe and input reading first, reset and "
                   "discretization only if still unexplained), full (everything at once), none, "
                   "or parts to search / fix, e.g. 'latency,input_mode=impulse' "
                   "(parts: latency, spike_latency, input_mode, reset, discretization, probe)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="RMS residual relative to the range still accepted (default 0.01)")
    p.add_argument("--out", default=None, help="write the calibrated graph here (.nir)")
    p.add_argument("--json", default=None, help="write the table row here (.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_writable(flag: str, path: str | None) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {path}: folder {folder} does not exist or is not writable; "
                         "choose a writable path.")


def run(args) -> int:
    if not os.path.exists(args.nominal):
        raise UsageError(f"NOMINAL {args.nominal}: no such file; pass the nominal .nir graph.")
    if not os.path.exists(args.recording):
        raise UsageError(f"--recording {args.recording}: no such file.")
    if not 0 < args.tolerance < 1:
        raise UsageError(f"--tolerance: expected a number in (0, 1), got {args.tolerance}.")
    _check_writable("--out", args.out)
    _check_writable("--json", args.json)
    graph = as_graph(args.nominal, dt=args.dt)
    try:
        data = np.loadtxt(args.recording, delimiter=",", ndmin=2)
    except ValueError as e:
        raise UsageError(f"--recording {args.recording}: not a numeric CSV ({e}).") from None
    spiking = [p for p, n in graph.walk() if isinstance(n, nirjax.Neuron) and n.spiking]
    if args.columns is None:
        if len(graph.inputs) != 1 or len(spiking) != 1:
            raise UsageError(
                f"--columns is required: the graph has inputs {list(graph.inputs)} and spiking "
                f"nodes {spiking}; e.g. --columns input,NODE.v,NODE.output.")
        columns = [graph.inputs[0], f"{spiking[0]}.v", f"{spiking[0]}.output"]
    else:
        columns = [c.strip() for c in args.columns.split(",")]
    if len(columns) != data.shape[1]:
        raise UsageError(f"--columns names {len(columns)} columns ({columns}); "
                         f"{args.recording} has {data.shape[1]}. Name every column.")
    inputs = [i for i, c in enumerate(columns) if c in graph.inputs]
    volts = [i for i, c in enumerate(columns) if c.endswith(".v")]
    outs = [i for i, c in enumerate(columns) if c.endswith(".output")]
    nodes = {c.rpartition(".")[0] for i, c in enumerate(columns) if i in volts + outs}
    bad = [c for i, c in enumerate(columns) if i not in inputs + volts + outs]
    if bad or len(nodes) != 1 or not inputs or len(volts) != len(outs) or not volts:
        raise UsageError(
            f"--columns {','.join(columns)}: expected Input node names ({list(graph.inputs)}) "
            f"and NODE.v, NODE.output of one node with as many v as output columns; "
            f"got unknown {bad} / nodes {sorted(nodes)}.")
    node = nodes.pop()
    if node not in spiking:
        raise UsageError(f"--columns: node {node!r} is not a spiking neuron of the graph "
                         f"({spiking}).")
    calibrated, report = characterize(
        graph, inputs=data[:, inputs], v=data[:, volts], spikes=data[:, outs], node=node,
        structure=args.structure, tolerance=args.tolerance, progress=not args.quiet,
    )
    print(report.summary())
    if args.out:
        nirjax.write(args.out, calibrated)
        print(f"wrote {args.out}")
    if args.json:
        with nirjax.atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump(report.row(), f, indent=1)
        print(f"wrote {args.json}")
    if not report.explained:
        print(f"error: the model cannot explain {args.recording}: {report.message}")
        return UNEXPLAINED
    return 0
