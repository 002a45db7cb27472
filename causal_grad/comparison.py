"""Closed form against training, side by side (claim C9, docs/theory.md §4–5).

Three things on one task, with ``π`` uniform over the same matrices ``π_1 … π_k``:

1. the closed form ``M`` (:func:`causal_grad.mi.mi_approximation`; ``M_ε`` too), and the margin it predicts for
   each row, ``m_i = M[i, p(i)] − max_{j<i, j≠p(i)} M[i, j]``, beside the σ1 bound's guaranteed margin
   ``(1 − σ1^{L-1})·I_χ²(Q)`` (min over ``j``, mean over ``π``; :func:`causal_grad.mi.dpi_report`);
2. gradient descent on the **exact** population loss (:func:`causal_grad.population.population_gd`), stage 1 of
   the layer-wise schedule (``A2 = β0·I`` held);
3. stochastic training of the same model on sampled batches (:class:`causal_grad.training.loop.ChunkRunner`,
   plain SGD at the same learning rate, prior :class:`causal_grad.priors.UniformOver` of the same matrices),
   over several seeds.

Early in stage 1, ``A1(k) ≈ −kη ∇L(0)`` and ``−∇_{A1[i,j]} L(0) ∝ (M_ε[i,j] + c_i)/(i+1)`` (C1), so the
row-centred ``(i+1)·A1(k)`` should correlate with row-centred ``M``. Reported at each recorded step: the
Spearman correlation of those (graph rows ``i ≥ 1``, entries ``j ≤ i``), the fraction of rows with a parent
whose argmax over ``j < i`` is the parent, the mean attention on the parent, and the relative Frobenius
distance between the stochastic and the exact ``A1``. Per row: the first recorded step from which the argmax
stays on the parent (its recovery step), against the predicted margin — C9 says smaller margins are
recovered later (negative rank correlation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

from . import plots
from ._validate import (
    check_int,
    check_output_path,
    check_positive_float,
    check_probability,
    check_real_array,
    check_scale,
    check_seed,
    check_transition_matrices,
)
from .gradients import linearized_gradient_at_init
from .gradients.compare import row_centre
from .gradients.enumerate import check_enumerable, check_task
from .graphs import Graph
from .mi import dpi_report, mi_approximation
from .models.reduced import DEFAULT_EPS, reduced_loss
from .population import population_gd
from .priors import UniformOver
from .task import InContextTask
from .training.loop import ChunkRunner, task_sampler

__all__ = [
    "A1Agreement",
    "a1_agreement",
    "recovery_steps",
    "predicted_row_margins",
    "stochastic_stage1",
    "ClosedFormVsTraining",
    "closed_form_vs_training",
    "comparison_figures",
]


@dataclass(frozen=True)
class A1Agreement:
    spearman: float  # row-centred (i+1)·A1 against row-centred M (graph rows i ≥ 1, j ≤ i)
    spearman_gradient: float  # the same against the exact finite-T gradient at initialisation
    argmax_parent: float  # fraction of rows with a parent and a competitor whose strict argmax over j < i is p(i)
    parent_attention: float  # mean over rows with a parent of softmax_{j≤i}(A1[i])[p(i)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _softmax_rows(A1: np.ndarray) -> np.ndarray:
    A = np.where(np.tril(np.ones(A1.shape, bool)), A1, -np.inf)
    E = np.exp(A - A.max(-1, keepdims=True))
    return E / E.sum(-1, keepdims=True)


def _parents(parents) -> tuple[int, ...]:
    """A forest's parent tuple (``-1`` = root) from a parent list or a Graph, validated."""

    return parents.parents if isinstance(parents, Graph) else Graph(parents).parents


def _child_rows(parents) -> list[int]:
    return [i for i, p in enumerate(parents) if p >= 0 and i >= 2]


def _centred_entries(X, n):
    X = row_centre(np.asarray(X, np.float64)[:n, :n] * np.arange(1, n + 1)[:, None])
    low = np.tril(np.ones((n, n), bool))
    low[0] = False
    return X[low]


def _spearman(x, y) -> float:
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs omit the field


