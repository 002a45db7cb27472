"""Counter-mode Threefry-2x32 random words and open-interval uniforms built from them (docs/theory.md §1).

:func:`threefry2x32` is the block function of JAX's default PRNG, 20 rounds (Salmon et al. 2011), bit for bit;
unrolled, it fuses with the arithmetic that consumes it. Its plain twin is :func:`threefry2x32_reference`
(``jax.extend.random.threefry_2x32``); they agree bit for bit (tested).

Counter mode: under a key of two words (:func:`key_words`, drawn from the caller's key), the block of counter
``(flat index, tag)`` gives two independent uint32 words per array element (:func:`counter_words`).

Uniforms: float32 ``(k + ½)·2^-23`` with ``k`` the top 23 bits of a word (:func:`unit_f32`), float64
``(k + ½)·2^-52`` with ``k`` 52 bits of two words (:func:`unit_f64`): open-interval grids symmetric about ½,
every step exact.
"""

from __future__ import annotations

import math

import jax
import jax.extend.random as jer
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import DTypeLike

from .xla import materialize

__all__ = ["threefry2x32", "threefry2x32_reference", "key_words", "counter_words", "unit_f32", "unit_f64", "uniforms"]

_ROT = (13, 15, 26, 6, 17, 29, 16, 24)


def _rotl(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32, 20 rounds, unrolled: the block ``(x0, x1)`` (uint32 arrays of one shape) under the key
    ``(k0, k1)`` (uint32 scalars). Equals :func:`threefry2x32_reference`."""
    k2 = k0 ^ k1 ^ np.uint32(0x1BD11BDA)
    ks = (k0, k1, k2)
    x0 = x0 + k0
    x1 = x1 + k1
    for r in range(20):
        x0 = x0 + x1
        x1 = _rotl(x1, _ROT[r % 8])
        x1 = x1 ^ x0
        if r % 4 == 3:
            j = r // 4 + 1
            x0 = x0 + ks[j % 3]
            x1 = x1 + ks[(j + 1) % 3] + np.uint32(j)
    return x0, x1


def threefry2x32_reference(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The plain twin of :func:`threefry2x32`: JAX's own block function on the same words."""
    x0, x1 = jnp.asarray(x0, jnp.uint32), jnp.asarray(x1, jnp.uint32)
    out = jer.threefry_2x32(
        jnp.stack([jnp.asarray(k0, jnp.uint32), jnp.asarray(k1, jnp.uint32)]),
        jnp.concatenate([x0.reshape(-1), x1.reshape(-1)]),
    )
    return out[: x0.size].reshape(x0.shape), out[x0.size :].reshape(x1.shape)


def key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Two uint32 words drawn from ``key`` (any key implementation, typed or raw): the counter-mode key."""
    kw = materialize(jax.random.bits(key, (2,), jnp.uint32))  # stored: keeps the key's hash out of big fusions
    return kw[0], kw[1]


def counter_words(
    kw: tuple[jax.Array, jax.Array], tag: int | jax.Array, shape: tuple[int, ...]
) -> tuple[jax.Array, jax.Array]:
    """Two uint32 arrays of ``shape``: the Threefry block of counter ``(flat index, tag)`` under ``kw``."""
    n = math.prod(shape)
    if n >= 2**32:
        raise ValueError(f"at most 2**32 - 1 random blocks per call, got shape {tuple(shape)}")
    ctr = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for ax in range(len(shape) - 1, -1, -1):  # row-major flat index, elementwise (no reshaped 1-D iota)
        ctr = ctr + lax.broadcasted_iota(jnp.uint32, shape, ax) * np.uint32(stride)
        stride *= shape[ax]
    return threefry2x32(kw[0], kw[1], ctr, jnp.asarray(tag, jnp.uint32))


def unit_f32(w: jax.Array) -> jax.Array:
    """``(k + ½)·2^-23`` with ``k`` the top 23 bits of ``w``: a uniform on (0, 1) in float32. Every step is
    exact (``2k + 1 < 2^24``), so the grid is symmetric about ½ and ``2u − 1`` is exact too."""
    return ((w >> np.uint32(9)).astype(jnp.float32) + 0.5) * np.float32(2.0**-23)


def unit_f64(hi: jax.Array, lo: jax.Array) -> jax.Array:
    """``(k + ½)·2^-52`` with ``k`` 52 bits of ``(hi, lo)``: a uniform on (0, 1) in float64 (exact arithmetic)."""
    k = (hi >> np.uint32(12)).astype(jnp.float64) * 2.0**32 + lo.astype(jnp.float64)
    return (k + 0.5) * 2.0**-52


def uniforms(
    kw: tuple[jax.Array, jax.Array], tag: int | jax.Array, shape: tuple[int, ...], dtype: DTypeLike, count: int
) -> list[jax.Array]:
    """``count`` independent open-interval uniforms of ``shape`` (one 32-bit word each in float32, two in
    float64), drawn from the blocks with tags ``4·tag, 4·tag + 1, …``."""
    dtype = jnp.dtype(dtype)
    out, words = [], []
    per = 1 if dtype == jnp.float32 else 2
    t = 0
    while len(out) < count:
        if len(words) < per:
            words.extend(counter_words(kw, 4 * tag + t, shape))
            t += 1
        if per == 1:
            out.append(unit_f32(words.pop(0)))
        else:
            out.append(unit_f64(words.pop(0), words.pop(0)).astype(dtype))
    return out
