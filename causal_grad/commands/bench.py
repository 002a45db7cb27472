"""``causal-grad bench``: run the benchmarks and print one row per figure."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run the speed and memory benchmarks (make bench)",
                       description="Run the benchmarks under causal_grad/benchmarks and print each measured "
                                   "figure beside its target.")
    p.add_argument("topics", nargs="*", help="benchmark modules to run (default: all)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (seconds), for smoke tests")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..benchmarks import discover, run_all

    known = discover()
    bad = [t for t in args.topics if t not in known]
    if bad:
        raise ValueError(f"topics must be among {', '.join(known)}; unknown: {', '.join(bad)}")
    rows = run_all(args.topics or None, quick=args.quick)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)
    return 0
