"""Input checks shared by every public entry point.

Each helper raises a ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value) whose
message names the argument and the rule, *before* any JAX computation starts.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: this module must import without JAX (the CLI checks flags first)
    import jax

__all__ = [
    "check_int",
    "check_positive_float",
    "check_key",
    "check_transition_matrices",
    "check_probability",
    "check_real_array",
    "check_seed",
    "check_choice",
    "check_instance",
    "check_callable",
    "is_concrete",
    "check_array",
    "check_tokens",
    "check_stochastic",
    "arrays",
    "check_matrix_dtype",
    "row_sum_atol",
    "check_distribution_rows",
    "concentration_floor",
    "check_concentration",
    "scale_floor",
    "check_scale",
    "check_dtype_enabled",
    "memory_limit_bytes",
    "check_fits_memory",
    "itemsize",
    "check_output_path",
    "check_eps",
    "check_positions",
    "check_pair_memory",
    "check_sample_memory",
    "check_param_memory",
]

#: The seeds ``jax.random.key`` accepts (a C long).
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


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


def check_key(name: str, key: Any) -> jax.Array:
    """A JAX PRNG key: a typed key array or a legacy uint32 array of shape (2,), returned as given (a legacy
    NumPy key is typed ``jax.Array`` here: ``jax.random`` accepts it wherever a key is expected)."""
    import jax  # lazy: CLI parsing stays JAX-free
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(f"{name} must be a jax.random key (e.g. jax.random.key(0)), got the integer {key}")
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(f"{name} must be a jax.random key, got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single key (shape ()), got shape {key.shape}")
        return key  # pyright: ignore[reportReturnType]  (see the docstring)
    if key.dtype != np.uint32 or key.shape != (2,):
        raise ValueError(
            f"{name} must be a jax.random key (typed, or uint32 of shape (2,)), got {key.dtype}{key.shape}"
        )
    return key  # pyright: ignore[reportReturnType]


#: The dtypes a transition matrix ``π`` may have (the one dtype policy of every function that takes ``π``):
#: float32, float64, or integers (exact; converted). Half precision (float16, bfloat16) is refused everywhere:
#: its row sums are off by up to ``8·S·2^-11 ≈ 4e-3·S``, so a row-sum check at the 1e-6 level cannot hold and a
#: looser one would accept matrices that are not stochastic for the exact float64 paths.
MATRIX_DTYPES = ("float32", "float64")


def check_matrix_dtype(name: str, dtype) -> None:
    """``dtype`` of a transition matrix: float32, float64 or an integer dtype (:data:`MATRIX_DTYPES`)."""
    d = np.dtype(dtype) if not str(dtype) == "bfloat16" else None
    if d is not None and (np.issubdtype(d, np.integer) or d.name in MATRIX_DTYPES):
        return
    raise TypeError(
        f"{name} must be float32 or float64 (or integer), got dtype {dtype}: half precision cannot "
        f"hold rows summing to 1 within the row-sum tolerance"
    )


def check_transition_matrices(
    name: str, pis, vocab_size: int | None = None, *, atol: float | None = None
) -> np.ndarray:
    """Check a stack of row-stochastic matrices ``(k, S, S)`` (or one ``(S, S)``); return it as float64 (k, S, S).

    Rules: dtype float32, float64 or integer (:func:`check_matrix_dtype`); finite, non-negative entries; each row
    sums to 1 within ``atol`` (default :func:`row_sum_atol` of the input's dtype, the one tolerance rule of every
    function that takes ``π``); square; ``S`` equal to ``vocab_size`` when given.
    """
    try:
        arr = np.asarray(pis)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be an array of transition matrices: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real array of transition matrices, got dtype {arr.dtype}")
    check_matrix_dtype(name, arr.dtype)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{name} must have shape (k, S, S) or (S, S), got {np.shape(pis)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one transition matrix, got shape {arr.shape}")
    if vocab_size is not None and arr.shape[1] != vocab_size:
        raise ValueError(f"{name} must be {vocab_size}x{vocab_size} (the vocabulary size), got {arr.shape[1:]}")
    if atol is None:
        atol = row_sum_atol(arr.dtype, arr.shape[-1])
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    check_distribution_rows(name, arr, atol)
    return arr


def row_sum_atol(dtype, S: int) -> float:
    """The default tolerance for rows of ``S`` entries summing to 1: ``max(1e-6, 8·S·eps)`` of ``dtype`` (the
    round-off of a normalised row; integer dtypes: 1e-6)."""
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free; its finfo knows bfloat16 too

    eps = float(jnp.finfo(dtype).eps) if jnp.issubdtype(dtype, jnp.floating) else 0.0
    return max(1e-6, 8 * S * eps)


def check_distribution_rows(name: str, arr: np.ndarray, atol: float) -> None:
    """Values of a finite float64 array whose last axis holds distributions: non-negative entries, every row
    summing to 1 within ``atol``."""
    if np.any(arr < 0):
        raise ValueError(f"{name} must have non-negative entries (min {arr.min():.3g})")
    err = np.abs(arr.sum(-1) - 1).max() if arr.size else 0.0
    if err > atol:
        raise ValueError(f"{name}: every row must sum to 1 (worst row is off by {err:.3g})")


def check_real_array(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 NumPy array; it must be real (not complex, bool or object), finite, and of
    exactly ``shape`` when given."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a real array: {exc}") from None
    if (
        arr.dtype == object
        or arr.dtype == bool
        or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer))
    ):
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


def check_seed(name: str, value) -> int:
    """An integer seed in the range ``jax.random.key`` accepts (``-2**63 … 2**63 - 1``)."""
    return check_int(name, value, minimum=SEED_MIN, maximum=SEED_MAX)


def check_choice(name: str, value, choices) -> str:
    """``value`` must be a string among ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(map(repr, choices))}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_instance(name: str, value, types, what: str):
    """``value`` must be an instance of ``types`` (``what`` describes them in the message)."""
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_callable(name: str, value):
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def is_concrete(x) -> bool:
    """Whether ``x`` holds values (not a JAX tracer): value checks run only then, structural checks always."""
    import jax.core  # lazy: CLI parsing stays JAX-free

    return not isinstance(x, jax.core.Tracer)


