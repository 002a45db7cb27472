"""Stationary laws of transition matrices by Grassmann–Taksar–Heyman (GTH) elimination (THEORY §1).

Under small Dirichlet concentrations ``μ_π`` has entries far below 1e-10. An eigenvector or a linear solve
loses them (and can even return negative entries); GTH elimination is subtraction-free, so every entry of
``μ`` is computed to nearly full relative accuracy.

GTH (state censoring): for ``k = S-1, …, 1`` remove state ``k`` from the chain. With ``s_k = Σ_{j<k} P[k, j]``
(the probability of leaving ``k`` to a lower state, computed without subtraction), the censored chain on
``{0, …, k-1}`` is ``P[i, j] += P[i, k] P[k, j] / s_k``. Back-substitution: ``μ_0 ∝ 1`` and
``μ_k = Σ_{i<k} μ_i P[i, k] / s_k``, rescaled at every step so that ratios beyond the float range
(``α = 1e-3`` gives them) underflow harmlessly instead of overflowing; finally normalise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["stationary", "stationary_residual"]


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


@jax.jit
def stationary(pi: jax.Array) -> jax.Array:
    """The stationary law ``μ`` with ``μ π = μ`` of each transition matrix in ``pi`` (shape ``(..., S, S)``).

    Vectorised over leading axes; the dtype of ``pi`` is kept (pass float64 under ``jax_enable_x64`` for exact
    work). For a reducible ``π`` the result is *a* stationary law (finite, non-negative, supported on a closed
    class), not a unique one.
    """
    pi = jnp.asarray(pi)
    if not jnp.issubdtype(pi.dtype, jnp.floating):
        pi = pi.astype(jnp.float32)
    flat = pi.reshape((-1,) + pi.shape[-2:])
    return jax.vmap(_gth_single)(flat).reshape(pi.shape[:-1])


def stationary_residual(pi: jax.Array, mu: jax.Array) -> jax.Array:
    """``max_b |(μπ)_b − μ_b|`` per matrix: how far ``μ`` is from stationary."""
    return jnp.max(jnp.abs(jnp.einsum("...a,...ab->...b", mu, pi) - mu), axis=-1)
