"""``causal-grad sample``: print or save sequences with their graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int, check_output_path, check_sample_memory
from ._common import add_graph_args, check_graph_args, graph_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="sample sequences from the in-context task and print or save them",
        description="Sample sequences (fresh transition matrix per sequence) and print them with "
        "their graph, or save tokens, targets and matrices to an .npz file.",
    )
    add_graph_args(p, n=12, vocab=3, alpha=0.1)
    p.add_argument("--batch", type=int, default=8, help="number of sequences (default: 8)")
    p.add_argument(
        "--out", default=None, help="save to this .npz file instead of printing (.npz is appended when missing)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def npz_path(out: str) -> Path:
    """The file ``numpy.savez`` writes for ``out``: ``out`` itself when it ends in ``.npz``, else ``out.npz``."""
    p = Path(out)
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


def run(args) -> int:

    # every flag first, before JAX is imported and before anything is drawn
    check_int("--batch", args.batch, minimum=1)
    check_graph_args(args)
    out = check_output_path("--out", npz_path(args.out), kind="file") if args.out else None
    two = args.graph.replace("_", "-") in ("two-parent", "dag")
    check_sample_memory("--batch/--vocab/--n", args.batch, args.n + 1, args.vocab, "float32", with_pi=not two)

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    import jax  # lazy: CLI parsing stays JAX-free

    from ..task import InContextTask, make_task  # lazy: CLI parsing stays JAX-free

    graph = graph_from_args(args)
    task = make_task(graph, args.vocab, args.alpha)
    key = jax.random.key(args.seed)
    if isinstance(task, InContextTask):  # make_task gives a forest an InContextTask
        tokens, y, pis = task.sample_with_pi(key, args.batch)
        pis = np.asarray(pis)
    else:
        tokens, y = task.sample(key, args.batch)
        pis = None
    tokens, y = np.asarray(tokens), np.asarray(y)
    if out is not None:
        arrays: dict[str, Any] = {"tokens": tokens, "targets": y, "graph": json.dumps(graph.to_json())}
        if pis is not None:
            arrays["pis"] = pis
        np.savez(out, **arrays)
        print(f"wrote {args.batch} sequences to {out}")
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "graph": graph.to_json(),
                    "vocab_size": task.vocab_size,
                    "alpha": task.alpha,
                    "tokens": tokens.tolist(),
                    "targets": np.round(y, 6).tolist(),
                }
            )
        )
        return 0
    print(graph)
    last = "query" if isinstance(task, InContextTask) else f"last context token; target parents {task.target_parents}"
    print(f"\nS={task.vocab_size}, alpha={task.alpha}, T={task.seq_len} (last position is the {last})")
    for b in range(tokens.shape[0]):
        print(" ".join(map(str, tokens[b])), " -> target", np.array2string(y[b], precision=3, suppress_small=True))
    return 0
