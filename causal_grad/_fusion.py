"""XLA performance hints for the batch-last samplers and models (values are unchanged).

**Fusion control.** XLA on CPU fuses cheap elementwise producers into *every* consumer. For chains of cheap
updates that are read several times (GTH elimination steps, a counter-based hash feeding several outputs, token
``i`` read by its children) that recomputes the chain in each consumer, which costs up to an exponential factor.
``optimization_barrier`` does not help (the CPU pipeline removes it before fusion). A floating-point or integer
division is "expensive" to the fusion heuristics and is not duplicated, so :func:`materialize` divides by a
run-time array that is exactly 1 (``x / 1 == x`` exactly in IEEE arithmetic, NaN and ±inf included, and for
integers), which makes XLA compute ``x`` once and store it.

**Compiler options.** :func:`cpu_vector_options` asks XLA's CPU backend for 512-bit vectors where the processor
has them (AVX-512; XLA's default prefers 256): about 8% less CPU time for the samplers, whose work is elementwise
integer hashing and transcendental functions (it does not speed up the training step, measured). It is passed
per compiled function (``jax.jit(..., compiler_options=...)``), never through the process-wide ``XLA_FLAGS``,
and is empty where this JAX or XLA does not take the option, so the code runs unchanged elsewhere (on GPU/TPU
the option is a no-op). JAX accepts compiler options only on a top-level ``jit``: :func:`jit_with_options`
calls the plain ``jit`` when it is traced inside another one (whose own options then apply).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp

__all__ = ["materialize", "cpu_vector_options", "accepted_options", "jit_with_options"]

_VECTOR_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def materialize(x):
    """``x`` itself, computed once and stored by XLA (see the module docstring)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x / jnp.where(jnp.isnan(x), 2.0, 1.0).astype(x.dtype)
    if jnp.issubdtype(x.dtype, jnp.integer):
        one = jnp.where(x == jnp.iinfo(x.dtype).min, 2, 1).astype(x.dtype)
        return jnp.where(one == 1, x // one, x)
    return x


@lru_cache(maxsize=None)
def _accepted(items: tuple) -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(items)).lower(jnp.zeros((1,), jnp.float32)).compile()
    except Exception:  # an older JAX (no compiler_options) or an XLA without one of these options
        return False
    return True


def accepted_options(options: dict) -> dict:
    """``options`` if this JAX/XLA compiles a trivial function with them, else ``{}`` (probed once per set)."""
    return dict(options) if _accepted(tuple(sorted(options.items()))) else {}


def cpu_vector_options() -> dict:
    """Compiler options for 512-bit CPU vectors (see the module docstring), or ``{}`` where not accepted."""
    return accepted_options(_VECTOR_OPTIONS)


def jit_with_options(fun, options: dict, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)`` compiled with ``options`` when called on concrete arrays, and without them
    when called inside another trace (where JAX refuses compiler options)."""
    plain = jax.jit(fun, **jit_kwargs)
    if not options:
        return plain
    fast = jax.jit(fun, compiler_options=options, **jit_kwargs)

    def call(*args):
        traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args))
        return (plain if traced else fast)(*args)

    call.__doc__, call.__wrapped__ = getattr(fun, "__doc__", None), fun
    return call
