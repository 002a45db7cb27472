"""Many training runs in one compiled program: ``jax.vmap`` over runs of the training step (docs/theory.md §5).

Figure 9 trains one small model per random forest, and a study repeats a run over seeds; each such run is far too
small to keep a CPU (or an accelerator) busy, and run one after another each pays its own compilation. A
:class:`BatchedRunner` stacks ``R`` runs along a leading axis and advances all of them by ``n`` steps in one
compiled call: at step ``t`` run ``r`` draws its batch with its own sampler and key,

    (tokens_r, targets_r) = sample_r(step_key(seed_r, t), batch),

exactly as :class:`causal_grad.training.loop.ChunkRunner` does for one run, and the update is
:func:`causal_grad.training.loop.make_train_step`'s step mapped over the run axis (``jax.vmap``). Runs share the
loss, the optimiser and the parameter structure (one model configuration and ``S``, ``T``); they may differ in
seed, initial parameters and task (e.g. one forest each). Each run's parameters, optimiser state and losses are
its own slice of the stacked arrays, and equal the run done alone up to float32 rounding (a batched matrix
product may sum in another order). Samplers that are one function (seeds of one task) are mapped with
``jax.vmap``; distinct samplers (several forests, whose graphs are static) are traced one after another inside the
same program.

On one device the whole stack runs there; with ``mesh`` (a 1-D device mesh, e.g.
:func:`causal_grad.training.sharding.data_mesh`) and ``R`` divisible by its size, the run axis is split over the
devices (each device trains ``R / n_devices`` whole runs: no communication between them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from ._validate import check_callable, check_int
from .kernels import accepted_options
from .training.loop import (
    TrainState,
    default_options,
    make_train_step,
    partition,
    step_key,
)

__all__ = ["BatchedRunner", "stack_runs", "unstack_runs"]


def stack_runs(trees: Sequence[Any]) -> Any:
    """Stack ``R`` pytrees of one structure along a new leading axis."""
    if isinstance(trees, (str, bytes)) or not isinstance(trees, Sequence) or len(trees) == 0:
        raise TypeError("trees must be a non-empty sequence of pytrees of one structure")
    structs = {jax.tree.structure(t) for t in trees}
    if len(structs) != 1:
        raise ValueError("trees must all have the same pytree structure")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_runs(tree: Any) -> list[Any]:
    """The ``R`` runs of a stacked pytree (inverse of :func:`stack_runs`)."""
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves or any(getattr(x, "ndim", 0) < 1 for x in leaves):
        raise ValueError("tree must be a stacked pytree (every leaf with a leading run axis)")
    R = leaves[0].shape[0]
    if any(x.shape[0] != R for x in leaves):
        raise ValueError("tree's leaves must share the leading run axis")
    return [jax.tree.unflatten(treedef, [x[r] for x in leaves]) for r in range(R)]


class BatchedRunner:
    """Advance ``R`` training runs by up to ``max_chunk`` steps per compiled call.

    Args:
        loss_fn: ``loss(params, tokens, targets)``, a batch mean (one run's parameters and batch).
        samplers: one ``sample(key, batch) -> (tokens, targets)`` per run (the same function for every run when
            the runs differ only in seed; it is then ``vmap``-ed).
        optimizer: the optax transformation of every run.
        params_example: one run's parameters (for the partition into trainable and frozen leaves).
        labels: group label of every leaf; ``trainable``: the groups trained.
        batch: sequences per step per run; ``mesh``: optional device mesh to split the runs over;
        compiler_options: XLA options (default: the training loop's CPU options on a CPU, none elsewhere; ignored
            where rejected).
    """

    def __init__(
        self,
        loss_fn: Callable,
        samplers: Sequence[Callable],
        optimizer: Any,
        params_example: Any,
        labels: Any,
        trainable: Any,
        batch: int,
        *,
        max_chunk: int = 100,
        mesh: jax.sharding.Mesh | None = None,
        compiler_options: dict | None = None,
    ):
        check_callable("loss_fn", loss_fn)
        if isinstance(samplers, (str, bytes)) or not isinstance(samplers, Sequence) or len(samplers) == 0:
            raise TypeError("samplers must be a non-empty sequence of sample(key, batch) functions, one per run")
        for r, s in enumerate(samplers):
            check_callable(f"samplers[{r}]", s)
        self.runs = len(samplers)
        self.batch = check_int("batch", batch, minimum=1)
        self.max_chunk = check_int("max_chunk", max_chunk, minimum=1)
        if mesh is not None:
            if not isinstance(mesh, jax.sharding.Mesh) or len(mesh.axis_names) != 1:
                raise TypeError("mesh must be a 1-D jax.sharding.Mesh (see data_mesh) or None")
            if self.runs % mesh.devices.size:
                raise ValueError(
                    f"samplers: the number of runs ({self.runs}) must be divisible by the mesh's "
                    f"{mesh.devices.size} devices"
                )
        self.mesh = mesh
        self.optimizer = optimizer
        _, self.mask, self.treedef = partition(params_example, labels, trainable)
        vstep = jax.vmap(make_train_step(loss_fn, optimizer, self.mask, self.treedef))
        same = all(s is samplers[0] for s in samplers)
        batch_, treedef = self.batch, self.treedef
        samplers = tuple(samplers)

        def draw(seed_keys, t):
            keys = jax.vmap(step_key)(seed_keys, t)
            if same:
                return jax.vmap(lambda k: samplers[0](k, batch_))(keys)
            parts = [s(keys[r], batch_) for r, s in enumerate(samplers)]
            return tuple(jnp.stack(xs) for xs in zip(*parts))

        def chunk(state: TrainState, seed_keys, n):
            leaves = jax.tree.leaves(state.params)

            def body(i, carry):
                leaves, opt_state, t, losses = carry
                tokens, targets = draw(seed_keys, t)
                leaves, opt_state, loss = vstep(leaves, opt_state, tokens, targets)
                return leaves, opt_state, t + 1, losses.at[:, i].set(loss)

            losses = jnp.zeros((self.runs, self.max_chunk), jnp.float32)
            leaves, opt_state, t, losses = lax.fori_loop(0, n, body, (leaves, state.opt_state, state.step, losses))
            return TrainState(jax.tree.unflatten(treedef, leaves), opt_state, t), losses

        self._jit = jax.jit(chunk, donate_argnums=(0,))
        self.compiler_options = default_options(mesh) if compiler_options is None else compiler_options
        self._compiled = None

    def _place(self, x):
        if self.mesh is None:
            return x
        return jax.device_put(x, NamedSharding(self.mesh, PartitionSpec(self.mesh.axis_names[0])))

    def init_state(self, params_per_run: Sequence[Any], step: int = 0) -> TrainState:
        """The stacked state of ``R`` runs from their initial parameters (a sequence of ``R`` pytrees)."""
        if (
            isinstance(params_per_run, (str, bytes))
            or not isinstance(params_per_run, Sequence)
            or len(params_per_run) != self.runs
        ):
            raise ValueError(f"params_per_run must be a sequence of {self.runs} parameter pytrees (one per run)")
        step = check_int("step", step, minimum=0)
        states = []
        for p in params_per_run:
            train = [leaf for leaf, m in zip(jax.tree.leaves(p), self.mask) if m]
            states.append(TrainState(p, self.optimizer.init(train), jnp.asarray(step, jnp.int32)))
        return self._place(jax.tree.map(jnp.array, stack_runs(states)))

    def _compile(self, state, seed_keys):
        if self._compiled is None:
            lowered = self._jit.lower(state, seed_keys, jnp.int32(1))
            # options this JAX/XLA does not take are dropped (probed once per set, as the training loop does)
            self._compiled = lowered.compile(compiler_options=accepted_options(self.compiler_options) or None)
        return self._compiled

    def __call__(self, state: TrainState, seed_keys: jax.Array, n: int) -> tuple[TrainState, jax.Array]:
        """Run ``n ≤ max_chunk`` steps of every run; ``seed_keys`` ``(R,)`` holds each run's seed key (as given
        to :class:`~causal_grad.training.loop.ChunkRunner`). Returns the new stacked state and the losses
        ``(R, n)``."""
        n = check_int("n", n, minimum=1, maximum=self.max_chunk)
        if getattr(seed_keys, "shape", None) is None or seed_keys.shape[:1] != (self.runs,):
            raise ValueError(
                f"seed_keys must be a stacked array of {self.runs} keys (one per run), got shape "
                f"{getattr(seed_keys, 'shape', None)}"
            )
        seed_keys = self._place(seed_keys)
        new, losses = self._compile(state, seed_keys)(state, seed_keys, jnp.int32(n))
        return new, losses[:, :n]
