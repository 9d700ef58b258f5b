"""Checked command-line values: argparse `type=` callables that range-check a number, and the
checks every command makes on its paths before the work starts.

    p.add_argument("--lr", type=number(">0"), default=0.1)
    p.add_argument("--window", type=number(">0", seconds=True))
    p.add_argument("--polish", type=integer(">=0"), default=3)

A value out of range is argparse's usual one-line error (`argument --lr: expected a finite
number > 0, got 'nan'`) and exit code 2; the `nirjax` parser prints it on one line.
"""

from __future__ import annotations

import argparse
import math
import os
import re

from ._cli import UsageError

_BOUND = re.compile(r"^(>=|>|<=|<)\s*(-?[0-9.eE+-]+)$")


def _bounds(*conditions: str):
    checks = []
    for c in conditions:
        m = _BOUND.match(c.replace(" ", ""))
        if m is None:
            raise ValueError(f"number(): a condition is like '>0' or '<=1', got {c!r}")
        op, bound = m.group(1), float(m.group(2))
        checks.append((op, bound))
    return checks


def _describe(kind: str, checks) -> str:
    if not checks:
        return kind
    return kind + " " + " and ".join(f"{op} {bound:g}" for op, bound in checks)


def _ok(value: float, checks) -> bool:
    return all({">": value > b, ">=": value >= b, "<": value < b, "<=": value <= b}[op]
               for op, b in checks)


def number(*conditions: str, example: str | None = None):
    """An argparse type: a finite float satisfying every condition (`">0"`, `"<1"`, ...);
    NaN and infinities are refused."""
    checks = _bounds(*conditions)
    expected = _describe("a finite number", checks)
    hint = f" (e.g. {example})" if example else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}{hint}, got {text!r}") from None
        if not (math.isfinite(value) and _ok(value, checks)):
            raise argparse.ArgumentTypeError(f"expected {expected}{hint}, got {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in its own messages
    return parse


def integer(*conditions: str, example: str | None = None):
    """An argparse type: an int (written without a fraction) satisfying every condition."""
    checks = _bounds(*conditions)
    expected = _describe("an integer", checks)
    hint = f" (e.g. {example})" if example else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}{hint}, got {text!r}") from None
        if not _ok(value, checks):
            raise argparse.ArgumentTypeError(f"expected {expected}{hint}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def check_writable(flag: str, path: str | os.PathLike | None, *, folder: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written: its folder (for `folder=True`
    the path itself, or the nearest existing folder above it) must exist and be writable, and
    the path itself must not be a folder (for a file) or a file (for a folder)."""
    if path is None:
        return
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{flag}: expected a path, got an empty string.")
    target = os.path.abspath(path)
    if folder:
        if os.path.exists(target) and not os.path.isdir(target):
            raise UsageError(f"{flag} {path}: exists and is not a folder; choose a folder path.")
        probe = target
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            raise UsageError(f"{flag} {path}: {probe} is a file, not a folder; choose another "
                             "path.")
    else:
        if os.path.isdir(target):
            raise UsageError(f"{flag} {path}: is a folder; give a file name (e.g. "
                             f"{os.path.join(path, 'out' + _suffix(flag))}).")
        probe = os.path.dirname(target)
        if os.path.exists(probe) and not os.path.isdir(probe):
            raise UsageError(f"{flag} {path}: {probe} is a file, not a folder; choose another "
                             "path.")
        if not os.path.isdir(probe):
            raise UsageError(f"{flag} {path}: folder {probe} does not exist; create it or choose "
                             "another path.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: folder {probe} is not writable; choose a writable "
                         "path.")
    if not folder and os.path.exists(target) and not os.access(target, os.W_OK):
        raise UsageError(f"{flag} {path}: the file exists and is not writable; choose another "
                         "path or change its permissions.")


def _suffix(flag: str) -> str:
    return {"--json": ".json", "--plot": ".png"}.get(flag, ".nir")


def check_readable(flag: str, path: str | os.PathLike) -> None:
    """Refuse an input path that does not exist, is a folder or cannot be read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{flag} {path}: no such file.")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a folder, expected a file.")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{flag} {path}: the file is not readable (permissions).")


def check_outputs(*outputs: tuple[str, str | os.PathLike | None], plot: str | None = None) -> None:
    """Before any work: every `(flag, path)` output is writable (`check_writable`) and the
    temporaries a killed run left beside it are removed; `plot` (the `--plot` path, if any)
    also needs matplotlib."""
    from ._atomic import remove_stale_temporaries

    for flag, path in outputs:
        check_writable(flag, path)
        if path:
            remove_stale_temporaries(path)
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib.") from None
