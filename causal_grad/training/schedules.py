"""Optimisers, learning-rate schedules and training stages (docs/theory.md §5).

* **Joint** training: one stage, every parameter trained from the initialisation.
* **Layer-wise** training (the schedule the proof follows): stage 1 trains the first attention layer with the
  second layer held at ``A2 = β0·I``; stage 2 freezes the first layer and trains the rest.

Every stage has its own optimiser and its own schedule over its own steps: plain gradient descent is
``optax.sgd`` with a cosine decay from ``lr`` to 0; AdamW uses a linear warm-up then a cosine decay to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from .._validate import check_int, check_positive_float

__all__ = ["Stage", "make_optimizer", "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("layerwise", "joint")


@dataclass(frozen=True)
class Stage:
    """Steps ``[start, start + steps)`` train the parameter groups ``trainable`` with ``optimizer`` at peak
    learning rate ``lr``."""

    name: str
    start: int
    steps: int
    trainable: tuple[str, ...]
    optimizer: str
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0

    @property
    def end(self) -> int:
        return self.start + self.steps

    def make(self) -> optax.GradientTransformation:
        return make_optimizer(self.optimizer, self.lr, self.steps, weight_decay=self.weight_decay,
                              warmup=self.warmup)


def make_optimizer(name: str, lr: float, steps: int, *, weight_decay: float = 0.0,
                   warmup: int = 0) -> optax.GradientTransformation:
    """``sgd``: gradient descent with ``cosine_decay(lr → 0, steps)``; ``adamw``: AdamW with
    ``warmup_cosine_decay(0 → lr over warmup, → 0 at steps)`` and decoupled ``weight_decay``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"name: optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    lr = check_positive_float("lr", lr)
    steps = check_int("steps", steps, minimum=1)
    weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
    warmup = check_int("warmup", warmup, minimum=0, maximum=steps - 1 if steps > 1 else 0)
    if name == "sgd":
        if weight_decay:
            raise ValueError("weight_decay applies to adamw only (plain GD follows the paper: none)")
        return optax.sgd(optax.cosine_decay_schedule(lr, steps))
    if warmup:
        sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, end_value=0.0)
    else:
        sched = optax.cosine_decay_schedule(lr, steps)
    return optax.adamw(sched, weight_decay=weight_decay)
