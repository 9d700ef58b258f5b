"""Training package for nirjax: losses, encoders, datasets, what trains, a training loop and
the `nirjax train` job.

Depends on nirjax; nirjax never imports it.
"""

from ._arch import arch_snn as arch_snn, parse_arch as parse_arch
from ._batches import batches as batches
from ._callbacks import StopWhen as StopWhen, TensorBoard as TensorBoard
from ._characterize import Characterization as Characterization, characterize as characterize
from ._characterize_fixed import (
    FixedCharacterization as FixedCharacterization,
    characterize_fixed as characterize_fixed,
)
from ._characterize_structure import Structure as Structure, structured_graph as structured_graph
from ._datasets import (
    SpikeDataset as SpikeDataset,
    as_dataset as as_dataset,
    digits as digits,
    encode as encode,
    random_manifolds as random_manifolds,
    read_nir_data as read_nir_data,
    read_shd as read_shd,
    read_spiking_hdf5 as read_spiking_hdf5,
    read_ssc as read_ssc,
)
from ._encoders import (
    direct_current as direct_current,
    latency as latency,
    rate_bernoulli as rate_bernoulli,
    rate_poisson as rate_poisson,
)
from ._events import (
    BINNINGS as BINNINGS,
    EVENT_DATASETS as EVENT_DATASETS,
    EventFrames as EventFrames,
    bin_events as bin_events,
    load_events as load_events,
    read_dvs_gesture as read_dvs_gesture,
    read_nmnist as read_nmnist,
    read_shd_events as read_shd_events,
    read_ssc_events as read_ssc_events,
)
from ._job import JobSpec as JobSpec, load_dataset as load_dataset, train_job as train_job
from ._loop import (
    LOSSES as LOSSES,
    FitResult as FitResult,
    TrainConfig as TrainConfig,
    default_loss as default_loss,
    evaluate as evaluate,
    fit as fit,
    predict as predict,
)
from ._losses import (
    accuracy_counts as accuracy_counts,
    accuracy_membrane as accuracy_membrane,
    cross_entropy_counts as cross_entropy_counts,
    cross_entropy_membrane as cross_entropy_membrane,
    exponential_filter as exponential_filter,
    firing_rate_regularizer as firing_rate_regularizer,
    mse as mse,
    spike_count_error as spike_count_error,
    van_rossum_distance as van_rossum_distance,
)
from ._mismatch import FitReport as FitReport, ParamFit as ParamFit, fit_mismatch as fit_mismatch
from ._mismatch_chip import (
    SimulatedChip as SimulatedChip,
    perturb as perturb,
    relative_errors as relative_errors,
    simulate as simulate,
    simulate_chip as simulate_chip,
)
from ._mismatch_data import (
    Recording as Recording,
    read_recording as read_recording,
    write_recording as write_recording,
)
from ._mismatch_plot import plot_fit as plot_fit
from ._models import feedforward_snn as feedforward_snn
from ._params import (
    DEFAULT_TRAINABLE as DEFAULT_TRAINABLE,
    apply_params as apply_params,
    filter_spec as filter_spec,
    init_params as init_params,
    select_trainable as select_trainable,
)
from ._plot import plot_training as plot_training
from ._quant import (
    fake_quantize as fake_quantize,
    target_network as target_network,
    target_options as target_options,
    target_trainable as target_trainable,
)
