"""Out-of-distribution evaluation (claim C8, docs/theory.md §5): a model trained under one prior over transition
matrices, evaluated on sequences whose ``π`` comes from other priors.

For each evaluation prior ``P'`` the held-out cross-entropy ``E_{π~P'} E[−Σ_b π[q,b] log ŷ_b]`` of the model is
reported beside the in-context estimator's (the mechanism the model is supposed to have learned; its
pseudo-count ``α`` stays the *training* one) and the entropy floor ``E[H(π[q])]``. The excess
``loss(model) − loss(estimator)`` is a paired difference over the same sequences, so its standard error is
small. The claim holds for a prior when that excess stays small compared with the gap between the estimator
and a context-free predictor (the unigram estimator), i.e. the model has learned the in-context mechanism
rather than the training prior.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import numpy as np

from ._validate import check_callable, check_int, check_key, check_positive_float
from .baselines import cross_entropy, entropy
from .priors import Dirichlet, Floored, PermutationLike, Prior, Sticky
from .task import InContextTask

__all__ = ["default_ood_priors", "evaluate_ood"]


def default_ood_priors(alpha_train: float) -> dict[str, Prior]:
    """The evaluation sweep: other Dirichlet concentrations, floored, sticky and permutation-like ``π``."""
    alpha_train = check_positive_float("alpha_train", alpha_train)
    out: dict[str, Prior] = {f"dirichlet({alpha_train:g}) [train]": Dirichlet(alpha_train)}
    for a in (0.03, 0.3, 1.0, 10.0):
        if a != alpha_train:
            out[f"dirichlet({a:g})"] = Dirichlet(a)
    out["floored(0.1, γ=0.5)"] = Floored(0.1, 0.5)
    out["sticky(0.1, λ=0.5)"] = Sticky(0.1, 0.5)
    out["permutation-like(δ=0.1)"] = PermutationLike(1.0, 0.1)
    return out


def _stats(v: np.ndarray) -> dict:
    return {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(v.size))}


def evaluate_ood(
    predict: Callable,
    task: InContextTask,
    priors: Mapping[str, Prior],
    key: jax.Array,
    *,
    num: int = 8192,
    batch: int = 4096,
) -> dict[str, dict]:
    """Evaluate ``predict(tokens) -> ŷ (B, S)`` on ``num`` sequences per prior in ``priors``.

    ``task`` fixes the graph, ``S`` and the estimator's pseudo-count ``α`` (the training task). Returns, per
    prior, ``{"model", "in_context", "unigram", "entropy_floor", "excess"}`` each as ``{"mean", "se"}``, where
    ``excess`` is the paired difference ``model − in_context``.
    """
    check_callable("predict", predict)
    key = check_key("key", key)
    num = check_int("num", num, minimum=2)
    batch = check_int("batch", batch, minimum=1)
    if not isinstance(task, InContextTask):
        raise TypeError(f"task must be an InContextTask, got {type(task).__name__}")
    if not isinstance(priors, Mapping):
        raise TypeError(f"priors must be a mapping of names to causal_grad.priors.Prior, got {type(priors).__name__}")
    for name, prior in priors.items():
        if not isinstance(prior, Prior):
            raise TypeError(f"priors[{name!r}] must be a causal_grad.priors.Prior, got {type(prior).__name__}")
    results = {}
    for name, prior in priors.items():
        ev = InContextTask(task.graph, task.vocab_size, task.alpha, prior=prior)
        key, sub = jax.random.split(key)
        cols = {k: [] for k in ("model", "in_context", "unigram", "entropy_floor")}
        left = num
        while left > 0:
            sub, kb = jax.random.split(sub)
            b = min(batch, left)
            tokens, y = ev.sample(kb, b)
            cols["model"].append(np.asarray(cross_entropy(y, predict(tokens)), np.float64))
            cols["in_context"].append(np.asarray(cross_entropy(y, ev.in_context(tokens)), np.float64))
            cols["unigram"].append(np.asarray(cross_entropy(y, ev.unigram(tokens)), np.float64))
            cols["entropy_floor"].append(np.asarray(entropy(y), np.float64))
            left -= b
        arr = {k: np.concatenate(v) for k, v in cols.items()}
        res = {k: _stats(v) for k, v in arr.items()}
        res["excess"] = _stats(arr["model"] - arr["in_context"])
        results[name] = res
    return results
