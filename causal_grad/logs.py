"""Metric writers: ``metrics.csv`` always, TensorBoard and Weights & Biases on request.

A writer has ``write(step, metrics)`` (``metrics``: name -> real number, at an integer ``step``) and
``close()``; every writer here is also a context manager. :func:`open_writers` builds the set a run asks for
(``metrics.csv`` in the run folder, plus ``"tensorboard"`` and/or ``"wandb"``) behind one :class:`MultiWriter`,
so that a training loop needs two lines:

    writers = open_writers(run_dir, log=("tensorboard",), config=cfg.to_json())   # before the loop
    writers.write(step, flatten_metrics(row)); ...; writers.close()                # per logged row; at the end

* :class:`CSVWriter` — one row per ``write``, a ``step`` column then the metric columns in the order first
  seen. A key that was not there before widens the file (it is rewritten with the new column at the right,
  earlier rows empty in it) unless ``strict=True``, which refuses it; a key missing from a row leaves its cell
  empty. ``resume_from=step`` keeps the rows up to that step of an existing file (a resumed run);
* :class:`TensorBoardWriter` — event files for ``tensorboard --logdir`` (tensorboardX's ``SummaryWriter``; the
  extra ``causal_grad[tensorboard]``);
* :class:`WandbWriter` — a wandb run (the extra ``causal_grad[wandb]``; ``mode="offline"`` or the environment
  variable ``WANDB_MODE=offline`` keeps everything local, ``wandb sync`` uploads later).

Values are written as given (TensorBoard stores float32); ``nan``/``inf`` are kept (CSV: ``nan``, ``inf``).

:class:`AttentionSnapshots` records the first-layer attention at chosen steps into ``attention.npz``, the
input of the animation of ``causal-grad plot`` (:func:`causal_grad.plots.plot_run`).
"""

from __future__ import annotations

import csv
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Writer",
    "CSVWriter",
    "TensorBoardWriter",
    "WandbWriter",
    "MultiWriter",
    "open_writers",
    "flatten_metrics",
    "LOG_KINDS",
    "CSV_NAME",
    "AttentionSnapshots",
    "load_snapshots",
    "SNAPSHOT_NAME",
]

#: The optional writers :func:`open_writers` knows (``metrics.csv`` is always written).
LOG_KINDS = ("tensorboard", "wandb")
#: The CSV file's name in a run folder.
CSV_NAME = "metrics.csv"


