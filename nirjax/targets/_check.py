"""`nirjax.check(graph, target)`: every design-rule violation of a graph on a chip."""

from __future__ import annotations

import os

import nir

from .._graph import Graph
from ._target import Target, Violation, get_target
from ._view import GraphView

__all__ = ["check", "format_violations"]


def check(graph: nir.NIRGraph | Graph | str | os.PathLike, target: str | Target, *,
          dt: float | None = None) -> list[Violation]:
    """Check a graph against a chip profile.

    **Arguments:**

    - `graph`: a `nir.NIRGraph`, a `nirjax.Graph` (checked as `nirjax.to_nir` exports it; the
      quantization records of `nirjax.targets.quantize` live on the NIR graph, so check that)
      or the path of a `.nir` file.
    - `target`: a registered target name (`"xylo"`, `"speck"`, `"loihi2"`, `"brainscales2"`,
      `"spinnaker2"`, or one added with `nirjax.targets.register_target`) or a `Target`.
    - `dt`: the time step, if the graph records none (`nirjax_dt`).

    **Returns:** the violations, rule by rule in the profile's order (empty: the graph fits).
    """
    target = get_target(target)
    view = GraphView.of(graph, dt=dt)
    found: list[Violation] = []
    for rule in target.rules:
        found.extend(rule.check(view, target))
    return found


def format_violations(violations: list[Violation], target: str | Target) -> str:
    """A report, one violation per line, with each rule's source."""
    target = get_target(target)
    if not violations:
        return f"fits {target.name}: no violations of its {len(target.rules)} rules"
    lines = [f"{len(violations)} violation(s) of {target.name}:"]
    for v in violations:
        lines.append(f"  {v}  (source: {target.rule(v.rule).source})")
    return "\n".join(lines)
