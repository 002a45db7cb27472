"""Figure 2 of the paper: on an in-context Markov chain the disentangled transformer learns an induction head.

Chain p(i) = i-1 on 19 graph positions plus the query (T = 20), S = 10, Dirichlet(0.1) rows (docs/theory.md §6). Panels:
the first-layer position attention softmax(A1) with the chain's edges (i, i-1) outlined (a previous-token
head), the layer-2 token block A2 (diagonal-dominant: match the query's token against the gathered one), and
the held-out loss against the in-context estimator's line, the unigram estimator and the entropy floor
(claims C5, C6).

    python experiments/fig2_chain.py --quick   # layer-wise schedule, 300 steps × 1024: 15 s on an idle
                                               # 2-core CPU (about 1 min when the machine is shared)
    python experiments/fig2_chain.py           # the paper's run: joint GD from zero, lr 1, cosine,
                                               # 2^17 steps × 1024: about 17 min idle (6.9 ms per step
                                               # measured; 3-4x that on a shared machine; the paper's own
                                               # code needs 7–8 h)

Writes results/fig2_chain/{fig2_chain.png, summary.json, runs/<mode>-chain/}.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

NAME = "fig2_chain"


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Train on the chain and draw the figure. Returns ``{"graphs": {"chain": {loss, in_context, entropy_floor,
    unigram, excess_over_in_context, recovered, all_recovered, mean_parent_attention, min_parent_attention, shd,
    previous_token, diag_minus_offdiag, diag_argmax_rows, ...}}, "mode", "seconds", "figure"}``.
    ``smoke`` (tests only) trains for a few steps."""
    from causal_grad.graphs import chain

    return _expkit.run_forest_figure(
        NAME, {"chain": chain(19)}, quick, out, seed, smoke, "Fig. 2 — chain, S=10, T=20, α=0.1"
    )


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
