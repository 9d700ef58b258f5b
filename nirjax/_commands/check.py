"""`nirjax check FILE.nir --target NAME [--dt DT]`: every design-rule violation of a graph on a
chip, one per line with the node, field, what the chip allows, what the graph has, the fix and
the rule's source. Exit code 2 when there are violations, 0 when the graph fits."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    from .._flags import number
    from ..targets import TARGETS

    p = subparsers.add_parser(
        "check",
        help="check a NIR graph against a chip's design rules (exit 2 on violations)",
        description=(
            "Read a .nir file and list every violation of the target chip's design rules: the "
            "node and field, what the chip allows, what the graph has, and the fix. Exit code "
            "2 when there are violations, 0 when the graph fits."
        ),
    )
    p.add_argument("file", help="the .nir graph")
    p.add_argument("--target", required=True,
                   help=f"the chip: {' | '.join(sorted(TARGETS))}")
    p.add_argument("--dt", type=number(">0", example="1e-4"), default=None,
                   help="time step in seconds if the file records none")
    p.set_defaults(func=run)


def run(args) -> int:
    from .._cli import UsageError
    from ..targets import TARGETS, check, format_violations

    if args.target not in TARGETS:
        raise UsageError(f"--target {args.target!r} is not known; use one of {sorted(TARGETS)}")
    violations = check(args.file, args.target, dt=args.dt)
    print(format_violations(violations, args.target))
    if violations:
        print(f"nirjax check: {args.file} does not fit {args.target} "
              f"({len(violations)} violation(s))", file=sys.stderr)
        return 2
    return 0