_KINDS = {
    "real": "a real (integer or floating) array",
    "float": "a floating-point array",
    "int": "an integer array",
    "bool": "a boolean array",
}


def _kind_ok(dtype, kind: str) -> bool:
    if kind == "bool":
        return dtype == np.bool_
    if dtype == np.bool_ or dtype == np.dtype(object):
        return False
    if kind == "int":
        return np.issubdtype(dtype, np.integer)
    if kind == "float":
        return np.issubdtype(dtype, np.floating)
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def check_array(
    name: str,
    x,
    *,
    kind: str = "real",
    ndim: int | None = None,
    min_ndim: int | None = None,
    shape: tuple | None = None,
    square: bool = False,
):
    """Structural check of an array argument: dtype ``kind`` (``"real"``, ``"float"``, ``"int"``, ``"bool"``),
    number of dimensions, ``shape`` (``None`` entries are free) and, with ``square``, equal last two axes. Shapes and
    dtypes are static, so this also
    works on JAX tracers (inside ``jit``/``vmap``); values are not looked at. Returns ``x`` (a list or scalar is
    converted with ``np.asarray``; arrays and tracers are returned as they are)."""
    if not (hasattr(x, "dtype") and hasattr(x, "shape")):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and other non-arrays
            raise TypeError(f"{name} must be {_KINDS[kind]}: {exc}") from None
    dtype = np.dtype(x.dtype) if not hasattr(x.dtype, "name") or "key<" not in str(x.dtype) else None
    if dtype is None or not _kind_ok(dtype, kind):
        raise TypeError(f"{name} must be {_KINDS[kind]}, got dtype {x.dtype}")
    nd = len(x.shape)
    if ndim is not None and nd != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(x.shape)}")
    if min_ndim is not None and nd < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    if shape is not None:
        want = tuple(shape)
        if nd != len(want) or any(w is not None and w != d for w, d in zip(want, x.shape)):
            pretty = "(" + ", ".join("·" if w is None else str(w) for w in want) + ("," if len(want) == 1 else "") + ")"
            raise ValueError(f"{name} must have shape {pretty}, got {tuple(x.shape)}")
    if square and (nd < 2 or x.shape[-1] != x.shape[-2]):
        raise ValueError(f"{name} must be square in its last two axes (..., S, S), got shape {tuple(x.shape)}")
    return x


