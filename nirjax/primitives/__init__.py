"""The NIR primitives as Equinox modules (importing this registers them)."""

from ._base import Primitive as Primitive
from ._conv import Conv1d as Conv1d
from ._conv import Conv2d as Conv2d
from ._delay import Delay as Delay
from ._flatten import Flatten as Flatten
from ._io import Input as Input
from ._io import Output as Output
from ._linear import Affine as Affine
from ._linear import Linear as Linear
from ._linear import Scale as Scale
from ._neuron import IF as IF
from ._neuron import LI as LI
from ._neuron import LIF as LIF
from ._neuron import CubaLI as CubaLI
from ._neuron import CubaLIF as CubaLIF
from ._neuron import I as I
from ._pooling import AvgPool2d as AvgPool2d
from ._pooling import SumPool2d as SumPool2d
from ._threshold import Threshold as Threshold
