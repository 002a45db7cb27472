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

:func:`train_batched` is the whole-run layer on top: ``R`` :class:`~causal_grad.training.config.TrainConfig` s
that differ only in graph and seed, trained stage by stage through one :class:`BatchedRunner` per stage, each
run scored on its own held-out set, returned as one :class:`~causal_grad.training.run.TrainResult` per run (what
:func:`causal_grad.training.train` returns for it alone, equal up to float32 rounding; tests/test_batched.py).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from ._validate import check_callable, check_int, check_output_path
from .graphs import Graph
from .kernels import accepted_options
from .task import InContextTask, MultiParentTask, make_task
from .training.checkpoint import save_weights
from .training.config import TrainConfig, config_diff
from .training.history import History
from .training.loop import (
    TrainState,
    default_options,
    fast_cpu_jit,
    make_train_step,
    partition,
    step_key,
    task_sampler,
)
from .training.metrics import graph_metrics, head_parents, induction_metrics
from .training.run import HeldOut, TrainResult, chunked_mean, smoothing_penalty, write_json_atomic
from .training.strategies import query_strategies, strategy_kl

__all__ = ["BatchedRunner", "stack_runs", "unstack_runs", "train_batched", "BATCHABLE"]

#: The config fields in which the runs of :func:`train_batched` may differ (everything else is one program).
BATCHABLE = ("graph", "seed")


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


# ---------------------------------------------------------------------- whole runs
def _check_configs(configs) -> list[TrainConfig]:
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence) or len(configs) == 0:
        raise TypeError("configs must be a non-empty sequence of TrainConfig, one per run")
    for r, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise TypeError(f"configs[{r}] must be a TrainConfig, got {type(c).__name__}")
    for r, c in enumerate(configs):
        if c.task.objective != "query":
            raise ValueError(
                f"configs[{r}] has objective {c.task.objective!r}: the batched program trains the query-only "
                f"loss; train next-token runs with causal_grad.train"
            )
    c0 = configs[0]
    for r, c in enumerate(configs[1:], start=1):
        diff = sorted(set(config_diff(c0, c)) - set(BATCHABLE))
        if diff:
            raise ValueError(
                f"configs[{r}] differs from configs[0] in {', '.join(diff)}: the runs of one batched program may "
                f"differ only in {', '.join(BATCHABLE)}"
            )
        if c.seq_len != c0.seq_len or c.graph.is_forest != c0.graph.is_forest:
            raise ValueError(
                f"configs[{r}]'s graph must have configs[0]'s sequence length T = {c0.seq_len} and kind "
                f"({'forest' if c0.graph.is_forest else 'DAG'}), got T = {c.seq_len}"
                f" ({'forest' if c.graph.is_forest else 'DAG'}): one program has one parameter shape"
            )
    return list(configs)


def _check_tasks(tasks, cfgs: list[TrainConfig]) -> list:
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence) or len(tasks) != len(cfgs):
        raise ValueError(f"tasks must be a sequence of {len(cfgs)} tasks (one per config) or None")
    for r, (t, c) in enumerate(zip(tasks, cfgs)):
        if not isinstance(t, (InContextTask, MultiParentTask)):
            raise TypeError(f"tasks[{r}] must be an InContextTask or MultiParentTask, got {type(t).__name__}")
        if (t.graph, t.vocab_size, t.alpha) != (c.graph, c.task.vocab, c.task.alpha):
            raise ValueError(
                f"tasks[{r}] must be a task of configs[{r}]'s graph, vocab {c.task.vocab} and alpha {c.task.alpha:g}, "
                f"got {t!r}"
            )
    return list(tasks)


def _boundaries(cfg: TrainConfig, stage_ends: Sequence[int]) -> list[int]:
    """The chunk boundaries of :func:`causal_grad.training.train` for ``cfg``: every evaluation, log,
    checkpoint and snapshot step, every stage's end and the last step."""
    r = cfg.run
    marks = {r.steps, *stage_ends}
    for every in (r.eval_every, r.log_every, r.checkpoint_every, r.snapshot_interval):
        if every:
            marks.update(range(every, r.steps, every))
    return sorted(marks)


