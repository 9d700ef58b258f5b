"""Size limits checked before anything is allocated, so an absurd declared shape or delay is a
clear error at build time instead of an out-of-memory failure deep inside XLA."""

from __future__ import annotations

import math

MAX_ELEMENTS = 2**30
"""The most elements nirjax allows in one per-step array of a node (its input, output or
state, for one sample): 2^30 (4 GiB in float32)."""


def check_budget(shape, where: str, what: str, fix: str) -> None:
    """A ValueError if an array of `shape` would hold more than `MAX_ELEMENTS` elements."""
    n = math.prod(int(d) for d in shape)
    if n > MAX_ELEMENTS:
        raise ValueError(
            f"{where}: {what} of shape {tuple(int(d) for d in shape)} would hold {n:.3g} "
            f"elements per sample, over nirjax's limit of {MAX_ELEMENTS:.3g} (2^30). {fix}"
        )
