"""The `nirjax` command line.

Each subcommand is a module with `add_parser(subparsers)` that registers its parser and sets
`func(args) -> int`. nirjax's own commands live in `nirjax/_commands/`; other packages add
commands through the entry-point group `nirjax.commands` (the `training` package adds `train`
and `fit` this way, so nirjax never imports it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

BUILTIN = ("info", "run", "compare", "check")


class UsageError(Exception):
    """A bad flag or argument: printed as one line, exit code 2."""


def _command_modules():
    for name in BUILTIN:
        try:
            yield name, importlib.import_module(f"nirjax._commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"nirjax._commands.{name}":
                raise
    for ep in sorted(entry_points(group="nirjax.commands"), key=lambda e: e.name):
        yield ep.name, ep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nirjax", description="Run, train, calibrate and inspect NIR graphs with JAX."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _command_modules():
        if hasattr(module, "load"):  # an entry point: import it only now
            module = module.load()
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"nirjax {args.command}: interrupted.", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError, FileNotFoundError, NotImplementedError,
            KeyError, OSError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"nirjax {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
