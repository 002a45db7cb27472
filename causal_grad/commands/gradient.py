"""``causal-grad gradient``: the rescaled gradient of A1 at initialisation beside M_ε (claims C1, C2)."""

from __future__ import annotations

import json

import numpy as np

from .._validate import check_int, check_probability, check_scale
from ._common import add_graph_args, check_graph_args, graph_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "gradient",
        help="print the exact gradient of A1 at initialisation, rescaled, beside M_eps and the agreement numbers",
        description="Draw --num-pi transition matrices from Dirichlet(alpha); compute the gradient "
        "of the reduced model's first attention matrix at A1 = 0, A2 = beta0*I over "
        "that population (exact enumeration; Monte Carlo with --num sequences when "
        "the size is beyond enumeration), rescale row i by (i+1)*T*S/beta0, and "
        "compare it with the mutual-information approximation M_eps after "
        "row-centring (docs/theory.md §4, claims C1 and C2).",
    )
    add_graph_args(p, n=7, vocab=3, alpha=0.1)
    p.add_argument(
        "--num-pi", type=int, default=16, help="number of transition matrices in the population (default: 16)"
    )
    p.add_argument("--eps", type=float, default=1e-3, help="readout smoothing eps in [0, 1) (default: 1e-3)")
    p.add_argument(
        "--beta0",
        type=float,
        default=0.0,
        help="A2 = beta0*I; 0 (default) gives the beta0 -> 0 limit exactly, > 0 the exact gradient at "
        "that beta0 divided by beta0",
    )
    p.add_argument("--num", type=int, default=200_000, help="sequences for the Monte Carlo fallback (default: 200000)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for the Monte Carlo fallback")
    p.set_defaults(func=run)


def run(args) -> int:

    # every flag first, before JAX is imported (π is drawn and the gradient computed in float64)
    num_pi = check_int("--num-pi", args.num_pi, minimum=1)
    beta0 = check_scale("--beta0", args.beta0, "float64", allow_zero=True)
    check_probability("--eps", args.eps, open_high=True)
    check_int("--num", args.num, minimum=2)
    check_graph_args(args, alpha_dtype="float64")

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    import jax  # lazy: CLI parsing stays JAX-free
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free

    from .._x64 import x64  # lazy: CLI parsing stays JAX-free
    from ..gradients import (  # lazy: CLI parsing stays JAX-free
        compare_gradient_to_mi,
        exact_population_gradient,
        gradient_mi_agreement,
    )
    from ..gradients.compare import query_row_limit  # lazy: CLI parsing stays JAX-free
    from ..gradients.enumerate import check_enumerable  # lazy: CLI parsing stays JAX-free
    from ..mi import mi_approximation  # lazy: CLI parsing stays JAX-free
    from ..task import InContextTask  # lazy: CLI parsing stays JAX-free
    from .mi import format_matrix  # lazy: CLI parsing stays JAX-free

    graph = graph_from_args(args, alpha_dtype="float64")
    if not graph.is_forest:
        raise ValueError("graph must be a single-parent forest for `gradient` (the reduced model's task)")
    task = InContextTask(graph, args.vocab, args.alpha)
    if beta0 > 0:  # the exact gradient at finite beta0: refuse sizes beyond enumeration before sampling
        check_enumerable(task, np.eye(task.vocab_size)[None].repeat(num_pi, 0), args.eps, what="gradient --beta0")
    with x64():
        pis = np.asarray(task.sample_pi(jax.random.key(args.seed), num_pi, jnp.float64))
    if beta0 > 0:
        T, S = task.seq_len, task.vocab_size
        r = exact_population_gradient(task, pis, np.zeros((T, T)), beta0 * np.eye(S), eps=args.eps)
        mi_eps = args.eps if args.eps > 0 else None
        res = gradient_mi_agreement(
            -np.asarray(r.dA1) / beta0,
            mi_approximation(task, pis, eps=mi_eps),
            graph,
            S,
            query_limit=query_row_limit(pis, args.eps),
        )
        res.extra.update({"method": f"exact at beta0={beta0:g}"})
    else:
        res = compare_gradient_to_mi(task, pis, eps=args.eps, key=jax.random.key(args.seed + 1), num=args.num)
    if args.json:
        print(
            json.dumps(
                {
                    "graph": graph.to_json(),
                    "vocab_size": task.vocab_size,
                    "alpha": task.alpha,
                    "num_pi": num_pi,
                    "eps": args.eps,
                    "beta0": beta0,
                    "rescaled_gradient": res.rescaled.tolist(),
                    "M": res.M.tolist(),
                    "argmax": dict(zip(map(str, res.rows.tolist()), res.argmax.tolist())),
                    "gradient_margin": res.gradient_margin.tolist(),
                    "M_margin": res.M_margin.tolist(),
                    **{k: v for k, v in res.to_dict().items() if k not in ("eps",)},
                },
                default=float,
            )
        )
        return 0
    n, T = graph.n, task.seq_len
    print(graph)
    how = res.extra.get("method")
    print(
        f"\nS={task.vocab_size}, T={T}, {num_pi} transition matrices from Dirichlet({task.alpha}), eps={args.eps}, "
        f"gradient: {how}" + (f" ({res.extra['num']} sequences)" if "num" in res.extra else "")
    )
    print("\nrescaled gradient (i+1)*T*S * (-dL/dA1)/beta0, graph rows (parent in brackets, * = larger non-parent):")
    print(format_matrix(res.rescaled[:n, :n], graph.parents))
    q = res.rescaled[T - 1]
    print(f"query row {T - 1}: " + " ".join(f"{v:.4f}" for v in q))
    print(f"\nM_eps (eps={res.extra.get('mi_eps', args.eps)}):")
    print(format_matrix(res.M, graph.parents))
    print()
    print(res)
    if res.rows.size:
        print("per-row margins (parent minus best other earlier position), gradient vs M_eps, and T*margin(M_eps):")
        for i, gm, mm in zip(res.rows, res.gradient_margin, res.M_margin):
            print(f"  row {int(i):>3}: {gm:+.4f}  {mm:+.4f}  {T * mm:.3f}")
    return 0
