"""The `nirjax` command line.

Each subcommand is a module with `add_parser(subparsers)` that registers its parser and sets
`func(args) -> int`. nirjax's own commands live in `nirjax/_commands/`; other packages add
commands through the entry-point group `nirjax.commands` (the `training` package adds `train`
and `fit` this way, so nirjax never imports it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import entry_points

BUILTIN = ("info", "run", "compare", "check")


class UsageError(Exception):
    """A bad flag or argument: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`nirjax run: error: argument --dt: ...`) and
    exit code 2; `--help` still prints the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


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
    parser = _Parser(
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a bad flag (already printed, one line) or --help
        return e.code if isinstance(e.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"nirjax {args.command}: interrupted.", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place a command's failure reaches the user
        if os.environ.get("NIRJAX_TRACEBACK"):
            raise
        code, message = _reported(e)
        print(f"nirjax {args.command}: {message}", file=sys.stderr)
        return code


def _reported(e: BaseException) -> tuple[int, str]:
    """The exit code and the one line a command's exception is reported as: 2 and `error: ...`
    for bad input (usage, values, files, a runtime check of the data), 1 and `internal error`
    (with a request to report it) for anything else."""
    from ._errors import runtime_message

    text = runtime_message(e)
    if text is not None:
        return 2, f"error: {text}"
    if isinstance(e, (UsageError, ValueError, TypeError, NotImplementedError, KeyError,
                      OSError, MemoryError)):
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        text = lines[0] if lines else type(e).__name__
        if isinstance(e, KeyError) and text.startswith(("'", '"')):
            text = text.strip("'\"")
        if isinstance(e, OSError) and getattr(e, "filename", None) and e.filename not in text:
            text = f"{e.filename}: {text}"
        if isinstance(e, MemoryError):
            text = f"out of memory ({text}); use smaller inputs or a smaller --batch-size"
        return 2, f"error: {text}"
    if isinstance(e, ImportError) and getattr(e, "name", None):
        return 2, (f"error: this needs the package {e.name!r}, which is not installed ({e}); "
                   f"install it (e.g. pip install {e.name.split('.')[0]}).")
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    detail = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return 1, (f"internal error ({detail}); this is a bug in nirjax, please report it with the "
               "command line and files that caused it (set NIRJAX_TRACEBACK=1 for the traceback)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
