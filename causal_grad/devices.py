"""Use every CPU core: one JAX host device per core, chosen before JAX's backend starts (docs/theory.md §5).

XLA runs each small program of this project on one thread, so on a CPU the way to use several cores is data
parallelism over several *host devices* (the training loop splits the batch over them). JAX's CPU client creates
its devices once, when the backend initialises (the first array, ``jax.devices()``, a compiled call); the number
is the config option ``jax_num_cpu_devices`` (default ``-1``: one device), which must therefore be set before
that moment and cannot be changed after it.

:func:`use_all_cores` sets it to the number of cores this process may run on. It does nothing (and says why in
the returned :class:`CpuDevices`) when

* the opt-out is set: environment variable ``CAUSAL_GRAD_CPU_DEVICES`` (an integer ``n >= 1``: use ``n``
  devices instead; ``1`` turns the feature off) or the argument ``n``;
* the user already chose: ``jax_num_cpu_devices`` is set (``JAX_NUM_CPU_DEVICES`` or an earlier update), or
  ``XLA_FLAGS`` holds ``--xla_force_host_platform_device_count`` (which ``jax_num_cpu_devices`` would override);
* an accelerator is the default platform: ``JAX_PLATFORMS`` / ``jax_platforms`` names a platform other than
  ``cpu`` first, or (no platform named) an accelerator plugin (``jax_plugins.*``, ``libtpu``) is installed;
* the backend has already started (then the count can no longer change).

``import causal_grad`` calls it (:func:`use_all_cores_at_import`; the result is ``causal_grad.CPU_DEVICES``), so
that Python code gets every core without asking, as the command line does; import causal_grad before JAX's first
computation (``CAUSAL_GRAD_CPU_DEVICES=1`` turns it off). Call :func:`use_all_cores` yourself, before any JAX
computation, for another count; it replaces the count set at import (the command line's ``--devices`` does this).
Before JAX is imported it does not import it: it sets the environment variable ``JAX_NUM_CPU_DEVICES``, which JAX
reads when it is imported (so the command line stays fast for a bad flag); after, it updates ``jax.config``.
:func:`causal_grad.train` then trains data-parallel over the devices by default.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pkgutil
import sys
import warnings

from ._validate import check_int

__all__ = ["OPT_OUT_ENV", "CpuDevices", "core_count", "use_all_cores", "use_all_cores_at_import"]

#: Environment variable: an integer number of host CPU devices (``1`` = opt out, one device as plain JAX).
OPT_OUT_ENV = "CAUSAL_GRAD_CPU_DEVICES"

_FORCE_FLAG = "--xla_force_host_platform_device_count"


@dataclasses.dataclass(frozen=True)
class CpuDevices:
    """What :func:`use_all_cores` did: ``devices`` is the count it set (``None`` when it set nothing), ``reason``
    one sentence (``"set"``, or why it left JAX alone)."""

    devices: int | None
    reason: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def core_count() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one, else ``os.cpu_count()``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n)


def _accelerator_default(jax=None) -> str | None:
    """The reason an accelerator will be JAX's default platform, or ``None`` (checked without starting JAX, and
    without importing it when ``jax`` is ``None``)."""
    platforms = (getattr(jax.config, "jax_platforms", None) if jax is not None else None) or os.environ.get(
        "JAX_PLATFORMS", ""
    )
    names = [p.strip().lower() for p in str(platforms).split(",") if p.strip()]
    if names:
        return None if names[0] == "cpu" else f"JAX_PLATFORMS names {names[0]!r} first"
    try:
        import jax_plugins  # pyright: ignore[reportMissingImports]  # optional: jax_plugins (CUDA/ROCm plugins; absent on a CPU-only install)

        plugins = sorted(m.name for m in pkgutil.iter_modules(jax_plugins.__path__))
    except ImportError:
        plugins = []
    if plugins:
        return f"accelerator plugin(s) installed: {', '.join(plugins)}"
    if importlib.util.find_spec("libtpu") is not None:
        return "libtpu is installed"
    return None


#: The count :func:`use_all_cores_at_import` set (``None``: it set nothing). A later explicit call may replace it
#: while JAX's backend has not started (the command line's ``--devices``), which a user's own setting may not.
_AUTO: int | None = None


def _is_auto(current) -> bool:
    return _AUTO is not None and str(current).strip() == str(_AUTO)


def use_all_cores(n: int | None = None) -> CpuDevices:
    """Give JAX's CPU backend ``n`` host devices (default: :func:`core_count`), before the backend starts.

    ``n`` (or the environment variable ``CAUSAL_GRAD_CPU_DEVICES``, which takes precedence over the default but
    not over an explicit ``n``) must be an integer ``>= 1``; ``1`` leaves JAX at its single CPU device. Returns a
    :class:`CpuDevices`; never raises for a situation in which it cannot act (see the module docstring), only for
    a bad ``n`` or a bad environment value. A count set by :func:`use_all_cores_at_import` (``import
    causal_grad``) is not a user's choice: this call replaces it, ``1`` included, until the backend starts.
    """
    global _AUTO
    if n is not None:
        n = check_int("n", n, minimum=1)
    else:
        raw = os.environ.get(OPT_OUT_ENV, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{OPT_OUT_ENV} must be an integer >= 1 (1 = one CPU device), got {raw!r}") from None
            n = check_int(OPT_OUT_ENV, value, minimum=1)
        else:
            n = core_count()
    jax = sys.modules.get("jax")  # not imported here: before JAX is imported, the environment variable does it
    if n == 1:
        if _AUTO is not None:  # undo the count set at import
            if jax is None:
                os.environ.pop("JAX_NUM_CPU_DEVICES", None)
            else:
                try:
                    jax.config.update("jax_num_cpu_devices", 1)
                except RuntimeError:
                    return CpuDevices(None, "JAX's backend has already started with the count set at import")
            _AUTO = None
        return CpuDevices(None, "one device requested (opt-out)")
    if jax is None:
        current = os.environ.get("JAX_NUM_CPU_DEVICES", "").strip()
        if current and current != "-1" and not _is_auto(current):
            return CpuDevices(None, f"jax_num_cpu_devices already set to {current} (JAX_NUM_CPU_DEVICES)")
        if _FORCE_FLAG in os.environ.get("XLA_FLAGS", ""):
            return CpuDevices(None, f"XLA_FLAGS already sets {_FORCE_FLAG}")
        why = _accelerator_default()
        if why is not None:
            return CpuDevices(None, f"accelerator is the default platform ({why})")
        os.environ["JAX_NUM_CPU_DEVICES"] = str(n)
        _AUTO = None
        return CpuDevices(n, "set")
    if not hasattr(jax.config, "jax_num_cpu_devices"):
        return CpuDevices(None, "this JAX has no jax_num_cpu_devices option")
    current = getattr(jax.config, "jax_num_cpu_devices", None)
    if current is not None and int(current) != -1 and not _is_auto(current):
        return CpuDevices(None, f"jax_num_cpu_devices already set to {current}")
    if _FORCE_FLAG in os.environ.get("XLA_FLAGS", ""):
        return CpuDevices(None, f"XLA_FLAGS already sets {_FORCE_FLAG}")
    why = _accelerator_default(jax)
    if why is not None:
        return CpuDevices(None, f"accelerator is the default platform ({why})")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX refuses once its backends exist
        return CpuDevices(None, "JAX's backend has already started; call use_all_cores() before any JAX computation")
    _AUTO = None
    return CpuDevices(n, "set")


def use_all_cores_at_import() -> CpuDevices:
    """What ``import causal_grad`` does: :func:`use_all_cores` with its defaults (every core, unless an opt-out,
    a user's own setting or an accelerator says otherwise), so that :func:`causal_grad.train` called from Python
    trains data-parallel over every core as the command line does. Its result is ``causal_grad.CPU_DEVICES``. A
    bad ``CAUSAL_GRAD_CPU_DEVICES`` does not fail the import: it gives a warning naming the variable (the
    command line then refuses it as a usage error)."""
    global _AUTO
    try:
        r = use_all_cores()
    except ValueError as exc:
        warnings.warn(f"{exc}; using JAX's own CPU device count", stacklevel=3)
        return CpuDevices(None, str(exc))
    _AUTO = r.devices
    return r
