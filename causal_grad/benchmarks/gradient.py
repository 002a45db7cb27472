"""Exact and Monte Carlo gradients of the reduced model.

Rows: enumeration throughput of :func:`causal_grad.exact_population_gradient` (contexts per second, float64,
each context evaluated for all ``S`` queries, forward and backward, at S = 3, T = 13, k = 4 transition
matrices: 3^12 = 531,441 contexts) and of :func:`causal_grad.linearized_gradient_at_init`; Monte Carlo
sequences per second for :func:`causal_grad.monte_carlo_linearized_at_init` (T = 101, S = 3) and
:func:`causal_grad.monte_carlo_gradient` (T = 21, S = 3). Timings exclude compilation (warm-up call).
"""

from __future__ import annotations

import jax
import numpy as np

from ..gradients import (
    exact_population_gradient,
    linearized_gradient_at_init,
    monte_carlo_gradient,
    monte_carlo_linearized_at_init,
)
from ..graphs import chain
from ..task import InContextTask
from . import timeit

EXACT_TARGET = 500_000  # contexts/s (float64, all S queries, loss and both gradients) on a 2-core CPU
LINEAR_TARGET = 1_000_000  # contexts/s for the β0 → 0 gradient (no backward pass)


def run(quick: bool) -> list[dict]:
    S, k = 3, 4
    n = 10 if quick else 12
    task = InContextTask(chain(n), S, 1.0)
    pis = np.random.default_rng(0).dirichlet(np.ones(S), size=(k, S))
    T = n + 1
    A1 = np.random.default_rng(1).normal(size=(T, T))
    A2 = np.random.default_rng(2).normal(size=(S, S))
    C = S**n
    repeat = 2 if quick else 3
    rows = []

    t = timeit(lambda: jax.block_until_ready(exact_population_gradient(task, pis, A1, A2, eps=1e-3)), repeat=repeat)
    rows.append(
        {
            "name": f"exact_population_gradient S={S} T={T} k={k} ({C:,} contexts)",
            "value": C / t,
            "unit": "contexts/s",
            "target": f">= {EXACT_TARGET:,}",
            "ok": C / t >= EXACT_TARGET,
            "note": f"{t:.3g} s per call, {S * C / t:,.0f} sequences/s",
        }
    )
    t = timeit(lambda: jax.block_until_ready(linearized_gradient_at_init(task, pis, eps=1e-3)), repeat=repeat)
    rows.append(
        {
            "name": f"linearized_gradient_at_init S={S} T={T} k={k}",
            "value": C / t,
            "unit": "contexts/s",
            "target": f">= {LINEAR_TARGET:,}",
            "ok": C / t >= LINEAR_TARGET,
        }
    )

    big = InContextTask(chain(100), S, 1.0)
    num = 20_000 if quick else 100_000
    key = jax.random.key(0)
    t = timeit(
        lambda: jax.block_until_ready(monte_carlo_linearized_at_init(big, key, eps=1e-3, num=num, pis=pis).G),
        repeat=repeat,
    )
    rows.append(
        {
            "name": f"monte_carlo_linearized_at_init S={S} T=101 ({num:,} contexts x {S} queries)",
            "value": num / t,
            "unit": "seq/s",
        }
    )
    mid = InContextTask(chain(20), S, 1.0)
    num = 8_192 if quick else 32_768
    A1m, A2m = np.zeros((21, 21)), np.eye(S)
    t = timeit(
        lambda: jax.block_until_ready(monte_carlo_gradient(mid, key, A1m, A2m, eps=1e-3, num=num, pis=pis).dA1),
        repeat=repeat,
    )
    rows.append({"name": f"monte_carlo_gradient S={S} T=21 (per-sequence autodiff)", "value": num / t, "unit": "seq/s"})
    return rows
