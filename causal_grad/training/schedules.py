"""Optimisers, learning-rate schedules and training stages (docs/theory.md §5).

* **Joint** training: one stage, every parameter trained from the initialisation.
* **Layer-wise** training (the schedule the proof follows): stage 1 trains the first attention layer with the
  second layer held at ``A2 = β0·I``; stage 2 freezes the first layer and trains the rest.

Every stage has its own optimiser and its own schedule over its own steps: plain gradient descent is
``optax.sgd`` with a cosine decay from ``lr`` to 0; AdamW uses a linear warm-up then a cosine decay to 0, with the
moment decay rates ``b1``, ``b2`` (optax's defaults 0.9, 0.999; Edelman et al.'s ICL-MC uses 0.9, 0.95).

**Decay** (``decay``, one of :data:`DECAYS`): ``"cosine"`` (the default, and the paper's: every figure's
learning rate decays to 0 over the run) or ``"constant"`` (the learning rate stays at ``lr`` after the warm-up:
``optax.sgd(lr)`` for plain GD, what the paper's public figure-9 notebook runs, many_graphs.ipynb cell 4;
docs/paper_settings.md). With ``"constant"`` the schedule's length is not used.

**One compiled program for every length.** The training loop compiles a stage's optimiser with the schedule's
length as a run-time argument (:func:`make_optimizer_fn`, :func:`schedule_length`), so runs that differ only in
``steps`` (and so in their stage boundaries) reuse one program. The cosine factor
``½(1 + cos(π·min(t, T)/T))`` is computed as ``min(t, T)·c`` from the pair ``(T, c)``, ``c = fl(fl(π)·fl(1/T))``
rounded in float32 on the host, which is what XLA makes of optax's ``cosine_decay_schedule`` with a constant ``T``
(it turns the division into a product with ``1/T`` and folds ``π·(1/T)`` into one float32 constant): the values
are bit for bit optax's (``tests/test_startup.py``), and so are the trained weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validate import check_int, check_positive_float, check_probability

__all__ = [
    "Stage",
    "make_optimizer",
    "make_optimizer_fn",
    "schedule_length",
    "cosine_decay",
    "OPTIMIZERS",
    "SCHEDULES",
    "DECAYS",
    "ADAM_BETAS",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("layerwise", "joint")
#: Learning-rate decays after the warm-up: ``"cosine"`` to 0 over the stage (the default), ``"constant"`` at ``lr``.
DECAYS = ("cosine", "constant")


#: optax.adamw's default moment decay rates ``(b1, b2)``.
ADAM_BETAS = (0.9, 0.999)


def _check_decay(decay) -> str:
    if not isinstance(decay, str) or decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {decay!r}")
    return decay


def _check_betas(name: str, b1, b2) -> tuple[float, float]:
    """``0 ≤ b1, b2 < 1``; plain GD has no moments, so only the defaults go with ``sgd``."""
    b1, b2 = check_probability("b1", b1, open_high=True), check_probability("b2", b2, open_high=True)
    if name == "sgd" and (b1, b2) != ADAM_BETAS:
        raise ValueError(
            f"b1, b2 apply to adamw only (plain GD has no moment estimates): leave them at "
            f"{ADAM_BETAS[0]}, {ADAM_BETAS[1]} with sgd, got b1={b1}, b2={b2}"
        )
    return b1, b2


@dataclass(frozen=True)
class Stage:
    """Steps ``[start, start + steps)`` train the parameter groups ``trainable`` with ``optimizer`` at peak
    learning rate ``lr`` (decayed by ``decay``, one of :data:`DECAYS`); AdamW's moment decay rates ``b1``, ``b2``."""

    name: str
    start: int
    steps: int
    trainable: tuple[str, ...]
    optimizer: str
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0
    decay: str = "cosine"
    b1: float = ADAM_BETAS[0]
    b2: float = ADAM_BETAS[1]

    @property
    def end(self) -> int:
        return self.start + self.steps

    def make(self) -> optax.GradientTransformation:
        return make_optimizer(
            self.optimizer,
            self.lr,
            self.steps,
            weight_decay=self.weight_decay,
            warmup=self.warmup,
            decay=self.decay,
            b1=self.b1,
            b2=self.b2,
        )

    @property
    def program(self) -> tuple:
        """What the compiled training program of this stage depends on: everything but ``start`` and ``steps``
        (the schedule's length is a run-time argument, :meth:`length`)."""
        return (
            self.name,
            self.trainable,
            self.optimizer,
            self.lr,
            self.weight_decay,
            self.warmup,
            self.decay,
            self.b1,
            self.b2,
        )

    def make_fn(self) -> Callable[[jax.Array], optax.GradientTransformation]:
        """:func:`make_optimizer_fn` of this stage: ``length -> optimizer``, with ``length = self.length()``
        giving :meth:`make`'s optimiser (bit for bit)."""
        return make_optimizer_fn(
            self.optimizer,
            self.lr,
            weight_decay=self.weight_decay,
            warmup=self.warmup,
            decay=self.decay,
            b1=self.b1,
            b2=self.b2,
        )

    def length(self) -> np.ndarray:
        """The run-time schedule argument of this stage: :func:`schedule_length` of its ``steps`` and ``warmup``."""
        return schedule_length(self.steps, self.warmup)


def schedule_length(steps: int, warmup: int = 0) -> np.ndarray:
    """The run-time length argument of :func:`make_optimizer_fn`'s schedules: float32 ``[T, c]`` with
    ``T = steps − warmup`` the cosine part's length and ``c = fl(fl(π)·fl(1/T))`` (float32 roundings, on the host;
    see the module docstring)."""
    steps = check_int("steps", steps, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0, maximum=steps - 1 if steps > 1 else 0)
    T = np.float32(steps - warmup)
    return np.array([T, np.float32(np.pi) * (np.float32(1) / T)], np.float32)


