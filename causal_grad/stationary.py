"""Stationary laws of transition matrices by Grassmann–Taksar–Heyman (GTH) elimination (docs/theory.md §1).

Under small Dirichlet concentrations ``μ_π`` has entries far below 1e-10. An eigenvector or a linear solve
loses them (and can even return negative entries); GTH elimination is subtraction-free, so every entry of
``μ`` is computed to nearly full relative accuracy.

GTH (state censoring): for ``k = S-1, …, 1`` remove state ``k`` from the chain. With ``s_k = Σ_{j<k} P[k, j]``
(the probability of leaving ``k`` to a lower state, computed without subtraction), the censored chain on
``{0, …, k-1}`` is ``P[i, j] += P[i, k] P[k, j] / s_k``. Back-substitution: ``μ_0 ∝ 1`` and
``μ_k = Σ_{i<k} μ_i P[i, k] / s_k``, rescaled at every step so that ratios beyond the float range
(``α = 1e-3`` gives them) underflow harmlessly instead of overflowing; finally normalise.

Implementation (:mod:`causal_grad.kernels.gth`): for ``S ≤ 32`` the elimination is unrolled over ``k`` on a
batch-last ``(S, S, N)`` array, so each step is elementwise over the batch
(:func:`~causal_grad.kernels.gth_batch_last`, which the samplers call directly); larger ``S`` uses a
``fori_loop`` per matrix (:func:`~causal_grad.kernels.gth_loop`). Both perform the same subtraction-free
operations, and agree with the plain NumPy twin :func:`~causal_grad.kernels.gth_reference`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._validate import arrays, check_fits_memory, check_stochastic
from .kernels import UNROLL_MAX_S, gth_batch_last, gth_loop

__all__ = ["stationary", "stationary_residual"]


def stationary(pi: ArrayLike) -> jax.Array:
    """The stationary law ``μ`` with ``μ π = μ`` of each transition matrix in ``pi`` (shape ``(..., S, S)``).

    Vectorised over leading axes; the dtype of ``pi`` is kept (pass float64 under ``jax_enable_x64`` for exact
    work). For a reducible ``π`` the result is *a* stationary law (finite, non-negative, supported on a closed
    class), not a unique one.

    Refuses (before computing) anything but real ``(..., S, S)`` matrices; their values (finite, non-negative,
    rows summing to 1) are checked when they are concrete, i.e. not inside ``jit``/``vmap``.
    """
    shape = tuple(int(d) for d in np.shape(pi))
    if len(shape) >= 2:  # the size first: the value checks below would copy the stack
        n = math.prod(shape)  # exact (Python ints)
        check_fits_memory(
            "pi",
            3 * n * 8,
            f"3 working copies of {n} matrix entries (the value checks in float64, the GTH elimination)",
        )
    pi = check_stochastic("pi", pi, stack=True)
    return _stationary(pi)


@jax.jit
def _stationary(pi: ArrayLike) -> jax.Array:
    pi = jnp.asarray(pi)
    if not jnp.issubdtype(pi.dtype, jnp.floating):
        pi = pi.astype(jnp.float32)
    flat = pi.reshape((-1,) + pi.shape[-2:])
    if pi.shape[-1] <= UNROLL_MAX_S:
        return gth_batch_last(jnp.transpose(flat, (1, 2, 0))).T.reshape(pi.shape[:-1])
    return jax.vmap(gth_loop)(flat).reshape(pi.shape[:-1])


@arrays(pi=dict(min_ndim=2, square=True), mu=dict(min_ndim=1))
def stationary_residual(pi: jax.Array, mu: jax.Array) -> jax.Array:
    """``max_b |(μπ)_b − μ_b|`` per matrix: how far ``μ`` is from stationary."""
    return jnp.max(jnp.abs(jnp.einsum("...a,...ab->...b", mu, pi) - mu), axis=-1)