def _evaluator(cfg: TrainConfig, spec, task, held: HeldOut):
    """The held-out metrics of one run, as :func:`causal_grad.training.train` records them (``loss``,
    ``strategy_kl``, ``excess_over_in_context``, the graph and induction metrics of a forest, the heads of a
    DAG)."""
    att_tokens, kl_tokens = held.tokens[:512], held.tokens[:1024]
    kl_refs = query_strategies(task, kl_tokens)
    g = cfg.graph
    n_graph = g.token_positions

    def readouts(p, tokens, targets, att_tokens, kl_tokens, kl_refs):
        ind = spec.induction(p) if spec.induction is not None else None
        kl = strategy_kl(spec.logits(p, kl_tokens), kl_refs)
        return chunked_mean(spec.loss, p, tokens, targets), spec.attention(p, att_tokens), ind, kl

    def evaluate(params, compiled) -> dict:
        loss, att, ind, kl = jax.device_get(compiled(params, held.tokens, held.targets, att_tokens, kl_tokens, kl_refs))
        out: dict[str, Any] = {"loss": float(loss), "strategy_kl": {k: float(v) for k, v in kl.items()}}
        out["excess_over_in_context"] = out["loss"] - held.in_context
        att = np.asarray(att)
        if g.is_forest:
            out.update(graph_metrics(att, g).to_dict())
            out.update(induction_metrics(att, None if ind is None else np.asarray(ind), n_graph).to_dict())
        else:
            out["heads"] = head_parents(att, Graph(g.parent_sets[:-1])).to_dict()
        return out

    return readouts, evaluate


