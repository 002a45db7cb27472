"""The mutual-information approximation of the gradient, and the data-processing checks (THEORY §4, C2–C4).

For one transition matrix ``π`` (stationary law ``μ``, ``Q(a,b) = μ(a)π[a,b]``) and graph positions ``j ≤ i``:

    M_π[i, j] = ⟨P_{ji}, Q⟩_μ = Σ_{a,b} Pr(s_j = a | s_i = b) · π[a, b]                      (bounded by S)
    M_{ε,π}[i, j] = (1-ε) Σ_{a,b} P_{ji}(a,b) π[a,b] / ŷ∞(b),     ŷ∞ = (1-ε)μ + ε/S,

and ``M = E_π M_π``. Both are computed without forming ``P_{ji}``: with the reversed chain
``π̂[b, x] = μ(x)π[x, b]/μ(b)`` (:func:`causal_grad.laws.time_reversal`), ``Pr(s_j = a | s_i = b) =
(π̂^{d_i} π^{d_j})[b, a]`` (walk up ``d_i`` steps from ``i`` to the lowest common ancestor, down ``d_j`` to ``j``), so

    M_{ε,π}[i, j] = Σ_b c(b) (π̂^{d_i} π^{d_j + 1})[b, b],   c(b) = (1-ε) μ(b) / ŷ∞(b)   (c = 1[μ > 0] for ε = 0),

a trace that depends on ``(d_i, d_j)`` only: one ``D × S²`` by ``S² × D`` matrix product gives every depth pair
at once (``D`` = the padded depth bucket). Across trees the entry is ``Σ_b c(b) μ(b)`` (``= 1`` for ``ε = 0``).
Every factor is stochastic, so nothing overflows however small ``μ`` is; ``M_ε → M`` as ``ε → 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_positive_float, check_transition_matrices
from ._x64 import x64
from .graphs import Graph
from .laws import _padded_geometry, matrix_powers, pair_geometry, time_reversal
from .stationary import stationary

__all__ = [
    "MIApproximation",
    "mi_matrix",
    "mi_approximation",
]

_PI_BATCH = 16  # matrices processed together (bounds memory at n = 255, S = 32 to a few tens of MB)


def _check_eps(eps):
    if eps is None:
        return None
    eps = check_positive_float("eps", eps)
    if eps >= 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps}")
    return eps


def _weights(mu, eps):
    """``c(b) = (1-ε) μ(b) / ŷ∞(b)``, or ``1[μ(b) > 0]`` when ``eps`` is None."""
    if eps is None:
        return (mu > 0).astype(mu.dtype)
    S = mu.shape[-1]
    yhat = (1.0 - eps) * mu + eps / S
    return (1.0 - eps) * mu / yhat


def _depth_table(pi, n_pad, eps):
    """``G[d_i, d_j] = Σ_b c(b) (π̂^{d_i} π^{d_j+1})[b, b]`` for all depths ``< n_pad``, and the cross-tree value."""
    S = pi.shape[-1]
    mu = stationary(pi)
    c = _weights(mu, eps)
    rev = matrix_powers(time_reversal(pi, mu), n_pad)  # π̂^d, [d, b, a]
    fwd = matrix_powers(pi, n_pad) @ pi  # π^{d+1}, [d, a, b]
    left = (c[None, :, None] * rev).reshape(n_pad, S * S)  # [d, (b, a)]
    right = jnp.swapaxes(fwd, -1, -2).reshape(n_pad, S * S)  # [d, (b, a)]
    G = left @ right.T
    cross = jnp.sum(c * mu)
    return G, cross


def _mi_padded_single(pi, d_i, d_j, same, n_pad, eps):
    G, cross = _depth_table(pi, n_pad, eps)
    M = jnp.where(same, G[d_i, d_j], cross)
    return jnp.tril(M)


@partial(jax.jit, static_argnums=(4, 5, 6))
def _mi_padded_many(pis, d_i, d_j, same, n_pad, eps, batch):
    return jax.lax.map(lambda p: _mi_padded_single(p, d_i, d_j, same, n_pad, eps), pis, batch_size=batch)


def mi_matrix(graph: Graph, pi, *, eps: float | None = None) -> jax.Array:
    """``M_π`` (``eps=None``) or ``M_{ε,π}`` for one transition matrix ``pi`` ``(S, S)``: shape ``(n, n)``,
    ``[i, j]`` for ``j ≤ i``, zero above the diagonal. Traceable: ``jax.vmap`` over a stack of ``π`` (the graph is
    static). Runs in ``pi``'s dtype; call inside ``with causal_grad.x64():`` with float64 for exact work."""
    geo = pair_geometry(graph)
    eps = _check_eps(eps)
    pi = jnp.asarray(pi)
    if pi.ndim != 2 or pi.shape[0] != pi.shape[1]:
        raise ValueError(f"pi must be one (S, S) transition matrix (vmap over a stack), got shape {pi.shape}")
    di, dj, same = _padded_geometry(geo)
    n = graph.n
    return _mi_padded_single(pi, di, dj, same, geo.n_pad, eps)[:n, :n]


