"""Recovering the graph from sequences without a transformer: empirical mutual information and Chow–Liu.

These are the classical references for the sample-complexity study (how many sequences each method needs to
recover a tree). With ``N`` sequences and empirical pair laws ``P̂_{ji}(a, b)``:

* :func:`empirical_pair_mi` — the plug-in KL mutual information ``Î(s_j; s_i)`` for every pair of positions;
* :func:`chow_liu` — Chow & Liu (1968): the maximum-weight spanning tree of ``Î`` (networkx), with edges
  oriented forward in time (the earlier endpoint is the parent). A forest's cross-tree pairs have ``I = 0``;
  edges whose ``Î`` does not exceed ``threshold`` are dropped, so the estimate can be a forest. The default
  threshold is the plug-in bias of a pair of independent variables, ``(S−1)²/(2N)`` (Miller–Madow), times 3.

The true graph has forward edges and one parent per position; a spanning tree oriented by time can give a
position two earlier neighbours, in which case the estimate keeps the one with the larger ``Î``.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
from jax.typing import ArrayLike

from ._validate import check_int, check_positive_float
from .graphs import Graph

__all__ = ["empirical_pair_mi", "chow_liu", "parent_recovery"]


def _check_tokens(tokens, S):
    t = np.asarray(tokens)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"tokens must be an integer array, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"tokens must have shape (N, n) with N, n >= 1, got {t.shape}")
    if t.min() < 0 or t.max() >= S:
        raise ValueError(f"tokens must lie in 0..{S - 1} (vocab_size {S})")
    return t


def empirical_pair_mi(tokens: ArrayLike, vocab_size: int) -> np.ndarray:
    """``Î[i, j]`` = plug-in KL mutual information (nats) of positions ``i`` and ``j`` over the rows of
    ``tokens`` ``(N, n)`` (pass the graph positions only, not the query); symmetric, zero diagonal."""
    S = check_int("vocab_size", vocab_size, minimum=2)
    t = _check_tokens(tokens, S)
    N, n = t.shape
    onehot = np.eye(S)[t]  # (N, n, S)
    joint = np.einsum("nia,njb->ijab", onehot, onehot) / N
    pi = onehot.mean(0)  # (n, S)
    denom = pi[:, None, :, None] * pi[None, :, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / np.where(denom > 0, denom, 1.0)), 0.0)
    mi = terms.sum((2, 3))
    np.fill_diagonal(mi, 0.0)
    return np.maximum(mi, 0.0)


def chow_liu(tokens: ArrayLike, vocab_size: int, threshold: float | None = None) -> tuple[int, ...]:
    """Chow–Liu estimate of a forest from sequences ``tokens`` ``(N, n)`` (graph positions only): a parent
    tuple with ``-1`` for roots. See the module docstring for the orientation and threshold rules."""
    S = check_int("vocab_size", vocab_size, minimum=2)
    t = _check_tokens(tokens, S)
    N, n = t.shape
    if threshold is None:
        threshold = 3.0 * (S - 1) ** 2 / (2.0 * N)
    else:
        threshold = check_positive_float("threshold", threshold, allow_zero=True)
    mi = empirical_pair_mi(t, S)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for i in range(n):
        for j in range(i):
            if mi[i, j] > threshold:
                G.add_edge(i, j, weight=float(mi[i, j]))
    tree = nx.maximum_spanning_tree(G, weight="weight")
    parents = [-1] * n
    for i in range(n):
        earlier = [j for j in tree.neighbors(i) if j < i]
        if earlier:
            parents[i] = max(earlier, key=lambda j: mi[i, j])
    return tuple(parents)


def parent_recovery(estimate: Sequence[int], parents: Sequence[int]) -> dict:
    """Compare an estimated parent tuple with the true one: the fraction of positions with a parent whose
    parent is recovered, whether all are, and the structural Hamming distance (edges added + removed)."""
    true = Graph(parents).parents
    try:
        est = Graph(estimate).parents
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"estimate must be a forest parent list: {exc}") from None
    if len(est) != len(true):
        raise ValueError(f"estimate must have {len(true)} positions, got {len(est)}")
    with_parent = [i for i, p in enumerate(true) if p >= 0]
    hits = sum(est[i] == true[i] for i in with_parent)
    e_est = {(p, i) for i, p in enumerate(est) if p >= 0}
    e_true = {(p, i) for i, p in enumerate(true) if p >= 0}
    return {"fraction": hits / max(len(with_parent), 1), "all": hits == len(with_parent), "shd": len(e_est ^ e_true)}
