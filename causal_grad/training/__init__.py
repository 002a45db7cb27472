"""Fast, jit-compiled training of the reduced, disentangled and standard models (docs/theory.md §5, claims C5–C7).

* :mod:`.loop` — the compiled loop (sampling inside the step, many steps per call, data-parallel sharding);
* :mod:`.schedules` — optax optimisers with cosine schedules, layer-wise and joint stages;
* :mod:`.metrics` — parent attention, argmax recovery, SHD, induction and per-head scores;
* :mod:`.checkpoint` — orbax checkpoints and ``.npz`` weights;
* :mod:`.run` — :func:`train`: results folder, progress bar, exact resume;
* :mod:`.sharding` — the device mesh.
"""

from .adapters import MODELS, ModelSpec, build_model
from .checkpoint import Checkpointer, load_weights, save_weights
from .loop import (FAST_CPU_OPTIONS, ChunkRunner, TrainState, fast_cpu_jit, make_train_step, step_key,
                   task_sampler)
from .metrics import (diagonal_dominance, argmax_parents, graph_metrics, head_parents, induction_metrics,
                      parent_attention, previous_token_score, shd)
from .run import HeldOut, TrainConfig, TrainResult, default_config, load_run, train
from .schedules import Stage, make_optimizer
from .sharding import data_mesh

__all__ = ["MODELS", "ModelSpec", "build_model", "Checkpointer", "load_weights", "save_weights", "ChunkRunner",
           "TrainState", "FAST_CPU_OPTIONS", "fast_cpu_jit", "make_train_step", "step_key", "task_sampler", "diagonal_dominance", "argmax_parents",
           "graph_metrics", "head_parents", "induction_metrics", "parent_attention", "previous_token_score", "shd",
           "HeldOut", "TrainConfig", "TrainResult", "default_config", "load_run", "train", "Stage",
           "make_optimizer", "data_mesh"]
