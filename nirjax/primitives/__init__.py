"""The NIR primitives as Equinox modules (importing this registers them)."""

from ._base import Primitive as Primitive
from ._conv import Conv1d as Conv1d, Conv2d as Conv2d
from ._delay import Delay as Delay
from ._flatten import Flatten as Flatten
from ._io import Input as Input, Output as Output
from ._linear import Affine as Affine, Linear as Linear, Scale as Scale
from ._neuron import (
    IF as IF,
    LI as LI,
    LIF as LIF,
    CubaLI as CubaLI,
    CubaLIF as CubaLIF,
    I as I,
    Neuron as Neuron,
    register_neuron as register_neuron,
)
from ._pooling import AvgPool2d as AvgPool2d, SumPool2d as SumPool2d
from ._threshold import Threshold as Threshold
