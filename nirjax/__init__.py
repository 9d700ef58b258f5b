"""nirjax: a JAX-native, differentiable executor for the Neuromorphic Intermediate Representation.

    graph = nirjax.from_nir("model.nir", dt=1e-4)
    ys = graph(xs)                       # (T, *input_shape) -> (T, *output_shape)
    ys = jax.vmap(graph)(batch)          # a batch
"""

from ._atomic import atomic_path as atomic_path
from ._cli import UsageError as UsageError
from ._discretization import (
    Discretization as Discretization,
    Euler as Euler,
    Exact as Exact,
    register_discretization as register_discretization,
)
from ._execution import Execution as Execution, scan as scan
from ._export import (
    load as load,
    recorded_options as recorded_options,
    to_nir as to_nir,
    write as write,
)
from ._fixed import (
    FIXED_TARGETS as FIXED_TARGETS,
    FixedTarget as FixedTarget,
    fixed_point as fixed_point,
    register_fixed_target as register_fixed_target,
)
from ._fixed_loihi import Loihi2 as Loihi2  # registers "loihi2"
from ._fixed_xylo import Xylo as Xylo  # registers "xylo"
from ._graph import Graph as Graph, RunResult as RunResult
from ._import import from_nir as from_nir, read as read
from ._options import Options as Options
from ._paths import node_at as node_at, walk as walk
from ._plan import Edge as Edge, FlatPlan as FlatPlan, Plan as Plan, compile_plan as compile_plan
from ._registry import (
    ImportContext as ImportContext,
    module_to_nir as module_to_nir,
    nir_to_module as nir_to_module,
)
from ._simulate import batched as batched, simulate as simulate, simulate_hdf5 as simulate_hdf5
from ._surrogate import (
    SURROGATES as SURROGATES,
    Surrogate as Surrogate,
    register_surrogate as register_surrogate,
)
from .primitives import (
    IF as IF,
    LI as LI,
    LIF as LIF,
    Affine as Affine,
    AvgPool2d as AvgPool2d,
    Conv1d as Conv1d,
    Conv2d as Conv2d,
    CubaLI as CubaLI,
    CubaLIF as CubaLIF,
    Delay as Delay,
    Flatten as Flatten,
    I as I,
    Input as Input,
    Linear as Linear,
    Neuron as Neuron,
    Output as Output,
    Primitive as Primitive,
    Scale as Scale,
    SumPool2d as SumPool2d,
    Threshold as Threshold,
    register_neuron as register_neuron,
)

__version__ = "0.1.0"

from . import targets as targets
from .targets import check as check

_LAZY = {  # continuous time and the fidelity report: diffrax is imported on first use
    "simulate_continuous": "_continuous", "run_method": "_continuous",
    "ContinuousResult": "_continuous", "compare": "_compare", "FidelityReport": "_compare",
    "match_spikes": "_compare", "trains_from_grid": "_compare", "trains_from_times": "_compare",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'nirjax' has no attribute {name!r}")

from . import nn as nn  # noqa: E402  (the network builder; imports the primitives above)
