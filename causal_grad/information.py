"""Information measures of joint laws (docs/theory.md §4).

Every function takes joint laws ``P[..., a, b]`` (non-negative, summing to 1 over the last two axes) and
broadcasts over leading axes. Conventions: ``0 · log 0 = 0``, and states with a zero marginal are dropped, so
exact zeros give exact results and never NaN (also in gradients: the unused branches see safe values).
Subnormal masses (below 2.2e-308) are flushed to zero by XLA on CPU and so count as zeros.

* KL mutual information (nats): ``I(X; Y) = Σ P(a,b) log( P(a,b) / (P_X(a) P_Y(b)) )``.
* χ² mutual information: ``I_χ²(X; Y) = Σ P(a,b)² / (P_X(a) P_Y(b)) − 1``, evaluated in a centred form of
  conditional laws (nothing overflows when marginals are tiny, and near-independence is resolved accurately).
* weighted inner product: ``⟨P, R⟩_μ = Σ P(a,b) R(a,b) / (μ(a) μ(b))``; ``⟨P_{ji}, P_{ji}⟩_μ = 1 + I_χ²``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._validate import arrays

__all__ = [
    "entropy",
    "joint_entropy",
    "conditional_entropy",
    "mutual_information",
    "chi2_mutual_information",
    "weighted_inner",
]


def _safe_log(x):
    return jnp.log(jnp.where(x > 0, x, 1.0))


def _nan_if_nan(x, value, axes):
    """``value`` where no entry of ``x`` over ``axes`` is NaN, NaN where one is: the ``0 log 0`` masks below must
    not turn a NaN input into a number (``NaN > 0`` is false). Exact (a select) for every other input."""
    return jnp.where(jnp.any(jnp.isnan(x), axis=axes), jnp.nan, value)


@arrays(p=dict(min_ndim=1))
@jax.jit
def entropy(p) -> jnp.ndarray:
    """Shannon entropy ``H(p) = −Σ p log p`` (nats) over the last axis."""
    p = jnp.asarray(p)
    return _nan_if_nan(p, -jnp.sum(jnp.where(p > 0, p * _safe_log(p), 0.0), axis=-1), -1)


@arrays(P=dict(min_ndim=2))
@jax.jit
def joint_entropy(P) -> jnp.ndarray:
    """``H(X, Y)`` of joint laws ``P[..., a, b]`` (nats)."""
    P = jnp.asarray(P)
    return entropy(P.reshape(P.shape[:-2] + (-1,)))


@arrays(P=dict(min_ndim=2))
@jax.jit
def conditional_entropy(P) -> jnp.ndarray:
    """``H(Y | X) = H(X, Y) − H(X)`` for ``P[..., a, b] = Pr(X = a, Y = b)`` (nats), computed term by term as
    ``−Σ P(a,b) log(P(a,b) / P_X(a))`` (no cancellation)."""
    P = jnp.asarray(P)
    px = P.sum(-1)
    ratio = P / jnp.where(px > 0, px, 1.0)[..., :, None]
    return _nan_if_nan(P, -jnp.sum(jnp.where(P > 0, P * _safe_log(ratio), 0.0), axis=(-2, -1)), (-2, -1))


@arrays(P=dict(min_ndim=2))
@jax.jit
def mutual_information(P) -> jnp.ndarray:
    """KL mutual information ``I(X; Y) = Σ P log(P / (P_X P_Y))`` in nats (``0 log 0 = 0``)."""
    P = jnp.asarray(P)
    px, py = P.sum(-1), P.sum(-2)
    pos = P > 0
    # P > 0 implies both marginals > 0; the ratio is formed as (P / px) / py so tiny marginals do not underflow
    ratio = (P / jnp.where(px > 0, px, 1.0)[..., :, None]) / jnp.where(py > 0, py, 1.0)[..., None, :]
    return _nan_if_nan(
        P, jnp.sum(jnp.where(pos, P * _safe_log(jnp.where(pos, ratio, 1.0)), 0.0), axis=(-2, -1)), (-2, -1)
    )


@arrays(P=dict(min_ndim=2))
@jax.jit
def chi2_mutual_information(P) -> jnp.ndarray:
    """χ² mutual information ``Σ P² / (P_X P_Y) − 1`` (zero marginals dropped), evaluated in the centred form

        I_χ² = Σ_{a,b} (Pr(b|a) − P_Y(b)) · (Pr(a|b) − P_X(a)),

    whose factors are differences of probabilities (no overflow for tiny marginals, and no cancellation against
    the ``− 1``: a nearly independent ``P`` gets a small value with a small *relative* error, which matters for
    ``√I_χ²``). Bounded by ``min(#supp P_X, #supp P_Y) − 1``; zero exactly when ``P = P_X ⊗ P_Y``.
    """
    P = jnp.asarray(P)
    px, py = P.sum(-1), P.sum(-2)
    okx, oky = px > 0, py > 0
    b_given_a = jnp.where(okx[..., :, None], P / jnp.where(okx, px, 1.0)[..., :, None], 0.0)
    a_given_b = jnp.where(oky[..., None, :], P / jnp.where(oky, py, 1.0)[..., None, :], 0.0)
    terms = (b_given_a - py[..., None, :]) * (a_given_b - px[..., :, None])
    mask = okx[..., :, None] & oky[..., None, :]
    return _nan_if_nan(P, jnp.sum(jnp.where(mask, terms, 0.0), axis=(-2, -1)), (-2, -1))


@arrays(P=dict(min_ndim=2), R=dict(min_ndim=2), mu=dict(min_ndim=1))
@jax.jit
def weighted_inner(P, R, mu) -> jnp.ndarray:
    """``⟨P, R⟩_μ = Σ_{a,b} P(a,b) R(a,b) / (μ(a) μ(b))``; pairs with ``μ(a) μ(b) = 0`` are dropped (for laws
    with marginals ``μ`` both ``P`` and ``R`` vanish there). ``mu`` broadcasts against ``P[..., :, 0]``."""
    P, R, mu = jnp.asarray(P), jnp.asarray(R), jnp.asarray(mu)
    pos = mu > 0
    inv = jnp.where(pos, 1.0 / jnp.where(pos, mu, 1.0), 0.0)
    # (P / μ(a)) · (R / μ(b)): each factor is a conditional law when μ is the marginal, so nothing overflows
    out = jnp.sum((P * inv[..., :, None]) * (R * inv[..., None, :]), axis=(-2, -1))
    return jnp.where(jnp.any(jnp.isnan(mu), axis=-1), jnp.nan, out)  # a NaN in μ is not a dropped pair
