"""Command line of the out-of-distribution study, claim C8 (:mod:`causal_grad.studies.ood`, whose docstring
gives the setting and how to read the numbers).

    python experiments/ood.py --quick   # reduced 200 steps + disentangled 300 steps, 8192 sequences per prior
                                        # (79 s idle, half of it compiling one sampler per prior and model)
    python experiments/ood.py           # reduced 1000 steps + disentangled 3000 steps (layer-wise), 2^16
                                        # sequences per prior (about 5-10 min idle)

Writes results/ood/{ood.png, ood.md, summary.json, runs/}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from causal_grad.studies.ood import ALPHA, NAME, run, settings, table_markdown  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
