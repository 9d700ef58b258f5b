"""nirjax: a JAX-native, differentiable executor for the Neuromorphic Intermediate Representation.

    graph = nirjax.from_nir("model.nir", dt=1e-4)
    ys = graph(xs)                       # (T, *input_shape) -> (T, *output_shape)
    ys = jax.vmap(graph)(batch)          # a batch
"""

from ._execution import Execution as Execution
from ._export import load as load
from ._export import to_nir as to_nir
from ._export import write as write
from ._graph import Graph as Graph
from ._graph import RunResult as RunResult
from ._import import from_nir as from_nir
from ._import import read as read
from ._options import Options as Options
from ._registry import (
    ImportContext as ImportContext,
)
from ._registry import (
    module_to_nir as module_to_nir,
)
from ._registry import (
    nir_to_module as nir_to_module,
)
from ._simulate import simulate as simulate
from ._simulate import simulate_hdf5 as simulate_hdf5
from ._surrogate import (
    SURROGATES as SURROGATES,
)
from ._surrogate import (
    Surrogate as Surrogate,
)
from ._surrogate import (
    register_surrogate as register_surrogate,
)
from .primitives import (
    IF as IF,
)
from .primitives import (
    LI as LI,
)
from .primitives import (
    LIF as LIF,
)
from .primitives import (
    Affine as Affine,
)
from .primitives import (
    AvgPool2d as AvgPool2d,
)
from .primitives import (
    Conv1d as Conv1d,
)
from .primitives import (
    Conv2d as Conv2d,
)
from .primitives import (
    CubaLI as CubaLI,
)
from .primitives import (
    CubaLIF as CubaLIF,
)
from .primitives import (
    Delay as Delay,
)
from .primitives import (
    Flatten as Flatten,
)
from .primitives import (
    I as I,
)
from .primitives import (
    Input as Input,
)
from .primitives import (
    Linear as Linear,
)
from .primitives import (
    Output as Output,
)
from .primitives import (
    Primitive as Primitive,
)
from .primitives import (
    Scale as Scale,
)
from .primitives import (
    SumPool2d as SumPool2d,
)
from .primitives import (
    Threshold as Threshold,
)

__version__ = "0.1.0"

_LAZY = {  # continuous time and the fidelity report: diffrax is imported on first use
    "simulate_continuous": "_continuous", "run_method": "_continuous",
    "ContinuousResult": "_continuous", "compare": "_compare", "FidelityReport": "_compare",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'nirjax' has no attribute {name!r}")
