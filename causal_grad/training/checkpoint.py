"""Checkpoints (orbax) and weight files (``.npz``) for training runs.

A checkpoint is the whole :class:`~causal_grad.training.loop.TrainState` (parameters, the current stage's
optimiser state, the step), saved by ``orbax.checkpoint.CheckpointManager`` under ``<run>/checkpoints/<step>``,
with a manifest ``<step>/causal_grad_sha256.json`` (the SHA-256 of every file of the checkpoint, written once orbax
has finished).
:func:`checkpoint_problem` checks one against its manifest (a missing, truncated or overwritten file is named)
and :func:`usable_checkpoints` sorts a folder's checkpoints into those that read back completely and those that
do not, without JAX compute: a resumed run validates its checkpoints before its expensive start-up.
Final weights are written as ``.npz`` with one array per leaf, named by its path (``A/0``, ``W``,
``params/attn_0/qkv/kernel``…), so they load without JAX.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from .._validate import check_int

__all__ = [
    "Checkpointer",
    "save_weights",
    "load_weights",
    "leaf_name",
    "checkpoint_problem",
    "usable_checkpoints",
    "set_aside",
    "MANIFEST_NAME",
]

#: The manifest of a checkpoint: ``{"files": {relative path: sha256}}``, inside the step's folder.
MANIFEST_NAME = "causal_grad_sha256.json"
#: Files orbax needs in every checkpoint (checked also when a checkpoint has no manifest).
_REQUIRED = ("_CHECKPOINT_METADATA", "default/_METADATA")


class Checkpointer:
    """Save and restore training states in ``directory`` (keeps the newest ``max_to_keep``)."""

    def __init__(self, directory, max_to_keep: int = 3):
        _check_path("directory", directory)
        max_to_keep = check_int("max_to_keep", max_to_keep, minimum=1)
        self.directory = Path(directory).absolute()
        self._mgr = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )

    def save(self, step: int, state) -> None:
        """Save ``state`` as step ``step``, wait until it is on disk, then write its manifest."""
        self._mgr.save(int(step), args=ocp.args.StandardSave(state), force=True)
        self._mgr.wait_until_finished()
        _write_manifest(self.directory / str(int(step)))

    def latest_step(self) -> int | None:
        return self._mgr.latest_step()

    def restore(self, step: int, like) -> Any:
        """The state saved at ``step``, with the structure (and dtypes) of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return self._mgr.restore(int(step), args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self._mgr.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def _write_manifest(folder: Path) -> None:
    files = {name: _sha256(folder / name) for name in _files(folder)}
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1))
    os.replace(tmp, folder / MANIFEST_NAME)


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why the checkpoint in ``folder`` (``<run>/checkpoints/<step>``) would not read back completely, naming the
    file — or ``None`` when it is whole: every file of its manifest is present with the saved SHA-256 and orbax's
    metadata files are there. A checkpoint without a manifest (an earlier version, or a crash between orbax's
    commit and the manifest) is checked for orbax's metadata files and that they parse as JSON."""
    folder = _check_path("folder", folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        try:
            files = json.loads(manifest.read_text())["files"]
            if not isinstance(files, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return f"its manifest {manifest} is unreadable"
        for name, digest in files.items():
            p = folder / name
            if not p.is_file():
                return f"{p} is missing"
            if _sha256(p) != digest:
                return f"{p} differs from the file saved (SHA-256 mismatch: overwritten or truncated)"
    for name in _REQUIRED:
        p = folder / name
        if not p.is_file():
            return f"{p} is missing"
        try:
            json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError):
            return f"{p} is not valid JSON (overwritten or truncated)"
    return None


def usable_checkpoints(directory: str | os.PathLike) -> tuple[list[int], dict[int, str]]:
    """The checkpoints of ``directory`` (``<run>/checkpoints``): ``(steps that read back completely, ascending;
    {step: why not} for the others)`` by :func:`checkpoint_problem`. No JAX, no orbax: a file check."""
    directory = _check_path("directory", directory)
    good, bad = [], {}
    if not directory.is_dir():
        return good, bad
    for p in sorted((p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        why = checkpoint_problem(p)
        if why is None:
            good.append(int(p.name))
        else:
            bad[int(p.name)] = why
    return good, bad


def set_aside(directory: str | os.PathLike, step: int) -> Path:
    """Move checkpoint ``step`` of ``directory`` out of orbax's way, to ``<directory>.skipped/<step>`` (kept for
    inspection, never deleted; a later save of that step can then write a fresh one). Returns the new place."""
    directory = _check_path("directory", directory)
    src = directory / str(check_int("step", step, minimum=0))
    dest_dir = directory.with_name(directory.name + ".skipped")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, k = dest_dir / src.name, 1
    while dest.exists():
        dest, k = dest_dir / f"{src.name}.{k}", k + 1
    shutil.move(str(src), str(dest))
    return dest


def _check_path(name, path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def leaf_name(path) -> str:
    if not isinstance(path, tuple):
        raise TypeError(
            f"path must be a tuple of pytree keys (from jax.tree_util.tree_flatten_with_path), got "
            f"{type(path).__name__}"
        )
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
    np.savez(tmp, **flat)  # pyright: ignore[reportArgumentType]  # numpy stubs check **kwds against allow_pickle
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
