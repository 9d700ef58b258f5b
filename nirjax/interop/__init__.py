"""Explicit corrections for the NIR converters of other simulators (snnTorch, Norse, Sinabs,
Rockpool, Spyx), and `to_nengo`, which runs a graph in Nengo's simulator.

Each peer's exporter writes NIR that does not say everything its own simulator does (a
hard-coded dt, a time constant off by a factor, a missing input weight, a batch dimension in the
Input's shape), and each importer accepts only part of NIR. nirjax never guesses: `from_nir`
reads a graph literally. The functions here state each known defect and correct it when you
call them; see `docs/interop.md` for the measured agreement. None of them needs the peer
installed (except `fix_sinabs_import` and `to_nengo`, which build the peer's objects): they work
on `nir.NIRGraph`s and nirjax `Graph`s alike.

snnTorch (measured with snnTorch 1.0.0):

    g = snntorch.export_nir.export_to_nir(net, sample, ignore_dims=[0])
    model = nirjax.interop.from_snntorch(g)       # dt = 1e-4, as snnTorch wrote it
    nir_graph = nirjax.interop.to_snntorch(model) # for snntorch.import_nir.import_from_nir

Norse (measured with Norse 1.1.0):

    g = norse.torch.to_nir(net, sample, dt=1e-3)
    model = nirjax.interop.from_norse(g, dt=1e-3)           # tau, w_in and shapes corrected
    nir_graph = nirjax.interop.to_norse(model)              # for norse.torch.from_nir(..., dt=)
    nir_graph = nirjax.interop.to_norse(nirjax.interop.fold_r(model))  # Norse ignores r

Sinabs (3.1.3), Rockpool (3.1.0), Spyx (1.0.0), Nengo (4.1):

    model = nirjax.interop.from_sinabs(sinabs.nir.to_nir(net, sample), norm_input=None)
    net = sinabs.nir.from_nir(nirjax.interop.to_sinabs(model), batch_size=B)
    nirjax.interop.fix_sinabs_import(net, model)            # min_v_mem clip, spike function
    model = nirjax.interop.from_rockpool(rockpool_to_nir(net), bias={...}, w_rec={...})
    net = rockpool_from_nir(nirjax.interop.to_rockpool(model))
    model = nirjax.interop.from_spyx(spyx.nir.to_nir(net, ins, outs, dt=dt), dt)
    _, ys = spyx.nir.from_nir(nirjax.interop.to_spyx(model), xs, dt=dt)
    net = nirjax.interop.to_nengo(model, xs)                # nengo.Simulator(net, dt=dt)

A network with NIR's semantics (`nirjax train`'s) becomes one Sinabs, Rockpool or Spyx runs
exactly with `for_peer(model, "sinabs")` (an explicit change of the neuron model; train that).
"""

from ._common import fold_r as fold_r, rescale_time as rescale_time
from ._nengo import nengo_lif as nengo_lif, to_nengo as to_nengo
from ._norse import (
    fix_norse_export as fix_norse_export,
    from_norse as from_norse,
    norse_options as norse_options,
    to_norse as to_norse,
)
from ._peer import for_peer as for_peer
from ._rockpool import (
    RockpoolOrder as RockpoolOrder,
    fix_rockpool_export as fix_rockpool_export,
    from_rockpool as from_rockpool,
    rockpool_decay as rockpool_decay,
    rockpool_dt as rockpool_dt,
    rockpool_options as rockpool_options,
    to_rockpool as to_rockpool,
)
from ._sinabs import (
    fix_sinabs_export as fix_sinabs_export,
    fix_sinabs_import as fix_sinabs_import,
    from_sinabs as from_sinabs,
    sinabs_options as sinabs_options,
    to_sinabs as to_sinabs,
)
from ._snntorch import (
    SNNTORCH_DT as SNNTORCH_DT,
    from_snntorch as from_snntorch,
    snntorch_initial_state as snntorch_initial_state,
    snntorch_options as snntorch_options,
    to_snntorch as to_snntorch,
)
from ._spyx import (
    fix_spyx_export as fix_spyx_export,
    from_spyx as from_spyx,
    spyx_options as spyx_options,
    to_spyx as to_spyx,
)
from ._xylo import to_xylo as to_xylo, xylo_mapper_module as xylo_mapper_module