def check_tokens(name: str, tokens, *, seq_len: int | None = None, vocab_size: int | None = None):
    """Token sequences: an integer array ``(B, T)`` with ``B ≥ 1`` (and ``T = seq_len`` when given); when the
    values are concrete (not traced) every token must lie in ``0 … vocab_size-1``. Returns ``tokens`` (lists are
    converted to a NumPy array)."""
    tokens = check_array(name, tokens, kind="int", ndim=2)
    if seq_len is not None and tokens.shape[1] != seq_len:
        raise ValueError(f"{name} must have shape (B, {seq_len}), got {tuple(tokens.shape)}")
    if tokens.shape[0] < 1:
        raise ValueError(
            f"{name} must hold at least one sequence (the batch is empty), got shape {tuple(tokens.shape)}"
        )
    if vocab_size is not None and is_concrete(tokens) and tokens.size:
        t = np.asarray(tokens)
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} must lie in 0..{vocab_size - 1} (the vocabulary), got values in [{lo}, {hi}]")
    return tokens


def check_stochastic(name: str, pi, vocab_size: int | None = None, *, stack: bool = False, atol: float | None = None):
    """A transition matrix ``(S, S)`` (or, with ``stack``, any ``(..., S, S)``) that may be traced: the structure
    (real dtype, square last two axes, ``S = vocab_size`` when given) is always checked; the values (finite,
    non-negative, rows summing to 1 within ``atol``) when they are concrete. The default ``atol`` is
    ``max(1e-6, 8·S·eps)`` of ``pi``'s dtype (the round-off of a normalised row). Returns ``pi`` unchanged (lists
    are converted to a NumPy array), so its dtype is kept."""
    pi = check_array(name, pi, kind="real", ndim=None if stack else 2, min_ndim=2 if stack else None)
    check_matrix_dtype(name, pi.dtype)
    if pi.shape[-1] != pi.shape[-2]:
        raise ValueError(f"{name} must be square (S, S), got shape {tuple(pi.shape)}")
    if vocab_size is not None and pi.shape[-1] != vocab_size:
        raise ValueError(f"{name} must be {vocab_size}x{vocab_size} (the vocabulary size), got {tuple(pi.shape[-2:])}")
    if pi.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one state, got shape {tuple(pi.shape)}")
    if is_concrete(pi) and np.size(pi):
        if atol is None:
            atol = row_sum_atol(pi.dtype, pi.shape[-1])
        check_transition_matrices(name, np.asarray(pi).reshape((-1,) + tuple(pi.shape[-2:])), atol=atol)
    return pi


def arrays(**specs):
    """Decorator: run :func:`check_array` on the named arguments (``name=dict(kind=…, ndim=…)``) before the
    function. Structural only, so it costs nothing at run time inside ``jit`` (it runs once, at trace time)."""

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            for arg, spec in specs.items():
                if arg in bound.arguments and bound.arguments[arg] is not None:
                    check_array(arg, bound.arguments[arg], **spec)
            return fn(*args, **kwargs)

        return wrapper

    return deco


# ---------------------------------------------------------------------- limits of the floating-point dtypes
def _finfo(dtype):
    try:
        return np.finfo(np.dtype(dtype))  # float32/float64: no JAX import (the CLI checks flags before it)
    except TypeError:
        import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free; its finfo knows bfloat16 too

        return jnp.finfo(jnp.dtype(dtype))


def concentration_floor(dtype) -> float:
    """The smallest Dirichlet/gamma concentration ``α`` whose draws stay finite in ``dtype``.

    The samplers draw ``log G(α) = log G(α + 1) + log(U)/α`` (the boost ``G(α) = G(α+1)·U^{1/α}`` in log
    space) and normalise a row by subtracting its largest log-gamma. Every uniform satisfies ``U ≥ u_min =
    finfo(dtype).tiny`` (the open-interval grids of the counter-based sampler start higher still, at
    ``2^-24``/``2^-53``), so ``|log U| ≤ −log(tiny)``; the boost overflows to ``−∞`` — and a row whose every
    entry is ``−∞`` normalises to ``0/0 = NaN`` — only when ``|log U|/α > finfo(dtype).max``. Hence every draw is
    finite when ``α ≥ −log(tiny)/max``: about 2.6e-37 in float32 and 3.9e-306 in float64.
    """
    fi = _finfo(dtype)
    return float(-math.log(float(fi.tiny)) / float(fi.max))


def check_concentration(name: str, alpha, dtype) -> float:
    """``alpha`` (a finite float > 0) must be at least :func:`concentration_floor` of ``dtype``, the dtype the
    Dirichlet/gamma draws are made in; returns it as a float."""
    alpha = check_positive_float(name, alpha)
    floor = concentration_floor(dtype)
    if alpha < floor:
        d = np.dtype(_finfo(dtype).dtype).name
        raise ValueError(
            f"{name} must be >= {floor:.3g} for {d} draws, got {alpha:.3g}: the log-gamma draws log G(a) = "
            f"log G(a+1) + log(U)/a overflow to -inf when a < -log(tiny)/max of {d}, and the Dirichlet rows "
            f"become 0/0 = NaN"
        )
    return alpha