def train_batched(
    configs: Sequence[TrainConfig],
    outs: Sequence[str | os.PathLike] | None = None,
    *,
    progress: bool = False,
    max_chunk: int = 100,
    mesh: jax.sharding.Mesh | None = None,
    tasks: Sequence[Any] | None = None,
) -> list[TrainResult]:
    """Train ``R`` runs as one compiled program per stage and return one
    :class:`~causal_grad.training.run.TrainResult` per run.

    The configs must agree in every field but :data:`BATCHABLE` (the graph, with one sequence length, and the
    seed): one model, optimiser, schedule, length, batch and held-out size. Run ``r`` is what
    :func:`causal_grad.training.train` does with ``configs[r]`` alone: parameters
    ``init(fold_in(key(seed_r), 1))``, the batch of step ``t`` drawn from its own task with
    ``step_key(key(seed_r), t)``, the stages of its config each with a fresh optimiser, held-out metrics every
    ``eval_every`` steps on its own held-out set (key ``eval_seed``) — equal to that run alone up to float32
    rounding (a batched matrix product may sum in another order). Not supported here: checkpoints and resume
    (``checkpoint_every`` is ignored), attention snapshots, metric writers, ``stop_when``.

    ``outs``: one folder per run (or ``None``: nothing written); each receives ``config.json``, ``history.json``
    and ``weights.npz`` (readable by :func:`causal_grad.training.load_run`), written when the runs end.
    ``progress``: a progress bar over the steps (all runs advance together). ``mesh``: a 1-D device mesh whose
    size divides ``R`` to split the runs over (default: one device). ``tasks``: one task per run instead of
    ``make_task`` of its config (e.g. a :class:`~causal_grad.task.MultiParentTask` with ``roots="dirichlet"``,
    the public code's root law for figures 5/7); each must be a task of its config's graph, ``vocab`` and
    ``alpha``."""
    cfgs = _check_configs(configs)
    R = len(cfgs)
    folders = None
    if outs is not None:
        if isinstance(outs, (str, bytes, os.PathLike)) or not isinstance(outs, Sequence) or len(outs) != R:
            raise ValueError(f"outs must be a sequence of {R} folders (one per config) or None")
        folders = [check_output_path(f"outs[{r}]", o, kind="dir") for r, o in enumerate(outs)]
        if len({f.resolve() for f in folders}) != R:
            raise ValueError("outs must name a different folder for every run")
    max_chunk = check_int("max_chunk", max_chunk, minimum=1)
    if tasks is not None:
        tasks = _check_tasks(tasks, cfgs)
    t_start = time.perf_counter()
    c0 = cfgs[0]
    spec = c0.build_model()
    if tasks is None:
        tasks = [make_task(c.graph, c.task.vocab, c.task.alpha) for c in cfgs]
    # runs on one task share one sampler (vmapped); distinct tasks are traced one after another
    by_graph: dict[Any, Callable] = {}
    samplers = []
    for t in tasks:
        key = repr(t)  # graph, vocabulary, concentration, prior or root law: runs with equal tasks share one
        if key not in by_graph:
            by_graph[key] = task_sampler(t)
        samplers.append(by_graph[key])
    helds = [HeldOut.build(t, c.run.eval_size, c.run.eval_seed) for c, t in zip(cfgs, tasks)]
    evaluators = [_evaluator(c, spec, t, h) for c, t, h in zip(cfgs, tasks, helds)]
    readouts = fast_cpu_jit(evaluators[0][0])  # one compiled read-out: the held-out sets are its arguments
    seed_keys = [jax.random.key(c.run.seed) for c in cfgs]
    params = [spec.init(jax.random.fold_in(k, 1)) for k in seed_keys]
    labels = spec.groups(params[0])
    stages = c0.stages(spec.group_names)
    steps, every = c0.run.steps, c0.run.eval_every
    marks = _boundaries(c0, [s.end for s in stages])
    histories = [
        {"config": c.to_json(), "baselines": h.losses().to_dict(), "eval": [], "train": []} for c, h in zip(cfgs, helds)
    ]

    def evaluate_all(step: int, per_run_params) -> None:
        now = time.perf_counter() - t_start
        for r, p in enumerate(per_run_params):
            entry = {"step": step, "time_s": now, **evaluators[r][1](p, readouts)}
            if step == 0 and not math.isfinite(entry["loss"]):
                raise ValueError(
                    f"configs[{r}]: the held-out loss at the initial parameters is {entry['loss']}, before any "
                    f"training step: the model's hyper-parameters give non-finite float32 values"
                )
            histories[r]["eval"].append(entry)

    evaluate_all(0, params)
    bar = None
    if progress:
        bar = tqdm(total=steps, desc=f"{R} runs, {c0.model.name}/{c0.optim.schedule}", unit="step", dynamic_ncols=True)
    keys = jnp.stack(seed_keys)
    step = 0
    try:
        for stage in stages:
            runner = BatchedRunner(
                spec.loss,
                samplers,
                stage.make(),
                params[0],
                labels,
                stage.trainable,
                c0.run.batch,
                max_chunk=max_chunk,
                mesh=mesh,
            )
            state = runner.init_state(params, step)
            while step < stage.end:
                n = min(next(m for m in marks if m > step) - step, max_chunk)
                state, losses = runner(state, keys, n)
                step += n
                losses = np.asarray(losses)
                means = [float(np.mean(losses[r])) for r in range(R)]  # as train() takes a chunk's mean
                bad = [r for r in range(R) if not math.isfinite(means[r])]
                if bad:
                    raise FloatingPointError(
                        f"training loss is not finite at step {step} in run(s) {bad} (configs[{bad[0]}]): the "
                        f"steps diverged; lower the learning rate (lr={c0.optim.lr:g})"
                    )
                for r in range(R):
                    histories[r]["train"].append([step, means[r]])
                if step % every == 0 or step == steps:
                    evaluate_all(step, unstack_runs(jax.device_get(state.params)))
                if bar is not None:
                    bar.update(n)
            params = unstack_runs(jax.device_get(state.params))
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t_start
    results = []
    for r, (c, h, hist) in enumerate(zip(cfgs, helds, histories)):
        hist["wall_s"] = wall
        hist["steps_done"] = step
        penalty = smoothing_penalty(c, h.tokens, h.targets)
        if penalty is not None:
            hist["smoothing"] = {**penalty, "ideal_excess_over_in_context": penalty["ideal_loss"] - h.in_context}
        out = None
        if folders is not None:
            out = Path(folders[r])
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "config.json", c.to_json())
            write_json_atomic(out / "history.json", hist)
            save_weights(out / "weights.npz", params[r])
        results.append(TrainResult(c, params[r], History.from_dict(hist), out))
    return results
