"""Priors over transition matrices ``π`` and a fast vectorised gamma sampler (THEORY §1, PERFORMANCE.md).

A prior is a small frozen dataclass with ``sample(key, shape, S, dtype) -> (*shape, S, S)`` (rows of
transition matrices). The default prior of the paper draws every row from ``Dirichlet(α·1_S)``.

Gamma variates: ``jax.random.gamma`` costs about 1.3 µs per variate on a 2-core CPU, which alone caps a
faithful sampler below 10,000 sequences/s. :func:`gamma` uses Marsaglia–Tsang (2000) for shape ``a + 1 ≥ 1``:
with ``d = a + 1 − 1/3``, ``c = 1/√(9d)``, ``x ~ N(0,1)``, ``v = (1 + c x)^3``, accept ``d·v`` when
``log U < x²/2 + d − d v + d log v`` (after the cheap squeeze ``U < 1 − 0.0331 x⁴``); rejected lanes are
redrawn until every lane has accepted (an exact ``lax.while_loop``, about ``log(N)/log(1/r)`` rounds for
``N`` variates with rejection rate ``r ≤ 5%``). The boost ``G(a) = G(a + 1)·U^{1/a}`` handles ``a < 1``;
it is carried out in log space so that tiny variates (``α = 0.1`` gives values below 1e-30) do not underflow
before normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax

from ._validate import check_positive_float, check_probability

__all__ = [
    "log_gamma_variates",
    "gamma",
    "dirichlet",
    "Dirichlet",
    "Floored",
    "Sticky",
    "PermutationLike",
    "UniformOver",
    "Prior",
]


def _mt_log_gamma_ge1(key, a, shape, dtype):
    """log of Gamma(a) variates for a >= 1 (Marsaglia–Tsang with redraw of rejected lanes)."""
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
        squeeze = u < 1.0 - 0.0331 * (x * x) * (x * x)
        full = jnp.log(u) < 0.5 * x * x + d - d * v3s + d * logv
        acc = ok & (squeeze | full)
        return acc, jnp.log(d) + logv

    k0, kloop = jax.random.split(key)
    acc, val = draw(k0)

    def cond(state):
        _, acc, _ = state
        return ~jnp.all(acc)

    def body(state):
        k, acc, val = state
        k, sub = jax.random.split(k)
        acc2, val2 = draw(sub)
        take = (~acc) & acc2
        return k, acc | acc2, jnp.where(take, val2, val)

    _, _, val = lax.while_loop(cond, body, (kloop, acc, val))
    return val


def log_gamma_variates(key, alpha, shape, dtype=jnp.float32):
    """``log G`` with ``G ~ Gamma(alpha, 1)``, elementwise, for any ``alpha > 0`` (scalar or broadcastable)."""
    alpha = jnp.asarray(alpha, dtype)
    k1, k2 = jax.random.split(key)
    boost = alpha < 1
    a1 = jnp.where(boost, alpha + 1.0, alpha)
    a1 = jnp.broadcast_to(a1, shape)
    lg = _mt_log_gamma_ge1(k1, a1, shape, dtype)
    u = jax.random.uniform(k2, shape, dtype, minval=jnp.finfo(dtype).tiny)
    return lg + jnp.where(boost, jnp.log(u) / alpha, 0.0)


def gamma(key, alpha, shape, dtype=jnp.float32):
    """``Gamma(alpha, 1)`` variates (may underflow to 0 for tiny alpha; use :func:`log_gamma_variates`)."""
    return jnp.exp(log_gamma_variates(key, alpha, shape, dtype))


def dirichlet(key, alpha, shape, S: int, dtype=jnp.float32):
    """``Dirichlet(α·1_S)`` vectors of shape ``(*shape, S)``, normalised in log space (softmax of log-gammas)."""
    lg = log_gamma_variates(key, alpha, tuple(shape) + (S,), dtype)
    return jax.nn.softmax(lg, axis=-1)


# ---------------------------------------------------------------------- priors over π
class Prior:
    """Base class: ``sample(key, shape, S, dtype)`` returns transition matrices of shape ``(*shape, S, S)``."""

    def sample(self, key, shape, S: int, dtype=jnp.float32):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return repr(self)


@dataclass(frozen=True)
class Dirichlet(Prior):
    """Every row of ``π`` independently ``Dirichlet(α·1_S)`` (the paper's prior)."""

    alpha: float

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_positive_float("alpha", self.alpha))

    def sample(self, key, shape, S, dtype=jnp.float32):
        return dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)


@dataclass(frozen=True)
class Floored(Prior):
    """``π = γ/S + (1 − γ)·Dirichlet(α)`` rows: every entry is at least ``γ/S`` (so ``σ1 < 1``)."""

    alpha: float
    gamma: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_positive_float("alpha", self.alpha))
        object.__setattr__(self, "gamma", check_probability("gamma", self.gamma, open_low=True))

    def sample(self, key, shape, S, dtype=jnp.float32):
        d = dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)
        return self.gamma / S + (1.0 - self.gamma) * d


@dataclass(frozen=True)
class Sticky(Prior):
    """``π = λ·I + (1 − λ)·Dirichlet(α)`` rows: a heavy diagonal (the self entry wins on average once λ ≳ 0.3)."""

    alpha: float
    lam: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_positive_float("alpha", self.alpha))
        object.__setattr__(self, "lam", check_probability("lam", self.lam, open_high=True))

    def sample(self, key, shape, S, dtype=jnp.float32):
        d = dirichlet(key, self.alpha, tuple(shape) + (S,), S, dtype)
        return self.lam * jnp.eye(S, dtype=dtype) + (1.0 - self.lam) * d


@dataclass(frozen=True)
class PermutationLike(Prior):
    """``π = (1 − δ)·P_σ + δ·Dirichlet(α)`` with ``σ`` a uniformly random permutation: nearly deterministic,
    nearly periodic chains (out-of-distribution for a Dirichlet(0.1)-trained model)."""

    alpha: float = 1.0
    delta: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_positive_float("alpha", self.alpha))
        object.__setattr__(self, "delta", check_probability("delta", self.delta, open_low=True))

    def sample(self, key, shape, S, dtype=jnp.float32):
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
        from ._validate import check_transition_matrices

        self.pis = check_transition_matrices("pis", pis)

    def __repr__(self) -> str:
        return f"UniformOver(k={self.pis.shape[0]}, S={self.pis.shape[1]})"

    def sample(self, key, shape, S, dtype=jnp.float32):
        if S != self.pis.shape[1]:
            raise ValueError(f"S must be {self.pis.shape[1]} for this UniformOver prior, got {S}")
        idx = jax.random.randint(key, tuple(shape), 0, self.pis.shape[0])
        return jnp.asarray(self.pis, dtype)[idx]
