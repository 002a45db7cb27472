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
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_callable, check_eps, check_int, check_positive_float, check_sample_memory, check_scale
from ..baselines import cross_entropy, entropy
from ..graphs import Graph
from ..models.reduced import DEFAULT_EPS
from ..task import make_task
from .adapters import MODELS, build_model
from .checkpoint import Checkpointer, load_weights, save_weights
from .loop import ChunkRunner, TrainState, fast_cpu_jit, task_sampler
from .metrics import graph_metrics, head_parents, induction_metrics
from .schedules import OPTIMIZERS, SCHEDULES, Stage

__all__ = ["TrainConfig", "TrainResult", "HeldOut", "train", "load_run", "default_config", "write_json_atomic",
           "TrainingInterrupted"]

#: Defaults per (model, schedule) (docs/theory.md §6; the measured settings behind them are in
#: docs/theory.md, C5). The first schedule listed for a model is its default.
DEFAULTS = {
    ("reduced", "layerwise"): dict(optimizer="sgd", lr=300.0, lr2=30.0, steps=200, stage1_steps=100, beta0=1.0),
    ("reduced", "joint"): dict(optimizer="sgd", lr=300.0, steps=200, beta0=1.0),
    ("disentangled", "layerwise"): dict(optimizer="sgd", lr=300.0, lr2=3.0, steps=300, stage1_steps=150, beta0=1.0,
                                        gamma=5.0),
    ("disentangled", "joint"): dict(optimizer="adamw", lr=0.1, steps=400),
    ("standard", "joint"): dict(optimizer="adamw", lr=1e-2, weight_decay=2e-4, steps=4096),
}
#: Peak learning rates of the paper's runs, used when the optimiser differs from the default.
PAPER_LR = {"sgd": 1.0, "adamw": 1e-2}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``graph`` is a :class:`~causal_grad.graphs.Graph` (forest: in-context task; DAG:
    multi-parent task). ``lr2`` is stage 2's peak learning rate (layer-wise; default ``lr``);
    ``stage1_steps`` defaults to half of ``steps``. ``beta0``: the held ``A2 = β0·I`` of stage 1 (reduced) or
    the induction initialisation's scale (disentangled layer-wise); ``gamma``: that initialisation's readout
    scale; ``init_scale``: ``N(0, init_scale²)`` initialisation of the disentangled model for joint training
    (0 = zeros); ``eps``: the reduced model's readout smoothing."""

    graph: Graph
    vocab: int = 10
    alpha: float = 0.1
    model: str = "reduced"
    heads: tuple[int, ...] = (1, 1)
    schedule: str = "layerwise"
    optimizer: str = "sgd"
    lr: float = 300.0
    lr2: Optional[float] = None
    steps: int = 200
    stage1_steps: Optional[int] = None
    batch: int = 1024
    seed: int = 0
    beta0: float = 1.0
    gamma: float = 5.0
    eps: float = DEFAULT_EPS
    init_scale: float = 0.0
    weight_decay: float = 0.0
    warmup: int = 0
    d_model: int = 64
    layers: int = 2
    std_heads: int = 1
    eval_every: int = 50
    checkpoint_every: int = 0
    log_every: int = 50
    eval_size: int = 8192
    eval_seed: int = 20240214

    def __post_init__(self):
        g = self.graph if isinstance(self.graph, Graph) else Graph(self.graph)
        object.__setattr__(self, "graph", g)
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        check_int("vocab", self.vocab, minimum=2)
        check_positive_float("alpha", self.alpha)
        check_positive_float("lr", self.lr)
        if self.lr2 is not None:
            check_positive_float("lr2", self.lr2)
        check_int("steps", self.steps, minimum=1)
        check_int("batch", self.batch, minimum=1)
        check_int("seed", self.seed, minimum=0)
        for name in ("eval_every", "log_every", "eval_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_sample_memory("eval_size", self.eval_size, self.seq_len, self.vocab, jnp.float32)
        check_scale("beta0", self.beta0, jnp.float32, allow_zero=True)
        check_positive_float("gamma", self.gamma, allow_zero=True)
        check_eps("eps", self.eps)
        check_positive_float("init_scale", self.init_scale, allow_zero=True)
        check_positive_float("weight_decay", self.weight_decay, allow_zero=True)
        if self.optimizer == "sgd" and self.weight_decay:
            raise ValueError("weight_decay applies to adamw only (plain GD follows the paper: none)")
        heads = tuple(self.heads)
        object.__setattr__(self, "heads", tuple(check_int(f"heads[{k}]", h, minimum=1) for k, h in enumerate(heads)))
        if not self.heads:
            raise ValueError("heads must list at least one layer")
        if self.schedule == "layerwise":
            if self.model == "standard":
                raise ValueError("schedule 'layerwise' is defined for the reduced and disentangled models; use "
                                 "'joint' for the standard transformer")
            if self.model == "disentangled" and len(self.heads) != 2:
                raise ValueError(f"the layer-wise schedule of the disentangled model needs two layers, got heads "
                                 f"{self.heads}")
            s1 = self.steps // 2 if self.stage1_steps is None else self.stage1_steps
            check_int("stage1_steps", s1, minimum=1, maximum=self.steps)
        if self.model == "reduced" and not self.graph.is_forest:
            raise ValueError("the reduced model needs a single-parent forest graph (one first-layer head)")
        if self.warmup:
            check_int("warmup", self.warmup, minimum=0, maximum=self.steps - 1)

    # ------------------------------------------------------------------ derived
    @property
    def seq_len(self) -> int:
        return self.graph.n + 1 if self.graph.is_forest else self.graph.n - 1

    def stages(self, group_names) -> list[Stage]:
        common = dict(optimizer=self.optimizer, weight_decay=self.weight_decay, warmup=self.warmup)
        if self.schedule == "joint":
            return [Stage("joint", 0, self.steps, tuple(group_names), lr=self.lr, **common)]
        s1 = self.steps // 2 if self.stage1_steps is None else self.stage1_steps
        out = [Stage("stage1", 0, s1, ("A1",), lr=self.lr, **{**common, "warmup": min(self.warmup, s1 - 1)})]
        if s1 < self.steps:
            rest = tuple(g for g in group_names if g != "A1")
            out.append(Stage("stage2", s1, self.steps - s1, rest, lr=self.lr2 or self.lr,
                             **{**common, "warmup": min(self.warmup, self.steps - s1 - 1)}))
        return out

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["graph"] = self.graph.to_json()
        d["heads"] = list(self.heads)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        g = d.pop("graph")
        parents = g["parents"] if g["kind"] == "forest" else [tuple(p) for p in g["parents"]]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"config has unknown fields {sorted(unknown)}")
        d["heads"] = tuple(d.get("heads", (1, 1)))
        return cls(graph=Graph(parents), **d)


