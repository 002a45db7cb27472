"""Progress bars for the jobs that take more than a few seconds (``tqdm``), quiet where nobody watches.

:func:`progress` wraps an iterable (or counts ``total`` steps) in a tqdm bar on standard error. It is shown
when standard error is a terminal or the code runs in a Jupyter kernel, and hidden otherwise (logs, CI, pipes),
inside :func:`quiet_progress` (the ``--no-progress`` flag of the commands), or when the environment variable
``CAUSAL_GRAD_NO_PROGRESS`` is set to anything but ``""``/``"0"``. A hidden bar costs nothing: tqdm's
``disable=True`` passes the items through.

    from causal_grad.progress import progress
    for claim in progress(claims, desc="verify", unit="claim"):
        ...
    with progress(total=n_chunks, desc="Monte Carlo") as bar:
        ...; bar.update(1)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = ["progress", "quiet_progress", "progress_enabled"]

T = TypeVar("T")

_ENABLED: contextvars.ContextVar[bool | None] = contextvars.ContextVar("causal_grad_progress", default=None)


def _in_jupyter_kernel() -> bool:
    """True inside a running Jupyter kernel: IPython's current shell has a ``kernel`` (a module merely
    imported, as a notebook-running test does, does not count)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None:
        return False
    try:
        shell = get()
    except Exception:  # noqa: BLE001 - an IPython in an odd state is not a kernel
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _interactive() -> bool:
    if _in_jupyter_kernel():
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def progress_enabled() -> bool:
    """Whether :func:`progress` shows a bar here: not inside :func:`quiet_progress(True)`, not with
    ``CAUSAL_GRAD_NO_PROGRESS`` set, and standard error a terminal (or a Jupyter kernel) — unless a
    :func:`quiet_progress(False)` block forces bars on."""
    forced = _ENABLED.get()
    if forced is not None:
        return forced
    if os.environ.get("CAUSAL_GRAD_NO_PROGRESS", "") not in ("", "0"):
        return False
    return _interactive()


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """Within the block, hide every progress bar (``quiet=True``: ``--no-progress``) or show them even when
    standard error is not a terminal (``quiet=False``)."""
    if not isinstance(quiet, bool):
        raise TypeError(f"quiet must be a bool, got {type(quiet).__name__}")
    token = _ENABLED.set(not quiet)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    leave: bool = False,
    enabled: bool | None = None,
) -> tqdm:
    """A tqdm bar over ``iterable`` (or over ``total`` manual ``update`` steps) on standard error, labelled
    ``desc``; ``enabled=None`` follows :func:`progress_enabled`. ``leave=False`` clears the bar when done, so
    that the command's own output stays readable."""
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ValueError(f"total must be a non-negative int or None, got {total!r}")
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool or None, got {type(enabled).__name__}")
    show = progress_enabled() if enabled is None else enabled
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not show, file=sys.stderr, dynamic_ncols=True
    )
