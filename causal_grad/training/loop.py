"""The compiled training loop: sampling on device inside the step, many steps per compiled call.

One call of a :class:`ChunkRunner` runs ``n`` steps (``n`` is a run-time argument, so one compilation serves
every chunk length up to ``max_chunk``) of: draw a fresh batch from the task with the key
``fold_in(fold_in(key(seed), 0), step)``, compute the loss and its gradient with respect to the trainable
parameter groups only (frozen groups get no backward pass), apply the optax update. The per-step key is a
function of ``(seed, step)`` alone, so a run resumed from a checkpoint at step ``k`` continues with exactly
the batches of an uninterrupted run.

The optimiser may be given as a function ``length -> optax transformation``
(:func:`causal_grad.training.schedules.make_optimizer_fn`); the schedule's length is then a run-time argument of
the compiled chunk too, so one compilation serves runs of every ``steps`` (see :mod:`.schedules`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._validate import check_array, check_callable, check_int, check_key
from ..kernels import FAST_CPU_OPTIONS, accepted_options, fast_cpu_jit  # noqa: F401 (fast_cpu_jit re-exported)
from ..ngram import NGramTask
from ..task import InContextTask, MultiParentTask, check_dtype
from .schedules import schedule_length
from .sharding import check_batch_divisible, data_mesh, data_parallel_value_and_grad, replicated, shard_batch

__all__ = [
    "TrainState",
    "ChunkRunner",
    "make_train_step",
    "task_sampler",
    "next_token_sampler",
    "step_key",
    "partition",
    "FAST_CPU_OPTIONS",
    "fast_cpu_jit",
    "default_options",
]


def default_options(mesh=None) -> dict:
    """The XLA options of the compiled training programs: :data:`FAST_CPU_OPTIONS` when the ``mesh``'s devices
    (default: JAX's default backend) are CPUs, none elsewhere (GPU and TPU compile with XLA's own defaults)."""
    platform = jax.default_backend() if mesh is None else next(iter(mesh.devices.flat)).platform
    return dict(FAST_CPU_OPTIONS) if platform == "cpu" else {}


class TrainState(NamedTuple):
    """Parameters, the optimiser state of the current stage (over the trainable leaves), the step count."""

    params: Any
    opt_state: Any
    step: jax.Array


def step_key(seed_key, step):
    """The key of training step ``step``: a function of the seed and the step only."""
    check_key("seed_key", seed_key)
    check_array("step", step, kind="int", ndim=0)
    return jax.random.fold_in(jax.random.fold_in(seed_key, 0), step)


def task_sampler(task, dtype=jnp.float32) -> Callable:
    """``sample(key, batch) -> (tokens, targets)`` for an in-context or multi-parent task (jit-friendly)."""

    if not isinstance(task, (InContextTask, MultiParentTask)):
        raise TypeError(f"task must be an InContextTask or MultiParentTask, got {type(task).__name__}")
    dt = check_dtype(dtype)
    s = task.sampler

    def sample(key, batch):
        out = s(key, batch, dt)
        return out[0], out[1]

    return sample


def next_token_sampler(task, dtype=jnp.float32) -> Callable:
    """``sample(key, batch) -> (tokens (B, T), targets (B, T, S))`` of an n-gram task's next-token form
    (:meth:`causal_grad.ngram.NGramTask.sample_next_token`; jit-friendly)."""
    if not isinstance(task, NGramTask):
        raise TypeError(f"task must be a causal_grad.ngram.NGramTask, got {type(task).__name__}")
    dt = check_dtype(dtype)

    def sample(key, batch):
        return task.sample_next_token(key, batch, dt)

    return sample


def partition(params, labels, trainable) -> tuple[list, list[bool], Any]:
    """Flatten ``params``; ``mask[k]`` says whether leaf ``k``'s group label is in ``trainable``."""
    leaves, treedef = jax.tree.flatten(params)
    labs = jax.tree.leaves(labels)
    if len(labs) != len(leaves):
        raise ValueError("labels must have one group name per parameter leaf")
    unknown = set(trainable) - set(labs)
    if unknown:
        raise ValueError(f"trainable names groups the model does not have: {sorted(unknown)} (has {sorted(set(labs))})")
    return leaves, [lab in trainable for lab in labs], treedef


def _merge(leaves, mask, train):
    it = iter(train)
    return [next(it) if m else leaf for leaf, m in zip(leaves, mask)]


def make_train_step(loss_fn, optimizer, mask, treedef, mesh=None):
    """``step(leaves, opt_state, tokens, targets) -> (leaves, opt_state, loss)``: one optax update of the
    trainable leaves. With a ``mesh`` of several devices, the loss (which must be a batch mean) and its gradient
    are computed data-parallel over it by
    :func:`~causal_grad.training.sharding.data_parallel_value_and_grad` (the batch split over the mesh's
    ``"data"`` axis); otherwise by ``jax.value_and_grad`` (the SPMD partitioner shards whatever the inputs'
    shardings say)."""
    check_callable("loss_fn", loss_fn)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (see data_mesh) or None, got {type(mesh).__name__}")

    def f(tr, leaves, tokens, targets):
        return loss_fn(jax.tree.unflatten(treedef, _merge(leaves, mask, tr)), tokens, targets)

    if mesh is not None and mesh.devices.size > 1:
        value_and_grad = data_parallel_value_and_grad(f, mesh)
    else:
        value_and_grad = jax.value_and_grad(f)

    def step(leaves, opt_state, tokens, targets):
        train = [leaf for leaf, m in zip(leaves, mask) if m]
        loss, grads = value_and_grad(train, leaves, tokens, targets)
        updates, opt_state = optimizer.update(grads, opt_state, train)
        train = optax.apply_updates(train, updates)
        return _merge(leaves, mask, train), opt_state, loss

    return step


