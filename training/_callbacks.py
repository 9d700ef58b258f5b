"""Per-epoch callbacks of `training.fit`: a callback is any callable `cb(record) -> bool | None`
called after every epoch with that epoch's `history` entry (`epoch`, `train_loss`,
`train_accuracy`, `val_*`, `test_*`, `seconds`); returning True stops training after the
epoch (`FitResult.stopped_early`). Two are provided: `TensorBoard` (event files for
TensorBoard) and `StopWhen` (custom early stopping from a predicate)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

__all__ = ["TensorBoard", "StopWhen"]


class TensorBoard:
    """Write every number of each epoch's record as a TensorBoard scalar (tag = the key, step =
    the epoch) into `log_dir`, through tensorboardX (`pip install tensorboardX`; TensorFlow is
    not needed). View with `tensorboard --logdir LOG_DIR`.

    **Arguments:** `log_dir`, the folder for the event files; `prefix`, prepended to each tag.
    """

    def __init__(self, log_dir: str | os.PathLike, *, prefix: str = ""):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(
                "TensorBoard logging needs tensorboardX (it writes the event files without "
                "TensorFlow): pip install tensorboardX, or pip install 'nirjax[tensorboard]'"
            ) from None
        self.log_dir = os.fspath(log_dir)
        self.prefix = prefix
        self._writer = SummaryWriter(self.log_dir)

    def __call__(self, record: Mapping) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(self.prefix + key, float(value), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class StopWhen:
    """Stop when `predicate(history)` is true, `history` being the records so far (oldest
    first), e.g. `StopWhen(lambda h: h[-1]["train_accuracy"] > 0.99)`."""

    def __init__(self, predicate: Callable[[list], bool]):
        self.predicate = predicate
        self.history: list = []

    def __call__(self, record: Mapping) -> bool:
        self.history.append(dict(record))
        return bool(self.predicate(self.history))
