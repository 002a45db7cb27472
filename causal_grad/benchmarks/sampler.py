"""Sampler throughput: S = 10, T = 20 (19 graph positions), fresh Dirichlet(0.1) π per sequence.

The target row is wall-clock sequences per second at batch 65,536 (compile excluded). Because the project's
machines are shared, each row also reports the process CPU time per sequence and the 1-minute load average:
on an otherwise idle 2-core machine the wall rate is bounded by (and with both cores busy approaches)
``2 / (CPU seconds per sequence)``, so the CPU figure is the one to compare across runs.
"""

from __future__ import annotations

import os
import time

import jax

from ..graphs import chain, random_tree
from ..task import InContextTask

TARGET = 1_000_000  # sequences/s on a 2-core CPU; the paper's public sampler reaches about 7,800/s


def _measure(fn, repeat: int):
    """Best wall time and best process CPU time (s) of ``fn()`` over ``repeat`` calls, after a warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def run(quick: bool) -> list[dict]:
    batch = 8192 if quick else 65536
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name, g in (("chain", chain(19)), ("random tree", random_tree(jax.random.key(1), 19))):
        task = InContextTask(g, 10, 0.1)
        key = jax.random.key(0)

        def go(task=task, key=key):
            jax.block_until_ready(task.sample(key, batch))

        wall, cpu = _measure(go, 3 if quick else 5)
        rows.append(
            {
                "name": f"sample {name} S=10 T=20 batch={batch}",
                "value": batch / wall,
                "unit": "seq/s",
                "target": f">= {TARGET:,} seq/s",
                "ok": batch / wall >= TARGET,
                "note": f"load average {load:.1f} on {os.cpu_count()} CPUs",
            }
        )
        rows.append(
            {
                "name": f"  CPU time per sequence ({name})",
                "value": 1e6 * cpu / batch,
                "unit": "µs",
                "note": f"idle 2-core bound {2 * batch / cpu:,.0f} seq/s",
            }
        )
    return rows
