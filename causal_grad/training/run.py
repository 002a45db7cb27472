"""Training runs people can keep: a config, a results folder, a progress bar, logs, checkpoints and exact resume.

:func:`train` runs a :class:`TrainConfig` and, given ``out``, writes

* ``out/config.json`` — the configuration (enough to rerun it);
* ``out/history.json`` — held-out metrics every ``eval_every`` steps and the mean training loss of every chunk,
  rewritten atomically (temporary file, then ``os.replace``) after every evaluation;
* ``out/metrics.csv`` — the same numbers as rows ``step, train/loss, eval/…`` (:class:`causal_grad.logs.CSVWriter`);
  with ``log=("tensorboard",)`` also TensorBoard event files in ``out/tensorboard``, with ``log=("wandb",)`` a
  wandb run (``WANDB_MODE=offline`` keeps it local);
* ``out/attention.npz`` — the first-layer attention (the model's ``first_layer_attention`` on the first 512
  held-out sequences) at step 0 and every ``RunConfig.snapshot_interval`` steps (``snapshot_every``; by default
  about 20 frames) (:class:`causal_grad.logs.AttentionSnapshots`): the frames of ``causal-grad plot``'s animation;
* ``out/checkpoints/<step>/`` — orbax checkpoints of the whole training state every ``checkpoint_every`` steps,
  each with a SHA-256 manifest of its files;
* ``out/weights.npz`` — the final parameters.

While it runs, the folder is locked (``out/run.lock`` holds the process id, :mod:`causal_grad.runlock`): a second
writer is refused before any compute, naming the holder; the lock of a process that died is taken over.

``resume=True`` restores the newest checkpoint that reads back completely (every file as saved): newer ones that
do not are named with the reason, moved to ``out/checkpoints.skipped/`` and skipped, all before the expensive
start-up (the context build and compilation). The batch of step ``t`` is drawn with a key that depends on
``(seed, t)`` only and the chunk boundaries are fixed by the configuration, so a resumed run ends with the same
weights as an uninterrupted one (bit for bit on the same machine; see ``tests/test_training.py``), whichever
checkpoint it resumed from; ``history.json``, ``metrics.csv`` and ``attention.npz`` keep their entries up to that
step. A run without a checkpoint is trained again from step 0. ``resume=True`` with a config that differs from
the saved one only by a larger ``steps`` extends the run (the layer-wise stage 1 keeps its saved length; the last
stage's cosine decay is recomputed over the new length); any other difference raises a ``ValueError`` naming
the fields. Resuming a folder that holds no run (no ``config.json``) is refused.

A held-out loss that is not finite at the initial parameters is refused before the first step, naming the cause
(the targets, i.e. ``alpha``; the model's hyper-parameters such as ``beta0``), not the learning rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._validate import check_array, check_callable, check_int, check_output_path, check_tokens, concentration_floor
from ..baselines import BaselineLosses, cross_entropy, entropy
from ..graphs import Graph
from ..logs import LOG_KINDS, SNAPSHOT_NAME, AttentionSnapshots, flatten_metrics, open_writers
from ..ngram import NGramTask
from ..progress import progress_enabled
from ..runlock import RunLock
from ..task import make_task
from .checkpoint import Checkpointer, leaf_name, load_weights, save_weights, set_aside, usable_checkpoints
from .config import FLOAT32_MAX, TrainConfig, config_diff
from .history import EvalRecord, History
from .loop import ChunkRunner, fast_cpu_jit, next_token_sampler, task_sampler
from .metrics import graph_metrics, head_parents, induction_metrics
from .schedules import Stage
from .sharding import data_mesh
from .strategies import ngram_strategies, query_strategies, strategy_kl

__all__ = [
    "TrainResult",
    "HeldOut",
    "BaselineLosses",
    "train",
    "load_run",
    "write_json_atomic",
    "TrainingInterrupted",
    "smoothing_penalty",
]


# ---------------------------------------------------------------------- held-out evaluation
@dataclass(frozen=True, repr=False)
class HeldOut:
    """A fixed held-out set (key ``eval_seed``) with its baselines, all means over the same sequences the
    models are scored on: the in-context estimator's loss ``in_context`` (the whole parent tuple for a DAG),
    the entropy floor ``E[H(π[q])]``, and in ``others`` the weaker references (unigram; for a DAG the
    estimators that match only parent ``m``, ``one_parent_m``). :meth:`build` samples the query form;
    :meth:`build_next_token` the next-token form of an n-gram task (targets ``(B, T, S)``, every baseline a mean
    over sequences and positions)."""

    tokens: jax.Array
    targets: jax.Array
    in_context: float
    entropy_floor: float
    others: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"HeldOut({self.tokens.shape[0]} sequences of {self.tokens.shape[1]}, in_context="
            f"{self.in_context:.4f}, entropy_floor={self.entropy_floor:.4f}, others={self.others})"
        )

    def losses(self) -> BaselineLosses:
        return BaselineLosses(self.in_context, self.entropy_floor, dict(self.others))

    @classmethod
    def build(cls, task, size: int, seed: int) -> HeldOut:
        tokens, targets = task.sample(jax.random.key(seed), size)

        weaker = {"unigram": task.unigram}
        for m in range(len(getattr(task, "target_parents", ()))):
            weaker[f"one_parent_{m}"] = lambda t, m=m: task.one_parent(t, m)

        @jax.jit
        def baselines(tokens, targets):
            ce = {k: jnp.mean(cross_entropy(targets, f(tokens))) for k, f in weaker.items()}
            return jnp.mean(cross_entropy(targets, task.in_context(tokens))), jnp.mean(entropy(targets)), ce

        ic, floor, ce = baselines(tokens, targets)
        return cls(tokens, targets, float(ic), float(floor), {k: float(v) for k, v in ce.items()})

    @classmethod
    def build_next_token(cls, task: NGramTask, size: int, seed: int) -> HeldOut:
        """The next-token held-out set of an n-gram task: ``targets`` ``(B, T, S)``
        (:meth:`~causal_grad.ngram.NGramTask.sample_next_token`); every baseline the mean over sequences and
        positions, the per-position estimators of :meth:`~causal_grad.ngram.NGramTask.predictive_all_positions`
        (``in_context``: the n-gram estimator; ``others``: the in-context ``unigram`` and ``uniform``). The
        estimators do not depend on the task's initial law; with ``initial="stationary"`` the n-gram estimator is
        not exact Bayes (the first tokens then carry information about the chain), so ``in_context`` is the
        reference estimator, not the Bayes floor."""
        if not isinstance(task, NGramTask):
            raise TypeError(f"task must be a causal_grad.ngram.NGramTask, got {type(task).__name__}")
        tokens, targets = task.sample_next_token(jax.random.key(seed), size)

        @jax.jit
        def baselines(tokens, targets):
            ce = {
                k: jnp.mean(cross_entropy(targets, task.predictive_all_positions(tokens, k)))
                for k in ("unigram", "uniform")
            }
            ic = jnp.mean(cross_entropy(targets, task.predictive_all_positions(tokens, "in_context")))
            return ic, jnp.mean(entropy(targets)), ce

        ic, floor, ce = baselines(tokens, targets)
        return cls(tokens, targets, float(ic), float(floor), {k: float(v) for k, v in ce.items()})


# ---------------------------------------------------------------------- the run
@dataclass(frozen=True, repr=False)
class TrainResult:
    """A finished (or loaded) run: its ``config``, final ``params``, ``history`` and ``out`` folder.

    ``history`` is the typed :class:`~causal_grad.training.history.History` record of ``history.json`` (its
    ``to_dict()`` is the file's content, byte for byte once written as JSON); a mapping read from such a file is
    accepted and converted. The shortcuts :attr:`evals` (every held-out :class:`EvalRecord
    <causal_grad.training.history.EvalRecord>`), :attr:`final` (the last one) and :attr:`baselines` (the
    held-out :class:`~causal_grad.baselines.BaselineLosses`) read it."""

    config: TrainConfig
    params: object
    history: History
    out: Path | None = None

    def __post_init__(self):
        if isinstance(self.history, Mapping):
            object.__setattr__(self, "history", History.from_dict(self.history))
        elif not isinstance(self.history, History):
            raise TypeError(f"history must be a History (or history.json's mapping), got {type(self.history).__name__}")

    @property
    def evals(self) -> tuple[EvalRecord, ...]:
        """The held-out evaluations in step order (the first at step 0, the last at the end of the run)."""
        return self.history.evals

    @property
    def final(self) -> EvalRecord | None:
        """The last held-out evaluation (``None`` when there is none)."""
        return self.history.final

    @property
    def baselines(self) -> BaselineLosses:
        """The held-out reference losses the evaluations are compared with."""
        return self.history.baselines

    def __repr__(self) -> str:
        c, f = self.config, self.final
        n = sum(int(np.size(x)) for x in jax.tree.leaves(self.params))
        loss = "not evaluated" if f is None else f"loss {f.loss:.4f}"
        ref = f", in-context estimator {self.baselines.in_context:.4f}"
        done = self.history.steps_done if self.history.steps_done is not None else (f.step if f is not None else 0)
        return (
            f"TrainResult({c.model.name}/{c.optim.schedule}, {done} "
            f"of {c.run.steps} steps × {c.run.batch}, {n} parameters; {loss}{ref}"
            f"{'' if self.out is None else f'; in {self.out}'})"
        )


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file and ``os.replace`` (never half-written)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`train` after a SIGINT or SIGTERM: the run stopped at the end of the running chunk, its
    state was checkpointed (when ``out`` is given) and ``history.json`` written; ``resume=True`` (``--resume``)
    continues it to the same final weights as an uninterrupted run. ``signum``, ``step``: the signal and the
    step reached."""

    def __init__(self, signum: int, step: int, where: str = ""):
        self.signum, self.step = int(signum), int(step)
        super().__init__(f"{signal.Signals(signum).name} at step {step}" + (f"; {where}" if where else ""))


class _Signals(list):
    """The signals received (a list) and whether the run is past its start-up (``deferred``): before, the first
    signal stops at once (nothing to save yet); after, it stops at the next chunk boundary."""

    deferred = False
    step = 0


@contextlib.contextmanager
def _stop_on_signals():
    """Within the block SIGINT and SIGTERM are handled here. During the start-up (checks, the context build and
    compilation, the held-out set, the first evaluation: nothing to save yet) the first signal stops the run at
    once with :class:`TrainingInterrupted`; once the training loop runs (``deferred``) it only records itself and
    the loop stops at the next chunk boundary, where the state is consistent. A second signal stops at once
    (KeyboardInterrupt). Outside the main thread signals cannot be caught, and nothing is installed."""
    got = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum, frame):
        if got:
            raise KeyboardInterrupt
        got.append(signum)
        if not got.deferred:
            raise TrainingInterrupted(signum, got.step, "during start-up, before any training step: nothing to save")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _boundaries(cfg: TrainConfig, stages: list[Stage]) -> list[int]:
    r = cfg.run
    marks = {r.steps}
    for every in (r.eval_every, r.log_every, r.checkpoint_every, r.snapshot_interval):
        if every:
            marks.update(range(every, r.steps, every))
    marks.update(s.end for s in stages)
    return sorted(marks)


