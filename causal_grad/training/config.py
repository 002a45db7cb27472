"""Layered training configuration (docs/theory.md §5): four small frozen objects composed into a
:class:`TrainConfig`.

* :class:`TaskConfig` — the graph, vocabulary ``S``, Dirichlet concentration ``α``, prior name, training
  ``objective`` (the query-only loss, or the next-token loss at every position of an n-gram task) and, for the
  next-token objective, the ``initial`` law of the first tokens;
* the model's own ``Config`` (:mod:`causal_grad.models.registry`: ``reduced.Config``, ``disentangled.Config``, …);
* :class:`OptimConfig` — optimiser and schedule: ``optimizer``, ``lr``, ``lr2``, ``schedule``, ``stage1_steps``,
  ``warmup``, ``weight_decay``, ``decay``, AdamW's ``b1``, ``b2``;
* :class:`RunConfig` — ``steps``, ``batch``, ``seed``, evaluation, checkpoints and logging.

Every value is checked once, when its object is built; :class:`TrainConfig` checks the rules that join layers
(the reduced model needs a forest; the layer-wise schedule trains a first layer of one head, ...). Named
starting points are in :mod:`causal_grad.training.presets`. ``TrainConfig.to_json()`` is what a run keeps in
``config.json``; :meth:`TrainConfig.from_json` reads it back, and also reads the flat format of earlier versions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._validate import (
    SEED_MAX,
    check_concentration,
    check_int,
    check_positive_float,
    check_probability,
    check_sample_memory,
    check_seed,
)
from ..graphs import Graph
from ..models.registry import MODELS, build_model, get_model, model_config
from ..ngram import NGRAM_INITIAL, NGramTask
from .schedules import ADAM_BETAS, DECAYS, OPTIMIZERS, SCHEDULES, Stage

__all__ = [
    "PRIORS",
    "OBJECTIVES",
    "TaskConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "CONFIG_FORMAT",
    "config_diff",
    "LAYERS",
    "FLOAT32_MAX",
]

#: Priors a training task can name (the training task samples Dirichlet(α) transition rows).
PRIORS = ("dirichlet",)
#: Training objectives (:attr:`TaskConfig.objective`): the query-only loss (the paper's) or the next-token loss at
#: every position (ICL-MC's; an n-gram task only).
OBJECTIVES = ("query", "next_token")
#: The ``format`` written into ``config.json``; files without it are the flat format of earlier versions.
CONFIG_FORMAT = 2
#: The largest finite float32 (training runs in float32: a real hyper-parameter beyond it would be ``inf``).
FLOAT32_MAX = 3.4028234663852886e38


def _graph_from_json(g: Any) -> Graph:
    if not isinstance(g, dict) or "parents" not in g:
        raise ValueError(f"config: graph must be {{'kind': ..., 'parents': [...]}}, got {g!r}")
    parents = g["parents"]
    return Graph([tuple(p) if isinstance(p, list) else p for p in parents])


@dataclass(frozen=True)
class TaskConfig:
    """The task: ``graph`` (a :class:`~causal_grad.graphs.Graph` or a parent list; a forest gives the in-context
    task, a multi-parent DAG the multi-parent task), ``vocab`` ``S ≥ 2``, Dirichlet concentration ``alpha`` (at
    least :func:`causal_grad._validate.concentration_floor` of float32, the dtype training samples in, about
    2.6e-37: below it the Dirichlet draws are NaN), ``prior`` (one of :data:`PRIORS`).

    ``objective`` (one of :data:`OBJECTIVES`): ``"query"`` (the default, the paper's) trains the loss at the query
    of the task :func:`causal_grad.task.make_task` builds from the graph; ``"next_token"`` trains the next-token
    loss at every position (ICL-MC's) on the n-gram task :class:`causal_grad.ngram.NGramTask` ``(vocab, k, T,
    alpha, initial=initial)`` (Dirichlet rows), which needs ``graph`` to be the n-gram graph
    :func:`causal_grad.ngram.ngram_graph` ``(T, k)`` (positions ``0 … k−1`` roots, position ``i ≥ k`` with
    parents ``i−k … i−1``; its last position is the query-form target, so ``T = n − 1`` tokens) and a model with
    ``logits_all``.

    ``initial`` (one of :data:`causal_grad.ngram.NGRAM_INITIAL`, next-token objective only): the law of the first
    ``k`` tokens. ``"uniform"`` (the default) i.i.d. uniform, under which the in-context n-gram estimator is exact
    Bayes (so the run also records the KL to ``exact_bayes``); ``"stationary"`` (Edelman et al.'s ICL-MC) the
    stationary law of the sequence's own chain, under which exact Bayes has no closed form and is not recorded
    (the in-context estimators themselves do not depend on the initial law). The query objective's task
    (:func:`causal_grad.task.make_task`) has its own root law, so ``initial`` other than ``"uniform"`` with it is
    refused."""

    graph: Graph
    vocab: int = 10
    alpha: float = 0.1
    prior: str = "dirichlet"
    objective: str = "query"
    initial: str = "uniform"

    def __post_init__(self):
        object.__setattr__(self, "graph", self.graph if isinstance(self.graph, Graph) else Graph(self.graph))
        object.__setattr__(self, "vocab", check_int("vocab", self.vocab, minimum=2))
        object.__setattr__(self, "alpha", check_concentration("alpha", self.alpha, "float32"))
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if not isinstance(self.objective, str) or self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        k = self.ngram_order if self.objective == "next_token" else None
        if self.objective == "next_token" and k is None:
            raise ValueError(
                "objective 'next_token' trains the next-token loss of an n-gram task, so graph must be an "
                "n-gram graph (causal_grad.ngram.ngram_graph(T, k): positions 0..k-1 roots, position i >= k "
                f"with parents i-k..i-1, at least k+2 positions), got parents {self.graph.parent_sets}"
            )
        if not isinstance(self.initial, str) or self.initial not in NGRAM_INITIAL:
            raise ValueError(f"initial must be one of {', '.join(NGRAM_INITIAL)}, got {self.initial!r}")
        if self.initial != "uniform" and self.objective != "next_token":
            raise ValueError(
                f"initial {self.initial!r} applies to objective 'next_token' only (the law of the n-gram task's "
                f"first k tokens); the query objective's task has its own root law: use initial 'uniform' (the "
                f"default) with objective {self.objective!r}"
            )
        if k is not None:  # next-token: the n-gram task's own rules (table size, lifted chain), at the door
            NGramTask(self.vocab, k, self.seq_len, alpha=self.alpha, initial=self.initial)

    @property
    def ngram_order(self) -> int | None:
        """``k`` when ``graph`` is :func:`causal_grad.ngram.ngram_graph` ``(n − 1, k)`` for some ``k ≥ 1``, else
        ``None``."""
        ps = self.graph.parent_sets
        k = sum(1 for p in ps if not p)
        if k < 1 or len(ps) < k + 2:
            return None
        want = tuple(() if i < k else tuple(range(i - k, i)) for i in range(len(ps)))
        return k if tuple(tuple(p) for p in ps) == want else None

    @property
    def seq_len(self) -> int:
        """``T``: :attr:`causal_grad.graphs.Graph.seq_len` for the query objective; for ``"next_token"`` the
        n-gram task's length ``n − 1`` (the graph's last position is the query-form target)."""
        if self.objective == "next_token":
            return self.graph.n - 1
        return self.graph.seq_len

    def to_json(self) -> dict:
        d = {"graph": self.graph.to_json(), "vocab": self.vocab, "alpha": self.alpha, "prior": self.prior}
        if self.objective != "query":  # the default is left out: config.json of a query run is unchanged
            d["objective"] = self.objective
        if self.initial != "uniform":  # likewise: config.json of a run with the uniform initial law is unchanged
            d["initial"] = self.initial
        return d


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule. ``schedule``: ``"layerwise"`` (stage 1 trains the first attention layer for
    ``stage1_steps`` steps at peak ``lr``, stage 2 the rest at ``lr2``) or ``"joint"`` (everything at ``lr``).
    ``stage1_steps=None``: half of the run's steps; ``lr2=None``: ``lr``. ``optimizer``: ``"sgd"`` (plain GD,
    no weight decay) or ``"adamw"``; after ``warmup`` linear warm-up steps, ``decay`` (one of
    :data:`~causal_grad.training.schedules.DECAYS`): ``"cosine"`` to 0 over each stage (the default, the paper's)
    or ``"constant"`` at the peak learning rate (the public figure-9 notebook's plain SGD at lr 1;
    docs/paper_settings.md). ``b1``, ``b2``: AdamW's moment decay rates, ``0 ≤ b < 1`` (optax's defaults 0.9 and
    0.999; Edelman et al.'s ICL-MC uses 0.9, 0.95); plain GD has no moments and takes only the defaults."""

    schedule: str = "layerwise"
    optimizer: str = "sgd"
    lr: float = 300.0
    lr2: float | None = None
    stage1_steps: int | None = None
    warmup: int = 0
    weight_decay: float = 0.0
    decay: str = "cosine"
    b1: float = ADAM_BETAS[0]
    b2: float = ADAM_BETAS[1]

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        object.__setattr__(self, "lr", check_positive_float("lr", self.lr))
        if self.lr2 is not None:
            object.__setattr__(self, "lr2", check_positive_float("lr2", self.lr2))
        if self.stage1_steps is not None:
            object.__setattr__(self, "stage1_steps", check_int("stage1_steps", self.stage1_steps, minimum=1))
        object.__setattr__(self, "warmup", check_int("warmup", self.warmup, minimum=0))
        object.__setattr__(
            self, "weight_decay", check_positive_float("weight_decay", self.weight_decay, allow_zero=True)
        )
        if self.optimizer == "sgd" and self.weight_decay:
            raise ValueError("weight_decay applies to adamw only (plain GD follows the paper: none)")
        if not isinstance(self.decay, str) or self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {self.decay!r}")
        for name in ("b1", "b2"):
            object.__setattr__(self, name, check_probability(name, getattr(self, name), open_high=True))
        if self.optimizer == "sgd" and (self.b1, self.b2) != ADAM_BETAS:
            raise ValueError(
                f"b1, b2 apply to adamw only (plain GD has no moment estimates): leave them at "
                f"{ADAM_BETAS[0]}, {ADAM_BETAS[1]} with optimizer 'sgd', got b1={self.b1}, b2={self.b2}"
            )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """``steps`` and ``batch`` (sequences per step); ``seed`` of the initialisation and of every batch; a held-out
    set of ``eval_size`` sequences (key ``eval_seed``) scored every ``eval_every`` steps; orbax checkpoints every
    ``checkpoint_every`` steps (0: none); the training loss logged every ``log_every`` steps. ``seed`` and
    ``eval_seed`` must fit what ``jax.random.key`` accepts (at most ``2**63 - 1``).

    ``snapshot_every``: the first-layer attention is recorded into ``out/attention.npz`` (the animation of
    ``causal-grad plot``) at step 0, every ``snapshot_every`` steps and at the end; ``None`` (the default): every
    :attr:`snapshot_interval` ``= min(eval_every, max(1, steps // 20))`` steps (about 20 frames, and at every
    held-out evaluation when ``eval_every`` divides ``steps``); ``0``: never. Snapshots are kept only by a run with an
    ``out`` folder."""

    steps: int = 200
    batch: int = 1024
    seed: int = 0
    eval_every: int = 50
    eval_size: int = 8192
    eval_seed: int = 20240214
    checkpoint_every: int = 0
    log_every: int = 50
    snapshot_every: int | None = None

    def __post_init__(self):
        for name in ("steps", "batch", "eval_every", "eval_size", "log_every"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0, maximum=SEED_MAX))
        if self.snapshot_every is not None:
            object.__setattr__(self, "snapshot_every", check_int("snapshot_every", self.snapshot_every, minimum=0))
        object.__setattr__(self, "eval_seed", check_seed("eval_seed", self.eval_seed))
        object.__setattr__(self, "checkpoint_every", check_int("checkpoint_every", self.checkpoint_every, minimum=0))

    @property
    def snapshot_interval(self) -> int:
        """Steps between attention snapshots (``0``: none): ``snapshot_every``, or by default
        ``min(eval_every, max(1, steps // 20))``."""
        if self.snapshot_every is not None:
            return self.snapshot_every
        return min(self.eval_every, max(1, self.steps // 20))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


#: Field name -> layer, for flat overrides (:meth:`TrainConfig.replace`); model fields go to the model's Config.
LAYERS = {
    **{f.name: "task" for f in dataclasses.fields(TaskConfig)},
    **{f.name: "optim" for f in dataclasses.fields(OptimConfig)},
    **{f.name: "run" for f in dataclasses.fields(RunConfig)},
}


@dataclass(frozen=True)
class TrainConfig:
    """One training run: ``task``, ``model`` (a registered model's ``Config``), ``optim`` and ``run``.

    Rules joining the layers, checked here: the reduced model needs a forest; the layer-wise schedule needs a
    model with a first attention layer group ``A1`` and, for the disentangled model, the induction
    initialisation and one head per layer (with several heads in a layer, the heads beyond the first never
    receive a gradient in stage 1 and stay uniform: train those jointly); ``stage1_steps < steps`` is not
    required (``stage1_steps = steps`` is stage 1 only) but ``stage1_steps ≤ steps`` and ``warmup < steps`` are.
    The graph needs at least two token positions (``T ≥ 3`` for a forest): with one, the first layer has nothing
    to choose between and the graph metrics are undefined. Every real hyper-parameter (the model's ``beta0``,
    ``gamma``, …, the learning rates) must lie within the float32 range (:data:`FLOAT32_MAX`), the dtype training
    runs in."""

    task: TaskConfig
    model: Any = field(default_factory=lambda: get_model("reduced").Config())
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        if not isinstance(self.task, TaskConfig):
            raise TypeError(f"task must be a TaskConfig, got {type(self.task).__name__}")
        name = getattr(self.model, "name", None)
        if name not in MODELS or not isinstance(self.model, MODELS[name].Config):
            raise TypeError(
                f"model must be the Config of a registered model ({', '.join(MODELS)}), got {type(self.model).__name__}"
            )
        if not isinstance(self.optim, OptimConfig):
            raise TypeError(f"optim must be an OptimConfig, got {type(self.optim).__name__}")
        if not isinstance(self.run, RunConfig):
            raise TypeError(f"run must be a RunConfig, got {type(self.run).__name__}")
        steps, o, g = self.run.steps, self.optim, self.task.graph
        if g.token_positions < 2:
            raise ValueError(
                f"graph: training needs at least 2 token positions (T >= 3 for a forest), got "
                f"{g.token_positions} (n = {g.n} graph positions, T = {g.seq_len}): with one position "
                f"the first attention layer has nothing to choose between"
            )
        for layer in (self.model, self.optim):
            for f in dataclasses.fields(layer):
                v = getattr(layer, f.name)
                if isinstance(v, float) and not abs(v) <= FLOAT32_MAX:
                    raise ValueError(
                        f"{f.name} = {v:.4g} is outside the float32 range (|x| <= {FLOAT32_MAX:.4g}): "
                        f"training runs in float32, where it would be inf"
                    )
        T, S = self.task.seq_len, self.task.vocab
        # next-token: the transition tensors (S^k rows) and the per-position targets (T rows of S) per sequence
        rows = {} if self.task.objective == "query" else {"table_rows": S ** (self.task.ngram_order or 1) + T}
        check_sample_memory("eval_size", self.run.eval_size, T, S, "float32", **rows)
        check_sample_memory("batch", self.run.batch, T, S, "float32", **rows)  # each step's batch
        if self.task.objective == "next_token" and not callable(getattr(get_model(name), "logits_all", None)):
            raise ValueError(
                f"objective 'next_token' needs the prediction at every position, and model {name!r} defines "
                f"no logits_all: train it with objective 'query'"
            )
        if name == "reduced" and not g.is_forest:
            raise ValueError("the reduced model needs a single-parent forest graph (one first-layer head)")
        if o.warmup:
            check_int("warmup", o.warmup, minimum=0, maximum=steps - 1)
        if o.schedule == "layerwise":
            groups = get_model(name).group_names(self.model)
            if "A1" not in groups:
                raise ValueError(
                    f"schedule 'layerwise' trains the first attention layer (group A1) first; model "
                    f"{name!r} has groups {', '.join(groups)}: use schedule 'joint'"
                )
            if name == "disentangled":
                heads = self.model.heads
                if max(heads) > 1:
                    raise ValueError(
                        f"schedule 'layerwise' with several heads in a layer (heads {heads}): stage 1 "
                        f"trains layer 1 against the induction start, which reads first-layer head 0 "
                        f"only, so the other heads would stay uniform; use schedule 'joint' (preset "
                        f"'two-parent') or one head per layer"
                    )
                if self.model.init != "induction":
                    raise ValueError(
                        f"schedule 'layerwise' of the disentangled model starts from init 'induction' "
                        f"(got init {self.model.init!r}): stage 1 needs the held induction readout"
                    )
            check_int("stage1_steps", self.stage1, minimum=1, maximum=steps)

    # ------------------------------------------------------------------ derived
    @property
    def graph(self) -> Graph:
        return self.task.graph

    @property
    def seq_len(self) -> int:
        """``T`` (:attr:`TaskConfig.seq_len`)."""
        return self.task.seq_len

    @property
    def stage1(self) -> int:
        """Stage 1's length in steps (layer-wise): ``stage1_steps``, or half of ``steps`` when unset."""
        return self.run.steps // 2 if self.optim.stage1_steps is None else self.optim.stage1_steps

    def build_model(self):
        """The :class:`~causal_grad.models.registry.Model` of this run (:func:`causal_grad.models.build_model`)."""
        return build_model(self.model, self.task.vocab, self.seq_len)

    def stages(self, group_names) -> list[Stage]:
        o, steps = self.optim, self.run.steps
        common: dict[str, Any] = dict(
            optimizer=o.optimizer, weight_decay=o.weight_decay, warmup=o.warmup, decay=o.decay, b1=o.b1, b2=o.b2
        )
        if o.schedule == "joint":
            return [Stage("joint", 0, steps, tuple(group_names), lr=o.lr, **common)]
        s1 = self.stage1
        out = [Stage("stage1", 0, s1, ("A1",), lr=o.lr, **{**common, "warmup": min(o.warmup, s1 - 1)})]
        if s1 < steps:
            rest = tuple(g for g in group_names if g != "A1")
            out.append(
                Stage(
                    "stage2",
                    s1,
                    steps - s1,
                    rest,
                    lr=o.lr2 or o.lr,
                    **{**common, "warmup": min(o.warmup, steps - s1 - 1)},
                )
            )
        return out

    # ------------------------------------------------------------------ flat views and overrides
    def flat(self) -> dict:
        """Every field by its own name (``model`` = the model's name): what the CLI's flags set."""
        m = {f.name: getattr(self.model, f.name) for f in dataclasses.fields(self.model) if f.init}
        return {
            **{f.name: getattr(self.task, f.name) for f in dataclasses.fields(self.task)},
            "model": self.model.name,
            **m,
            **dataclasses.asdict(self.optim),
            **dataclasses.asdict(self.run),
        }

    def replace(self, **fields: Any) -> TrainConfig:
        """A copy with ``fields`` changed, each by its own name (``lr=…``, ``steps=…``, ``heads=…``, ``graph=…``);
        ``model="<name>"`` switches to that model's default ``Config`` (then its fields apply). Unknown names
        raise a ``TypeError`` naming them."""
        fields = dict(fields)
        model = self.model
        if "model" in fields:
            new = fields.pop("model")
            if not isinstance(new, str):
                model, new = new, None
            elif new != model.name:
                model = model_config(new)
        layers: dict[str, dict] = {"task": {}, "optim": {}, "run": {}, "model": {}}
        model_fields = {f.name for f in dataclasses.fields(model) if f.init}
        unknown = []
        for k, v in fields.items():
            if k in LAYERS:
                layers[LAYERS[k]][k] = v
            elif k in model_fields:
                layers["model"][k] = v
            else:
                unknown.append(k)
        if unknown:
            raise TypeError(
                f"no config field(s) {', '.join(sorted(unknown))} for model {model.name!r} (fields: "
                f"{', '.join(sorted([*LAYERS, *model_fields]))})"
            )
        return TrainConfig(
            task=dataclasses.replace(self.task, **layers["task"]),
            model=dataclasses.replace(model, **layers["model"]),
            optim=dataclasses.replace(self.optim, **layers["optim"]),
            run=dataclasses.replace(self.run, **layers["run"]),
        )

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        m = {"name": self.model.name}
        for f in dataclasses.fields(self.model):
            if f.init:
                v = getattr(self.model, f.name)
                m[f.name] = list(v) if isinstance(v, tuple) else v
        return {
            "format": CONFIG_FORMAT,
            "task": self.task.to_json(),
            "model": m,
            "optim": self.optim.to_json(),
            "run": self.run.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        """Read :meth:`to_json`'s dict, or the flat ``config.json`` of earlier versions (fields ``model``,
        ``schedule``, ``lr``, … side by side); anything else raises a ``ValueError`` saying what is wrong."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict (the contents of config.json), got {type(d).__name__}")
        if "format" not in d:
            return _from_flat(d)
        if d["format"] != CONFIG_FORMAT:
            raise ValueError(
                f"config: format {d['format']!r} is not readable by this version (reads "
                f"{CONFIG_FORMAT} and the flat format before it)"
            )
        missing = [k for k in ("task", "model", "optim", "run") if k not in d]
        if missing:
            raise ValueError(f"config: missing section(s) {', '.join(missing)}")
        t = dict(d["task"])
        task = TaskConfig(graph=_graph_from_json(t.pop("graph", None)), **_known(TaskConfig, t, "task"))
        m = dict(d["model"])
        name = m.pop("name", None)
        cls_m = get_model(name).Config
        m = _known(cls_m, m, "model")
        for f in dataclasses.fields(cls_m):
            if isinstance(f.default, tuple) and isinstance(m.get(f.name), list):
                m[f.name] = tuple(m[f.name])
        return cls(
            task=task,
            model=cls_m(**m),
            optim=OptimConfig(**_known(OptimConfig, d["optim"], "optim")),
            run=RunConfig(**_known(RunConfig, d["run"], "run")),
        )


def _known(klass, d: dict, section: str) -> dict:
    known = {f.name for f in dataclasses.fields(klass) if f.init}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"config: unknown field(s) {', '.join(unknown)} in section {section!r}")
    return dict(d)


#: The flat format's fields (before the layered configuration).
_FLAT = (
    "graph",
    "vocab",
    "alpha",
    "model",
    "heads",
    "schedule",
    "optimizer",
    "lr",
    "lr2",
    "steps",
    "stage1_steps",
    "batch",
    "seed",
    "beta0",
    "gamma",
    "eps",
    "init_scale",
    "weight_decay",
    "warmup",
    "d_model",
    "layers",
    "std_heads",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "eval_size",
    "eval_seed",
)


def _from_flat(d: dict) -> TrainConfig:
    """The flat config of earlier versions: the model's fields were side by side with the rest, and the
    disentangled initialisation followed from the schedule (layer-wise: induction; joint: zeros, or normal
    with ``init_scale``)."""
    unknown = sorted(set(d) - set(_FLAT))
    if unknown or "graph" not in d or "model" not in d:
        raise ValueError(
            f"config is neither the layered format (with 'format': {CONFIG_FORMAT}) nor the flat "
            f"format of earlier versions (unknown fields {unknown}; graph and model required)"
        )
    name, sched = d["model"], d.get("schedule", "layerwise")
    if name == "reduced":
        model = model_config("reduced", beta0=d.get("beta0", 1.0), eps=d.get("eps", 1e-3))
    elif name == "disentangled":
        scale = d.get("init_scale", 0.0)
        init = "induction" if sched == "layerwise" else ("normal" if scale else "zeros")
        model = model_config(
            "disentangled",
            heads=tuple(d.get("heads", (1, 1))),
            init=init,
            init_scale=scale if init == "normal" else 0.0,
            beta0=d.get("beta0", 1.0),
            gamma=d.get("gamma", 5.0),
        )
    elif name == "standard":
        model = model_config(
            "standard", d_model=d.get("d_model", 64), layers=d.get("layers", 2), heads=d.get("std_heads", 1)
        )
    else:
        raise ValueError(
            f"config: model must be one of reduced, disentangled, standard in the flat format, got {name!r}"
        )
    pick = lambda klass: {f.name: d[f.name] for f in dataclasses.fields(klass) if f.name in d}  # noqa: E731
    task = pick(TaskConfig)
    task["graph"] = _graph_from_json(task["graph"])
    return TrainConfig(
        task=TaskConfig(**task), model=model, optim=OptimConfig(**pick(OptimConfig)), run=RunConfig(**pick(RunConfig))
    )


def config_diff(a: TrainConfig, b: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """The fields whose values differ, by flat name: ``{name: (a's value, b's value)}``."""
    for name, c in (("a", a), ("b", b)):
        if not isinstance(c, TrainConfig):
            raise TypeError(f"{name} must be a TrainConfig, got {type(c).__name__}")
    fa, fb = a.flat(), b.flat()
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
