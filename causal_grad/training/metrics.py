"""How well a trained model has written the graph into its first attention layer (claims C5–C7).

All functions take a first-layer attention read-out ``att`` of shape ``(H, T, T)`` (or ``(T, T)``): row ``i`` is
the causal attention of position ``i``. Graph positions are the sequence positions that carry the graph:
``0 … T-2`` for the in-context task (``T-1`` is the query), ``0 … T-1`` for the multi-parent task.

* parent attention ``α[i, p(i)]`` per child position, its mean and minimum;
* argmax recovery: the fraction of child positions whose row argmax (over ``j ≤ i``, the diagonal included)
  is the parent;
* the argmax graph (each position's argmax parent when its weight is at least ``threshold``, otherwise a root)
  and its structural Hamming distance to the true graph (edges point forward, so no reversals: the SHD is the
  size of the symmetric difference of the edge sets);
* induction scores for the chain (C6): the previous-token weight of ``A1`` and the diagonal dominance of the
  layer-2 token block;
* for several heads (C7): which parent each head takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_array, check_int, check_probability
from ..graphs import Graph

#: A graph or what :class:`~causal_grad.graphs.Graph` accepts (a parent list).
GraphLike = Graph | Sequence

__all__ = [
    "parent_attention",
    "argmax_parents",
    "shd",
    "graph_metrics",
    "previous_token_score",
    "diagonal_dominance",
    "head_parents",
    "induction_metrics",
    "GraphMetrics",
    "DiagonalDominance",
    "InductionMetrics",
    "HeadParents",
]


class _Record:
    """Frozen result records: ``to_dict()`` gives the JSON-ready dict a run's history keeps."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class GraphMetrics(_Record):
    """How well head 0 of a first-layer read-out writes a forest: parent attention ``α[i, p(i)]`` (mean and
    minimum over child positions), argmax recovery (fraction, all recovered) and the SHD of the argmax graph
    (a parent counts when its weight is at least the threshold, ½ by default)."""

    mean_parent_attention: float
    min_parent_attention: float
    recovered: float
    all_recovered: bool
    shd: int


@dataclass(frozen=True)
class DiagonalDominance(_Record):
    """Of a layer-2 token block: ``mean diag − mean off-diag`` and the fraction of rows with diagonal argmax."""

    diag_minus_offdiag: float
    diag_argmax_rows: float


@dataclass(frozen=True)
class InductionMetrics(_Record):
    """C6: the previous-token weight of the first layer, and the block's diagonal dominance (``None``
    without a block)."""

    previous_token: float
    diag_minus_offdiag: float | None = None
    diag_argmax_rows: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class HeadParents(_Record):
    """C7: per head (rows) and parent slot (columns), the mean weight and the argmax fraction over the positions
    with the most parents; each head's dominant slot; ``split`` — every head takes a different parent."""

    weight: list
    argmax: list
    dominant_parent: list
    split: bool
    positions: int


def _att(att) -> np.ndarray:
    a = np.asarray(check_array("att", att), dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"att must have shape (H, T, T) or (T, T), got {np.shape(att)}")
    return a


def _graph(graph) -> Graph:
    return graph if isinstance(graph, Graph) else Graph(graph)


def parent_attention(att: ArrayLike, graph: GraphLike) -> np.ndarray:
    """``α[i, p(i)]`` for every child position ``i`` of a forest ``graph`` (head 0 of ``att``), in order."""
    a = _att(att)[0]
    g = _graph(graph)
    par = np.asarray(g.parents)
    if g.n > a.shape[0]:
        raise ValueError(f"graph has {g.n} positions but att covers only {a.shape[0]}")
    kids = np.nonzero(par >= 0)[0]
    return a[kids, par[kids]]


def argmax_parents(att: ArrayLike, n: int, threshold: float = 0.5) -> tuple[int, ...]:
    """The argmax graph of head 0 on positions ``0 … n-1``: ``p̂(i) = argmax_{j≤i} α[i, j]`` if that is an
    earlier position with weight ``≥ threshold``, else ``-1`` (root)."""
    a = _att(att)[0]
    n = check_int("n", n, minimum=1, maximum=a.shape[0])
    threshold = check_probability("threshold", threshold)
    out = []
    for i in range(n):
        j = int(np.argmax(a[i, : i + 1]))
        out.append(j if j < i and a[i, j] >= threshold else -1)
    return tuple(out)