class ChunkRunner:
    """Runs up to ``max_chunk`` training steps per compiled call.

    Args:
        loss_fn: ``loss(params, tokens, targets)``, a mean over the batch (on several devices, the mean of the
            per-device means).
        sample: ``sample(key, batch) -> (tokens, targets)`` (traced inside the step).
        optimizer: the stage's optax transformation, or a function ``length -> transformation``
            (:func:`~causal_grad.training.schedules.make_optimizer_fn`) whose schedule length is then passed to
            every call (``length=``), so that one compiled program serves every schedule length.
        params_example: parameters with the right structure (for the partition).
        labels: group name of every leaf; ``trainable``: the groups this stage trains.
        batch: sequences per step; ``mesh``: data-parallel mesh (default: every device).
    """

    def __init__(
        self,
        loss_fn: Callable,
        sample: Callable,
        optimizer: Any,
        params_example: Any,
        labels: Any,
        trainable: Any,
        batch: int,
        *,
        mesh: Any = None,
        max_chunk: int = 100,
        compiler_options: dict | None = None,
    ):
        check_callable("loss_fn", loss_fn)
        check_callable("sample", sample)
        batch = check_int("batch", batch, minimum=1)
        max_chunk = check_int("max_chunk", max_chunk, minimum=1)
        self.mesh = mesh if mesh is not None else data_mesh()
        check_batch_divisible(batch, self.mesh)
        _, self.mask, self.treedef = partition(params_example, labels, trainable)
        if isinstance(optimizer, optax.GradientTransformation):
            self.optimizer_fn = None
            self.optimizer = optimizer
        elif callable(optimizer):
            self.optimizer_fn = optimizer
            # its init (the state's structure) ignores the length
            self.optimizer = cast(optax.GradientTransformation, optimizer(schedule_length(1)))
        else:
            raise TypeError(
                f"optimizer must be an optax GradientTransformation or a function length -> "
                f"transformation (make_optimizer_fn), got {type(optimizer).__name__}"
            )
        self.batch = batch
        self.max_chunk = int(max_chunk)
        self.compiler_options = default_options(self.mesh) if compiler_options is None else compiler_options
        mesh, treedef, mask = self.mesh, self.treedef, self.mask
        opt_fn, fixed = self.optimizer_fn, self.optimizer

        def chunk(state: TrainState, seed_key, n, length):
            opt = fixed if opt_fn is None else opt_fn(length)
            step = make_train_step(loss_fn, opt, mask, treedef, mesh=mesh)
            leaves = jax.tree.leaves(state.params)

            def body(i, carry):
                leaves, opt_state, t, losses = carry
                tokens, targets = sample(step_key(seed_key, t), batch)
                tokens, targets = shard_batch(tokens, mesh), shard_batch(targets, mesh)
                leaves, opt_state, loss = step(leaves, opt_state, tokens, targets)
                return leaves, opt_state, t + 1, losses.at[i].set(loss)

            losses = jnp.zeros((self.max_chunk,), jnp.float32)  # only the first n are returned (no NaN padding,
            # so that causal_grad.debug.guard() sees a NaN only where training produced one)
            leaves, opt_state, t, losses = lax.fori_loop(0, n, body, (leaves, state.opt_state, state.step, losses))
            return TrainState(jax.tree.unflatten(treedef, leaves), opt_state, t), losses

        rep = replicated(self.mesh)
        self._jit = jax.jit(chunk, out_shardings=(rep, rep), donate_argnums=(0,))
        self._compiled = None

    def init_state(self, params, step: int = 0) -> TrainState:
        train = [leaf for leaf, m in zip(jax.tree.leaves(params), self.mask) if m]
        state = TrainState(params, self.optimizer.init(train), jnp.asarray(step, jnp.int32))
        return self.place(state)

    def place(self, state: TrainState) -> TrainState:
        """Put ``state`` on the mesh, replicated (copies, so the caller's arrays survive donation)."""
        return jax.device_put(jax.tree.map(jnp.array, state), replicated(self.mesh))

    def compile(self, state: TrainState, seed_key):
        if self._compiled is None:
            lowered = self._jit.lower(state, seed_key, jnp.int32(1), _UNUSED_LENGTH)
            # options this JAX/XLA does not take are dropped (probed once per set)
            self._compiled = lowered.compile(compiler_options=accepted_options(self.compiler_options) or None)
        return self._compiled

    def __call__(self, state: TrainState, seed_key, n: int, length=None):
        """Run ``n ≤ max_chunk`` steps; returns the new state and the ``n`` per-step training losses. ``length``:
        the schedule length (:func:`~causal_grad.training.schedules.schedule_length`), required when the
        optimiser was given as a function of it, ignored otherwise."""
        if not 1 <= n <= self.max_chunk:
            raise ValueError(f"n must lie in 1..{self.max_chunk}, got {n}")
        if self.optimizer_fn is None:
            length = _UNUSED_LENGTH
        elif length is None:
            raise ValueError(
                "length is required: this runner's optimizer takes the schedule length (schedule_length(steps, warmup))"
            )
        else:
            length = np.asarray(length, np.float32)
            if length.shape != (2,):
                raise ValueError(
                    f"length must be schedule_length(steps, warmup), a float32 pair, got shape {length.shape}"
                )
        new, losses = self.compile(state, seed_key)(state, seed_key, jnp.int32(n), length)
        return new, losses[:n]


_UNUSED_LENGTH = np.ones((2,), np.float32)  # the length argument of a runner whose optimiser has a fixed schedule
