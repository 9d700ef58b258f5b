"""Training package for nirjax: losses, encoders, datasets, a training loop and `nirjax train`.

Depends on nirjax; nirjax never imports it.
"""

from ._losses import (
    accuracy_counts as accuracy_counts,
)
from ._losses import (
    accuracy_membrane as accuracy_membrane,
)
from ._losses import (
    cross_entropy_counts as cross_entropy_counts,
)
from ._losses import (
    cross_entropy_membrane as cross_entropy_membrane,
)
from ._losses import (
    exponential_filter as exponential_filter,
)
from ._losses import (
    firing_rate_regularizer as firing_rate_regularizer,
)
from ._losses import (
    mse as mse,
)
from ._losses import (
    spike_count_error as spike_count_error,
)
from ._losses import (
    van_rossum_distance as van_rossum_distance,
)