def a1_agreement(A1, M, parents, G=None) -> A1Agreement:
    """Agreement of a first-layer matrix ``A1`` ``(T, T)`` with ``M`` ``(n, n)`` on the graph rows (and with
    the finite-``T`` gradient at initialisation ``G`` ``(T, T)``, given as ``−∂L/∂A1``, when passed)."""
    parents = _parents(parents)
    n = len(parents)
    A1 = check_real_array("A1", A1, (n + 1, n + 1))
    M = check_real_array("M", M, (n, n))
    if G is not None:
        G = check_real_array("G", G, (n + 1, n + 1))
    x = _centred_entries(A1, n)
    y = row_centre(np.asarray(M, np.float64))[np.tril(np.ones((n, n), bool)) & (np.arange(n)[:, None] > 0)]
    rho_g = _spearman(x, _centred_entries(G, n)) if G is not None else float("nan")
    rows = _child_rows(parents)
    hits = [A1[i, parents[i]] > max(A1[i, j] for j in range(i) if j != parents[i]) for i in rows]
    att = _softmax_rows(A1[:n, :n])
    pa = [att[i, parents[i]] for i, p in enumerate(parents) if p >= 0]
    return A1Agreement(
        _spearman(x, y),
        rho_g,
        float(np.mean(hits)) if hits else float("nan"),
        float(np.mean(pa)) if pa else float("nan"),
    )


def recovery_steps(steps, A1s, parents, threshold: float = 0.5) -> np.ndarray:
    """For each position with a parent (``i ≥ 2``): the first recorded step from which the attention on the
    parent, ``softmax_{j≤i}(A1[i])[p(i)]``, stays ``≥ threshold`` at every later record (``inf`` if it never
    does). NaN for roots and for ``i < 2`` (no competitor)."""

    parents = _parents(parents)
    steps = check_real_array("steps", steps)
    if steps.ndim != 1:
        raise ValueError(f"steps must have shape (K,), got {steps.shape}")
    T = len(parents) + 1
    A1s = check_real_array("A1s", A1s)
    if A1s.shape[0] != steps.shape[0] or A1s.shape[1:] not in ((T, T), (T - 1, T - 1)):
        raise ValueError(
            f"A1s must hold one ({T}, {T}) matrix per entry of steps: shape ({steps.shape[0]}, {T}, {T}), "
            f"got {A1s.shape}"
        )
    threshold = check_probability("threshold", threshold)
    out = np.full(len(parents), np.nan)
    att = np.stack([_softmax_rows(A) for A in A1s])
    for i in _child_rows(parents):
        ok = att[:, i, parents[i]] >= threshold
        bad = np.flatnonzero(~ok)
        if bad.size == 0:
            out[i] = steps[0]
        elif bad[-1] == len(steps) - 1:
            out[i] = np.inf
        else:
            out[i] = steps[bad[-1] + 1]
    return out


def predicted_row_margins(task, pis, eps: float = DEFAULT_EPS) -> dict:
    """Per position ``i`` (NaN for rows without a parent or competitor):

    * ``M``: the parent's margin in ``M`` (mean over ``π``), ``M[i, p(i)] − max_{j<i, j≠p(i)} M[i, j]``;
    * ``sigma1_bound``: the σ1 bound's guaranteed margin ``min_j (1 − σ1^{L-1}) I_χ²(Q)``, mean over ``π``;
    * ``speed``: ``M / (i+1)``, the margin in the units of the unscaled gradient (row ``i``'s gradient carries
      a factor ``1/(i+1)``, C1): the predicted speed at which row ``i`` separates its parent;
    * ``gradient``: the same margin of the exact finite-``T`` gradient at initialisation (``−∂L/∂A1 / β0``).
    """

    pis, eps = check_enumerable(task, pis, eps, what="predicted_row_margins")
    parents = task.parents
    mi = mi_approximation(task, pis)
    rep = dpi_report(task.graph, pis)
    G = np.asarray(linearized_gradient_at_init(task, pis, eps=eps))
    out: dict[str, Any] = {k: np.full(task.n, np.nan) for k in ("M", "sigma1_bound", "speed", "gradient")}
    for i in _child_rows(parents):
        others = [j for j in range(i) if j != parents[i]]
        out["M"][i] = mi.M[i, parents[i]] - mi.M[i, others].max()
        out["sigma1_bound"][i] = float(np.mean(np.nanmin(rep.predicted_margin[:, i, :i], axis=-1)))
        out["speed"][i] = out["M"][i] / (i + 1)
        out["gradient"][i] = G[i, parents[i]] - G[i, others].max()
    out["mi"] = mi
    out["G"] = G
    return out


