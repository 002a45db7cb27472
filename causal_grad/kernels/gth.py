"""Grassmann–Taksar–Heyman (GTH) elimination: stationary laws to full relative accuracy (docs/theory.md §1).

GTH (state censoring): for ``k = S-1, …, 1`` remove state ``k`` from the chain. With ``s_k = Σ_{j<k} P[k, j]``
(the probability of leaving ``k`` to a lower state, computed without subtraction), the censored chain on
``{0, …, k-1}`` is ``P[i, j] += P[i, k] P[k, j] / s_k``. Back-substitution: ``μ_0 ∝ 1`` and
``μ_k = Σ_{i<k} μ_i P[i, k] / s_k``, rescaled at every step so that ratios beyond the float range
(``α = 1e-3`` gives them) underflow harmlessly instead of overflowing; finally normalise. ``s_k = 0`` (state
``k`` absorbing in the censored chain, a reducible ``π``) restarts the law at ``k``.

Three implementations of the same subtraction-free operations:

* :func:`gth_batch_last`: unrolled over ``k`` on a batch-last ``(S, S, N)`` stack, every step elementwise over
  the batch (for ``S ≤`` :data:`UNROLL_MAX_S`; the samplers call it directly);
* :func:`gth_loop`: one ``(S, S)`` matrix with a ``fori_loop`` (any ``S``; ``vmap`` it over a stack);
* :func:`gth_reference`: the plain twin, NumPy float64, one matrix at a time with Python loops.

:func:`stationary_batch_last` picks the first or the second by ``S``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .._validate import arrays
from .xla import materialize

__all__ = ["UNROLL_MAX_S", "gth_batch_last", "gth_loop", "gth_reference", "stationary_batch_last"]

#: largest ``S`` for which the elimination is unrolled (:func:`gth_batch_last`)
UNROLL_MAX_S = 32


def _sum0(x):
    acc = x[0]
    for i in range(1, x.shape[0]):
        acc = acc + x[i]
    return acc


@arrays(P=dict(ndim=3))
def gth_batch_last(P: jax.Array) -> jax.Array:
    """GTH stationary laws of a batch-last stack ``P`` of shape ``(S, S, N)`` (``P[:, :, n]`` is one matrix);
    returns ``(S, N)``. Same arithmetic as :func:`gth_loop`, unrolled over the ``S - 1`` elimination steps
    (meant for small ``S``; each step's matrix is materialised, see :mod:`causal_grad.kernels.xla`). Only the
    shape is checked: the values are the caller's to validate (:func:`causal_grad.stationary.stationary`)."""
    S = P.shape[0]
    if S == 1:
        return jnp.ones(P.shape[1:], P.dtype)
    cols, ss = {}, {}
    for k in range(S - 1, 0, -1):
        row = P[k, :k]  # (k, N): P[k, j], j < k
        s = _sum0(row)  # leaving k downwards, no subtraction
        ok = s > 0  # s = 0: k is absorbing in the censored chain
        frac = row / jnp.where(ok, s, 1)
        col = P[:k, k]
        cols[k], ss[k] = col, s
        P = materialize(P[:k, :k] + jnp.where(ok, col, 0)[:, None] * frac[None])
    mu = jnp.ones_like(ss[1])[None]
    for k in range(1, S):
        num = _sum0(mu * cols[k])  # Σ_{i<k} μ_i P[i, k]
        s = ss[k]
        m = jnp.maximum(num, s)
        pos = s > 0
        mu = materialize(jnp.concatenate([jnp.where(pos, mu * (s / m), 0), jnp.where(pos, num / m, 1)[None]], 0))
    return mu / _sum0(mu)[None]


def gth_loop(P: jax.Array) -> jax.Array:
    """GTH stationary law ``(S,)`` of one matrix ``P`` ``(S, S)`` with ``fori_loop``s (compile time flat in ``S``)."""
    S = P.shape[-1]
    idx = jnp.arange(S)

    def eliminate(t, carry):
        P, s_all = carry
        k = S - 1 - t
        lower = idx < k
        row = jnp.where(lower, P[k], 0.0)
        s = jnp.sum(row)
        # s = 0: in the censored chain state k never returns below, so it is absorbing (reducible π)
        ok = s > 0
        frac = row / jnp.where(ok, s, 1.0)  # entries <= 1: no overflow however small s is
        upd = jnp.where(lower & ok, P[:, k], 0.0)[:, None] * frac[None, :]
        return P + upd, s_all.at[k].set(s)

    P, s_all = lax.fori_loop(0, S - 1, eliminate, (P, jnp.zeros((S,), P.dtype)))

    def back(k, mu: jax.Array):
        # mu_k = (Σ_{i<k} mu_i P[i, k]) / s_k, computed as a rescaling so that nothing overflows
        num = jnp.sum(jnp.where(idx < k, mu * P[:, k], 0.0))
        s = s_all[k]
        m = jnp.maximum(num, s)
        scaled = (mu * (s / m)).at[k].set(num / m)
        # s_k = 0: an absorbing censored state restarts the law there (e_k is stationary on {0..k})
        return jnp.where(s > 0, scaled, (idx == k).astype(mu.dtype))

    mu = jnp.zeros((S,), P.dtype).at[0].set(1.0)
    mu = lax.fori_loop(1, S, back, mu)
    return mu / jnp.sum(mu)


def gth_reference(P: ArrayLike) -> np.ndarray:
    """The plain twin: GTH in NumPy float64 for one matrix ``P`` ``(S, S)``, the textbook loops."""
    P = np.array(P, dtype=np.float64)
    S = P.shape[0]
    s = np.zeros(S)
    for k in range(S - 1, 0, -1):
        s[k] = sum(P[k, j] for j in range(k))
        if s[k] > 0:
            for i in range(k):
                for j in range(k):
                    P[i, j] += P[i, k] * P[k, j] / s[k]
    mu = np.zeros(S)
    mu[0] = 1.0
    for k in range(1, S):
        if s[k] > 0:  # μ_k = num / s_k, with μ_0..μ_k scaled by s_k / max(num, s_k) so nothing overflows
            num = sum(mu[i] * P[i, k] for i in range(k))
            m = max(num, s[k])
            mu[:k] *= s[k] / m
            mu[k] = num / m
        else:
            mu[:] = 0.0
            mu[k] = 1.0
    return mu / mu.sum()


def stationary_batch_last(pi: jax.Array) -> jax.Array:
    """``μ_π`` ``(S, B)`` of batch-last matrices ``pi`` ``(S, S, B)``: :func:`gth_batch_last` for
    ``S ≤ UNROLL_MAX_S``, else :func:`gth_loop` per matrix."""
    if pi.shape[0] <= UNROLL_MAX_S:
        return gth_batch_last(pi)
    return jax.vmap(gth_loop)(jnp.transpose(pi, (2, 0, 1))).T
