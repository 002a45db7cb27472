"""XLA fusion control for the batch-last samplers (a performance hint only; values are unchanged).

XLA on CPU fuses cheap elementwise producers into *every* consumer. For chains of cheap updates that are read
several times (GTH elimination steps, a counter-based hash feeding several outputs, token ``i`` read by its
children) that recomputes the chain in each consumer, which costs up to an exponential factor.
``optimization_barrier`` does not help (the CPU pipeline removes it before fusion). A floating-point or integer
division is "expensive" to the fusion heuristics and is not duplicated, so :func:`materialize` divides by a
run-time array that is exactly 1 (``x / 1 == x`` exactly in IEEE arithmetic, NaN and ±inf included, and for
integers), which makes XLA compute ``x`` once and store it.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["materialize"]


def materialize(x):
    """``x`` itself, computed once and stored by XLA (see the module docstring)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x / jnp.where(jnp.isnan(x), 2.0, 1.0).astype(x.dtype)
    if jnp.issubdtype(x.dtype, jnp.integer):
        one = jnp.where(x == jnp.iinfo(x.dtype).min, 2, 1).astype(x.dtype)
        return jnp.where(one == 1, x // one, x)
    return x
