"""Fast, jit-compiled training of the registered models (docs/theory.md §5, claims C5–C7).

* :mod:`.config` — the layered configuration: :class:`TaskConfig`, the model's ``Config``, :class:`OptimConfig`,
  :class:`RunConfig`, composed into :class:`TrainConfig`;
* :mod:`.presets` — named configurations (``reduced``, ``disentangled``, ``standard``, ``fig2``, ``two-parent``…);
* :mod:`.loop` — the compiled loop (sampling inside the step, many steps per call, data-parallel sharding);
* :mod:`.schedules` — optax optimisers with cosine schedules, layer-wise and joint stages;
* :mod:`.metrics` — parent attention, argmax recovery, SHD, induction and per-head scores;
* :mod:`.history` — the typed records of ``history.json``: :class:`EvalRecord`, :class:`History`;
* :mod:`.checkpoint` — orbax checkpoints and ``.npz`` weights;
* :mod:`.run` — :func:`train`: results folder, progress bar, exact resume, extension;
* :mod:`.sharding` — the device mesh.

Models are built by :func:`causal_grad.models.build_model` (re-exported here).
"""

from ..models.registry import MODELS, Model, build_model, register_model
from .checkpoint import Checkpointer, load_weights, save_weights
from .config import OptimConfig, RunConfig, TaskConfig, TrainConfig, config_diff
from .history import EvalRecord, History
from .loop import FAST_CPU_OPTIONS, ChunkRunner, TrainState, fast_cpu_jit, make_train_step, step_key, task_sampler
from .metrics import (
    argmax_parents,
    diagonal_dominance,
    graph_metrics,
    head_parents,
    induction_metrics,
    parent_attention,
    previous_token_score,
    shd,
)
from .presets import PRESETS, Preset, default_config, preset, preset_for, preset_table
from .run import BaselineLosses, HeldOut, TrainResult, load_run, train
from .schedules import Stage, make_optimizer
from .sharding import data_mesh

__all__ = [
    "MODELS",
    "Model",
    "build_model",
    "register_model",
    "Checkpointer",
    "load_weights",
    "save_weights",
    "TaskConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "config_diff",
    "ChunkRunner",
    "TrainState",
    "FAST_CPU_OPTIONS",
    "fast_cpu_jit",
    "make_train_step",
    "step_key",
    "task_sampler",
    "diagonal_dominance",
    "argmax_parents",
    "graph_metrics",
    "head_parents",
    "induction_metrics",
    "parent_attention",
    "previous_token_score",
    "shd",
    "PRESETS",
    "Preset",
    "preset",
    "preset_for",
    "default_config",
    "preset_table",
    "BaselineLosses",
    "EvalRecord",
    "History",
    "HeldOut",
    "TrainResult",
    "load_run",
    "train",
    "Stage",
    "make_optimizer",
    "data_mesh",
]
