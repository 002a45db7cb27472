"""Distance from a model to the in-context strategies over training (docs/theory.md §5; issue 18).

A *strategy* is a predictor of the next token from the context: ``uniform`` (``1/S``), the in-context
``unigram`` estimator (smoothed token counts of the context), the ``in_context`` estimator (for an n-gram task:
smoothed counts of the transitions after the current ``k``-tuple; for a graph task: the parent-matching estimator
of docs/theory.md §2) and, where it has a closed form, ``exact_bayes``. At every evaluation of a run the model's
predictive ``p̂`` is compared with each strategy ``p`` by

    KL(p ‖ p̂) = Σ_s p_s (log p_s − log p̂_s),

averaged over the held-out sequences and over the positions scored (the query only for the query-form loss;
every position for the next-token loss, as Edelman et al. 2024 do). It is the excess cross-entropy of the model
over the strategy when the strategy's predictive is taken as the target.

From the curves (:class:`StrategyCurves`): the step at which each strategy is nearest (smallest KL), the nearest
strategy at every evaluation, and the *stage transitions*: the first evaluation from which a strategy of the
ladder ``uniform → unigram → in_context`` is the nearest of the ladder and stays so for ``persist``
evaluations. :func:`transition_summary` gives, over seeds, each transition's steps, median and range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._validate import check_array, check_choice, check_int
from ..ngram import NGramTask
from .history import History

__all__ = [
    "STRATEGIES",
    "LADDER",
    "strategy_kl",
    "ngram_strategies",
    "query_strategies",
    "StrategyCurves",
    "strategy_curves_of",
    "transition_summary",
]

#: Strategy names, in the order they are reported.
STRATEGIES = ("uniform", "unigram", "in_context", "exact_bayes")
#: The progression looked for: uniform, then the unigram estimator, then the in-context (n-gram) estimator.
LADDER = ("uniform", "unigram", "in_context")


def strategy_kl(model_logits: ArrayLike, strategies: Mapping[str, ArrayLike]) -> dict[str, jax.Array]:
    """``{name: mean KL(p_name ‖ softmax(model_logits))}`` over every leading axis (batch, and positions when
    given ``(B, T, S)``); each strategy has the logits' shape and holds distributions over the last axis.
    ``0·log 0 = 0`` for zero strategy entries."""
    model_logits = check_array("model_logits", model_logits, kind="float", min_ndim=2)
    if not isinstance(strategies, Mapping) or not strategies:
        raise TypeError(f"strategies must be a non-empty mapping name -> (…, S) array, got {type(strategies).__name__}")
    strategies = {k: check_array(f"strategies[{k!r}]", v, kind="float") for k, v in strategies.items()}
    for name, p in strategies.items():
        if p.shape != model_logits.shape:
            raise ValueError(
                f"strategies[{name!r}] must have the model's shape {tuple(model_logits.shape)}, got {tuple(p.shape)}"
            )
    logq = jax.nn.log_softmax(model_logits, axis=-1)
    out = {}
    for name, p in strategies.items():
        pos = p > 0
        kl = jnp.sum(jnp.where(pos, p * (jnp.log(jnp.where(pos, p, 1.0)) - logq), 0.0), axis=-1)
        out[name] = jnp.mean(kl)
    return out


def ngram_strategies(task, tokens: jax.Array, *, positions: str = "all") -> dict[str, jax.Array]:
    """The strategies of an :class:`causal_grad.ngram.NGramTask` on ``tokens`` ``(B, T)``: ``(B, T, S)`` arrays
    for ``positions="all"``, ``(B, S)`` at the query for ``"query"``; ``exact_bayes`` only where it has a closed
    form (for the Dirichlet prior with the uniform initial law it equals ``in_context``)."""
    if not isinstance(task, NGramTask):
        raise TypeError(f"task must be a causal_grad.ngram.NGramTask, got {type(task).__name__}")
    positions = check_choice("positions", positions, ("all", "query"))
    task.predictive_all_positions(tokens, "uniform")  # checks tokens before any compute
    out = {k: task.predictive_all_positions(tokens, k) for k in ("uniform", "unigram", "in_context")}
    try:
        out["exact_bayes"] = task.predictive_all_positions(tokens, "exact_bayes")
    except ValueError:
        pass
    return out if positions == "all" else {k: v[:, -1] for k, v in out.items()}


def query_strategies(task, tokens: jax.Array) -> dict[str, jax.Array]:
    """The strategies at the query ``(B, S)`` of a training task (anything with ``vocab_size``, ``unigram`` and
    ``in_context``: :class:`causal_grad.task.InContextTask`, :class:`causal_grad.task.MultiParentTask`,
    :class:`causal_grad.ngram.NGramTask`)."""
    if not all(callable(getattr(task, n, None)) for n in ("in_context", "unigram")):
        raise TypeError(
            f"task must be a training task with in_context and unigram estimators, got {type(task).__name__}"
        )
    ic = task.in_context(tokens)
    return {
        "uniform": jnp.full(ic.shape, 1.0 / ic.shape[-1], ic.dtype),
        "unigram": task.unigram(tokens),
        "in_context": ic,
    }


@dataclass(frozen=True)
class StrategyCurves:
    """KL from the model to each strategy at each evaluation step of one run: ``steps`` ``(n,)`` and ``kl``
    ``{name: (n,)}`` (names among :data:`STRATEGIES`)."""

    steps: tuple[int, ...]
    kl: dict

    def __post_init__(self):
        n = len(self.steps)
        for k, v in self.kl.items():
            if len(v) != n:
                raise ValueError(f"kl[{k!r}] must have one value per step ({n}), got {len(v)}")

    def nearest_step(self) -> dict[str, int]:
        """The evaluation step at which the model is nearest each strategy (smallest KL; the first on ties)."""
        return {k: int(self.steps[int(np.argmin(v))]) for k, v in self.kl.items()}

    def nearest(self, names: Sequence[str] = LADDER) -> list[str]:
        """The nearest of ``names`` at each evaluation."""
        names = [n for n in names if n in self.kl]
        K = np.array([self.kl[n] for n in names])
        return [names[i] for i in np.argmin(K, axis=0)]

    def transitions(self, persist: int = 2, names: Sequence[str] = LADDER) -> dict[str, int | None]:
        """For each strategy of ``names``: the first step from which it is the nearest of ``names`` at
        ``persist`` consecutive evaluations (fewer at the end of the run), ``None`` if never."""
        persist = check_int("persist", persist, minimum=1)
        near = self.nearest(names)
        out: dict[str, int | None] = {}
        for name in names:
            out[name] = None
            for i in range(len(near)):
                window = near[i : i + persist]
                if window and all(w == name for w in window):
                    out[name] = int(self.steps[i])
                    break
        return out

    def progression(self, persist: int = 2) -> bool:
        """Whether the ladder appears in order: the unigram and in-context stages are both reached, unigram
        first, and a uniform stage, if any, comes before the unigram one (a model whose initial predictive is
        already nearer the unigram estimator than uniform has no uniform stage)."""
        t = self.transitions(persist)
        u, g, b = (t[n] for n in LADDER)
        return g is not None and b is not None and g < b and (u is None or u <= g)

    def to_dict(self) -> dict:
        return {
            "steps": list(self.steps),
            "kl": {k: [float(x) for x in v] for k, v in self.kl.items()},
            "nearest_step": self.nearest_step(),
            "transitions": self.transitions(),
            "progression": self.progression(),
        }


def strategy_curves_of(history: History | Mapping) -> StrategyCurves:
    """The curves of a run's ``history``: its evaluations with ``strategy_kl``, as the training evaluator records
    them; a :class:`~causal_grad.training.history.History` (``TrainResult.history``) or the mapping read from
    ``history.json``."""
    if isinstance(history, History):
        history = history.to_dict()
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a run's History or its history.json mapping, got {type(history).__name__}")
    ev = [e for e in history.get("eval", []) if isinstance(e, Mapping) and "strategy_kl" in e]
    if not ev:
        raise ValueError("history has no evaluations with strategy_kl (a run of this version records them)")
    names = [n for n in STRATEGIES if n in ev[0]["strategy_kl"]]
    return StrategyCurves(
        tuple(int(e["step"]) for e in ev),
        {n: np.array([e["strategy_kl"][n] for e in ev], dtype=np.float64) for n in names},
    )


def transition_summary(curves: Sequence[StrategyCurves], persist: int = 2) -> dict:
    """Over runs (seeds): for each rung of :data:`LADDER` the transition steps per seed, how many seeds reach
    it, and the median, minimum and maximum step over those seeds (the interval over seeds); the fraction of
    seeds showing the whole progression in order."""
    persist = check_int("persist", persist, minimum=1)
    if not curves or not all(isinstance(c, StrategyCurves) for c in curves):
        raise TypeError("curves must be a non-empty sequence of StrategyCurves")
    per = [c.transitions(persist) for c in curves]
    out: dict = {}
    for name in LADDER:
        s = [p[name] for p in per]
        got = [x for x in s if x is not None]
        out[name] = {
            "steps": s,
            "reached": len(got),
            "median": float(np.median(got)) if got else None,
            "min": min(got) if got else None,
            "max": max(got) if got else None,
        }
    out["progression_fraction"] = float(np.mean([c.progression(persist) for c in curves]))
    return out
