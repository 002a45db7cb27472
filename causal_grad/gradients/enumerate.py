"""Exact enumeration of the in-context task's population (docs/theory.md §1), shared by the exact gradients.

The population of :func:`causal_grad.gradients.exact_population_gradient` is uniform over a finite list of
transition matrices ``π_1 … π_k``; given ``π`` the graph positions follow the forest (roots ``~ μ_π``, computed
by GTH) and the query ``q = s_{T-1}`` is uniform on ``[S]``; the target is the soft label ``π[q]``. With
``n = T-1`` graph positions there are ``S^n`` contexts ``(s_0, …, s_{n-1})``, each with weight

    W_π(s) = Π_{i<n} ( μ_π(s_i) if p(i) = -1 else π[s_{p(i)}, s_i] ).

Because the model's prediction depends on the tokens only, the expectation over ``π`` folds into an
**effective target** per (context, query):

    Y(s, q, b) = (1/(k·S)) · Σ_π W_π(s) · π[q, b],      E[f(tokens) · y_b] = Σ_{s, q} Y(s, q, b) · f(s, q).

Contexts are enumerated inside jit-compiled chunks: a chunk is an index range ``start … start+B-1`` whose
base-``S`` digits (position 0 most significant) are the tokens, so no token table is ever stored and no Python
loop runs per context. Indices past ``S^n`` (padding of the last chunk) get weight 0.

**Cost and the size limit.** :func:`enumeration_cost` counts ``S^n · (k + S)``: for each of the ``S^n`` contexts,
``k`` weight products ``W_π(s)`` (one per (context, π) pair) plus ``S`` model evaluations (one per (context,
query) pair, forward and backward). Above :data:`MAX_ENUMERATION_COST` (2·10^7) the exact functions refuse
and point to :func:`causal_grad.gradients.monte_carlo_gradient`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .._validate import arrays, check_int, check_probability, check_real_array, check_transition_matrices
from ..task import InContextTask

__all__ = [
    "MAX_ENUMERATION_COST",
    "enumeration_cost",
    "exceeds_enumeration_limit",
    "check_task",
    "check_enumerable",
    "check_params",
    "context_tokens",
    "effective_targets",
    "weight_table",
    "chunking",
]

#: Largest :func:`enumeration_cost` the exact functions accept (about a minute of CPU on 2 cores at most).
MAX_ENUMERATION_COST = 20_000_000


def enumeration_cost(seq_len: int, vocab_size: int, num_pis: int) -> int:
    """``S^(T-1) · (k + S)``: (context, π) weight evaluations plus (context, query) model evaluations."""
    seq_len = check_int("seq_len", seq_len, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    num_pis = check_int("num_pis", num_pis, minimum=1)
    return vocab_size ** (seq_len - 1) * (num_pis + vocab_size)


def check_task(task: InContextTask) -> InContextTask:
    """Refuse anything but a :class:`causal_grad.InContextTask` (the single-parent forest task the exact and
    Monte Carlo gradients enumerate or sample); returns ``task``."""
    if not isinstance(task, InContextTask):
        raise TypeError(f"task must be a causal_grad.InContextTask (single-parent forest), got {type(task).__name__}")
    return task


def check_enumerable(task: InContextTask, pis: ArrayLike, eps: float, *, what: str) -> tuple[np.ndarray, float]:
    """Validate ``task``, ``pis`` (``(k, S, S)`` or ``(S, S)``, row-stochastic) and ``eps`` ∈ [0, 1), and refuse
    sizes beyond :data:`MAX_ENUMERATION_COST` (before any compute). Returns ``(pis as float64 (k,S,S), eps)``."""
    check_task(task)
    pis = check_transition_matrices("pis", pis, task.vocab_size)
    eps = check_probability("eps", eps, open_high=True)
    T, S, k = task.seq_len, task.vocab_size, pis.shape[0]
    if exceeds_enumeration_limit(T, S, k):
        raise ValueError(
            f"{what}: exact enumeration needs S^(T-1)·(k+S) = {S}^{T - 1}·({k}+{S}) = "
            f"{_format_count(T, S, k)} evaluations, above the limit {MAX_ENUMERATION_COST:.0e}; use "
            f"causal_grad.monte_carlo_gradient (or causal_grad.monte_carlo_linearized_at_init) for this size"
        )
    return pis, eps


def exceeds_enumeration_limit(seq_len: int, vocab_size: int, num_pis: int) -> bool:
    """Whether ``S^(T-1)·(k+S)`` exceeds :data:`MAX_ENUMERATION_COST`, decided without forming a huge number:
    in logarithms first (with a margin far above round-off), exactly in integers only when close."""
    seq_len = check_int("seq_len", seq_len, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    num_pis = check_int("num_pis", num_pis, minimum=1)
    log_cost = (seq_len - 1) * math.log(vocab_size) + math.log(num_pis + vocab_size)
    if abs(log_cost - math.log(MAX_ENUMERATION_COST)) > 1e-6 * max(1.0, log_cost):
        return log_cost > math.log(MAX_ENUMERATION_COST)
    return enumeration_cost(seq_len, vocab_size, num_pis) > MAX_ENUMERATION_COST


def _format_count(seq_len: int, vocab_size: int, num_pis: int) -> str:
    """``S^(T-1)·(k+S)`` as ``1.23e+45`` (or ``10^12345.6`` beyond the float range), never an OverflowError."""
    log10 = (seq_len - 1) * math.log10(vocab_size) + math.log10(num_pis + vocab_size)
    if log10 < 300:
        return f"{enumeration_cost(seq_len, vocab_size, num_pis):.3g}"
    return f"10^{log10:.1f}"


def check_params(task: InContextTask, A1: ArrayLike, A2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``A1`` must be real finite ``(T, T)``, ``A2`` real finite ``(S, S)``; returned as float64."""
    T, S = task.seq_len, task.vocab_size
    return check_real_array("A1", A1, (T, T)), check_real_array("A2", A2, (S, S))


