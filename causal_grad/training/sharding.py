"""Data-parallel sharding over every visible device (``jax.sharding``).

The training step is one jit-compiled program for any number of devices: parameters and optimiser state are
replicated, the batch (sampled inside the step) is constrained to be split along its first axis over a 1-D
mesh ``("data",)``, and XLA's SPMD partitioner inserts the gradient all-reduce. With one device every
constraint is trivial, so the same code path runs everywhere. Because JAX's threefry generator is
partitionable, the sharded sampler draws exactly the sequences an unsharded one would.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

__all__ = ["data_mesh", "replicated", "batch_sharding", "shard_batch", "check_batch_divisible"]

AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh ``("data",)`` over ``devices`` (default: every visible device)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must hold at least one device")
    return Mesh(np.array(devices), (AXIS,))


def _check_mesh(mesh):
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (see data_mesh), got {type(mesh).__name__}")
    return mesh


def replicated(mesh: Mesh) -> NamedSharding:
    _check_mesh(mesh)
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    _check_mesh(mesh)
    return NamedSharding(mesh, P(AXIS))


def shard_batch(x, mesh: Mesh):
    """Inside jit: constrain ``x`` to be split along its first (batch) axis."""
    _check_mesh(mesh)
    return jax.lax.with_sharding_constraint(x, batch_sharding(mesh))


def check_batch_divisible(batch: int, mesh: Mesh) -> None:
    from .._validate import check_int

    batch = check_int("batch", batch, minimum=1)
    _check_mesh(mesh)
    n = mesh.devices.size
    if batch % n:
        raise ValueError(f"batch must be divisible by the number of devices ({n}) for data parallelism, got {batch}")