@dataclass(frozen=True)
class MIApproximation:
    """The mutual-information approximation over a set of transition matrices.

    ``M`` ``(n, n)``: mean over ``π`` of ``M_π`` (or ``M_{ε,π}``); ``per_pi`` ``(k, n, n)``; ``se`` ``(n, n)``:
    standard error of the mean across ``π`` (``std / √k``, NaN when ``k = 1``). All zero above the diagonal.
    """

    M: np.ndarray
    per_pi: np.ndarray
    se: np.ndarray
    eps: float | None = None
    graph: Graph | None = field(default=None, compare=False)

    def parent_margins(self) -> np.ndarray:
        """Per ``π`` and position ``i`` with a parent: ``M_π[i, p(i)] − max_{j < i, j ≠ p(i)} M_π[i, j]``
        (``+inf`` when ``p(i)`` is the only earlier position; NaN for roots). Shape ``(k, n)``."""
        return _parent_margins(self.graph, self.per_pi)


def _parent_margins(graph: Graph, per_pi: np.ndarray) -> np.ndarray:
    k, n, _ = per_pi.shape
    out = np.full((k, n), np.nan)
    for i, p in enumerate(graph.parents):
        if p < 0:
            continue
        others = [j for j in range(i) if j != p]
        if not others:
            out[:, i] = np.inf
            continue
        out[:, i] = per_pi[:, i, p] - per_pi[:, i, others].max(axis=1)
    return out


def mi_approximation(task, pis, *, eps: float | None = None) -> MIApproximation:
    """``M[i, j] = mean_π ⟨P_{ji}, Q⟩_μ`` (``eps=None``) or ``M_ε`` (THEORY §4), in float64.

    Args:
        task: an :class:`~causal_grad.task.InContextTask` (its ``graph`` and ``vocab_size`` are used).
        pis: transition matrices ``(k, S, S)`` (or one ``(S, S)``) over which to average.
        eps: readout smoothing ``ε ∈ (0, 1)``; ``None`` gives the ``ε → 0`` limit ``M``.
    """
    from .task import InContextTask

    if not isinstance(task, InContextTask):
        raise TypeError(f"task must be a causal_grad.task.InContextTask, got {type(task).__name__}")
    eps = _check_eps(eps)
    pis = check_transition_matrices("pis", pis, task.vocab_size)
    graph = task.graph
    geo = pair_geometry(graph)
    di, dj, same = _padded_geometry(geo)
    n, k = graph.n, pis.shape[0]
    with x64():
        per = _mi_padded_many(jnp.asarray(pis, jnp.float64), di, dj, same, geo.n_pad, eps, min(k, _PI_BATCH))
        per = np.asarray(per)[:, :n, :n]
    M = per.mean(axis=0)
    se = per.std(axis=0, ddof=1) / math.sqrt(k) if k > 1 else np.full((n, n), np.nan)
    if k > 1:
        se = np.tril(se)
    return MIApproximation(M=M, per_pi=per, se=se, eps=eps, graph=graph)
