"""The claim registry, the result record and the report writer behind ``causal-grad verify``."""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .._validate import check_output_path

__all__ = ["ClaimResult", "VerifyContext", "CLAIMS", "claim", "run_verify", "write_report", "STATUSES"]

STATUSES = ("pass", "partial", "fail")


@dataclass
class ClaimResult:
    """One claim's verdict. ``status`` is decided from ``numbers`` by the check; ``summary`` is one line."""

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


#: claim id -> (title, check function)
CLAIMS: dict[str, tuple[str, Callable[[VerifyContext], ClaimResult]]] = {}


def claim(cid: str, title: str):
    """Register ``check(ctx) -> ClaimResult`` as the check of ``cid``: a paper claim ``C<k>``, or a study that
    is not a claim of the paper, named by two to eight capital letters (``SC``: sample complexity). Studies run
    after the claims, in the order registered."""
    if not isinstance(cid, str) or not re.fullmatch(r"C\d+|[A-Z]{2,8}", cid):
        raise (TypeError if not isinstance(cid, str) else ValueError)(
            f"cid must be a claim id such as 'C1' or a study id such as 'SC', got {cid!r}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")

    def deco(fn):
        CLAIMS[cid] = (title, fn)
        return fn

    return deco


def _ordered(ids) -> list[str]:
    """The paper's claims ``C<k>`` by ``k``, then the studies in the order given."""
    ids = list(ids)
    return (sorted((c for c in ids if re.fullmatch(r"C\d+", c)), key=lambda c: int(c[1:]))
            + [c for c in ids if not re.fullmatch(r"C\d+", c)])


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    return x


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(results: list[ClaimResult], out: Path, *, quick: bool) -> Path:
    """Write ``verify.md`` (a table, then one section per claim with its numbers and figures) and
    ``verify.json``; return the markdown path."""
    if not isinstance(results, (list, tuple)) or not all(isinstance(r, ClaimResult) for r in results):
        raise TypeError("results must be a list of ClaimResult")
    out = check_output_path("out", out, kind="dir")
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# causal_grad: verification of the claims", "",
             f"Scale: {'quick' if quick else 'full'}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.", "",
             "| claim | status | summary | checked by |", "| --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.id} | **{r.status}** | {r.summary} | {', '.join(f'`{c}`' for c in r.checked_by)} |")
    for r in results:
        lines += ["", f"## {r.id}: {r.title}", "", f"Status: **{r.status}** ({r.seconds:.1f} s). {r.summary}", ""]
        for k, v in r.numbers.items():
            if isinstance(v, (list, dict)) and len(json.dumps(_jsonable(v))) > 300:
                v = json.dumps(_jsonable(v))[:300] + " …"
            lines.append(f"- `{k}`: {_fmt(v)}")
        for f in r.figures:
            rel = os.path.relpath(f, out)
            lines += ["", f"![{r.id}]({rel})"]
    md = out / "verify.md"
    _atomic_write(md, "\n".join(lines) + "\n")
    _atomic_write(out / "verify.json", json.dumps([_jsonable(asdict(r)) for r in results], indent=1))
    return md


def run_verify(claims: list[str] | None = None, *, quick: bool = True, out: str | Path = "results",
               seed: int = 0, echo: Callable[[str], None] = print) -> list[ClaimResult]:
    """Run the checks of ``claims`` (default: all registered: the claims C1, C2, … then the studies such as
    ``SC``), print one row per claim as it finishes, and write the report under ``out``."""
    from . import claims as _claims  # noqa: F401  (registers the checks)

    from .._validate import check_seed

    if claims is not None and (isinstance(claims, str) or not isinstance(claims, (list, tuple))
                               or not all(isinstance(c, str) for c in claims)):
        raise TypeError(f"claims must be a list of claim ids such as ['C1', 'SC'], got {claims!r}")
    seed = check_seed("seed", seed)
    if claims is not None and not claims:
        raise ValueError("claims is empty: name at least one claim id, or pass None to run every claim")
    out = check_output_path("out", out, kind="dir")
    ids = _ordered(CLAIMS) if claims is None else list(claims)
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise ValueError(f"claims must be among {', '.join(CLAIMS)}; unknown: {', '.join(unknown)}")
    ctx = VerifyContext(out=Path(out), quick=quick, seed=seed, echo=echo)
    ctx.out.mkdir(parents=True, exist_ok=True)
    results = []
    for k, cid in enumerate(ids, 1):
        title, fn = CLAIMS[cid]
        echo(f"[{k}/{len(ids)}] {cid}: {title} ...")
        t0 = time.perf_counter()
        r = fn(ctx)
        r.seconds = time.perf_counter() - t0
        r.title = r.title or title
        echo(f"    {r.status.upper():8s} {r.summary}  ({r.seconds:.1f} s)")
        results.append(r)
        write_report(results, ctx.out, quick=quick)  # partial report survives an interruption
    return results
