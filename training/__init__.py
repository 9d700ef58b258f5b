"""Training package for nirjax: losses, encoders, datasets, what trains, a training loop and
the `nirjax train` job.

Depends on nirjax; nirjax never imports it.
"""

from ._datasets import SpikeDataset as SpikeDataset
from ._datasets import digits as digits
from ._datasets import encode as encode
from ._datasets import random_manifolds as random_manifolds
from ._datasets import read_nir_data as read_nir_data
from ._datasets import read_shd as read_shd
from ._datasets import read_spiking_hdf5 as read_spiking_hdf5
from ._datasets import read_ssc as read_ssc
from ._encoders import direct_current as direct_current
from ._encoders import latency as latency
from ._encoders import rate_bernoulli as rate_bernoulli
from ._encoders import rate_poisson as rate_poisson
from ._job import JobSpec as JobSpec
from ._job import load_dataset as load_dataset
from ._job import train_job as train_job
from ._loop import LOSSES as LOSSES
from ._loop import FitResult as FitResult
from ._loop import TrainConfig as TrainConfig
from ._loop import default_loss as default_loss
from ._loop import evaluate as evaluate
from ._loop import fit as fit
from ._loop import predict as predict
from ._losses import accuracy_counts as accuracy_counts
from ._losses import accuracy_membrane as accuracy_membrane
from ._losses import cross_entropy_counts as cross_entropy_counts
from ._losses import cross_entropy_membrane as cross_entropy_membrane
from ._losses import exponential_filter as exponential_filter
from ._losses import firing_rate_regularizer as firing_rate_regularizer
from ._losses import mse as mse
from ._losses import spike_count_error as spike_count_error
from ._losses import van_rossum_distance as van_rossum_distance
from ._mismatch import FitReport as FitReport
from ._mismatch import ParamFit as ParamFit
from ._mismatch import Recording as Recording
from ._mismatch import SimulatedChip as SimulatedChip
from ._mismatch import fit_mismatch as fit_mismatch
from ._mismatch import perturb as perturb
from ._mismatch import read_recording as read_recording
from ._mismatch import relative_errors as relative_errors
from ._mismatch import simulate_chip as simulate_chip
from ._mismatch import write_recording as write_recording
from ._models import feedforward_snn as feedforward_snn
from ._params import DEFAULT_TRAINABLE as DEFAULT_TRAINABLE
from ._params import apply_params as apply_params
from ._params import filter_spec as filter_spec
from ._params import init_params as init_params
from ._params import select_trainable as select_trainable
from ._plot import plot_training as plot_training
