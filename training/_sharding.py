"""Data-parallel training across devices: the batch is split along its sample axis over a
one-axis `jax.sharding.Mesh`, parameters and optimizer state are replicated, and XLA inserts
the gradient all-reduce (the mean over the batch is a mean over all devices' samples, so the
step is the one-device step up to the order of float additions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["Placement", "placement"]


class Placement:
    """Where a run's arrays live: `put_batch` splits a batch over `devices`, `put_replicated`
    copies parameters and state to every one."""

    def __init__(self, devices: Sequence[jax.Device]):
        self.devices = list(devices)
        mesh = Mesh(np.array(self.devices), ("batch",))
        self.batch = NamedSharding(mesh, PartitionSpec("batch"))
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self._gather = jax.jit(lambda t: t, out_shardings=self.replicated)

    @property
    def n(self) -> int:
        return len(self.devices)

    def _put(self, a: Any, sharding: NamedSharding) -> Any:
        if not isinstance(a, (jax.Array, np.ndarray)):
            return a
        host = np.asarray(a)
        # each process builds only the shards of its own devices from the (same) host value,
        # which is what several hosts (jax.distributed) need; on one host it is a device_put
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def put_batch(self, tree: Any) -> Any:
        return jax.tree.map(lambda a: self._put(a, self.batch), tree)

    def put_replicated(self, tree: Any) -> Any:
        return jax.tree.map(lambda a: self._put(a, self.replicated), tree)

    def gather(self, tree: Any) -> Any:
        """Replicate batch-sharded results on every device, so every process can read them."""
        return self._gather(tree)


def placement(devices: int | Sequence[jax.Device] | None, batch_size: int) -> Placement | None:
    """`None` (the default device, as a plain run), the first `devices` of `jax.devices()`, or
    the given devices; the batch size must split evenly over them."""
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"fit: devices={devices}, but {len(available)} device(s) are visible "
                f"({available[0].platform}); pass at most {len(available)}, or start more (on "
                "CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX starts)"
            )
        chosen = available[: int(devices)]
    else:
        chosen = list(devices)
        if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
            raise TypeError(
                f"fit: devices must be None, a count, or a list of jax.Device, received {devices!r}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"fit: devices lists a device twice ({chosen}); name each once")
    if batch_size % len(chosen):
        raise ValueError(
            f"fit: batch_size {batch_size} does not split over {len(chosen)} devices; use a "
            f"multiple of {len(chosen)}"
        )
    return Placement(chosen)
