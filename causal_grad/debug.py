"""Debug mode: find where a NaN or an infinity is produced, on the exact and the training paths.

The library's conventions make NaN impossible on valid input (float64 exact paths with ``0·log 0 = 0``,
masked softmax rows, GTH elimination without subtraction; see ``tests/test_stability.py``), and every public
entry point refuses invalid input before computing (``docs/inputs.md``). Inside compiled code, though, values
are not checked: a NaN produced by a bug or by a custom loss propagates silently. Three tools:

* :func:`guard` — a context manager that turns on ``jax_debug_nans`` (and, with ``infs=True``,
  ``jax_debug_infs``) inside its block only. Any ``jit``-compiled computation whose output holds a NaN is re-run
  op by op and raises ``FloatingPointError`` naming the primitive that produced it. It covers everything that
  runs inside the block: :func:`causal_grad.exact_population_gradient` and the other exact paths, Monte Carlo
  estimates, and :func:`causal_grad.train` (the compiled training chunks). It slows nothing down until a NaN
  appears. For ahead-of-time compiled functions (the training chunks) JAX names the function rather than the
  primitive. (Infinities are legitimate in a few places — ``log 0`` of an absent target with ``ε = 0`` — so they
  are not trapped unless asked.)
* :func:`checked` — wraps a *traceable* function (arrays in, arrays out, e.g. a model's loss or
  :func:`causal_grad.gradients.exact.all_query_predictions`) with ``jax.experimental.checkify``: NaN outputs of
  every primitive, division by zero and out-of-bounds indexing are checked inside the compiled function and
  raised as ``FloatingPointError`` (``IndexError`` for indexing) with the primitive and the source line.
* :func:`check_finite` — an explicit host-side check of a pytree's leaves (parameters, gradients, results),
  naming the first leaf that holds a NaN or an infinity.

Example::

    import causal_grad as cg
    from causal_grad import debug

    with debug.guard():
        g = cg.exact_population_gradient(task, pis, A1, A2, eps=1e-3)
    debug.check_finite("gradient", g)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import jax
import numpy as np
from jax.experimental import checkify

__all__ = ["guard", "checked", "check_finite"]


@contextlib.contextmanager
def guard(*, nans: bool = True, infs: bool = False):
    """Within the block, a NaN (and with ``infs=True`` an infinity) in the output of any JAX computation raises
    ``FloatingPointError`` naming the primitive that produced it (``jax_debug_nans`` / ``jax_debug_infs``,
    restored on exit)."""
    if not isinstance(nans, bool) or not isinstance(infs, bool):
        raise TypeError(f"nans and infs must be booleans, got {nans!r} and {infs!r}")
    try:
        from jax._src.api_util import InternalFloatingPointError  # compat: other JAX versions
    except ImportError:  # pragma: no cover - other JAX versions
        InternalFloatingPointError = ()
    with contextlib.ExitStack() as stack:
        stack.enter_context(jax.debug_nans(nans))
        stack.enter_context(jax.debug_infs(infs))
        try:
            yield
        except InternalFloatingPointError as exc:
            # ahead-of-time compiled executables (the training chunks) are not re-run op by op: JAX reports the
            # function only; run it under jax.disable_jit() (or debug.checked) to find the primitive
            raise FloatingPointError(
                f"invalid value ({exc.ty}) in the output of the compiled function {exc.name!r}; "
                f"rerun it under jax.disable_jit() to find the primitive"
            ) from None


def checked(fn: Callable, *, nans: bool = True, div: bool = True, index: bool = True) -> Callable:
    """``fn`` instrumented with ``jax.experimental.checkify``: calling the result runs ``fn`` (compiled with the
    checks) and raises ``FloatingPointError`` when a primitive produced a NaN or divided by zero, ``IndexError``
    on an out-of-bounds index; otherwise returns ``fn``'s result. ``fn`` must be traceable (JAX arrays in and out:
    a kernel or a loss, not a function that validates its inputs with NumPy)."""

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    errors = frozenset()
    if nans:
        errors |= checkify.nan_checks
    if div:
        errors |= checkify.div_checks
    if index:
        errors |= checkify.index_checks
    if not errors:
        raise ValueError("checked: enable at least one of nans, div, index")
    inner = jax.jit(checkify.checkify(fn, errors=errors))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        err, out = inner(*args, **kwargs)
        msg = err.get()
        if msg is not None:
            first = msg.strip().splitlines()[0]
            if "out-of-bounds" in msg or "out of bounds" in msg:
                raise IndexError(f"{getattr(fn, '__name__', 'fn')}: {first}")
            raise FloatingPointError(f"{getattr(fn, '__name__', 'fn')}: {first}")
        return out

    return wrapper


def check_finite(name: str, tree) -> None:
    """Raise ``FloatingPointError`` naming the first leaf of ``tree`` (arrays, NamedTuples, dicts …) that holds
    a NaN or an infinity; non-numeric leaves are skipped."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string (used in the message), got {type(name).__name__}")
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        try:
            arr = np.asarray(leaf)
        except Exception:  # noqa: BLE001 - not an array
            continue
        if arr.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            where = jax.tree_util.keystr(path) or "(the value)"
            kind = "NaN" if np.isnan(arr).any() else "an infinity"
            first = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
            raise FloatingPointError(
                f"{name}{where} holds {kind} (first at index {first}, {int(bad.sum())} "
                f"non-finite entries of {arr.size})"
            )
