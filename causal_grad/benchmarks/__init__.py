"""Benchmarks behind ``make bench`` / ``causal-grad bench``.

Each module ``causal_grad.benchmarks.<topic>`` defines ``run(quick: bool) -> list[dict]``; every dict is one
printed row with keys ``name``, ``value``, ``unit`` and optionally ``target`` (a human-readable goal),
``ok`` (bool: whether the measured value meets it) and ``note``. The module's docstring is the benchmark's
definition (what is timed, at which sizes, against which target); ``causal-grad bench`` copies it, with every
row, into ``results/bench.md``. Timings use [timeit][causal_grad.benchmarks.timeit] (best of repeats, after a
warm-up call that includes compilation).
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable

from .._validate import check_callable, check_int
from ..progress import progress

__all__ = ["timeit", "discover", "run_all", "format_rows"]


def timeit(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time (s) of ``fn()`` over ``repeat`` calls; ``fn`` must block until its result is ready."""
    check_callable("fn", fn)
    repeat = check_int("repeat", repeat, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def discover() -> list[str]:
    """The benchmark topics: the names of this package's public submodules, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run_all(topics: list[str] | None = None, quick: bool = False, echo: Callable[[str], None] = print) -> list[dict]:
    """Run the benchmarks of ``topics`` (default: every topic of [discover][causal_grad.benchmarks.discover]).

    Prints each row through ``echo`` as it is measured and returns every row, each with its ``topic`` added.
    """
    if topics is not None:
        if (
            isinstance(topics, str)
            or not isinstance(topics, (list, tuple))
            or not all(isinstance(t, str) for t in topics)
        ):
            raise TypeError(f"topics must be a list of benchmark names, got {topics!r}")
        unknown = [t for t in topics if t not in discover()]
        if unknown:
            raise ValueError(f"topics must be among {', '.join(discover())}; unknown: {', '.join(unknown)}")
    rows: list[dict] = []
    for topic in progress(topics or discover(), desc="bench", unit="topic"):
        mod = importlib.import_module(f"{__name__}.{topic}")
        echo(f"== {topic}")
        for row in mod.run(quick):
            row = {"topic": topic, **row}
            rows.append(row)
            echo(format_rows([row]))
    return rows


def format_rows(rows: list[dict]) -> str:
    """One aligned text line per row: name, value, unit, then the target, whether it is met, and the note."""
    if not isinstance(rows, (list, tuple)) or not all(
        isinstance(r, dict) and "name" in r and "value" in r for r in rows
    ):
        raise TypeError("rows must be a list of dicts with at least 'name' and 'value'")
    out = []
    for r in rows:
        val = r["value"]
        val = f"{val:,.4g}" if isinstance(val, float) else f"{val:,}" if isinstance(val, int) else str(val)
        status = "" if "ok" not in r else ("  [meets target]" if r["ok"] else "  [MISSES target]")
        tgt = f"  (target {r['target']})" if r.get("target") else ""
        note = f"  -- {r['note']}" if r.get("note") else ""
        out.append(f"  {r['name']:<58} {val:>14} {r.get('unit', '')}{tgt}{status}{note}")
    return "\n".join(out)
