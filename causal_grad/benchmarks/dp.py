"""The polynomial-time exact gradient at initialisation (causal_grad.gradients.dp) at the paper's size.

S = 10, T = 20 (a random tree with 19 graph positions, 10^19 contexts for enumeration), Dirichlet(0.1) matrices:
the exact ``−∂L/∂A1/β0`` for one matrix and for 16 (the average), warm (compiled) and cold (with compilation).
Target: under 10 s per call on a 2-core CPU. A T = 100 row (the large end of the finite-T study) is added in
full mode, for information.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from .._x64 import x64
from ..gradients.dp import exact_gradient_at_init_dp
from ..graphs import random_tree
from ..task import InContextTask
from . import timeit

TARGET_S = 10.0


def run(quick: bool) -> list[dict]:
    rows = []
    sizes = [(20, 1), (20, 16)] + ([] if quick else [(100, 1)])
    for T, k in sizes:
        task = InContextTask(random_tree(jax.random.key(1), T - 1), 10, 0.1)
        with x64():
            pis = task.sample_pi(jax.random.key(0), k, dtype=jnp.float64)

        def go(task=task, pis=pis):
            exact_gradient_at_init_dp(task, pis, eps=0.0)

        t0 = time.perf_counter()
        go()
        cold = time.perf_counter() - t0
        warm = timeit(go, repeat=2 if quick else 3, warmup=0)
        row = {
            "name": f"exact grad at init (DP) random tree S=10 T={T}, {k} matrices",
            "value": warm,
            "unit": "s",
            "note": f"cold (with compilation) {cold:.2f} s",
        }
        if T == 20:
            row.update(target=f"< {TARGET_S:g} s", ok=warm < TARGET_S and cold < TARGET_S)
        rows.append(row)
    return rows