@runtime_checkable
class Writer(Protocol):
    """Something that records ``metrics`` (name -> real number) at ``step``."""

    def write(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def _check_step(step, name: str = "step") -> int:
    if isinstance(step, bool) or not isinstance(step, (numbers.Integral, np.integer)) or step < 0:
        raise TypeError(f"{name} must be a non-negative int, got {step!r}")
    return int(step)


def _check_metrics(metrics) -> dict[str, float]:
    """``metrics`` as ``{str: float}``: keys non-empty strings, values real numbers (or 0-d arrays)."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping name -> number, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"metrics: keys must be non-empty strings, got {k!r}")
        if k == "step":
            raise ValueError("metrics: 'step' is the step column, not a metric name")
        if isinstance(v, (bool, np.bool_, numbers.Real, np.floating, np.integer)):
            v = float(v)
        elif hasattr(v, "shape") and getattr(v, "shape", None) == () and np.issubdtype(np.asarray(v).dtype, np.number):
            v = float(np.asarray(v))
        else:
            raise TypeError(
                f"metrics[{k!r}] must be a real number, got {type(v).__name__} (use flatten_metrics for nested results)"
            )
        out[k] = v
    return out


def flatten_metrics(row: Mapping[str, Any], *, prefix: str = "", sep: str = "/") -> dict[str, float]:
    """The real numbers of a nested result row as flat ``{"a/b": value}``: dicts are walked (keys joined by
    ``sep``), lists/tuples of numbers become ``"a/0"``, ``"a/1"``, …; booleans become 0/1; strings, ``None``
    and other objects are left out. E.g. ``{"loss": 2.1, "heads": {"split": True, "weight": [[0.9, 0.1]]}}``
    gives ``{"loss": 2.1, "heads/split": 1.0, "heads/weight/0/0": 0.9, "heads/weight/0/1": 0.1}``."""
    if not isinstance(row, Mapping):
        raise TypeError(f"row must be a mapping, got {type(row).__name__}")
    out: dict[str, float] = {}

    def walk(name: str, v):
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(f"{name}{sep}{k}" if name else str(k), x)
        elif isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim > 0):
            for i, x in enumerate(v):
                walk(f"{name}{sep}{i}", x)
        elif (
            isinstance(v, (bool, np.bool_, numbers.Real, np.number)) or (isinstance(v, np.ndarray) and v.ndim == 0)
        ) and name != "step":
            out[name] = float(v)

    walk(prefix, row)
    return out


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


class CSVWriter:
    """Rows ``step, metric…`` in a CSV file (see the module docstring for new and missing keys)."""

    def __init__(self, path: str | os.PathLike, *, strict: bool = False, resume_from: int | None = None):
        """``path``: the CSV file, or a folder (then ``folder/metrics.csv``). An existing file is replaced,
        unless ``resume_from`` is given: then its rows with ``step <= resume_from`` are kept and the new rows
        follow."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file or folder path, got {type(path).__name__}")
        p = Path(path)
        if p.is_dir() or p.suffix == "":
            p = p / CSV_NAME
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
        self.path, self.strict = p, strict
        self.columns: list[str] | None = None
        self._rows: list[dict[str, str]] = []
        if resume_from is not None:
            resume_from = _check_step(resume_from, "resume_from")
            if p.exists():
                with open(p, newline="") as fh:
                    reader = csv.DictReader(fh)
                    cols = list(reader.fieldnames or [])
                    if cols[:1] != ["step"]:
                        raise ValueError(f"resume_from: {p} is not a metrics file (its first column is not 'step')")
                    self.columns = cols[1:]
                    self._rows = [r for r in reader if int(r["step"]) <= resume_from]
        p.parent.mkdir(parents=True, exist_ok=True)
        self._fh = None
        self._rewrite()

    def _rewrite(self):
        if self._fh is not None:
            self._fh.close()
        self._fh = open(self.path, "w", newline="")  # noqa: SIM115 (kept open between writes)
        self._csv = csv.writer(self._fh)
        if self.columns is not None:
            self._csv.writerow(["step", *self.columns])
            for r in self._rows:
                self._csv.writerow([r.get("step", "")] + [r.get(c, "") for c in self.columns])
        self._fh.flush()

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append one row; flushed at once (a crash keeps every written row)."""
        step = _check_step(step)
        m = _check_metrics(metrics)
        if self._fh is None:
            raise ValueError(f"write: {self.path} is closed")
        if self.columns is None:
            self.columns = list(m)
            self._rewrite()
        new = [k for k in m if k not in self.columns]
        if new:
            if self.strict:
                raise ValueError(
                    f"metrics: new key(s) {', '.join(new)} not among the columns fixed at the first "
                    f"write ({', '.join(self.columns)}) of {self.path} (strict=True)"
                )
            self.columns += new
            self._rewrite()
        row = {"step": str(step), **{k: _fmt(v) for k, v in m.items()}}
        self._rows.append(row)
        self._csv.writerow([row["step"]] + [row.get(c, "") for c in self.columns])
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"CSVWriter({str(self.path)!r}, columns={self.columns}, rows={len(self._rows)})"


class TensorBoardWriter:
    """Scalars ``add_scalar(name, value, step)`` in TensorBoard event files under ``logdir`` (tensorboardX)."""

    def __init__(self, logdir: str | os.PathLike, *, flush_secs: int = 30):
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"logdir must be a folder path, got {type(logdir).__name__}")
        try:
            from tensorboardX import SummaryWriter  # optional: tensorboardX
        except ImportError:
            raise ImportError("TensorBoardWriter needs tensorboardX: pip install 'causal_grad[tensorboard]'") from None
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._w = SummaryWriter(logdir=str(self.logdir), flush_secs=flush_secs)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        step = _check_step(step)
        m = _check_metrics(metrics)
        if self._w is None:
            raise ValueError(f"write: the TensorBoard writer of {self.logdir} is closed")
        for k, v in m.items():
            self._w.add_scalar(k, v, global_step=step)

    def flush(self) -> None:
        if self._w is not None:
            self._w.flush()

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"TensorBoardWriter({str(self.logdir)!r})"


class WandbWriter:
    """A Weights & Biases run: ``run.log(metrics, step=step)`` per write, ``run.finish()`` on close."""

    def __init__(
        self,
        *,
        project: str = "causal_grad",
        name: str | None = None,
        config: Mapping | None = None,
        dir: str | os.PathLike | None = None,
        mode: str | None = None,
        **init_kwargs,
    ):
        """Arguments go to ``wandb.init`` (``mode``: ``"online"``, ``"offline"``, ``"disabled"``; ``None``
        follows ``WANDB_MODE``). ``dir`` is where wandb keeps its files (default: wandb's own)."""
        if mode is not None and mode not in ("online", "offline", "disabled"):
            raise ValueError(f"mode must be 'online', 'offline', 'disabled' or None, got {mode!r}")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        try:
            import wandb  # optional: wandb
        except ImportError:
            raise ImportError("WandbWriter needs wandb: pip install 'causal_grad[wandb]'") from None
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project,
            name=name,
            config=dict(config or {}),
            dir=None if dir is None else str(dir),
            mode=mode,
            reinit="finish_previous",
            **init_kwargs,
        )

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        step = _check_step(step)
        m = _check_metrics(metrics)
        if self.run is None:
            raise ValueError("write: the wandb run is finished")
        self.run.log(m, step=step, commit=True)  # one write = one complete row

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"WandbWriter(run={getattr(self.run, 'id', None)!r})"


