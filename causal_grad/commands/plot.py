"""``causal-grad plot RUN``: the figures of a training run folder (loss curve, first-layer attention over the
graph, per-head parents, the attention animation) — :func:`causal_grad.plots.plot_run`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import plots


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a training run's figures (loss, attention over the graph, animation)",
        description="Draw the figures of a run folder written by `causal-grad train --out RUN`: loss.FORMAT (the "
        "held-out loss against the in-context estimator, unigram and entropy floor) and, when the run "
        "recorded attention snapshots (RUN/attention.npz), attention.FORMAT (the first-layer attention "
        "of the last snapshot, the graph's edges outlined: red = first parent, cyan = second), "
        "head_parents.FORMAT and attention.gif (one frame per snapshot).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", help="the run folder (holds config.json and history.json)")
    p.add_argument("--out", default=None, help="where to write the figures (default: the run folder)")
    p.add_argument("--format", default="png", choices=plots.FORMATS, help="figure file format")
    p.add_argument("--dpi", type=float, default=plots.DEFAULT_DPI, help="raster resolution")
    p.add_argument("--no-animation", action="store_true", help="skip attention.gif")
    p.set_defaults(func=run)


def run(args) -> int:
    # the training modules import JAX: inside run(), the accepted exception that keeps flag errors fast
    from ..training.strategies import strategy_curves_of  # lazy: CLI parsing stays JAX-free

    written = plots.plot_run(
        Path(args.run), out=args.out, format=args.format, dpi=args.dpi, animate=not args.no_animation, echo=print
    )
    history = Path(args.run) / "history.json"
    try:  # the distance to the strategies, when the run recorded it (causal_grad.training.strategies)
        curves = strategy_curves_of(json.loads(history.read_text()))
    except (OSError, ValueError):
        curves = None
    if curves is not None:
        dest = Path(args.out or args.run) / f"strategies.{args.format}"
        plots.strategy_curves(
            [curves.to_dict()], title="KL from the model to each strategy (query)", path=dest, dpi=args.dpi
        )
        written["strategies"] = plots.output_path(dest)
    for name, path in written.items():
        print(f"{name:<13} {path}")
    return 0
