"""Gradient descent on the **exact** population loss of the reduced model (docs/theory.md §5): the dynamics the paper's
theorem is about, with no sampling noise.

The population is uniform over a finite list of transition matrices ``π_1 … π_k`` (as in
:func:`causal_grad.exact_population_gradient`, which supplies every gradient, exactly, in float64). Schedules:

* ``"layerwise"`` (the proof's): stage 1 runs ``A1 ← A1 − η ∂L/∂A1`` for ``steps`` steps with ``A2 = β0·I``
  held; stage 2 freezes ``A1`` and runs ``A2 ← A2 − η₂ ∂L/∂A2`` for ``stage2_steps`` steps;
* ``"joint"``: both matrices from ``A1 = 0``, ``A2 = β0·I`` (``β0 = 0`` is "from zero"), updated together.

The trajectory records ``θ_0, θ_1, …`` (every ``record_every`` steps and the last), the loss at each recorded
point, and the stage. Step ``k`` of stage 1 equals ``θ_0 − η Σ_{t<k} ∇L(θ_t)``; in particular the first step
is ``−η`` times the exact gradient at initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jax.typing import ArrayLike

from ._validate import check_int, check_positive_float, check_scale
from .gradients import exact_population_gradient
from .gradients.enumerate import check_enumerable
from .models.reduced import DEFAULT_EPS
from .task import InContextTask

__all__ = ["PopulationTrajectory", "population_gd", "SCHEDULES"]

SCHEDULES = ("layerwise", "joint")


@dataclass(frozen=True)
class PopulationTrajectory:
    """Recorded points of exact population gradient descent (float64 arrays)."""

    steps: np.ndarray  # (K,) global step index of each record
    stage: np.ndarray  # (K,) 1 or 2 (joint training: all 1)
    A1: np.ndarray  # (K, T, T)
    A2: np.ndarray  # (K, S, S)
    loss: np.ndarray  # (K,) exact population loss at the recorded parameters
    schedule: str
    lr: float
    lr2: float
    beta0: float
    eps: float

    def attention(self) -> np.ndarray:
        """``softmax_{j≤i}(A1[i])`` at every record, ``(K, T, T)``."""
        A = np.where(np.tril(np.ones(self.A1.shape[-2:], bool)), self.A1, -np.inf)
        A = A - A.max(-1, keepdims=True)
        E = np.exp(A)
        return E / E.sum(-1, keepdims=True)


def population_gd(
    task: InContextTask,
    pis: ArrayLike,
    *,
    schedule: str = "layerwise",
    steps: int = 100,
    lr: float = 1.0,
    beta0: float = 1.0,
    eps: float = DEFAULT_EPS,
    stage2_steps: int = 0,
    lr2: float | None = None,
    record_every: int = 1,
) -> PopulationTrajectory:
    """Exact population gradient descent for the reduced model of ``task`` with π uniform over ``pis``.

    Args:
        task: an :class:`~causal_grad.InContextTask` (small ``S``, ``T``: the exact gradient enumerates).
        pis: ``(k, S, S)`` transition matrices.
        schedule: ``"layerwise"`` or ``"joint"``.
        steps: stage-1 steps (layer-wise) or total steps (joint).
        lr: learning rate ``η`` (stage 1, or both matrices in joint training); ``lr2`` for stage 2 (default ``lr``).
        beta0: ``A2 = β0·I`` at initialisation (held during stage 1).
        eps: readout smoothing.
        stage2_steps: layer-wise stage-2 steps on ``A2`` (``A1`` frozen).
        record_every: record every this many steps (the first and last points are always recorded).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    steps = check_int("steps", steps, minimum=0)
    stage2_steps = check_int("stage2_steps", stage2_steps, minimum=0)
    if schedule == "joint" and stage2_steps:
        raise ValueError("stage2_steps applies to the layerwise schedule only")
    lr = check_positive_float("lr", lr)
    lr2 = lr if lr2 is None else check_positive_float("lr2", lr2)
    beta0 = check_scale("beta0", beta0, "float64", allow_zero=(schedule == "joint"))
    record_every = check_int("record_every", record_every, minimum=1)
    # validates task, pis, eps and the enumeration size before anything runs
    pis, _ = check_enumerable(task, pis, eps, what="population_gd")
    T, S = task.seq_len, task.vocab_size
    A1 = np.zeros((T, T))
    A2 = beta0 * np.eye(S)
    g = exact_population_gradient(task, pis, A1, A2, eps=eps)

    rec = {"steps": [], "stage": [], "A1": [], "A2": [], "loss": []}

    def record(t, stage, loss):
        rec["steps"].append(t)
        rec["stage"].append(stage)
        rec["A1"].append(A1.copy())
        rec["A2"].append(A2.copy())
        rec["loss"].append(float(loss))

    total = steps + stage2_steps
    record(0, 1, g.loss)
    for t in range(1, total + 1):
        stage = 1 if t <= steps else 2
        if schedule == "joint":
            A1 = A1 - lr * np.asarray(g.dA1)
            A2 = A2 - lr * np.asarray(g.dA2)
        elif stage == 1:
            A1 = A1 - lr * np.asarray(g.dA1)
        else:
            A2 = A2 - lr2 * np.asarray(g.dA2)
        g = exact_population_gradient(task, pis, A1, A2, eps=eps)
        if t % record_every == 0 or t == total or t == steps:
            record(t, stage, g.loss)
    return PopulationTrajectory(
        **{k: np.asarray(v) for k, v in rec.items()}, schedule=schedule, lr=lr, lr2=lr2, beta0=beta0, eps=float(eps)
    )