class MultiWriter:
    """Several writers behind one ``write``/``close``."""

    def __init__(self, writers: Iterable[Writer]):
        self.writers = list(writers)
        for k, w in enumerate(self.writers):
            if not isinstance(w, Writer):
                raise TypeError(f"writers[{k}] must have write(step, metrics) and close(), got {type(w).__name__}")

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        step, m = _check_step(step), _check_metrics(metrics)
        for w in self.writers:
            w.write(step, m)

    def close(self) -> None:
        errors = []
        for w in self.writers:
            try:
                w.close()
            except Exception as exc:  # noqa: BLE001 (close every writer, then report the first error)
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"MultiWriter({self.writers})"


def open_writers(
    run_dir: str | os.PathLike,
    log: Sequence[str] | str | None = (),
    *,
    config: Mapping | None = None,
    resume_from: int | None = None,
    wandb_kwargs: Mapping | None = None,
) -> MultiWriter:
    """The writers of a run in ``run_dir``: always ``run_dir/metrics.csv`` (:class:`CSVWriter`, continued
    up to ``resume_from`` on a resumed run); ``"tensorboard"`` in ``log``: event files in ``run_dir/tensorboard``;
    ``"wandb"``: a wandb run named after the folder, with ``config``, its files in ``run_dir`` (more
    ``wandb.init`` arguments in ``wandb_kwargs``). The optional packages are imported only when asked for
    (``ImportError`` naming the extra to install)."""
    kinds = [log] if isinstance(log, str) else list(log or ())
    bad = [k for k in kinds if k not in LOG_KINDS]
    if bad:
        raise ValueError(f"log must name writers among {', '.join(LOG_KINDS)}, got {', '.join(map(repr, bad))}")
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a folder path, got {type(run_dir).__name__}")
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    writers: list[Writer] = [CSVWriter(d / CSV_NAME, resume_from=resume_from)]
    try:
        if "tensorboard" in kinds:
            writers.append(TensorBoardWriter(d / "tensorboard"))
        if "wandb" in kinds:
            writers.append(WandbWriter(name=d.name, config=config, dir=d, **dict(wandb_kwargs or {})))
    except BaseException:
        for w in writers:
            w.close()
        raise
    return MultiWriter(writers)


# ---------------------------------------------------------------------- attention snapshots over training
#: The file of a run's attention snapshots (read by ``causal_grad.plots.plot_run``).
SNAPSHOT_NAME = "attention.npz"


class AttentionSnapshots:
    """First-layer attention maps recorded during training, for the animation of ``causal-grad plot``.

    ``add(step, attention)`` appends one ``(H, T, T)`` map (e.g. the model's ``first_layer_attention``, averaged
    over the batch); ``save(path)`` writes ``steps (K,)`` and ``attention (K, H, T, T)`` (float32) to an
    ``.npz``; :func:`load_snapshots` reads it back. On a resumed run ``AttentionSnapshots.load(path,
    up_to=step)`` keeps the snapshots up to the checkpoint's step."""

    def __init__(self):
        self.steps: list[int] = []
        self.maps: list[np.ndarray] = []

    def add(self, step: int, attention) -> None:
        step = _check_step(step)
        a = np.asarray(attention, dtype=np.float32)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[1] != a.shape[2]:
            raise ValueError(f"attention must have shape (H, T, T), got {a.shape}")
        if self.maps and a.shape != self.maps[0].shape:
            raise ValueError(f"attention: shape {a.shape} differs from the first snapshot's {self.maps[0].shape}")
        if self.steps and step <= self.steps[-1]:
            raise ValueError(f"step must increase: {step} after {self.steps[-1]}")
        self.steps.append(step)
        self.maps.append(a)

    def __len__(self) -> int:
        return len(self.steps)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the snapshots (atomically: a temporary file renamed). Returns the path."""
        if not self.maps:
            raise ValueError("save: no snapshot was added")
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez_compressed(tmp, steps=np.asarray(self.steps, np.int64), attention=np.stack(self.maps))
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike, *, up_to: int | None = None) -> AttentionSnapshots:
        steps, att = load_snapshots(path)
        out = cls()
        for s, a in zip(steps.tolist(), att):
            if up_to is None or s <= up_to:
                out.add(s, a)
        return out

    def __repr__(self) -> str:
        shape = None if not self.maps else self.maps[0].shape
        return f"AttentionSnapshots({len(self)} maps of shape {shape})"


def load_snapshots(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(steps (K,), attention (K, H, T, T))`` from a snapshot file written by :class:`AttentionSnapshots`."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"path: no attention snapshot file at {p}")
    with np.load(p) as z:
        if "steps" not in z or "attention" not in z:
            raise ValueError(f"path: {p} is not an attention snapshot file (needs 'steps' and 'attention')")
        return np.asarray(z["steps"]), np.asarray(z["attention"])
