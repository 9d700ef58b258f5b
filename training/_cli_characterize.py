"""`nirjax characterize NOMINAL.nir --recording REC.csv --columns input,1.v,1.output`.

Finds a platform's structure (latency, spike latency, input reading, reset, discretization,
probe point), its probe scale and offset, and the recorded node's parameters, writes the
calibrated graph and prints the table. Exit codes: 0 explained (or within tolerance), 2 usage
error, 3 the model cannot explain the recording (the message names what is left).
"""

from __future__ import annotations

import json

import numpy as np

import nirjax
from nirjax import UsageError
from nirjax.cli import check_outputs, check_readable, number

from ._characterize import characterize
from ._characterize_fixed import run_fixed
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
    p.add_argument("--dt", type=number(">0", example="1e-4"), default=None,
                   help="time step (s) if the .nir has none")
    p.add_argument("--structure", default="auto",
                   help="auto (staged: timing, probe and input reading first, reset and "
                   "discretization only if still unexplained), full (everything at once), none, "
                   "or parts to search / fix, e.g. 'latency,input_mode=impulse' "
                   "(parts: latency, spike_latency, input_mode, reset, discretization, probe)")
    p.add_argument("--tolerance", type=number(">0", "<1", example="0.01"), default=0.01,
                   help="RMS residual relative to the range still accepted (default 0.01)")
    p.add_argument("--platform", default=None, choices=sorted(nirjax.FIXED_TARGETS),
                   help="explain the recording with this chip's bit-accurate fixed-point "
                   "execution (integer constants, pipeline latency) instead of a float fit")
    p.add_argument("--out", default=None, help="write the calibrated graph here (.nir)")
    p.add_argument("--json", default=None, help="write the table row here (.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    check_readable("NOMINAL", args.nominal)
    check_readable("--recording", args.recording)
    check_outputs(("--out", args.out), ("--json", args.json))
    graph = as_graph(args.nominal, dt=args.dt)
    try:
        data = np.loadtxt(args.recording, delimiter=",", ndmin=2)
    except ValueError as e:
        raise UsageError(f"--recording {args.recording}: not a numeric CSV ({e}).") from None
    if data.size == 0:
        raise UsageError(f"--recording {args.recording}: holds no rows; expected a numeric CSV "
                         "with one row per recorded step (see docs/cli.md, nirjax characterize).")
    if not np.all(np.isfinite(data)):
        row, col = (int(i) for i in np.argwhere(~np.isfinite(data))[0])
        raise UsageError(f"--recording {args.recording}: row {row + 1}, column {col + 1} is not "
                         "a finite number; every value must be finite.")
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
    if args.platform is not None:
        return run_fixed(args, graph, data[:, inputs], data[:, volts], data[:, outs], node)
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
