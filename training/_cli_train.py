"""`nirjax train`: train a spiking network and export it as NIR.

With no arguments it trains the default network on the embedded digits set (scikit-learn's
8x8 digits as spikes), shows a progress bar, and writes `model.nir`, `metrics.json` and
`training.png` into an output folder whose path it prints. Registered through the entry-point
group `nirjax.commands` (`train = "training._cli_train"`).
"""

from __future__ import annotations

import argparse
import math

from nirjax.cli import integer, number

from ._arch import SYNTAX, parse_arch
from ._events import BINNINGS, EVENT_DATASETS
from ._job import DATASETS, JobSpec, _as_tuple_ints, train_job
from ._loop import LOSSES
from ._models import NEURONS, READOUTS

_DEFAULT = JobSpec()


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a finite number > 0, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return v


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = _as_tuple_ints(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes such as 128 or 128,64, got {text!r}"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def _arch(text: str) -> str:
    try:
        parse_arch(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_parser(subparsers) -> argparse.ArgumentParser:
    import nirjax

    p = subparsers.add_parser(
        "train",
        help="train a spiking network (default: digits) and export it as NIR",
        description=(
            "Train a spiking network with surrogate gradients and write model.nir, metrics.json "
            "and training.png into an output folder. With no arguments: the embedded digits set."
        ),
    )
    p.add_argument(
        "--dataset",
        default=_DEFAULT.dataset,
        help=f"{' | '.join(DATASETS)} | PATH.h5 (an SHD/SSC file) | KIND:FOLDER, an event "
        f"dataset in tonic's layout, KIND one of {', '.join(sorted(EVENT_DATASETS))} "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--binning",
        choices=BINNINGS,
        default=_DEFAULT.binning,
        help="event datasets: events per step and pixel (count) or at most one (binary) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--downsample",
        type=_positive_int,
        default=_DEFAULT.downsample,
        help="dvsgesture: pool K x K pixels into one input (default: %(default)s)",
    )
    p.add_argument("--test-data", default=None, help="test file for an HDF5 --dataset")
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=_DEFAULT.n_steps,
        help="time steps per sample (default: %(default)s)",
    )
    p.add_argument(
        "--encoder",
        choices=("rate", "poisson", "latency", "current"),
        default=_DEFAULT.encoder,
        help="digits encoder (default: %(default)s)",
    )
    p.add_argument(
        "--hidden",
        type=_sizes,
        default=None,
        help="hidden layer sizes, e.g. 128 or 128,64 (default: 128)",
    )
    p.add_argument(
        "--arch",
        type=_arch,
        default=None,
        help="an architecture instead of --hidden, built with nirjax.nn: "
        f"{SYNTAX}; a spiking --neuron follows every conv and fc, the readout is added",
    )
    p.add_argument(
        "--neuron",
        choices=NEURONS,
        default=_DEFAULT.neuron,
        help="hidden neuron; r* are recurrent (default: %(default)s)",
    )
    p.add_argument(
        "--readout",
        choices=READOUTS,
        default=_DEFAULT.readout,
        help="lif: spike-count readout; li: membrane readout (default: lif for digits, li "
        "otherwise)",
    )
    p.add_argument(
        "--peer",
        choices=("sinabs", "rockpool", "spyx"),
        default=None,
        help="train that peer's neuron model (nirjax.interop.for_peer) so that model.nir "
        "exports to it exactly; rockpool needs --neuron cubalif",
    )
    p.add_argument(
        "--graph",
        default=None,
        metavar="FILE.nir",
        help="start from this NIR graph (architecture and initial parameters)",
    )
    p.add_argument("--epochs", type=_positive_int, default=_DEFAULT.epochs)
    p.add_argument("--batch-size", type=_positive_int, default=_DEFAULT.batch_size)
    p.add_argument("--lr", type=_positive_float, default=_DEFAULT.lr)
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default=None,
        help="default: counts for a spiking readout, membrane_max otherwise",
    )
    p.add_argument("--surrogate", choices=sorted(nirjax.SURROGATES), default=_DEFAULT.surrogate)
    p.add_argument(
        "--dt",
        type=_positive_float,
        default=None,
        help="time step in seconds (default: the graph's, else 1e-4)",
    )
    p.add_argument(
        "--seed",
        type=integer(">=0"),
        default=_DEFAULT.seed,
        help="seed of the initial weights and the shuffling (default: %(default)s)",
    )
    p.add_argument(
        "--train",
        default="weight,bias",
        help="parameter names to train, e.g. weight,bias,tau,v_threshold",
    )
    p.add_argument(
        "--val-fraction",
        type=number(">=0", "<1", example="0.1"),
        default=_DEFAULT.val_fraction,
        help="validation split for best-epoch selection and early stopping",
    )
    p.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="early stopping patience in epochs (needs --val-fraction)",
    )
    p.add_argument("--out", default=None, help="output folder (default: runs/train-...)")
    p.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="train on the first N training samples only (smoke tests)",
    )
    p.add_argument(
        "--devices",
        type=_positive_int,
        default=None,
        help="train data-parallel over N devices (the batch size must split evenly)",
    )
    p.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="also write TensorBoard event files (needs tensorboardX) into DIR",
    )
    p.add_argument(
        "--no-resume", action="store_true", help="ignore a checkpoint in the output folder"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--target",
        choices=("xylo", "speck", "loihi2", "brainscales2", "spinnaker2"),
        default=None,
        help="quantization-aware training for a chip; model.nir is then chip-exact "
        "(see docs/targets/)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from nirjax import UsageError

    if not 0.0 <= args.val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.devices is not None:
        import jax

        if args.devices > len(jax.devices()):
            raise UsageError(
                f"--devices {args.devices}: only {len(jax.devices())} device(s) visible; on CPU "
                "start more with XLA_FLAGS=--xla_force_host_platform_device_count=N"
            )
        if args.batch_size % args.devices:
            raise UsageError(
                f"--batch-size {args.batch_size} does not split over --devices {args.devices}; "
                f"use a multiple of {args.devices}"
            )
    if args.dataset.startswith("nmnist:"):
        import importlib.util

        if importlib.util.find_spec("tonic") is None:
            raise UsageError("--dataset nmnist:... needs tonic: pip install 'nirjax[data]'")
    if args.tensorboard is not None:
        import importlib.util

        if importlib.util.find_spec("tensorboardX") is None:
            raise UsageError("--tensorboard needs tensorboardX: pip install tensorboardX")
    if args.patience is not None and args.val_fraction == 0:
        raise UsageError("--patience needs a validation split: pass --val-fraction, e.g. 0.1")
    if args.arch and args.hidden is not None:
        raise UsageError("--arch and --hidden both give the architecture; pass one of them")
    if args.arch and args.graph:
        raise UsageError("--arch and --graph both give the architecture; pass one of them")
    spec = JobSpec(
        dataset=args.dataset,
        test_data=args.test_data,
        n_steps=args.steps,
        encoder=args.encoder,
        hidden=tuple(args.hidden or _DEFAULT.hidden),
        arch=args.arch,
        neuron=args.neuron,
        readout=args.readout,
        graph=args.graph,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        loss=args.loss,
        surrogate=args.surrogate,
        dt=args.dt,
        train=tuple(t for t in args.train.replace(" ", "").split(",") if t),
        val_fraction=args.val_fraction,
        patience=args.patience,
        out=args.out,
        progress=not args.no_progress,
        resume=not args.no_resume,
        limit=args.limit,
        binning=args.binning,
        downsample=args.downsample,
        devices=args.devices,
        tensorboard=args.tensorboard,
        target=args.target,
        peer=args.peer,
    )
    train_job(spec)
    return 0
