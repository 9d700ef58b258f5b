"""The built-in chip profiles. Every rule cites the toolchain file and line that states it
(the versions read are in each target's description; line numbers are of those versions)."""

from __future__ import annotations

import nir

from . import _rules as R
from ._target import NumberFormat, Target, register_target

_RP = "rockpool 3.1.0 rockpool/devices/xylo/syns61201/"
_RPT = "rockpool 3.1.0 rockpool/nn/modules/torch/lif_torch.py"
_SB = "sinabs 3.1.3 sinabs/backend/dynapcnn/"
_LAVA = "lava (github lava-nc/lava f2a3ba9) src/lava/proc/"
_PAPER = "NIR paper (github neuromorphs/NIR 2988704) paper/01_lif/_lava_nir.py"
_HX = "hxtorch (github electronicvisions/hxtorch) src/pyhxtorch/hxtorch/spiking/"
_S2 = "py-spinnaker2 (gitlab spinnaker2/py-spinnaker2) s2_nir.py"

XYLO = Target(
    name="xylo",
    description="SynSense Xylo Audio 2 (SYNS61201), rules from Rockpool 3.1.0's Xylo mapper",
    formats={
        "weight": NumberFormat(8, True, "reciprocal"),
        "v_threshold": NumberFormat(16, True, share=True),
    },
    neurons=("CubaLIF",),
    reset="subtract",
    decay="shift",
    bias=False,
    max_inputs=16,
    options={"input_mode": "impulse", "spikes_per_step": "multi",
             "threshold_comparison": "greater_equal"},
    rules=(
        R.node_types((nir.Input, nir.Output, nir.Linear, nir.Affine, nir.CubaLIF),
                     _RP + "xylo_graph_modules.py:25-72 (Xylo2Neurons: tau_mem, tau_syn, dt "
                     "-> dash); xylo_mapper.py:51-61 (LinearWeights)"),
        R.max_channels("input", 16, _RP + "xylo_mapper.py:74-81"),
        R.max_channels("output", 8, _RP + "xylo_mapper.py:84-91"),
        R.max_neurons(1000, _RP + "xylo_mapper.py:312,330 (max_hidden_neurons=1000)"),
        R.max_neurons(8, _RP + "xylo_mapper.py:313 (max_output_neurons=8)", which="output"),
        R.field_format("weight", _RP + "xylo_mapper.py:327; xylo_sim.py:196-198 (int8)"),
        R.field_format("v_threshold", _RP + "xylo_mapper.py:328 (int16 thresholds)"),
        R.no_bias(_RP + "xylo_mapper.py:182-191"),
        R.one_dt(_RP + "xylo_mapper.py:94-107"),
        R.outputs_from_neurons(_RP + "xylo_mapper.py:41-48"),
        R.neuron_inputs_are_weights(_RP + "xylo_mapper.py:51-61"),
        R.inputs_into_weights(_RP + "xylo_mapper.py:64-71"),
        R.no_consecutive_weights(_RP + "xylo_mapper.py:126-142"),
        R.outputs_not_recurrent(_RP + "xylo_mapper.py:110-123"),
        R.min_neuron_layers(2, _RP + "xylo_mapper.py:173-179"),
        R.decay_shift(_RP + "xylo_graph_modules.py:63-72 (dash = log2(tau / dt), tau > dt)"),
        R.unit_input_gain(_RPT + ":686-700 (isyn += x; v += isyn, unscaled)"),
        R.zero_leak(_RPT + ":696-700 (v decays to 0; a drive is the bias)"),
        R.reset(("subtract",), _RPT + ":708-709 (vmem - spikes * threshold)"),
    ),
)

SPECK = Target(
    name="speck",
    description="SynSense Speck / DYNAP-CNN, rules from Sinabs 3.1.3's DYNAP-CNN backend",
    formats={
        "weight": NumberFormat(8, True, "free"),
        "bias": NumberFormat(8, True, share=True),
        "v_threshold": NumberFormat(16, True, share=True),
    },
    neurons=("IF",),
    reset="subtract",
    bias=True,
    rules=(
        R.node_types((nir.Input, nir.Output, nir.Conv2d, nir.Linear, nir.Affine, nir.IF,
                      nir.SumPool2d, nir.AvgPool2d, nir.Flatten),
                     _SB + "nir_graph_extractor.py:380-425 (IAF only, no LIF; "
                     "SupportedNodeTypes); dynapcnn_layer.py:90-100"),
        R.field_format("weight", _SB + "discretize.py:10 (8-bit weights), 261-290"),
        R.field_format("bias", _SB + "discretize.py:266-268, 290 (biases at weight "
                                     "precision, weight scale)"),
        R.field_format("v_threshold", _SB + "discretize.py:11 (16-bit state), 270-271"),
        R.square_kernels(_SB + "chips/dynapcnn.py:119-120"),
        R.max_layers(9, _SB + "chips/dynapcnn.py:299-332 (9 cores)"),
        R.layers_fit_cores(
            [(16384, 65536, 1024), (16384, 65536, 1024), (16384, 65536, 1024),
             (32768, 32768, 1024), (32768, 32768, 1024), (65536, 16384, 1024),
             (65536, 16384, 1024), (16384, 16384, 1024), (16384, 16384, 1024)],
            _SB + "chips/dynapcnn.py:301-324; dynapcnn_layer.py:239-244; mapping.py:14-25"),
        R.reset(("zero", "subtract"), _SB + "chips/dynapcnn.py:146-155"),
        R.no_self_loops(_SB + "nir_graph_extractor.py:328-335"),
    ),
)

