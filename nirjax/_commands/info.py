"""`nirjax info FILE.nir [--dt DT]`: a table of the graph's nodes: type, per-step input and
output shapes, parameter counts, back edges of cycles, and the recorded dt and options."""

from __future__ import annotations

import math

import equinox as eqx
import jax

from .._export import recorded_options
from .._flags import number
from .._import import read
from .._options import Options


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="print a table of a NIR graph's nodes, shapes, parameters and cycles",
        description=(
            "Read a .nir file and print one row per node (nested nodes as 'sub/node'): its NIR "
            "type, per-step input and output shapes, number of parameters, the back edges that "
            "close cycles, and the dt and dynamics options the file records (nirjax_* metadata)."
        ),
    )
    p.add_argument("file", help="the .nir graph")
    p.add_argument("--dt", type=number(">0", example="1e-4"), default=None,
                   help="time step for building the graph when the file records none "
                        "(only used to build it; the default 1e-4 does not change shapes)")
    p.set_defaults(func=run)


def _shape(shape) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_shape(v)}" for k, v in shape.items()) + "}"
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _count(module) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(eqx.filter(module, eqx.is_array)))


def _rows(graph, prefix="", show_dt=True):
    from .. import Graph

    ins, outs = dict(graph.plan.in_shapes), dict(graph.plan.out_shapes)
    for name in graph.plan.order:
        module = graph.nodes[name]
        options = getattr(module, "options", None)
        yield {
            "node": prefix + name,
            "type": "NIRGraph" if isinstance(module, Graph) else type(module).__name__,
            "input": _shape(ins.get(name)),
            "output": _shape(outs.get(name)),
            "params": _count(module),
            "dt": "" if options is None or not show_dt else f"{options.dt:g}",
        }
        if isinstance(module, Graph):
            yield from _rows(module, f"{prefix}{name}/", show_dt)


def _back_edges(graph, prefix=""):
    from .. import Graph

    for e in graph.plan.back_edges:
        yield f"{prefix}{e.key} -> {prefix}{e.dst_key}"
    for name, module in graph.nodes.items():
        if isinstance(module, Graph):
            yield from _back_edges(module, f"{prefix}{name}/")


def _node_options(nir_graph, prefix=""):
    import nir

    for key, node in nir_graph.nodes.items():
        found = Options.from_metadata(getattr(node, "metadata", None))
        if found:
            yield prefix + key, found
        if isinstance(node, nir.NIRGraph):
            yield from _node_options(node, f"{prefix}{key}/")


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def run(args) -> int:
    from .. import from_nir

    nir_graph = read(args.file)
    recorded = recorded_options(nir_graph)
    dt = args.dt if args.dt is not None else (None if "dt" in recorded else 1e-4)
    kwargs = {} if dt is None else {"dt": dt}
    if "dtype" in recorded:
        import jax.numpy as jnp

        if jnp.dtype(recorded["dtype"]) == jnp.float64 and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        kwargs["dtype"] = jnp.dtype(recorded["dtype"])
    graph = from_nir(nir_graph, **kwargs)
    rows = list(_rows(graph, show_dt=dt is None or args.dt is not None))
    print(f"{args.file}: {len(rows)} nodes, {_count(graph)} parameters, "
          f"inputs {list(graph.inputs)}, outputs {list(graph.outputs)}")
    print(_table(rows, ["node", "type", "input", "output", "params", "dt"]))
    back = list(_back_edges(graph))
    print("back edges (carry the previous step): " + (", ".join(back) if back else "none"))
    if recorded:
        shown = {k: (v.name + f"({v.scale:g})" if k == "surrogate" else v)
                 for k, v in recorded.items()}
        print("recorded options: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    else:
        print("recorded options: none (pass --dt and the options when running it)"
              if args.dt is None else "recorded options: none")
    per_node = list(_node_options(nir_graph))
    for name, found in per_node:
        text = ", ".join(
            f"{k}={v.name + f'({v.scale:g})' if k == 'surrogate' else v}" for k, v in found.items()
        )
        print(f"  node {name}: {text}")
    return 0
