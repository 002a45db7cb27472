"""Data-parallel sharding over every visible device (``jax.sharding``).

The training step is one jit-compiled program for any number of devices: parameters and optimiser state are
replicated, the batch (sampled inside the step) is constrained to be split along its first axis over a 1-D
mesh ``("data",)``, and :func:`data_parallel_value_and_grad` computes each device's loss and gradient on its
part of the batch (``shard_map``) and averages them with **one** all-reduce of a single flat vector. (Left to
itself, XLA's SPMD partitioner all-reduces every gradient block separately; on a CPU each of those is a
rendezvous of the device threads, ≈ 0.1 ms apiece.) With one device every constraint is trivial, so the same
code path runs everywhere. Because JAX's threefry generator is partitionable, the sharded sampler draws exactly
the sequences an unsharded one would.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._validate import check_callable, check_int

__all__ = [
    "data_mesh",
    "replicated",
    "batch_sharding",
    "shard_batch",
    "check_batch_divisible",
    "data_parallel_value_and_grad",
]

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
    batch = check_int("batch", batch, minimum=1)
    _check_mesh(mesh)
    n = mesh.devices.size
    if batch % n:
        raise ValueError(f"batch must be divisible by the number of devices ({n}) for data parallelism, got {batch}")


def _shard_map(f, mesh, in_specs, out_specs):
    """``shard_map`` without replication checks (``jax.shard_map`` in recent JAX, the experimental one before)."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # compat: JAX without jax.shard_map

    return shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def data_parallel_value_and_grad(loss_fn: Callable, mesh: Mesh) -> Callable:
    """``vg(train, frozen, tokens, targets) -> (loss, grads)`` of ``loss_fn(train, frozen, tokens, targets)`` with
    respect to ``train``, data-parallel over ``mesh``.

    ``loss_fn`` must be a mean over the batch (the first axis of ``tokens`` and ``targets``, split evenly over
    the devices, see :func:`check_batch_divisible`); then the batch mean is the mean of the ``n`` per-device
    means, and so is its gradient: each device computes ``(∇L_d, L_d)`` on its ``B/n`` sequences, the flat
    vector ``[∇L_d; L_d]`` is summed over devices by one ``psum`` and divided by ``n``. ``train`` and ``frozen``
    are replicated pytrees. Call it inside ``jit``.
    """
    check_callable("loss_fn", loss_fn)
    _check_mesh(mesh)
    n = mesh.devices.size

    def vg(train, frozen, tokens, targets):
        flat, unravel = ravel_pytree(train)

        def local(flat, frozen, tokens, targets):
            loss, g = jax.value_and_grad(lambda v: loss_fn(unravel(v), frozen, tokens, targets))(flat)
            return jax.lax.psum(jnp.concatenate([g, jnp.reshape(loss, (1,)).astype(g.dtype)]), AXIS) / n

        out = _shard_map(local, mesh, (P(), P(), P(AXIS), P(AXIS)), P())(flat, frozen, tokens, targets)
        return out[-1], unravel(out[:-1])

    return vg
