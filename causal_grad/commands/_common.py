"""Arguments shared by several subcommands.

The checks here run before JAX is imported (see :mod:`causal_grad.cli`); messages name the flags."""

from __future__ import annotations

import argparse

from .._validate import check_concentration, check_int, check_positions, check_probability, check_seed
from ..graphs import GRAPH_FAMILIES, Graph, named_graph

__all__ = ["add_graph_args", "check_graph_args", "explicit_parents", "graph_from_args"]


def _default(v) -> str:
    return "the preset's" if v is None else str(v)


def add_graph_args(
    p: argparse.ArgumentParser,
    *,
    n: int | None = 12,
    vocab: int | None = 3,
    alpha: float | None = 0.1,
    graph: str | None = "random-tree",
) -> None:
    """The task options ``--graph --n --vocab --alpha --seed --p-root``; a default of ``None`` means the
    subcommand fills it in (``train``: from its preset) before :func:`check_graph_args`."""
    g = p.add_argument_group("task")
    g.add_argument(
        "--graph",
        default=graph,
        help=f"graph family ({', '.join(GRAPH_FAMILIES)}) or an explicit parent list such as "
        f"--graph=-1,0,1,0 (default: {_default(graph)})",
    )
    # default None: an explicit --n is told apart from the default (it must agree with an explicit parent list)
    g.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"number of graph positions, T-1 (default: {_default(n)}; with an explicit parent list, its length)",
    )
    g.add_argument("--vocab", type=int, default=vocab, help=f"vocabulary size S (default: {_default(vocab)})")
    g.add_argument("--alpha", type=float, default=alpha, help=f"Dirichlet concentration (default: {_default(alpha)})")
    g.add_argument("--seed", type=int, default=0, help="random seed for graphs and sampling (default: 0)")
    g.add_argument("--p-root", type=float, default=0.5, help="root probability for random-forest (default: 0.5)")
    p.set_defaults(n_default=n)


def explicit_parents(spec: str) -> list[int] | None:
    """The parent list of ``--graph`` when it is one (``-1,0,1``), else ``None`` (a family name)."""
    if "," in spec or spec.lstrip("-").isdigit():
        try:
            return [int(x) for x in spec.split(",")]
        except ValueError:
            raise ValueError(f"--graph: could not read {spec!r} as a comma-separated parent list") from None
    return None


def check_graph_args(args: argparse.Namespace, *, alpha_dtype: str = "float32") -> None:
    """The shared options, before any import of JAX and before a random graph is drawn: ``--seed`` (every
    subcommand turns it into ``jax.random.key(seed)``), ``--vocab``, ``--n`` (it must agree with an explicit parent
    list when both are given), ``--alpha`` (finite draws in ``alpha_dtype``, the dtype the subcommand samples π
    in), ``--p-root``. Sets ``args.n`` to the number of positions."""

    check_seed("--seed", args.seed)
    check_int("--vocab", args.vocab, minimum=2, maximum=2**31 - 1)  # tokens are int32
    check_concentration("--alpha", args.alpha, alpha_dtype)
    check_probability("--p-root", args.p_root)
    parents = explicit_parents(args.graph)
    if parents is not None:
        if args.n is not None and args.n != len(parents):
            raise ValueError(
                f"--n {args.n} disagrees with the explicit parent list --graph={args.graph} "
                f"({len(parents)} positions): drop --n or make them agree"
            )
        args.n = len(parents)
    elif args.n is None:
        args.n = args.n_default
    check_positions("--n", args.n)


def graph_from_args(args: argparse.Namespace, *, alpha_dtype: str = "float32") -> Graph:
    """The graph of parsed task options, after :func:`check_graph_args`."""
    check_graph_args(args, alpha_dtype=alpha_dtype)
    parents = explicit_parents(args.graph)
    if parents is not None:
        return Graph(parents)
    return named_graph(args.graph, args.n, seed=args.seed, p_root=args.p_root)
