"""Scoped float64: exact computations run inside ``with x64():`` (exact paths run in float64)."""

from __future__ import annotations

import contextlib

import jax

__all__ = ["x64"]


def x64() -> contextlib.AbstractContextManager:
    """A context manager that enables 64-bit JAX types inside its block only."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pyright: ignore[reportAttributeAccessIssue]  # compat: JAX < 0.6

    return enable_x64()