def chunking(num_contexts: int, num_pis: int, n: int, S: int) -> tuple[int, int]:
    """``(B, nchunks)``: contexts per chunk (a power of two, so that the per-chunk arrays stay near 2^21
    numbers whatever ``k`` and ``T``) and the number of chunks."""
    num_contexts = check_int("num_contexts", num_contexts, minimum=1)
    num_pis = check_int("num_pis", num_pis, minimum=1)
    n = check_int("n", n, minimum=1)
    S = check_int("S", S, minimum=1)
    per_context = num_pis + n * S + 4 * S * (n + 1) + 2 * S * S
    B = 1 << max(6, min(14, int(np.log2(max(1, (1 << 21) // per_context)))))
    B = min(B, 1 << int(np.ceil(np.log2(max(num_contexts, 1)))))
    return B, -(-num_contexts // B)


def context_tokens(start, B: int, n: int, S: int):
    """Tokens ``(B, n)`` int32 of contexts ``start … start+B-1`` (base-``S`` digits, position 0 most
    significant) and a validity mask ``(B,)`` (False past ``S^n``)."""
    B = check_int("B", B, minimum=1)
    n = check_int("n", n, minimum=1)
    S = check_int("S", S, minimum=1)
    idx = start + jnp.arange(B, dtype=jnp.int32)
    powers = jnp.asarray([S ** (n - 1 - i) for i in range(n)], dtype=jnp.int32)
    tokens = (idx[:, None] // powers[None, :]) % S
    return tokens, idx < S**n


@arrays(
    tokens=dict(kind="int", ndim=2),
    valid=dict(kind="bool", ndim=1),
    parents=dict(kind="int", ndim=1),
    table=dict(ndim=2),
    pis_flat=dict(ndim=2),
)
def effective_targets(tokens, valid, parents, table, pis_flat):
    """``Y`` ``(B, S, S)``: ``Y[c, q, b] = (1/(k S)) Σ_π W_π(c) π[q, b]`` for the contexts ``tokens`` ``(B, n)``.

    ``table`` is ``(S·S + S, k)``: rows ``a·S + b`` hold ``π[a, b]``, rows ``S·S + a`` hold ``μ_π(a)``, one column
    per ``π``; ``pis_flat`` is ``(k, S·S)``; ``parents`` int32 ``(n,)`` (traced, so one compilation serves every
    forest with the same ``n``).
    """
    B, n = tokens.shape
    k = table.shape[1]
    S = int(round(np.sqrt(pis_flat.shape[1])))
    par_tok = jnp.take(tokens, jnp.maximum(parents, 0), axis=1)  # (B, n): the parent's token (any, for roots)
    rows = jnp.where(parents[None, :] < 0, S * S + tokens, par_tok * S + tokens)  # row of `table` per factor

    def factor(i, W):  # (B, k) products over positions, one position at a time (memory B·k)
        return W * table[rows[:, i]]

    W0 = jnp.where(valid[:, None], 1.0, 0.0).astype(table.dtype) * jnp.ones((1, k), table.dtype)
    W = lax.fori_loop(0, n, factor, W0)
    Y = (W @ pis_flat) / (k * S)
    return Y.reshape(B, S, S)


@arrays(pis=dict(ndim=3), mus=dict(ndim=2))
def weight_table(pis: jax.Array, mus: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ``(S·S + S, k)`` table of :func:`effective_targets` and ``pis`` flattened to ``(k, S·S)``."""
    k, S, _ = pis.shape
    flat = pis.reshape(k, S * S)
    return jnp.concatenate([flat, mus], axis=1).T, flat
