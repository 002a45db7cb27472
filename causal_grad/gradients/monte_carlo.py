"""Monte Carlo estimates, with standard errors, of the population gradient (sizes enumeration cannot reach).

* :func:`monte_carlo_gradient` — ``L``, ``dL/dA1``, ``dL/dA2`` of the reduced model at any ``(A1, A2)``: the mean
  of per-sequence losses and per-sequence automatic-differentiation gradients
  (:func:`causal_grad.models.reduced.reduced_loss` on one sequence with its soft target ``π[q]``).
* :func:`monte_carlo_linearized_at_init` — ``G = lim_{β0→0} −(∂L/∂A1)/β0`` at ``A1 = 0``, ``A2 = β0·I``
  (docs/theory.md §4) from the per-sequence linearized estimator of :mod:`causal_grad.gradients.linearized`: unbiased
  (no ``O(β0)`` bias, unlike a finite-``β0`` gradient) and Rao–Blackwellised over the query (each sampled
  context is evaluated with all ``S`` queries, weight ``1/S`` each, targets ``π[q]``).

Sequences come from the task's prior (``pis=None``: a fresh ``π`` per sequence) or, with ``pis`` given, from
the population of :func:`causal_grad.exact_population_gradient` (``π`` uniform over ``pis``), so the two can be
compared directly. Everything runs in float64 inside a jit-compiled ``lax.fori_loop`` over batches that
accumulates sums and sums of squares (called on consecutive ranges of batches, at most :data:`CHUNKS` calls,
for a progress bar: the sums are added in the same order as in one loop); the standard error of each entry
is ``sqrt(var/N)`` with the unbiased per-sequence variance ``var``. Batch ``b`` uses the key ``fold_in(key, b)``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .._validate import check_int, check_key, check_probability, check_transition_matrices
from .._x64 import x64
from ..models.reduced import reduced_loss
from ..progress import progress
from ..reprs import compact_repr
from ..task import InContextTask
from .enumerate import check_params, check_task
from .linearized import linearized_terms

__all__ = ["MonteCarloGradient", "LinearizedEstimate", "monte_carlo_gradient", "monte_carlo_linearized_at_init"]


class MonteCarloGradient(NamedTuple):
    """Means over ``num`` sequences of the loss and of ``dL/dA1``, ``dL/dA2``, with per-entry standard errors."""

    loss: jax.Array
    dA1: jax.Array
    dA2: jax.Array
    se_loss: jax.Array
    se_dA1: jax.Array
    se_dA2: jax.Array
    num: int

    def __repr__(self) -> str:  # arrays as dtype[shape] (causal_grad.reprs)
        return compact_repr(self)


class LinearizedEstimate(NamedTuple):
    """Monte Carlo ``G ≈ −(∂L/∂A1)/β0`` at init (``(T, T)``), its per-entry standard errors, and ``num``."""

    G: jax.Array
    se: jax.Array
    num: int

    def __repr__(self) -> str:
        return compact_repr(self)


def _draw(task, key, batch, pis):
    """``(tokens (B, T), pi (B, S, S))`` in float64: fresh ``π`` from the prior, or uniform over ``pis``."""
    if pis is None:
        tokens, _, pi = task.sample_with_pi(key, batch, jnp.float64)
        return tokens, pi
    ki, ks = jax.random.split(key)
    idx = jax.random.randint(ki, (batch,), 0, pis.shape[0])
    pi = pis[idx]
    return task.sample_given_pi(ks, pi), pi


def _moments(x, N):
    """mean and standard error from (sum, sum of squares) over ``N`` samples."""
    s, s2 = x
    mean = s / N
    var = jnp.maximum(s2 - N * mean * mean, 0.0) / max(N - 1, 1)
    return mean, jnp.sqrt(var / N)


#: At most this many jitted calls (ranges of batches) per estimate, one progress-bar update each.
CHUNKS = 20


def _run_chunks(step, acc, nb: int, desc: str):
    """``acc = step(acc, lo, hi)`` over consecutive batch ranges ``[lo, hi)`` covering ``0 … nb-1``."""
    n = min(nb, CHUNKS)
    edges = [nb * c // n for c in range(n + 1)]
    with progress(total=nb, desc=desc, unit="batch") as bar:
        for lo, hi in zip(edges[:-1], edges[1:]):
            acc = jax.block_until_ready(step(acc, jnp.int32(lo), jnp.int32(hi)))
            bar.update(hi - lo)
    return acc


@partial(jax.jit, static_argnames=("task", "batch"))
def _mc_grad(task, key, A1, A2, pis, eps, acc, lo, hi, *, batch):
    def one(t, y):
        return jax.value_and_grad(reduced_loss, argnums=(0, 1))(A1, A2, t[None], y[None], eps)

    def body(b, acc):
        tokens, pi = _draw(task, jax.random.fold_in(key, b), batch, pis)
        y = jnp.take_along_axis(pi, tokens[:, -1][:, None, None], axis=1)[:, 0, :]
        l, (g1, g2) = jax.vmap(one)(tokens, y)
        return tuple((s + jnp.sum(x, 0), s2 + jnp.sum(x * x, 0)) for (s, s2), x in zip(acc, (l, g1, g2)))

    return lax.fori_loop(lo, hi, body, acc)


def _check_mc(task, key, eps, num, batch, pis) -> tuple[jax.Array, float, int, int | None, np.ndarray | None]:
    check_task(task)
    # The task builds its jitted sampler lazily (a cached property holding device constants); build it here,
    # outside any trace, so that the constants are concrete arrays rather than tracers of our jit.
    task.sampler  # noqa: B018
    key = check_key("key", key)
    eps = check_probability("eps", eps, open_high=True)
    num = check_int("num", num, minimum=2)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    if pis is not None:
        pis = check_transition_matrices("pis", pis, task.vocab_size)
    return key, eps, num, batch, pis


def _batches(num, batch, default):
    batch = min(batch if batch is not None else default, num)
    nb = -(-num // batch)
    return batch, nb


def monte_carlo_gradient(
    task: InContextTask,
    key: jax.Array,
    A1: ArrayLike,
    A2: ArrayLike,
    *,
    eps: float,
    num: int,
    batch: int | None = None,
    pis: ArrayLike | None = None,
) -> MonteCarloGradient:
    """Monte Carlo ``(L, dL/dA1, dL/dA2)`` of the reduced model with standard errors (float64).

    Args:
        task: a :class:`causal_grad.InContextTask`.
        key: a ``jax.random`` key.
        A1: first-layer position scores ``(T, T)``.
        A2: second-layer token scores ``(S, S)``.
        eps: readout smoothing ``ε ∈ [0, 1)``.
        num: number of sequences (rounded up to a whole number of batches; the result's ``num`` is the count).
        batch: sequences per jit step (default: about ``2^20 / T²``, memory ``~ batch·T²`` floats).
        pis: optional ``(k, S, S)``: draw ``π`` uniformly from these (the exact functions' population) instead
            of the task's prior.
    """
    key, eps, num, batch, pis = _check_mc(task, key, eps, num, batch, pis)
    A1, A2 = check_params(task, A1, A2)
    T = task.seq_len
    batch, nb = _batches(num, batch, max(16, (1 << 20) // (T * T)))
    N = batch * nb
    with x64():
        pis_j = None if pis is None else jnp.asarray(pis, jnp.float64)
        A1_j, A2_j = jnp.asarray(A1, jnp.float64), jnp.asarray(A2, jnp.float64)
        zero = tuple((jnp.zeros(s, jnp.float64), jnp.zeros(s, jnp.float64)) for s in ((), A1_j.shape, A2_j.shape))
        acc = _run_chunks(
            lambda a, lo, hi: _mc_grad(task, key, A1_j, A2_j, pis_j, jnp.float64(eps), a, lo, hi, batch=batch),
            zero,
            nb,
            "Monte Carlo gradient",
        )
        (l, sl), (g1, s1), (g2, s2) = (_moments(a, N) for a in acc)
        return MonteCarloGradient(l, g1, g2, sl, s1, s2, N)


@partial(jax.jit, static_argnames=("task", "batch"))
def _mc_lin(task, key, pis, eps, acc, lo, hi, *, batch):
    """Sums of the per-sequence estimator ``G_b[i,j] = c_i (K_b[i,j] − r_b[i])`` and of its squares, without
    forming ``(batch, T, T)`` tensors: ``K_b[i,j] = Σ_q g[b,q,i] E[b,q,j]`` reduces to ``g[b, s_j, i]`` at graph
    positions ``j`` (one query matches ``s_j``) and to ``Σ_q g[b,q,i]`` at ``j = T-1``; ``r_b[i] = Σ_q g[b,q,i]
    v[b,q,i]``. So ``Σ_b K``, ``Σ_b K²`` and ``Σ_b K r`` are three ``(T, B·S) @ (B·S, T)`` products."""
    T, S = task.seq_len, task.vocab_size
    cnt = jnp.arange(1, T + 1, dtype=jnp.float64)
    c = (1.0 - eps) / (cnt * T)
    # j ≤ i; row 0 (a single entry, centred to exactly 0) is left out so that round-off cannot leak into it
    mask = jnp.tril(jnp.ones((T, T), dtype=bool)).at[0, 0].set(False)

    def body(b, acc):
        tokens, pi = _draw(task, jax.random.fold_in(key, b), batch, pis)
        q = jnp.broadcast_to(jnp.arange(S, dtype=tokens.dtype)[None, :, None], (batch, S, 1))
        seq = jnp.concatenate([jnp.broadcast_to(tokens[:, None, :-1], (batch, S, T - 1)), q], -1)
        Y = pi / S  # Y[b, q] = π_b[q] / S: every query, weight 1/S
        g, E = linearized_terms(seq.reshape(batch * S, T), Y.reshape(batch * S, S), eps)  # (B·S, T)
        v = jnp.cumsum(E, axis=1) / cnt  # v[b,q,i] = (1/(i+1)) Σ_{j≤i} 1[s_j = q]
        r = jnp.sum((g * v).reshape(batch, S, T), axis=1)  # r_b[i]
        gsum = jnp.sum(g.reshape(batch, S, T), axis=1)  # K_b[i, T-1]
        gr = (g.reshape(batch, S, T) * r[:, None, :]).reshape(batch * S, T)
        sK = g.T @ E
        sK2 = (g * g).T @ E
        sK2 = sK2.at[:, T - 1].set(jnp.sum(gsum * gsum, axis=0))
        sKr = gr.T @ E
        sr, sr2 = jnp.sum(r, axis=0), jnp.sum(r * r, axis=0)
        G1 = c[:, None] * (sK - sr[:, None])
        G2 = (c * c)[:, None] * (sK2 - 2.0 * sKr + sr2[:, None])
        return acc[0] + jnp.where(mask, G1, 0.0), acc[1] + jnp.where(mask, G2, 0.0)

    return lax.fori_loop(lo, hi, body, acc)


def monte_carlo_linearized_at_init(
    task: InContextTask, key: jax.Array, *, eps: float, num: int, batch: int | None = None, pis: ArrayLike | None = None
) -> LinearizedEstimate:
    """Monte Carlo ``G = lim_{β0→0} −(∂L/∂A1)/β0`` at ``A1 = 0``, ``A2 = β0·I`` with standard errors.

    Unbiased for :func:`causal_grad.linearized_gradient_at_init` (same population when ``pis`` is given);
    what claim C1 needs at large ``T``. Arguments as in :func:`monte_carlo_gradient`.
    """
    key, eps, num, batch, pis = _check_mc(task, key, eps, num, batch, pis)
    T = task.seq_len
    batch, nb = _batches(num, batch, max(64, (1 << 18) // (T * task.vocab_size)))
    N = batch * nb
    with x64():
        pis_j = None if pis is None else jnp.asarray(pis, jnp.float64)
        zero = (jnp.zeros((T, T), jnp.float64), jnp.zeros((T, T), jnp.float64))
        acc = _run_chunks(
            lambda a, lo, hi: _mc_lin(task, key, pis_j, jnp.float64(eps), a, lo, hi, batch=batch),
            zero,
            nb,
            "Monte Carlo G at init",
        )
        G, se = _moments(acc, N)
        return LinearizedEstimate(G, se, N)
