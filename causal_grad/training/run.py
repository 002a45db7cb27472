"""Training runs people can keep: a config, a results folder, a progress bar, checkpoints and exact resume.

:func:`train` runs a :class:`TrainConfig` and, given ``out``, writes

* ``out/config.json`` — the configuration (enough to rerun it);
* ``out/history.json`` — held-out metrics every ``eval_every`` steps and the mean training loss of every chunk,
  rewritten atomically (temporary file, then ``os.replace``) after every evaluation;
* ``out/checkpoints/<step>/`` — orbax checkpoints of the whole training state every ``checkpoint_every`` steps;
* ``out/weights.npz`` — the final parameters.

``resume=True`` restores the newest checkpoint and continues. The batch of step ``t`` is drawn with a key that
depends on ``(seed, t)`` only and the chunk boundaries are fixed by the configuration, so a resumed run ends
with the same weights as an uninterrupted one (bit for bit on the same machine; see ``tests/test_training.py``).
A run without a checkpoint is trained again from step 0. ``resume=True`` with a config that differs from the
saved one only by a larger ``steps`` extends the run (the layer-wise stage 1 keeps its saved length; the last
stage's cosine decay is recomputed over the new length); any other difference raises a ``ValueError`` naming
the fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_callable, check_int, check_output_path
from ..baselines import cross_entropy, entropy
from ..graphs import Graph
from ..task import make_task
from .checkpoint import Checkpointer, load_weights, save_weights
from .config import TrainConfig, config_diff
from .loop import ChunkRunner, fast_cpu_jit, task_sampler
from .metrics import graph_metrics, head_parents, induction_metrics
from .schedules import Stage
from .sharding import data_mesh

__all__ = ["TrainResult", "HeldOut", "BaselineLosses", "train", "load_run", "write_json_atomic", "TrainingInterrupted"]

# ---------------------------------------------------------------------- held-out evaluation
@dataclass(frozen=True)
class BaselineLosses:
    """Held-out reference losses (nats, means over the held-out set): ``in_context`` — the in-context estimator
    (for a DAG: the one matching the whole parent tuple); ``entropy_floor`` — ``E[H(π[q])]``; ``others`` — the
    weaker references by name (``unigram``; for a DAG ``one_parent_m``)."""

    in_context: float
    entropy_floor: float
    others: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"in_context": self.in_context, "entropy_floor": self.entropy_floor, **self.others}


@dataclass(frozen=True, repr=False)
class HeldOut:
    """A fixed held-out set (key ``eval_seed``) with its baselines, all means over the same sequences the
    models are scored on: the in-context estimator's loss ``in_context`` (the whole parent tuple for a DAG),
    the entropy floor ``E[H(π[q])]``, and in ``others`` the weaker references (unigram; for a DAG the
    estimators that match only parent ``m``, ``one_parent_m``)."""

    tokens: jax.Array
    targets: jax.Array
    in_context: float
    entropy_floor: float
    others: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"HeldOut({self.tokens.shape[0]} sequences of {self.tokens.shape[1]}, in_context="
                f"{self.in_context:.4f}, entropy_floor={self.entropy_floor:.4f}, others={self.others})")

    def losses(self) -> BaselineLosses:
        return BaselineLosses(self.in_context, self.entropy_floor, dict(self.others))

    @classmethod
    def build(cls, task, size: int, seed: int) -> "HeldOut":
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


# ---------------------------------------------------------------------- the run
@dataclass(frozen=True, repr=False)
class TrainResult:
    """A finished (or loaded) run: its ``config``, final ``params``, ``history`` (the contents of
    ``history.json``: ``baselines``, ``eval`` entries, ``train`` ``[step, mean loss]`` pairs) and ``out`` folder."""

    config: TrainConfig
    params: object
    history: dict
    out: Optional[Path] = None

    @property
    def final(self) -> dict:
        """The last held-out evaluation (``{}`` when none)."""
        return self.history["eval"][-1] if self.history["eval"] else {}

    def __repr__(self) -> str:
        c, f = self.config, self.final
        n = sum(int(np.size(x)) for x in jax.tree.leaves(self.params))
        loss = f"loss {f['loss']:.4f}" if "loss" in f else "not evaluated"
        base = self.history.get("baselines", {})
        ref = f", in-context estimator {base['in_context']:.4f}" if "in_context" in base else ""
        return (f"TrainResult({c.model.name}/{c.optim.schedule}, {self.history.get('steps_done', f.get('step'))} "
                f"of {c.run.steps} steps × {c.run.batch}, {n} parameters; {loss}{ref}"
                f"{'' if self.out is None else f'; in {self.out}'})")


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


@contextlib.contextmanager
def _stop_on_signals():
    """Within the block SIGINT and SIGTERM only record themselves (the list it yields); the training loop stops at
    the next chunk boundary, where the state is consistent. A second signal stops at once (KeyboardInterrupt).
    Outside the main thread signals cannot be caught, and nothing is installed."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum, frame):
        if got:
            raise KeyboardInterrupt
        got.append(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _boundaries(cfg: TrainConfig, stages: list[Stage]) -> list[int]:
    r = cfg.run
    marks = {r.steps}
    for every in (r.eval_every, r.log_every, r.checkpoint_every):
        if every:
            marks.update(range(every, r.steps, every))
    marks.update(s.end for s in stages)
    return sorted(marks)


def _make_evaluator(cfg: TrainConfig, spec, task, held: HeldOut):
    att_tokens = held.tokens[:512]

    @fast_cpu_jit
    def readouts(p):
        ind = spec.induction(p) if spec.induction is not None else None
        return spec.loss(p, held.tokens, held.targets), spec.attention(p, att_tokens), ind

    g = cfg.graph
    n_graph = g.token_positions

    def evaluate(params) -> dict:
        loss, att, ind = jax.device_get(readouts(params))
        out = {"loss": float(loss)}
        out["excess_over_in_context"] = out["loss"] - held.in_context
        att = np.asarray(att)
        if g.is_forest:
            out.update(graph_metrics(att, g).to_dict())
            block = np.asarray(ind) if ind is not None else None
            out.update(induction_metrics(att, block, n_graph).to_dict())
        else:
            out["heads"] = head_parents(att, Graph(g.parent_sets[:-1])).to_dict()
        return out

    return evaluate


class _Context:
    """What a run needs besides its seed and length: task, model, held-out set, evaluator and the compiled chunk
    runners. Cached per configuration with the seed, the logging intervals, ``steps`` and ``stage1_steps`` left
    out (:func:`_context`): a stage's compiled chunk takes its schedule length at run time
    (:meth:`Stage.length <causal_grad.training.schedules.Stage.length>`), so repeated runs in one process (several
    seeds, other lengths, a resumed or extended run) compile once. The stages themselves are the run's own
    (``cfg.stages``); :meth:`runner` is keyed by what a stage's program depends on (:attr:`Stage.program`)."""

    def __init__(self, cfg: TrainConfig, mesh, max_chunk: int):
        self.task = make_task(cfg.graph, cfg.task.vocab, cfg.task.alpha)
        self.spec = cfg.build_model()
        self.held = _held_out(cfg, self.task)
        self.evaluate = _make_evaluator(cfg, self.spec, self.task, self.held)
        self._sample = task_sampler(self.task)
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
            self._runners[key] = ChunkRunner(self.spec.loss, self._sample, stage.make_fn(), self._example, labels,
                                             stage.trainable, self._cfg.run.batch, mesh=self._mesh,
                                             max_chunk=self._max_chunk)
        return self._runners[key]


_CONTEXTS: dict = {}
_MAX_CONTEXTS = 4
_HELD_OUT: dict = {}
_MAX_HELD_OUT = 4
#: Run fields a compiled context does not depend on (the seed, logging, and the lengths: run-time arguments).
_CONTEXT_IGNORES = ("seed", "eval_every", "log_every", "checkpoint_every", "steps")


def _held_out(cfg: TrainConfig, task) -> HeldOut:
    """The held-out set with its baselines, cached per (task, ``eval_size``, ``eval_seed``): shared by every
    model and optimiser trained on that task in this process."""
    key = (json.dumps(cfg.task.to_json(), sort_keys=True), cfg.run.eval_size, cfg.run.eval_seed)
    if key not in _HELD_OUT:
        while len(_HELD_OUT) >= _MAX_HELD_OUT:
            _HELD_OUT.pop(next(iter(_HELD_OUT)))
        _HELD_OUT[key] = HeldOut.build(task, cfg.run.eval_size, cfg.run.eval_seed)
    return _HELD_OUT[key]


def _default_mesh(batch: int):
    """Every visible device that the batch splits over evenly (``gcd(batch, #devices)`` of them): with several
    host CPU devices (:func:`causal_grad.devices.use_all_cores`, the command line's default) training is
    data-parallel over every core; on one device (or an accelerator) it is the single-device program."""
    devices = jax.devices()
    return data_mesh(devices[:math.gcd(batch, len(devices))])


def _context(cfg: TrainConfig, mesh, max_chunk: int) -> _Context:
    if mesh is None:
        mesh = _default_mesh(cfg.run.batch)
    d = cfg.to_json()
    d["run"] = {k: v for k, v in d["run"].items() if k not in _CONTEXT_IGNORES}
    d["optim"] = {k: v for k, v in d["optim"].items() if k != "stage1_steps"}
    key = (json.dumps(d, sort_keys=True),
           None if mesh is None else tuple(d.id for d in mesh.devices.flat), max_chunk)
    if key not in _CONTEXTS:
        while len(_CONTEXTS) >= _MAX_CONTEXTS:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = _Context(cfg, mesh, max_chunk)
    else:  # most recently used last (the cache drops the oldest first)
        _CONTEXTS[key] = _CONTEXTS.pop(key)
    return _CONTEXTS[key]


def train(config: TrainConfig, out: str | os.PathLike | None = None, *, resume: bool = False, progress: bool = True,
          mesh: jax.sharding.Mesh | None = None,
          stop_when: Callable[[dict], bool] | None = None, max_chunk: int = 100) -> TrainResult:
    """Run ``config``; see the module docstring for the results folder. ``stop_when(metrics)`` ends the run
    early after an evaluation (used by the benchmarks to time recovery). Returns the final parameters and
    the history.

    SIGINT/SIGTERM (in the main thread) stop the run at the end of the running chunk: the state is checkpointed
    in ``out/checkpoints/<step>`` and ``history.json`` written (``interrupted_at``), then
    :class:`TrainingInterrupted` is raised; ``resume=True`` continues to the same final weights."""
    with _stop_on_signals() as signals:
        return _train(config, out, resume=resume, progress=progress, mesh=mesh, stop_when=stop_when,
                      max_chunk=max_chunk, signals=signals)


def _train(config, out, *, resume, progress, mesh, stop_when, max_chunk, signals) -> TrainResult:
    t_start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (e.g. causal_grad.training.preset(...)), got "
                        f"{type(config).__name__}")
    cfg = config
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")
    out = check_output_path("out", out, kind="dir") if out is not None else None
    if resume and out is None:
        raise ValueError("resume needs out (the results folder of the run to continue)")
    max_chunk = check_int("max_chunk", max_chunk, minimum=1)
    if stop_when is not None:
        check_callable("stop_when", stop_when)
    if out is not None and not resume and ((out / "history.json").exists() or (out / "checkpoints").exists()):
        raise ValueError(f"out {out} already holds a run: pass resume=True (--resume) to continue it, or "
                         f"choose another folder")
    if resume and (out / "config.json").exists():
        cfg = _resumable(cfg, out)
    ctx = _context(cfg, mesh, max_chunk)
    spec, stages, held, evaluate = ctx.spec, ctx.stages(cfg), ctx.held, ctx.evaluate
    seed_key = jax.random.key(cfg.run.seed)
    params = spec.init(jax.random.fold_in(seed_key, 1))

    history = {"config": cfg.to_json(), "baselines": held.losses().to_dict(), "eval": [], "train": []}
    ckpt = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", cfg.to_json())
        # a run that kept no checkpoint has no state to continue from: resume then trains it from step 0
        if cfg.run.checkpoint_every or (resume and (out / "checkpoints").is_dir()):  # (an interrupted run's)
            ckpt = Checkpointer(out / "checkpoints")

    def runner_for(k: int):
        return ctx.runner(stages[k])
    step, k = 0, 0
    state = runner_for(0).init_state(params, 0)
    if resume and ckpt is not None and ckpt.latest_step() is not None:
        step = int(ckpt.latest_step())
        k = next(i for i, s in enumerate(stages) if s.start < step <= s.end)
        like = runner_for(k).init_state(params, 0)
        state = runner_for(k).place(ckpt.restore(step, like))
        hist_path = out / "history.json"
        if hist_path.exists():
            old = json.loads(hist_path.read_text())
            history["eval"] = [e for e in old.get("eval", []) if e["step"] <= step]
            history["train"] = [e for e in old.get("train", []) if e[0] <= step]

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.run.steps, initial=step, desc=f"{cfg.model.name}/{cfg.optim.schedule}", unit="step",
                   dynamic_ncols=True)
    marks = _boundaries(cfg, stages)
    last = history["eval"][-1] if history["eval"] else {}
    stopped = False
    try:
        if step == 0 and not history["eval"]:
            last = {"step": 0, "time_s": time.perf_counter() - t_start, **evaluate(state.params)}
            history["eval"].append(last)
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
                raise FloatingPointError(f"training loss is {mean_loss} at step {step}: lower the learning rate")
            history["train"].append([step, mean_loss])
            if step % cfg.run.eval_every == 0 or step == cfg.run.steps:
                last = {"step": step, "time_s": time.perf_counter() - t_start, **evaluate(state.params)}
                history["eval"].append(last)
                if out is not None:
                    write_json_atomic(out / "history.json", history)
                if stop_when is not None and stop_when(last):
                    stopped = True
            every = cfg.run.checkpoint_every
            if ckpt is not None and every and (step % every == 0 or step == cfg.run.steps):
                ckpt.save(step, state)
            if bar is not None:
                post = {"loss": f"{mean_loss:.4f}"}
                if "recovered" in last:
                    post["recovered"] = f"{last['recovered']:.2f}"
                    post["parent_att"] = f"{last['mean_parent_attention']:.3f}"
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
                history["interrupted_at"] = step
                write_json_atomic(out / "history.json", history)
            raise TrainingInterrupted(signals[0], step, where)
    finally:
        if bar is not None:
            bar.close()
        if ckpt is not None:
            ckpt.close()
    history["wall_s"] = time.perf_counter() - t_start
    history["steps_done"] = step
    params = jax.device_get(state.params)
    if out is not None:
        write_json_atomic(out / "history.json", history)
        save_weights(out / "weights.npz", params)
    return TrainResult(cfg, params, history, out)


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
    history = json.loads((out / "history.json").read_text())
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
    raise ValueError(f"resume: the config differs from the one saved in {out / 'config.json'} ({shown}); only "
                     f"a larger steps can extend a run")
