"""Input checks shared by every public entry point.

Each helper raises a ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value) whose
message names the argument and the rule, *before* any JAX computation starts.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "check_int",
    "check_positive_float",
    "check_key",
    "check_transition_matrices",
    "check_probability",
    "check_real_array",
]


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int; it must be an integer (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float; it must be a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if allow_zero:
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    elif value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_probability(name: str, value, *, open_low: bool = False, open_high: bool = False) -> float:
    """Return ``value`` as a float in [0, 1] (ends excluded where asked)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    lo_ok = value > 0 if open_low else value >= 0
    hi_ok = value < 1 if open_high else value <= 1
    if not (math.isfinite(value) and lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ValueError(f"{name} must lie in {lo}, {hi}, got {value}")
    return value


def check_key(name: str, key):
    """A JAX PRNG key: a typed key array or a legacy uint32 array of shape (2,)."""
    import jax
    import jax.numpy as jnp

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(f"{name} must be a jax.random key (e.g. jax.random.key(0)), got the integer {key}")
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(f"{name} must be a jax.random key, got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single key (shape ()), got shape {key.shape}")
        return key
    if key.dtype != np.uint32 or key.shape != (2,):
        raise ValueError(f"{name} must be a jax.random key (typed, or uint32 of shape (2,)), got {key.dtype}{key.shape}")
    return key


def check_transition_matrices(name: str, pis, vocab_size: int | None = None, *, atol: float = 1e-6) -> np.ndarray:
    """Check a stack of row-stochastic matrices ``(k, S, S)`` (or one ``(S, S)``); return it as float64 (k, S, S).

    Rules: real, finite, non-negative entries; each row sums to 1 within ``atol``; square; ``S`` equal to
    ``vocab_size`` when given.
    """
    try:
        arr = np.asarray(pis)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be an array of transition matrices: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real array of transition matrices, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{name} must have shape (k, S, S) or (S, S), got {np.shape(pis)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one transition matrix, got shape {arr.shape}")
    if vocab_size is not None and arr.shape[1] != vocab_size:
        raise ValueError(f"{name} must be {vocab_size}x{vocab_size} (the vocabulary size), got {arr.shape[1:]}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if np.any(arr < 0):
        raise ValueError(f"{name} must have non-negative entries (min {arr.min():.3g})")
    err = np.abs(arr.sum(-1) - 1).max()
    if err > atol:
        raise ValueError(f"{name}: every row must sum to 1 (worst row is off by {err:.3g})")
    return arr


def check_real_array(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 NumPy array; it must be real (not complex, bool or object), finite, and of
    exactly ``shape`` when given."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a real array: {exc}") from None
    if arr.dtype == object or arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating)
                                                         or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr
