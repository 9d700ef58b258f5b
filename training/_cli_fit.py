"""`nirjax calibrate NOMINAL.nir RECORDING.h5 --out calibrated.nir`: calibrate a graph to a chip.

`nirjax fit` is the same command under its former name, kept as an alias that says so on
stderr (training a network is `nirjax train` / `training.fit`). Both are registered here, by the
entry point `fit = "training._cli_fit"` of the group `nirjax.commands`.

RECORDING.h5 is a NIR data file (`nir.write_data`) holding the recorded nodes' observables
(`"v"`, `"I"`, `"output"`) and the inputs that drove them, as the `"output"` observable of the
graph's Input node (see docs/mismatch.md; `training.simulate_chip(..., path=...)` writes one).
"""

from __future__ import annotations

import sys

import numpy as np

import nirjax
from nirjax import UsageError
from nirjax.cli import check_outputs, check_readable, integer, number

from ._characterize import characterize
from ._cli_characterize import UNEXPLAINED
from ._mismatch import fit_mismatch
from ._mismatch_chip import simulate
from ._mismatch_data import read_recording
from ._mismatch_targets import as_graph
from ._validate import check_finite_graph

DESCRIPTION = (
    "Calibrate NOMINAL.nir to a chip: optionally find each recorded neuron's structure first "
    "(--structure, as `nirjax characterize`), then fit the deviations of per-neuron parameters "
    "(and optional per-row weight gains) to the membrane traces and/or spikes in RECORDING.h5 "
    "by gradient descent, and write the calibrated graph."
)
ALIAS_NOTE = ("note: `nirjax fit` is an alias of `nirjax calibrate` (hardware calibration); "
              "to train a network use `nirjax train` or training.fit.")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate a nominal graph to a chip's recording (mismatch fit, with "
        "characterization via --structure)",
        description=DESCRIPTION,
    )
    _arguments(p)
    p.set_defaults(func=run)
    alias = subparsers.add_parser(
        "fit", help="alias of `calibrate` (kept for old scripts; says so on stderr)",
        description=DESCRIPTION + " `nirjax fit` is an alias of `nirjax calibrate`.",
    )
    _arguments(alias)
    alias.set_defaults(func=run_alias)


def run_alias(args) -> int:
    print(ALIAS_NOTE, file=sys.stderr)
    return run(args)


