"""The mutual-information approximation of the gradient, and the data-processing checks (docs/theory.md §4, C2–C4).

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
from jax.typing import ArrayLike

from ._validate import (
    check_int,
    check_key,
    check_pair_memory,
    check_positive_float,
    check_stochastic,
    check_transition_matrices,
)
from ._x64 import x64
from .graphs import Graph
from .information import chi2_mutual_information, mutual_information
from .laws import (
    bucket,
    matrix_powers,
    pair_geometry,
    pair_joint_from_depths,
    time_reversal,
)
from .priors import Prior
from .reprs import compact_repr
from .stationary import stationary
from .task import InContextTask

__all__ = [
    "MIApproximation",
    "mi_matrix",
    "mi_approximation",
    "DPIReport",
    "dpi_report",
    "SelfEntryReport",
    "self_entry_report",
    "self_entry_over_prior",
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
    """``c(b) = (1-ε) μ(b) / ŷ∞(b)`` (``eps`` may be traced); ``eps = 0`` gives exactly ``1[μ(b) > 0]``."""
    S = mu.shape[-1]
    pos = mu > 0
    yhat = (1.0 - eps) * mu + eps / S
    return jnp.where(pos, (1.0 - eps) * mu / jnp.where(pos, yhat, 1.0), 0.0)


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


@partial(jax.jit, static_argnums=(5, 6))
def _mi_padded_many(pis, d_i, d_j, same, eps, n_pad, batch):
    return jax.lax.map(lambda p: _mi_padded_single(p, d_i, d_j, same, n_pad, eps), pis, batch_size=batch)


def mi_matrix(graph: Graph, pi: ArrayLike, *, eps: float | None = None) -> jax.Array:
    """``M_π`` (``eps=None``) or ``M_{ε,π}`` for one transition matrix ``pi`` ``(S, S)``: shape ``(n, n)``,
    ``[i, j]`` for ``j ≤ i``, zero above the diagonal. Traceable: ``jax.vmap`` over a stack of ``π`` (the graph is
    static). Runs in ``pi``'s dtype; call inside ``with causal_grad.x64():`` with float64 for exact work."""
    if not isinstance(graph, Graph) or not graph.is_forest:
        pair_geometry(graph)  # refuses it, naming the rule
    eps = _check_eps(eps)
    if np.ndim(pi) != 2:
        raise ValueError(f"pi must be one (S, S) transition matrix (vmap over a stack), got shape {np.shape(pi)}")
    pi = check_stochastic("pi", pi)
    check_pair_memory("graph/pi", graph.n, bucket(graph.n), pi.shape[-1], pi.dtype, copies=6)
    geo = pair_geometry(graph)
    pi = jnp.asarray(pi)
    di, dj, same = geo.padded()
    n = graph.n
    return _mi_padded_single(pi, di, dj, same, geo.n_pad, 0.0 if eps is None else eps)[:n, :n]


@dataclass(frozen=True, eq=False)
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

    def __repr__(self) -> str:  # arrays as dtype[shape] (causal_grad.reprs)
        return compact_repr(self)

    def parent_margins(self) -> np.ndarray:
        """Per ``π`` and position ``i`` with a parent: ``M_π[i, p(i)] − max_{j < i, j ≠ p(i)} M_π[i, j]``
        (``+inf`` when ``p(i)`` is the only earlier position; NaN for roots). Shape ``(k, n)``."""
        if self.graph is None:
            raise ValueError("parent_margins needs the graph (this MIApproximation was built without one)")
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


