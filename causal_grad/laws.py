"""Exact pairwise laws of the in-context task on a forest (docs/theory.md §4).

Notation (docs/theory.md §1, §4), for one transition matrix ``π`` with stationary law ``μ`` (``μ π = μ``, GTH):

* the parent–child joint ``Q(a, b) = μ(a) π[a, b]``;
* for graph positions ``j, i`` with lowest common ancestor ``c`` at depths ``d_j, d_i`` below it,

      P_{ji}(a, b) = Pr(s_j = a, s_i = b) = Σ_x μ(x) (π^{d_j})[x, a] (π^{d_i})[x, b],

  i.e. ``P_{ji} = (π^{d_j})ᵀ D π^{d_i}`` with ``D = diag(μ)``; ``P_{ii} = diag(μ)`` (``d_i = d_j = 0``), an
  ancestor ``j`` at distance ``d`` gives ``D π^d``, and positions in different trees give ``μ ⊗ μ``.

Index order of :func:`pairwise_joint` (the golden files' ``pairwise_joint_pi0``): ``P[i, j, a, b] =
Pr(s_j = a, s_i = b)``, so ``P[i, j] = P_{ji}`` and ``P[i, p(i)] = Q``.

The graph is static (plain Python/NumPy geometry); ``π`` is a traced array, so every function here can be
``jax.vmap``-ed over a stack of matrices. Shapes are padded to power-of-two buckets internally so that graphs of
similar size share one compiled function. Call inside ``with causal_grad.x64():`` with float64 ``π`` for exact
work.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._validate import arrays, check_array, check_int, check_pair_memory, check_stochastic
from .graphs import Graph
from .stationary import stationary

__all__ = [
    "PairGeometry",
    "pair_geometry",
    "matrix_powers",
    "parent_child_joint",
    "time_reversal",
    "pairwise_joint",
    "pair_joint_from_depths",
    "marginals",
    "bucket",
]


class PairGeometry(NamedTuple):
    """Tree geometry of every ordered pair of graph positions, as NumPy int arrays of shape ``(n, n)``.

    ``d_i[i, j]`` / ``d_j[i, j]``: depth of ``i`` / ``j`` below ``lca(i, j)`` (0 when it is that position itself);
    ``same_tree[i, j]``: whether ``i`` and ``j`` share a tree (otherwise the depths are 0 and meaningless);
    ``path_length[i, j] = d_i + d_j`` (``-1`` across trees). ``n_pad``: the power-of-two bucket (≥ n, ≥ 4)
    used for compiled shapes; every depth is ``< n_pad``.
    """

    d_i: np.ndarray
    d_j: np.ndarray
    same_tree: np.ndarray
    path_length: np.ndarray
    n_pad: int

    def padded(self) -> list[np.ndarray]:
        """``[d_i, d_j, same_tree]`` zero-padded to ``(n_pad, n_pad)`` (the compiled functions' shapes; padding
        positions are "different trees" at depth 0, and callers drop them)."""
        n, n_pad = self.d_i.shape[0], self.n_pad
        out = []
        for a in (self.d_i, self.d_j, self.same_tree):
            z = np.zeros((n_pad, n_pad), dtype=a.dtype)
            z[:n, :n] = a
            out.append(z)
        return out


def bucket(m: int, minimum: int = 4) -> int:
    """The smallest ``minimum·2^k ≥ m`` (``k ≥ 0``): the padded size of compiled shapes, so that graphs of similar
    size share one compiled function."""
    m = check_int("m", m, minimum=0)
    b = check_int("minimum", minimum, minimum=1)
    while b < m:
        b *= 2
    return b


def _check_forest(graph) -> Graph:
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a causal_grad.graphs.Graph, got {type(graph).__name__}")
    if not graph.is_forest:
        raise ValueError("graph must be a single-parent forest (pairwise laws use lowest common ancestors)")
    return graph


@lru_cache(maxsize=128)
def _geometry(graph: Graph) -> PairGeometry:
    L = graph.lca_matrix
    depth = np.asarray(graph.depth, dtype=np.int64)
    same = L >= 0
    dl = np.where(same, depth[np.maximum(L, 0)], 0)
    d_i = np.where(same, depth[:, None] - dl, 0)
    d_j = np.where(same, depth[None, :] - dl, 0)
    path = np.where(same, d_i + d_j, -1)
    for a in (d_i, d_j, same, path):
        a.setflags(write=False)
    return PairGeometry(d_i, d_j, same, path, bucket(graph.n))


def pair_geometry(graph: Graph) -> PairGeometry:
    """The :class:`PairGeometry` of a forest (cached per graph): depths below the LCA of every pair."""
    return _geometry(_check_forest(graph))


def _check_square(name, pi, ndim=None):
    """Structure of (a stack of) square matrices ``(..., S, S)``; works on tracers."""
    pi = check_array(name, pi, ndim=ndim if ndim else None, min_ndim=None if ndim else 2)
    if pi.shape[-1] != pi.shape[-2]:
        raise ValueError(f"{name} must be square (..., S, S), got shape {tuple(pi.shape)}")
    return pi


def _check_mu(mu, pi):
    if mu is not None:
        mu = check_array("mu", mu, min_ndim=1)
        if mu.shape[-1] != pi.shape[-1]:
            raise ValueError(
                f"mu must have shape (..., {pi.shape[-1]}) (one mass per state of pi), got {tuple(mu.shape)}"
            )


def matrix_powers(pi: ArrayLike, num: int) -> jax.Array:
    """``[π^0, π^1, …, π^{num-1}]``, shape ``(num, S, S)`` (``π^0 = I``), by repeated products (a ``lax.scan``).

    Products of non-negative matrices involve no subtraction, so every entry keeps its relative accuracy.
    """
    _check_square("pi", pi, ndim=2)
    num = check_int("num", num, minimum=1)
    pi = jnp.asarray(pi)
    eye = jnp.eye(pi.shape[-1], dtype=pi.dtype)

    def step(cur, _):
        return cur @ pi, cur

    _, pows = jax.lax.scan(step, eye, None, length=num)
    return pows


def parent_child_joint(pi: jax.Array, mu: jax.Array | None = None) -> jax.Array:
    """``Q(a, b) = μ(a) π[a, b]``, the joint law of (parent, child); broadcasts over leading axes of ``pi``."""
    _check_mu(mu, _check_square("pi", pi))
    pi = jnp.asarray(pi)
    if mu is None:
        mu = stationary(pi)
    return mu[..., :, None] * pi


def time_reversal(pi: jax.Array, mu: jax.Array | None = None) -> jax.Array:
    """The reversed chain ``π̂[b, x] = μ(x) π[x, b] / μ(b)`` = ``Pr(parent = x | child = b)``.

    Rows with ``μ(b) = 0`` (unreachable states of a reducible ``π``) are set to ``e_b`` so that ``π̂`` stays
    stochastic; those states carry no probability and every caller masks them out. Broadcasts over leading axes.
    """
    _check_mu(mu, _check_square("pi", pi))
    pi = jnp.asarray(pi)
    if mu is None:
        mu = stationary(pi)
    S = pi.shape[-1]
    pos = mu > 0
    num = mu[..., :, None] * pi  # Q(x, b)
    rev = jnp.swapaxes(num, -1, -2) / jnp.where(pos, mu, 1.0)[..., :, None]
    return jnp.where(pos[..., :, None], rev, jnp.eye(S, dtype=pi.dtype))


@arrays(pows=dict(ndim=3), mu=dict(ndim=1), d_i=dict(kind="int"), d_j=dict(kind="int"))
def pair_joint_from_depths(pows: jax.Array, mu: jax.Array, d_i: ArrayLike, d_j: ArrayLike) -> jax.Array:
    """``P = (π^{d_j})ᵀ diag(μ) π^{d_i}`` for index arrays ``d_i, d_j`` (any common shape), from ``pows`` =
    :func:`matrix_powers`. Result shape ``(*d_i.shape, S, S)``, ``[.., a, b] = Pr(s_j = a, s_i = b)``."""
    A = pows[d_j]
    B = pows[d_i]
    return jnp.einsum("...xa,x,...xb->...ab", A, mu, B)


@partial(jax.jit, static_argnums=(4,))
def _pairwise_padded(pi, d_i, d_j, same, n_pad):
    mu = stationary(pi)
    pows = matrix_powers(pi, n_pad)
    P = pair_joint_from_depths(pows, mu, d_i, d_j)
    cross = mu[:, None] * mu[None, :]
    return jnp.where(same[..., None, None], P, cross)


def pairwise_joint(graph: Graph, pi: ArrayLike) -> jax.Array:
    """All pairwise laws of a forest: ``P[i, j, a, b] = Pr(s_j = a, s_i = b)``, shape ``(n, n, S, S)``.

    ``P[i, j] = Σ_x μ(x) (π^{d_j})[x, a] (π^{d_i})[x, b]`` with depths below ``lca(i, j)``; ``μ ⊗ μ`` across
    trees; ``diag(μ)`` on the diagonal. ``π`` is one ``(S, S)`` matrix (``jax.vmap`` over a stack); the graph is
    static. Memory is ``n² S²`` entries: for large ``n`` and ``S`` compute what you need from
    :func:`pair_joint_from_depths` instead.
    """
    graph = _check_forest(graph)
    if np.ndim(pi) != 2:
        raise ValueError(f"pi must be one (S, S) transition matrix (vmap over a stack), got shape {np.shape(pi)}")
    pi = check_stochastic("pi", pi)
    check_pair_memory("graph/pi", graph.n, bucket(graph.n), pi.shape[-1], pi.dtype, copies=5)
    geo = pair_geometry(graph)
    pi = jnp.asarray(pi)
    di, dj, same = geo.padded()
    n = graph.n
    return _pairwise_padded(pi, di, dj, same, geo.n_pad)[:n, :n]


@arrays(P=dict(min_ndim=2))
def marginals(P: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The two marginals ``(Σ_b P[..., a, b], Σ_a P[..., a, b])`` of joint laws ``P`` (leading axes broadcast)."""
    P = jnp.asarray(P)
    return P.sum(-1), P.sum(-2)
