"""The gradient of ``A1`` at initialisation to first order in ``β0`` (docs/theory.md §4), exact by enumeration.

At ``A1 = 0``, ``A2 = β0·I``, ``β0 → 0``: ``α_ij = 1/(i+1)``, ``a_i = 1/T``, ``out = ĉ`` (token frequencies of
the **whole** sequence, query included), ``ŷ = (1-ε)ĉ + ε/S``, and for every row ``i ≤ T-1`` (the query row
``i = T-1`` included, where ``s_{T-1} = q``) and ``j ≤ i``

    G[i, j] := lim_{β0→0} −(∂L/∂A1[i, j]) / β0 = (1-ε) / ((i+1)·T) · E[ w_i · (1[s_j = q] − v_i(q)) ],
    w_i = π[q, s_i] / ŷ(s_i) − Σ_b π[q, b] ĉ(b) / ŷ(b),     v_i(q) = (1/(i+1)) Σ_{j'≤i} 1[s_{j'} = q].

(``v_i`` at the query row counts the query token itself.) Derivation: ``∂score_i/∂A1[i,j] = β0 α_ij (1[s_j=q] −
v_i(q))`` and ``∂L/∂score_i = −(1-ε) a_i Σ_b y_b (1[s_i=b] − ĉ(b)) / ŷ(b) = −(1-ε) w_i / T`` at ``β0 = 0``.
``G`` is the **negated** loss gradient per unit ``β0`` (positive entries are directions the loss decreases
along); entries above the diagonal are 0 and every row sums to 0.

Because ``w_i`` is linear in the target row, the expectation over ``π`` folds into the effective targets ``Y``
of :mod:`causal_grad.gradients.enumerate`: with ``K[i, j] = Σ_{s,q} g_i(s,q) 1[s_j = q]`` and
``g_i = Y(s_i)/ŷ(s_i) − Σ_b Y(b) ĉ(b)/ŷ(b)``,
``G[i, j] = (1-ε)/((i+1)T) · (K[i, j] − (1/(i+1)) Σ_{j'≤i} K[i, j'])``. At ``ε = 0`` the ratio ``ĉ(b)/ŷ(b)`` is
taken as ``1[ĉ(b) > 0]`` (its limit), so the formula stays finite.

The per-sequence version (:func:`linearized_terms`) is the unbiased Monte Carlo estimator used by
:func:`causal_grad.gradients.monte_carlo.monte_carlo_linearized_at_init`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from .._validate import arrays
from .._x64 import x64
from ..stationary import stationary
from ..task import InContextTask
from .enumerate import check_enumerable, chunking, context_tokens, effective_targets, weight_table

__all__ = ["linearized_gradient_at_init", "row_centre_lower", "linearized_terms"]


def _ratio(c, yhat):
    """``ĉ/ŷ`` with the ``ε = 0`` limit ``1[ĉ > 0]`` where both vanish."""
    return jnp.where(c > 0, c / jnp.where(c > 0, yhat, 1.0), 0.0)


@arrays(seq=dict(kind="int", ndim=2), Y=dict(ndim=2))
def linearized_terms(seq, Y, eps):
    """Per-sequence factors of the linearized gradient for full sequences ``seq`` ``(B, T)`` (query last) and
    target weights ``Y`` ``(B, S)`` (``π[q]`` times the sequence's weight): returns ``(g, E)`` with
    ``g[b, i] = Y(s_i)/ŷ(s_i) − Σ_c Y(c) ĉ(c)/ŷ(c)`` and ``E[b, j] = 1[s_j = q]``, both ``(B, T)``."""
    B, T = seq.shape
    S = Y.shape[-1]
    X = jax.nn.one_hot(seq, S, dtype=Y.dtype)  # (B, T, S)
    c = jnp.mean(X, axis=1)  # ĉ over the whole sequence, query included
    yhat = (1.0 - eps) * c + eps / S
    r = Y / jnp.where(yhat > 0, yhat, 1.0)  # read at present tokens only, where ŷ ≥ (1-ε)/T > 0
    mass = jnp.sum(Y * _ratio(c, yhat), axis=-1)  # Σ_c Y(c) ĉ(c)/ŷ(c)
    g = jnp.take_along_axis(r, seq, axis=1) - mass[:, None]
    E = (seq == seq[:, -1:]).astype(Y.dtype)
    return g, E


@arrays(K=dict(ndim=2))
def row_centre_lower(K, eps):
    """``(1-ε)/((i+1)T) · (K[i,j] − mean_{j'≤i} K[i,j'])`` on ``j ≤ i``, 0 above the diagonal."""
    T = K.shape[0]
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    cnt = jnp.arange(1, T + 1, dtype=K.dtype)
    Km = jnp.where(mask, K, 0.0)
    centred = Km - (jnp.sum(Km, axis=1) / cnt)[:, None]
    return jnp.where(mask, (1.0 - eps) / (cnt[:, None] * T) * centred, 0.0)


@partial(jax.jit, static_argnames=("B", "nchunks"))
def _linearized(pis, mus, parents, eps, *, B, nchunks):
    n = parents.shape[0]
    S = pis.shape[-1]
    T = n + 1
    table, flat = weight_table(pis, mus)

    def body(c, K):
        tokens, valid = context_tokens(c * B, B, n, S)
        Y = effective_targets(tokens, valid, parents, table, flat)  # (B, S_q, S)
        q = jnp.broadcast_to(jnp.arange(S, dtype=tokens.dtype)[None, :, None], (B, S, 1))
        seq = jnp.concatenate([jnp.broadcast_to(tokens[:, None, :], (B, S, n)), q], axis=-1).reshape(B * S, T)
        g, E = linearized_terms(seq, Y.reshape(B * S, S), eps)
        return K + g.T @ E

    K = lax.fori_loop(0, nchunks, body, jnp.zeros((T, T), pis.dtype))
    return row_centre_lower(K, eps)


def linearized_gradient_at_init(task: InContextTask, pis: ArrayLike, *, eps: float) -> jax.Array:
    """``G = lim_{β0→0} −(∂L/∂A1)/β0`` at ``A1 = 0``, ``A2 = β0·I`` (docs/theory.md §4), ``(T, T)`` float64, exact.

    The population is uniform over ``pis`` as in :func:`causal_grad.exact_population_gradient` (same
    validation, same size limit). Sign: this is the **negated** gradient (what gradient descent adds to
    ``A1`` per unit learning rate and unit ``β0``); golden key ``neg_grad_A1_at_init_per_beta0``.
    """
    pis, eps = check_enumerable(task, pis, eps, what="linearized_gradient_at_init")
    n, S, k = task.n, task.vocab_size, pis.shape[0]
    B, nchunks = chunking(S**n, k, n, S)
    with x64():
        pis_j = jnp.asarray(pis, jnp.float64)
        mus = stationary(pis_j)
        parents = jnp.asarray(task.parents, jnp.int32)
        return _linearized(pis_j, mus, parents, jnp.float64(eps), B=B, nchunks=nchunks)
