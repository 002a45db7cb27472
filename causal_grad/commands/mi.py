"""``causal-grad mi``: the mutual-information approximation M of a graph, with the data-processing report."""

from __future__ import annotations

import json

import numpy as np

from .._validate import check_int, check_probability
from ._common import add_graph_args, check_graph_args, graph_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mi",
        help="print the mutual-information approximation M (parents marked) and the data-processing report",
        description="Compute M[i, j] = mean over transition matrices of <P_ji, Q>_mu (or M_eps "
        "with --eps) for a graph, mark each row's parent entry, and check the "
        "data-processing inequality, the sigma1^(L-1) margin bound and the self "
        "entry on every draw (docs/theory.md §4, claims C2-C4).",
    )
    add_graph_args(p, n=12, vocab=4, alpha=0.1)
    p.add_argument(
        "--draws", type=int, default=64, help="number of transition matrices drawn from Dirichlet(alpha) (default: 64)"
    )
    p.add_argument(
        "--eps",
        type=float,
        default=None,
        help="readout smoothing eps in (0, 1): print M_eps instead of M (default: the eps -> 0 limit)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def format_matrix(M: np.ndarray, parents, se: np.ndarray | None = None) -> str:
    """Lower-triangular ``M`` with each row's parent entry in brackets and ``*`` on a row's largest off-diagonal
    entry when it is not the parent."""
    n = M.shape[0]
    width = 9
    lines = ["  i\\j " + "".join(f"{j:>{width}}" for j in range(n))]
    for i in range(n):
        p = parents[i]
        off = M[i, :i]
        jmax = int(np.argmax(off)) if i > 0 else -1
        cells = []
        for j in range(i + 1):
            v = f"{M[i, j]:.4f}"
            if j == p:
                v = f"[{v}]"
            elif j == jmax and p >= 0 and j != p and off[jmax] > M[i, p]:
                v = f"{v}*"
            cells.append(f"{v:>{width}}")
        root = "  (root)" if p < 0 else ""
        lines.append(f"{i:>5} " + "".join(cells) + root)
    return "\n".join(lines)


def run(args) -> int:

    # every flag first, before JAX is imported (π is drawn in float64: --alpha is checked against its floor)
    draws = check_int("--draws", args.draws, minimum=1)
    if args.eps is not None:
        check_probability("--eps", args.eps, open_low=True, open_high=True)
    check_graph_args(args, alpha_dtype="float64")

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    import jax  # lazy: CLI parsing stays JAX-free
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free

    from .._x64 import x64  # lazy: CLI parsing stays JAX-free
    from ..mi import dpi_report, mi_approximation  # lazy: CLI parsing stays JAX-free
    from ..task import InContextTask  # lazy: CLI parsing stays JAX-free

    graph = graph_from_args(args, alpha_dtype="float64")
    if not graph.is_forest:
        raise ValueError("graph must be a single-parent forest for `mi` (M is defined through tree paths)")
    task = InContextTask(graph, args.vocab, args.alpha)
    with x64():
        pis = np.asarray(task.sample_pi(jax.random.key(args.seed), draws, jnp.float64))
    approx = mi_approximation(task, pis, eps=args.eps)
    report = dpi_report(graph, pis)
    parents = graph.parents
    margins = {}
    for i, p in enumerate(parents):
        others = [j for j in range(i) if j != p]
        if p >= 0 and others:
            margins[i] = float(approx.M[i, p] - approx.M[i, others].max())
    if args.json:
        print(
            json.dumps(
                {
                    "graph": graph.to_json(),
                    "vocab_size": task.vocab_size,
                    "alpha": task.alpha,
                    "draws": draws,
                    "eps": args.eps,
                    "M": approx.M.tolist(),
                    "se": approx.se.tolist(),
                    "parent_margins": {str(k): v for k, v in margins.items()},
                    "dpi": report.to_dict(),
                }
            )
        )
        return 0
    name = "M_eps" if args.eps is not None else "M"
    print(graph)
    print(
        f"\n{name}[i, j] = mean over {draws} draws of pi ~ Dirichlet({task.alpha}) (S = {task.vocab_size})"
        + (f", eps = {args.eps}" if args.eps is not None else "")
        + "; [parent], * = a non-parent entry above the parent's"
    )
    print(format_matrix(approx.M, parents))
    if margins:
        worst = min(margins, key=lambda i: margins[i])
        print(
            f"\nparent margin of {name} (parent entry minus the largest other j < i): min {margins[worst]:.4g} "
            f"at i = {worst}; parent is every row's argmax: {'yes' if min(margins.values()) > 0 else 'NO'}"
        )
    if draws > 1:
        print(f"largest standard error across draws: {np.nanmax(approx.se):.3g}")
    print()
    print(report)
    return 0
