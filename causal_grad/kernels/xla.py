"""XLA compilation hints for the batch-last samplers and models (values are unchanged; docs/theory.md §1, §5).

**Fusion control.** XLA on CPU fuses cheap elementwise producers into *every* consumer. For chains of cheap
updates that are read several times (GTH elimination steps, a counter-based hash feeding several outputs, token
``i`` read by its children) that recomputes the chain in each consumer, which costs up to an exponential factor.
``optimization_barrier`` does not help (the CPU pipeline removes it before fusion). A floating-point or integer
division is "expensive" to the fusion heuristics and is not duplicated, so :func:`materialize` divides by a
run-time array that is exactly 1 (``x / 1 == x`` exactly in IEEE arithmetic, NaN and ±inf included, and for
integers), which makes XLA compute ``x`` once and store it. Its plain twin is the identity.

**Compiler options.** :func:`cpu_vector_options` asks XLA's CPU backend for 512-bit vectors where the processor
has them (AVX-512; XLA's default prefers 256): about 8% less CPU time for the samplers, whose work is elementwise
integer hashing and transcendental functions (it does not speed up the training step, measured).
:data:`FAST_CPU_OPTIONS` keeps XLA's YNNPACK fusions to matrix products: with XLA's default, the reductions along
the leading axes of the batch-last disentangled model become YNNPACK reduce fusions and its training step is
4-5x slower (figure-2 configuration on a 2-core CPU, 3.2 ms against 16 ms on one device).

Options are passed per compiled function (``jax.jit(..., compiler_options=...)``), never through the
process-wide ``XLA_FLAGS``, and dropped where this JAX or XLA does not take them (:func:`accepted_options`), so
the code runs unchanged elsewhere (on GPU/TPU they are no-ops). JAX accepts compiler options only on a top-level
``jit``: :func:`jit_with_options` calls the plain ``jit`` (the twin of the fast one, same values) when it is
traced inside another one, whose own options then apply.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import jax
import jax.core
import jax.numpy as jnp

from .._validate import check_callable

__all__ = [
    "materialize",
    "cpu_vector_options",
    "accepted_options",
    "jit_with_options",
    "FAST_CPU_OPTIONS",
    "fast_cpu_jit",
]

_VECTOR_OPTIONS = {"xla_cpu_prefer_vector_width": 512}

#: XLA CPU option that keeps YNNPACK fusions to matrix products (elementwise and reduce fusions go to XLA's own
#: emitters); see the module docstring. Ignored where this XLA rejects it.
FAST_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


def materialize(x: jax.Array) -> jax.Array:
    """``x`` itself, computed once and stored by XLA (see the module docstring); other dtypes pass through."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x / jnp.where(jnp.isnan(x), 2.0, 1.0).astype(x.dtype)
    if jnp.issubdtype(x.dtype, jnp.integer):
        one = jnp.where(x == jnp.iinfo(x.dtype).min, 2, 1).astype(x.dtype)
        return jnp.where(one == 1, x // one, x)
    return x


@cache
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


def jit_with_options(fun: Callable, options: dict, **jit_kwargs: Any) -> Callable:
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


def fast_cpu_jit(fun: Callable, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fun, **jit_kwargs)`` compiled with :data:`FAST_CPU_OPTIONS` when called at top level (where this
    JAX/XLA accepts them), plainly when traced inside another ``jit``. Use it to evaluate the models outside the
    training loop, which compiles its own step with these options."""
    check_callable("fun", fun)
    return jit_with_options(fun, accepted_options(FAST_CPU_OPTIONS), **jit_kwargs)
