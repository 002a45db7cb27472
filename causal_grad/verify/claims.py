"""The checks of claims C1–C10 (docs/theory.md §7) and of the sample-complexity study SC (not a paper claim), each
at a scale chosen by ``ctx.quick``.

Every check decides its status from the numbers it computes; the thresholds are stated next to each check
and follow the maths (float64 exact paths: 1e-12 round-off; Monte Carlo: 4 standard errors). The long checks
show progress bars on a terminal (:mod:`causal_grad.progress`): the sweeps of C1, every training (C5–C8), the
graphs of C9 and the trials of SC.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

# mi's functions are looked up on the module at call time, so that a test can rig one (tests/test_verify.py)
from .. import mi, plots
from .._x64 import x64
from ..baselines import BaselineEstimates
from ..comparison import closed_form_vs_training, comparison_figures
from ..gradients import linearized_gradient_at_init, parent_argmax_study
from ..gradients.dp import departure_from_mi, departure_sweep, exact_gradient_at_init_dp
from ..gradients.multi_parent import check_c10 as multi_parent_c10
from ..graphs import Graph, chain, icl_pairs, random_forest, random_tree, two_parent
from ..models.disentangled import disentangled_apply, position_attention
from ..ood import default_ood_priors, evaluate_ood
from ..priors import Dirichlet, Floored, Sticky
from ..progress import progress, progress_enabled
from ..studies import sample_complexity
from ..task import InContextTask
from ..training import default_config, fast_cpu_jit, preset, train
from .records import ClaimResult, VerifyContext

if TYPE_CHECKING:
    from ..training import EvalRecord

__all__ = ["CHECKS"]

#: The built-in checks in registration order: (claim id, title, check(ctx) -> ClaimResult); the registry
#: (:mod:`causal_grad.verify.registry`) enters them.
CHECKS: list[tuple[str, str, Callable[[VerifyContext], ClaimResult]]] = []


def _check(cid: str, title: str):
    def deco(fn):
        CHECKS.append((cid, title, fn))
        return fn

    return deco


def _forests(key, count: int, n: int):
    keys = jax.random.split(key, count)
    return [random_forest(k, n, 0.3) if t % 2 else random_tree(k, n) for t, k in enumerate(keys)]


# ---------------------------------------------------------------------------------------------- C1
@_check("C1", "the rescaled exact gradient at init matches M up to row constants as T grows")
def check_c1(ctx: VerifyContext) -> ClaimResult:

    key = jax.random.key(ctx.seed + 1)
    Ts = [5, 9, 17, 33, 65] if ctx.quick else [5, 9, 17, 33, 65, 129, 257]
    # 1. two independent exact methods agree (enumeration vs the polynomial-time sum-product)
    task = InContextTask(random_tree(jax.random.key(ctx.seed + 11), 6), 3, 1.0)
    with x64():
        pis = np.asarray(Dirichlet(1.0).sample(key, (4,), 3, jnp.float64))
    G_enum = np.asarray(linearized_gradient_at_init(task, pis, eps=1e-3))
    G_dp = exact_gradient_at_init_dp(task, pis, eps=1e-3)
    method_gap = float(np.abs(G_enum - G_dp).max() / np.abs(G_enum).max())
    # 2. the departure from M as T grows, per family and prior (ε = 0, the order of limits of docs/theory.md §4)
    sweeps, series = {}, {}
    cases = [(fam, a) for fam in ("chain", "icl-pairs", "random-tree") for a in (1.0, 0.1)]
    for fam, a in progress(cases, desc="C1 sweeps", unit="sweep"):
        r = departure_sweep(fam, 3, a, Ts, num_pis=8, key=jax.random.fold_in(key, int(a * 10)), seeds=(0, 1))
        rel = [row["rel_rms"] for row in r["rows"]]
        slope = float(np.polyfit(np.log(Ts), np.log(rel), 1)[0])
        sweeps[f"{fam}, Dirichlet({a:g})"] = {
            "T": Ts,
            "rel_rms": rel,
            "slope_rel": slope,
            "parent_argmax": [row["parent_argmax"] for row in r["rows"]],
        }
        series[f"{fam}, α={a:g}"] = rel
    fig = plots.output_path(ctx.fig_path("c1_error_vs_T.png"))  # log axes: ticks at the T values
    plots.curves(
        Ts,
        series,
        xlabel="T",
        ylabel="relative RMS error",
        logx=True,
        logy=True,
        title="rescaled exact gradient at init vs M (row-centred), S=3",
        path=fig,
    )
    # 3. the paper's own size: S = 10, T = 20, α = 0.1
    paper_task = InContextTask(random_tree(jax.random.key(ctx.seed + 12), 19), 10, 0.1)
    with x64():
        paper_pis = np.asarray(
            Dirichlet(0.1).sample(jax.random.fold_in(key, 99), (4 if ctx.quick else 16,), 10, jnp.float64)
        )
    paper = departure_from_mi(paper_task, paper_pis, eps=0.0)
    converging = {k: v for k, v in sweeps.items() if "Dirichlet(1)" in k}
    slow = {k: v for k, v in sweeps.items() if "Dirichlet(0.1)" in k}
    ok_conv = all(v["slope_rel"] < -0.5 and v["rel_rms"][-1] < v["rel_rms"][0] for v in converging.values())
    slow_ok = all(v["slope_rel"] < -0.5 for v in slow.values())
    if method_gap > 1e-9 or not ok_conv:
        status = "fail"
    else:
        status = "pass" if slow_ok else "partial"
    slopes = ", ".join(f"{k.split(',')[0]} {v['slope_rel']:.2f}" for k, v in converging.items())
    slopes01 = ", ".join(f"{k.split(',')[0]} {v['slope_rel']:.2f}" for k, v in slow.items())
    summary = (
        f"Dirichlet(1): relative error falls as T^slope with slope {slopes} (T = {Ts[0]}..{Ts[-1]}); "
        f"Dirichlet(0.1): slope {slopes01} — no convergence visible at these T (rare tokens keep ĉ far "
        f"from μ); paper size S=10, T=20, α=0.1: relative entry-wise difference median "
        f"{paper['rel_entry_median']:.2f} (max {paper['rel_entry_max']:.2f}), relative RMS "
        f"{paper['rel_rms']:.2f}, parent is the argmax in {paper['parent_argmax']:.0%} of rows; "
        f"enumeration ≡ DP to {method_gap:.1e}"
    )
    paper_num = {k: v for k, v in paper.items() if not isinstance(v, np.ndarray)}
    return ClaimResult(
        "C1",
        "",
        status,
        summary,
        {
            "enumeration_vs_dp_max_rel_gap": method_gap,
            "sweeps": sweeps,
            "paper_size": paper_num,
            "criterion": "pass: every Dirichlet(1) family's relative error has fitted slope < -0.5 "
            "in log T; partial: some Dirichlet(0.1) family does not (slow convergence "
            "docs/theory.md warns about); fail: a Dirichlet(1) family does not converge, or "
            "the two exact methods disagree beyond 1e-9",
        },
        [
            "causal_grad.gradients.dp.departure_sweep",
            "causal_grad.gradients.dp.exact_gradient_at_init_dp",
            "causal_grad.linearized_gradient_at_init",
            "causal_grad.mi.mi_approximation",
        ],
        [str(fig)],
    )


# ---------------------------------------------------------------------------------------------- C2
@_check("C2", "the largest entry of each gradient row (j < i) is the parent")
def check_c2(ctx: VerifyContext) -> ClaimResult:

    key = jax.random.key(ctx.seed + 2)
    # (a) the theorem: for M (per π) the parent wins every row, over random forests and priors
    min_margin, cases = np.inf, 0
    for S in (2, 3, 5):
        for prior in (Dirichlet(0.1), Dirichlet(1.0), Floored(1.0, 0.2)):
            key, kg, kp = jax.random.split(key, 3)
            with x64():
                pis = np.asarray(prior.sample(kp, (16,), S, jnp.float64))
            for g in _forests(kg, 6, 10):
                marg = mi.mi_approximation(InContextTask(g, S, 1.0), pis).parent_margins()
                fin = marg[np.isfinite(marg)]
                if fin.size:
                    min_margin = min(min_margin, float(fin.min()))
                cases += 1
    # (b) the exact finite-T gradient: failure rates and counterexamples at small T
    ns = [4, 6, 8] if ctx.quick else [4, 6, 8, 10]
    num = 25 if ctx.quick else 100
    study = {}
    for S, prior in ((2, Floored(1.0, 0.2)), (3, Floored(1.0, 0.2)), (3, Dirichlet(0.1))):
        key, sub = jax.random.split(key)
        res = parent_argmax_study(ns, S, prior, num=num, key=sub, eps=1e-3, kappa=1.0)
        study[f"S={S}, {prior!r}"] = [
            {k: v for k, v in r.items() if k != "counterexamples"} | {"counterexamples": r["counterexamples"][:2]}
            for r in res
        ]
    fails = sum(r["row_fail"] * r["rows"] for rs in study.values() for r in rs)
    rows = sum(r["rows"] for rs in study.values() for r in rs)
    cond_fail = sum(r["cond_fail"] for rs in study.values() for r in rs)
    theorem_ok = min_margin >= -1e-12
    if not theorem_ok or cond_fail:
        status = "fail"
    else:
        status = "partial" if fails else "pass"
    rates = "; ".join(
        f"{k.split(',')[0]} {k.split(', ')[1].split('(')[0]}: " + "/".join(f"{r['row_fail']:.0%}" for r in rs)
        for k, rs in study.items()
    )
    summary = (
        f"M: parent wins every row ({cases} forest×prior cases, min margin {min_margin:.2e}); exact "
        f"finite-T gradient: {int(round(fails))}/{rows} rows miss the parent at T = "
        f"{'/'.join(str(n + 1) for n in ns)} ({rates}); no failure where T·margin(M_ε) ≥ 1 "
        f"(violations: {cond_fail})"
    )
    return ClaimResult(
        "C2",
        "",
        status,
        summary,
        {
            "M_min_parent_margin": min_margin,
            "M_cases": cases,
            "finite_T": study,
            "finite_T_row_failures": int(round(fails)),
            "finite_T_rows": rows,
            "condition": "T * margin(M_eps) >= 1 (empirical constant, see docs/theory.md C2)",
            "condition_violations": cond_fail,
            "documented_counterexample": "S=2, parents (-1,0,1,0), pi=[[.55,.45],[.45,.55]]: at i=2 "
            "the grandparent beats the parent",
        },
        [
            "causal_grad.gradients.parent_argmax_study",
            "causal_grad.linearized_gradient_at_init",
            "causal_grad.mi.mi_approximation",
        ],
        [],
    )


# ---------------------------------------------------------------------------------------------- C3
@_check("C3", "data processing: no position carries more information about s_i than its parent; σ1 margin bound")
def check_c3(ctx: VerifyContext) -> ClaimResult:

    key = jax.random.key(ctx.seed + 3)
    count, n, k = (8, 10, 32) if ctx.quick else (40, 14, 128)
    cases = []
    for S in (2, 3, 5):
        for name, prior in (
            ("dirichlet(0.1)", Dirichlet(0.1)),
            ("dirichlet(1)", Dirichlet(1.0)),
            ("floored(1, γ=0.2)", Floored(1.0, 0.2)),
        ):
            key, kg, kp = jax.random.split(key, 3)
            with x64():
                pis = np.asarray(prior.sample(kp, (k,), S, jnp.float64))
            for g in _forests(kg, count, n):
                cases.append((S, name, g, mi.dpi_report(g, pis)))
    checks = sum(r.num_checks for *_, r in cases)
    mins = {
        m: min((r.minima[m]["value"] for *_, r in cases if r.minima[m] is not None), default=None)
        for m in ("slack_kl", "slack_chi2", "slack_inner", "bound_slack", "cs_slack")
    }
    worst = min(cases, key=lambda c: c[3].minima["slack_kl"]["value"] if c[3].minima["slack_kl"] else np.inf)
    equalities = sum(len(r.equalities) for *_, r in cases)
    ok = all(r.ok for *_, r in cases)
    slacks = np.concatenate([r.slack_chi2[r.checked] for *_, r in cases])
    margin_floor = np.concatenate([r.predicted_margin[r.checked] for *_, r in cases])
    fig = plots.output_path(ctx.fig_path("c3_dpi_slack.png"))
    plots.histogram(
        np.log10(np.maximum(slacks, 1e-18)),
        xlabel="log10 χ² slack  I(p(i); i) − I(j; i)",
        title=f"DPI slack over {slacks.size} (π, i, j) checks",
        path=fig,
    )
    status = "pass" if ok else "fail"
    summary = (
        f"{checks} checks over {len(cases)} (forest, prior, S) cases: min KL slack {mins['slack_kl']:.2e}, "
        f"min χ² slack {mins['slack_chi2']:.2e}, min σ1-bound slack {mins['bound_slack']:.2e} "
        f"(all ≥ −1e-12: {'yes' if ok else 'NO'}); {equalities} equality cases"
    )
    return ClaimResult(
        "C3",
        "",
        status,
        summary,
        {
            "checks": checks,
            "cases": len(cases),
            "min_slacks": mins,
            "equality_cases": equalities,
            "worst_case": {
                "S": worst[0],
                "prior": worst[1],
                "parents": list(worst[2].parents),
                "where": worst[3].minima["slack_kl"],
            },
            "median_predicted_margin": float(np.median(margin_floor)),
            "tolerance": 1e-12,
        },
        ["causal_grad.mi.dpi_report", "causal_grad.laws.pairwise_joint"],
        [str(fig)],
    )


# ---------------------------------------------------------------------------------------------- C4
@_check("C4", "the self entry tr π against the parent entry 1 + I_χ²(Q): when it wins, when it loses")
def check_c4(ctx: VerifyContext) -> ClaimResult:

    num = 20_000 if ctx.quick else 200_000
    key = jax.random.key(ctx.seed + 4)
    rows, figs = {}, []
    fails = []
    for S in (2, 3, 10):
        for a in (0.1, 1.0):
            key, sub = jax.random.split(key)
            r = mi.self_entry_over_prior(Dirichlet(a), S, sub, num)
            rows[f"dirichlet({a:g}) S={S}"] = {
                "win_prob": r.win_prob,
                "win_prob_se": r.win_prob_se,
                "mean_trace": r.mean_trace,
                "mean_parent_entry": r.mean_parent_entry,
                "mean_margin": r.mean_margin,
                "mean_margin_se": r.mean_margin_se,
            }
            # Theorem-side statement: under i.i.d. Dirichlet rows E[tr π] = 1 < E[1 + I_χ²(Q)]
            if not r.mean_margin + 4 * r.mean_margin_se < 0:
                fails.append(f"Dirichlet({a:g}), S={S}: mean margin {r.mean_margin:.3g} not < 0")
            if S == 3 and a == 0.1:
                sample = r
    sticky = {}
    for lam in (0.1, 0.3, 0.5):
        key, sub = jax.random.split(key)
        r = mi.self_entry_over_prior(Sticky(0.1, lam), 3, sub, num)
        sticky[lam] = r
        rows[f"sticky(0.1, λ={lam}) S=3"] = {
            "win_prob": r.win_prob,
            "win_prob_se": r.win_prob_se,
            "mean_margin": r.mean_margin,
            "mean_margin_se": r.mean_margin_se,
        }
    # docs/theory.md §7: a sticky prior makes the diagonal win on average once λ ≳ 0.3 at S = 3
    if not sticky[0.5].mean_margin - 4 * sticky[0.5].mean_margin_se > 0:
        fails.append("sticky λ=0.5: the self entry does not win on average")
    # S = 2 criterion: the diagonal beats the parent iff λ = 1 − π01 − π10 ∈ (0, 1)
    with x64():
        pis = np.asarray(Dirichlet(1.0).sample(jax.random.key(ctx.seed + 44), (num,), 2, jnp.float64))

    r2 = mi.self_entry_report(pis)
    lam2 = 1 - pis[:, 0, 1] - pis[:, 1, 0]
    pred = (lam2 > 0) & (lam2 < 1)
    s2_agree = float(np.mean(pred == r2.wins))
    if s2_agree < 1.0:
        fails.append(f"S=2 criterion agrees on {s2_agree:.4f} of draws only")
    fig = plots.output_path(ctx.fig_path("c4_self_vs_parent.png"))
    plots.scatter(
        sample.parent_entry[:3000],
        sample.trace[:3000],
        xlabel="parent entry 1 + I_χ²(Q)",
        ylabel="self entry tr π",
        diagonal=True,
        title="S=3, Dirichlet(0.1): above the line the self entry wins",
        path=fig,
    )
    figs.append(str(fig))
    worst_win = rows["dirichlet(0.1) S=2"]["win_prob"]
    status = "fail" if fails else "partial"
    summary = (
        f"prior averages: the self entry loses under every Dirichlet prior checked (e.g. S=3, α=0.1: "
        f"E tr π = {rows['dirichlet(0.1) S=3']['mean_trace']:.3f} < E[1+I_χ²(Q)] = "
        f"{rows['dirichlet(0.1) S=3']['mean_parent_entry']:.3f}), but per draw it wins with probability "
        f"{worst_win:.2f} at S=2, {rows['dirichlet(0.1) S=3']['win_prob']:.2f} at S=3 (α=0.1); sticky "
        f"λ=0.5 makes it win on average; S=2 criterion λ∈(0,1) exact on {s2_agree:.4f} of draws"
    )
    if fails:
        summary = "; ".join(fails)
    return ClaimResult(
        "C4",
        "",
        status,
        summary,
        {
            "priors": rows,
            "s2_criterion_agreement": s2_agree,
            "draws_per_prior": num,
            "failures": fails,
            "note": "partial = the diagonal j = i is outside the theorem: it beats the parent on a "
            "positive fraction of draws (reported above), though never on prior average "
            "under i.i.d. Dirichlet rows",
        },
        ["causal_grad.mi.self_entry_over_prior", "causal_grad.mi.self_entry_report"],
        figs,
    )


# ---------------------------------------------------------------------------------------------- C9
@_check("C9", "early in stage 1, A1 moves along the closed form; rows with smaller predicted margins recover later")
def check_c9(ctx: VerifyContext) -> ClaimResult:

    # two 8-position forests with several rows that have a parent and competitors; S = 3, Dirichlet(1)
    graphs = [Graph((-1, 0, 1, -1, 3, 3, 0, 2)), Graph((-1, 0, 0, 1, 2, -1, 5, 4))]
    if not ctx.quick:
        graphs.append(random_tree(jax.random.key(ctx.seed + 9), 9))
    steps, rec_every, seeds = (60, 3, (0, 1, 2, 3)) if ctx.quick else (200, 2, tuple(range(8)))
    rho_m, rho_g, dist, spd, rec, figs, tables = [], [], [], [], [], [], []
    for g_i, g in enumerate(progress(graphs, desc="C9 graphs", unit="graph")):
        task = InContextTask(g, 3, 1.0)
        with x64():
            pis = np.asarray(Dirichlet(1.0).sample(jax.random.key(ctx.seed + 90 + g_i), (8,), 3, jnp.float64))
        res = closed_form_vs_training(
            task, pis, steps=steps, lr=50.0, beta0=1.0, eps=1e-3, batch=512, seeds=seeds, record_every=rec_every
        )
        early = 1  # the first recorded step after initialisation
        rho_m.append(res.exact[early].spearman)
        rho_g.append(res.stochastic[early].spearman_gradient)
        dist.append(float(np.nanmax(res.distance)))
        m = ~np.isnan(res.margins["speed"])
        spd.extend(res.margins["speed"][m])
        rec.extend(res.recovery_exact[m])
        tables.append(res.table())
        figs += comparison_figures(res, ctx.out / "figures", prefix=f"c9_graph{g_i}")
    rec_a = np.asarray(rec, float)
    finite = np.isfinite(rec_a)
    corr = stats.spearmanr(np.asarray(spd)[finite], rec_a[finite])
    # the claim: a positive correlation with M on every graph, and a significant negative margin–recovery order
    ok_m = all(r > 0 for r in rho_m)
    ok_order = corr.statistic < 0 and corr.pvalue < 0.05  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs omit the result's fields
    status = "pass" if (ok_m and ok_order and finite.all()) else "fail"
    summary = (
        f"row-centred A1 after {rec_every} steps: Spearman with M {', '.join(f'{r:.2f}' for r in rho_m)} "
        f"(with the exact finite-T gradient {', '.join(f'{r:.2f}' for r in rho_g)}); SGD within "
        f"{max(dist):.3f} (relative) of exact population GD; recovery step vs predicted margin M/(i+1): "
        f"Spearman {corr.statistic:.2f} (p = {corr.pvalue:.2g}, {finite.sum()} rows)"  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs omit the result's fields
    )
    return ClaimResult(
        "C9",
        "",
        status,
        summary,
        {
            "spearman_A1_M": rho_m,
            "spearman_A1_gradient": rho_g,
            "max_relative_distance_sgd": dist,
            "margin_recovery_spearman": float(corr.statistic),  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs
            "margin_recovery_pvalue": float(corr.pvalue),  # pyright: ignore[reportAttributeAccessIssue]  # scipy stubs
            "rows_recovered": int(finite.sum()),
            "rows": int(finite.size),
            "note": "margins are in gradient units, M-margin/(i+1): row i's gradient carries 1/(i+1) "
            "(C1); the raw M margin ignores that factor and does not order recovery",
            "tables": tables,
        },
        [
            "causal_grad.comparison.closed_form_vs_training",
            "causal_grad.population.population_gd",
            "causal_grad.mi.mi_approximation",
        ],
        figs,
    )


# ---------------------------------------------------------------------------------------------- training (C5–C8)
PAPER_S, PAPER_N, PAPER_ALPHA = 10, 19, 0.1  # S = 10, T = 20, α = 0.1 (docs/theory.md §6)


def _paper_graphs(ctx):

    return {
        "chain": chain(PAPER_N),
        "icl-pairs": icl_pairs(PAPER_N),
        "random-tree": random_tree(jax.random.key(ctx.seed + 5), PAPER_N),
    }


def _trained(ctx: VerifyContext, name: str, model: str, schedule: str | None = None, **kw):
    """Train once per (graph, model, schedule) within a verify run; later checks reuse the run."""

    key = (name, model, schedule, tuple(sorted(kw.items())))
    if key not in ctx.cache:
        graph = _paper_graphs(ctx)[name]
        cfg = default_config(model, graph, schedule=schedule, vocab=PAPER_S, alpha=PAPER_ALPHA, seed=ctx.seed, **kw)
        ctx.echo(
            f"    training {model}/{cfg.optim.schedule} on {name} ({cfg.run.steps} steps, batch {cfg.run.batch}) ..."
        )
        ctx.cache[key] = train(cfg, progress=progress_enabled())
    return ctx.cache[key]


def _baselines(ctx: VerifyContext, name: str) -> BaselineEstimates:

    key = ("baselines", name)
    if key not in ctx.cache:
        task = InContextTask(_paper_graphs(ctx)[name], PAPER_S, PAPER_ALPHA)
        ctx.cache[key] = task.baseline_losses(jax.random.key(ctx.seed + 55), 16384)
    return ctx.cache[key]


def _final(res) -> EvalRecord:
    """The last held-out evaluation of a finished run (it evaluates at least at step 0)."""
    f = res.final
    if f is None:
        raise ValueError("the run has no held-out evaluation")
    return f


def _attention_figure(ctx, res, name, title):

    cfg = res.config
    spec = cfg.build_model()
    task_tokens = jnp.zeros((1, cfg.seq_len), jnp.int32)
    att = np.asarray(spec.attention(res.params, task_tokens))
    att = att.reshape((-1,) + att.shape[-2:])[0]
    edges = [(i, p) for i, p in enumerate(cfg.graph.parents) if p >= 0]
    fig = plots.output_path(ctx.fig_path(name))
    plots.heatmaps([(title, att[: cfg.graph.n, : cfg.graph.n])], edges=edges, path=fig)
    return str(fig)


@_check("C5", "training recovers the graph: attention on the parent near 1, loss near the in-context estimator")
def check_c5(ctx: VerifyContext) -> ClaimResult:

    runs = {}
    for name in ("chain", "icl-pairs", "random-tree"):
        runs[(name, "reduced", "layerwise")] = _trained(ctx, name, "reduced")
    runs[("random-tree", "disentangled", "layerwise")] = _trained(ctx, "random-tree", "disentangled")
    runs[("chain", "disentangled", "joint")] = _trained(ctx, "chain", "disentangled", "joint")
    rows, figs, fails, partial = {}, [], [], []
    for (name, model, sched), res in runs.items():
        f = _final(res)
        base = _baselines(ctx, name)
        gap = base.others["unigram"].mean - base.in_context.mean
        closed = 1.0 - f.excess_over_in_context / gap  # fraction of the unigram→estimator gap the model closes
        rows[f"{model}/{sched} on {name}"] = {
            "recovered": f.all_recovered,
            "mean_parent_attention": f.mean_parent_attention,
            "min_parent_attention": f.min_parent_attention,
            "loss": f.loss,
            "estimator_loss": f.loss - f.excess_over_in_context,
            "excess_over_estimator": f.excess_over_in_context,
            "unigram_loss": base.others["unigram"].mean,
            "gap_closed": closed,
            "steps": res.config.run.steps,
            "wall_s": res.history.wall_s,
        }
        if not (f.all_recovered and f.mean_parent_attention is not None and f.mean_parent_attention >= 0.9):
            fails.append(
                f"{model}/{sched} on {name}: recovered {f.all_recovered}, parent attention "
                f"{f.mean_parent_attention:.3f}"
            )
        if closed < 0.85:
            (partial if model == "reduced" else fails).append(
                f"{model}/{sched} on {name}: excess over the estimator {f.excess_over_in_context:.3f} nats "
                f"(closes {closed:.0%} of the unigram→estimator gap)"
            )
    res = runs[("random-tree", "disentangled", "layerwise")]
    figs.append(_attention_figure(ctx, res, "c5_tree_attention.png", "disentangled: layer-1 attention, tree"))
    ev = res.evals
    fig = plots.output_path(ctx.fig_path("c5_tree_loss.png"))
    plots.curves(
        [e.step for e in ev],
        {"model (held out)": [e.loss for e in ev]},
        hlines={
            "in-context estimator": ev[-1].loss - ev[-1].excess_over_in_context,
            "unigram": _baselines(ctx, "random-tree").others["unigram"].mean,
        },
        xlabel="step",
        ylabel="loss (nats)",
        title="random tree, S=10, T=20, α=0.1",
        path=fig,
    )
    figs.append(str(fig))
    status = "fail" if fails else ("partial" if partial else "pass")
    rec = sum(r["recovered"] for r in rows.values())
    summary = (
        f"{rec}/{len(rows)} runs recover every parent (mean parent attention "
        f"{min(r['mean_parent_attention'] for r in rows.values()):.3f}–"
        f"{max(r['mean_parent_attention'] for r in rows.values()):.3f}); disentangled models close "
        + ", ".join(f"{r['gap_closed']:.0%}" for k, r in rows.items() if k.startswith("disentangled"))
        + " of the unigram→estimator loss gap"
    )
    if partial:
        summary += (
            "; the reduced model's loss stays far from the estimator at T=20 ("
            + ", ".join(f"{r['excess_over_estimator']:.2f}" for k, r in rows.items() if k.startswith("reduced"))
            + " nats excess): its only smoothing is ε/S and the context's unigram, not α pseudo-counts"
        )
    if fails:
        summary = "; ".join(fails)
    return ClaimResult(
        "C5",
        "",
        status,
        summary,
        {
            "runs": rows,
            "failures": fails,
            "partial": partial,
            "criterion": "recovered and mean parent attention >= 0.9; loss "
            "closes >= 85% of the unigram-to-estimator gap",
        },
        [
            "causal_grad.training.train",
            "causal_grad.training.graph_metrics",
            "causal_grad.task.InContextTask.baseline_losses",
        ],
        figs,
    )


@_check("C6", "a chain gives an induction head: previous-token A1, diagonal-dominant A2")
def check_c6(ctx: VerifyContext) -> ClaimResult:
    rows, fails = {}, []
    for model, sched in (("reduced", "layerwise"), ("disentangled", "layerwise"), ("disentangled", "joint")):
        res = _trained(ctx, "chain", model, sched if sched == "joint" else None)
        f = _final(res)
        rows[f"{model}/{sched}"] = {
            "previous_token": f.previous_token,
            "diag_argmax_rows": f.diag_argmax_rows,
            "diag_minus_offdiag": f.diag_minus_offdiag,
        }
        if not (
            f.previous_token is not None
            and f.previous_token >= 0.9
            and f.diag_argmax_rows == 1.0
            and f.diag_minus_offdiag is not None
            and f.diag_minus_offdiag > 0
        ):
            fails.append(f"{model}/{sched}: {rows[f'{model}/{sched}']}")
    fig = _attention_figure(
        ctx,
        _trained(ctx, "chain", "disentangled", "joint"),
        "c6_chain_attention.png",
        "chain, joint training: layer-1 attention",
    )
    status = "fail" if fails else "pass"
    summary = "; ".join(
        f"{k}: previous-token weight {v['previous_token']:.3f}, A2 diagonal is every row's argmax "
        f"({v['diag_argmax_rows']:.0%}), diag − off-diag {v['diag_minus_offdiag']:.2f}"
        for k, v in rows.items()
    )
    return ClaimResult(
        "C6",
        "",
        status,
        summary if not fails else "; ".join(fails),
        {
            "runs": rows,
            "criterion": "previous-token weight >= 0.9, A2's diagonal the argmax of "
            "every row, mean diagonal above mean off-diagonal",
        },
        ["causal_grad.training.induction_metrics", "causal_grad.training.train"],
        [fig],
    )


@_check("C8", "out of distribution: a model trained on Dirichlet(0.1) works on other priors")
def check_c8(ctx: VerifyContext) -> ClaimResult:

    res = _trained(ctx, "random-tree", "disentangled")
    cfg = res.config
    predict = fast_cpu_jit(lambda tokens: disentangled_apply(res.params, tokens))
    task = InContextTask(cfg.graph, cfg.task.vocab, cfg.task.alpha)
    out = evaluate_ood(
        predict,
        task,
        default_ood_priors(cfg.task.alpha),
        jax.random.key(ctx.seed + 8),
        num=4096 if ctx.quick else 32768,
        batch=4096,
    )
    rows, fails = {}, []
    for name, r in out.items():
        gap = r["unigram"]["mean"] - r["in_context"]["mean"]
        rel = r["excess"]["mean"] / gap if gap > 0 else float("inf")
        rows[name] = {
            "model": r["model"]["mean"],
            "estimator": r["in_context"]["mean"],
            "unigram": r["unigram"]["mean"],
            "floor": r["entropy_floor"]["mean"],
            "excess": r["excess"]["mean"],
            "excess_se": r["excess"]["se"],
            "excess_over_gap": rel,
        }
        if not rel < 0.25:
            fails.append(
                f"{name}: excess {r['excess']['mean']:.3f} ± {r['excess']['se']:.3f} nats = {rel:.0%} of the "
                f"unigram→estimator gap"
            )
    names = list(rows)
    # one group of bars per prior; the model's excess with its standard error
    fig = plots.output_path(ctx.fig_path("c8_ood.png"))
    plots.bars(
        names,
        {
            "model − estimator": ([rows[k]["excess"] for k in names], [rows[k]["excess_se"] for k in names]),
            "unigram − estimator": [rows[k]["unigram"] - rows[k]["estimator"] for k in names],
        },
        ylabel="excess loss over the in-context estimator (nats)",
        title="trained on Dirichlet(0.1), evaluated on other priors",
        path=fig,
    )
    status = "fail" if fails else "pass"
    summary = "excess over the in-context estimator, as a fraction of the unigram→estimator gap: " + ", ".join(
        f"{k} {v['excess_over_gap']:.0%}" for k, v in rows.items()
    )
    return ClaimResult(
        "C8",
        "",
        status,
        summary if not fails else "; ".join(fails),
        {"priors": rows, "criterion": "model's excess over the estimator < 25% of the unigram's, on every prior"},
        ["causal_grad.ood.evaluate_ood", "causal_grad.training.train"],
        [str(fig)],
    )


@_check("C7", "multi-parent graphs: each first-layer head takes one parent")
def check_c7(ctx: VerifyContext) -> ClaimResult:

    # The paper's two-parent graph (32 tokens + target), S = 5, heads [2, 1], joint AdamW from a small random
    # start (zero heads are identical and never separate). Settings measured in docs/theory.md, C7.
    steps = 2000 if ctx.quick else 8000
    cfg = preset(
        "two-parent",
        two_parent(33),
        vocab=5,
        alpha=0.1,
        lr=0.03,
        weight_decay=1e-4,
        init_scale=0.01,
        batch=512,
        steps=steps,
        eval_every=500,
        log_every=50,
        eval_size=4096,
        checkpoint_every=0,
        seed=ctx.seed,
    )
    ctx.echo(f"    training disentangled heads [2,1] on two_parent(33) ({steps} steps) ...")
    res = train(cfg, progress=progress_enabled())
    f = _final(res)
    assert f.heads is not None  # a multi-parent graph: the evaluator records the heads
    heads = f.heads.to_dict()
    att = np.asarray(position_attention(cast(dict, res.params), 0))  # a disentangled run's params: a dict
    n = cfg.graph.n - 1
    # one panel per head; the edges to the first parent (i-1)//2 outlined in red, to the second i-1 in cyan
    fig = plots.output_path(ctx.fig_path("c7_two_parent_heads.png"))
    plots.attention_heatmap(
        att[:, :n, :n], cfg.graph, suptitle="two parents ((i-1)//2, i-1): each head takes one", path=fig
    )
    status = "pass" if heads["split"] else "fail"
    summary = (
        f"heads split the parents: {'yes' if heads['split'] else 'NO'} (dominant parent slot per head "
        f"{heads['dominant_parent']}, argmax share {np.round(heads['argmax'], 2).tolist()}); loss "
        f"{f.loss:.3f}, {f.excess_over_in_context:.3f} nats above the tuple estimator"
    )
    return ClaimResult(
        "C7",
        "",
        status,
        summary,
        {
            "heads": heads,
            "loss": f.loss,
            "excess_over_tuple_estimator": f.excess_over_in_context,
            "history": [
                {"step": e.step, "excess": e.excess_over_in_context, "split": e.heads.split}
                for e in res.evals
                if e.heads is not None
            ],
            "config": {"steps": steps, "batch": 512, "lr": 0.03, "init_scale": 0.01},
        },
        ["causal_grad.training.train", "causal_grad.training.head_parents"],
        [str(fig)],
    )


# ---------------------------------------------------------------------------------------------- SC (a study)
#: The preset of experiments/sample_complexity.py that row ``SC`` runs, by ``ctx.quick``: "verify" (3 random
#: trees × 4 draws, N = 32 … 2048; about 35-45 s on 2 cores) or the script's own "quick" (4 × 3, N up to 16384).
SC_MODES = {True: "verify", False: "quick"}
#: The methods the status rests on (fed the paper's soft targets π[q]), and the Chow–Liu control on a fixed π.
SC_SCORED = ("gradient at init", "trained (reduced, stage 1)")
SC_FRESH, SC_CONTROL = "Chow–Liu", "Chow–Liu, fixed π (control)"
SC_LEVEL = 0.5  # the Wilson 95% lower bound of P(recover the tree) at the largest N must reach this


@_check("SC", "sample complexity: sequences needed to recover a tree by the gradient sign, training, and Chow–Liu")
def check_sc(ctx: VerifyContext) -> ClaimResult:

    checked_by = [
        "causal_grad.studies.sample_complexity.run",
        "causal_grad.gradients.linearized.linearized_terms",
        "causal_grad.models.reduced.reduced_loss",
        "causal_grad.structure.chow_liu",
    ]
    mode = SC_MODES[bool(ctx.quick)]
    st = sample_complexity.settings(mode)
    ctx.echo(
        f"    experiments/sample_complexity.py, preset {mode!r}: {st['trees']} trees × {st['draws']} draws, "
        f"N = {st['Ns'][0]} … {st['Ns'][-1]} ..."
    )
    log = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(log):
        res = sample_complexity.run(quick=ctx.quick, out=Path(tmp), seed=ctx.seed, mode=mode)
        fig = ctx.fig_path("sc_sample_complexity.png")
        shutil.copyfile(Path(tmp) / res["figure"], fig)
    Ns, trials, methods = res["Ns"], res["trials"], res["methods"]

    def last(m):
        r = methods[m]
        return {
            "N": Ns[-1],
            "successes": r["successes"][-1],
            "trials": trials,
            "recovery": r["recovery"][-1],
            "wilson_lo": r["lo"][-1],
            "wilson_hi": r["hi"][-1],
            "N_50": r["N_50"],
            "N_90": r["N_90"],
        }

    at_max = {m: last(m) for m in methods}
    scored = {m: at_max[m] for m in SC_SCORED}
    failing = [m for m, r in scored.items() if r["recovery"] < SC_LEVEL]
    unsure = [m for m, r in scored.items() if r["recovery"] >= SC_LEVEL and r["wilson_lo"] < SC_LEVEL]
    control_ok = at_max[SC_CONTROL]["wilson_lo"] >= SC_LEVEL
    if failing:
        status = "fail"
    elif unsure or not control_ok:
        status = "partial"
    else:
        status = "pass"

    def rate(m):
        r = at_max[m]
        return f"{r['successes']}/{trials} [{r['wilson_lo']:.2f}, {r['wilson_hi']:.2f}]"

    mi = res["pair_mi_trial0"]["fresh π per sequence"]

    def nats(v):
        return "none" if v is None else f"{v:.2f} nats"

    best = max(methods[SC_FRESH]["successes"])
    fresh_best = (
        f"no trial at any N = {Ns[0]} … {Ns[-1]}"
        if best == 0
        else f"at most {best}/{trials} at any N = {Ns[0]} … {Ns[-1]}"
    )
    summary = (
        f"P(every parent recovered) at N = {Ns[-1]} sequences, {trials} trials (95% Wilson): gradient at "
        f"init {rate(SC_SCORED[0])}, trained {rate(SC_SCORED[1])}; N90 = {at_max[SC_SCORED[0]]['N_90']} and "
        f"{at_max[SC_SCORED[1]]['N_90']} (one-hot targets: {at_max['gradient at init, one-hot target']['N_90']} "
        f"and {at_max['trained, one-hot target']['N_90']}); "
        f"Chow–Liu {rate(SC_FRESH)} ({fresh_best}): expected, π is fresh per sequence, so the token "
        f"law is a mixture over π, not a tree model (plug-in MI, first trial, N = {Ns[-1]}: siblings "
        f"{nats(mi['siblings'])}, parent–child {nats(mi['parent-child'])}); on the fixed-π control "
        f"Chow–Liu {rate(SC_CONTROL)} (N90 = {at_max[SC_CONTROL]['N_90']})"
    )
    if failing:
        rates = ", ".join(f"{m} {scored[m]['recovery']:.2f}" for m in failing)
        summary = f"recovery < {SC_LEVEL} at N = {Ns[-1]}: {rates}; " + summary
    numbers = {
        "experiment": f"experiments/sample_complexity.py, preset {mode!r}",
        "criterion": (
            f"pass: for {' and '.join(SC_SCORED)} (soft targets π[q]) the 95% Wilson lower bound of "
            f"P(every parent recovered) at the largest N is >= {SC_LEVEL}, and so is Chow–Liu's on the "
            f"fixed-π control; partial: a scored method's recovery is >= {SC_LEVEL} but its lower bound "
            f"is not (too few trials to tell), or the Chow–Liu control does not recover the tree; fail: a "
            f"scored method recovers the tree in fewer than {SC_LEVEL:.0%} of trials. Chow–Liu on fresh-π "
            f"sequences is reported, not scored: it is inconsistent here (a mixture over π is not a tree "
            f"model), which is the expected finding"
        ),
        "at_largest_N": at_max,
        "Ns": Ns,
        "trials": trials,
        "trees": res["trees"],
        "methods": {
            m: {k: r[k] for k in ("recovery", "lo", "hi", "successes", "parent_fraction", "N_50", "N_90")}
            for m, r in methods.items()
        },
        "pair_mi_trial0": res["pair_mi_trial0"],
        "settings": res["settings"],
    }
    return ClaimResult("SC", "", status, summary, numbers, checked_by, [str(fig)])


# ---------------------------------------------------------------------------------------------- C10
@_check("C10", "multi-parent graphs: does the first-layer gradient at init rank every parent above every non-parent?")
def check_c10(ctx: VerifyContext) -> ClaimResult:
    # The study is causal_grad.gradients.multi_parent.check_c10 (docs/theory.md §7.11); its status is decided
    # there from the numbers: pass (every row ranks all its parents first), partial (not always, while the set
    # chi2 criterion selects every parent set and Monte Carlo agrees with enumeration), fail (one of those broke).
    ctx.echo(
        f"    multi-parent gradient at init: exact enumeration, fixed tables, Monte Carlo "
        f"({'quick' if ctx.quick else 'full'}) ..."
    )
    res = multi_parent_c10(quick=bool(ctx.quick), seed=ctx.seed)
    numbers = {
        **res.numbers,
        "counterexamples": res.counterexamples,
        "criterion": "pass: every row of every case ranks all its parents above every non-parent; partial: "
        "some rows do not, while the set chi2 criterion selects every parent set (data "
        "processing) and Monte Carlo agrees with enumeration (max |z| < 5); fail: either of "
        "those two checks fails",
    }
    return ClaimResult(
        "C10",
        "",
        res.status,
        res.summary,
        numbers,
        [
            "causal_grad.gradients.multi_parent.check_c10",
            "causal_grad.gradients.multi_parent.multi_parent_gradient_exact",
            "causal_grad.gradients.multi_parent.multi_parent_gradient_monte_carlo",
            "causal_grad.gradients.multi_parent.set_information",
            "causal_grad.gradients.multi_parent.pairwise_information",
        ],
    )
