"""``causal-grad verify``: check each claim C1–C9, run the sample-complexity study SC, and write results/verify.md
(``make verify``)."""

from __future__ import annotations

from .._validate import check_output_path, check_seed


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check every claim of the paper and write results/verify.md",
        description="Run the check of each claim (C1-C9) and the sample-complexity study (SC: "
        "sequences needed to recover a tree by the gradient sign, training and "
        "Chow-Liu; not a claim of the paper) at quick scale, print one row per claim "
        "(id, status, numbers, the function that checked it) and write verify.md with "
        "figures. Exits with status 1 if a claim that should hold fails.",
    )
    p.add_argument("--claims", default=None, help="comma-separated claim ids to run, e.g. C4,SC (default: all)")
    p.add_argument(
        "--quick", action="store_true", default=True, help="quick scale (the default; minutes on a 2-core CPU)"
    )
    p.add_argument("--full", dest="quick", action="store_false", help="larger sizes (much slower)")
    p.add_argument("--out", default="results", help="output folder (default: results)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (default: shown on a terminal: the claims, and the trainings, sweeps and "
        "trials inside the long checks)",
    )
    p.set_defaults(func=run)


def parse_claims(text: str | None) -> list[str] | None:
    """``--claims``: comma-separated ids (``None``: every claim); an empty list is refused, not read as all."""
    if text is None:
        return None
    claims = [c.strip().upper() for c in text.split(",") if c.strip()]
    if not claims:
        raise ValueError(
            f"--claims names no claim id in {text!r}; give ids such as C4,SC, or omit --claims to run every claim"
        )
    return claims


def run(args) -> int:

    # every flag first, before JAX is imported
    claims = parse_claims(args.claims)
    check_seed("--seed", args.seed)
    out = check_output_path("--out", args.out, kind="dir")

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    from ..verify import run_verify  # lazy: CLI parsing stays JAX-free

    results = run_verify(claims, quick=args.quick, out=out, seed=args.seed)
    print()
    print(f"{'claim':6s} {'status':8s} summary")
    for r in results:
        print(f"{r.id:6s} {r.status:8s} {r.summary}")
        print(f"{'':15s} checked by {', '.join(r.checked_by)}")
    print(f"\nreport: {out / 'verify.md'}")
    return 1 if any(r.status == "fail" for r in results) else 0
