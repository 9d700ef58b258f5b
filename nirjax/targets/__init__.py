"""Chip targets: profiles as data, design-rule checks, and quantization onto a chip's formats.

    import nirjax
    problems = nirjax.check("model.nir", "xylo")          # [] when the graph fits
    for v in problems:
        print(v)                              # node.field: [rule] allowed; received; fix
    q = nirjax.targets.quantize(graph, "loihi2")           # a nir.NIRGraph on the chip's grid
    nirjax.write("model_loihi2.nir", q)                    # quantization recorded in metadata

Built-in profiles: `xylo` (SynSense Xylo Audio 2, SYNS61201), `speck` (DYNAP-CNN), `loihi2`,
`brainscales2`, `spinnaker2`; each rule cites the toolchain file and line it comes from
(`nirjax.targets.TARGETS["xylo"].rules`). Another chip is a `Target` built from the rule
factories in `nirjax.targets.rules` (or any function `(view, target) -> violations`) and
`register_target(...)`; see docs/targets/README.md.

Metadata written by `quantize` (read by the fixed-point executor): graph metadata
`"nirjax.target": {"name": ...}`; node metadata `"nirjax.quantization": {"<field>": {"scale": s,
"bits": b, "signed": bool}}`: the field's float value is an integer times `s`.
"""

from . import _rules as rules
from ._check import check as check, format_violations as format_violations
from ._profiles import (
    BRAINSCALES2 as BRAINSCALES2,
    LOIHI2 as LOIHI2,
    SPECK as SPECK,
    SPINNAKER2 as SPINNAKER2,
    XYLO as XYLO,
)
from ._quantize import quantization_plan as quantization_plan, quantize as quantize
from ._target import (
    QUANTIZATION_KEY as QUANTIZATION_KEY,
    TARGET_KEY as TARGET_KEY,
    TARGETS as TARGETS,
    NumberFormat as NumberFormat,
    Rule as Rule,
    Target as Target,
    Violation as Violation,
    get_target as get_target,
    on_grid as on_grid,
    register_target as register_target,
)
from ._view import (
    GraphView as GraphView,
    quantization as quantization,
    recorded_target as recorded_target,
)

__all__ = [
    "check", "format_violations", "quantize", "quantization_plan", "Target", "Rule",
    "Violation", "NumberFormat", "TARGETS", "register_target", "get_target", "GraphView",
    "quantization", "recorded_target", "QUANTIZATION_KEY", "TARGET_KEY", "rules", "on_grid",
    "XYLO", "SPECK", "LOIHI2", "BRAINSCALES2", "SPINNAKER2",
]
