"""Exact, vectorised gamma and Dirichlet variates on counter-mode Threefry words (docs/theory.md §1).

``jax.random.gamma`` costs about 1.3 µs per variate on a 2-core CPU, which alone caps a faithful task sampler
below 10,000 sequences/s. :func:`log_gamma_variates` draws ``log G``, ``G ~ Gamma(α)``, exactly:

* **Random bits.** Threefry-2x32 in counter mode (:mod:`causal_grad.kernels.threefry`), keyed by two words drawn
  from the caller's key (any key type); both 32-bit output words of every block are used.
* **Marsaglia–Tsang (2000)** for shape ``a ≥ 1`` (``a = α + 1`` when ``α < 1``): ``d = a − 1/3``,
  ``c = 1/√(9d)``, ``x ~ N(0,1)`` (``√2·erfinv`` of an open-interval uniform), ``v = (1 + c x)³``, accept
  when ``v > 0`` and ``log U < ℓ(x) = x²/2 + d − d v + d log v`` (``ℓ ≤ 0``); then ``log G(a) = log d + log v``.
* **The boost** ``G(α) = G(α + 1)·U'^{1/α}`` for ``α < 1``, in log space (``α = 0.1`` gives variates far below
  the float range, which must survive until normalisation). ``U'`` is the acceptance uniform recycled: given
  acceptance and ``x``, ``U`` is uniform on ``(0, e^{ℓ(x)})``, so ``log U' = log U − ℓ(x)`` is the log of a
  uniform independent of the accepted ``G(α + 1)``. One 64-bit block per attempt (normal + uniform) in float32.
* **Rejections without per-lane loops.** Variates are produced in groups of ``g`` (one group per sequence in
  the task sampler) from ``g + m`` candidates; the group takes its accepted candidates in order (the
  ``j``-th rejected slot takes the ``j``-th accepted spare, ranks by popcount of a rejection bit mask). The
  candidates are i.i.d. and, given the pattern of acceptances, the accepted values are i.i.d. ``Gamma``, so any
  rule that depends on the pattern only returns i.i.d. ``Gamma`` variates. ``m`` makes a group fail (more
  rejections than accepted spares) with probability ≤ ``min(1e-4, 0.01/G)`` for ``G`` groups; failed groups
  are redrawn whole, afresh, by a further pass of an exact ``lax.while_loop`` (needed in about 1% of calls).

Resolution: float32 uniforms lie on the grid ``(k + ½)·2^-23`` (float64: ``2^-52``), like ``jax.random``'s
``k·2^-23``; for ``α < 1`` a float32 ``log G`` below about ``log(2^-23)/α`` is therefore coarse, but such values
vanish after normalisation anyway (``e^{-159}`` relative to the row at ``α = 0.1``).

Dirichlet vectors are normalised exponentials of log-gammas (:func:`dirichlet`; batch-last
:func:`dirichlet_batch_last` for the samplers). The plain twins, :func:`log_gamma_reference` and
:func:`dirichlet_reference`, call ``jax.random.loggamma`` and ``jax.random.dirichlet``: they use other random
bits, so the two agree in distribution (moments and goodness-of-fit tests at fixed seeds, tests/test_kernels.py).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from .._validate import (
    check_array,
    check_concentration,
    check_dtype_enabled,
    check_fits_memory,
    check_int,
    check_key,
    check_positive_float,
    is_concrete,
)
from .threefry import key_words, uniforms
from .xla import materialize

__all__ = [
    "log_gamma_variates",
    "gamma",
    "dirichlet",
    "dirichlet_batch_last",
    "dirichlet_matrices_batch_last",
    "log_gamma_reference",
    "dirichlet_reference",
    "check_float_dtype",
    "check_draw",
]


def check_float_dtype(dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a NumPy dtype, float32 or float64; refuses others, and float64 outside x64 mode (JAX would
    silently give float32)."""
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return check_dtype_enabled("dtype", dtype)  # float64 outside x64 is refused, not silently float32


