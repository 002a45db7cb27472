"""Figures 5 and 7 of the paper: with two parents per position, each first-layer head takes one parent (C7).

The two-parent DAG ``parents(i) = ((i-1)//2, i-1)`` (positions 0, 1 roots), S = 5, Dirichlet(0.1) tables per
arity, uniform roots; the target's distribution is ``π_2[tokens of its two parents]`` (docs/theory.md §1, §6). The
disentangled transformer has two first-layer heads and one second-layer head (heads [2, 1]), all parameters
from N(0, (1e-4)²), AdamW with a cosine decay. Panels: each first-layer head's position attention with the
edges to parent (i-1)//2 outlined in red and to parent i-1 in cyan, and the held-out loss against the tuple
estimator ("in_context": matches both parents; exact Bayes here, roots being uniform), the two one-parent estimators,
the unigram estimator and the entropy floor.

The roots (``roots``, ``--roots``): ``"uniform"`` (default: the paper's task, docs/theory.md §1, under which the
tuple estimator is exact Bayes) or ``"dirichlet"`` (the public code's ``InContextDAG``: one ``Dirichlet(0.1)`` root
law per sequence shared by both roots, which its loop over arities draws over the uniform one;
docs/paper_settings.md item 2; :class:`causal_grad.task.MultiParentTask` ``roots``). With ``"dirichlet"`` the run
goes through :func:`causal_grad.batched.train_batched` (one run) with that task, is kept in
``runs/<mode>-dirichlet-roots-two-parent`` and the tuple estimator is no longer exact Bayes.

    python experiments/fig5_7_two_parent.py --quick  # 16 tokens + target, AdamW lr 0.1, 4000 steps × 512
                                                     # (24 s on an idle 2-core CPU)
    python experiments/fig5_7_two_parent.py          # the paper's run: 32 tokens + target, AdamW 1e-2,
                                                     # wd 1e-4, 2^16 steps × 1024 (24 ms per step
                                                     # on two host devices: 28 min on 2026-12-01)
    python experiments/fig5_7_two_parent.py --roots dirichlet   # the public code's root law

Writes results/fig5_7_two_parent/{fig5_7_two_parent.png, summary.json, runs/}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

from causal_grad.studies.claims import two_parent_claim  # noqa: E402

NAME = "fig5_7_two_parent"
SLOT_NAMES = ("(i-1)//2", "i-1")
#: ``--roots`` choices: the paper's uniform roots (default) or the public code's per-sequence Dirichlet law
ROOT_CHOICES = ("uniform", "dirichlet")


def config(mode: str, seed: int):
    from causal_grad.graphs import two_parent
    from causal_grad.training import preset

    if mode == "full":  # the paper's run: the preset itself
        return preset("two-parent", two_parent(33), seed=seed)
    if mode == "quick":
        return preset(
            "two-parent",
            two_parent(17),
            lr=0.1,
            steps=4000,
            batch=512,
            eval_size=4096,
            eval_every=250,
            log_every=250,
            checkpoint_every=0,
            seed=seed,
        )
    return preset(
        "two-parent",
        two_parent(9),
        lr=0.1,
        steps=40,
        batch=128,
        eval_size=512,
        eval_every=20,
        log_every=20,
        checkpoint_every=0,
        seed=seed,
    )


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False, roots: str = "uniform") -> dict:
    """Train and draw; ``roots``: one of :data:`ROOT_CHOICES` (see the module docstring). Returns ``{"loss",
    "in_context", "one_parent_0", "one_parent_1", "unigram", "entropy_floor", "excess_over_in_context", "heads":
    {weight, argmax, dominant_parent, split, positions}, "head_takes": [parent name per head], "split", "T",
    "roots", "mode", "seconds", "figure"}``; ``heads["argmax"][h][m]`` is the fraction of two-parent positions
    whose head-``h`` argmax is parent slot ``m`` (0: (i-1)//2, 1: i-1)."""
    if roots not in ROOT_CHOICES:
        raise ValueError(f"roots must be one of {', '.join(ROOT_CHOICES)}, got {roots!r}")
    from causal_grad import plots

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = _expkit.mode_of(quick, smoke)
    cfg = config(mode, seed)
    if roots == "uniform":
        res = _expkit.train_run(cfg, out, f"{mode}-two-parent", quick=mode != "full")
    else:
        from causal_grad.batched import train_batched
        from causal_grad.task import MultiParentTask

        task = MultiParentTask(cfg.graph, cfg.task.vocab, cfg.task.alpha, roots=roots)
        folder = out / "runs" / f"{mode}-{roots}-roots-two-parent"
        (res,) = train_batched([cfg], [folder], tasks=[task], progress=mode == "full")
    att, _ = _expkit.readouts(res)
    f, b = res.final, res.baselines.to_dict()
    heads = f.heads.to_dict()
    T = cfg.seq_len
    sets = cfg.graph.parent_sets[:T]
    slot_edges = [[(i, ps[m]) for i, ps in enumerate(sets) if len(ps) == 2] for m in range(2)]
    takes = [
        SLOT_NAMES[d] if max(heads["argmax"][h]) >= 0.5 else "none (no parent is its argmax in half the positions)"
        for h, d in enumerate(heads["dominant_parent"])
    ]
    specs = []
    for h in range(att.shape[0]):
        a = heads["argmax"][h]
        specs.append(
            dict(
                kind="heatmap",
                data=att[h],
                edge_sets={"red": slot_edges[0], "cyan": slot_edges[1]},
                vmin=0.0,
                vmax=1.0,
                title=f"head {h}: takes parent {takes[h].split(' ')[0]}\nargmax on (i-1)//2 {a[0]:.0%}, "
                f"on i-1 {a[1]:.0%} (red: (i-1)//2, cyan: i-1)",
            )
        )
    steps, losses = _expkit.loss_curve(res)
    ref = {
        ("tuple estimator (Bayes)" if roots == "uniform" else "tuple estimator"): b["in_context"],
        "one parent (i-1)//2": b["one_parent_0"],
        "one parent i-1": b["one_parent_1"],
        "unigram": b["unigram"],
        "entropy floor": b["entropy_floor"],
    }
    specs.append(
        dict(
            kind="curves",
            x=steps,
            series={"disentangled [2,1]": losses},
            hlines=ref,
            xlabel="step",
            ylabel="held-out loss (nats)",
            title=f"loss {f.loss:.3f}; heads split: {heads['split']}",
        )
    )
    fig = plots.output_path(out / f"{NAME}.png")
    plots.panels(
        specs,
        ncol=3,
        suptitle=f"Figs. 5/7 — two parents ((i-1)//2, i-1), S=5, T={T}, {roots} roots [{mode}: AdamW lr "
        f"{cfg.optim.lr:g}, {cfg.run.steps} steps × {cfg.run.batch}]",
        path=fig,
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "T": T,
        "roots": roots,
        "loss": f.loss,
        "excess_over_in_context": f.excess_over_in_context,
        "in_context": b["in_context"],
        "one_parent_0": b["one_parent_0"],
        "one_parent_1": b["one_parent_1"],
        "unigram": b["unigram"],
        "entropy_floor": b["entropy_floor"],
        "heads": heads,
        "head_takes": takes,
        "split": heads["split"],
        "steps": res.history.steps_done,
        "wall_s": res.history.wall_s,
        "config": cfg.to_json() | {"graph": f"two_parent({cfg.graph.n})"},
        "figure": fig.name,
        "seconds": time.perf_counter() - t0,
    }
    claim = two_parent_claim(summary)
    summary["claim"] = claim.to_dict()
    _expkit.write_summary(out, summary)
    print(
        f"{NAME}: loss {f.loss:.4f} (tuple estimator {b['in_context']:.4f}, one parent {b['one_parent_0']:.4f} / "
        f"{b['one_parent_1']:.4f}, unigram {b['unigram']:.4f}); heads take {takes}; split {heads['split']}\n"
        f"{NAME}: {claim.line()}",
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
            "roots": dict(
                choices=ROOT_CHOICES,
                default="uniform",
                help="root law: uniform (default, the paper's) or dirichlet (the public code's per-sequence law)",
            )
        },
    )


if __name__ == "__main__":
    main()