#: Sequences per piece of the held-out loss (:func:`chunked_mean`).
EVAL_CHUNK = 2048


def chunked_mean(loss_fn: Callable, params, tokens, targets, chunk: int = EVAL_CHUNK) -> jax.Array:
    """``loss_fn(params, tokens, targets)`` of a batch-mean loss over ``n`` sequences, computed in pieces of
    ``chunk`` (``lax.map`` over the ``⌊n/chunk⌋`` whole pieces, then the rest):
    ``L = (chunk·Σ_k L_k + r·L_rest) / n``, the batch mean up to float rounding. Inside ``jit``. On a CPU the
    held-out set of 65,536 sequences in one piece streams every activation through memory; in pieces of 2,048
    its loss costs 114 ms instead of 300 (figure 2's model, 2-core CPU) and 0.64 s instead of 1.6 s (figures
    5/7's)."""
    n = tokens.shape[0]
    k = n // chunk
    if k <= 1:
        return loss_fn(params, tokens, targets)
    whole = k * chunk

    def piece(xs):
        return loss_fn(params, xs[0], xs[1])

    def split(a):
        return a[:whole].reshape((k, chunk) + a.shape[1:])

    total = chunk * jnp.sum(jax.lax.map(piece, (split(tokens), split(targets))))
    if whole < n:
        total = total + (n - whole) * loss_fn(params, tokens[whole:], targets[whole:])
    return total / n