LOIHI2 = Target(
    name="loihi2",
    description="Intel Loihi 2 through Lava: Lava's bit-accurate LIF and Dense models and the "
                "NIR paper's Lava conversion",
    formats={
        # e >= 0: one weight step is at least one threshold-mantissa step, which Lava's Dense
        # realizes exactly (weights stored as 2q with weight_exp = e - 1; a finer step needs
        # weight_exp < -1, and Lava floors the shifted sum: nirjax/_fixed_loihi.py)
        "weight": NumberFormat(8, True, "power_of_two", unit=1 / 256, emin=0),
        "v_threshold": NumberFormat(17, False, "fixed", unit=1 / 256),
    },
    neurons=("LIF", "CubaLIF"),
    reset="value",
    decay="loihi12",
    bias=False,
    rules=(
        R.node_types((nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF),
                     _PAPER + ":36-83 (LIF + Dense, Affine); " + _LAVA
                     + "lif/process.py:60-62 (u, v)"),
        R.field_format("weight", _LAVA + "dense/models.py:68 (8-bit), 104-106 (weight_exp "
                                         "shift); " + _PAPER + ":55,73 (w * 256)"),
        R.field_format("v_threshold", _LAVA + "lif/models.py:257,262 (vth 17 bits); "
                       + _PAPER + ":54 (vth * 131071 >> 9 = vth * 256)"),
        R.no_bias(_PAPER + ":71"),
        R.decay_12bit(_LAVA + "lif/models.py:145-150,174-181,252-253 (12-bit du, dv); "
                      + _PAPER + ":52-53"),
        R.unit_input_gain(_LAVA + "lif/process.py:60-61; " + _PAPER + ":45-48 (gain folded "
                                                                      "into the weight)"),
        R.zero_leak(_LAVA + "lif/process.py:60-61 (v decays to 0)"),
        R.reset(("zero",), _LAVA + "lif/models.py:188-192 (v[spikes] = 0)"),
    ),
)

BRAINSCALES2 = Target(
    name="brainscales2",
    description="BrainScaleS-2 through hxtorch's NIR import (analog neurons, 6-bit + sign "
                "weights)",
    formats={"weight": NumberFormat(7, True, "free", lo=-63, hi=63)},
    neurons=("CubaLIF",),
    reset="value",
    decay="analog",
    bias=False,
    rules=(
        R.node_types((nir.Input, nir.Output, nir.Linear, nir.CubaLIF, nir.CubaLI),
                     _HX + "utils/from_nir.py:56-131 (Linear, CubaLI, CubaLIF, Input; else "
                     "NotImplementedError)"),
        R.field_format("weight", _HX + "transforms/weight_transforms.py:7-8 (-63..63); "
                                       "functional/linear.py:57"),
        R.homogeneous(("tau_mem", "tau_syn", "v_leak", "v_reset", "v_threshold", "r"),
                      _HX + "utils/from_nir.py:67-71, 90-95"),
    ),
)

SPINNAKER2 = Target(
    name="spinnaker2",
    description="SpiNNaker2 through py-spinnaker2's s2_nir (int8 weights scaled per layer)",
    formats={"weight": NumberFormat(8, True, "free", lo=-127, hi=127)},
    neurons=("LIF", "CubaLIF", "IF"),
    reset="subtract",
    bias=True,
    rules=(
        R.node_types((nir.Input, nir.Output, nir.LIF, nir.IF, nir.CubaLIF, nir.Affine,
                      nir.Linear, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten),
                     _S2 + ":24-26 (NEURON_NODES, WEIGHT_NODES), 101-160 (pooling)"),
        R.field_format("weight", _S2 + ":58 (weights scaled to [-127, 127])"),
        R.reset(("zero", "subtract"), _S2 + ":34-46 (ResetMethod SUBTRACT, ZERO)"),
        R.not_after(nir.CubaLIF, nir.Conv2d, _S2 + " create_populations (assert: Conv2d "
                                                    "with CubaLIF is not supported)"),
        R.one_dt(_S2 + ":54 (ConversionConfig.dt)"),
    ),
)

for _t in (XYLO, SPECK, LOIHI2, BRAINSCALES2, SPINNAKER2):
    register_target(_t)
