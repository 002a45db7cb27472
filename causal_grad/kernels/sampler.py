"""Batch-last pieces of the task samplers (docs/theory.md §1): every array carries the batch on its last axis,
so every step is elementwise over the batch.

* :func:`cdf_batch_last`: cumulative rows by explicit partial sums (XLA's CPU reductions over a leading axis are
  slow); :func:`draw_from_cdf`: the inverse-CDF draw ``#{c : u ≥ cdf[c]}``; :func:`row_at`: ``table[idx[b], :, b]``
  by a select chain for small tables (XLA's CPU gathers are far slower);
* :func:`random_lanes`: uniforms and one uniform word per lane from counter-mode Threefry words;
  :func:`uniform_token`: ``⌊w·S/2^32⌋`` in exact integer arithmetic (probabilities within ``S/2^32`` of ``1/S``);
* :func:`forest_tokens_batch_last`: the tokens of a forest task for given matrices: roots from ``μ_π``
  (:func:`~causal_grad.kernels.gth.stationary_batch_last`), children from their parent's row, the query uniform.

Plain twins on the same random bits (so they agree bit for bit, tests/test_kernels.py):
:func:`forest_tokens_reference` (NumPy, one sequence and one position at a time) and
:func:`uniform_token_reference` (Python integers).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from .gth import stationary_batch_last
from .threefry import counter_words, key_words, unit_f32, unit_f64
from .xla import materialize

__all__ = [
    "TOKEN_DTYPE",
    "UNROLL_MAX_POSITIONS",
    "cdf_batch_last",
    "draw_from_cdf",
    "row_at",
    "random_lanes",
    "uniform_token",
    "forest_tokens_batch_last",
    "forest_tokens_reference",
    "uniform_token_reference",
]

#: dtype of every token array
TOKEN_DTYPE = jnp.int32
#: longer graphs draw their tokens in a ``lax.scan`` (compile time stays flat)
UNROLL_MAX_POSITIONS = 64


def cdf_batch_last(p: jax.Array) -> jax.Array:
    """Cumulative sums along axis ``-2`` without the last entry: ``(..., S, B) -> (..., S-1, B)``."""
    S = p.shape[-2]
    acc = p[..., 0, :]
    out = [acc]
    for c in range(1, S - 1):
        acc = acc + p[..., c, :]
        out.append(acc)
    return materialize(jnp.stack(out, axis=-2))


def draw_from_cdf(cdf_row: jax.Array, u: jax.Array) -> jax.Array:
    """Inverse-CDF draw per lane: ``#{c : u ≥ cdf_row[c]}`` with ``cdf_row`` ``(S-1, B)``, ``u`` ``(B,)``."""
    t = jnp.zeros(u.shape, TOKEN_DTYPE)
    for c in range(cdf_row.shape[0]):  # explicit adds: XLA's CPU reductions over a leading axis are slow
        t = t + (u >= cdf_row[c]).astype(TOKEN_DTYPE)
    return t


def row_at(table: jax.Array, idx: jax.Array) -> jax.Array:
    """``table[idx[b], :, b]`` for ``table`` ``(R, C, B)`` and ``idx`` ``(B,)``: ``(C, B)`` (a select chain for
    small ``R``: XLA's CPU gathers are far slower)."""
    R = table.shape[0]
    if R > 16:
        return jnp.take_along_axis(table, idx.astype(jnp.int32)[None, None, :], axis=0)[0]  # idx may be float
    row = table[0]
    for a in range(1, R):
        row = jnp.where(idx[None, :] == a, table[a], row)
    return row


