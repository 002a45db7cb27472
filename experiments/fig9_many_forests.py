"""Figure 9 of the paper: over many random forests, the first layer puts its attention on each position's parent.

Twenty random forests on 19 graph positions plus the query (T = 20): position 0 a root, every later position a
root with probability 1/2, otherwise a child of a uniformly chosen earlier position
(``random_forest(key, 19, p_root=0.5)``); S = 3, Dirichlet(0.1) (docs/theory.md §6). One disentangled transformer with
heads [1, 1] per forest. The metric: for each position with a parent, the attention weight
``softmax(A1)[i, p(i)]`` of the position block; per position, its mean ± sd over the graphs in which that position
has a parent; headline: the mean over graphs of each graph's average parent weight.

    python experiments/fig9_many_forests.py --quick   # 6 forests, layer-wise schedule, 200 steps × 1024 each
                                                      # (43 s idle, mostly one compilation per forest)
    python experiments/fig9_many_forests.py           # the paper's run: 20 forests, joint GD from zero, lr 1,
                                                      # cosine, 2^14 steps × 1024 each (about 30 min idle:
                                                      # 4.8 ms per step measured)

Writes results/fig9_many_forests/{fig9_many_forests.png, summary.json, runs/}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

NAME = "fig9_many_forests"
N_POS = 19


def settings(mode: str) -> dict:
    if mode == "full":
        return dict(
            graphs=20,
            train=dict(
                schedule="joint",
                optimizer="sgd",
                lr=1.0,
                steps=1 << 14,
                batch=1024,
                eval_size=1 << 16,
                eval_every=1 << 11,
                log_every=1 << 11,
                checkpoint_every=1 << 12,
            ),
        )
    if mode == "quick":
        return dict(
            graphs=6, train=dict(steps=200, stage1_steps=100, batch=1024, eval_size=4096, eval_every=50, log_every=50)
        )
    return dict(graphs=2, train=dict(_expkit.SMOKE_TRAIN))


def forests(count: int, seed: int):
    import jax

    from causal_grad.graphs import random_forest

    return [random_forest(jax.random.fold_in(jax.random.key(seed), g), N_POS, 0.5) for g in range(count)]


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Train one model per forest and draw. Returns ``{"headline" (mean over graphs of the per-graph average
    parent attention), "headline_sd", "per_position": {"position", "mean", "sd", "count"}, "per_graph": [{parents,
    mean_parent_attention, min_parent_attention, recovered, all_recovered, loss, in_context, excess_over_in_context}],
    "all_recovered_fraction", "graphs", "mode", "seconds", "figure"}``."""
    from causal_grad import plots
    from causal_grad.training import default_config, parent_attention

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = _expkit.mode_of(quick, smoke)
    st = settings(mode)
    graphs = forests(st["graphs"], seed)
    weights = np.full((len(graphs), N_POS), np.nan)
    per_graph, first = [], None
    for g, graph in enumerate(graphs):
        cfg = default_config("disentangled", graph, vocab=3, alpha=0.1, seed=seed, **st["train"])
        res = _expkit.train_run(cfg, out, f"{mode}-forest{g:02d}", quick=mode != "full")
        att, _ = _expkit.readouts(res)
        kids = [i for i, p in enumerate(graph.parents) if p >= 0]
        weights[g, kids] = parent_attention(att, graph)
        s = _expkit.forest_summary(res)
        per_graph.append(
            {
                k: s[k]
                for k in (
                    "parents",
                    "mean_parent_attention",
                    "min_parent_attention",
                    "recovered",
                    "all_recovered",
                    "loss",
                    "in_context",
                    "excess_over_in_context",
                    "wall_s",
                )
            }
        )
        print(
            f"{NAME} forest {g}: {len(kids)} edges, mean parent attention {s['mean_parent_attention']:.3f} "
            f"(min {s['min_parent_attention']:.3f}), loss {s['loss']:.4f} vs estimator {s['in_context']:.4f}",
            flush=True,
        )
        if first is None:
            first = (res, att)
    count = np.sum(~np.isnan(weights), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nanmean(np.where(count > 0, weights, 0.0), axis=0), np.nan)
    sd = np.array(
        [np.nanstd(weights[:, i], ddof=1) if count[i] > 1 else (0.0 if count[i] == 1 else np.nan) for i in range(N_POS)]
    )
    graph_means = np.array([r["mean_parent_attention"] for r in per_graph])
    headline = float(np.mean(graph_means))
    headline_sd = float(np.std(graph_means, ddof=1)) if len(graph_means) > 1 else 0.0
    pos = np.nonzero(count > 0)[0]
    res0, att0 = first
    edges0 = [(i, p) for i, p in enumerate(res0.config.graph.parents) if p >= 0]
    specs = [
        dict(
            kind="errorbars",
            x=pos,
            series={"mean ± sd over graphs": (mean[pos], mean[pos] - sd[pos], mean[pos] + sd[pos])},
            hlines={"uniform over j ≤ i (position 10)": 1 / 11},
            xlabel="position i (with a parent)",
            ylabel="softmax(A1)[i, p(i)]",
            ylim=(0, 1.08),
            title=f"parent attention per position over {len(graphs)} forests\nheadline (mean of per-graph "
            f"averages) {headline:.3f} ± {headline_sd:.3f}",
        ),
        dict(
            kind="bars",
            labels=[f"forest {g}" for g in range(len(graphs))],
            series={
                "mean parent attention": graph_means,
                "min parent attention": [r["min_parent_attention"] for r in per_graph],
            },
            ylabel="attention weight",
            ylim=(0, 1.3),
            title="per forest",
            rotation=45,
        ),
        dict(
            kind="heatmap",
            data=att0[0],
            edges=edges0,
            vmin=0.0,
            vmax=1.0,
            title="forest 0: layer-1 attention (edges outlined)",
        ),
    ]
    fig = plots.output_path(out / f"{NAME}.png")
    plots.panels(
        specs,
        ncol=3,
        suptitle=f"Fig. 9 — {len(graphs)} random forests (parent w.p. 1/2), S=3, T=20 [{mode}: "
        f"{cfg.optim.schedule}, {cfg.run.steps} steps × {cfg.run.batch}]",
        path=fig,
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "graphs": len(graphs),
        "headline": headline,
        "headline_sd": headline_sd,
        "per_position": {
            "position": pos.tolist(),
            "mean": mean[pos].tolist(),
            "sd": sd[pos].tolist(),
            "count": count[pos].tolist(),
        },
        "per_graph": per_graph,
        "all_recovered_fraction": float(np.mean([r["all_recovered"] for r in per_graph])),
        "config": cfg.to_json() | {"graph": "random_forest(fold_in(key(seed), g), 19, 0.5)"},
        "figure": fig.name,
        "seconds": time.perf_counter() - t0,
    }
    _expkit.write_summary(out, summary)
    print(
        f"{NAME}: headline {headline:.3f} ± {headline_sd:.3f} over {len(graphs)} forests; all parents "
        f"recovered in {summary['all_recovered_fraction']:.0%}",
        flush=True,
    )
    return summary


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
