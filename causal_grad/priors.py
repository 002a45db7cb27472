"""Priors over transition matrices ``π`` (docs/theory.md §1).

A prior is a small frozen dataclass with ``sample(key, shape, S, dtype) -> (*shape, S, S)`` (rows of
transition matrices) and ``sample_batch_last(key, batch, S, dtype) -> (S, S, batch)`` (the samplers' layout).
The default prior of the paper draws every row from ``Dirichlet(α·1_S)``; the Dirichlet rows come from the
exact grouped gamma sampler of :mod:`causal_grad.kernels.gamma_sampler`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from ._validate import (
    check_concentration,
    check_int,
    check_probability,
    check_transition_matrices,
)
from .kernels import (
    check_draw,
    check_float_dtype,
    dirichlet,
    dirichlet_matrices_batch_last,
)

__all__ = [
    "Dirichlet",
    "Floored",
    "Sticky",
    "PermutationLike",
    "UniformOver",
    "Prior",
]


# ---------------------------------------------------------------------- priors over π
class Prior:
    """Base class: ``sample(key, shape, S, dtype)`` returns transition matrices of shape ``(*shape, S, S)``."""

    def sample(
        self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32
    ) -> jax.Array:  # pragma: no cover - interface
        raise NotImplementedError

    def sample_batch_last(self, key: jax.Array, batch: int, S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        """``batch`` matrices laid out batch-last, ``(S, S, batch)`` (the samplers' internal layout; the default
        transposes :meth:`sample`, priors with a native batch-last sampler override it)."""
        self._check_bl(key, batch, S, dtype)
        return jnp.transpose(self.sample(key, (batch,), S, dtype), (1, 2, 0))

    def describe(self) -> str:
        return repr(self)

    @staticmethod
    def _check(key, shape, S, dtype):
        """The arguments of :meth:`sample` before any draw (``key``, ``shape``, ``S``, ``dtype``)."""
        key, shape, S = check_draw(key, 1.0, shape, S)
        return key, shape, S, check_float_dtype(dtype)

    @staticmethod
    def _check_bl(key, batch, S, dtype):
        """The arguments of :meth:`sample_batch_last` before any draw."""
        return Prior._check(key, (check_int("batch", batch, minimum=1),), S, dtype)


@dataclass(frozen=True)
class Dirichlet(Prior):
    """Every row of ``π`` independently ``Dirichlet(α·1_S)`` (the paper's prior)."""

    alpha: float

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_concentration("alpha", self.alpha, "float64"))

    def sample(self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check(key, shape, S, dtype)
        return dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)

    def sample_batch_last(self, key: jax.Array, batch: int, S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check_bl(key, batch, S, dtype)
        return dirichlet_matrices_batch_last(key, self.alpha, int(batch), int(S), check_float_dtype(dtype))


@dataclass(frozen=True)
class Floored(Prior):
    """``π = γ/S + (1 − γ)·Dirichlet(α)`` rows: every entry is at least ``γ/S`` (so ``σ1 < 1``)."""

    alpha: float
    gamma: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_concentration("alpha", self.alpha, "float64"))
        object.__setattr__(self, "gamma", check_probability("gamma", self.gamma, open_low=True))

    def sample(self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check(key, shape, S, dtype)
        d = dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)
        return self.gamma / S + (1.0 - self.gamma) * d

    def sample_batch_last(self, key: jax.Array, batch: int, S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check_bl(key, batch, S, dtype)
        d = dirichlet_matrices_batch_last(key, self.alpha, int(batch), int(S), check_float_dtype(dtype))
        return self.gamma / S + (1.0 - self.gamma) * d


@dataclass(frozen=True)
class Sticky(Prior):
    """``π = λ·I + (1 − λ)·Dirichlet(α)`` rows: a heavy diagonal (the self entry wins on average once λ ≳ 0.3)."""

    alpha: float
    lam: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_concentration("alpha", self.alpha, "float64"))
        object.__setattr__(self, "lam", check_probability("lam", self.lam, open_high=True))

    def sample(self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check(key, shape, S, dtype)
        d = dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)
        return self.lam * jnp.eye(S, dtype=dtype) + (1.0 - self.lam) * d

    def sample_batch_last(self, key: jax.Array, batch: int, S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check_bl(key, batch, S, dtype)
        dtype = check_float_dtype(dtype)
        d = dirichlet_matrices_batch_last(key, self.alpha, int(batch), int(S), dtype)
        return self.lam * jnp.eye(S, dtype=dtype)[:, :, None] + (1.0 - self.lam) * d


@dataclass(frozen=True)
class PermutationLike(Prior):
    """``π = (1 − δ)·P_σ + δ·Dirichlet(α)`` with ``σ`` a uniformly random permutation: nearly deterministic,
    nearly periodic chains (out-of-distribution for a Dirichlet(0.1)-trained model)."""

    alpha: float = 1.0
    delta: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_concentration("alpha", self.alpha, "float64"))
        object.__setattr__(self, "delta", check_probability("delta", self.delta, open_low=True))

    def sample(self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check(key, shape, S, dtype)
        kp, kd = jax.random.split(key)
        shape = tuple(shape)
        scores = jax.random.uniform(kp, shape + (S,), dtype)
        perm = jnp.argsort(scores, axis=-1)
        P = jax.nn.one_hot(perm, S, dtype=dtype)
        d = dirichlet(kd, self.alpha, shape + (S,), S, dtype)
        return (1.0 - self.delta) * P + self.delta * d


class UniformOver(Prior):
    """``π`` uniform over a fixed list of matrices ``pis`` ``(k, S, S)``: the population of the exact paths
    (:func:`causal_grad.exact_population_gradient`, :func:`causal_grad.population.population_gd`), so that
    stochastic training can sample the very population the exact gradient averages over."""

    def __init__(self, pis):
        self.pis = check_transition_matrices("pis", pis)

    def __repr__(self) -> str:
        return f"UniformOver(k={self.pis.shape[0]}, S={self.pis.shape[1]})"

    def sample(self, key: jax.Array, shape: Sequence[int], S: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        self._check(key, shape, S, dtype)
        if S != self.pis.shape[1]:
            raise ValueError(f"S must be {self.pis.shape[1]} for this UniformOver prior, got {S}")
        idx = jax.random.randint(key, tuple(shape), 0, self.pis.shape[0])
        return jnp.asarray(self.pis, dtype)[idx]