def _arguments(p) -> None:
    p.add_argument("nominal", help="the nominal graph (.nir)")
    p.add_argument("recording", help="NIR data file with the recording and its inputs (.h5)")
    p.add_argument("--out", required=True, help="where to write the calibrated graph (.nir)")
    p.add_argument(
        "--params",
        default="tau_syn,tau_mem,r,v_threshold",
        help="comma-separated parameters to fit: fields (tau, tau_syn, tau_mem, r, v_leak, "
        "v_threshold, w_in, weight, gain) or node.field (default: %(default)s)",
    )
    p.add_argument("--gain", default=None, metavar="NODES",
                   help="add a per-row gain to these Affine/Linear nodes (comma-separated, "
                   "or 'all')")
    p.add_argument("--loss", default="auto",
                   help="trace_mse, van_rossum, spike_count or a+b (default: traces if recorded)")
    p.add_argument("--bounds", type=number(">0", example="0.5"), default=0.5,
                   help="largest relative deviation (default: %(default)s = ±50 %%)")
    p.add_argument("--prior", type=number(">0", example="0.1"), default=None,
                   help="relative std of a Gaussian prior on the deviations (default: none)")
    p.add_argument("--steps", type=integer(">=0"), default=400,
                   help="optimizer steps (default: %(default)s)")
    p.add_argument("--lr", type=number(">0", example="0.1"), default=0.1,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--multi-start", type=integer(">=1"), default=1,
                   help="number of starts (default: 1)")
    p.add_argument("--polish", type=integer(">=0"), default=3,
                   help="Gauss-Newton iterations after gradient descent (default: %(default)s)")
    p.add_argument("--clip", type=number(">0", example="1.0"), default=None,
                   help="clip the gradient's global norm")
    p.add_argument("--no-teacher-forcing", action="store_true",
                   help="let the model spike freely instead of replaying the recorded resets")
    p.add_argument("--detach-reset", action="store_true", help="no gradient through resets")
    p.add_argument("--structure", default="auto",
                   help="first find each recorded spiking node's structure (latency, spike "
                   "latency, input reading, reset, discretization, probe point) and probe "
                   "scale/offset, as `nirjax characterize`: auto (default), none, or parts to "
                   "search / fix, e.g. 'latency,reset=value'; a recorded node may be hidden "
                   "(its input comes from the graph's upstream nodes)")
    p.add_argument("--tolerance", type=number(">0", "<1", example="0.01"), default=0.01,
                   help="with --structure: RMS residual relative to the range still accepted")
    p.add_argument("--seed", type=integer(), default=0)
    p.add_argument("--plot", default=None, metavar="FIG.png",
                   help="plot recorded against nominal and fitted activity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    check_readable("NOMINAL", args.nominal)
    check_readable("RECORDING", args.recording)
    check_outputs(("--out", args.out), ("--plot", args.plot), plot=args.plot)
    dt = read_recording(args.recording).dt
    graph = as_graph(args.nominal, dt=dt)
    recording = read_recording(args.recording, graph)
    if not recording.inputs:
        raise UsageError(
            f"{args.recording}: holds no inputs; store them as the 'output' observable of the "
            f"Input node {list(graph.inputs)} (see docs/mismatch.md)."
        )
    recordings = recording.recordings
    unexplained = []
    if args.structure != "none":
        graph, recordings, unexplained = _structure(graph, recording, args)
    gain: bool | list[str] = False
    if args.gain:
        gain = True if args.gain == "all" else [g for g in args.gain.split(",") if g]
    fitted, report = fit_mismatch(
        graph,
        recordings,
        inputs=recording.inputs,
        params=[p.strip() for p in args.params.split(",") if p.strip()],
        per_row_gain=gain,
        bounds=args.bounds,
        prior=args.prior,
        loss=args.loss,
        teacher_forcing=not args.no_teacher_forcing,
        detach_reset=args.detach_reset,
        clip=args.clip,
        multi_start=args.multi_start,
        polish=args.polish,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        progress=not args.quiet,
    )
    check_finite_graph("nirjax fit", fitted)
    nirjax.write(args.out, fitted)
    print(report.summary())
    print(f"wrote {args.out}")
    if args.plot:
        from ._mismatch_plot import plot_fit

        nodes = list(recording.recordings)
        first = {k: v[:1] for k, v in recording.inputs.items()}
        simulated = {
            "nominal": simulate(graph, first, nodes),
            "fitted": simulate(fitted, first, nodes),
        }
        first_rec = {
            n: {k: v[:1] for k, v in obs.items()} for n, obs in recording.recordings.items()
        }
        plot_fit(args.plot, first_rec, simulated, dt=graph.options.dt)
        print(f"wrote {args.plot}")
    if unexplained:
        for node, message in unexplained:
            print(f"error: the model cannot explain the recording of {node!r}: {message}")
        return UNEXPLAINED
    return 0


def _structure(graph, recording, args):
    """Characterize every top-level spiking node whose v and spikes are recorded (one after the
    other, each on the graph with the structures found before); return the structured graph,
    the recordings in model units (v through the inverse probe) and the unexplained nodes."""
    recordings = {n: dict(obs) for n, obs in recording.recordings.items()}
    unexplained = []
    for node, obs in recording.recordings.items():
        if "/" in node or "v" not in obs or "output" not in obs:
            continue
        n = graph.node(node)
        if not (isinstance(n, nirjax.Neuron) and n.spiking):
            continue
        graph, rep = characterize(graph, inputs=recording.inputs, v=obs["v"],
                                  spikes=obs["output"], node=node, structure=args.structure,
                                  tolerance=args.tolerance, progress=not args.quiet)
        print(rep.summary())
        if rep.structure.probe == "post":
            recordings[node]["v"] = (np.asarray(obs["v"], np.float64) - rep.offset) / rep.scale
        else:  # nirjax records v after the reset: fit this node's spikes only
            del recordings[node]["v"]
            print(f"note: {node!r} is probed before the reset; its voltage stays out of the fit.")
        if rep.spike_latency_steps:
            recordings[node]["output"] = np.concatenate(
                [np.asarray(obs["output"])[:, rep.spike_latency_steps:],
                 np.zeros_like(np.asarray(obs["output"])[:, :rep.spike_latency_steps])], 1)
        if not rep.explained:
            unexplained.append((node, rep.message))
    return graph, recordings, unexplained
