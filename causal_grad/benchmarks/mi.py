"""The mutual-information approximation at scale: :func:`causal_grad.mi.mi_approximation` on n = 255 graph
positions (a chain and a random tree), S = 32, 64 Dirichlet(0.1) transition matrices, float64. Target: under 10 s
for the first call (compilation included) and for a warm call. Also timed: :func:`causal_grad.mi.dpi_report` on a
quarter of the matrices, for information."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from .._x64 import x64
from ..graphs import chain, random_tree
from ..mi import dpi_report, mi_approximation
from ..task import InContextTask
from . import timeit

TARGET_S = 10.0


def run(quick: bool) -> list[dict]:
    n, S, k = (63, 16, 16) if quick else (255, 32, 64)
    rows = []
    for name, g in (("chain", chain(n)), ("random tree", random_tree(jax.random.key(1), n))):
        task = InContextTask(g, S, 0.1)
        with x64():
            pis = np.asarray(task.sample_pi(jax.random.key(0), k, jnp.float64))
        t0 = time.perf_counter()
        mi_approximation(task, pis)
        cold = time.perf_counter() - t0
        warm = timeit(lambda task=task, pis=pis: mi_approximation(task, pis), repeat=2 if quick else 3, warmup=0)
        label = f"mi_approximation {name} n={n} S={S} k={k} (float64)"
        note = "includes compilation" if name == "chain" else "reuses the chain's compiled shapes (same n, S, k)"
        rows.append(
            {
                "name": label + " first call",
                "value": cold,
                "unit": "s",
                "target": f"< {TARGET_S:g} s",
                "ok": cold < TARGET_S,
                "note": note,
            }
        )
        rows.append(
            {"name": label + " warm", "value": warm, "unit": "s", "target": f"< {TARGET_S:g} s", "ok": warm < TARGET_S}
        )
        kd = max(1, k // 4)
        t = timeit(lambda g=g, pis=pis, kd=kd: dpi_report(g, pis[:kd]), repeat=1, warmup=1)
        rows.append(
            {
                "name": f"dpi_report {name} n={n} S={S} k={kd}",
                "value": t,
                "unit": "s",
                "note": "KL/χ² slacks of every pair, σ1 bound, self entry",
            }
        )
    return rows