def random_lanes(key: jax.Array, rows: int, B: int, dtype: DTypeLike) -> tuple[jax.Array, jax.Array]:
    """``rows`` uniforms on (0, 1) per lane ``(rows, B)`` and one uniform uint32 word per lane ``(B,)``."""
    kw = key_words(key)
    per = 1 if jnp.dtype(dtype) == jnp.float32 else 2
    need = per * rows + 1
    w0, w1 = counter_words(kw, 0, (-(-need // 2), B))
    w = jnp.concatenate([w0, w1], axis=0)
    if per == 1:
        u = unit_f32(w[:rows])
    else:
        u = unit_f64(w[0 : 2 * rows : 2], w[1 : 2 * rows : 2]).astype(dtype)
    return u, w[need - 1]


def uniform_token(w: jax.Array, S: int) -> jax.Array:
    """``⌊w·S / 2^32⌋`` for uint32 words ``w`` (exact integer arithmetic for ``S < 2^16``)."""
    if S >= 2**16:
        return jnp.minimum((unit_f32(w) * S).astype(TOKEN_DTYPE), S - 1)
    S32 = np.uint32(S)
    hi, lo = w >> np.uint32(16), w & np.uint32(0xFFFF)
    return ((hi * S32 + ((lo * S32) >> np.uint32(16))) >> np.uint32(16)).astype(TOKEN_DTYPE)


def uniform_token_reference(w: ArrayLike, S: int) -> np.ndarray:
    """The plain twin of :func:`uniform_token` for ``S < 2^16``: ``(w·S) >> 32`` in Python integers."""
    return np.array([(int(x) * S) >> 32 for x in np.asarray(w).reshape(-1)], np.int64).reshape(np.shape(w))


def forest_tokens_batch_last(
    key: jax.Array, pi: jax.Array, parents: Sequence[int] | np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """Tokens ``(T, B)`` (graph positions, then the query) and the query ``(B,)`` of a forest task with parent
    list ``parents`` (``-1`` = root, static) for batch-last matrices ``pi`` ``(S, S, B)``.

    With ``u, w = random_lanes(key, n, B)``: a root draws ``s_i`` from ``μ_π`` and a child from
    ``π[s_{p(i)}]``, both by inverse CDF of ``u[i]``; the query is ``uniform_token(w, S)``."""
    par = np.asarray(parents, dtype=np.int32).reshape(-1)
    S, B, n = pi.shape[0], pi.shape[-1], par.size
    mu = stationary_batch_last(pi)
    cdf = cdf_batch_last(pi)  # (S, S-1, B)
    cdf_mu = cdf_batch_last(mu[None])[0]  # (S-1, B)
    u, wq = random_lanes(key, n, B, pi.dtype)

    if n <= UNROLL_MAX_POSITIONS and S < 2**24:  # static graph: one elementwise step per position
        toks = []  # tokens as small floats (exact below 2**24) so that materialize divides in SIMD
        for i in range(n):
            p = int(par[i])
            row = cdf_mu if p < 0 else row_at(cdf, toks[p])
            toks.append(materialize(draw_from_cdf(row, u[i]).astype(pi.dtype)))
        tok = jnp.stack(toks).astype(TOKEN_DTYPE) if n else jnp.zeros((0, B), TOKEN_DTYPE)
    else:

        def step(tok, inp):
            i, ui = inp
            p = jnp.asarray(par)[i]
            parent_tok = lax.dynamic_index_in_dim(tok, jnp.maximum(p, 0), 0, keepdims=False)
            row = jnp.where(p < 0, cdf_mu, row_at(cdf, parent_tok))
            return lax.dynamic_update_index_in_dim(tok, draw_from_cdf(row, ui), i, 0), None

        tok, _ = lax.scan(step, jnp.zeros((n, B), TOKEN_DTYPE), (jnp.arange(n), u))
    q = uniform_token(wq, S)
    return jnp.concatenate([tok, q[None, :]], axis=0), q


def forest_tokens_reference(
    pi: ArrayLike, mu: ArrayLike, u: ArrayLike, wq: ArrayLike, parents: Sequence[int]
) -> np.ndarray:
    """The plain twin of :func:`forest_tokens_batch_last` on the same inputs: batch-last ``pi`` ``(S, S, B)``,
    its stationary laws ``mu`` ``(S, B)``, the uniforms ``u`` ``(n, B)`` and words ``wq`` ``(B,)`` of
    :func:`random_lanes`; one sequence, one position at a time, cumulative rows summed left to right in the
    dtype of ``pi``. Returns tokens ``(T, B)`` (``S < 2^16``)."""
    pi, mu, u, wq = np.asarray(pi), np.asarray(mu), np.asarray(u), np.asarray(wq)
    S, B, n = pi.shape[0], pi.shape[-1], len(parents)
    out = np.zeros((n + 1, B), np.int64)
    for b in range(B):
        for i, p in enumerate(parents):
            row = mu[:, b] if p < 0 else pi[out[p, b], :, b]
            acc, t = row.dtype.type(0), 0
            for c in range(S - 1):
                acc = row[c] if c == 0 else row.dtype.type(acc + row[c])
                t += int(u[i, b] >= acc)
            out[i, b] = t
        out[n, b] = (int(wq[b]) * S) >> 32
    return out
