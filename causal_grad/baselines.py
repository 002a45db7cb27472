"""Baseline predictors and their held-out losses (THEORY §2).

* In-context Dirichlet estimator ("Bayes" in the paper's code): with ``q = s_{T-1}``,
  ``n_b = #{i < T-1 : p(i) ≠ -1, s_{p(i)} = q, s_i = b}``, prediction ``(n_b + α)/(Σ_b n_b + Sα)``. It is *not*
  the Bayes-optimal predictor when roots are drawn from ``μ_π`` (root tokens carry information about ``π``);
  with uniform roots (the multi-parent task) it is.
* Multi-parent: match the whole parent tuple of the target (or, for the weaker reference, only one parent).
* Unigram: smoothed empirical token frequencies.
* Entropy floor: ``E[H(π[q])]``, the loss of an oracle that knows ``π``.

Losses are cross-entropies against the soft target: ``−Σ_b y_b log ŷ_b`` (nats).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_int, check_key

__all__ = [
    "in_context_estimator",
    "tuple_estimator",
    "unigram_estimator",
    "cross_entropy",
    "entropy",
    "held_out_losses",
]


def cross_entropy(y, yhat) -> jax.Array:
    """``−Σ_b y_b log ŷ_b`` per row; terms with ``y_b = 0`` contribute 0 (no ``0·log 0`` NaN)."""
    y = jnp.asarray(y)
    yhat = jnp.asarray(yhat)
    return -jnp.sum(jnp.where(y > 0, y * jnp.log(jnp.where(y > 0, yhat, 1.0)), 0.0), axis=-1)


def entropy(p) -> jax.Array:
    """``H(p) = −Σ p log p`` per row (nats), with ``0 log 0 = 0``."""
    return cross_entropy(p, p)


def in_context_estimator(tokens, parents: Sequence[int], S: int, alpha: float) -> jax.Array:
    """The in-context Dirichlet estimator for a forest; ``tokens`` is ``(B, T)`` with the query last."""
    tokens = jnp.asarray(tokens)
    par = np.asarray(parents)
    has = par >= 0
    child_pos = np.nonzero(has)[0]
    q = tokens[:, -1]
    if child_pos.size == 0:
        counts = jnp.zeros((tokens.shape[0], S))
    else:
        ptok = tokens[:, par[child_pos]]
        ctok = tokens[:, child_pos]
        match = (ptok == q[:, None]).astype(jnp.float32)
        counts = jnp.einsum("bi,bis->bs", match, jax.nn.one_hot(ctok, S, dtype=jnp.float32))
    counts = counts + alpha
    return counts / counts.sum(-1, keepdims=True)


def tuple_estimator(tokens, parent_sets, S: int, alpha: float, which: int | None = None) -> jax.Array:
    """Multi-parent estimator; the last entry of ``parent_sets`` is the target. ``which=None`` matches the
    whole parent tuple among positions of the same arity; ``which=m`` matches only parent ``m``."""
    tokens = jnp.asarray(tokens)
    tgt = parent_sets[-1]
    k = len(tgt)
    B = tokens.shape[0]
    counts = jnp.zeros((B, S))
    for i, ps in enumerate(parent_sets[:-1]):
        if which is None:
            if len(ps) != k:
                continue
            m = jnp.all(tokens[:, list(ps)] == tokens[:, list(tgt)], axis=1)
        else:
            if len(ps) <= which:
                continue
            m = tokens[:, ps[which]] == tokens[:, tgt[which]]
        counts = counts + m[:, None] * jax.nn.one_hot(tokens[:, i], S)
    counts = counts + alpha
    return counts / counts.sum(-1, keepdims=True)


def unigram_estimator(tokens, S: int, alpha: float, include_last: bool = False) -> jax.Array:
    """``(c_b + α)/(N + Sα)`` with ``c_b`` the counts over the context (the query excluded unless
    ``include_last``)."""
    tokens = jnp.asarray(tokens)
    ctx = tokens if include_last else tokens[:, :-1]
    counts = jax.nn.one_hot(ctx, S).sum(1) + alpha
    return counts / counts.sum(-1, keepdims=True)


def held_out_losses(task, key, num: int, batch: int, predictors: dict[str, Callable]) -> dict:
    """Mean and standard error of each predictor's cross-entropy, and of the entropy floor, over ``num``
    fresh sequences drawn in batches of ``batch``."""
    key = check_key("key", key)
    num = check_int("num", num, minimum=2)
    batch = check_int("batch", batch, minimum=1)
    sums = {name: [] for name in (*predictors, "entropy_floor")}
    left = num
    while left > 0:
        key, sub = jax.random.split(key)
        b = min(batch, left)
        tokens, y = task.sample(sub, b)
        for name, f in predictors.items():
            sums[name].append(np.asarray(cross_entropy(y, f(tokens)), dtype=np.float64))
        sums["entropy_floor"].append(np.asarray(entropy(y), dtype=np.float64))
        left -= b
    out = {}
    for name, chunks in sums.items():
        v = np.concatenate(chunks)
        out[name] = {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(v.size))}
    return out