def shd(pred: GraphLike, true: GraphLike) -> int:
    """Structural Hamming distance between two forests on the same positions (forward edges only: the size of
    the symmetric difference of the edge sets)."""
    p, t = _graph(pred), _graph(true)
    if p.n != t.n:
        raise ValueError(f"pred and true must have the same number of positions, got {p.n} and {t.n}")
    return len(set(p.edges) ^ set(t.edges))


def graph_metrics(att: ArrayLike, graph: GraphLike, threshold: float = 0.5) -> GraphMetrics:
    """Parent attention (mean, min), argmax recovery (fraction and all-recovered flag) and SHD of the argmax
    graph for a forest ``graph`` (head 0)."""
    threshold = check_probability("threshold", threshold)
    g = _graph(graph)
    a = _att(att)[0]
    w = parent_attention(att, g)
    par = np.asarray(g.parents)
    kids = np.nonzero(par >= 0)[0]
    am = np.array([int(np.argmax(a[i, : i + 1])) for i in kids], dtype=int)
    rec = am == par[kids]
    pred = argmax_parents(att, g.n, threshold)
    return GraphMetrics(
        mean_parent_attention=float(w.mean()) if w.size else float("nan"),
        min_parent_attention=float(w.min()) if w.size else float("nan"),
        recovered=float(rec.mean()) if rec.size else float("nan"),
        all_recovered=bool(rec.all()),
        shd=shd(pred, g),
    )


def previous_token_score(att: ArrayLike, n: int) -> float:
    """Mean of ``α[i, i-1]`` over ``i = 1 … n-1`` (head 0): 1 for a perfect previous-token head."""
    a = _att(att)[0]
    n = check_int("n", n, minimum=2, maximum=a.shape[0])
    return float(np.mean([a[i, i - 1] for i in range(1, n)]))


def diagonal_dominance(block: ArrayLike) -> DiagonalDominance:
    """For the layer-2 token block ``(S, S)``: ``mean diag − mean off-diag`` and the fraction of rows whose
    argmax is the diagonal (1 for a match-and-copy head)."""
    b = np.asarray(check_array("block", block), dtype=np.float64)
    if b.ndim != 2 or b.shape[0] != b.shape[1]:
        raise ValueError(f"block must be square, got shape {b.shape}")
    S = b.shape[0]
    off = (b.sum() - np.trace(b)) / (S * S - S)
    return DiagonalDominance(
        diag_minus_offdiag=float(np.trace(b) / S - off),
        diag_argmax_rows=float(np.mean(np.argmax(b, axis=1) == np.arange(S))),
    )


def induction_metrics(att: ArrayLike, block: ArrayLike | None, n: int) -> InductionMetrics:
    """C6: previous-token score of the first layer plus diagonal dominance of the layer-2 token block."""
    d = diagonal_dominance(block) if block is not None else None  # checked before anything else is computed
    pt = previous_token_score(att, n)
    if d is None:
        return InductionMetrics(pt)
    return InductionMetrics(pt, d.diag_minus_offdiag, d.diag_argmax_rows)


def head_parents(att: ArrayLike, graph: GraphLike) -> HeadParents:
    """C7: for every head and every parent slot ``m`` of the positions with the most parents, the mean weight
    the head puts on parent ``m`` and the fraction of those positions whose row argmax is parent ``m``.

    ``split`` is true when every head's argmax lands on one parent slot in at least half of the positions and
    the heads' dominant slots are all different (each head took one parent)."""
    a = _att(att)
    g = _graph(graph)
    sets = g.parent_sets[: a.shape[1]]
    k = max(len(ps) for ps in sets)
    rows = [(i, ps) for i, ps in enumerate(sets) if len(ps) == k]
    H = a.shape[0]
    weight = np.zeros((H, k))
    argmax = np.zeros((H, k))
    for h in range(H):
        for i, ps in rows:
            j = int(np.argmax(a[h, i, : i + 1]))
            for m, p in enumerate(ps):
                weight[h, m] += a[h, i, p] / len(rows)
                argmax[h, m] += (j == p) / len(rows)
    dom = argmax.argmax(axis=1)
    split = bool(H >= k and len(set(dom.tolist())) == min(H, k) and all(argmax[h, dom[h]] >= 0.5 for h in range(H)))
    return HeadParents(
        weight=weight.tolist(), argmax=argmax.tolist(), dominant_parent=dom.tolist(), split=split, positions=len(rows)
    )
