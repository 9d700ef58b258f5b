"""Build NIR graphs from layers, with shape inference (`nirjax.nn`).

    from nirjax import nn

    net = nn.Sequential(nn.Conv2d(16, 5, stride=2, padding=1), nn.IF(), nn.SumPool2d(2),
                        nn.Flatten(), nn.Affine(10), nn.IF())
    graph = net.build((2, 34, 34), dt=1e-4, input_mode="impulse")   # a nirjax.Graph
    nir_graph = net.to_nir((2, 34, 34), dt=1e-4)                     # the nir.NIRGraph

Every layer makes the NIR primitive of the same name; the sizes that follow from the input
(input features and channels, NIR's `input_shape` / `input_type`, a neuron's size) are
inferred. `Recurrent` adds a neuron's recurrent weight, `Network` wires skip connections and
fan-in (`layer(a + b)`). See docs/nn.md.
"""

from ._layers import (
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
    Layer as Layer,
    Linear as Linear,
    Neuron as Neuron,
    Node as Node,
    Scale as Scale,
    SumPool2d as SumPool2d,
    Threshold as Threshold,
)
from ._network import (
    Input as Input,
    Network as Network,
    Recurrent as Recurrent,
    Sequential as Sequential,
    Signal as Signal,
)