def stochastic_stage1(
    task, pis, *, steps: int, lr: float, beta0: float, eps: float, batch: int, seeds, record: np.ndarray
) -> np.ndarray:
    """Stage 1 of the layer-wise schedule by plain SGD on sampled batches (float32), ``π`` uniform over
    ``pis``, one run per seed (one compilation for all); returns ``A1`` at each step in ``record`` (sorted,
    starting at 0), shape ``(len(seeds), len(record), T, T)``."""

    check_task(task)
    pis = check_transition_matrices("pis", pis, task.vocab_size)
    steps = check_int("steps", steps, minimum=1)
    lr = check_positive_float("lr", lr)
    beta0 = check_scale("beta0", beta0, "float32", allow_zero=True)
    eps = check_probability("eps", eps, open_high=True)
    batch = check_int("batch", batch, minimum=1)
    seeds = _check_seeds(seeds)
    rec = np.asarray(record)
    if (
        rec.ndim != 1
        or rec.size == 0
        or not np.issubdtype(rec.dtype, np.integer)
        or rec[0] != 0
        or np.any(np.diff(rec) < 0)
    ):
        raise ValueError(
            f"record must be a non-empty increasing sequence of integer steps starting at 0, got {record!r}"
        )
    samp_task = InContextTask(task.graph, task.vocab_size, task.alpha, prior=UniformOver(pis))
    T, S = task.seq_len, task.vocab_size
    params = {"A1": jnp.zeros((T, T), jnp.float32), "A2": beta0 * jnp.eye(S, dtype=jnp.float32)}

    def loss_fn(p, tokens, targets):
        return reduced_loss(p["A1"], p["A2"], tokens, targets, eps)

    gaps = np.diff(np.asarray(record))
    runner = ChunkRunner(
        loss_fn,
        task_sampler(samp_task),
        optax.sgd(lr),
        params,
        {"A1": "A1", "A2": "A2"},
        ("A1",),
        batch,
        mesh=None,
        max_chunk=int(max(gaps.max(initial=1), 1)),
    )
    runs = []
    for seed in seeds:
        state = runner.init_state(params)
        key = jax.random.key(seed)
        out = [np.asarray(state.params["A1"], np.float64)]
        for g in gaps:
            if g > 0:
                state, _ = runner(state, key, int(g))
            out.append(np.asarray(state.params["A1"], np.float64))
        runs.append(np.stack(out))
    return np.stack(runs)


