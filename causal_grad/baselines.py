"""Baseline predictors and their held-out losses (docs/theory.md §2).

* In-context Dirichlet estimator ("Bayes" in the paper's code): with ``q = s_{T-1}``,
  ``n_b = #{i < T-1 : p(i) ≠ -1, s_{p(i)} = q, s_i = b}``, prediction ``(n_b + α)/(Σ_b n_b + Sα)``. It is *not*
  the Bayes-optimal predictor when roots are drawn from ``μ_π`` (root tokens carry information about ``π``);
  with uniform roots (the multi-parent task) it is.
* Multi-parent: match the whole parent tuple of the target (or, for the weaker reference, only one parent).
* Unigram: smoothed empirical token frequencies.
* Entropy floor: ``E[H(π[q])]``, the loss of an oracle that knows ``π``.

Losses are cross-entropies against the soft target: ``−Σ_b y_b log ŷ_b`` (nats).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import betaln, roots_jacobi

from ._validate import arrays, check_array, check_callable, check_int, check_key, check_positive_float, check_tokens
from .graphs import Graph
from .priors import Dirichlet

__all__ = [
    "in_context_estimator",
    "tuple_estimator",
    "unigram_estimator",
    "cross_entropy",
    "entropy",
    "held_out_losses",
    "Estimate",
    "BaselineEstimates",
    "BaselineLosses",
]


def cross_entropy(y, yhat) -> jax.Array:
    """``−Σ_b y_b log ŷ_b`` per row; terms with ``y_b = 0`` contribute 0 (no ``0·log 0`` NaN), and a row holding
    a NaN (in ``y`` or ``ŷ``) gives NaN."""
    y, yhat = check_array("y", y, min_ndim=1), check_array("yhat", yhat, min_ndim=1)
    try:
        np.broadcast_shapes(tuple(y.shape), tuple(yhat.shape))
    except ValueError:
        raise ValueError(
            f"y and yhat must have the same (or broadcastable) shapes, got {tuple(y.shape)} and {tuple(yhat.shape)}"
        ) from None
    y = jnp.asarray(y)
    yhat = jnp.asarray(yhat)
    ce = -jnp.sum(jnp.where(y > 0, y * jnp.log(jnp.where(y > 0, yhat, 1.0)), 0.0), axis=-1)
    # a NaN in y or ŷ gives NaN (the y > 0 mask would otherwise turn it into 0)
    bad = jnp.any(jnp.isnan(y), axis=-1) | jnp.any(jnp.isnan(yhat), axis=-1)
    return jnp.where(bad, jnp.nan, ce)


@arrays(p=dict(min_ndim=1))
def entropy(p) -> jax.Array:
    """``H(p) = −Σ p log p`` per row (nats), with ``0 log 0 = 0``."""
    return cross_entropy(p, p)


def in_context_estimator(tokens, parents: Sequence[int], S: int, alpha: float) -> jax.Array:
    """The in-context Dirichlet estimator for a forest; ``tokens`` is ``(B, T)`` with the query last."""

    par = np.asarray(Graph(parents).parents)
    S = check_int("S", S, minimum=2)
    alpha = check_positive_float("alpha", alpha)
    tokens = jnp.asarray(check_tokens("tokens", tokens, seq_len=len(par) + 1, vocab_size=S))
    has = par >= 0
    child_pos = np.nonzero(has)[0]
    q = tokens[:, -1]
    if child_pos.size == 0:
        counts = jnp.zeros((tokens.shape[0], S))
    else:
        ptok = tokens[:, par[child_pos]]
        ctok = tokens[:, child_pos]
        match = (ptok == q[:, None]).astype(jnp.float32)
        counts = jnp.einsum("bi,bis->bs", match, jax.nn.one_hot(ctok, S, dtype=jnp.float32))
    counts = counts + alpha
    return counts / counts.sum(-1, keepdims=True)


def tuple_estimator(tokens, parent_sets, S: int, alpha: float, which: int | None = None) -> jax.Array:
    """Multi-parent estimator; the last entry of ``parent_sets`` is the target. ``which=None`` matches the
    whole parent tuple among positions of the same arity; ``which=m`` matches only parent ``m``."""

    parent_sets = Graph([tuple(p) for p in parent_sets]).parent_sets
    tgt = parent_sets[-1]
    if not tgt:
        raise ValueError("parent_sets: the last position is the target and must have at least one parent")
    S = check_int("S", S, minimum=2)
    alpha = check_positive_float("alpha", alpha)
    if which is not None:
        which = check_int("which", which, minimum=0, maximum=len(tgt) - 1)
    tokens = jnp.asarray(check_tokens("tokens", tokens, seq_len=len(parent_sets) - 1, vocab_size=S))
    k = len(tgt)
    B = tokens.shape[0]
    counts = jnp.zeros((B, S))
    for i, ps in enumerate(parent_sets[:-1]):
        if which is None:
            if len(ps) != k:
                continue
            m = jnp.all(tokens[:, list(ps)] == tokens[:, list(tgt)], axis=1)
        else:
            if len(ps) <= which:
                continue
            m = tokens[:, ps[which]] == tokens[:, tgt[which]]
        counts = counts + m[:, None] * jax.nn.one_hot(tokens[:, i], S)
    counts = counts + alpha
    return counts / counts.sum(-1, keepdims=True)


def unigram_estimator(tokens, S: int, alpha: float, include_last: bool = False) -> jax.Array:
    """``(c_b + α)/(N + Sα)`` with ``c_b`` the counts over the context (the query excluded unless
    ``include_last``)."""
    S = check_int("S", S, minimum=2)
    alpha = check_positive_float("alpha", alpha)
    tokens = jnp.asarray(check_tokens("tokens", tokens, vocab_size=S))
    ctx = tokens if include_last else tokens[:, :-1]
    counts = jax.nn.one_hot(ctx, S).sum(1) + alpha
    return counts / counts.sum(-1, keepdims=True)


def held_out_losses(task, key, num: int, batch: int, predictors: dict[str, Callable]) -> dict:
    """Mean and standard error of each predictor's cross-entropy, and of the entropy floor, over ``num``
    fresh sequences drawn in batches of ``batch``."""
    if not callable(getattr(task, "sample", None)):  # duck-typed: baselines sit below the task module
        raise TypeError(f"task must be an InContextTask or MultiParentTask, got {type(task).__name__}")
    key = check_key("key", key)
    num = check_int("num", num, minimum=2)
    batch = check_int("batch", batch, minimum=1)
    if not isinstance(predictors, dict):
        raise TypeError(f"predictors must be a dict of name -> predict(tokens), got {type(predictors).__name__}")
    for name, f in predictors.items():
        check_callable(f"predictors[{name!r}]", f)
    sums = {name: [] for name in (*predictors, "entropy_floor")}
    left = num
    while left > 0:
        key, sub = jax.random.split(key)
        b = min(batch, left)
        tokens, y = task.sample(sub, b)
        for name, f in predictors.items():
            sums[name].append(np.asarray(cross_entropy(y, f(tokens)), dtype=np.float64))
        sums["entropy_floor"].append(np.asarray(entropy(y), dtype=np.float64))
        left -= b
    out = {}
    for name, chunks in sums.items():
        v = np.concatenate(chunks)
        out[name] = {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(v.size))}
    return out


@dataclass(frozen=True)
class Estimate:
    """A mean over sequences (nats) with its standard error ``se`` (``std / sqrt(n)``)."""

    mean: float
    se: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "se": self.se}

    def __repr__(self) -> str:
        return f"Estimate({self.mean:.4f} ± {self.se:.4f})"


@dataclass(frozen=True)
class BaselineLosses:
    """Held-out reference losses (nats, means over the held-out set), as a run's ``history.json`` keeps them
    under ``"baselines"``: ``in_context`` — the in-context estimator (for a DAG: the one matching the whole parent
    tuple); ``entropy_floor`` — ``E[H(π[q])]``, the loss of an oracle that knows ``π``; ``others`` — the weaker
    references by name (``unigram``; for a DAG ``one_parent_m``, the estimator matching only parent ``m``)."""

    in_context: float
    entropy_floor: float
    others: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        """``{"in_context", "entropy_floor", **others}``: the ``"baselines"`` entry of ``history.json``."""
        return {"in_context": self.in_context, "entropy_floor": self.entropy_floor, **self.others}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineLosses:
        """Read :meth:`to_dict`'s dict back; files written before the estimator was renamed call it ``"bayes"``."""
        if not isinstance(d, Mapping):
            raise TypeError(f"baselines must be a mapping of name -> loss, got {type(d).__name__}")
        rest = dict(d)
        name = "in_context" if "in_context" in rest else "bayes"
        if name not in rest or "entropy_floor" not in rest:
            raise ValueError(f"baselines must hold in_context and entropy_floor, got keys {sorted(rest)}")
        return cls(rest.pop(name), rest.pop("entropy_floor"), rest)