def _mt_candidates(kw, tag, alpha, shape, dtype):
    """Candidate ``log G(α)`` of ``shape``: the value where the Marsaglia–Tsang attempt accepted, NaN where not."""
    un, uu = uniforms(kw, tag, shape, dtype, 2)
    alpha = jnp.asarray(alpha, dtype)
    boost = alpha < 1
    a = jnp.where(boost, alpha + 1, alpha)
    d = a - np.asarray(1.0 / 3.0, dtype)
    c = lax.rsqrt(9 * d)
    x = np.asarray(math.sqrt(2.0), dtype) * jax.scipy.special.erfinv(2 * un - 1)
    v = 1 + c * x
    ok = v > 0
    v3 = jnp.where(ok, v * v * v, 1)
    logv = jnp.log(v3)
    ell = jnp.minimum(0.5 * x * x + d - d * v3 + d * logv, 0)  # ≤ 0 in exact arithmetic
    logu = jnp.log(uu)
    acc = ok & (logu < ell)
    val = jnp.log(d) + logv + jnp.where(boost, (logu - ell) / alpha, 0)
    return jnp.where(acc, val, jnp.nan)


@cache
def _mt_reject_rate(a: float) -> float:
    """Rejection probability of one Marsaglia–Tsang attempt at shape ``a ≥ 1`` (quadrature; ≤ 0.0484)."""
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    x = np.linspace(max(-1.0 / c, -12.0) + 1e-12, 12.0, 200_001)
    v = (1 + c * x) ** 3
    ell = np.minimum(0.5 * x * x + d - d * v + d * np.log(v), 0.0)
    dens = np.exp(-0.5 * x * x + ell) / math.sqrt(2 * math.pi)
    return float(1.0 - np.sum((dens[1:] + dens[:-1]) * np.diff(x)) / 2)


@cache
def _num_spares(g: int, r: float, target: float = 1e-4) -> int:
    """Smallest ``m`` with ``P(#rejected among g > #accepted among m spares) ≤ target`` (rejection rate ``r``)."""
    pr = [math.comb(g, k) * r**k * (1 - r) ** (g - k) for k in range(g + 1)]
    tail = [sum(pr[k + 1 :]) for k in range(g + 1)] + [0.0]
    for m in range(1, 4 * g + 16):
        fail = sum(math.comb(m, a) * (1 - r) ** a * r ** (m - a) * tail[min(a, g + 1)] for a in range(m + 1))
        if fail <= target:
            return m
    return 4 * g + 16  # pragma: no cover - unreachable for r <= 0.05


def _spares_for(g: int, alpha, target: float) -> int:
    try:
        a = float(alpha)
    except (TypeError, jax.errors.ConcretizationTypeError):
        r = 0.05  # traced α: the worst case over a ≥ 1
    else:
        r = min(0.05, 1.1 * _mt_reject_rate(a + 1.0 if a < 1 else a) + 1e-3)
    return _num_spares(g, r, float(f"{target:.1g}"))


def _ranks(words, n: int):
    """For 16-bit words ``(G1, nw, G2)`` of flags: ``(G1, n, G2)`` the number of set flags before each position,
    and ``(G1, G2)`` the total (by popcount: no prefix sums, which XLA's CPU backend computes slowly)."""
    pc = lax.population_count(words)
    prefix, acc = [], jnp.zeros(words.shape[:1] + words.shape[2:], jnp.uint32)
    for w in range(words.shape[1]):
        prefix.append(acc)
        acc = acc + pc[:, w]
    prefix = materialize(jnp.stack(prefix, axis=1))  # stored: tiny, and rebuilt per slot if fused
    rows = np.arange(n)
    low = ((np.uint32(1) << (rows % 16).astype(np.uint32)) - np.uint32(1)).astype(np.uint32)[:, None]

    def per_position(x: Any):  # the word of each position: a static repeat (broadcast + reshape, fused)
        G1, nw, G2 = x.shape
        return jnp.broadcast_to(x[:, :, None, :], (G1, nw, 16, G2)).reshape(G1, nw * 16, G2)[:, :n]

    rank = per_position(prefix) + lax.population_count(per_position(words) & low)
    return rank.astype(jnp.int32), acc.astype(jnp.int32)


