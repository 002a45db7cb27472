"""The report writer of ``causal-grad verify``: ``verify.md`` (a table, then one section per claim with its
numbers and figures) and ``verify.json``."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .._validate import check_output_path
from .records import ClaimResult

__all__ = ["write_report"]


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


def write_report(results: list[ClaimResult], out: str | Path, *, quick: bool) -> Path:
    """Write ``verify.md`` (a table, then one section per claim with its numbers and figures) and
    ``verify.json``; return the markdown path."""
    if not isinstance(results, (list, tuple)) or not all(isinstance(r, ClaimResult) for r in results):
        raise TypeError("results must be a list of ClaimResult")
    out = check_output_path("out", out, kind="dir")
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# causal_grad: verification of the claims",
        "",
        f"Scale: {'quick' if quick else 'full'}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        "",
        "| claim | status | summary | checked by |",
        "| --- | --- | --- | --- |",
    ]
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
    _atomic_write(out / "verify.json", json.dumps([_jsonable(r.to_dict()) for r in results], indent=1))
    return md