def mi_approximation(task: InContextTask, pis: ArrayLike, *, eps: float | None = None) -> MIApproximation:
    """``M[i, j] = mean_π ⟨P_{ji}, Q⟩_μ`` (``eps=None``) or ``M_ε`` (docs/theory.md §4), in float64.

    Args:
        task: an :class:`~causal_grad.task.InContextTask` (its ``graph`` and ``vocab_size`` are used).
        pis: transition matrices ``(k, S, S)`` (or one ``(S, S)``) over which to average.
        eps: readout smoothing ``ε ∈ (0, 1)``; ``None`` gives the ``ε → 0`` limit ``M``.
    """
    if not isinstance(task, InContextTask):
        raise TypeError(f"task must be a causal_grad.task.InContextTask, got {type(task).__name__}")
    eps = _check_eps(eps)
    pis = check_transition_matrices("pis", pis, task.vocab_size)
    graph = task.graph
    geo = pair_geometry(graph)
    di, dj, same = geo.padded()
    n, k = graph.n, pis.shape[0]
    with x64():
        per = _mi_padded_many(
            jnp.asarray(pis, jnp.float64),
            di,
            dj,
            same,
            jnp.float64(0.0 if eps is None else eps),
            geo.n_pad,
            min(k, _PI_BATCH),
        )
        per = np.asarray(per)[:, :n, :n]
    M = per.mean(axis=0)
    se = per.std(axis=0, ddof=1) / math.sqrt(k) if k > 1 else np.full((n, n), np.nan)
    if k > 1:
        se = np.tril(se)
    return MIApproximation(M=M, per_pi=per, se=se, eps=eps, graph=graph)


# ====================================================================== data processing (C3) and the diagonal (C4)
TOL = 1e-12  # slacks within this are equalities (float64 round-off of O(S) quantities is ~1e-15)


def _sigma1(pis: np.ndarray, mus: np.ndarray) -> np.ndarray:
    """Largest singular value of ``B = D^{1/2} π D^{-1/2} − √μ √μᵀ`` per matrix (states with ``μ = 0`` dropped)."""
    Q = mus[:, :, None] * pis
    r = np.sqrt(mus)
    inv = np.where(mus > 0, 1.0 / np.where(mus > 0, r, 1.0), 0.0)
    B = Q * inv[:, :, None] * inv[:, None, :] - r[:, :, None] * r[:, None, :]
    return np.linalg.svd(B, compute_uv=False)[:, 0]


@partial(jax.jit, static_argnums=(7, 8))
def _dpi_arrays(pis, u_di, u_dj, d_i, d_j, same, zero, n_pad, batch):
    """Per matrix, in one compiled pass: KL and χ² information of ``P`` for the depth pairs ``(u_di, u_dj)``,
    ``I(Q)``, ``I_χ²(Q)``, ``μ`` and ``M_π`` (padded)."""

    def one(pi: jax.Array):
        mu = stationary(pi)
        P = pair_joint_from_depths(matrix_powers(pi, n_pad), mu, u_di, u_dj)
        Q = mu[:, None] * pi
        return (
            mutual_information(P),
            chi2_mutual_information(P),
            mutual_information(Q),
            chi2_mutual_information(Q),
            mu,
            _mi_padded_single(pi, d_i, d_j, same, n_pad, zero),
        )

    return jax.lax.map(one, pis, batch_size=batch)