def _compact(vals, g: int):
    """Groups are the ``(i, :, k)`` fibres of ``vals`` ``(G1, g + m, G2)`` (NaN = rejected). Slot ``j < g``
    keeps its own candidate if accepted; the ``r``-th rejected slot takes the ``r``-th accepted spare (slots
    ``g …``). Returns ``(G1, g, G2)`` values and ``ok`` ``(G1, G2)`` per group (enough accepted spares).
    Each group's candidates are one lane of a tile (one tile per sampler chunk: see ``_TILE``)."""
    G1, K, G2 = vals.shape
    m = K - g
    main, spare = vals[:, :g], vals[:, g:]
    nw = -(-g // 16)
    rej = jnp.isnan(vals)
    words = []
    for lo, hi in [(16 * w, min(16 * w + 16, g)) for w in range(nw)] + [
        (g + 16 * w, min(g + 16 * w + 16, K)) for w in range(-(-m // 16))
    ]:
        wd = jnp.zeros((G1, G2), jnp.uint32)
        for j in range(lo, hi):
            wd = wd | (rej[:, j].astype(jnp.uint32) << np.uint32(j - lo))
        words.append(wd)
    words = materialize(jnp.stack(words, axis=1))  # (G1, words, G2): 16 flags per word
    rank, n_rej = _ranks(words[:, :nw], g)  # rank of a slot among the rejected slots
    sw = words[:, nw:] ^ np.uint32(0xFFFF)  # accepted spares
    srank, n_acc = _ranks(sw, m)
    n_acc = n_acc - (16 * sw.shape[1] - m)  # padding bits of the last word count as accepted
    srank = materialize(jnp.where(rej[:, g:], -1, srank))  # rank among the accepted spares, -1 if rejected
    fill = jnp.zeros_like(main)
    for t in range(m):  # a select chain: XLA's CPU gathers are far slower
        fill = jnp.where(srank[:, t : t + 1] == rank, spare[:, t : t + 1], fill)
    return jnp.where(rej[:, :g], fill, main), n_rej <= n_acc


_TILE = 4096  # lanes per tile in the rejection step: one tile per 4,096-sequence chunk of the task sampler, so
# its output needs no re-layout (measured on a 2-core CPU: 8% less CPU time than 512-lane tiles, whose spares
# stayed in cache but whose untiling transposes cost more)


def _log_gamma_tiled(kw, alpha, g: int, G: int, dtype):
    """``(G1, g, G2)`` i.i.d. ``log Gamma(α)`` variates (scalar α): ``G1·G2 ≥ G`` groups of ``g`` (group
    ``(i, k)`` is lane ``i·G2 + k``; lanes beyond ``G`` are padding), tiled so that each tile's spares stay in cache.

    A ``lax.while_loop`` whose first pass draws every group; a group that failed (probability ≤ 0.01/G, so a
    second pass happens in about 1% of calls) is redrawn whole from fresh candidates in the next pass."""
    G2 = min(G, _TILE)
    G1 = -(-G // G2)
    m = _spares_for(g, alpha, min(1e-4, 0.01 / (G1 * G2)))

    def cond(state):
        return ~jnp.all(state[2])

    def body(state):
        it, out, ok = state
        o2, ok2 = _compact(materialize(_mt_candidates(kw, it, alpha, (G1, g + m, G2), dtype)), g)
        return it + 1, jnp.where(ok[:, None], out, o2), ok | ok2

    init = (jnp.uint32(0), jnp.zeros((G1, g, G2), dtype), jnp.zeros((G1, G2), bool))
    return lax.while_loop(cond, body, init)[1]


def _untile(x, G: int):
    """``(G1, *mid, G2) -> (*mid, G)``: lanes back to the last axis, padding dropped."""
    x = jnp.moveaxis(x, 0, -2)
    return x.reshape(x.shape[:-2] + (-1,))[..., :G]


def _log_gamma_groups(kw, alpha, g: int, G: int, dtype):
    """``(g, G)`` i.i.d. ``log Gamma(α)`` variates (scalar α), ``G`` groups of ``g`` along the first axis."""
    return _untile(_log_gamma_tiled(kw, alpha, g, G, dtype), G)


def _log_gamma_rows(kw, alpha, rows: int, lanes: int, dtype):
    """``(rows, lanes)`` i.i.d. ``log Gamma(α)`` variates, batch-last; rejection groups of at most 128 rows."""
    if rows <= 128:
        return _log_gamma_groups(kw, alpha, rows, lanes, dtype)
    nc = -(-rows // 128)
    g = -(-rows // nc)
    out = _log_gamma_groups(kw, alpha, g, nc * lanes, dtype)
    return out.reshape(g, nc, lanes).transpose(1, 0, 2).reshape(nc * g, lanes)[:rows]


def _softmax(lg, axis: int):
    """Normalise ``exp(lg)`` along ``axis``, the maximum subtracted first so that nothing overflows or underflows
    to 0/0 (``α = 0.1`` gives log-gammas far below the float range)."""
    e = jnp.exp(lg - jnp.max(lg, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def dirichlet_batch_last(
    kw: tuple[jax.Array, jax.Array], alpha: float | ArrayLike, S: int, n: int, lanes: int, dtype: DTypeLike
) -> jax.Array:
    """``(n, S, lanes)``: ``n·lanes`` independent ``Dirichlet(α·1_S)`` vectors along axis 1, batch-last, from the
    counter-mode key ``kw`` (:func:`~causal_grad.kernels.threefry.key_words`); scalar ``alpha``, static sizes."""
    if n * S <= 128:  # one rejection group per lane: normalise in the tiled layout, then untile once
        lg = _log_gamma_tiled(kw, alpha, n * S, lanes, dtype)
        G1, _, G2 = lg.shape
        return _untile(_softmax(lg.reshape(G1, n, S, G2), 2), lanes)
    return _softmax(_log_gamma_rows(kw, alpha, n * S, lanes, dtype).reshape(n, S, lanes), 1)


def _dirichlet_rows(kw, alpha, S: int, n: int, lanes: int, dtype):
    """``(lanes, n, S)``: the same in the standard layout."""
    return jnp.transpose(dirichlet_batch_last(kw, alpha, S, n, lanes, dtype), (2, 0, 1))


def _mt_log_gamma_ge1(key, a, shape, dtype):
    """log of Gamma(a) variates for a >= 1, elementwise shapes (Marsaglia–Tsang, rejected lanes redrawn)."""
    d = a - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)

    def draw(k):
        kx, ku = jax.random.split(k)
        x = jax.random.normal(kx, shape, dtype)
        u = jax.random.uniform(ku, shape, dtype, minval=jnp.finfo(dtype).tiny)
        v = 1.0 + c * x
        v3 = v * v * v
        ok = v > 0
        v3s = jnp.where(ok, v3, 1.0)
        logv = jnp.log(v3s)
        acc = ok & (jnp.log(u) < 0.5 * x * x + d - d * v3s + d * logv)
        return acc, jnp.log(d) + logv

    k0, kloop = jax.random.split(key)
    acc, val = draw(k0)

    def cond(state):
        return ~jnp.all(state[1])

    def body(state):
        k, acc, val = state
        k, sub = jax.random.split(k)
        acc2, val2 = draw(sub)
        return k, acc | acc2, jnp.where((~acc) & acc2, val2, val)

    _, _, val = lax.while_loop(cond, body, (kloop, acc, val))
    return val


_NO_S = object()


def check_draw(
    key: jax.Array, alpha: float | ArrayLike, shape: Sequence[int], S: Any = _NO_S
) -> tuple[jax.Array, tuple[int, ...], Any]:
    """Validate the arguments of a draw before anything is computed: a ``jax.random`` key, ``alpha > 0`` (a
    finite scalar, or a real array whose values are checked when concrete), ``shape`` a sequence of integers
    ``>= 0`` and ``S >= 1`` (when given). Returns ``(key, shape tuple, S)``."""
    key = check_key("key", key)
    if _static_alpha(alpha) is not None or isinstance(alpha, (bool, str)) or alpha is None:
        check_positive_float("alpha", alpha)
    else:
        a = check_array("alpha", alpha)
        if is_concrete(a) and not np.all(np.isfinite(np.asarray(a)) & (np.asarray(a) > 0)):
            raise ValueError("alpha must be finite and > 0 everywhere")
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"shape must be a sequence of integers, got {type(shape).__name__}")
    shape = tuple(check_int(f"shape[{k}]", d, minimum=0) for k, d in enumerate(shape))
    if S is not _NO_S:
        S = check_int("S", S, minimum=1)
    return key, shape, S


def _static_alpha(alpha):
    """A Python float for a concrete scalar ``alpha`` (compiled in, so the spare count fits its rejection rate),
    else ``None`` (a traced or array ``alpha`` is passed as an argument)."""
    if isinstance(alpha, (numbers.Real, np.floating, np.integer)) and not isinstance(alpha, bool):
        return float(alpha)
    return None


@partial(jax.jit, static_argnames=("alpha_s", "shape", "dtype"))
def _log_gamma_jit(key, alpha, alpha_s, shape, dtype):
    alpha = alpha_s if alpha_s is not None else alpha
    n = math.prod(shape)
    if jnp.ndim(alpha) != 0:
        alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype), shape)
        k1, k2 = jax.random.split(key)
        boost = alpha < 1
        lg = _mt_log_gamma_ge1(k1, jnp.where(boost, alpha + 1.0, alpha), shape, dtype)
        u = jax.random.uniform(k2, shape, dtype, minval=jnp.finfo(dtype).tiny)
        return lg + jnp.where(boost, jnp.log(u) / alpha, 0.0)
    if n == 0:
        return jnp.zeros(shape, dtype)
    g = min(n, 100)
    G = -(-n // g)
    return _log_gamma_groups(key_words(key), alpha, g, G, dtype).T.reshape(-1)[:n].reshape(shape)


def log_gamma_variates(
    key: jax.Array, alpha: float | ArrayLike, shape: Sequence[int], dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """``log G`` with ``G ~ Gamma(alpha, 1)``, elementwise, for any ``alpha > 0``; shape ``shape``.

    A scalar ``alpha`` (the common case) uses the fast grouped sampler of the module docstring. An array
    ``alpha`` (broadcast against ``shape``) uses a per-element Marsaglia–Tsang loop with ``jax.random``.
    """
    key, shape, _ = check_draw(key, alpha, shape)
    a_s = _static_alpha(alpha)
    dtype = check_float_dtype(dtype)
    _check_alpha_floor(alpha, dtype)
    return _log_gamma_jit(key, None if a_s is not None else alpha, a_s, shape, dtype)


def _check_alpha_floor(alpha, dtype) -> None:
    """``alpha`` (every entry, when concrete) at least the dtype's concentration floor (finite draws; see
    :func:`causal_grad._validate.concentration_floor`)."""
    if _static_alpha(alpha) is not None:
        check_concentration("alpha", alpha, dtype)
    elif is_concrete(alpha) and np.size(alpha):
        check_concentration("alpha", float(np.min(np.asarray(alpha))), dtype)


def gamma(key: jax.Array, alpha: float | ArrayLike, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
    """``Gamma(alpha, 1)`` variates (may underflow to 0 for tiny alpha; use :func:`log_gamma_variates`)."""
    return jnp.exp(log_gamma_variates(key, alpha, shape, dtype))


@partial(jax.jit, static_argnames=("alpha_s", "shape", "S", "dtype"))
def _dirichlet_jit(key, alpha, alpha_s, shape, S, dtype):
    alpha = alpha_s if alpha_s is not None else alpha
    rows = math.prod(shape)
    if rows == 0:
        return jnp.zeros(shape + (S,), dtype)
    per = max(1, min(rows, 100 // S))  # vectors per lane: about 100 variates per rejection group
    lanes = -(-rows // per)
    d = _dirichlet_rows(key_words(key), alpha, S, per, lanes, dtype)  # (lanes, per, S)
    return d.reshape(lanes * per, S)[:rows].reshape(shape + (S,))


def dirichlet(
    key: jax.Array, alpha: float | ArrayLike, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """``Dirichlet(α·1_S)`` vectors of shape ``(*shape, S)``, normalised in log space (scalar ``alpha``)."""
    key, shape, S = check_draw(key, alpha, shape, S)
    if np.ndim(alpha) != 0:
        raise TypeError(
            f"alpha must be a real scalar (one concentration for every coordinate), got shape {np.shape(alpha)}"
        )
    a_s = _static_alpha(alpha)
    dtype = check_float_dtype(dtype)
    _check_alpha_floor(alpha, dtype)
    check_fits_memory(
        "shape/S",
        3 * math.prod(shape) * S * jnp.dtype(dtype).itemsize,
        f"3 arrays of prod(shape)·S = {math.prod(shape)}·{S} {jnp.dtype(dtype).name} (log-gammas, the "
        f"normalised vectors)",
    )
    return _dirichlet_jit(key, None if a_s is not None else alpha, a_s, shape, S, dtype)


@partial(jax.jit, static_argnames=("alpha", "batch", "S", "dtype"))
def _dirichlet_matrices_jit(key, alpha, batch, S, dtype):
    return dirichlet_batch_last(key_words(key), alpha, S, S, batch, dtype)


def dirichlet_matrices_batch_last(key: jax.Array, alpha: float, batch: int, S: int, dtype: DTypeLike) -> jax.Array:
    """``batch`` matrices with i.i.d. ``Dirichlet(α·1_S)`` rows, batch-last ``(S, S, batch)`` (scalar ``alpha``,
    static ``batch``, ``S``; ``dtype`` checked by :func:`check_float_dtype`). Jitted; call it traced or not."""
    check_concentration("alpha", alpha, dtype)
    return _dirichlet_matrices_jit(key, alpha, batch, S, dtype)


# ---------------------------------------------------------------------- plain twins (jax.random)
def log_gamma_reference(
    key: jax.Array, alpha: float | ArrayLike, shape: Sequence[int], dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """The plain twin of :func:`log_gamma_variates`: ``jax.random.loggamma`` (same law, other random bits)."""
    key, shape, _ = check_draw(key, alpha, shape)
    return jax.random.loggamma(key, jnp.asarray(alpha, check_float_dtype(dtype)), shape, check_float_dtype(dtype))


def dirichlet_reference(
    key: jax.Array, alpha: float, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """The plain twin of :func:`dirichlet`: ``jax.random.dirichlet`` with ``α·1_S`` (same law, other bits)."""
    key, shape, S = check_draw(key, alpha, shape, S)
    alpha = check_positive_float("alpha", alpha)  # one concentration for every coordinate
    dtype = check_float_dtype(dtype)
    return jax.random.dirichlet(key, jnp.full((S,), alpha, dtype), shape, dtype)
