"""Out-of-distribution (claim C8, docs/theory.md §7.8): models trained on Dirichlet(0.1) transition matrices,
evaluated on others.

Train on a random tree (19 graph positions plus the query, T = 20), S = 10, π rows ~ Dirichlet(0.1); then
``causal_grad.ood.evaluate_ood`` over ``causal_grad.ood.default_ood_priors(0.1)`` (other Dirichlet
concentrations, floored, sticky and permutation-like π). Per prior: the model's held-out loss minus the in-context
estimator's (paired, with its standard error; the estimator keeps the training α), beside the unigram estimator's
excess over the same estimator. The claim holds on a prior when the model's excess stays small compared with the
unigram's: the model has learned the in-context mechanism, not the training prior.

Two models: the reduced model (layer-wise schedule) and the disentangled transformer (layer-wise schedule). The
reduced model's readout is the layer-2 attention output itself, smoothed by ε: it has no pseudo-count and no way
to fall back to a uniform guess when the query token never occurred, so even in distribution, with A1 exactly
on the parents and the best A2 = β·I, its loss stays well above the estimator's (S = 10, α = 0.1: about 2.1–2.2
nats at the best ε ≈ 0.3 against 1.77–1.87 for the estimator; 3.2–3.5 nats at the default ε = 1e-3). Its excess is
reported as measured; for it the meaningful OOD number is the shift of its excess from the training prior.

The study of ``experiments/ood.py`` (a thin command-line wrapper around :func:`run`):

    python experiments/ood.py --quick   # reduced 200 steps + disentangled 300 steps, 8192 sequences per prior
                                        # (79 s idle, half of it compiling one sampler per prior and model)
    python experiments/ood.py           # reduced 1000 steps + disentangled 3000 steps (layer-wise), 2^16
                                        # sequences per prior (about 5-10 min idle)

Writes results/ood/{ood.png, ood.md, summary.json, runs/}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import plots
from ..graphs import named_graph
from ..kernels import fast_cpu_jit
from ..models.disentangled import disentangled_apply
from ..models.reduced import reduced_apply
from ..ood import default_ood_priors, evaluate_ood
from ..task import InContextTask
from ..training import default_config
from .common import SMOKE_TRAIN, forest_summary, mode_of, train_run, write_summary

__all__ = ["NAME", "ALPHA", "settings", "table_markdown", "run"]

NAME = "ood"
ALPHA = 0.1


def settings(mode: str) -> dict:
    """Training lengths and evaluation sizes at preset ``mode`` ("full", "quick", "smoke")."""
    if mode == "full":
        return dict(
            num=1 << 16,
            reduced=dict(steps=1000, stage1_steps=500, eval_size=1 << 14, eval_every=100),
            disentangled=dict(steps=3000, stage1_steps=1500, eval_size=1 << 14, eval_every=100),
        )
    if mode == "quick":
        return dict(
            num=8192, reduced=dict(eval_size=4096, eval_every=50), disentangled=dict(eval_size=4096, eval_every=50)
        )
    return dict(num=512, reduced=dict(SMOKE_TRAIN, lr=30.0), disentangled=dict(SMOKE_TRAIN))


def _predictor(res) -> Callable:
    """``predict(tokens) -> (B, S)`` of a trained run, compiled."""
    p, cfg = jax.tree.map(jnp.asarray, res.params), res.config  # device arrays: indexed by traced tokens
    if cfg.model.name == "reduced":
        return jax.jit(lambda tok: reduced_apply(p["A1"], p["A2"], tok, cfg.model.eps))
    return fast_cpu_jit(lambda tok: disentangled_apply(p, tok))


def table_markdown(priors: list[str], models: dict) -> str:
    """The markdown table of ``summary["models"]``."""
    names = list(models)
    head = (
        "| prior | estimator | unigram − est. | "
        + " | ".join(f"{m} − est. | ratio" for m in names)
        + " | entropy floor |"
    )
    lines = [head, "|" + " --- |" * (4 + 2 * len(names))]
    for pr in priors:
        r0 = models[names[0]][pr]
        cells = [pr, f"{r0['in_context']['mean']:.4f}", f"{r0['unigram_excess']:+.4f}"]
        for m in names:
            r = models[m][pr]
            cells += [f"{r['excess']['mean']:+.4f} ± {r['excess']['se']:.4f}", f"{r['ratio_to_unigram']:.2f}"]
        cells.append(f"{r0['entropy_floor']['mean']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Train both models and evaluate them on every prior. Returns ``{"priors": [names], "train_prior": name,
    "models": {model: {prior: {"model", "in_context", "unigram", "entropy_floor", "excess" (each {"mean", "se"}),
    "unigram_excess", "unigram_excess_se", "ratio_to_unigram", "shift_from_train", "beats_unigram"}}},
    "training": {model: forest_summary}, "mode", "seconds", "figure", "table"}``. ``ratio_to_unigram`` = model
    excess / unigram excess (both over the estimator; meaningful only where the unigram excess is clearly
    positive: under Dirichlet(10) π is nearly uniform, the unigram is almost as good as the estimator and a
    model may beat both), ``shift_from_train`` = the model's excess on this prior minus its excess on the
    training prior, ``beats_unigram``: the model's loss is below the unigram's."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = mode_of(quick, smoke)
    st = settings(mode)
    graph = named_graph("random-tree", 19, seed=seed)
    task = InContextTask(graph, 10, ALPHA)
    priors = default_ood_priors(ALPHA)
    if mode == "smoke":  # tests only: the training prior and one other
        priors = {k: v for i, (k, v) in enumerate(priors.items()) if i in (0, len(priors) - 1)}
    names = list(priors)
    train_name = names[0]
    models, training = {}, {}
    for model in ("reduced", "disentangled"):
        cfg = default_config(model, graph, vocab=10, alpha=ALPHA, seed=seed, **st[model])
        res = train_run(cfg, out, f"{mode}-{model}", quick=mode != "full")
        training[model] = forest_summary(res)
        ev = evaluate_ood(_predictor(res), task, priors, jax.random.key(seed + 7), num=st["num"], batch=4096)
        base = ev[train_name]["excess"]["mean"]
        for r in ev.values():
            u = r["unigram"]["mean"] - r["in_context"]["mean"]
            r["unigram_excess"] = u
            r["unigram_excess_se"] = float(np.hypot(r["unigram"]["se"], r["in_context"]["se"]))  # conservative
            r["ratio_to_unigram"] = r["excess"]["mean"] / u if u > 0 else float("nan")
            r["shift_from_train"] = r["excess"]["mean"] - base
            r["beats_unigram"] = bool(r["model"]["mean"] < r["unigram"]["mean"])
        models[model] = ev
        print(
            f"{NAME} {model}: "
            + "; ".join(
                f"{n}: excess {ev[n]['excess']['mean']:+.3f} (unigram {ev[n]['unigram_excess']:+.3f})" for n in names
            ),
            flush=True,
        )
    md = table_markdown(names, models)
    (out / f"{NAME}.md").write_text(
        f"# Out-of-distribution evaluation ({mode})\n\nTrained on {train_name}, random tree {list(graph.parents)}, "
        f"S = 10, T = 20; {st['num']} sequences per prior. Losses in nats; 'x − est.' is the paired difference "
        f"with the in-context estimator (α = {ALPHA}) ± one standard error; ratio = model excess / unigram "
        f"excess.\n\n" + md
    )
    series = {
        "unigram − estimator": (
            [models["reduced"][n]["unigram_excess"] for n in names],
            [models["reduced"][n]["unigram_excess_se"] for n in names],
        )
    }
    for m in models:
        series[f"{m} − estimator"] = (
            [models[m][n]["excess"]["mean"] for n in names],
            [models[m][n]["excess"]["se"] for n in names],
        )
    fig = plots.output_path(out / f"{NAME}.png")
    plots.bars(
        names,
        series,
        ylabel="excess loss over the in-context estimator (nats)",
        title=f"C8: excess over the in-context estimator per evaluation prior\n(trained on "
        f"{train_name.split(' ')[0]}, {mode}; a model that learned the mechanism stays near 0)",
        rotation=25,
        path=fig,
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "priors": names,
        "train_prior": train_name,
        "parents": list(graph.parents),
        "num_per_prior": st["num"],
        "models": models,
        "training": training,
        "figure": fig.name,
        "table": f"{NAME}.md",
        "seconds": time.perf_counter() - t0,
    }
    write_summary(out, summary)
    print(md, flush=True)
    return summary
