"""Figure 6 of the paper: the same as figure 2 for in-context pairs and a random tree.

icl pairs (even positions roots, 2k+1 ← 2k) and a random tree (p(i) uniform on {-1, …, i-1}, seeded), 19 graph
positions plus the query (T = 20), S = 10, Dirichlet(0.1) (docs/theory.md §6). One row per graph: the first-layer
position attention with the edges (i, p(i)) outlined, the layer-2 token block, and the held-out loss against the
in-context estimator, unigram and entropy floor (claim C5).

    python experiments/fig6_icl_tree.py --quick   # layer-wise schedule, 300 steps × 1024 per graph: 26 s idle
    python experiments/fig6_icl_tree.py           # the paper's run per graph: joint GD from zero, lr 1, cosine,
                                                  # 2^17 steps × 1024 (about 2 × 17 min on an idle 2-core CPU)

Writes results/fig6_icl_tree/{fig6_icl_tree.png, summary.json, runs/}.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

NAME = "fig6_icl_tree"


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Train on icl pairs and on ``random_tree(key(seed), 19)``; returns ``{"graphs": {"icl-pairs": …,
    "random-tree": …}, …}`` with the keys of :func:`_expkit.forest_summary` per graph."""
    from causal_grad.graphs import named_graph

    graphs = {"icl-pairs": named_graph("icl-pairs", 19), "random-tree": named_graph("random-tree", 19, seed=seed)}
    return _expkit.run_forest_figure(
        NAME, graphs, quick, out, seed, smoke, "Fig. 6 — icl pairs and a random tree, S=10, T=20, α=0.1"
    )


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
