"""Sampler throughput (issue: foundation): S = 10, T = 20, batch 65,536, fresh Dirichlet(0.1) π per sequence."""

from __future__ import annotations

import jax

from . import timeit

TARGET = 1_000_000  # sequences/s on a 2-core CPU; the paper's public sampler reaches about 7,800/s


def run(quick: bool) -> list[dict]:
    from ..graphs import chain, random_tree
    from ..task import InContextTask

    batch = 8192 if quick else 65536
    rows = []
    for name, g in (("chain", chain(19)), ("random tree", random_tree(jax.random.key(1), 19))):
        task = InContextTask(g, 10, 0.1)
        key = jax.random.key(0)

        def go():
            jax.block_until_ready(task.sample(key, batch))

        t = timeit(go, repeat=3 if quick else 5)
        rows.append({"name": f"sample {name} S=10 T=20 batch={batch}", "value": batch / t, "unit": "seq/s",
                     "target": f">= {TARGET:,} seq/s", "ok": batch / t >= TARGET})
    return rows