@dataclass(frozen=True)
class BaselineEstimates:
    """What a task's ``baseline_losses`` returns: the held-out losses of :class:`BaselineLosses`, each as an
    :class:`Estimate` (mean and standard error over fresh sequences). ``in_context`` — the in-context estimator
    (the whole parent tuple for a DAG); ``entropy_floor`` — ``E[H(π[q])]``; ``others`` — ``unigram`` and, for a
    DAG, ``one_parent_m``."""

    in_context: Estimate
    entropy_floor: Estimate
    others: dict[str, Estimate] = dataclasses.field(default_factory=dict)

    def means(self) -> BaselineLosses:
        """The means alone, as a run's history keeps its baselines."""
        return BaselineLosses(
            self.in_context.mean, self.entropy_floor.mean, {k: v.mean for k, v in self.others.items()}
        )

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"mean", "se"}}``: the estimator, the others, then the entropy floor (:func:`held_out_losses`)."""
        return {
            "in_context": self.in_context.to_dict(),
            **{k: v.to_dict() for k, v in self.others.items()},
            "entropy_floor": self.entropy_floor.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, float]]) -> BaselineEstimates:
        """Read :meth:`to_dict`'s (or :func:`held_out_losses`') dict back."""
        est = {k: Estimate(float(v["mean"]), float(v["se"])) for k, v in d.items()}
        return cls(est.pop("in_context"), est.pop("entropy_floor"), est)


# ---------------------------------------------------------------------- exact Bayes for S = 2 (docs/theory.md §2)
__all__ += ["exact_bayes_predictive", "exact_bayes_loss", "exact_estimator_loss"]

_ROOTS = ("stationary", "uniform")
_MAX_CONTEXTS = 2**16


def _jacobi(n: int, lo: float, hi: float, p: float, q: float):
    """Nodes and weights of ``∫_lo^hi f(x) (x − lo)^p (hi − x)^q dx ≈ Σ w f(x)`` (Gauss–Jacobi, ``n`` nodes)."""

    t, w = roots_jacobi(n, q, p)  # weight (1 − t)^q (1 + t)^p on [-1, 1]
    half = (hi - lo) / 2
    return lo + half * (1 + t), w * half ** (1 + p + q)


def _beta_quadrature(alpha: float, n: int):
    """Points ``(a, b)`` and weights ``w`` with ``Σ w f(a, b) ≈ E f(a, b)`` for ``a, b`` i.i.d. ``Beta(α, α)``.

    ``a = π[0, 1]`` and ``b = π[1, 0]`` are the free parameters of ``π`` for ``S = 2``; ``μ_π = (b, a)/(a + b)``.
    The prior piles up mass at the edges (``α < 1``), where Gauss–Jacobi rules absorb the power singularities,
    but ``μ_π`` has no limit at the corner ``a = b = 0``. So the square is cut into five pieces, each with a
    product rule whose integrand is smooth: the three squares of side ½ away from the origin, in ``(a, b)``; and
    the two halves ``a ≤ b``, ``a ≥ b`` of ``[0, ½]²`` in "polar" coordinates ``(b, ρ = a/b)`` (and mirror), where
    ``μ_π = (1, ρ)/(1 + ρ)`` is smooth and the density is ``b^{2α−1} ρ^{α−1}`` times a smooth factor.
    """

    am1 = alpha - 1.0
    lognorm = 2 * betaln(alpha, alpha)
    pts_a, pts_b, wts = [], [], []
    lo_x, lo_w = _jacobi(n, 0.0, 0.5, am1, 0.0)  # x^{α-1} on [0, ½]
    hi_x, hi_w = _jacobi(n, 0.5, 1.0, 0.0, am1)  # (1-x)^{α-1} on [½, 1]
    lo_w = lo_w * (1 - lo_x) ** am1  # the smooth remainder of x^{α-1}(1-x)^{α-1}
    hi_w = hi_w * hi_x**am1
    for (xa, wa), (xb, wb) in (
        ((hi_x, hi_w), (lo_x, lo_w)),
        ((lo_x, lo_w), (hi_x, hi_w)),
        ((hi_x, hi_w), (hi_x, hi_w)),
    ):
        A, Bm = np.meshgrid(xa, xb, indexing="ij")
        pts_a.append(A.ravel())
        pts_b.append(Bm.ravel())
        wts.append(np.outer(wa, wb).ravel())
    r_x, r_w = _jacobi(n, 0.0, 1.0, am1, 0.0)  # ρ^{α-1} on [0, 1]
    s_x, s_w = _jacobi(n, 0.0, 0.5, 2 * alpha - 1, 0.0)  # s^{2α-1} on [0, ½] (s = the larger of a, b)
    s_w = s_w * (1 - s_x) ** am1
    Sm, R = np.meshgrid(s_x, r_x, indexing="ij")
    W = np.outer(s_w, r_w) * (1 - Sm * R) ** am1  # smooth: s·ρ ≤ ½
    for big_is_b in (True, False):
        small = (Sm * R).ravel()
        pts_a.append(small if big_is_b else Sm.ravel())
        pts_b.append(Sm.ravel() if big_is_b else small)
        wts.append(W.ravel())
    return np.concatenate(pts_a), np.concatenate(pts_b), np.concatenate(wts) * np.exp(-lognorm)


def _check_exact_task(task, roots: str, nodes: int):

    if not hasattr(task, "parents") or not hasattr(task, "prior"):
        raise TypeError(f"task must be an InContextTask, got {type(task).__name__}")
    if task.vocab_size != 2:
        raise ValueError(
            f"exact Bayes needs vocab_size == 2 (two-parameter Gauss–Jacobi quadrature), got "
            f"{task.vocab_size}; for larger S use Monte Carlo (held_out_losses) instead"
        )
    if not (isinstance(task.prior, Dirichlet) and task.prior.alpha == task.alpha):
        raise ValueError(f"exact Bayes needs the task's prior to be Dirichlet(alpha={task.alpha}), got {task.prior!r}")
    if roots not in _ROOTS:
        raise ValueError(f"roots must be one of {_ROOTS}, got {roots!r}")
    return check_int("nodes", nodes, minimum=4, maximum=4096)


def _counts(parents, ctx: np.ndarray) -> np.ndarray:
    """Sufficient statistics of contexts ``(B, T-1)`` over ``{0, 1}``: ``(B, 6)`` = transition counts
    ``n00, n01, n10, n11`` over the children and root counts ``r0, r1``."""
    B = ctx.shape[0]
    feats = np.zeros((B, 6))
    rows = np.arange(B)
    for i, p in enumerate(parents):
        if p >= 0:
            np.add.at(feats, (rows, 2 * ctx[:, p] + ctx[:, i]), 1.0)
        else:
            np.add.at(feats, (rows, 4 + ctx[:, i]), 1.0)
    return feats


def _posterior(task, ctx: np.ndarray, roots: str, nodes: int, chunk: int = 512):
    """For contexts ``ctx`` ``(B, T-1)``: the evidence ``E_π[P(ctx | π)]`` ``(B,)`` and the posterior means
    ``E[π | ctx]`` ``(B, 2, 2)``, by the quadrature of :func:`_beta_quadrature` (distinct contexts only)."""
    a, b, w = _beta_quadrature(task.alpha, nodes)
    uniq, inverse = np.unique(np.asarray(ctx, np.int64).reshape(len(ctx), -1), axis=0, return_inverse=True)
    feats = _counts(np.asarray(task.parents), uniq)
    log_pi = np.stack([np.log1p(-a), np.log(a), np.log(b), np.log1p(-b)])  # log π00, π01, π10, π11
    if roots == "stationary":
        log_mu = np.stack([np.log(b), np.log(a)]) - np.log(a + b)  # log μ0, log μ1
    else:
        log_mu = np.full((2, a.size), np.log(0.5))
    logfeat = np.concatenate([log_pi, log_mu])
    pi = np.stack([1 - a, a, b, 1 - b]).T  # (K, 4)
    evidence = np.empty(len(uniq))
    post = np.empty((len(uniq), 4))
    for lo in range(0, len(uniq), chunk):
        logf = feats[lo : lo + chunk] @ logfeat  # log-likelihoods (c, K)
        top = logf.max(axis=1, keepdims=True)
        f = np.exp(logf - top) * w
        z = f.sum(axis=1)
        evidence[lo : lo + chunk] = z * np.exp(top[:, 0])
        post[lo : lo + chunk] = f @ pi / z[:, None]
    inverse = inverse.reshape(-1)
    return evidence[inverse], post[inverse].reshape(-1, 2, 2)


def exact_bayes_predictive(task, tokens, *, roots: str = "stationary", nodes: int = 48) -> np.ndarray:
    """The Bayes-optimal prediction ``E[π[q] | context]`` for ``S = 2`` (docs/theory.md §2), float64 ``(B, 2)``.

    The posterior over ``π`` given the context ``s_0 … s_{T-2}`` weighs the ``Dirichlet(α)`` prior (rows
    i.i.d. ``Beta(α, α)`` in the free parameters ``a = π[0,1]``, ``b = π[1,0]``) by the likelihood
    ``Π_{roots} μ_π(s_i) · Π_{children} π[s_{p(i)}, s_i]``; the query ``q = s_{T-1}`` is uniform and carries no
    information. The integrals are computed by Gauss–Jacobi product rules (see :func:`_beta_quadrature`;
    48 nodes per axis already give about 12 correct digits). ``roots="uniform"`` drops the ``μ_π`` factor (roots
    uniform, as in the multi-parent task): then the answer is the in-context estimator
    ``(n_b + α)/(Σn + 2α)`` exactly. The root factor is why that estimator is not Bayes-optimal in general.

    Raises ``ValueError`` for ``S ≠ 2`` (the rule: exact integration in two parameters) or a prior other than
    ``Dirichlet(task.alpha)``.
    """
    nodes = _check_exact_task(task, roots, nodes)
    tokens = np.asarray(task._check_tokens(tokens))
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2):
        raise ValueError("tokens must lie in {0, 1} (vocab_size 2)")
    _, post = _posterior(task, tokens[:, :-1], roots, nodes)
    return post[np.arange(tokens.shape[0]), tokens[:, -1]]


def _enumerate(task, roots: str, nodes: int):
    T = task.seq_len
    if 2 ** (T - 1) > _MAX_CONTEXTS:
        raise ValueError(
            f"exact losses enumerate all 2**(T-1) contexts; seq_len must be <= {_MAX_CONTEXTS.bit_length()}, got {T}"
        )
    ctx = (np.arange(2 ** (T - 1))[:, None] >> np.arange(T - 2, -1, -1)[None, :]) & 1
    evidence, post = _posterior(task, ctx, roots, nodes)
    return ctx, evidence, post


def exact_bayes_loss(task, *, roots: str = "stationary", nodes: int = 48) -> float:
    """The exact expected loss (nats) of :func:`exact_bayes_predictive`, ``E[H(E[π[q] | context])]``, by
    enumerating all ``2^T`` sequences (each weighted by its prior predictive probability from the same
    integrals); ``S = 2`` and ``T ≤ 17``."""
    nodes = _check_exact_task(task, roots, nodes)
    _, evidence, post = _enumerate(task, roots, nodes)
    h = -np.sum(np.where(post > 0, post * np.log(np.where(post > 0, post, 1.0)), 0.0), axis=-1)  # (C, q)
    return float(np.sum(evidence[:, None] * h) / 2)


def exact_estimator_loss(task, *, roots: str = "stationary", nodes: int = 48) -> float:
    """The exact expected loss (nats) of the in-context estimator ``(n_b + α)/(Σn + 2α)`` under the same model,
    by the same enumeration: ``Σ_{sequences} P(s) · (−Σ_b E[π[q,b] | context] log ŷ_b)``."""
    nodes = _check_exact_task(task, roots, nodes)
    ctx, evidence, post = _enumerate(task, roots, nodes)
    n = _counts(np.asarray(task.parents), ctx)[:, :4].reshape(-1, 2, 2)  # n[q, b], float64
    est = (n + task.alpha) / (n.sum(-1, keepdims=True) + 2 * task.alpha)  # (C, q, b)
    return float(np.sum(evidence[:, None] * -np.sum(post * np.log(est), axis=-1)) / 2)