def _make_evaluator(cfg: TrainConfig, spec, task, held: HeldOut):
    att_tokens = held.tokens[:512]
    next_token = cfg.task.objective == "next_token"
    loss_fn = spec.next_token_loss if next_token else spec.loss

    @fast_cpu_jit
    def readouts(p):
        ind = spec.induction(p) if spec.induction is not None else None
        return chunked_mean(loss_fn, p, held.tokens, held.targets), spec.attention(p, att_tokens), ind

    g = cfg.graph
    n_graph = g.token_positions
    kl_tokens = held.tokens[:1024]  # distance to the strategies (causal_grad.training.strategies)
    if next_token:  # over every position, as the loss
        kl_refs = ngram_strategies(task, kl_tokens)
        kl_readout = fast_cpu_jit(lambda p: strategy_kl(spec.logits_all(p, kl_tokens), kl_refs))
    else:  # at the query
        kl_refs = query_strategies(task, kl_tokens)
        kl_readout = fast_cpu_jit(lambda p: strategy_kl(spec.logits(p, kl_tokens), kl_refs))

    def evaluate(params, step: int, time_s: float) -> EvalRecord:
        loss, att, ind = jax.device_get(readouts(params))
        loss = float(loss)
        kl = {k: float(v) for k, v in jax.device_get(kl_readout(params)).items()}
        att = np.asarray(att)
        metrics: dict[str, Any] = {}
        if g.is_forest and not next_token:
            metrics.update(graph_metrics(att, g).to_dict())
            block = np.asarray(ind) if ind is not None else None
            metrics.update(induction_metrics(att, block, n_graph).to_dict())
        else:
            metrics["heads"] = head_parents(att, Graph(g.parent_sets[:-1]))
        return EvalRecord(step, time_s, loss, loss - held.in_context, strategy_kl=kl, **metrics)

    return evaluate


