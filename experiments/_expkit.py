"""Plumbing shared by the experiment scripts (not an experiment itself).

* :func:`cli` — the command line every script shares (``--quick``, ``--out``, ``--seed``) around its
  ``run(quick, out, seed) -> dict``;
* :func:`train_run` — one :func:`causal_grad.training.train` run kept under ``out/runs/<label>`` (config,
  history, weights; checkpoints in full mode, so an interrupted multi-hour run resumes where it stopped);
* :func:`readouts` — the trained model's first-layer attention ``(H, T, T)`` and layer-2 token block;
* :func:`forest_summary`, :func:`model_panels` — the numbers and the three panels of a paper figure (first-layer
  attention with the graph's edges outlined, layer-2 token block, held-out loss against the baselines);
* :func:`write_summary` — ``summary.json``.

:func:`train_run`, :func:`forest_summary`, :func:`write_summary`, :func:`mode_of` and ``SMOKE_TRAIN`` come from
:mod:`causal_grad.studies.common` (the studies in the package use them too).

Scripts import it as a sibling module (their own folder is put on ``sys.path``), both when run as
``python experiments/<name>.py`` and when loaded by path from ``causal-grad figures``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from causal_grad.studies.claims import forest_claim
from causal_grad.studies.common import SMOKE_TRAIN, forest_summary, mode_of, train_run, write_summary  # noqa: F401

FORMAT = argparse.RawDescriptionHelpFormatter


def cli(run: Callable, doc: str, name: str, argv=None, options: dict | None = None) -> dict:
    """Parse ``--quick/--out/--seed/--format/--dpi`` and the script's own ``options`` (``{keyword: argparse
    keywords}``, each a flag ``--keyword`` whose value is passed to ``run`` by that keyword), call ``run`` (its
    figures in that format and resolution), print where the results went."""
    from causal_grad import plots

    ap = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc, formatter_class=FORMAT)
    ap.add_argument("--quick", action="store_true", help="small, fast settings (default: the paper's settings)")
    ap.add_argument("--out", default=f"results/{name}", help=f"output folder (default: results/{name})")
    ap.add_argument("--seed", type=int, default=0, help="seed of graphs, training and data (default: 0)")
    add_figure_options(ap)
    for key, kw in (options or {}).items():
        ap.add_argument("--" + key.replace("_", "-"), dest=key, **kw)
    args = ap.parse_args(argv)
    extra = {key: getattr(args, key) for key in options or {}}
    t0 = time.perf_counter()
    with plots.output_options(args.format, args.dpi):
        res = run(quick=args.quick, out=Path(args.out), seed=args.seed, **extra)
    print(f"{name}: wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return res


def add_figure_options(ap: argparse.ArgumentParser) -> None:
    """``--format`` (png, pdf, svg) and ``--dpi`` of the figure files (see ``causal_grad.plots.output_options``)."""
    from causal_grad.plots import DEFAULT_DPI, FORMATS

    ap.add_argument("--format", default=None, choices=FORMATS, help="figure file format (default: png)")
    ap.add_argument("--dpi", type=float, default=None, help=f"raster figure resolution (default: {DEFAULT_DPI})")


#: Models whose first-layer attention depends on the tokens (the read-out averages it over held-out sequences).
TOKEN_ATTENTION = ("standard", "catformer")


def readouts(res, num_tokens: int = 512):
    """``(att (H, T, T), block (S, S) or None)``: the first-layer attention read-out of the metrics (for the
    standard transformer and the catformer, whose attention depends on the tokens: averaged over ``num_tokens``
    held-out sequences) and the layer-2 token block (reduced: ``A2``; disentangled: the induction block;
    standard, catformer: ``None``)."""
    import jax

    from causal_grad.task import make_task

    cfg = res.config
    spec = cfg.build_model()
    tokens = None
    if cfg.model.name in TOKEN_ATTENTION:
        tokens = make_task(cfg.graph, cfg.task.vocab, cfg.task.alpha).sample(
            jax.random.key(cfg.run.eval_seed), num_tokens
        )[0]
    att = np.asarray(spec.attention(res.params, tokens), dtype=float)
    block = None if spec.induction is None else np.asarray(spec.induction(res.params), dtype=float)
    return att, block


def loss_curve(res) -> tuple[list[int], list[float]]:
    ev = res.evals
    return [e.step for e in ev], [e.loss for e in ev]


BASELINE_LABELS = {"in_context": "in-context estimator", "entropy_floor": "entropy floor", "unigram": "unigram"}


def stage_marks(cfg) -> dict:
    """``{"stage 2 starts": step}`` for a layer-wise run (empty for joint training)."""
    if cfg.optim.schedule != "layerwise":
        return {}
    return {"stage 2 starts": cfg.stage1}


def model_panels(res, att, block, name: str) -> list[dict]:
    """The paper's three panels for a forest: first-layer attention (head 0, query row included) with the
    edges ``(i, p(i))`` outlined; the layer-2 token block (when the model has one); the held-out loss against
    the in-context estimator, the unigram estimator and the entropy floor."""
    g = res.config.graph
    f = res.final
    edges = [(i, p) for i, p in enumerate(g.parents) if p >= 0]
    specs = [
        dict(
            kind="heatmap",
            data=att[0],
            edges=edges,
            vmin=0.0,
            vmax=1.0,
            title=f"{name}: layer-1 attention softmax(A1) (edges outlined)\nmean parent weight "
            f"{f.mean_parent_attention:.3f}, argmax recovers {f.recovered:.0%}",
        )
    ]
    if block is not None:
        dd = f.diag_minus_offdiag if f.diag_minus_offdiag is not None else float("nan")
        specs.append(
            dict(
                kind="heatmap",
                data=block,
                lower_only=False,
                cmap="magma",
                xlabel="token gathered by layer 1",
                ylabel="query token",
                title=f"{name}: layer-2 token block (A2)\ndiag − off-diag {dd:.2f}",
            )
        )
    steps, losses = loss_curve(res)
    b = res.baselines.to_dict()
    specs.append(
        dict(
            kind="curves",
            x=steps,
            series={f"{res.config.model.name} ({res.config.optim.schedule})": losses},
            hlines={BASELINE_LABELS[k]: b[k] for k in ("in_context", "unigram", "entropy_floor") if k in b},
            vlines=stage_marks(res.config),
            xlabel="step",
            ylabel="held-out loss (nats)",
            title=f"{name}: final loss {f.loss:.3f} vs estimator {b['in_context']:.3f}",
        )
    )
    return specs


# ---------------------------------------------------------------------- figures 2 and 6
def forest_config(graph, mode: str, seed: int):
    """The paper's figure-2/6 run (``mode="full"``: preset ``fig2``, disentangled, heads [1, 1], all parameters
    from zero, plain GD at lr 1 with a cosine decay, 2^17 steps of 1024 sequences, 2^16 held-out sequences;
    docs/theory.md §6), or the fast layer-wise preset ``disentangled`` (``"quick"``; ``"smoke"``: a few steps of
    joint plain GD from zero, for the tests only). S = 10, α = 0.1."""
    from causal_grad.training import preset

    if mode == "full":
        return preset("fig2", graph, vocab=10, alpha=0.1, seed=seed)
    if mode == "quick":
        return preset(
            "disentangled", graph, vocab=10, alpha=0.1, eval_size=8192, eval_every=25, log_every=25, seed=seed
        )
    return preset("disentangled-joint", graph, vocab=10, alpha=0.1, **SMOKE_TRAIN, seed=seed)


def run_forest_figure(name: str, graphs: dict, quick: bool, out: Path, seed: int, smoke: bool, suptitle: str) -> dict:
    """Train one model per graph (:func:`forest_config`), draw one row of :func:`model_panels` per graph into
    ``out/<name>.png`` and write ``out/summary.json``; returns ``{graph name: forest_summary}`` plus
    ``mode``, ``seconds`` and ``figure``."""
    from causal_grad import plots

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = mode_of(quick, smoke)
    specs, results = [], {}
    for gname, graph in graphs.items():
        cfg = forest_config(graph, mode, seed)
        res = train_run(cfg, out, f"{mode}-{gname}", quick=mode != "full")
        att, block = readouts(res)
        specs += model_panels(res, att, block, gname)
        results[gname] = forest_summary(res)
        f = results[gname]
        print(
            f"{name} {gname}: loss {f['loss']:.4f} (estimator {f['in_context']:.4f}, floor {f['entropy_floor']:.4f}, "
            f"unigram {f['unigram']:.4f}); parent attention {f['mean_parent_attention']:.3f}, recovered "
            f"{f['recovered']:.0%}, SHD {f['shd']}; {f['wall_s']:.0f} s",
            flush=True,
        )
    fig = plots.output_path(out / f"{name}.png")
    plots.panels(
        specs,
        suptitle=f"{suptitle} [{mode}: {cfg.model.name} {cfg.optim.schedule}, {cfg.run.steps} steps × {cfg.run.batch}]",
        ncol=3,
        path=fig,
    )
    claim = forest_claim(results)
    print(f"{name}: {claim.line()}", flush=True)
    summary = {
        "experiment": name,
        "mode": mode,
        "config": cfg.to_json() | {"graph": None},
        "graphs": results,
        "claim": claim.to_dict(),
        "figure": fig.name,
        "seconds": time.perf_counter() - t0,
    }
    write_summary(out, summary)
    return summary