def default_config(model: str, graph, **overrides) -> TrainConfig:
    """A :class:`TrainConfig` with the defaults of :data:`DEFAULTS` for ``model`` and its schedule (the first
    listed unless ``schedule`` is given), then ``overrides`` (``None`` values are ignored). Changing the
    optimiser without a learning rate uses the paper's (:data:`PAPER_LR`); changing ``steps`` without
    ``stage1_steps`` puts the stage boundary at half."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    given = {k: v for k, v in overrides.items() if v is not None}
    schedule = given.get("schedule") or next(s for (m, s) in DEFAULTS if m == model)
    if (model, schedule) not in DEFAULTS:
        raise ValueError(f"schedule {schedule!r} is not available for model {model!r} (choose from "
                         f"{', '.join(s for (m, s) in DEFAULTS if m == model)})")
    kw = dict(DEFAULTS[(model, schedule)], schedule=schedule)
    if "optimizer" in given and given["optimizer"] != kw["optimizer"]:
        kw.pop("weight_decay", None)
        if "lr" not in given:
            kw["lr"] = kw["lr2"] = PAPER_LR[given["optimizer"]] if given["optimizer"] in PAPER_LR else None
    if "steps" in given and "stage1_steps" not in given:
        kw.pop("stage1_steps", None)
    kw.update(given)
    if model == "disentangled" and max(kw.get("heads", (1, 1))) > 1 and "init_scale" not in given:
        kw["init_scale"] = 1e-4  # identical zero heads get identical gradients and never separate
    return TrainConfig(graph=graph, model=model, **kw)


# ---------------------------------------------------------------------- held-out evaluation
@dataclass
class HeldOut:
    """A fixed held-out set (key ``eval_seed``) with its baselines, all means over the same sequences the
    models are scored on: the in-context estimator's loss ("bayes"; the whole parent tuple for a DAG), the
    entropy floor ``E[H(π[q])]``, and in ``others`` the weaker references (unigram; for a DAG the estimators
    that match only parent ``m``, ``one_parent_m``)."""

    tokens: jax.Array
    targets: jax.Array
    bayes: float
    entropy_floor: float
    others: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, task, size: int, seed: int) -> "HeldOut":
        tokens, targets = task.sample(jax.random.key(seed), size)

        weaker = {"unigram": task.unigram}
        for m in range(len(getattr(task, "target_parents", ()))):
            weaker[f"one_parent_{m}"] = lambda t, m=m: task.one_parent(t, m)

        @jax.jit
        def baselines(tokens, targets):
            ce = {k: jnp.mean(cross_entropy(targets, f(tokens))) for k, f in weaker.items()}
            return jnp.mean(cross_entropy(targets, task.bayes(tokens))), jnp.mean(entropy(targets)), ce

        bayes, floor, ce = baselines(tokens, targets)
        return cls(tokens, targets, float(bayes), float(floor), {k: float(v) for k, v in ce.items()})


# ---------------------------------------------------------------------- the run
@dataclass
class TrainResult:
    config: TrainConfig
    params: object
    history: dict
    out: Optional[Path] = None

    @property
    def final(self) -> dict:
        return self.history["eval"][-1] if self.history["eval"] else {}


def write_json_atomic(path, obj) -> None:
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
    marks = {cfg.steps}
    for every in (cfg.eval_every, cfg.log_every, cfg.checkpoint_every):
        if every:
            marks.update(range(every, cfg.steps, every))
    marks.update(s.end for s in stages)
    return sorted(marks)


def _make_evaluator(cfg: TrainConfig, spec, task, held: HeldOut):
    att_tokens = held.tokens[:512]

    @fast_cpu_jit
    def readouts(p):
        ind = spec.induction(p) if spec.induction is not None else None
        return spec.loss(p, held.tokens, held.targets), spec.attention(p, att_tokens), ind

    g = cfg.graph
    n_graph = g.n if g.is_forest else g.n - 1

    def evaluate(params) -> dict:
        loss, att, ind = jax.device_get(readouts(params))
        out = {"loss": float(loss)}
        out["excess_over_bayes"] = out["loss"] - held.bayes
        att = np.asarray(att)
        if g.is_forest:
            out.update(graph_metrics(att, g))
            block = np.asarray(ind) if ind is not None else None
            out.update(induction_metrics(att, block, n_graph))
        else:
            out["heads"] = head_parents(att, Graph(g.parent_sets[:-1]))
        return out

    return evaluate


class _Context:
    """What a run needs besides its seed: task, model, stages, held-out set, evaluator and the compiled chunk
    runners. Cached per configuration (seed and logging intervals aside), so repeated runs in one process
    (several seeds, a resumed run) compile once."""

    def __init__(self, cfg: TrainConfig, mesh, max_chunk: int):
        self.task = make_task(cfg.graph, cfg.vocab, cfg.alpha)
        self.spec = build_model(cfg.model, cfg.vocab, cfg.seq_len, schedule=cfg.schedule, heads=cfg.heads,
                                beta0=cfg.beta0, gamma=cfg.gamma, eps=cfg.eps, init_scale=cfg.init_scale,
                                d_model=cfg.d_model, layers=cfg.layers, std_heads=cfg.std_heads)
        self.stages = cfg.stages(self.spec.group_names)
        self.held = HeldOut.build(self.task, cfg.eval_size, cfg.eval_seed)
        self.evaluate = _make_evaluator(cfg, self.spec, self.task, self.held)
        self._sample = task_sampler(self.task)
        self._cfg, self._mesh, self._max_chunk = cfg, mesh, max_chunk
        self._runners: dict[int, ChunkRunner] = {}
        self._example = jax.eval_shape(self.spec.init, jax.random.key(0))

    def runner(self, k: int) -> ChunkRunner:
        if k not in self._runners:
            st = self.stages[k]
            labels = self.spec.groups(self._example)
            self._runners[k] = ChunkRunner(self.spec.loss, self._sample, st.make(), self._example, labels,
                                           st.trainable, self._cfg.batch, mesh=self._mesh,
                                           max_chunk=self._max_chunk)
        return self._runners[k]


_CONTEXTS: dict = {}
_MAX_CONTEXTS = 4


def _context(cfg: TrainConfig, mesh, max_chunk: int) -> _Context:
    ignore = ("seed", "eval_every", "log_every", "checkpoint_every")
    key = (json.dumps({k: v for k, v in cfg.to_json().items() if k not in ignore}, sort_keys=True),
           None if mesh is None else tuple(d.id for d in mesh.devices.flat), max_chunk)
    if key not in _CONTEXTS:
        while len(_CONTEXTS) >= _MAX_CONTEXTS:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = _Context(cfg, mesh, max_chunk)
    return _CONTEXTS[key]


def train(config: TrainConfig, out=None, *, resume: bool = False, progress: bool = True, mesh=None,
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
    if not isinstance(config, (TrainConfig, dict)):
        raise TypeError(f"config must be a TrainConfig (or a dict of its fields), got {type(config).__name__}")
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")
    out = Path(out) if out is not None else None
    if resume and out is None:
        raise ValueError("resume needs out (the results folder of the run to continue)")
    max_chunk = check_int("max_chunk", max_chunk, minimum=1)
    if stop_when is not None:
        check_callable("stop_when", stop_when)
    if out is not None and not resume and ((out / "history.json").exists() or (out / "checkpoints").exists()):
        raise ValueError(f"out {out} already holds a run: pass resume=True (--resume) to continue it, or "
                         f"choose another folder")
    ctx = _context(cfg, mesh, max_chunk)
    spec, stages, held, evaluate = ctx.spec, ctx.stages, ctx.held, ctx.evaluate
    seed_key = jax.random.key(cfg.seed)
    params = spec.init(jax.random.fold_in(seed_key, 1))

    history = {"config": cfg.to_json(), "baselines": {"bayes": held.bayes, "entropy_floor": held.entropy_floor,
                                                        **held.others},
               "eval": [], "train": []}
    ckpt = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out / "config.json"
        if resume and cfg_path.exists():
            saved = json.loads(cfg_path.read_text())
            if saved != cfg.to_json():
                raise ValueError(f"resume: the config differs from the one saved in {cfg_path}")
        write_json_atomic(cfg_path, cfg.to_json())
        if cfg.checkpoint_every or (resume and (out / "checkpoints").is_dir()):  # (an interrupted run's)
            ckpt = Checkpointer(out / "checkpoints")

    runner_for = ctx.runner
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

        bar = tqdm(total=cfg.steps, initial=step, desc=f"{cfg.model}/{cfg.schedule}", unit="step",
                   dynamic_ncols=True)
    marks = _boundaries(cfg, stages)
    last = history["eval"][-1] if history["eval"] else {}
    stopped = False
    try:
        if step == 0 and not history["eval"]:
            last = {"step": 0, "time_s": time.perf_counter() - t_start, **evaluate(state.params)}
            history["eval"].append(last)
        while step < cfg.steps and not stopped and not signals:
            if step >= stages[k].end:  # next stage: fresh optimiser over the newly trainable groups
                k += 1
                state = runner_for(k).init_state(state.params, step)
            runner = runner_for(k)
            target = next(m for m in marks if m > step)
            n = min(target - step, runner.max_chunk)
            state, losses = runner(state, seed_key, n)
            step += n
            mean_loss = float(np.mean(np.asarray(losses)))
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"training loss is {mean_loss} at step {step}: lower the learning rate")
            history["train"].append([step, mean_loss])
            if step % cfg.eval_every == 0 or step == cfg.steps:
                last = {"step": step, "time_s": time.perf_counter() - t_start, **evaluate(state.params)}
                history["eval"].append(last)
                if out is not None:
                    write_json_atomic(out / "history.json", history)
                if stop_when is not None and stop_when(last):
                    stopped = True
            if ckpt is not None and cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                ckpt.save(step, state)
            if bar is not None:
                post = {"loss": f"{mean_loss:.4f}"}
                if "recovered" in last:
                    post["recovered"] = f"{last['recovered']:.2f}"
                    post["parent_att"] = f"{last['mean_parent_attention']:.3f}"
                bar.set_postfix(post, refresh=False)
                bar.update(n)
        if signals and step < cfg.steps:  # interrupted: keep the consistent state of the last chunk boundary
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


def load_run(out) -> TrainResult:
    """Read a results folder: config, final weights (as the model's pytree) and history."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a results folder path, got {type(out).__name__}")
    out = Path(out)
    missing = [f for f in ("config.json", "weights.npz", "history.json") if not (out / f).is_file()]
    if missing:
        raise ValueError(f"out {out} is not a finished results folder (missing {', '.join(missing)})")
    cfg = TrainConfig.from_json(json.loads((out / "config.json").read_text()))
    spec = build_model(cfg.model, cfg.vocab, cfg.seq_len, schedule=cfg.schedule, heads=cfg.heads,
                       d_model=cfg.d_model, layers=cfg.layers, std_heads=cfg.std_heads)
    like = spec.init(jax.random.key(0))
    params = load_weights(out / "weights.npz", like)
    history = json.loads((out / "history.json").read_text())
    return TrainResult(cfg, params, history, out)
