"""The exact population loss and gradient of the reduced model (docs/theory.md §3), by enumeration.

    L(A1, A2) = E_{π ∈ {π_1..π_k}} E_{s | π} E_{q ~ U[S]} [ −Σ_b π[q, b] log ŷ_b(s, q) ],

with ``ŷ`` the reduced model of :mod:`causal_grad.models.reduced` (layer 1 ``α_i = softmax_{j≤i} A1[i, j]``,
``v_i = Σ_{j≤i} α_ij x(s_j)``; layer 2 at the query ``a = softmax_i(x(q)ᵀ A2 v_i)``, ``out = Σ_i a_i x(s_i)``;
readout ``ŷ = (1-ε)·out + ε/S``). The sum runs over all ``S^(T-1)`` contexts and ``S`` queries with the
effective targets of :mod:`causal_grad.gradients.enumerate`, in float64, chunk by chunk inside one
jit-compiled ``lax.fori_loop`` (memory stays bounded); ``dL/dA1``, ``dL/dA2`` come from automatic
differentiation of each chunk's weighted loss and are accumulated with it.

For speed, one context is evaluated for all ``S`` queries at once: layer 1 at the graph positions does not
depend on the query, and the query position's ``v_{T-1} = Σ_{j<T-1} α_{T-1,j} x(s_j) + α_{T-1,T-1} x(q)``.
This specialised form is tested against :func:`causal_grad.models.reduced.reduced_loss`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from .._validate import arrays
from .._x64 import x64
from ..models.reduced import causal_softmax
from ..reprs import compact_repr
from ..stationary import stationary
from ..task import InContextTask
from .enumerate import check_enumerable, check_params, chunking, context_tokens, effective_targets, weight_table

__all__ = ["ExactGradient", "exact_population_gradient", "all_query_predictions"]


class ExactGradient(NamedTuple):
    """``(loss, dA1, dA2)``: the exact population loss and its gradients ``dL/dA1`` ``(T, T)``, ``dL/dA2``
    ``(S, S)`` (loss gradients, not negated), float64."""

    loss: jax.Array
    dA1: jax.Array
    dA2: jax.Array

    def __repr__(self) -> str:  # arrays as dtype[shape] (causal_grad.reprs)
        return compact_repr(self)


@arrays(A1=dict(ndim=2), A2=dict(ndim=2), tokens=dict(kind="int", ndim=2))
def all_query_predictions(A1, A2, tokens, eps):
    """``ŷ`` ``(B, S, S)`` of the reduced model for contexts ``tokens`` ``(B, T-1)`` and every query ``q``
    (axis 1): ``ŷ[c, q]`` is the prediction for the sequence ``(tokens[c], q)``."""
    B, n = tokens.shape
    S = A2.shape[0]
    X = jax.nn.one_hot(tokens, S, dtype=A1.dtype)  # (B, n, S)
    alpha = causal_softmax(A1)  # (T, T)
    V = jnp.einsum("ij,bjs->bis", alpha[:n, :n], X)  # v_i at graph positions (query-free)
    u = jnp.einsum("j,bjs->bs", alpha[n, :n], X)  # query position's v without its own token
    sc_graph = jnp.einsum("qs,bis->bqi", A2, V)  # (B, S_q, n)
    sc_query = jnp.einsum("qs,bs->bq", A2, u) + alpha[n, n] * jnp.diagonal(A2)[None, :]
    a = jax.nn.softmax(jnp.concatenate([sc_graph, sc_query[..., None]], axis=-1), axis=-1)  # (B, S_q, T)
    out = jnp.einsum("bqi,bis->bqs", a[..., :n], X) + a[..., n][..., None] * jnp.eye(S, dtype=A1.dtype)
    return (1.0 - eps) * out + eps / S


def _chunk_loss(A1, A2, tokens, Y, eps):
    yhat = all_query_predictions(A1, A2, tokens, eps)
    pos = Y > 0
    return -jnp.sum(jnp.where(pos, Y * jnp.log(jnp.where(pos, yhat, 1.0)), 0.0))


@partial(jax.jit, static_argnames=("B", "nchunks"))
def _exact(A1, A2, pis, mus, parents, eps, *, B, nchunks):
    n = A1.shape[0] - 1
    S = A2.shape[0]
    table, flat = weight_table(pis, mus)
    vg = jax.value_and_grad(_chunk_loss, argnums=(0, 1))

    def body(c, acc):
        tokens, valid = context_tokens(c * B, B, n, S)
        Y = effective_targets(tokens, valid, parents, table, flat)
        l, (g1, g2) = vg(A1, A2, tokens, Y, eps)
        return acc[0] + l, acc[1] + g1, acc[2] + g2

    zero = (jnp.zeros((), A1.dtype), jnp.zeros_like(A1), jnp.zeros_like(A2))
    return lax.fori_loop(0, nchunks, body, zero)


def exact_population_gradient(
    task: InContextTask, pis: ArrayLike, A1: ArrayLike, A2: ArrayLike, *, eps: float
) -> ExactGradient:
    """Exact population loss and gradients ``(loss, dL/dA1, dL/dA2)`` of the reduced model, float64.

    Args:
        task: a :class:`causal_grad.InContextTask` (its graph and ``S``; its prior is not used).
        pis: transition matrices ``(k, S, S)`` (or one ``(S, S)``); the population is uniform over them.
        A1: ``(T, T)`` first-layer position scores.
        A2: ``(S, S)`` second-layer token scores.
        eps: readout smoothing ``ε ∈ [0, 1)``.

    The expectation runs over all ``S^(T-1)`` contexts and ``S`` queries (see
    :mod:`causal_grad.gradients.enumerate`); sizes with ``S^(T-1)·(k+S) > 2·10^7`` raise ``ValueError``
    (use :func:`causal_grad.monte_carlo_gradient`). One compilation per ``(T, S, k)``.
    """
    pis, eps = check_enumerable(task, pis, eps, what="exact_population_gradient")
    A1, A2 = check_params(task, A1, A2)
    n, S, k = task.n, task.vocab_size, pis.shape[0]
    B, nchunks = chunking(S**n, k, n, S)
    with x64():
        pis_j = jnp.asarray(pis, jnp.float64)
        mus = stationary(pis_j)
        parents = jnp.asarray(task.parents, jnp.int32)
        loss, g1, g2 = _exact(
            jnp.asarray(A1, jnp.float64),
            jnp.asarray(A2, jnp.float64),
            pis_j,
            mus,
            parents,
            jnp.float64(eps),
            B=B,
            nchunks=nchunks,
        )
        return ExactGradient(loss, g1, g2)