@dataclass(frozen=True)
class ClosedFormVsTraining:
    """The side-by-side record (see the module docstring). Arrays are indexed by recorded step."""

    steps: np.ndarray
    exact: list[A1Agreement]
    stochastic: list[A1Agreement]  # agreement of the seed-mean stochastic A1
    distance: np.ndarray  # ‖mean_seeds A1_sgd − A1_exact‖_F / ‖A1_exact‖_F (NaN at step 0)
    distance_seeds: np.ndarray  # (seeds, K): the same for each seed's own run
    exact_loss: np.ndarray
    margins: dict
    recovery_exact: np.ndarray
    recovery_stochastic: np.ndarray
    margin_vs_recovery: dict
    parents: tuple
    M: np.ndarray
    A1_exact: np.ndarray = field(repr=False)
    A1_stochastic: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"ClosedFormVsTraining({len(self.steps)} recorded steps up to {int(self.steps[-1])}, "
            f"{len(self.parents)} positions; final distance {self.distance[-1]:.3g})"
        )

    def to_dict(self) -> dict:
        """JSON-ready: arrays as lists, agreements as dicts (the A1 trajectories left out: ``A1_exact``,
        ``A1_stochastic``)."""

        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [x.to_dict() if isinstance(x, A1Agreement) else conv(x) for x in v]
            return v

        return {
            f.name: conv(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("A1_exact", "A1_stochastic")
        }

    def table(self) -> str:
        lines = [
            "ρ: Spearman of row-centred (i+1)·A1 with row-centred M (ρ_G: with the exact gradient at init)",
            f"{'step':>6} {'loss':>9} {'ρ exact':>8} {'ρ sgd':>8} {'ρ_G sgd':>8} {'argmax ex':>9} "
            f"{'argmax sgd':>10} {'att ex':>7} {'att sgd':>7} {'dist':>7}",
        ]
        for k, t in enumerate(self.steps):
            e, s = self.exact[k], self.stochastic[k]
            lines.append(
                f"{int(t):>6} {self.exact_loss[k]:>9.5f} {e.spearman:>8.3f} {s.spearman:>8.3f} "
                f"{s.spearman_gradient:>8.3f} "
                f"{e.argmax_parent:>9.2f} {s.argmax_parent:>10.2f} {e.parent_attention:>7.3f} "
                f"{s.parent_attention:>7.3f} {self.distance[k]:>7.3f}"
            )
        rows = [i for i in range(len(self.parents)) if not np.isnan(self.margins["M"][i])]
        lines.append("")
        lines.append(
            f"{'row':>4} {'parent':>6} {'M margin':>9} {'M/(i+1)':>8} {'σ1 bound':>9} {'grad':>8} "
            f"{'recovered (exact)':>18} {'(sgd)':>6}"
        )
        for i in rows:
            mg = self.margins
            lines.append(
                f"{i:>4} {self.parents[i]:>6} {mg['M'][i]:>9.4f} {mg['speed'][i]:>8.4f} "
                f"{mg['sigma1_bound'][i]:>9.4f} {mg['gradient'][i]:>8.4f} {self.recovery_exact[i]:>18} "
                f"{self.recovery_stochastic[i]:>6}"
            )
        mv = self.margin_vs_recovery
        lines.append("\nSpearman(predicted margin, recovery step) — C9 predicts < 0 (smaller margins recovered later):")
        for m in ("speed", "M", "sigma1_bound", "gradient"):
            lines.append(f"  {m:<13} exact {mv[m + '/exact']: .3f}   sgd {mv[m + '/stochastic']: .3f}")
        return "\n".join(lines)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
        raise TypeError(f"seeds must be a sequence of integer seeds, got {type(seeds).__name__}")
    if len(seeds) < 1:
        raise ValueError("seeds must name at least one seed")
    return tuple(check_seed(f"seeds[{k}]", s) for k, s in enumerate(seeds))


def _rank_corr(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    m = ~np.isnan(a) & ~np.isnan(b)
    if m.sum() < 3:
        return float("nan")
    b = np.where(np.isinf(b[m]), np.nanmax(np.where(np.isinf(b[m]), np.nan, b[m])) * 10 + 1, b[m])
    if np.all(b == b[0]) or np.all(a[m] == a[m][0]):
        return float("nan")
    return float(stats.spearmanr(a[m], b).statistic)  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs omit the field


def closed_form_vs_training(
    task,
    pis,
    *,
    steps: int = 200,
    lr: float = 20.0,
    beta0: float = 1.0,
    eps: float = DEFAULT_EPS,
    batch: int = 512,
    seeds=(0, 1, 2),
    record_every: int = 10,
) -> ClosedFormVsTraining:
    """Run the exact population trajectory and stochastic training side by side with ``M`` (stage 1 of the
    layer-wise schedule, ``steps`` steps at learning rate ``lr``); see the module docstring."""

    pis, eps = check_enumerable(task, pis, eps, what="closed_form_vs_training")
    seeds = _check_seeds(seeds)
    steps = check_int("steps", steps, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    lr = check_positive_float("lr", lr)
    beta0 = check_scale("beta0", beta0, "float32")
    margins = predicted_row_margins(task, pis, eps)
    M = margins.pop("mi").M
    G = margins.pop("G")
    traj = population_gd(
        task, pis, schedule="layerwise", steps=steps, lr=lr, beta0=beta0, eps=eps, record_every=record_every
    )
    rec = traj.steps
    sto = stochastic_stage1(task, pis, steps=steps, lr=lr, beta0=beta0, eps=eps, batch=batch, seeds=seeds, record=rec)
    mean_sto = sto.mean(0)
    parents = task.parents
    ex = [a1_agreement(A, M, parents, G) for A in traj.A1]
    st = [a1_agreement(A, M, parents, G) for A in mean_sto]
    norm = np.linalg.norm(traj.A1, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.where(norm > 0, np.linalg.norm(mean_sto - traj.A1, axis=(1, 2)) / norm, np.nan)
        dist1 = np.where(norm > 0, np.linalg.norm(sto - traj.A1, axis=(2, 3)) / norm, np.nan)
    r_ex = recovery_steps(rec, traj.A1, parents)
    r_st = recovery_steps(rec, mean_sto, parents)
    mv = {
        f"{m}/{w}": _rank_corr(margins[m], r)
        for m in ("speed", "M", "sigma1_bound", "gradient")
        for w, r in (("exact", r_ex), ("stochastic", r_st))
    }
    return ClosedFormVsTraining(
        rec, ex, st, dist, dist1, traj.loss, margins, r_ex, r_st, mv, parents, M, traj.A1, mean_sto
    )


def comparison_figures(res: ClosedFormVsTraining, out_dir, prefix: str = "c9") -> list[str]:
    """Heatmaps of ``M``, the exact-population ``A1`` and the stochastic ``A1`` at a few steps (edges outlined);
    agreement curves against steps; predicted margin against recovery step. Returns the paths written (PNG, or the
    format of an active :func:`causal_grad.plots.output_options`)."""
    if not isinstance(res, ClosedFormVsTraining):
        raise TypeError(f"res must be a ClosedFormVsTraining (from closed_form_vs_training), got {type(res).__name__}")

    out_dir = check_output_path("out_dir", out_dir, kind="dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    n = res.M.shape[0]
    edges = [(i, p) for i, p in enumerate(res.parents) if p >= 0]
    K = len(res.steps)
    picks = sorted({1, K // 2, K - 1}) if K > 2 else list(range(K))
    panels = [("M (closed form)", res.M)]
    for k in picks:
        panels.append((f"exact A1, step {int(res.steps[k])}", res.A1_exact[k][:n, :n]))
        panels.append((f"SGD A1 (mean), step {int(res.steps[k])}", res.A1_stochastic[k][:n, :n]))
    paths = [
        plots.output_path(out_dir / f"{prefix}_{name}.png") for name in ("heatmaps", "agreement", "margin_vs_recovery")
    ]
    plots.heatmaps(
        panels,
        edges=edges,
        suptitle="closed form vs exact population GD vs stochastic training (stage 1)",
        path=paths[0],
    )
    plots.curves(
        res.steps,
        {
            "ρ(A1, M) exact": [a.spearman for a in res.exact],
            "ρ(A1, M) SGD": [a.spearman for a in res.stochastic],
            "ρ(A1, ∇L(0)) SGD": [a.spearman_gradient for a in res.stochastic],
            "parent attention exact": [a.parent_attention for a in res.exact],
            "parent attention SGD": [a.parent_attention for a in res.stochastic],
            "‖SGD − exact‖/‖exact‖": res.distance,
        },
        xlabel="step",
        ylabel="value",
        title="A1 along the closed form",
        path=paths[1],
    )
    m = res.margins["speed"]
    rows = ~np.isnan(m)
    rec = np.where(np.isinf(res.recovery_exact), np.nan, res.recovery_exact)
    plots.scatter(
        m[rows],
        rec[rows],
        xlabel="predicted margin M/(i+1) (gradient units)",
        ylabel="recovery step (parent attention ≥ 0.5)",
        title="smaller margins are recovered later",
        path=paths[2],
    )
    return [str(p) for p in paths]