def cosine_decay(lr: float, length: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """``count -> lr·½(1 + cos(min(count, T)·c))``, ``c ≈ π/T``, with ``length = [T, c]`` (:func:`schedule_length`),
    possibly traced; equal bit for bit to ``optax.cosine_decay_schedule(lr, T)`` compiled by XLA
    (docs/theory.md §5)."""
    lr = check_positive_float("lr", lr)

    def schedule(count):
        t = jnp.minimum(count, length[0])
        cos = 0.5 * (1 + jnp.cos(t * length[1]))
        return lr * ((1 - 0.0) * cos**1.0 + 0.0)  # optax's form at alpha = 0, exponent = 1 (same program)

    return schedule


_RUN_TIME = object()  # the steps of make_optimizer_fn: its schedule length comes at run time


def _check_optimizer(name, lr, steps, weight_decay, warmup, decay, b1, b2) -> tuple:
    """The arguments of :func:`make_optimizer` (``steps`` checked as an int) and :func:`make_optimizer_fn`
    (``steps`` is ``_RUN_TIME``: the length comes at run time, so ``warmup`` has no upper bound here), checked in
    that order."""
    if name not in OPTIMIZERS:
        raise ValueError(f"name: optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    lr = check_positive_float("lr", lr)
    if steps is not _RUN_TIME:
        steps = check_int("steps", steps, minimum=1)
    weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
    top = None if steps is _RUN_TIME else (steps - 1 if steps > 1 else 0)
    warmup = check_int("warmup", warmup, minimum=0, maximum=top)
    decay = _check_decay(decay)
    if name == "sgd" and weight_decay:
        raise ValueError("weight_decay applies to adamw only (plain GD follows the paper: none)")
    b1, b2 = _check_betas(name, b1, b2)
    return lr, steps, weight_decay, warmup, decay, b1, b2


def make_optimizer_fn(
    name: str,
    lr: float,
    *,
    weight_decay: float = 0.0,
    warmup: int = 0,
    decay: str = "cosine",
    b1: float = ADAM_BETAS[0],
    b2: float = ADAM_BETAS[1],
) -> Callable[[jax.Array], optax.GradientTransformation]:
    """``length -> optimizer``: :func:`make_optimizer` with the schedule's length a (traceable) argument
    ``length = schedule_length(steps, warmup)``, so that one compiled training program serves every ``steps``.
    ``make_optimizer_fn(name, lr, ...)(schedule_length(steps, warmup))`` computes what
    ``make_optimizer(name, lr, steps, ...)`` computes, bit for bit; its state is the same pytree. With
    ``decay="constant"`` the length is ignored."""
    lr, _, weight_decay, warmup, decay, b1, b2 = _check_optimizer(
        name, lr, _RUN_TIME, weight_decay, warmup, decay, b1, b2
    )

    def make(length) -> optax.GradientTransformation:
        if decay == "constant":
            return _constant(name, lr, weight_decay, warmup, b1, b2)
        # optax's stubs type a schedule's step as ArrayLike; ours takes a jax.Array (what optax passes)
        sched = cast(optax.Schedule, cosine_decay(lr, length))
        if name == "sgd":
            return optax.sgd(sched)
        if warmup:
            ramp = optax.linear_schedule(0.0, lr, warmup)
            sched = optax.join_schedules([ramp, sched], [warmup])
        return optax.adamw(sched, b1=b1, b2=b2, weight_decay=weight_decay)

    return make


def _constant(
    name: str, lr: float, weight_decay: float, warmup: int, b1: float, b2: float
) -> optax.GradientTransformation:
    """The ``decay="constant"`` optimisers: ``optax.sgd(lr)``; AdamW at ``lr`` after a linear warm-up."""
    if name == "sgd":
        return optax.sgd(lr)
    if warmup:
        ramp = optax.linear_schedule(0.0, lr, warmup)
        sched = optax.join_schedules([ramp, optax.constant_schedule(lr)], [warmup])
        return optax.adamw(sched, b1=b1, b2=b2, weight_decay=weight_decay)
    return optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay)


def make_optimizer(
    name: str,
    lr: float,
    steps: int,
    *,
    weight_decay: float = 0.0,
    warmup: int = 0,
    decay: str = "cosine",
    b1: float = ADAM_BETAS[0],
    b2: float = ADAM_BETAS[1],
) -> optax.GradientTransformation:
    """``sgd``: gradient descent with ``cosine_decay(lr → 0, steps)``; ``adamw``: AdamW with
    ``warmup_cosine_decay(0 → lr over warmup, → 0 at steps)``, decoupled ``weight_decay`` and moment decay rates
    ``b1``, ``b2`` (``0 ≤ b < 1``; optax's defaults :data:`ADAM_BETAS`; plain GD takes only the defaults). With
    ``decay="constant"`` (:data:`DECAYS`) the learning rate stays at ``lr`` (after the warm-up): ``optax.sgd(lr)``
    for ``sgd``."""
    lr, steps, weight_decay, warmup, decay, b1, b2 = _check_optimizer(
        name, lr, steps, weight_decay, warmup, decay, b1, b2
    )
    if decay == "constant":
        return _constant(name, lr, weight_decay, warmup, b1, b2)
    if name == "sgd":
        return optax.sgd(optax.cosine_decay_schedule(lr, steps))
    if warmup:
        sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, end_value=0.0)
    else:
        sched = optax.cosine_decay_schedule(lr, steps)
    return optax.adamw(sched, b1=b1, b2=b2, weight_decay=weight_decay)
