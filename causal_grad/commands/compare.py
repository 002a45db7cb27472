"""``causal-grad compare``: the closed form M, exact population gradient descent and stochastic training side
by side (claim C9)."""

from __future__ import annotations

import numpy as np

from .._validate import check_int, check_output_path, check_positive_float, check_probability, check_scale
from ._common import add_graph_args, check_graph_args, graph_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="closed form vs exact population GD vs stochastic training (C9)",
        description="Stage 1 of the layer-wise schedule on a small task: prints, step by step, "
        "the Spearman correlation of the row-centred A1 with M, parent attention, "
        "argmax recovery and the distance between stochastic and exact trajectories, "
        "then each row's recovery step against its predicted margin; writes figures.",
    )
    add_graph_args(p, n=6, vocab=3, alpha=1.0)
    p.add_argument("--num-pi", type=int, default=8, help="transition matrices in the population (default: 8)")
    p.add_argument("--steps", type=int, default=100, help="stage-1 steps (default: 100)")
    p.add_argument("--lr", type=float, default=50.0, help="learning rate (default: 50)")
    p.add_argument("--beta0", type=float, default=1.0, help="A2 = beta0 * I during stage 1 (default: 1)")
    p.add_argument("--eps", type=float, default=1e-3, help="readout smoothing (default: 1e-3)")
    p.add_argument("--batch", type=int, default=1024, help="stochastic batch size (default: 1024)")
    p.add_argument("--seeds", type=int, default=4, help="stochastic runs to average (default: 4)")
    p.add_argument("--record-every", type=int, default=5, help="record every k steps (default: 5)")
    p.add_argument("--out", default="results/compare", help="figure folder (default: results/compare)")
    p.set_defaults(func=run)


def run(args) -> int:

    # every flag first (everything closed_form_vs_training checks, and the figure folder), before JAX is
    # imported and before the graph and the matrices are drawn
    seeds = check_int("--seeds", args.seeds, minimum=1)
    k = check_int("--num-pi", args.num_pi, minimum=1)
    for name in ("steps", "batch", "record_every"):
        check_int("--" + name.replace("_", "-"), getattr(args, name), minimum=1)
    check_positive_float("--lr", args.lr)
    check_scale("--beta0", args.beta0, "float32")  # the stochastic stage 1 runs in float32
    check_probability("--eps", args.eps, open_high=True)
    check_graph_args(args, alpha_dtype="float64")
    check_output_path("--out", args.out, kind="dir")

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    import jax  # lazy: CLI parsing stays JAX-free
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free

    from .._x64 import x64  # lazy: CLI parsing stays JAX-free
    from ..comparison import closed_form_vs_training, comparison_figures  # lazy: CLI parsing stays JAX-free
    from ..gradients.enumerate import check_enumerable  # lazy: CLI parsing stays JAX-free
    from ..task import InContextTask  # lazy: CLI parsing stays JAX-free

    graph = graph_from_args(args, alpha_dtype="float64")
    task = InContextTask(graph, args.vocab, args.alpha)
    check_enumerable(task, np.eye(task.vocab_size)[None].repeat(k, 0), args.eps, what="compare")
    with x64():
        pis = np.asarray(task.sample_pi(jax.random.key(args.seed + 1), k, dtype=jnp.float64))
    res = closed_form_vs_training(
        task,
        pis,
        steps=args.steps,
        lr=args.lr,
        beta0=args.beta0,
        eps=args.eps,
        batch=args.batch,
        seeds=tuple(range(args.seed, args.seed + seeds)),
        record_every=args.record_every,
    )
    print(graph)
    print()
    print(res.table())
    figs = comparison_figures(res, args.out)
    print("\nfigures: " + ", ".join(figs))
    return 0
