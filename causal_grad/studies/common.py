"""What the studies share (docs/theory.md §6): their output files, their training runs and their modes.

* :func:`mode_of` — a study's preset from its ``quick``/``smoke`` flags ("full", "quick", "smoke");
* :func:`write_summary` — ``summary.json`` (NumPy values converted, non-finite floats as ``null``);
* :func:`train_run` — one :func:`causal_grad.training.train` run kept under ``out/runs/<label>``;
* :func:`forest_summary` — the final held-out numbers of a forest run;
* :data:`SMOKE_TRAIN` — the tests' few-step training settings (plumbing, not learning).

The experiment scripts of ``experiments/`` use the same helpers (through ``experiments/_expkit.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..training import train

__all__ = ["mode_of", "write_summary", "to_jsonable", "train_run", "forest_summary", "SMOKE_TRAIN"]


#: The tests' "smoke" training: a few steps of joint training (one compiled stage instead of two); it checks the
#: plumbing, not the learning.
SMOKE_TRAIN = dict(
    schedule="joint", optimizer="sgd", lr=1.0, steps=20, batch=128, eval_size=512, eval_every=10, log_every=10
)


def mode_of(quick: bool, smoke: bool) -> str:
    """ "smoke" if ``smoke``, else "quick" or "full" by ``quick``."""
    return "smoke" if smoke else ("quick" if quick else "full")


def to_jsonable(x: Any) -> Any:
    """``x`` with NumPy values as Python ones, non-finite floats as ``None`` and paths as strings (recursively)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if np.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def write_summary(out: Path, summary: dict, name: str = "summary.json") -> Path:
    """Write ``summary`` (numpy values converted, non-finite floats as null) to ``out/name``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(to_jsonable(summary), indent=1))
    return path


def train_run(cfg: Any, out: Path, label: str, *, quick: bool) -> Any:  # -> TrainResult
    """Train ``cfg`` keeping the run in ``out/runs/<label>``. With checkpoints (full mode) a run of the same
    config resumes from its newest checkpoint (a finished one is just reloaded); without, it is trained again
    from scratch and overwritten. A different config in that folder raises ``ValueError``."""
    folder = Path(out) / "runs" / label
    resume = (folder / "config.json").is_file()  # a folder that holds a run; a fresh one starts from step 0
    return train(cfg, folder, resume=resume, progress=not quick)


def forest_summary(res: Any) -> dict:  # res: a TrainResult
    """Final held-out numbers of a forest run: loss and baselines, recovery, parent attention, SHD, induction
    scores; with the run's length and wall time."""
    f = res.final.to_dict()
    b = res.baselines
    keys = (
        "loss",
        "excess_over_in_context",
        "recovered",
        "all_recovered",
        "mean_parent_attention",
        "min_parent_attention",
        "shd",
        "previous_token",
        "diag_minus_offdiag",
        "diag_argmax_rows",
    )
    out = {k: f[k] for k in keys if k in f}
    out.update(
        in_context=b.in_context,
        entropy_floor=b.entropy_floor,
        unigram=b.others.get("unigram"),
        parents=list(res.config.graph.parents),
        steps=res.history.steps_done,
        wall_s=res.history.wall_s,
        model=res.config.model.name,
        schedule=res.config.optim.schedule,
    )
    return out