class _Context:
    """What a run needs besides its seed and length: task, model, held-out set, evaluator and the compiled chunk
    runners. Cached per configuration with the seed, the logging intervals, ``steps`` and ``stage1_steps`` left
    out (:func:`_context`): a stage's compiled chunk takes its schedule length at run time
    (:meth:`Stage.length <causal_grad.training.schedules.Stage.length>`), so repeated runs in one process (several
    seeds, other lengths, a resumed or extended run) compile once. The stages themselves are the run's own
    (``cfg.stages``); :meth:`runner` is keyed by what a stage's program depends on (:attr:`Stage.program`)."""

    def __init__(self, cfg: TrainConfig, mesh, max_chunk: int):
        self.task = _training_task(cfg)
        self.spec = cfg.build_model()
        self.held = _held_out(cfg, self.task)
        self.evaluate = _make_evaluator(cfg, self.spec, self.task, self.held)
        if cfg.task.objective == "next_token":
            assert self.spec.next_token_loss is not None  # TrainConfig checked that the model has logits_all
            self._sample, self._loss = next_token_sampler(self.task), self.spec.next_token_loss
        else:
            self._sample, self._loss = task_sampler(self.task), self.spec.loss
        self._cfg, self._mesh, self._max_chunk = cfg, mesh, max_chunk
        self._runners: dict[tuple, ChunkRunner] = {}
        self._example = jax.eval_shape(self.spec.init, jax.random.key(0))

    def stages(self, cfg: TrainConfig) -> list[Stage]:
        return cfg.stages(self.spec.group_names)

    def runner(self, stage: Stage) -> ChunkRunner:
        """The compiled chunk runner of ``stage`` (call it with ``length=stage.length()``)."""
        key = stage.program
        if key not in self._runners:
            labels = self.spec.groups(self._example)
            self._runners[key] = ChunkRunner(
                self._loss,
                self._sample,
                stage.make_fn(),
                self._example,
                labels,
                stage.trainable,
                self._cfg.run.batch,
                mesh=self._mesh,
                max_chunk=self._max_chunk,
            )
        return self._runners[key]


