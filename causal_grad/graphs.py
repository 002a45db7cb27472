"""Causal graphs on sequence positions (docs/theory.md §1).

A :class:`Graph` is an immutable description of which earlier positions each position depends on.

A graph is stored as one *ordered* tuple of parents per position (``()`` marks a root) and may be written
either way: as parent tuples ``((), (0,), (1,))`` or, when every position has at most one parent, as a flat
list ``(-1, 0, 1)`` with ``-1`` for a root. Its kind is decided by the parent sets alone, never by the writing:

* a **forest**: every position has at most one parent (edges point forward, so it is a set of trees). Its task
  is the in-context task (:class:`causal_grad.task.InContextTask`), which appends the query position
  ``T-1 = n``: :attr:`Graph.seq_len` ``= n + 1``;
* a **multi-parent DAG** (docs/theory.md §1, section 6 of the paper): some position has two or more parents. Its
  task is the multi-parent task (:class:`causal_grad.task.MultiParentTask`), whose *last* graph position is the
  prediction target, not a token of the sequence (:attr:`Graph.target`): :attr:`Graph.seq_len` ``= n - 1``.

So ``Graph(((), (0,), (1,))) == Graph((-1, 0, 1))`` (the same chain), and the one rule for the sequence length is
:attr:`Graph.seq_len`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ._validate import check_int, check_key, check_positions, check_probability, check_seed

if TYPE_CHECKING:  # annotations only: jax is imported where a random graph is drawn
    import jax

__all__ = [
    "Graph",
    "chain",
    "icl_pairs",
    "random_tree",
    "random_forest",
    "two_parent",
    "from_parents",
    "named_graph",
    "GRAPH_FAMILIES",
]

ROOT = -1


def _as_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    return int(v)


@dataclass(frozen=True, eq=True)
class Graph:
    """An immutable causal graph on positions ``0 … n-1``.

    Construct it from a parent list: ``Graph((-1, 0, 1))`` (``-1`` = root) or ordered parent tuples
    ``Graph(((), (), (0, 1)))``. ``is_forest`` is true when every position has at most one parent, however the
    list was written (``Graph(((), (0,), (1,))) == Graph((-1, 0, 1))``).

    Rules (checked before anything else, with a ``ValueError``/``TypeError`` naming the rule): at least one
    position; integer parents; each parent in ``{0, …, i-1}`` (or ``-1`` for a forest root), so the graph is
    acyclic with forward edges; no repeated parent within a position.
    """

    parent_sets: tuple[tuple[int, ...], ...]
    is_forest: bool

    def __init__(self, parents: Sequence):
        if isinstance(parents, Graph):
            object.__setattr__(self, "parent_sets", parents.parent_sets)
            object.__setattr__(self, "is_forest", parents.is_forest)
            return
        if isinstance(parents, (str, bytes)) or not hasattr(parents, "__len__"):
            raise TypeError(f"parents must be a sequence of ints or of int tuples, got {type(parents).__name__}")
        if isinstance(parents, np.ndarray):
            parents = parents.tolist()
        if len(parents) == 0:
            raise ValueError("parents must describe at least one position (the graph is empty)")
        check_positions("parents (its length)", len(parents))
        multi = [isinstance(p, (tuple, list, np.ndarray)) for p in parents]
        if any(multi) and not all(multi):
            raise TypeError("parents must be all ints (a forest) or all tuples (a multi-parent DAG), not a mix")
        sets: list[tuple[int, ...]] = []
        if all(multi):
            for i, ps in enumerate(parents):
                ps = tuple(_as_int(f"parents[{i}][{k}]", p) for k, p in enumerate(ps))
                for p in ps:
                    if not 0 <= p < i:
                        raise ValueError(
                            f"parents[{i}] = {ps}: each parent must lie in 0..{i - 1} (edges point forward)"
                        )
                if len(set(ps)) != len(ps):
                    raise ValueError(f"parents[{i}] = {ps}: a position cannot list the same parent twice")
                sets.append(ps)
        else:
            for i, p in enumerate(parents):
                p = _as_int(f"parents[{i}]", p)
                if not -1 <= p < i:
                    raise ValueError(f"parents[{i}] = {p}: a parent must be -1 (root) or lie in 0..{i - 1}")
                sets.append(() if p == ROOT else (p,))
        object.__setattr__(self, "parent_sets", tuple(sets))
        object.__setattr__(self, "is_forest", all(len(ps) <= 1 for ps in sets))

    # ------------------------------------------------------------------ basic views
    @property
    def n(self) -> int:
        """Number of graph positions."""
        return len(self.parent_sets)

    def __len__(self) -> int:
        return self.n

    @property
    def target(self) -> int | None:
        """The graph position that is the prediction target rather than a token: ``n - 1`` for a multi-parent
        DAG (the multi-parent task predicts the last position from its parents), ``None`` for a forest (the
        in-context task appends a query position after the ``n`` graph positions instead)."""
        return None if self.is_forest else self.n - 1

    @property
    def seq_len(self) -> int:
        """``T``, the length of a token sequence of this graph's task: ``n + 1`` for a forest (graph positions
        then the query), ``n - 1`` for a multi-parent DAG (every position but the target). The one place this
        rule is written."""
        return self.n + 1 if self.is_forest else self.n - 1

    @property
    def token_positions(self) -> int:
        """The graph positions that are tokens of the sequence: ``n`` for a forest, ``n - 1`` (all but the
        target) for a multi-parent DAG."""
        return self.n if self.is_forest else self.n - 1

    @staticmethod
    def n_for_seq_len(seq_len: int, *, multi_parent: bool) -> int:
        """The number of graph positions ``n`` whose task has sequences of length ``seq_len`` (the inverse of
        :attr:`seq_len`): ``T - 1`` for a forest, ``T + 1`` for a multi-parent DAG."""
        seq_len = check_int("seq_len", seq_len, minimum=2)
        return seq_len + 1 if multi_parent else seq_len - 1

    @property
    def parents(self) -> tuple[int, ...]:
        """The parent tuple of a forest (``-1`` = root). Raises for a multi-parent DAG."""
        if not self.is_forest:
            raise ValueError("parents is defined for single-parent forests only; use parent_sets for a DAG")
        return tuple(ps[0] if ps else ROOT for ps in self.parent_sets)

    @property
    def max_arity(self) -> int:
        return max(len(ps) for ps in self.parent_sets)

    @property
    def roots(self) -> tuple[int, ...]:
        return tuple(i for i, ps in enumerate(self.parent_sets) if not ps)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """All edges ``(parent, child)``."""
        return tuple((p, i) for i, ps in enumerate(self.parent_sets) for p in ps)

    def adjacency(self) -> np.ndarray:
        """``A[i, j] = 1`` iff ``j`` is a parent of ``i`` (rows are children, as in the attention matrix ``A1``)."""
        a = np.zeros((self.n, self.n), dtype=np.int8)
        for p, i in self.edges:
            a[i, p] = 1
        return a

    def children(self, i: int) -> tuple[int, ...]:
        return tuple(c for c, ps in enumerate(self.parent_sets) if i in ps)

    # ------------------------------------------------------------------ tree geometry (forests)
    def _require_forest(self, what: str):
        if not self.is_forest:
            raise ValueError(f"{what} is defined for single-parent forests only")

    @cached_property
    def depth(self) -> tuple[int, ...]:
        """Depth of each position below its tree's root (roots have depth 0). Forests only."""
        self._require_forest("depth")
        d: list[int] = []
        for p in self.parents:
            d.append(0 if p == ROOT else d[p] + 1)
        return tuple(d)

    @cached_property
    def root_of(self) -> tuple[int, ...]:
        """The root of each position's tree. Forests only."""
        self._require_forest("root_of")
        r: list[int] = []
        for i, p in enumerate(self.parents):
            r.append(i if p == ROOT else r[p])
        return tuple(r)

    def ancestors(self, i: int) -> tuple[int, ...]:
        """Strict ancestors of ``i``, nearest first (for a DAG: all positions with a directed path to ``i``)."""
        i = check_int("i", i, minimum=0, maximum=self.n - 1)
        if self.is_forest:
            out = []
            p = self.parents[i]
            while p != ROOT:
                out.append(p)
                p = self.parents[p]
            return tuple(out)
        seen: set[int] = set()
        stack = list(self.parent_sets[i])
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self.parent_sets[p])
        return tuple(sorted(seen, reverse=True))

    def lca(self, i: int, j: int) -> int:
        """Lowest common ancestor of ``i`` and ``j`` (either may be the other's ancestor or equal to it);
        ``-1`` when they lie in different trees. Forests only."""
        self._require_forest("lca")
        i = check_int("i", i, minimum=0, maximum=self.n - 1)
        j = check_int("j", j, minimum=0, maximum=self.n - 1)
        path_i = {i, *self.ancestors(i)}
        for a in (j, *self.ancestors(j)):
            if a in path_i:
                return a
        return ROOT

    @cached_property
    def lca_matrix(self) -> np.ndarray:
        """``L[i, j] = lca(i, j)`` for every pair (``-1`` across trees). Forests only."""
        self._require_forest("lca_matrix")
        n = self.n
        L = np.full((n, n), ROOT, dtype=np.int64)
        anc = [(i, *self.ancestors(i)) for i in range(n)]
        for i in range(n):
            si = set(anc[i])
            for j in range(i + 1):
                for a in anc[j]:
                    if a in si:
                        L[i, j] = L[j, i] = a
                        break
        return L

    def path_length(self, i: int, j: int) -> int:
        """Number of edges on the tree path between ``i`` and ``j`` (``-1`` across trees). Forests only."""
        c = self.lca(i, j)
        if c == ROOT:
            return -1
        return self.depth[i] + self.depth[j] - 2 * self.depth[c]

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        kind = "forest" if self.is_forest else "DAG"
        lines = [f"Graph({kind}, n={self.n}, roots={list(self.roots)})"]
        if self.is_forest:
            kids = {i: self.children(i) for i in range(self.n)}

            def walk(i: int, prefix: str, last: bool, top: bool):
                branch = "" if top else ("└─ " if last else "├─ ")
                lines.append(f"{prefix}{branch}{i}")
                ext = "" if top else ("   " if last else "│  ")
                ks = kids[i]
                for k, c in enumerate(ks):
                    walk(c, prefix + ext, k == len(ks) - 1, False)

            for r in self.roots:
                walk(r, "", True, True)
        else:
            for i, ps in enumerate(self.parent_sets):
                lines.append(f"{i:>3} <- {', '.join(map(str, ps)) if ps else 'root'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = self.parents if self.is_forest else self.parent_sets
        return f"Graph({body!r})"

    def to_json(self) -> dict:
        return {
            "kind": "forest" if self.is_forest else "dag",
            "parents": list(self.parents) if self.is_forest else [list(p) for p in self.parent_sets],
        }


# ---------------------------------------------------------------------- constructors
def from_parents(parents: Sequence) -> Graph:
    """A graph from an explicit parent list (``-1`` = root) or list of parent tuples."""
    return Graph(parents)


def chain(n: int) -> Graph:
    """The chain ``p(i) = i-1``: an in-context Markov chain on ``n`` positions."""
    n = check_positions("n", n)
    return Graph(tuple(range(-1, n - 1)))


def icl_pairs(n: int) -> Graph:
    """In-context ``(x, f(x))`` pairs: even positions are roots, position ``2k+1`` has parent ``2k``."""
    n = check_positions("n", n)
    return Graph(tuple(-1 if i % 2 == 0 else i - 1 for i in range(n)))


def random_tree(key: jax.Array, n: int) -> Graph:
    """A random forest with ``p(i)`` uniform on ``{-1, 0, …, i-1}`` (position 0 is a root)."""
    key = check_key("key", key)
    n = check_positions("n", n)
    import jax  # lazy: CLI parsing stays JAX-free

    u = np.asarray(jax.random.uniform(key, (n,), dtype="float32"), dtype=np.float64)
    parents = [int(np.floor(u[i] * (i + 1))) - 1 for i in range(n)]
    parents = [min(p, i - 1) for i, p in enumerate(parents)]
    return Graph(tuple(parents))


def random_forest(key: jax.Array, n: int, p_root: float) -> Graph:
    """Position 0 a root; each later position a root with probability ``p_root``, else a parent uniform among
    the earlier positions."""
    key = check_key("key", key)
    n = check_positions("n", n)
    p_root = check_probability("p_root", p_root)
    import jax  # lazy: CLI parsing stays JAX-free

    k1, k2 = jax.random.split(key)
    root = np.asarray(jax.random.uniform(k1, (n,))) < p_root
    u = np.asarray(jax.random.uniform(k2, (n,)), dtype=np.float64)
    parents = [-1] + [(-1 if root[i] else min(int(u[i] * i), i - 1)) for i in range(1, n)]
    return Graph(tuple(parents))


def two_parent(n: int) -> Graph:
    """The paper's two-parent DAG: positions 0 and 1 are roots, ``parents(i) = ((i-1)//2, i-1)`` for ``i ≥ 2``.

    With :class:`~causal_grad.task.MultiParentTask` the last position is the target: ``two_parent(33)`` is the
    paper's 32 tokens plus target.
    """
    n = check_int("n", n, minimum=3)
    check_positions("n", n)
    return Graph(tuple(() if i < 2 else ((i - 1) // 2, i - 1) for i in range(n)))


GRAPH_FAMILIES = ("chain", "icl-pairs", "random-tree", "random-forest", "two-parent")


def named_graph(name: str, n: int, *, seed: int = 0, p_root: float = 0.5) -> Graph:
    """Build a graph by family name (the CLI's ``--graph``): one of :data:`GRAPH_FAMILIES`."""
    import jax  # lazy: CLI parsing stays JAX-free

    if not isinstance(name, str):
        raise TypeError(
            f"name: graph must be one of {', '.join(GRAPH_FAMILIES)} (the graph family), got "
            f"{type(name).__name__} {name!r}"
        )
    n = check_positions("n", n)
    seed = check_seed("seed", seed)
    p_root = check_probability("p_root", p_root)
    name = name.replace("_", "-")
    if name == "chain":
        return chain(n)
    if name in ("icl-pairs", "icl"):
        return icl_pairs(n)
    if name in ("random-tree", "tree"):
        return random_tree(jax.random.key(seed), n)
    if name in ("random-forest", "forest"):
        return random_forest(jax.random.key(seed), n, p_root)
    if name in ("two-parent", "dag"):
        return two_parent(n)
    raise ValueError(f"name: graph must be one of {', '.join(GRAPH_FAMILIES)} (the graph family), got {name!r}")
