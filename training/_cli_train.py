"""`nirjax train`: train a spiking network and export it as NIR.

With no arguments it trains the default network on the embedded digits set (scikit-learn's
8x8 digits as spikes), shows a progress bar, and writes `model.nir`, `metrics.json` and
`training.png` into an output folder whose path it prints. Registered through the entry-point
group `nirjax.commands` (`train = "training._cli_train"`).
"""

from __future__ import annotations

import argparse
import math

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
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
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
        help=f"{' | '.join(DATASETS)} | PATH.h5 (an SHD/SSC file) (default: %(default)s)",
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
        default=_DEFAULT.hidden,
        help="hidden layer sizes, e.g. 128 or 128,64 (default: 128)",
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
        type=int,
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
        type=float,
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
        "--no-resume", action="store_true", help="ignore a checkpoint in the output folder"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from nirjax import UsageError

    if not 0.0 <= args.val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.patience is not None and args.val_fraction == 0:
        raise UsageError("--patience needs a validation split: pass --val-fraction, e.g. 0.1")
    spec = JobSpec(
        dataset=args.dataset,
        test_data=args.test_data,
        n_steps=args.steps,
        encoder=args.encoder,
        hidden=tuple(args.hidden),
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
        peer=args.peer,
    )
    train_job(spec)
    return 0
