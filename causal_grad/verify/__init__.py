"""Verification of the paper's claims C1–C9 (docs/theory.md §7): one check per claim, one row per claim; and one row
for the sample-complexity study SC (experiments/sample_complexity.py), which is not a claim of the paper.

* :mod:`.records` — :class:`ClaimResult` (one claim's verdict) and :class:`VerifyContext`;
* :mod:`.claims` — the checks, each ``check(ctx) -> ClaimResult``;
* :mod:`.registry` — claim id -> (title, check) (:data:`CLAIMS`, :func:`claim`);
* :mod:`.runner` — :func:`run_verify`;
* :mod:`.report` — :func:`write_report` (``verify.md`` with figures, ``verify.json``).

Each check computes its numbers with the toolkit's own functions (named in ``checked_by`` by import path),
decides a status from those numbers alone, and may write figures into ``ctx.out``:

* ``pass`` — the claim holds on every case checked, with the margins reported;
* ``partial`` — the claim's theorem holds but a documented finite-size or boundary case fails (docs/theory.md says
  where: the finite-``T`` gradient, the self entry, sticky priors); the counterexample is in ``numbers``;
* ``fail`` — a claim that should hold did not: ``causal-grad verify`` exits non-zero.
"""

from .records import STATUSES, ClaimResult, VerifyContext
from .registry import CLAIMS, claim, ordered_ids
from .report import write_report
from .runner import run_verify

__all__ = ["CLAIMS", "ClaimResult", "VerifyContext", "STATUSES", "claim", "ordered_ids", "run_verify", "write_report"]
