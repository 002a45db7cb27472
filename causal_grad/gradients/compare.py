"""The gradient at initialisation against the mutual-information approximation (docs/theory.md §4, claims C1 and C2).

With ``G = lim_{β0→0} −(∂L/∂A1)/β0`` at ``A1 = 0``, ``A2 = β0·I`` (:func:`causal_grad.linearized_gradient_at_init`,
or its Monte Carlo estimate), the **rescaled gradient** is

    R[i, j] = (i+1)·T·S · G[i, j] = S(1-ε) · E[ w_i (1[s_j = q] − v_i(q)) ],

and C1 says ``R[i, j] → M_ε[i, j] + c_i`` for graph rows ``i < T-1``, ``j ≤ i``, as ``T → ∞`` (after ``β0 → 0``),
``M_ε`` from :func:`causal_grad.mi.mi_approximation` over the same transition matrices. Row constants are
removed by **row-centring** both ``R`` and ``M_ε`` over ``j ≤ i``. Reported:

* ``rel_error`` — RMS of the centred difference over the entries ``1 ≤ i < T-1``, ``j ≤ i``, divided by the
  RMS of centred ``M_ε`` on the same entries (the finite-``T`` correction, relative);
* ``spearman`` — Spearman rank correlation (``scipy.stats.spearmanr``) of the centred entries;
* per row with a parent and at least one other earlier position, whether the argmax over ``j < i`` of ``R`` is
  ``p(i)`` (C2), with the gradient's and ``M_ε``'s margins ``R[i, p(i)] − max_{j<i, j≠p(i)} R[i, j]``;
* the **query row** ``i = T-1`` separately (``M`` does not cover it): the diagonal minus the mean of the
  off-diagonal entries, their spread, and the ``T → ∞`` limit of that difference,
  ``(1-ε) Σ_q w∞(q) (1 − μ(q))`` with ``w∞(q) = π[q,q]/ŷ∞(q) − Σ_b π[q,b] μ(b)/ŷ∞(b)``, ``ŷ∞ = (1-ε)μ + ε/S``
  (averaged over ``π``): the off-diagonal entries tend to ``E[w∞(q)(μ(q) − μ(q))] = 0``, the diagonal keeps the
  ``1 − μ(q)`` from ``1[s_{T-1} = q] = 1``. At ``ε = 0`` it is ``Σ_q π[q,q]/μ(q) − tr π − S + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from scipy import stats

from .._validate import (
    check_array,
    check_int,
    check_key,
    check_positive_float,
    check_probability,
    check_real_array,
    check_seed,
    check_transition_matrices,
)
from .._x64 import x64
from ..graphs import GRAPH_FAMILIES, Graph, named_graph, random_tree
from ..mi import mi_approximation
from ..priors import Prior
from ..reprs import compact_repr
from ..stationary import stationary
from ..task import InContextTask
from .enumerate import check_enumerable, check_task, exceeds_enumeration_limit
from .linearized import linearized_gradient_at_init
from .monte_carlo import monte_carlo_linearized_at_init

__all__ = [
    "GradientVsMI",
    "rescale_gradient",
    "row_centre",
    "gradient_mi_agreement",
    "compare_gradient_to_mi",
    "query_row_limit",
    "finite_T_sweep",
    "parent_argmax_study",
]


def _check_square(name, X):
    X = check_array(name, X, ndim=2)
    if X.shape[0] != X.shape[1]:
        raise ValueError(f"{name} must be square (T, T), got shape {tuple(X.shape)}")


def rescale_gradient(G, vocab_size: int) -> np.ndarray:
    """``R[i, j] = (i+1)·T·S · G[i, j]`` for ``G = −(∂L/∂A1)/β0`` ``(T, T)`` (the rescaling of claim C1, docs/theory.md
    §7)."""
    _check_square("G", G)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    G = np.asarray(G, dtype=np.float64)
    T = G.shape[0]
    return (np.arange(1, T + 1)[:, None] * T * vocab_size) * G


def row_centre(X) -> np.ndarray:
    """Subtract from each row ``i`` its mean over ``j ≤ i``; zero above the diagonal."""
    _check_square("X", X)
    X = np.asarray(X, dtype=np.float64)
    m = np.tril(np.ones(X.shape, dtype=bool))
    Xm = np.where(m, X, 0.0)
    return np.where(m, Xm - Xm.sum(1, keepdims=True) / m.sum(1, keepdims=True), 0.0)


def query_row_limit(pis, eps: float) -> float:
    """``T → ∞`` limit of the rescaled query row's diagonal minus its off-diagonal entries, mean over ``pis``:
    ``(1-ε) Σ_q w∞(q)(1 − μ(q))`` (see the module docstring)."""
    pis = check_transition_matrices("pis", pis)
    eps = check_probability("eps", eps, open_high=True)
    S = pis.shape[-1]
    with x64():
        mu = np.asarray(stationary(np.asarray(pis, np.float64)))
    yh = (1 - eps) * mu + eps / S
    ratio = np.where(mu > 0, mu / np.where(yh > 0, yh, 1.0), 0.0)  # μ/ŷ∞, its ε = 0 limit 1[μ > 0]
    diag = np.einsum("kqq->kq", pis)
    with np.errstate(divide="ignore"):
        w = diag / np.where(yh > 0, yh, 0.0) - np.einsum("kqb,kb->kq", pis, ratio)
    return float(np.mean((1 - eps) * np.sum(w * (1 - mu), axis=1)))


@dataclass(frozen=True)
class GradientVsMI:
    """Rescaled gradient at init against ``M_ε`` (see the module docstring for every field's definition)."""

    rescaled: np.ndarray  # (T, T) R
    rescaled_se: np.ndarray | None  # (T, T) standard errors of R (Monte Carlo), else None
    M: np.ndarray  # (n, n) M_ε (or M)
    parents: tuple[int, ...]
    rows: np.ndarray  # rows i with a parent and at least one other j < i
    argmax: np.ndarray  # argmax_{j<i} R[i, j] for those rows
    agree: np.ndarray  # argmax == p(i)
    gradient_margin: np.ndarray  # R[i,p] - max_{j<i, j != p} R[i, j]
    M_margin: np.ndarray  # the same for M
    spearman: float
    rel_error: float
    rms_error: float
    noise_rms: float  # RMS of R's standard errors on the compared entries (0 for exact)
    query_diag_excess: float  # R[T-1, T-1] - mean_{j<T-1} R[T-1, j]
    query_offdiag_spread: float  # std of R[T-1, j], j < T-1
    query_limit: float | None = None  # query_row_limit over the same pis, when known
    extra: dict = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:  # arrays as dtype[shape] (causal_grad.reprs)
        return compact_repr(self)

    @property
    def T(self) -> int:
        return self.rescaled.shape[0]

    @property
    def agreement(self) -> float:
        """Fraction of rows (with a parent and a competitor) whose gradient argmax over ``j < i`` is the parent."""
        return float(np.mean(self.agree)) if self.agree.size else float("nan")

    @property
    def rel_error_debiased(self) -> float:
        """``rel_error`` with the Monte Carlo noise removed in quadrature (``sqrt(max(rms² − noise², 0))``)."""
        scale = self.rms_error / self.rel_error if self.rel_error > 0 else float("nan")
        return math.sqrt(max(self.rms_error**2 - self.noise_rms**2, 0.0)) / scale

    def to_dict(self) -> dict:
        return {
            "T": self.T,
            "rms_error": self.rms_error,
            "rel_error": self.rel_error,
            "rel_error_debiased": self.rel_error_debiased,
            "spearman": self.spearman,
            "agreement": self.agreement,
            "rows": int(self.rows.size),
            "min_gradient_margin": float(np.min(self.gradient_margin)) if self.rows.size else float("nan"),
            "query_diag_excess": self.query_diag_excess,
            "query_limit": self.query_limit,
            "query_offdiag_spread": self.query_offdiag_spread,
            **self.extra,
        }

    def __str__(self) -> str:
        lines = [
            f"rescaled gradient vs M (T={self.T}): relative error {self.rel_error:.4g}"
            + (
                f" (noise RMS {self.noise_rms:.3g}, debiased {self.rel_error_debiased:.4g})"
                if self.noise_rms > 0
                else ""
            )
            + f", Spearman {self.spearman:.4f}, parent is the row argmax in "
            f"{int(self.agree.sum())}/{self.agree.size} rows"
        ]
        bad = [
            (int(i), int(a), int(self.parents[i]), float(m))
            for i, a, ok, m in zip(self.rows, self.argmax, self.agree, self.gradient_margin)
            if not ok
        ]
        for i, a, p, m in bad:
            lines.append(f"  row {i}: argmax {a} != parent {p} (gradient margin {m:.4g})")
        ql = f", T→∞ limit {self.query_limit:.4g}" if self.query_limit is not None else ""
        lines.append(
            f"query row: diagonal − mean off-diagonal {self.query_diag_excess:.4g}{ql}; off-diagonal "
            f"spread {self.query_offdiag_spread:.3g}"
        )
        return "\n".join(lines)


def _margins(X, parents, rows):
    out = []
    for i in rows:
        p = parents[i]
        others = [j for j in range(i) if j != p]
        out.append(X[i, p] - X[i, others].max())
    return np.asarray(out, dtype=np.float64)


def gradient_mi_agreement(G, M, parents, vocab_size: int, *, se=None, query_limit: float | None = None) -> GradientVsMI:
    """Compare ``G = −(∂L/∂A1)/β0`` ``(T, T)`` at init (standard errors ``se`` optional) with ``M`` ``(T-1, T-1)``
    (an array, or the ``MIApproximation`` of :func:`causal_grad.mi.mi_approximation`) on the forest ``parents``."""
    if query_limit is not None:
        if isinstance(query_limit, bool) or not isinstance(query_limit, (int, float, np.floating, np.integer)):
            raise TypeError(f"query_limit must be a real number or None, got {type(query_limit).__name__}")
        if not math.isfinite(query_limit):
            raise ValueError(f"query_limit must be finite, got {query_limit}")
    parents = Graph(parents).parents if not isinstance(parents, Graph) else parents.parents
    n = len(parents)
    T = n + 1
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    G = check_real_array("G", G, (T, T))
    M = check_real_array("M", getattr(M, "M", M), (n, n))
    R = rescale_gradient(G, vocab_size)
    Rse = None if se is None else rescale_gradient(check_real_array("se", se, (T, T)), vocab_size)
    Rc, Mc = row_centre(R[:n, :n]), row_centre(M)
    mask = np.tril(np.ones((n, n), dtype=bool))
    mask[0, 0] = False  # row 0 has one entry: centred to 0 on both sides
    d = (Rc - Mc)[mask]
    rms = float(np.sqrt(np.mean(d**2))) if d.size else float("nan")
    scale = float(np.sqrt(np.mean(Mc[mask] ** 2))) if d.size else float("nan")
    varied = d.size > 2 and np.ptp(Rc[mask]) > 0 and np.ptp(Mc[mask]) > 0  # else the rank correlation is undefined
    rho = float("nan")
    if varied:  # scipy's stubs type spearmanr's result without its `statistic` field
        rho = float(stats.spearmanr(Rc[mask], Mc[mask]).statistic)  # pyright: ignore[reportAttributeAccessIssue]
    noise = 0.0 if Rse is None else float(np.sqrt(np.mean(Rse[:n, :n][mask] ** 2)))
    rows = np.asarray([i for i, p in enumerate(parents) if p >= 0 and i >= 2], dtype=np.int64)
    argmax = np.asarray([int(np.argmax(R[i, :i])) for i in rows], dtype=np.int64)
    agree = np.asarray([a == parents[i] for a, i in zip(argmax, rows)], dtype=bool)
    q = R[T - 1]
    return GradientVsMI(
        rescaled=R,
        rescaled_se=Rse,
        M=M,
        parents=tuple(parents),
        rows=rows,
        argmax=argmax,
        agree=agree,
        gradient_margin=_margins(R, parents, rows),
        M_margin=_margins(M, parents, rows),
        spearman=rho,
        rel_error=rms / scale if scale > 0 else float("nan"),
        rms_error=rms,
        noise_rms=noise,
        query_diag_excess=float(q[T - 1] - q[: T - 1].mean()),
        query_offdiag_spread=float(q[: T - 1].std()),
        query_limit=query_limit,
    )


def compare_gradient_to_mi(
    task: InContextTask,
    pis: ArrayLike,
    *,
    eps: float,
    mi_eps: float | None | str = "same",
    method: str = "auto",
    key: jax.Array | None = None,
    num: int = 200_000,
    batch: int | None = None,
) -> GradientVsMI:
    """The rescaled gradient at init against the MI approximation, for the population uniform over ``pis``.

    Args:
        task: a :class:`causal_grad.InContextTask`.
        pis: ``(k, S, S)`` transition matrices.
        eps: the model's readout smoothing ``ε ∈ [0, 1)``.
        mi_eps: ``"same"`` (default) compares with ``M_ε`` at the model's ``ε`` (the correct limit for fixed
            ``ε > 0``); ``None`` compares with ``M`` (the ``ε → 0`` limit); or another ``ε``.
        method: ``"exact"`` (:func:`causal_grad.linearized_gradient_at_init`), ``"monte_carlo"``
            (:func:`causal_grad.monte_carlo_linearized_at_init` with ``key``, ``num``, ``batch``; the error then
            includes Monte Carlo noise, see ``noise_rms``), or ``"auto"`` (exact when enumeration is within
            its limit).
    """
    check_task(task)
    pis = check_transition_matrices("pis", pis, task.vocab_size)
    eps = check_probability("eps", eps, open_high=True)
    if method not in ("auto", "exact", "monte_carlo"):
        raise ValueError(f"method must be 'auto', 'exact' or 'monte_carlo', got {method!r}")
    if isinstance(mi_eps, str):
        if mi_eps != "same":
            raise ValueError(f"mi_eps must be 'same', None or a float in (0, 1), got {mi_eps!r}")
        mi_eps = eps if eps > 0 else None
    elif mi_eps is not None:
        if isinstance(mi_eps, bool) or not isinstance(mi_eps, (int, float, np.floating, np.integer)):
            raise TypeError(f"mi_eps must be 'same', None or a float in (0, 1), got {type(mi_eps).__name__}")
        if not 0 < mi_eps < 1:
            raise ValueError(f"mi_eps must be 'same', None or a float in (0, 1), got {mi_eps!r}")
    if method == "auto":
        exact_ok = not exceeds_enumeration_limit(task.seq_len, task.vocab_size, pis.shape[0])
        method = "exact" if exact_ok else "monte_carlo"
    if method == "monte_carlo" and key is None:
        raise ValueError("key is required for method='monte_carlo' (the size is beyond exact enumeration)")
    num = check_int("num", num, minimum=2)
    if batch is not None:
        check_int("batch", batch, minimum=1)
    if method == "exact":
        check_enumerable(task, pis, eps, what="compare_gradient_to_mi")
    else:
        key = check_key("key", key)
    mi = mi_approximation(task, pis, eps=mi_eps)
    if method == "exact":
        G, se, used = np.asarray(linearized_gradient_at_init(task, pis, eps=eps)), None, None
    else:
        # key was checked above (check_key) whenever the method is not 'exact'
        est = monte_carlo_linearized_at_init(task, key, eps=eps, num=num, batch=batch, pis=pis)  # pyright: ignore[reportArgumentType]
        G, se, used = np.asarray(est.G), np.asarray(est.se), est.num
    out = gradient_mi_agreement(G, mi.M, task.parents, task.vocab_size, se=se, query_limit=query_row_limit(pis, eps))
    out.extra.update(
        {"method": method, "eps": eps, "mi_eps": mi_eps, "num_pis": int(pis.shape[0])} | ({"num": used} if used else {})
    )
    return out


def finite_T_sweep(
    family: str,
    ns,
    pis,
    *,
    eps: float,
    seeds=(0,),
    mi_eps="same",
    method: str = "auto",
    key=None,
    num: int = 200_000,
    batch: int | None = None,
    alpha: float = 1.0,
) -> list[dict]:
    """Repeat :func:`compare_gradient_to_mi` as ``T = n + 1`` grows for a graph family (``named_graph(family, n,
    seed=s)`` for each seed in ``seeds``; random families get a different graph per seed), all with the same
    transition matrices ``pis``. Returns one dict per (n, seed) (``GradientVsMI.to_dict`` plus ``n``, ``seed``,
    ``family``): the finite-``T`` correction ``rel_error`` should shrink with ``T``."""
    if not isinstance(family, str) or family.replace("_", "-") not in GRAPH_FAMILIES or "two" in family:
        raise (TypeError if not isinstance(family, str) else ValueError)(
            f"family must be one of chain, icl-pairs, random-tree, random-forest, got {family!r}"
        )
    pis = check_transition_matrices("pis", pis)
    S = pis.shape[-1]
    ns = [check_int(f"ns[{k}]", n, minimum=2) for k, n in enumerate(ns)]
    seeds = [check_seed(f"seeds[{k}]", s) for k, s in enumerate(seeds)]
    alpha = check_positive_float("alpha", alpha)
    eps = check_probability("eps", eps, open_high=True)
    if method not in ("auto", "exact", "monte_carlo"):
        raise ValueError(f"method must be 'auto', 'exact' or 'monte_carlo', got {method!r}")
    if key is not None:
        key = check_key("key", key)
    num = check_int("num", num, minimum=2)
    if batch is not None:
        check_int("batch", batch, minimum=1)
    rows = []
    for n in ns:
        for s in seeds:
            task = InContextTask(named_graph(family, n, seed=s), S, alpha)
            k = None if key is None else jax.random.fold_in(jax.random.fold_in(key, n), s)
            r = compare_gradient_to_mi(task, pis, eps=eps, mi_eps=mi_eps, method=method, key=k, num=num, batch=batch)
            rows.append({"family": family, "n": n, "seed": s, **r.to_dict()})
    return rows


def parent_argmax_study(
    ns, vocab_size: int, prior, *, num: int, key, eps: float = 1e-3, kappa: float = 0.5, max_counterexamples: int = 5
) -> list[dict]:
    """How often the exact gradient at init fails C2 at finite ``T`` (the row argmax over ``j < i`` is not
    ``p(i)``), and whether the margin condition ``T · margin(M_ε) ≥ kappa`` rules the failures out.

    For each ``n`` in ``ns``: ``num`` examples, each a random forest (``random_tree``: ``p(i)`` uniform on
    ``{-1, …, i-1}``) and one ``π`` from ``prior`` (a :class:`causal_grad.priors.Prior`), the population uniform
    over that one ``π``; the gradient is :func:`causal_grad.linearized_gradient_at_init` (the ``β0 → 0``
    limit, exact) and ``M_ε`` comes from :func:`causal_grad.mi.mi_approximation`. Margins are in rescaled units
    (``R = (i+1)·T·S·G``, the units of ``M_ε``). Returns one dict per ``n``: ``row_fail`` (fraction of rows with
    a parent and a competitor that fail), ``example_fail`` (fraction of examples with a failing row),
    ``cond_rows`` (fraction of rows meeting the condition), ``cond_fail`` (failures among them; the condition's
    claim is 0), ``max_T_margin_failing`` (largest ``T·margin(M_ε)`` among failing rows: the empirical
    threshold) and up to ``max_counterexamples`` counterexamples ``(parents, π, i, argmax, gradient margin,
    M_ε margin)``.
    """
    S = check_int("vocab_size", vocab_size, minimum=2)
    num = check_int("num", num, minimum=1)
    key = check_key("key", key)
    eps = check_probability("eps", eps, open_low=True, open_high=True)
    kappa = check_positive_float("kappa", kappa, allow_zero=True)
    max_counterexamples = check_int("max_counterexamples", max_counterexamples, minimum=0)
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a causal_grad.priors.Prior, got {type(prior).__name__}")
    ns = [check_int(f"ns[{k}]", n, minimum=3) for k, n in enumerate(ns)]
    out = []
    for n in ns:
        kn, kp = jax.random.split(jax.random.fold_in(key, n))
        with x64():
            pis = np.asarray(prior.sample(kp, (num,), S, jnp.float64), np.float64)
        pis = pis / pis.sum(-1, keepdims=True)
        rows = fails = ex_fail = cond = cond_fail = 0
        worst = -np.inf
        examples = []
        for e in range(num):
            graph = random_tree(jax.random.fold_in(kn, e), n)
            task = InContextTask(graph, S, 1.0)
            G = np.asarray(linearized_gradient_at_init(task, pis[e], eps=eps))
            r = gradient_mi_agreement(G, mi_approximation(task, pis[e], eps=eps), graph, S)
            T = n + 1
            ok_cond = T * r.M_margin >= kappa
            rows += r.rows.size
            fails += int((~r.agree).sum())
            ex_fail += int(not r.agree.all())
            cond += int(ok_cond.sum())
            cond_fail += int((ok_cond & ~r.agree).sum())
            for k in np.flatnonzero(~r.agree):
                worst = max(worst, T * r.M_margin[k])
                if len(examples) < max_counterexamples:
                    examples.append(
                        {
                            "parents": graph.parents,
                            "pi": pis[e].tolist(),
                            "i": int(r.rows[k]),
                            "argmax": int(r.argmax[k]),
                            "gradient_margin": float(r.gradient_margin[k]),
                            "M_margin": float(r.M_margin[k]),
                        }
                    )
        out.append(
            {
                "n": n,
                "T": n + 1,
                "S": S,
                "prior": repr(prior),
                "examples": num,
                "rows": rows,
                "row_fail": fails / max(rows, 1),
                "example_fail": ex_fail / num,
                "cond_rows": cond / max(rows, 1),
                "cond_fail": cond_fail,
                "kappa": kappa,
                "max_T_margin_failing": float(worst) if fails else float("nan"),
                "counterexamples": examples,
            }
        )
    return out
