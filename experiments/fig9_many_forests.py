"""Figure 9 of the paper: over many random forests, the first layer puts its attention on each position's parent.

Twenty random forests on 19 graph positions plus the query (T = 20): position 0 a root, every later position a
root with probability 1/2, otherwise a child of a uniformly chosen earlier position
(``random_forest(key, 19, p_root=0.5)``); S = 3, Dirichlet(0.1) (docs/theory.md §6). One disentangled transformer with
heads [1, 1] per forest. The metric: for each position with a parent, the attention weight
``softmax(A1)[i, p(i)]`` of the position block; per position, its mean ± sd over the graphs in which that position
has a parent; headline: the mean over graphs of each graph's average parent weight.

All the forests train as one compiled program (:func:`causal_grad.batched.train_batched`: the runs stacked
along a leading axis, one :class:`~causal_grad.batched.BatchedRunner` per stage) instead of one training after
another; each forest's run equals its training alone up to float32 rounding (tests/test_batched.py), and is kept
in ``runs/<mode>-forest<g>/`` (config, history, weights; a full-size run whose folders all hold the finished runs
of the same configs is reloaded, not trained again; there are no checkpoints: an interrupted run starts over).

The learning rate (``decay``, ``--decay``): ``"cosine"`` (default: the paper's schedule, lr 1 decayed to 0 over
the run, as for figures 2 and 6) or ``"constant"`` (the public notebook's ``optax.sgd(learning_rate=1)``, no
decay, many_graphs.ipynb cell 4; docs/paper_settings.md item 1). In full mode ``"constant"`` is exactly the
notebook's optimiser; in the quick and smoke modes it removes their decay likewise.

    python experiments/fig9_many_forests.py --quick   # 6 forests, layer-wise schedule, 200 steps × 1024 each
    python experiments/fig9_many_forests.py           # the paper's run: 20 forests, joint GD from zero, lr 1,
                                                      # cosine, 2^14 steps × 1024 each
    python experiments/fig9_many_forests.py --decay constant   # the public notebook's constant lr 1

Writes results/fig9_many_forests/{fig9_many_forests.png, summary.json, runs/}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

from causal_grad.studies.claims import many_forests_claim  # noqa: E402

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


#: ``--decay`` choices: the paper's cosine (default) or the public notebook's constant learning rate
DECAY_CHOICES = ("cosine", "constant")


def configs(mode: str, seed: int, decay: str = "cosine") -> list:
    """One config per forest (the runs differ only in their graph)."""
    from causal_grad.training import default_config

    st = settings(mode)
    return [
        default_config("disentangled", graph, vocab=3, alpha=0.1, seed=seed, decay=decay, **st["train"])
        for graph in forests(st["graphs"], seed)
    ]


def _finished(cfgs, folders):
    """The runs kept in ``folders`` when every one is the finished run of its config, else ``None``."""
    import json

    from causal_grad.training import TrainConfig, load_run

    for cfg, f in zip(cfgs, folders):
        if not all((f / n).is_file() for n in ("config.json", "history.json", "weights.npz")):
            return None
        if TrainConfig.from_json(json.loads((f / "config.json").read_text())) != cfg:
            return None
        if json.loads((f / "history.json").read_text()).get("steps_done") != cfg.run.steps:
            return None
    return [load_run(f) for f in folders]


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False, decay: str = "cosine") -> dict:
    """Train one model per forest, all in one batched program, and draw. ``decay``: one of
    :data:`DECAY_CHOICES` (see the module docstring). Returns ``{"headline" (mean over graphs of the per-graph
    average parent attention), "headline_sd", "per_position": {"position", "mean", "sd", "count"}, "per_graph":
    [{parents, mean_parent_attention, min_parent_attention, recovered, all_recovered, loss, in_context,
    excess_over_in_context}], "all_recovered_fraction", "graphs", "decay", "mode", "seconds", "figure"}``."""
    if decay not in DECAY_CHOICES:
        raise ValueError(f"decay must be one of {', '.join(DECAY_CHOICES)}, got {decay!r}")
    from causal_grad import plots
    from causal_grad.batched import train_batched
    from causal_grad.training import parent_attention

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = _expkit.mode_of(quick, smoke)
    cfgs = configs(mode, seed, decay)
    graphs = [c.graph for c in cfgs]
    tag = "" if decay == "cosine" else f"-{decay}"
    folders = [out / "runs" / f"{mode}{tag}-forest{g:02d}" for g in range(len(cfgs))]
    results = _finished(cfgs, folders) if mode == "full" else None
    if results is None:
        results = train_batched(cfgs, folders, progress=mode == "full")
    cfg = cfgs[0]
    weights = np.full((len(graphs), N_POS), np.nan)
    per_graph, first = [], None
    for g, (graph, res) in enumerate(zip(graphs, results)):
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
        f"{cfg.optim.schedule}, {cfg.optim.decay} lr, {cfg.run.steps} steps × {cfg.run.batch}, batched]",
        path=fig,
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "graphs": len(graphs),
        "decay": decay,
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
    claim = many_forests_claim(summary)
    summary["claim"] = claim.to_dict()
    _expkit.write_summary(out, summary)
    print(
        f"{NAME}: headline {headline:.3f} ± {headline_sd:.3f} over {len(graphs)} forests; all parents "
        f"recovered in {summary['all_recovered_fraction']:.0%}; {claim.line()}",
        flush=True,
    )
    return summary


def main(argv=None) -> dict:
    return _expkit.cli(
        run,
        __doc__,
        NAME,
        argv,
        options={
            "decay": dict(
                choices=DECAY_CHOICES,
                default="cosine",
                help="learning-rate decay: cosine (default, the paper's) or constant (the public notebook's)",
            )
        },
    )


if __name__ == "__main__":
    main()
