"""Short ``repr``s for notebooks and logs: arrays as ``f32[20,20]``, long containers elided.

``compact_repr(obj)`` renders a result object (a dataclass, a NamedTuple, a mapping, a pytree of arrays) in a
few hundred characters instead of printing every array entry; a class opts in with one line,
``__repr__ = compact_repr``. A nested object whose class writes its own short ``repr`` (a ``Graph``, a prior)
is shown by it. For an interactive, foldable view of results and parameters use treescope (it
comes with flax): ``import treescope; treescope.basic_interactive_setup(autovisualize_arrays=True)`` in a
notebook renders every later cell's result (dataclasses, dicts of arrays, flax variables) as a tree with
array heatmaps.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
from collections.abc import Mapping, Sized
from typing import Any, cast

import numpy as np

__all__ = ["compact_repr", "array_summary"]

_DTYPE = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "bfloat16": "bf16",
    "int64": "i64",
    "int32": "i32",
    "int8": "i8",
    "uint8": "u8",
    "uint32": "u32",
    "bool": "bool",
    "complex64": "c64",
    "complex128": "c128",
}


#: ids of the objects being rendered: a class whose own ``__repr__`` calls :func:`compact_repr` is not re-entered
_ACTIVE: contextvars.ContextVar[frozenset] = contextvars.ContextVar("causal_grad_compact_repr", default=frozenset())
_NAMEDTUPLE_REPR = collections.namedtuple("_NamedTuple", "x").__repr__.__code__  # shared by every namedtuple


def _own_repr(cls) -> bool:
    """Whether ``cls`` writes its own ``__repr__`` (not :func:`compact_repr`, not the one ``dataclass`` or
    ``namedtuple`` generate, which print every field in full)."""
    fn = getattr(cls, "__repr__", None)
    if fn is None or fn is compact_repr or fn is object.__repr__ or fn is tuple.__repr__:
        return False
    fn = getattr(fn, "__wrapped__", fn)  # dataclass wraps its generated repr in a recursion guard
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_filename != "<string>" and code is not _NAMEDTUPLE_REPR


def _scalar(x) -> bool:
    return isinstance(x, (int, float, bool, type(None))) or (isinstance(x, str) and len(x) <= 20)


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (str, bytes))


def array_summary(x) -> str:
    """``"f32[20,20]"`` (dtype and shape); a 0-d array shows its value, ``"f64[]=1.25"``."""
    dt = str(getattr(x, "dtype", "?"))
    shape = tuple(getattr(x, "shape", ()))
    name = _DTYPE.get(dt, dt)
    if shape == ():
        try:
            return f"{name}[]={np.asarray(x).item():.6g}"
        except (TypeError, ValueError):
            return f"{name}[]"
    return f"{name}[{','.join(map(str, shape))}]"


def _r(x, depth: int, max_items: int, width: int) -> str:
    if _is_array(x):
        return array_summary(x)
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, (int, bool, type(None))):
        return repr(x)
    if isinstance(x, str):
        return repr(x) if len(x) <= width else repr(x[:width]) + "…"
    structured = (dataclasses.is_dataclass(x) and not isinstance(x, type)) or (
        isinstance(x, tuple) and hasattr(x, "_fields")
    )
    if structured and _own_repr(type(x)) and id(x) not in _ACTIVE.get():
        text = repr(x)
        if len(text) <= width:
            return text
    if isinstance(x, (list, tuple)) and not structured and len(x) <= max_items and all(map(_scalar, x)):
        o, c = ("[", "]") if isinstance(x, list) else ("(", ",)" if len(x) == 1 else ")")
        return o + ", ".join(_r(v, 0, 0, width) for v in x) + c
    if depth <= 0:
        n = len(cast(Sized, x)) if hasattr(x, "__len__") else None
        return f"{type(x).__name__}(…{'' if n is None else f' {n} items'})"
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = [f.name for f in dataclasses.fields(x) if f.repr]
        return _fields(type(x).__name__, [(k, getattr(x, k)) for k in fields], depth, max_items, width)
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return _fields(type(x).__name__, [(k, getattr(x, k)) for k in cast(Any, x)._fields], depth, max_items, width)
    if isinstance(x, Mapping):
        items = list(x.items())
        body = [f"{k!r}: {_r(v, depth - 1, max_items, width)}" for k, v in items[:max_items]]
        more = f", …{len(items) - max_items} more" if len(items) > max_items else ""
        return "{" + ", ".join(body) + more + "}"
    if isinstance(x, (list, tuple)):
        if len(x) > max_items and all(isinstance(v, (int, float)) for v in x):
            return f"[{', '.join(_r(v, 0, 0, width) for v in x[:3])}, … {len(x)} numbers]"
        body = [_r(v, depth - 1, max_items, width) for v in x[:max_items]]
        more = f", …{len(x) - max_items} more" if len(x) > max_items else ""
        o, c = ("[", "]") if isinstance(x, list) else ("(", ",)" if len(x) == 1 else ")")
        return o + ", ".join(body) + more + c
    text = repr(x)
    return text if len(text) <= width else text[:width] + "…"


def _fields(name, pairs, depth, max_items, width) -> str:
    body = [f"{k}={_r(v, depth - 1, max_items, width)}" for k, v in pairs]
    return f"{name}(" + ", ".join(body) + ")"


def compact_repr(obj, *, depth: int = 3, max_items: int = 8, width: int = 60) -> str:
    """A short ``repr`` of ``obj``: arrays as dtype and shape, at most ``max_items`` entries per container
    (then ``…n more``), nesting cut at ``depth``, strings and foreign reprs cut at ``width`` characters."""
    token = _ACTIVE.set(_ACTIVE.get() | {id(obj)})
    try:
        return _r(obj, depth, max_items, width)
    finally:
        _ACTIVE.reset(token)
