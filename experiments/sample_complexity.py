"""Command line of the sample-complexity study (:mod:`causal_grad.studies.sample_complexity`, whose docstring
gives the setting, the methods and the measured numbers).

    python experiments/sample_complexity.py --quick   # 4 trees × 3 draws, N = 16 … 16384 (75 s idle)
    python experiments/sample_complexity.py           # 10 trees × 5 draws, N = 2^4 … 2^17 (about 45 min on
                                                      # 2 cores, most of it Chow–Liu's pair counts)
    causal-grad verify --claims SC                    # preset "verify": 3 trees × 4 draws, N = 32 … 2048

Writes results/sample_complexity/{sample_complexity.png, summary.json}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from causal_grad.studies.sample_complexity import METHODS, MODES, NAME, run, settings  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
