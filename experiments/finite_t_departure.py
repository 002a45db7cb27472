"""Command line of the finite-T departure study, claim C1 (:mod:`causal_grad.studies.finite_t_departure`, whose
docstring gives the setting and the metrics).

    python experiments/finite_t_departure.py --quick      # about 1.5 min (mostly compilation): a few small T
    python experiments/finite_t_departure.py              # full: T up to 200 (65 min on a 2-core machine at load 6-12)

Writes results/finite_t_departure/{summary.json, error_vs_T.png}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from causal_grad.studies.finite_t_departure import ALPHAS, FAMILIES, paper_size, plot, run, settings  # noqa: F401


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few small T (seconds)")
    ap.add_argument("--out", default="results/finite_t_departure", help="output folder")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fixed set of transition matrices")
    args = ap.parse_args(argv)
    return run(args.quick, Path(args.out), args.seed)


if __name__ == "__main__":
    main()
