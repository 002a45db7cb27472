"""Verification of the paper's claims C1–C9 (docs/theory.md §7): one check per claim, one row per claim; and one row
for the sample-complexity study SC (experiments/sample_complexity.py), which is not a claim of the paper.

Each check is a function ``check(ctx) -> ClaimResult`` registered in :data:`CLAIMS`. It computes its numbers
with the toolkit's own functions (named in ``checked_by`` by import path), decides a status from those numbers
alone, and may write figures into ``ctx.out``:

* ``pass`` — the claim holds on every case checked, with the margins reported;
* ``partial`` — the claim's theorem holds but a documented finite-size or boundary case fails (docs/theory.md says
  where: the finite-``T`` gradient, the self entry, sticky priors); the counterexample is in ``numbers``;
* ``fail`` — a claim that should hold did not: ``causal-grad verify`` exits non-zero.

:func:`run_verify` runs the checks, prints progress, and writes ``verify.md`` (with figures embedded) and
``verify.json`` under the output folder.
"""

from .report import CLAIMS, ClaimResult, VerifyContext, run_verify, write_report

__all__ = ["CLAIMS", "ClaimResult", "VerifyContext", "run_verify", "write_report"]
