"""Checkpoints (orbax) and weight files (``.npz``) for training runs.

A checkpoint is the whole :class:`~causal_grad.training.loop.TrainState` (parameters, the current stage's
optimiser state, the step), saved by ``orbax.checkpoint.CheckpointManager`` under ``<run>/checkpoints/<step>``.
Final weights are written as ``.npz`` with one array per leaf, named by its path (``A/0``, ``W``,
``params/attn_0/qkv/kernel``…), so they load without JAX.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["Checkpointer", "save_weights", "load_weights", "leaf_name"]


class Checkpointer:
    """Save and restore training states in ``directory`` (keeps the newest ``max_to_keep``)."""

    def __init__(self, directory, max_to_keep: int = 3):
        from .._validate import check_int

        _check_path("directory", directory)
        max_to_keep = check_int("max_to_keep", max_to_keep, minimum=1)
        self.directory = Path(directory).absolute()
        self._mgr = ocp.CheckpointManager(self.directory,
                                          options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def save(self, step: int, state) -> None:
        """Save ``state`` as step ``step`` and wait until it is on disk."""
        self._mgr.save(int(step), args=ocp.args.StandardSave(state), force=True)
        self._mgr.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._mgr.latest_step()

    def restore(self, step: int, like):
        """The state saved at ``step``, with the structure (and dtypes) of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return self._mgr.restore(int(step), args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self._mgr.close()


def _check_path(name, path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def leaf_name(path) -> str:
    if not isinstance(path, tuple):
        raise TypeError(f"path must be a tuple of pytree keys (from jax.tree_util.tree_flatten_with_path), got "
                        f"{type(path).__name__}")
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:  # pragma: no cover
            parts.append(str(k))
    return "/".join(parts)


def save_weights(path, params) -> None:
    """Write ``params`` to ``path`` (``.npz``, one array per leaf named by its path), atomically."""
    path = _check_path("path", path)
    flat = {leaf_name(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    bad = [k for k, v in flat.items() if v.dtype.kind not in "biuf"]
    if bad or not flat:
        raise TypeError(f"params must be a non-empty pytree of numeric arrays (leaves {bad[:3]} are not)")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **flat)
    os.replace(tmp, path)


def load_weights(path, like=None):
    """The arrays of a weight file: a dict by leaf name, or (with ``like``) a pytree of ``like``'s structure."""
    if not _check_path("path", path).is_file():
        raise ValueError(f"path {path} is not a weight file (not found)")
    with np.load(path) as z:
        flat = {k: z[k] for k in z.files}
    if like is None:
        return flat
    leaves = jax.tree_util.tree_flatten_with_path(like)[0]
    names = [leaf_name(p) for p, _ in leaves]
    missing = [n for n in names if n not in flat]
    if missing:
        raise ValueError(f"weight file {path} lacks leaves {missing[:3]}…")
    return jax.tree.unflatten(jax.tree.structure(like), [flat[n] for n in names])
