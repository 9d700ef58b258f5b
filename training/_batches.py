"""A streaming, prefetching batch iterator: batches are gathered on the host (from numpy
arrays or lazily binned `EventFrames`) by a background thread and put on the device(s) a few
steps ahead of the training step, so a split is never held whole on a device."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["batches"]

_DONE = object()


def batches(
    arrays: Sequence[Any],
    order: np.ndarray,
    batch_size: int,
    *,
    put: Callable[[Any], Any] | None = None,
    prefetch: int = 2,
) -> Iterator[tuple]:
    """Yield `tuple(a[order[k*B:(k+1)*B]] for a in arrays)` for every full batch, after
    `put` (default `jax.device_put`; e.g. a sharded put for several devices).

    **Arguments:**

    - `arrays`: arrays sharing their leading sample axis (numpy arrays, `EventFrames`, or
      anything indexed by an int array).
    - `order`: the sample order (e.g. a seeded permutation); a last partial batch is dropped.
    - `batch_size`: samples per batch.
    - `put`: moves one host batch (a tuple of numpy arrays) to the device(s).
    - `prefetch`: how many batches a background thread prepares ahead (0: none, in-line).

    An error in the thread is raised here, at the batch it happened in.
    """
    put = put or jax.device_put
    n = len(order) // batch_size

    def gather(k):
        idx = np.asarray(order[k * batch_size : (k + 1) * batch_size])
        return put(tuple(np.asarray(a[idx]) for a in arrays))

    if prefetch <= 0:
        for k in range(n):
            yield gather(k)
        return
    q: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def work():
        try:
            for k in range(n):
                if stop.is_set():
                    return
                q.put(gather(k))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)
            return
        q.put(_DONE)

    thread = threading.Thread(target=work, daemon=True, name="nirjax-batches")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)