@dataclass(frozen=True, eq=False)
class SelfEntryReport:
    """The diagonal entry ``⟨P_{ii}, Q⟩_μ = tr π`` against the parent entry ``⟨Q, Q⟩_μ = 1 + I_χ²(Q)`` (C4).

    Per matrix: ``trace``, ``parent_entry`` (``1 + I_χ²(Q)``), ``margin = trace − parent_entry`` and ``wins``
    (``margin > TOL``; ``ties``: ``|margin| ≤ TOL``). Prior averages with standard errors across the matrices:
    ``win_prob`` ± ``win_prob_se`` (binomial), ``mean_trace`` ± ``mean_trace_se``, ``mean_parent_entry`` ±
    ``mean_parent_entry_se``, ``mean_margin`` ± ``mean_margin_se``.
    """

    trace: np.ndarray
    parent_entry: np.ndarray
    margin: np.ndarray
    wins: np.ndarray
    ties: np.ndarray

    def __repr__(self) -> str:
        return compact_repr(self)

    @property
    def k(self) -> int:
        return int(self.trace.shape[0])

    def _se(self, x):
        return float(x.std(ddof=1) / math.sqrt(self.k)) if self.k > 1 else float("nan")

    @property
    def win_prob(self) -> float:
        return float(self.wins.mean())

    @property
    def win_prob_se(self) -> float:
        p = self.win_prob
        return math.sqrt(p * (1 - p) / self.k)

    @property
    def mean_trace(self) -> float:
        return float(self.trace.mean())

    @property
    def mean_trace_se(self) -> float:
        return self._se(self.trace)

    @property
    def mean_parent_entry(self) -> float:
        return float(self.parent_entry.mean())

    @property
    def mean_parent_entry_se(self) -> float:
        return self._se(self.parent_entry)

    @property
    def mean_margin(self) -> float:
        return float(self.margin.mean())

    @property
    def mean_margin_se(self) -> float:
        return self._se(self.margin)

    @property
    def winners(self) -> np.ndarray:
        """Indices of the matrices where the self entry beats the parent entry."""
        return np.flatnonzero(self.wins)

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "win_prob": self.win_prob,
            "win_prob_se": self.win_prob_se,
            "mean_trace": self.mean_trace,
            "mean_trace_se": self.mean_trace_se,
            "mean_parent_entry": self.mean_parent_entry,
            "mean_parent_entry_se": self.mean_parent_entry_se,
            "mean_margin": self.mean_margin,
            "mean_margin_se": self.mean_margin_se,
            "winners": self.winners.tolist(),
            "ties": np.flatnonzero(self.ties).tolist(),
            "trace": self.trace.tolist(),
            "parent_entry": self.parent_entry.tolist(),
        }

    def __str__(self) -> str:
        k = self.k
        w = self.winners
        shown = ", ".join(f"#{x}" for x in w[:12]) + (" …" if len(w) > 12 else "")
        lines = [
            f"self entry tr π vs parent entry 1 + I_χ²(Q) over {k} matrices: the self entry wins on "
            f"{len(w)}/{k}"
            + (f" ({shown})" if len(w) else "")
            + (f", ties on {int(self.ties.sum())}" if self.ties.any() else "")
        ]
        if k > 1:
            lines.append(
                f"  win probability {self.win_prob:.4f} ± {self.win_prob_se:.4f}; mean tr π "
                f"{self.mean_trace:.4f} ± {self.mean_trace_se:.4f}; mean 1 + I_χ²(Q) "
                f"{self.mean_parent_entry:.4f} ± {self.mean_parent_entry_se:.4f}"
            )
        else:
            lines.append(f"  tr π = {self.trace[0]:.6g}, 1 + I_χ²(Q) = {self.parent_entry[0]:.6g}")
        return "\n".join(lines)


@partial(jax.jit, static_argnums=(1,))
def _self_entry_arrays(pis, batch):
    def one(pi: jax.Array):
        mu = stationary(pi)
        tr = jnp.sum(jnp.where(mu > 0, jnp.diagonal(pi), 0.0))
        return tr, 1.0 + chi2_mutual_information(mu[:, None] * pi)

    return jax.lax.map(one, pis, batch_size=batch)


def self_entry_report(pis: ArrayLike) -> SelfEntryReport:
    """C4 per matrix: ``tr π = ⟨P_{ii}, Q⟩_μ`` against ``1 + I_χ²(Q) = ⟨Q, Q⟩_μ``, with averages and standard
    errors across ``pis`` ``(k, S, S)`` (e.g. draws from a prior: see :func:`self_entry_over_prior`)."""
    pis = check_transition_matrices("pis", pis)
    with x64():
        tr, pe = _self_entry_arrays(jnp.asarray(pis, jnp.float64), min(pis.shape[0], 4096))
        tr, pe = np.asarray(tr), np.asarray(pe)
    return _self_entry_from(tr, pe)


def _self_entry_from(tr: np.ndarray, pe: np.ndarray) -> SelfEntryReport:
    margin = tr - pe
    return SelfEntryReport(trace=tr, parent_entry=pe, margin=margin, wins=margin > TOL, ties=np.abs(margin) <= TOL)


