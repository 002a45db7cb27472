"""Stationary laws of transition matrices by Grassmann–Taksar–Heyman (GTH) elimination (docs/theory.md §1).

Under small Dirichlet concentrations ``μ_π`` has entries far below 1e-10. An eigenvector or a linear solve
loses them (and can even return negative entries); GTH elimination is subtraction-free, so every entry of
``μ`` is computed to nearly full relative accuracy.

GTH (state censoring): for ``k = S-1, …, 1`` remove state ``k`` from the chain. With ``s_k = Σ_{j<k} P[k, j]``
(the probability of leaving ``k`` to a lower state, computed without subtraction), the censored chain on
``{0, …, k-1}`` is ``P[i, j] += P[i, k] P[k, j] / s_k``. Back-substitution: ``μ_0 ∝ 1`` and
``μ_k = Σ_{i<k} μ_i P[i, k] / s_k``, rescaled at every step so that ratios beyond the float range
(``α = 1e-3`` gives them) underflow harmlessly instead of overflowing; finally normalise.

Implementation: for ``S ≤ 32`` the elimination is unrolled over ``k`` on a batch-last ``(S, S, N)`` array, so each
step is elementwise over the batch (:func:`gth_batch_last`, used by the samplers directly); larger ``S`` uses a
``fori_loop`` per matrix. Both perform the same subtraction-free operations.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._fusion import materialize
from ._validate import arrays, check_fits_memory, check_stochastic

__all__ = ["stationary", "stationary_residual", "gth_batch_last"]

_UNROLL_MAX_S = 32


def _sum0(x):
    acc = x[0]
    for i in range(1, x.shape[0]):
        acc = acc + x[i]
    return acc


@arrays(P=dict(ndim=3))
def gth_batch_last(P: jax.Array) -> jax.Array:
    """GTH stationary laws of a batch-last stack ``P`` of shape ``(S, S, N)`` (``P[:, :, n]`` is one matrix);
    returns ``(S, N)``. Same arithmetic as :func:`stationary`, unrolled over the ``S - 1`` elimination steps
    (meant for small ``S``; each step's matrix is materialised, see :mod:`causal_grad._fusion`)."""
    S = P.shape[0]
    if S == 1:
        return jnp.ones(P.shape[1:], P.dtype)
    cols, ss = {}, {}
    for k in range(S - 1, 0, -1):
        row = P[k, :k]                                 # (k, N): P[k, j], j < k
        s = _sum0(row)                                 # leaving k downwards, no subtraction
        ok = s > 0                                     # s = 0: k is absorbing in the censored chain
        frac = row / jnp.where(ok, s, 1)
        col = P[:k, k]
        cols[k], ss[k] = col, s
        P = materialize(P[:k, :k] + jnp.where(ok, col, 0)[:, None] * frac[None])
    mu = jnp.ones_like(ss[1])[None]
    for k in range(1, S):
        num = _sum0(mu * cols[k])                      # Σ_{i<k} μ_i P[i, k]
        s = ss[k]
        m = jnp.maximum(num, s)
        pos = s > 0
        mu = materialize(jnp.concatenate([jnp.where(pos, mu * (s / m), 0), jnp.where(pos, num / m, 1)[None]], 0))
    return mu / _sum0(mu)[None]


def _gth_single(P: jax.Array) -> jax.Array:
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

    def back(k, mu):
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


def stationary(pi: jax.Array) -> jax.Array:
    """The stationary law ``μ`` with ``μ π = μ`` of each transition matrix in ``pi`` (shape ``(..., S, S)``).

    Vectorised over leading axes; the dtype of ``pi`` is kept (pass float64 under ``jax_enable_x64`` for exact
    work). For a reducible ``π`` the result is *a* stationary law (finite, non-negative, supported on a closed
    class), not a unique one.

    Refuses (before computing) anything but real ``(..., S, S)`` matrices; their values (finite, non-negative,
    rows summing to 1) are checked when they are concrete, i.e. not inside ``jit``/``vmap``.
    """
    shape = tuple(int(d) for d in np.shape(pi))
    if len(shape) >= 2:  # the size first: the value checks below would copy the stack
        n = math.prod(shape)  # exact (Python ints)
        check_fits_memory("pi", 3 * n * 8, f"3 working copies of {n} matrix entries (the value checks in float64, "
                                           f"the GTH elimination)")
    pi = check_stochastic("pi", pi, stack=True)
    return _stationary(pi)


@jax.jit
def _stationary(pi: jax.Array) -> jax.Array:
    pi = jnp.asarray(pi)
    if not jnp.issubdtype(pi.dtype, jnp.floating):
        pi = pi.astype(jnp.float32)
    flat = pi.reshape((-1,) + pi.shape[-2:])
    if pi.shape[-1] <= _UNROLL_MAX_S:
        return gth_batch_last(jnp.transpose(flat, (1, 2, 0))).T.reshape(pi.shape[:-1])
    return jax.vmap(_gth_single)(flat).reshape(pi.shape[:-1])


@arrays(pi=dict(min_ndim=2, square=True), mu=dict(min_ndim=1))
def stationary_residual(pi: jax.Array, mu: jax.Array) -> jax.Array:
    """``max_b |(μπ)_b − μ_b|`` per matrix: how far ``μ`` is from stationary."""
    return jnp.max(jnp.abs(jnp.einsum("...a,...ab->...b", mu, pi) - mu), axis=-1)
