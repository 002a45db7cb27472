"""The runner of ``causal-grad verify``: run the registered checks in order, print a row per claim as it
finishes, and rewrite the report after each one (so a partial report survives an interruption). On a terminal
a progress bar counts the claims (the long checks add their own bars below it: trainings, sweeps, trials);
the printed rows go above the bars (:func:`causal_grad.progress.progress`, hidden by ``--no-progress``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .._validate import check_output_path, check_seed
from ..progress import progress
from .records import ClaimResult, VerifyContext
from .registry import CLAIMS, ordered_ids
from .report import write_report

__all__ = ["run_verify"]


def run_verify(
    claims: list[str] | None = None,
    *,
    quick: bool = True,
    out: str | Path = "results",
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> list[ClaimResult]:
    """Run the checks of ``claims`` (default: all registered: the claims C1, C2, … then the studies such as
    ``SC``), print one row per claim as it finishes, and write the report under ``out``."""
    if claims is not None and (
        isinstance(claims, str) or not isinstance(claims, (list, tuple)) or not all(isinstance(c, str) for c in claims)
    ):
        raise TypeError(f"claims must be a list of claim ids such as ['C1', 'SC'], got {claims!r}")
    seed = check_seed("seed", seed)
    if claims is not None and not claims:
        raise ValueError("claims is empty: name at least one claim id, or pass None to run every claim")
    out = check_output_path("out", out, kind="dir")
    ids = ordered_ids(CLAIMS) if claims is None else list(claims)
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise ValueError(f"claims must be among {', '.join(CLAIMS)}; unknown: {', '.join(unknown)}")
    bar = progress(total=len(ids), desc="verify", unit="claim")

    def say(message: str) -> None:  # above the progress bars, which are redrawn below it
        with bar.external_write_mode():
            echo(message)

    ctx = VerifyContext(out=Path(out), quick=quick, seed=seed, echo=say if not bar.disable else echo)
    ctx.out.mkdir(parents=True, exist_ok=True)
    results = []
    with bar:
        for k, cid in enumerate(ids, 1):
            title, fn = CLAIMS[cid]
            bar.set_postfix_str(cid)
            ctx.echo(f"[{k}/{len(ids)}] {cid}: {title} ...")
            t0 = time.perf_counter()
            r = fn(ctx).timed(time.perf_counter() - t0, title)
            ctx.echo(f"    {r.status.upper():8s} {r.summary}  ({r.seconds:.1f} s)")
            results.append(r)
            write_report(results, ctx.out, quick=quick)  # partial report survives an interruption
            bar.update(1)
    return results