def self_entry_over_prior(prior: Prior, vocab_size: int, key: jax.Array, num: int = 100_000) -> SelfEntryReport:
    """Monte Carlo of C4 over a prior: ``num`` float64 draws of ``π`` from ``prior`` (a
    :class:`~causal_grad.priors.Prior`), then :func:`self_entry_report` (win probability and prior averages
    with standard errors)."""
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a causal_grad.priors.Prior, got {type(prior).__name__}")
    S = check_int("vocab_size", vocab_size, minimum=2)
    key = check_key("key", key)
    num = check_int("num", num, minimum=2)
    with x64():
        pis = np.asarray(_sample_prior(prior, key, num, S))
    return self_entry_report(pis)


@partial(jax.jit, static_argnums=(0, 2, 3))
def _sample_prior(prior, key, num, S):
    return prior.sample(key, (num,), S, jnp.float64)


@dataclass(frozen=True, eq=False)
class DPIReport:
    """Data-processing checks of docs/theory.md §4 (claim C3) for every position ``i`` with a parent, every ``j < i``,
    ``j ≠ p(i)``, and every matrix. Arrays ``(k, n, n)`` hold NaN where a pair is not checked:

    * ``slack_kl = I(s_{p(i)}; s_i) − I(s_j; s_i)`` (KL, nats), ``slack_chi2`` (χ² information),
      ``slack_inner = ⟨Q, Q⟩_μ − ⟨P_{ji}, Q⟩_μ`` (the parent's margin in ``M_π``);
    * ``predicted_margin = (1 − σ1^{L-1}) · I_χ²(Q)`` (``L`` = tree path length; across trees ``I_χ²(Q)``)
      and ``bound_slack = σ1^{L-1} I_χ²(Q) − (⟨P_{ji}, Q⟩_μ − 1)`` = ``slack_inner − predicted_margin``;
    * ``cs_slack = √(I_χ²(s_j;s_i) I_χ²(Q)) − (⟨P_{ji}, Q⟩_μ − 1)`` (the Cauchy–Schwarz step).

    Per matrix: ``sigma1``, ``kl_q = I(Q)``, ``chi2_q = I_χ²(Q)``. ``minima``: for each measure the smallest slack
    and where (``i``, ``j``, matrix index). ``equalities``: checked ``(π index, i, j)`` whose KL or χ² slack is
    within ``tol``, or whose ``M_π`` entry ties the parent's. ``pairs`` ``(n, n)``: the checked ``(i, j)``.
    ``self_entry``: the diagonal against the parent entry (C4), a :class:`SelfEntryReport`.
    """

    graph: Graph
    slack_kl: np.ndarray
    slack_chi2: np.ndarray
    slack_inner: np.ndarray
    predicted_margin: np.ndarray
    bound_slack: np.ndarray
    cs_slack: np.ndarray
    sigma1: np.ndarray
    kl_q: np.ndarray
    chi2_q: np.ndarray
    self_entry: SelfEntryReport
    vocab_size: int
    pairs: np.ndarray
    tol: float = TOL

    MEASURES = ("slack_kl", "slack_chi2", "slack_inner", "bound_slack", "cs_slack")

    def __repr__(self) -> str:
        return compact_repr(self)

    @property
    def checked(self) -> np.ndarray:
        """Boolean ``(k, n, n)``: which ``(π, i, j)`` entries are checks (``pairs`` broadcast over the matrices)."""
        return np.broadcast_to(self.pairs, self.slack_kl.shape)

    @property
    def num_checks(self) -> int:
        return int(self.checked.sum())

    @property
    def minima(self) -> dict:
        out = {}
        for m in self.MEASURES:
            a = getattr(self, m)
            if not np.any(~np.isnan(a)):
                out[m] = None
                continue
            idx = np.unravel_index(np.nanargmin(a), a.shape)
            out[m] = {"value": float(a[idx]), "pi": int(idx[0]), "i": int(idx[1]), "j": int(idx[2])}
        return out

    @property
    def equalities(self) -> list[tuple[int, int, int]]:
        eq = self.checked & (
            (np.abs(self.slack_kl) <= self.tol)
            | (np.abs(self.slack_chi2) <= self.tol)
            | (np.abs(self.slack_inner) <= self.tol)
        )
        return [(int(a), int(b), int(c)) for a, b, c in np.argwhere(eq)]

    @property
    def ok(self) -> bool:
        """Every slack (KL, χ², inner product, σ1 bound, Cauchy–Schwarz) is finite and ``≥ −tol``."""
        c = self.checked
        if any(np.isnan(getattr(self, m)[c]).any() for m in self.MEASURES):
            return False
        return all(m is None or m["value"] >= -self.tol for m in self.minima.values())

    def violations(self, measure: str = "slack_kl") -> list[tuple[int, int, int]]:
        a = getattr(self, measure)
        return [(int(i), int(j), int(k)) for i, j, k in np.argwhere(a < -self.tol)]

    def to_dict(self) -> dict:
        return {
            "graph": self.graph.to_json(),
            "vocab_size": self.vocab_size,
            "num_matrices": int(self.sigma1.shape[0]),
            "num_checks": self.num_checks,
            "tol": self.tol,
            "ok": self.ok,
            "minima": self.minima,
            "equalities": self.equalities[:100],
            "num_equalities": len(self.equalities),
            "sigma1": self.sigma1.tolist(),
            "kl_q": self.kl_q.tolist(),
            "chi2_q": self.chi2_q.tolist(),
            "min_predicted_margin": (float(np.nanmin(self.predicted_margin)) if self.num_checks else None),
            "self_entry": self.self_entry.to_dict(),
        }

    def __str__(self) -> str:
        k = self.sigma1.shape[0]
        names = {
            "slack_kl": "I(p(i);i) − I(j;i)   [KL]",
            "slack_chi2": "I(p(i);i) − I(j;i)   [χ²]",
            "slack_inner": "⟨Q,Q⟩ − ⟨P_ji,Q⟩",
            "bound_slack": "σ1^{L-1}·I_χ²(Q) − (⟨P_ji,Q⟩ − 1)",
            "cs_slack": "√(I_χ²(j;i)·I_χ²(Q)) − (⟨P_ji,Q⟩ − 1)",
        }
        lines = [
            f"data processing (C3): {self.graph.n} positions, S = {self.vocab_size}, {k} transition matrices, "
            f"{self.num_checks} checks (i, j < i, j ≠ p(i), π)"
        ]
        mins = self.minima
        for m in self.MEASURES:
            v = mins[m]
            if v is None:
                lines.append(f"  {names[m]:<40} no pairs to check")
            else:
                flag = "ok" if v["value"] >= -self.tol else "VIOLATED"
                lines.append(f"  min {names[m]:<40} {v['value']: .3e} at i={v['i']}, j={v['j']}, π#{v['pi']}  {flag}")
        if self.num_checks:
            if k <= 8:
                lines.append(f"  σ1 per π: {np.array2string(self.sigma1, precision=4, max_line_width=100)}")
            else:
                q = np.quantile(self.sigma1, [0, 0.5, 1])
                lines.append(f"  σ1 over the π: min {q[0]:.4f}, median {q[1]:.4f}, max {q[2]:.4f}")
            lines.append(
                f"  smallest predicted parent margin (1 − σ1^(L-1))·I_χ²(Q): {np.nanmin(self.predicted_margin):.3e}"
            )
        eq = self.equalities
        if eq:
            shown = ", ".join(f"(π#{p}, i={i}, j={j})" for p, i, j in eq[:8]) + (" …" if len(eq) > 8 else "")
            lines.append(f"  equality cases (|slack| ≤ {self.tol:g}): {len(eq)}: {shown}")
        else:
            lines.append(f"  equality cases (|slack| ≤ {self.tol:g}): none")
        lines.append(f"  all inequalities hold: {'yes' if self.ok else 'NO'}")
        lines.append(str(self.self_entry))
        return "\n".join(lines)


