r"""Choosing what trains, and keeping it valid.

A graph's parameters are the array fields of its nodes (`weight`, `bias`, `tau`, `r`,
`v_threshold`, ...). `select_trainable` picks `(node path, field)` pairs: by default every
`weight` and `bias`; more by field name for every node that has it, or per node.

Training works on *unconstrained* values; `apply_params` maps them back:

| field | reparametrization | keeps |
|---|---|---|
| `"positive"` parameters (`tau`, `tau_syn`, `tau_mem`, ...) | $\tau = e^{u}$ | $\tau > 0$ |
| `v_threshold` | $\vartheta = v_{reset} + \mathrm{softplus}(u)$ | $v_{reset} < \vartheta$, finite |
| everything else | identity | |

so a graph after `apply_params` holds the constrained values, and `nirjax.to_nir` exports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import nirjax

from ._paths import field_getter, get, walk

__all__ = [
    "DEFAULT_TRAINABLE",
    "select_trainable",
    "init_params",
    "apply_params",
    "filter_spec",
    "parameter_fields",
]

DEFAULT_TRAINABLE = ("weight", "bias")


def _positive(module, field: str) -> bool:
    """Whether the node's definition constrains `field` to be > 0 (a `nirjax.Neuron`'s
    `"positive"` parameters)."""
    return isinstance(module, nirjax.Neuron) and module.parameters.get(field) == "positive"


def parameter_fields(module) -> tuple[str, ...]:
    """The array-valued (parameter) fields of a node module."""
    out = []
    for f in getattr(module, "__dataclass_fields__", {}):
        if isinstance(getattr(module, f, None), (jax.Array, np.ndarray)):
            out.append(f)
    return tuple(out)


def select_trainable(
    graph: nirjax.Graph,
    train: Iterable[str] = DEFAULT_TRAINABLE,
    *,
    nodes: Mapping[str, Sequence[str]] | None = None,
    freeze: Mapping[str, Sequence[str]] | None = None,
) -> tuple[tuple[str, str], ...]:
    """Pick the parameters to train.

    **Arguments:**

    - `train`: field names trained in every node that has them (default `("weight", "bias")`);
      add e.g. `"tau"`, `"tau_mem"`, `"v_threshold"`, `"v_leak"`.
    - `nodes`: extra fields for given nodes, `{"lif1": ("tau", "v_threshold")}` (nested nodes
      as `"sub/node"`).
    - `freeze`: fields not to train in given nodes, `{"fc1": ("bias",)}`.

    **Returns:** sorted `(node path, field)` pairs.
    """
    if isinstance(train, str):
        train = (train,)
    train = tuple(train)
    nodes = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (nodes or {}).items()}
    freeze = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (freeze or {}).items()}
    modules = {p: m for p, m in walk(graph, sort=True) if not isinstance(m, nirjax.Graph)}
    for where, spec in (("nodes", nodes), ("freeze", freeze)):
        for path, fields in spec.items():
            if path not in modules:
                raise ValueError(
                    f"select_trainable: {where} names node {path!r}, which is not in the graph; "
                    f"nodes are {sorted(modules)}"
                )
            have = parameter_fields(modules[path])
            bad = [f for f in fields if f not in have]
            if bad:
                raise ValueError(
                    f"select_trainable: node {path!r} ({type(modules[path]).__name__}) has no "
                    f"parameter {bad}; its parameters are {list(have)}"
                )
    chosen = []
    for path, module in modules.items():
        have = parameter_fields(module)
        wanted = {f for f in train if f in have} | set(nodes.get(path, ()))
        wanted -= set(freeze.get(path, ()))
        chosen += [(path, f) for f in sorted(wanted)]
    return tuple(chosen)


def _key(path: str, field: str) -> str:
    return f"{path}:{field}"


def _softplus_inv(y):
    # log(exp(y) - 1), stable for large y.
    return y + jnp.log(-jnp.expm1(-y))


def _threshold_base(module):
    return getattr(module, "v_reset", None)


def init_params(graph: nirjax.Graph, trainable: Sequence[tuple[str, str]]) -> dict[str, jax.Array]:
    """The unconstrained values of the chosen parameters, `{"node:field": array}`.

    Raises if a value cannot be represented (a threshold not above the reset potential).
    """
    params = {}
    for path, field in trainable:
        module = get(graph, path)
        value = jnp.asarray(getattr(module, field))
        if _positive(module, field):
            params[_key(path, field)] = jnp.log(value)
        elif field == "v_threshold" and _threshold_base(module) is not None:
            gap = value - _threshold_base(module)
            if not bool(jnp.all(gap > 0)):
                raise ValueError(
                    f"node {path!r}, field 'v_threshold': training keeps the threshold above "
                    f"v_reset, but min(v_threshold - v_reset) = {float(jnp.min(gap))}; fix the "
                    "graph or leave v_threshold frozen"
                )
            params[_key(path, field)] = _softplus_inv(gap)
        else:
            params[_key(path, field)] = value
    return params


def apply_params(graph: nirjax.Graph, params: Mapping[str, jax.Array]) -> nirjax.Graph:
    """The graph with the chosen parameters set to their constrained values."""
    # Thresholds depend on v_reset, which may itself train: set everything else first.
    ordered = sorted(params, key=lambda k: k.endswith(":v_threshold"))
    for k in ordered:
        path, field = k.rsplit(":", 1)
        u = params[k]
        where = field_getter(path, field)
        module = get(graph, path)
        if _positive(module, field):
            value = jnp.exp(u)
        elif field == "v_threshold" and _threshold_base(module) is not None:
            value = _threshold_base(module) + jax.nn.softplus(u)
        else:
            value = u
        graph = eqx.tree_at(where, graph, value)
    return graph


def filter_spec(graph: nirjax.Graph, trainable: Sequence[tuple[str, str]]):
    """A pytree of bools shaped like `graph`, True at the chosen parameters: for
    `eqx.partition(graph, filter_spec(graph, trainable))` when training without the
    reparametrization."""
    spec = jax.tree.map(lambda _: False, graph)
    for path, field in trainable:
        spec = eqx.tree_at(field_getter(path, field), spec, True)
    return spec
