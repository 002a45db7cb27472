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
from pathlib import Path
from typing import Callable

import numpy as np

from causal_grad.studies.common import SMOKE_TRAIN, forest_summary, mode_of, train_run, write_summary  # noqa: F401

FORMAT = argparse.RawDescriptionHelpFormatter


def cli(run: Callable, doc: str, name: str, argv=None) -> dict:
    """Parse ``--quick/--out/--seed``, call ``run``, print where the results went."""
    ap = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc, formatter_class=FORMAT)
    ap.add_argument("--quick", action="store_true", help="small, fast settings (default: the paper's settings)")
    ap.add_argument("--out", default=f"results/{name}", help=f"output folder (default: results/{name})")
    ap.add_argument("--seed", type=int, default=0, help="seed of graphs, training and data (default: 0)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = run(quick=args.quick, out=Path(args.out), seed=args.seed)
    print(f"{name}: wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return res


def readouts(res, num_tokens: int = 512):
    """``(att (H, T, T), block (S, S) or None)``: the first-layer attention read-out of the metrics (for the
    standard transformer: averaged over ``num_tokens`` held-out sequences) and the layer-2 token block
    (reduced: ``A2``; disentangled: the induction block; standard: ``None``)."""
    import jax

    from causal_grad.task import make_task
    from causal_grad.training import build_model

    cfg = res.config
    spec = build_model(cfg.model, cfg.vocab, cfg.seq_len, schedule=cfg.schedule, heads=cfg.heads,
                       d_model=cfg.d_model, layers=cfg.layers, std_heads=cfg.std_heads)
    tokens = None
    if cfg.model == "standard":
        tokens = make_task(cfg.graph, cfg.vocab, cfg.alpha).sample(jax.random.key(cfg.eval_seed), num_tokens)[0]
    att = np.asarray(spec.attention(res.params, tokens), dtype=float)
    block = None if spec.induction is None else np.asarray(spec.induction(res.params), dtype=float)
    return att, block


def loss_curve(res) -> tuple[list[int], list[float]]:
    ev = res.history["eval"]
    return [e["step"] for e in ev], [e["loss"] for e in ev]


BASELINE_LABELS = {"bayes": "in-context estimator", "entropy_floor": "entropy floor", "unigram": "unigram"}


def stage_marks(cfg) -> dict:
    """``{"stage 2 starts": step}`` for a layer-wise run (empty for joint training)."""
    if cfg.schedule != "layerwise":
        return {}
    return {"stage 2 starts": cfg.steps // 2 if cfg.stage1_steps is None else cfg.stage1_steps}


def model_panels(res, att, block, name: str) -> list[dict]:
    """The paper's three panels for a forest: first-layer attention (head 0, query row included) with the
    edges ``(i, p(i))`` outlined; the layer-2 token block (when the model has one); the held-out loss against
    the in-context estimator, the unigram estimator and the entropy floor."""
    g = res.config.graph
    f = res.final
    edges = [(i, p) for i, p in enumerate(g.parents) if p >= 0]
    specs = [dict(kind="heatmap", data=att[0], edges=edges, vmin=0.0, vmax=1.0,
                  title=f"{name}: layer-1 attention softmax(A1) (edges outlined)\nmean parent weight "
                        f"{f['mean_parent_attention']:.3f}, argmax recovers {f['recovered']:.0%}")]
    if block is not None:
        dd = f.get("diag_minus_offdiag", float("nan"))
        specs.append(dict(kind="heatmap", data=block, lower_only=False, cmap="magma",
                          xlabel="token gathered by layer 1", ylabel="query token",
                          title=f"{name}: layer-2 token block (A2)\ndiag − off-diag {dd:.2f}"))
    steps, losses = loss_curve(res)
    b = res.history["baselines"]
    specs.append(dict(kind="curves", x=steps, series={f"{res.config.model} ({res.config.schedule})": losses},
                      hlines={BASELINE_LABELS[k]: b[k] for k in ("bayes", "unigram", "entropy_floor") if k in b},
                      vlines=stage_marks(res.config), xlabel="step", ylabel="held-out loss (nats)",
                      title=f"{name}: final loss {f['loss']:.3f} vs estimator {b['bayes']:.3f}"))
    return specs


# ---------------------------------------------------------------------- figures 2 and 6
def forest_config(graph, mode: str, seed: int):
    """The paper's figure-2/6 run (``mode="full"``: disentangled, heads [1, 1], all parameters from zero,
    plain GD at lr 1 with a cosine decay, 2^17 steps of 1024 sequences, 2^16 held-out sequences; docs/theory.md §6),
    or the fast layer-wise schedule of ``causal_grad.training.run.DEFAULTS`` (``"quick"``; ``"smoke"``: a few
    steps, for the tests only). S = 10, α = 0.1."""
    from causal_grad.training import default_config

    if mode == "full":
        return default_config("disentangled", graph, vocab=10, alpha=0.1, schedule="joint", optimizer="sgd",
                              lr=1.0, steps=1 << 17, batch=1024, eval_size=1 << 16, eval_every=1 << 11,
                              log_every=1 << 11, checkpoint_every=1 << 14, seed=seed)
    if mode == "quick":
        return default_config("disentangled", graph, vocab=10, alpha=0.1, eval_size=8192, eval_every=25,
                              log_every=25, seed=seed)
    return default_config("disentangled", graph, vocab=10, alpha=0.1, **SMOKE_TRAIN, seed=seed)


def run_forest_figure(name: str, graphs: dict, quick: bool, out: Path, seed: int, smoke: bool,
                      suptitle: str) -> dict:
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
        print(f"{name} {gname}: loss {f['loss']:.4f} (estimator {f['bayes']:.4f}, floor {f['entropy_floor']:.4f}, "
              f"unigram {f['unigram']:.4f}); parent attention {f['mean_parent_attention']:.3f}, recovered "
              f"{f['recovered']:.0%}, SHD {f['shd']}; {f['wall_s']:.0f} s", flush=True)
    fig = plots.panels(out / f"{name}.png", specs, suptitle=f"{suptitle} [{mode}: {cfg.model} {cfg.schedule}, "
                                                              f"{cfg.steps} steps × {cfg.batch}]", ncol=3)
    summary = {"experiment": name, "mode": mode, "config": cfg.to_json() | {"graph": None},
               "graphs": results, "figure": fig.name, "seconds": time.perf_counter() - t0}
    write_summary(out, summary)
    return summary