def dpi_report(graph: Graph, pis: ArrayLike, *, tol: float = TOL) -> DPIReport:
    """Check the data-processing inequality and the ``σ1^{L-1}`` bound (docs/theory.md §4, C3) and report the self
    entry (C4), for a forest ``graph`` and transition matrices ``pis`` ``(k, S, S)``, in float64."""
    geo = pair_geometry(graph)
    pis = check_transition_matrices("pis", pis)
    tol = check_positive_float("tol", tol)
    k, S = pis.shape[0], pis.shape[1]
    n, n_pad = graph.n, geo.n_pad
    par = np.asarray(graph.parents)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rel = (par[:, None] >= 0) & (jj < ii) & (jj != par[:, None])
    in_tree = rel & geo.same_tree
    keys = geo.d_i * n_pad + geo.d_j
    uniq, inv = np.unique(keys[in_tree], return_inverse=True)
    U = len(uniq)
    U_pad = bucket(U, min(n_pad * n_pad // 2, 128))  # small graphs: one shape per n_pad (fewer compiles)
    u_di = np.zeros(U_pad, np.int64)
    u_dj = np.zeros(U_pad, np.int64)
    u_di[:U], u_dj[:U] = uniq // n_pad, uniq % n_pad
    di, dj, same = geo.padded()
    batch = min(k, _PI_BATCH)
    with x64():
        pj = jnp.asarray(pis, jnp.float64)
        out = _dpi_arrays(pj, u_di, u_dj, di, dj, same, jnp.float64(0.0), n_pad, batch)
        kl_u, chi_u, kl_q, chi_q, mus, Mpi = (np.asarray(a) for a in out)
        Mpi = Mpi[:, :n, :n]
    kl = np.full((k, n, n), np.nan)
    chi = np.full((k, n, n), np.nan)
    cross = rel & ~geo.same_tree
    kl[:, cross] = 0.0
    chi[:, cross] = 0.0
    kl[:, in_tree] = kl_u[:, :U][:, inv]
    chi[:, in_tree] = chi_u[:, :U][:, inv]
    sig = _sigma1(pis, mus)
    tr = np.where(mus > 0, np.diagonal(pis, axis1=1, axis2=2), 0.0).sum(-1)  # ⟨P_ii, Q⟩_μ = tr π
    L = np.maximum(geo.path_length - 1, 0).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        # σ1^{L-1} on checked pairs of one tree; 0 across trees (there ⟨P_ji, Q⟩_μ = 1 exactly)
        power = np.where(geo.same_tree[None], sig[:, None, None] ** L[None], 0.0)
        power = np.where(rel[None], power, np.nan)
        inner_minus_1 = np.where(rel[None], Mpi - 1.0, np.nan)
        slack_kl = kl_q[:, None, None] - kl
        slack_chi2 = chi_q[:, None, None] - chi
        slack_inner = chi_q[:, None, None] - inner_minus_1  # ⟨Q,Q⟩ = 1 + I_χ²(Q)
        predicted = (1.0 - power) * chi_q[:, None, None]
        bound_slack = power * chi_q[:, None, None] - inner_minus_1
        cs_slack = np.sqrt(np.maximum(chi, 0.0) * np.maximum(chi_q, 0.0)[:, None, None]) - inner_minus_1
    return DPIReport(
        graph=graph,
        slack_kl=slack_kl,
        slack_chi2=slack_chi2,
        slack_inner=slack_inner,
        predicted_margin=predicted,
        bound_slack=bound_slack,
        cs_slack=cs_slack,
        sigma1=sig,
        kl_q=kl_q,
        chi2_q=chi_q,
        self_entry=_self_entry_from(tr, 1.0 + chi_q),
        vocab_size=S,
        pairs=rel,
        tol=tol,
    )
