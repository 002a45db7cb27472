"""The records of ``causal-grad verify``: a claim's verdict (:class:`ClaimResult`) and what every check receives
(:class:`VerifyContext`). Shared by the checks, the registry, the runner and the report writer; imports none of
them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "ClaimResult", "VerifyContext"]

STATUSES = ("pass", "partial", "fail")


@dataclass(frozen=True)
class ClaimResult:
    """One claim's verdict. ``status`` (one of :data:`STATUSES`) is decided from ``numbers`` by the check;
    ``summary`` is one line; ``checked_by`` names the toolkit functions by import path; ``figures`` are paths;
    ``seconds`` is filled in by the runner (:meth:`timed`)."""

    id: str
    title: str
    status: str
    summary: str
    numbers: dict
    checked_by: list[str]
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def timed(self, seconds: float, title: str) -> ClaimResult:
        """A copy with the run time and (when the check left it empty) the registered title."""
        return dataclasses.replace(self, seconds=float(seconds), title=self.title or title)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __repr__(self) -> str:
        return f"ClaimResult({self.id}: {self.status}, {self.summary[:80]!r}{'…' if len(self.summary) > 80 else ''})"


@dataclass
class VerifyContext:
    """What every check receives: scale, output folder, seed and a progress callback."""

    out: Path
    quick: bool = True
    seed: int = 0
    echo: Callable[[str], None] = print
    cache: dict = field(default_factory=dict)  # results shared between checks (e.g. a training run)

    def fig_path(self, name: str) -> Path:
        d = self.out / "figures"
        d.mkdir(parents=True, exist_ok=True)
        return d / name
