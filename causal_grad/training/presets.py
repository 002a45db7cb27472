"""Named training presets (docs/theory.md §5, §6): each a complete :class:`~causal_grad.training.config.TrainConfig`
but for the graph, written out in full, with no rule applied behind the caller's back.

* ``reduced``, ``disentangled`` — the fast layer-wise runs (plain GD: stage 1 trains the first layer against the
  held induction start, stage 2 the rest); ``reduced-joint``, ``disentangled-joint`` — their joint
  counterparts; ``standard`` — the standard transformer with AdamW (the paper's figure 8);
* ``fig2`` — the paper's figure-2 run: disentangled heads [1, 1] from zero, joint plain GD at lr 1 with a cosine
  decay, 2^17 steps of 1024 sequences, on the chain of 19 positions (T = 20), S = 10, α = 0.1;
* ``two-parent`` — the paper's figures 5 and 7: the two-parent DAG of 32 tokens plus target, S = 5, heads
  [2, 1] from ``N(0, 1e-4²)``, joint AdamW (lr 1e-2, weight decay 1e-4), 2^16 steps of 1024.

:func:`preset` builds one, with a graph and any field overridden by its own name:
``preset("disentangled", chain(19), steps=600)``. :func:`preset_table` is the table ``causal-grad train --help``
prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..graphs import Graph, named_graph
from ..models import disentangled, reduced, standard
from .config import OptimConfig, RunConfig, TaskConfig, TrainConfig

__all__ = ["Preset", "PRESETS", "preset", "preset_for", "default_config", "preset_table"]


@dataclass(frozen=True)
class Preset:
    """A named configuration: the model's Config, optimiser, run and task settings, and the graph the CLI uses
    when none is given (``graph`` family and ``n``)."""

    name: str
    description: str
    model: Any
    optim: OptimConfig
    run: RunConfig
    vocab: int = 10
    alpha: float = 0.1
    graph: tuple[str, int] = ("random-tree", 19)

    def config(self, graph: Graph | None = None) -> TrainConfig:
        """The preset as a :class:`TrainConfig` on ``graph`` (default: its own graph family and ``n``, seed 0)."""
        g = graph if graph is not None else named_graph(self.graph[0], self.graph[1])
        return TrainConfig(TaskConfig(g, self.vocab, self.alpha), self.model, self.optim, self.run)


def _presets(*ps: Preset) -> dict[str, Preset]:
    return {p.name: p for p in ps}


#: Presets by name (the first listed for a model and schedule is what :func:`preset_for` returns).
PRESETS: dict[str, Preset] = _presets(
    Preset(
        "reduced",
        "reduced model, layer-wise plain GD (stage 1: A1 against A2 = beta0*I; stage 2: A2)",
        reduced.Config(beta0=1.0),
        OptimConfig("layerwise", "sgd", lr=300.0, lr2=30.0),
        RunConfig(steps=200),
    ),
    Preset(
        "reduced-joint",
        "reduced model, joint plain GD from A1 = 0, A2 = beta0*I",
        reduced.Config(beta0=1.0),
        OptimConfig("joint", "sgd", lr=300.0),
        RunConfig(steps=200),
    ),
    Preset(
        "disentangled",
        "disentangled [1,1], layer-wise plain GD from the induction start (beta0, gamma)",
        disentangled.Config(heads=(1, 1), init="induction", beta0=1.0, gamma=5.0),
        OptimConfig("layerwise", "sgd", lr=300.0, lr2=3.0),
        RunConfig(steps=300),
    ),
    Preset(
        "disentangled-joint",
        "disentangled [1,1] from zero, joint AdamW",
        disentangled.Config(heads=(1, 1), init="zeros"),
        OptimConfig("joint", "adamw", lr=0.1),
        RunConfig(steps=400),
    ),
    Preset(
        "standard",
        "standard transformer (d_model 64, 2 layers, 1 head), joint AdamW (figure 8)",
        standard.Config(),
        OptimConfig("joint", "adamw", lr=1e-2, weight_decay=2e-4),
        RunConfig(steps=4096),
    ),
    Preset(
        "fig2",
        "the paper's figure 2: disentangled [1,1] from zero, joint plain GD lr 1, 2^17 steps x 1024",
        disentangled.Config(heads=(1, 1), init="zeros"),
        OptimConfig("joint", "sgd", lr=1.0),
        RunConfig(
            steps=1 << 17,
            batch=1024,
            eval_size=1 << 16,
            eval_every=1 << 11,
            log_every=1 << 11,
            checkpoint_every=1 << 14,
        ),
        graph=("chain", 19),
    ),
    Preset(
        "two-parent",
        "the paper's figures 5/7: two-parent DAG, S=5, heads [2,1] from N(0, 1e-4^2), joint AdamW, 2^16 steps x 1024",
        disentangled.Config(heads=(2, 1), init="normal", init_scale=1e-4),
        OptimConfig("joint", "adamw", lr=1e-2, weight_decay=1e-4),
        RunConfig(
            steps=1 << 16,
            batch=1024,
            eval_size=1 << 16,
            eval_every=1 << 11,
            log_every=1 << 11,
            checkpoint_every=1 << 13,
        ),
        vocab=5,
        graph=("two-parent", 33),
    ),
)


def _check_name(name: Any) -> Preset:
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"name: preset must be one of {', '.join(PRESETS)}, got {name!r}")
    return PRESETS[name]


def preset(name: str, graph: Graph | None = None, **fields: Any) -> TrainConfig:
    """The preset ``name`` (one of :data:`PRESETS`) on ``graph`` (default: the preset's graph), then ``fields``
    overridden by their own names (:meth:`TrainConfig.replace`)."""
    p = _check_name(name)
    if graph is not None and not isinstance(graph, Graph):
        graph = Graph(graph)
    cfg = p.config(graph)
    return cfg.replace(**fields) if fields else cfg


def preset_for(model: str, schedule: str | None = None) -> str:
    """The name of the fast preset of ``model`` with ``schedule`` (default: the model's first preset)."""
    for p in PRESETS.values():
        if p.model.name == model and p.name.split("-")[0] == model and schedule in (None, p.optim.schedule):
            return p.name
    avail = sorted({p.optim.schedule for p in PRESETS.values() if p.model.name == model})
    if not avail:
        raise ValueError(
            f"model must be one of {', '.join(sorted({p.model.name for p in PRESETS.values()}))}, got {model!r}"
        )
    raise ValueError(f"schedule must be one of {', '.join(avail)} for model {model!r}, got {schedule!r}")


def default_config(model: str, graph: Graph, *, schedule: str | None = None, **fields: Any) -> TrainConfig:
    """``preset(preset_for(model, schedule), graph, **fields)``, ignoring ``None`` values in ``fields``: the
    fast preset of a model and schedule, overridden field by field (nothing else is changed)."""
    return preset(preset_for(model, schedule), graph, **{k: v for k, v in fields.items() if v is not None})


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return "half" if v is None else str(v)


def preset_table() -> str:
    """Every preset with every field's value (task, model, optimiser, run), as plain text for ``--help``."""
    lines = []
    for p in PRESETS.values():
        m = {f.name: getattr(p.model, f.name) for f in dataclasses.fields(p.model) if f.init}
        o, r = dataclasses.asdict(p.optim), dataclasses.asdict(p.run)
        o = {k: ("= lr" if k == "lr2" and v is None else v) for k, v in o.items()}
        lines.append(f"{p.name}: {p.description}")
        lines.append(f"    task: graph {p.graph[0]} --n {p.graph[1]}, vocab {p.vocab}, alpha {_fmt(p.alpha)}")
        lines.append(f"    model {p.model.name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()))
        lines.append("    optim: " + ", ".join(f"{k} {_fmt(v)}" for k, v in o.items()))
        lines.append("    run: " + ", ".join(f"{k} {_fmt(v)}" for k, v in r.items()))
    return "\n".join(lines)
