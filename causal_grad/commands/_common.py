"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from ..graphs import GRAPH_FAMILIES, Graph, named_graph


__all__ = ["add_graph_args", "graph_from_args"]


def _default(v) -> str:
    return "the preset's" if v is None else str(v)


def add_graph_args(p: argparse.ArgumentParser, *, n: int | None = 12, vocab: int | None = 3,
                   alpha: float | None = 0.1, graph: str | None = "random-tree") -> None:
    """The task options ``--graph --n --vocab --alpha --seed --p-root``; a default of ``None`` means the
    subcommand fills it in (``train``: from its preset)."""
    g = p.add_argument_group("task")
    g.add_argument("--graph", default=graph,
                   help=f"graph family ({', '.join(GRAPH_FAMILIES)}) or an explicit parent list such as "
                        f"--graph=-1,0,1,0 (default: {_default(graph)})")
    g.add_argument("--n", type=int, default=n, help=f"number of graph positions, T-1 (default: {_default(n)})")
    g.add_argument("--vocab", type=int, default=vocab, help=f"vocabulary size S (default: {_default(vocab)})")
    g.add_argument("--alpha", type=float, default=alpha,
                   help=f"Dirichlet concentration (default: {_default(alpha)})")
    g.add_argument("--seed", type=int, default=0, help="random seed for graphs and sampling (default: 0)")
    g.add_argument("--p-root", type=float, default=0.5, help="root probability for random-forest (default: 0.5)")


def graph_from_args(args: argparse.Namespace) -> Graph:
    """The graph of parsed task options (the shared options checked first, before a random graph is drawn)."""
    from .._validate import check_int, check_positive_float, check_probability, check_seed

    # the shared options first, before a random graph is drawn
    check_seed("seed", args.seed)  # every subcommand turns it into jax.random.key(seed)
    check_int("vocab_size", args.vocab, minimum=2)
    check_int("n", args.n, minimum=1)
    check_positive_float("alpha", args.alpha)
    check_probability("p_root", args.p_root)
    spec = args.graph
    if "," in spec or spec.lstrip("-").isdigit():
        try:
            parents = [int(x) for x in spec.split(",")]
        except ValueError:
            raise ValueError(f"graph: could not read {spec!r} as a comma-separated parent list") from None
        return Graph(parents)
    return named_graph(spec, args.n, seed=args.seed, p_root=args.p_root)