def _training_task(cfg: TrainConfig):
    """The task a run trains on: :func:`causal_grad.task.make_task` of the graph for the query objective; for
    ``"next_token"`` the n-gram task :class:`~causal_grad.ngram.NGramTask` ``(vocab, k, T, alpha, initial)`` of the
    n-gram graph (:attr:`TaskConfig.ngram_order <causal_grad.training.config.TaskConfig.ngram_order>`, the initial
    law :attr:`TaskConfig.initial <causal_grad.training.config.TaskConfig.initial>`)."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    t = cfg.task
    if t.objective == "next_token":
        assert t.ngram_order is not None  # TaskConfig checked it
        return NGramTask(t.vocab, t.ngram_order, t.seq_len, alpha=t.alpha, initial=t.initial)
    return make_task(t.graph, t.vocab, t.alpha)


_CONTEXTS: dict = {}
_MAX_CONTEXTS = 4
_HELD_OUT: dict = {}
_MAX_HELD_OUT = 4
#: Run fields a compiled context does not depend on (the seed, logging, and the lengths: run-time arguments).
_CONTEXT_IGNORES = ("seed", "eval_every", "log_every", "checkpoint_every", "snapshot_every", "steps")


def _held_out(cfg: TrainConfig, task) -> HeldOut:
    """The held-out set with its baselines, cached per (task, ``eval_size``, ``eval_seed``): shared by every
    model and optimiser trained on that task in this process."""
    key = (json.dumps(cfg.task.to_json(), sort_keys=True), cfg.run.eval_size, cfg.run.eval_seed)
    if key not in _HELD_OUT:
        while len(_HELD_OUT) >= _MAX_HELD_OUT:
            _HELD_OUT.pop(next(iter(_HELD_OUT)))
        build = HeldOut.build_next_token if cfg.task.objective == "next_token" else HeldOut.build
        _HELD_OUT[key] = build(task, cfg.run.eval_size, cfg.run.eval_seed)
    return _HELD_OUT[key]


def _default_mesh(batch: int):
    """Every visible device that the batch splits over evenly (``gcd(batch, #devices)`` of them): with several
    host CPU devices (:func:`causal_grad.devices.use_all_cores`, the command line's default) training is
    data-parallel over every core; on one device (or an accelerator) it is the single-device program."""
    devices = jax.devices()
    return data_mesh(devices[: math.gcd(batch, len(devices))])


def _context(cfg: TrainConfig, mesh, max_chunk: int) -> _Context:
    if mesh is None:
        mesh = _default_mesh(cfg.run.batch)
    d = cfg.to_json()
    d["run"] = {k: v for k, v in d["run"].items() if k not in _CONTEXT_IGNORES}
    d["optim"] = {k: v for k, v in d["optim"].items() if k != "stage1_steps"}
    key = (json.dumps(d, sort_keys=True), None if mesh is None else tuple(d.id for d in mesh.devices.flat), max_chunk)
    if key not in _CONTEXTS:
        while len(_CONTEXTS) >= _MAX_CONTEXTS:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = _Context(cfg, mesh, max_chunk)
    else:  # most recently used last (the cache drops the oldest first)
        _CONTEXTS[key] = _CONTEXTS.pop(key)
    return _CONTEXTS[key]


def train(
    config: TrainConfig,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    mesh: jax.sharding.Mesh | None = None,
    stop_when: Callable[[EvalRecord], bool] | None = None,
    max_chunk: int = 100,
    log: Sequence[str] | str | None = (),
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run ``config``; see the module docstring for the results folder. ``stop_when(record)`` ends the run
    early after an evaluation when it returns true for its :class:`~causal_grad.training.history.EvalRecord`
    (used by the benchmarks to time recovery). ``log``: metric writers besides
    ``metrics.csv`` (``"tensorboard"``, ``"wandb"``; they need ``out``). ``echo``: where notices go (a stale lock
    taken over, a checkpoint skipped on resume); default: standard error. ``progress``: the tqdm bar; ``None``
    follows :func:`causal_grad.progress.progress_enabled` (shown on a terminal or in a notebook, hidden in pipes,
    logs and CI), ``True``/``False`` force it. Returns the final parameters and the history.

    SIGINT/SIGTERM (in the main thread) during the start-up stop at once; once training runs they stop the run
    at the end of the running chunk: the state is checkpointed in ``out/checkpoints/<step>`` and ``history.json``
    written (``interrupted_at``), then :class:`TrainingInterrupted` is raised; ``resume=True`` continues to the
    same final weights."""
    with _stop_on_signals() as signals:
        return _train(
            config,
            out,
            resume=resume,
            progress=progress,
            mesh=mesh,
            stop_when=stop_when,
            max_chunk=max_chunk,
            signals=signals,
            log=log,
            echo=echo,
        )


def _stderr(msg: str) -> None:
    print(f"causal_grad.train: {msg}", file=sys.stderr, flush=True)


def _check_log(log) -> tuple[str, ...]:
    if log is None:
        return ()
    kinds = (log,) if isinstance(log, str) else log
    if not isinstance(kinds, (list, tuple)):
        raise TypeError(
            f"log must be a writer name or a sequence of them ({', '.join(LOG_KINDS)}), got {type(log).__name__}"
        )
    bad = [k for k in kinds if k not in LOG_KINDS]
    if bad:
        raise ValueError(
            f"log must name writers among {', '.join(LOG_KINDS)} (metrics.csv is always written), got "
            f"{', '.join(map(repr, bad))}"
        )
    return tuple(dict.fromkeys(kinds))


def _train(
    config, out, *, resume, progress, mesh, stop_when, max_chunk, signals, log, echo: Callable[[str], None] | None
) -> TrainResult:
    t_start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig (e.g. causal_grad.training.preset(...)), got {type(config).__name__}"
        )
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")
    out = check_output_path("out", out, kind="dir") if out is not None else None
    if resume and out is None:
        raise ValueError("resume needs out (the results folder of the run to continue)")
    max_chunk = check_int("max_chunk", max_chunk, minimum=1)
    if stop_when is not None:
        check_callable("stop_when", stop_when)
    kinds = _check_log(log)
    if kinds and out is None:
        raise ValueError(f"log {', '.join(kinds)} needs out (the writers keep their files in the results folder)")
    say = _stderr
    if echo is not None:
        check_callable("echo", echo)
        say = echo
    if resume and out is not None and not out.is_dir():  # (resume without out was refused above)
        raise ValueError(f"resume: nothing to resume in {out}: the folder does not exist")
    # the same run either way; only the folder (and so resume) differs
    run = functools.partial(
        _run,
        config,
        progress=progress,
        mesh=mesh,
        stop_when=stop_when,
        max_chunk=max_chunk,
        signals=signals,
        kinds=kinds,
        say=say,
        t_start=t_start,
    )
    if out is None:
        return run(None, resume=False)
    created = not out.exists()
    lock = RunLock(out, echo=say)
    lock.acquire()  # before any compute: a second writer is refused here, naming the holder
    try:
        return run(out, resume=resume)
    finally:
        lock.release()
        if created:
            with contextlib.suppress(OSError):  # a folder this call created and left empty (refused at start-up)
                out.rmdir()


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"resume: {path} ({what}) is not readable JSON ({exc}): the file was overwritten or truncated"
        ) from None


def _pick_checkpoint(out: Path, say) -> int | None:
    """The newest checkpoint of ``out`` that reads back completely (a file check, before any compute); the others
    are named with the reason and moved to ``out/checkpoints.skipped`` (orbax would otherwise pick them)."""
    d = out / "checkpoints"
    good, bad = usable_checkpoints(d)
    newest = good[-1] if good else None
    for step, why in sorted(bad.items(), reverse=True):
        where = set_aside(d, step)
        fallback = (
            f"resuming from checkpoint {newest}"
            if newest is not None and newest < step
            else "an older checkpoint"
            if newest is not None
            else "no other checkpoint"
        )
        say(f"resume: skipping checkpoint {step}: {why}; moved to {where} ({fallback})")
    if newest is None and bad:
        say(f"resume: no checkpoint in {d} reads back completely: training again from step 0")
    return newest


def _hyper(cfg: TrainConfig) -> str:
    m = cfg.model
    vals = [
        f"{f.name}={getattr(m, f.name):.4g}" for f in dataclasses.fields(m) if isinstance(getattr(m, f.name), float)
    ]
    return ", ".join(vals) or "none"


def _check_start(cfg: TrainConfig, held: HeldOut, params) -> None:
    """Finite targets and initial parameters, before the first step; the message names the cause."""
    if not bool(np.all(np.isfinite(np.asarray(held.targets)))):
        raise ValueError(
            f"alpha = {cfg.task.alpha:.4g}: the task's targets are not finite in float32 (the "
            f"Dirichlet draws need alpha >= {concentration_floor('float32'):.3g}); this is the task's "
            f"concentration, not the learning rate"
        )
    bad = [
        leaf_name(p)
        for p, x in jax.tree_util.tree_flatten_with_path(params)[0]
        if np.issubdtype(np.asarray(x).dtype, np.floating) and not np.all(np.isfinite(np.asarray(x)))
    ]
    if bad:
        raise ValueError(
            f"the initial parameters ({', '.join(bad[:3])}) are not finite in float32: the model's "
            f"hyper-parameters ({_hyper(cfg)}) are out of range for float32 (e.g. beta0 beyond "
            f"{FLOAT32_MAX:.3g}); not the learning rate"
        )


def _check_initial_loss(cfg: TrainConfig, ev: EvalRecord) -> None:
    loss = ev.loss
    if not math.isfinite(loss):
        raise ValueError(
            f"the held-out loss at the initial parameters is {loss}, before any training step (so not "
            f"the learning rate): the model's hyper-parameters ({_hyper(cfg)}) give non-finite float32 "
            f"values (e.g. a beta0 so large that the attention scores overflow); use smaller ones"
        )


def _row(train_loss: float | None = None, ev: EvalRecord | None = None) -> dict:
    """One metrics row: ``train/loss`` and the held-out metrics as ``eval/<name>`` (nested ones flattened)."""
    row = {} if train_loss is None else {"train/loss": float(train_loss)}
    if ev is not None:
        row.update(flatten_metrics({k: v for k, v in ev.to_dict().items() if k != "step"}, prefix="eval"))
    return row


def _replay(csv_writer, evals: Sequence[EvalRecord], train_means: Sequence[tuple[int, float]]) -> None:
    """The rows of a history (kept up to a resumed step) written again into a fresh ``metrics.csv``."""
    train_at = dict(train_means)
    eval_at = {e.step: e for e in evals}
    for s in sorted(set(train_at) | set(eval_at)):
        csv_writer.write(s, _row(train_at.get(s), eval_at.get(s)))


_ATTENTION_FNS: weakref.WeakKeyDictionary[_Context, Callable] = weakref.WeakKeyDictionary()


def _attention_fn(ctx: _Context) -> Callable:
    """The first-layer attention ``(H, T, T)`` on the first 512 held-out sequences (compiled once per context)."""
    f = _ATTENTION_FNS.get(ctx)
    if f is None:
        tokens, fla = ctx.held.tokens[:512], ctx.spec.first_layer_attention
        f = jax.jit(lambda p: fla(p, tokens))
        _ATTENTION_FNS[ctx] = f
    return f


def _run(
    cfg, out: Path | None, *, resume, progress, mesh, stop_when, max_chunk, signals, kinds, say, t_start
) -> TrainResult:
    restore_from = None
    if resume:
        assert out is not None  # _train refuses resume without out
        if not (out / "config.json").is_file():
            raise ValueError(f"resume: nothing to resume in {out}: it holds no config.json (no run was kept there)")
        cfg = _resumable(cfg, out)
        restore_from = _pick_checkpoint(out, say)  # validated before the expensive start-up
    elif out is not None and ((out / "history.json").exists() or (out / "checkpoints").exists()):
        raise ValueError(
            f"out {out} already holds a run: pass resume=True (--resume) to continue it, or choose another folder"
        )
    ctx = _context(cfg, mesh, max_chunk)
    spec, stages, held, evaluate = ctx.spec, ctx.stages(cfg), ctx.held, ctx.evaluate
    seed_key = jax.random.key(cfg.run.seed)
    params = spec.init(jax.random.fold_in(seed_key, 1))
    _check_start(cfg, held, params)

    config_json, baselines = cfg.to_json(), held.losses()
    evals: list[EvalRecord] = []
    train_means: list[tuple[int, float]] = []

    def history(**end) -> History:  # what history.json holds now (``end``: the keys written at the end)
        return History(baselines, tuple(evals), tuple(train_means), config=config_json, **end)

    def runner_for(k: int):
        return ctx.runner(stages[k])

    step, k = 0, 0
    prior_wall = 0.0  # wall seconds of the earlier calls of a resumed run
    state = runner_for(0).init_state(params, 0)
    first = None
    if restore_from is None:
        first = evaluate(state.params, 0, time.perf_counter() - t_start)
        _check_initial_loss(cfg, first)
    ckpt = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        # a run that kept no checkpoint has no state to continue from: resume then trains it from step 0
        if cfg.run.checkpoint_every or restore_from is not None or (resume and (out / "checkpoints").is_dir()):
            ckpt = Checkpointer(out / "checkpoints")
    if restore_from is not None:
        assert out is not None and ckpt is not None  # restoring means resuming, which needs out; ckpt is made above
        step = restore_from
        k = next(i for i, s in enumerate(stages) if s.start < step <= s.end)
        like = runner_for(k).init_state(params, 0)
        try:
            restored = ckpt.restore(step, like)
        except Exception as exc:  # noqa: BLE001 (orbax raises many kinds; name the checkpoint and stop)
            detail = " ".join(str(exc).split())[:300]
            raise ValueError(
                f"resume: checkpoint {ckpt.directory / str(step)} does not read back into this run's "
                f"state ({type(exc).__name__}: {detail})"
            ) from None
        state = runner_for(k).place(restored)
        hist_path = out / "history.json"
        if hist_path.exists():
            old = History.from_dict(_read_json(hist_path, "the run's history"))
            evals[:] = [e for e in old.evals if e.step <= step]
            train_means[:] = [e for e in old.train if e[0] <= step]
            # the earlier calls' wall time: their recorded total, at least the last kept evaluation's time
            prior_wall = max(old.wall_s or 0.0, evals[-1].time_s if evals else 0.0)
    writers, snaps, snap_path = None, None, None
    if out is not None:
        write_json_atomic(out / "config.json", cfg.to_json())
        writers = open_writers(out, kinds, config=cfg.to_json())
        if restore_from is not None:
            _replay(writers.writers[0], evals, train_means)
        if cfg.run.snapshot_interval:
            snap_path = out / SNAPSHOT_NAME
            snaps = AttentionSnapshots()
            if restore_from is not None and snap_path.is_file():
                try:
                    snaps = AttentionSnapshots.load(snap_path, up_to=step)
                except (ValueError, OSError) as exc:
                    say(f"resume: {snap_path} is unreadable ({exc}); the attention snapshots start again here")
    every_snap = cfg.run.snapshot_interval

    def snapshot(at: int) -> None:
        if snaps is None:
            return
        if at % every_snap == 0 or at == cfg.run.steps:
            snaps.add(at, np.asarray(jax.device_get(_attention_fn(ctx)(state.params))))
            assert snap_path is not None  # set together with snaps
            snaps.save(snap_path)

    bar = None
    if progress_enabled() if progress is None else progress:
        bar = tqdm(
            total=cfg.run.steps,
            initial=step,
            desc=f"{cfg.model.name}/{cfg.optim.schedule}",
            unit="step",
            dynamic_ncols=True,
        )
    marks = _boundaries(cfg, stages)
    last = evals[-1] if evals else None
    stopped = False
    try:
        if first is not None:
            last = first
            evals.append(last)
            if writers is not None:
                writers.write(0, _row(None, last))
            snapshot(0)
        signals.deferred, signals.step = True, step  # from here a first signal stops at the next chunk boundary
        while step < cfg.run.steps and not stopped and not signals:
            if step >= stages[k].end:  # next stage: fresh optimiser over the newly trainable groups
                k += 1
                state = runner_for(k).init_state(state.params, step)
            runner = runner_for(k)
            target = next(m for m in marks if m > step)
            n = min(target - step, runner.max_chunk)
            state, losses = runner(state, seed_key, n, stages[k].length())
            step += n
            mean_loss = float(np.mean(np.asarray(losses)))
            if not math.isfinite(mean_loss):
                was = f"the held-out loss was finite, {evals[-1].loss:.4g}, at step {evals[-1].step}" if evals else ""
                cause = (
                    f"; lower the learning rate (lr={cfg.optim.lr:g})"
                    if train_means
                    else f"; already in the first steps: the model's hyper-parameters ({_hyper(cfg)}) may be too "
                    f"large for float32 gradients, or the learning rate (lr={cfg.optim.lr:g}) too large"
                )
                raise FloatingPointError(
                    f"training loss is {mean_loss} at step {step}"
                    + (f" ({was}): the steps diverged" if was else "")
                    + cause
                )
            train_means.append((step, mean_loss))
            evaluated = step % cfg.run.eval_every == 0 or step == cfg.run.steps
            if evaluated:
                last = evaluate(state.params, step, time.perf_counter() - t_start)
                evals.append(last)
                if out is not None:
                    write_json_atomic(out / "history.json", history().to_dict())
                if stop_when is not None and stop_when(last):
                    stopped = True
            if writers is not None:
                writers.write(step, _row(mean_loss, last if evaluated else None))
            snapshot(step)
            every = cfg.run.checkpoint_every
            if ckpt is not None and every and (step % every == 0 or step == cfg.run.steps):
                ckpt.save(step, state)
            signals.step = step
            if bar is not None:
                post = {"loss": f"{mean_loss:.4f}"}
                if last is not None and last.recovered is not None:
                    post["recovered"] = f"{last.recovered:.2f}"
                    post["parent_att"] = f"{last.mean_parent_attention:.3f}"
                bar.set_postfix(post, refresh=False)
                bar.update(n)
        if signals and step < cfg.run.steps:  # interrupted: keep the consistent state of the last chunk boundary
            where = ""
            if out is not None:
                if step > 0:
                    if ckpt is None:
                        ckpt = Checkpointer(out / "checkpoints")
                    if ckpt.latest_step() != step:
                        ckpt.save(step, state)
                    where = f"checkpoint in {out / 'checkpoints' / str(step)}; rerun with --resume to continue"
                write_json_atomic(out / "history.json", history(interrupted_at=step).to_dict())
            raise TrainingInterrupted(signals[0], step, where)
    finally:  # (signals stay deferred: one arriving during the final writes lets them finish)
        if bar is not None:
            bar.close()
        if ckpt is not None:
            ckpt.close()
        if writers is not None:
            writers.close()
    # a resumed run's wall time adds this call's to the earlier calls'; a finished run reloaded (no step trained
    # here) keeps its own
    wall_s = prior_wall + (time.perf_counter() - t_start if step > (restore_from or 0) else 0.0)
    penalty = smoothing_penalty(cfg, held.tokens, held.targets)
    smoothing = None
    if penalty is not None:
        smoothing = {**penalty, "ideal_excess_over_in_context": penalty["ideal_loss"] - held.in_context}
    done = history(wall_s=wall_s, steps_done=step, smoothing=smoothing)
    params = jax.device_get(state.params)
    if out is not None:
        write_json_atomic(out / "history.json", done.to_dict())
        save_weights(out / "weights.npz", params)
    return TrainResult(cfg, params, done, out)


def smoothing_penalty(config: TrainConfig, tokens, targets) -> dict | None:
    """What the reduced model's readout ``ŷ = (1-ε)·out + ε/S`` costs when its graph is learnt exactly
    (docs/theory.md §3, §7.5), on held-out ``tokens (B, T)`` and soft ``targets (B, S)``; ``None`` for other
    models.

    With every first-layer row on the parent and ``A2 → ∞``, ``out`` is the empirical law ``ĉ`` of the children of
    earlier copies of the query token (no pseudo-counts; the context's empirical unigram when there is no copy),
    so a target token absent from them gets only ``ε/S`` and costs ``−log(ε/S)`` nats per unit of target mass,
    where the in-context estimator's pseudo-counts cost far less. Returns ``eps``, ``S``, ``floor_nats`` =
    ``−log(ε/S)``, ``absent_mass`` = the mean target mass on tokens with ``ĉ_b = 0`` and ``ideal_loss`` = the mean
    cross-entropy of ``(1-ε)·ĉ + ε/S`` (nats): the loss the reduced model approaches at best."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.model.name != "reduced" or config.task.objective != "query":
        return None
    g, S, eps = config.graph, config.task.vocab, float(config.model.eps)
    tok = np.asarray(check_tokens("tokens", tokens, seq_len=g.seq_len, vocab_size=S))
    y = np.asarray(check_array("targets", targets, kind="real", ndim=2), np.float64)
    if y.shape != (tok.shape[0], S):
        raise ValueError(f"targets must have shape (B, S) = ({tok.shape[0]}, {S}), got {y.shape}")
    B = tok.shape[0]
    par = np.asarray(g.parents)
    q = tok[:, -1]
    rows = np.arange(B)
    counts = np.zeros((B, S))
    for i in np.nonzero(par >= 0)[0]:
        counts[rows, tok[:, i]] += tok[:, par[i]] == q
    uni = np.zeros((B, S))
    for i in range(tok.shape[1]):
        uni[rows, tok[:, i]] += 1.0
    total = counts.sum(1, keepdims=True)
    chat = np.where(total > 0, counts / np.maximum(total, 1.0), uni / tok.shape[1])
    yhat = (1.0 - eps) * chat + eps / S
    ce = -np.sum(np.where(y > 0, y * np.log(yhat), 0.0), axis=1)
    return {
        "eps": eps,
        "S": S,
        "floor_nats": float(-math.log(eps / S)),
        "absent_mass": float(np.mean(np.sum(y * (chat == 0), axis=1))),
        "ideal_loss": float(np.mean(ce)),
    }


def load_run(out: str | os.PathLike) -> TrainResult:
    """Read a results folder: config, final weights (as the model's pytree) and history."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a results folder path, got {type(out).__name__}")
    out = Path(out)
    missing = [f for f in ("config.json", "weights.npz", "history.json") if not (out / f).is_file()]
    if missing:
        raise ValueError(f"out {out} is not a finished results folder (missing {', '.join(missing)})")
    cfg = TrainConfig.from_json(json.loads((out / "config.json").read_text()))
    like = cfg.build_model().init(jax.random.key(0))
    params = load_weights(out / "weights.npz", like)
    history = History.from_dict(json.loads((out / "history.json").read_text()))
    return TrainResult(cfg, params, history, out)


def _resumable(cfg: TrainConfig, out: Path) -> TrainConfig:
    """``cfg`` checked against the config saved in ``out``: equal, or equal but for a larger ``steps`` (the run
    is extended: a layer-wise stage 1 keeps its saved length, and the last stage's cosine decay is recomputed
    over the new length, so an extended run is not the run that had the larger ``steps`` from the start)."""
    saved = TrainConfig.from_json(json.loads((out / "config.json").read_text()))
    if cfg == saved:
        return cfg
    diff = config_diff(saved, cfg)
    if set(diff) == {"steps"} and cfg.run.steps > saved.run.steps:
        if cfg.optim.schedule == "layerwise" and cfg.optim.stage1_steps is None:
            cfg = cfg.replace(stage1_steps=saved.stage1)
        return cfg
    shown = "; ".join(f"{k}: saved {a!r}, given {b!r}" for k, (a, b) in diff.items())
    raise ValueError(
        f"resume: the config differs from the one saved in {out / 'config.json'} ({shown}); only "
        f"a larger steps can extend a run"
    )