def scale_floor(dtype) -> float:
    """The smallest factor ``β`` (e.g. ``A2 = β0·I``) that a quantity linear in it can carry in ``dtype``:
    ``β·x`` must stay a normal number for every ``|x| ≥ eps`` (entries resolved to the dtype's relative precision
    of an O(1) factor), i.e. ``β ≥ tiny/eps`` — about 9.9e-32 in float32 and 1.0e-292 in float64. Below it the
    products are subnormal (fewer bits; XLA on CPU flushes them to 0), so a gradient scaled by ``β`` underflows."""
    fi = _finfo(dtype)
    return float(fi.tiny) / float(fi.eps)


def check_scale(name: str, value, dtype, *, allow_zero: bool = False) -> float:
    """``value`` (finite, > 0; or exactly 0 with ``allow_zero``) must be 0 or at least :func:`scale_floor` of
    ``dtype``; returns it as a float."""
    value = check_positive_float(name, value, allow_zero=allow_zero)
    floor = scale_floor(dtype)
    if 0 < value < floor:
        d = np.dtype(_finfo(dtype).dtype).name
        raise ValueError(
            f"{name} must be {'0 or ' if allow_zero else ''}>= {floor:.3g} in {d}, got {value:.3g}: "
            f"{name}·x is subnormal (flushed to 0) for |x| < 1 once {name} < tiny/eps of {d}, so the "
            f"gradient it scales underflows"
        )
    return value


def check_dtype_enabled(name: str, dtype):
    """``dtype`` (already known to be float32 or float64) must be usable now: float64 needs x64 mode (JAX
    silently computes in float32 otherwise). Returns ``jnp.dtype(dtype)``."""
    import jax  # lazy: CLI parsing stays JAX-free
    import jax.numpy as jnp  # lazy: CLI parsing stays JAX-free

    d = jnp.dtype(dtype)
    # jax's Config gets its flag attributes at run time, which the type checker cannot see
    if d == jnp.dtype(jnp.float64) and not jax.config.jax_enable_x64:  # pyright: ignore[reportAttributeAccessIssue]
        raise ValueError(
            f"{name} float64 needs x64 mode (wrap the call in `with causal_grad.x64():`); outside it "
            f"JAX would silently compute in float32"
        )
    return d


# ---------------------------------------------------------------------- sizes against memory
def memory_limit_bytes() -> int:
    """This machine's physical memory in bytes (``os.sysconf`` pages × page size): no array can be larger.
    ``CAUSAL_GRAD_MEMORY_BYTES`` overrides it (tests; a job's share of a node)."""

    env = os.environ.get("CAUSAL_GRAD_MEMORY_BYTES")
    if env:
        return int(env)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 2**40


