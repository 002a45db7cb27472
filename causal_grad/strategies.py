"""Reusable hypothesis strategies for property tests of the theory (graphs and transition matrices).

``hypothesis`` is a **development** dependency (``pip install -e ".[dev]"``), not a runtime one: import this
module from tests only. Every strategy draws its randomness through hypothesis itself (integers, floats, or a
seed for NumPy's generator), so failing examples are reproducible under the derandomised ``ci`` profile and
shrink towards small, simple cases (fewer positions, a root-heavy forest, seed 0, uniform rows).

Transition matrices come out as NumPy ``float64`` arrays ``(S, S)`` (cheap to draw, exact to check).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from ._validate import check_int, check_positive_float, check_probability
from .graphs import Graph

__all__ = [
    "forests",
    "dirichlet_transition_matrices",
    "floored_transition_matrices",
    "reversible_transition_matrices",
    "transition_matrices",
    "multi_parent_dags",
]


@st.composite
def forests(draw: Callable, max_n: int = 12, min_n: int = 1) -> Graph:
    """A forest :class:`~causal_grad.graphs.Graph` on ``min_n … max_n`` positions: position 0 is a root and each
    later position ``i`` has parent ``p(i) ∈ {-1, 0, …, i-1}`` (shrinks towards few positions and roots)."""
    max_n = check_int("max_n", max_n, minimum=1)
    min_n = check_int("min_n", min_n, minimum=1, maximum=max_n)
    n = draw(st.integers(min_value=min_n, max_value=max_n))
    parents = [-1] + [draw(st.integers(min_value=-1, max_value=i - 1)) for i in range(1, n)]
    return Graph(tuple(parents))


@st.composite
def dirichlet_transition_matrices(draw: Callable, S: int, alpha: float) -> np.ndarray:
    """``π`` with rows i.i.d. ``Dirichlet(α·1_S)``, from a hypothesis-drawn seed of NumPy's generator (so the
    law is exactly the prior's; shrinking moves the seed, not the matrix)."""
    S = check_int("S", S, minimum=1)
    alpha = check_positive_float("alpha", alpha)
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    pi = np.random.default_rng(seed).dirichlet(np.full(S, float(alpha)), size=S)
    return pi / pi.sum(axis=1, keepdims=True)


def _rows(S: int, low: float):
    return st.lists(
        st.lists(
            st.floats(min_value=low, max_value=1.0, allow_nan=False, allow_infinity=False), min_size=S, max_size=S
        ),
        min_size=S,
        max_size=S,
    )


@st.composite
def transition_matrices(draw: Callable, S: int) -> np.ndarray:
    """Any row-stochastic ``π`` (zeros allowed): non-negative floats normalised by row; an all-zero row becomes
    uniform. Shrinks towards the uniform matrix."""
    S = check_int("S", S, minimum=1)
    w = np.asarray(draw(_rows(S, 0.0)), dtype=np.float64)
    s = w.sum(axis=1, keepdims=True)
    return np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / S)


@st.composite
def floored_transition_matrices(draw: Callable, S: int, gamma: float = 0.1) -> np.ndarray:
    """``π = γ/S + (1 − γ)·R`` with ``R`` any row-stochastic matrix: every entry is at least ``γ/S`` (so every
    entry is positive and ``σ1 < 1``)."""
    S = check_int("S", S, minimum=1)
    gamma = check_probability("gamma", gamma, open_low=True)
    R = draw(transition_matrices(S))
    return gamma / S + (1.0 - gamma) * R


@st.composite
def reversible_transition_matrices(draw: Callable, S: int, low: float = 1e-3) -> np.ndarray:
    """A reversible ``π = W / (W 1)`` from a symmetric positive weight matrix ``W`` (entries ``≥ low``); its
    stationary law is ``μ ∝ W 1`` and ``D^{1/2} π D^{-1/2}`` is symmetric, so its eigenvalues are real."""
    S = check_int("S", S, minimum=1)
    low = check_probability("low", low, open_low=True)
    w = np.asarray(draw(_rows(S, low)), dtype=np.float64)
    W = np.triu(w) + np.triu(w, 1).T
    return W / W.sum(axis=1, keepdims=True)


@st.composite
def multi_parent_dags(
    draw: Callable, max_n: int = 10, min_n: int = 3, max_arity: int = 2, target_has_parents: bool = True
) -> Graph:
    """A multi-parent DAG :class:`~causal_grad.graphs.Graph`: each position ``i`` gets an ordered tuple of
    ``0 … min(max_arity, i)`` distinct earlier parents (position 0 is a root). With ``target_has_parents``
    the last position (the target of :class:`~causal_grad.task.MultiParentTask`) has at least one parent, and
    at least two where ``max_arity`` and its index allow, so that the graph is a DAG by structure (a graph in
    which every position has at most one parent is a forest)."""
    max_n = check_int("max_n", max_n, minimum=1)
    min_n = check_int("min_n", min_n, minimum=1, maximum=max_n)
    max_arity = check_int("max_arity", max_arity, minimum=0)
    if not isinstance(target_has_parents, bool):
        raise TypeError(f"target_has_parents must be a boolean, got {type(target_has_parents).__name__}")
    n = draw(st.integers(min_value=max(min_n, 2 if target_has_parents else 1), max_value=max_n))
    sets: list[tuple[int, ...]] = [()]
    for i in range(1, n):
        lo = min(2, max_arity, i) if (target_has_parents and i == n - 1) else 0
        lo = max(lo, 1) if (target_has_parents and i == n - 1) else lo
        k = draw(st.integers(min_value=lo, max_value=min(max_arity, i)))
        ps = draw(st.lists(st.integers(min_value=0, max_value=i - 1), min_size=k, max_size=k, unique=True))
        sets.append(tuple(ps))
    return Graph(tuple(sets))