def _fmt_bytes(n: int) -> str:
    if n < 2**10:
        return f"{n} B"
    for unit, p in (("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40), ("PiB", 50)):
        if n < 2 ** (p + 10) or unit == "PiB":
            v = n / 2**p
            return f"{v:.3g} {unit}" if v < 1e6 else f"10^{math.log10(n):.0f} B"
    return f"{n} B"  # pragma: no cover


def check_fits_memory(name: str, nbytes: int, detail: str) -> int:
    """Refuse, before any compute, an allocation of ``nbytes`` (an exact Python int: no overflow) larger than
    :func:`memory_limit_bytes`. ``name`` names the argument(s) that set the size; ``detail`` says how the estimate
    was formed (e.g. ``"batch·S·S float32 matrices"``). Returns ``nbytes``."""
    nbytes = int(nbytes)
    limit = memory_limit_bytes()
    if nbytes > limit:
        raise ValueError(
            f"{name}: this needs about {_fmt_bytes(nbytes)} ({detail}), more than this machine's "
            f"memory of {_fmt_bytes(limit)}; use smaller sizes"
        )
    return nbytes


def itemsize(dtype) -> int:
    return int(np.dtype(_finfo(dtype).dtype).itemsize)


# ---------------------------------------------------------------------- output paths
def check_output_path(name: str, path, *, kind: str = "dir"):
    """An output path, checked before any compute; returns it as a ``pathlib.Path``.

    ``kind="dir"``: a folder to create or reuse — it must not be an existing non-folder; ``kind="file"``: a
    file to create or overwrite — it must not be an existing folder. Either way the nearest existing ancestor
    must be a writable folder (so the folders in between can be created)."""

    check_choice("kind", kind, ("dir", "file"))
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    if str(path) == "":
        raise ValueError(f"{name} must be a non-empty path")
    p = Path(path)
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ValueError(f"{name}: {p} exists and is not a folder (a folder is meant here)")
    if kind == "file" and p.is_dir():
        raise ValueError(f"{name}: {p} is a folder (a file is meant here)")
    if p.exists():
        if not os.access(p, os.W_OK | (os.X_OK if kind == "dir" else 0)):
            raise ValueError(f"{name}: {p} is not writable")
        return p
    q = p.parent
    while not q.exists() and q != q.parent:
        q = q.parent
    if not q.is_dir():
        raise ValueError(f"{name}: cannot create {p}: {q} is a file, not a folder")
    if not os.access(q, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: cannot create {p}: the folder {q} is not writable")
    return p


# ---------------------------------------------------------------------- training hyper-parameters
def check_eps(name: str, eps, *, allow_zero: bool = False) -> float:
    """The readout smoothing ``ε`` of the reduced model: a real number in ``(0, 1)`` — ``[0, 1)`` with
    ``allow_zero`` (the exact ``ε → 0`` limits). ``ε = 1`` makes the prediction the uniform law whatever the
    parameters (zero gradient); ``ε = 0`` in training makes the loss ``+∞`` whenever a target token is absent from
    the context (docs/theory.md §3)."""
    return check_probability(name, eps, open_low=not allow_zero, open_high=True)


def check_positions(name: str, n) -> int:
    """A number of graph positions ``n ≥ 1`` whose ``n × n`` int64 lowest-common-ancestor table (what the pair
    geometry, the tasks' exact laws and the graph metrics are built on) fits in memory."""
    n = check_int(name, n, minimum=1)
    check_fits_memory(name, 8 * n * n, f"the n×n int64 ancestor table of a graph with n = {n} positions")
    return n


def check_pair_memory(name: str, n: int, n_pad: int, S: int, dtype, copies: int) -> int:
    """The all-pairs laws of a forest with ``n`` positions (padded to ``n_pad``) over ``S`` states: the pair
    geometry (six ``n × n`` int64 tables) plus ``copies`` arrays ``(n_pad, n_pad, S, S)`` of ``dtype`` (the
    gathered matrix powers, the joint laws and what is computed from them)."""
    b = max(4, int(np.dtype(dtype).itemsize))  # (integer matrices are computed in floating point)
    nbytes = 48 * n * n + copies * n_pad * n_pad * S * S * b
    return check_fits_memory(
        name, nbytes, f"{copies} arrays of n_pad²·S² = {n_pad}²·{S}² entries plus the n² pair geometry, n = {n}"
    )


def check_sample_memory(
    name: str, batch: int, T: int, S: int, dtype, *, with_pi: bool = False, table_rows: int = 0, chunk: int = 4096
) -> int:
    """Bytes of sampling ``batch`` sequences before it runs: the outputs (tokens ``B·T`` int32, targets ``B·S``,
    with ``with_pi`` the matrices ``B·S·S``) plus the sampler's working set (its ``S·S`` matrices — or
    ``table_rows·S`` tables — their CDFs and log-gamma draws: three arrays of that size per sequence, for a chunk
    of at most ``chunk`` sequences, or for all of them with ``table_rows``)."""
    b = max(4, int(np.dtype(dtype).itemsize))
    rows = table_rows or S
    per = batch if table_rows else min(batch, chunk)
    nbytes = batch * T * 4 + batch * S * b + (batch * S * S * b if with_pi else 0) + 3 * per * rows * S * b
    return check_fits_memory(name, nbytes, f"B = {batch} sequences of T = {T} tokens, S = {S}, {np.dtype(dtype).name}")


def check_param_memory(name: str, shapes, dtype, copies: int = 4) -> int:
    """Parameters of the given ``shapes`` in ``dtype``, ``copies`` times (the parameters, their gradient and two
    optimiser moments), must fit in memory; sizes are exact Python ints."""
    b = max(4, int(np.dtype(dtype).itemsize))
    n = sum(math.prod(int(d) for d in s) for s in shapes)
    return check_fits_memory(name, copies * n * b, f"{copies} copies of {n} {np.dtype(dtype).name} parameters")
