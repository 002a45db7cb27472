"""How the exact finite-T gradient at initialisation departs from the mutual-information approximation M (C1).

For the chain, icl pairs and random trees, S = 10 and S = 3, Dirichlet(α) priors with α ∈ {0.1, 1}, and T from 8
to 200, compute the exact ``−∂L/∂A1/β0`` at ε = 0 (``causal_grad.gradients.dp``, polynomial time: no enumeration,
no Monte Carlo), rescale it by ``(i+1)·T·S`` on the graph rows, row-centre it and compare it with row-centred
``M = E_π ⟨P_ji, Q⟩_μ`` over the same fixed set of matrices drawn from the prior. Reports the RMS error, per-row
argmax agreement and a log-log fit of error against T; and, at the paper's size (S = 10, T = 20, α = 0.1), whether
the parent is every row's argmax and how far the entries are from M.

The study of ``experiments/finite_t_departure.py`` (a thin command-line wrapper around :func:`run`;
docs/theory.md §7.1):

    python experiments/finite_t_departure.py --quick      # about 1.5 min (mostly compilation): a few small T
    python experiments/finite_t_departure.py              # full: T up to 200 (65 min on a 2-core machine at load 6-12)

Writes results/finite_t_departure/{summary.json, error_vs_T.png}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from .._x64 import x64
from ..gradients.compare import rescale_gradient
from ..gradients.dp import (
    departure_from_mi,
    departure_sweep,
    exact_gradient_at_init_dp,
    fit_power_law,
)
from ..graphs import named_graph
from ..task import InContextTask

__all__ = ["NAME", "FAMILIES", "ALPHAS", "settings", "paper_size", "plot", "run"]

NAME = "finite_t_departure"

FAMILIES = ("chain", "icl-pairs", "random-tree")
ALPHAS = (0.1, 1.0)


def settings(quick: bool, smoke: bool = False) -> dict:
    """The sweep's grid: ``T`` values and matrices per vocabulary, tree seeds, the paper-size sample."""
    if smoke:  # tests only: one vocabulary, one prior, two small T
        return {
            "Ts": {3: [5, 6]},
            "num_pis": {3: 2},
            "tree_seeds": (0,),
            "paper_num_pis": 1,
            "Ss": (3,),
            "alphas": (1.0,),
            "paper_families": ("chain",),
        }
    if quick:
        return {
            "Ts": {10: [6, 8, 12], 3: [6, 8, 12, 16]},
            "num_pis": {10: 4, 3: 8},
            "tree_seeds": (0,),
            "paper_num_pis": 16,
        }
    return {
        "Ts": {10: [8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 200], 3: [8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 200]},
        "num_pis": {10: 8, 3: 32},
        "tree_seeds": (0, 1),
        "paper_num_pis": 64,
    }


def paper_size(num_pis: int, key: jax.Array, families: Sequence[str] = FAMILIES) -> dict:
    """S = 10, T = 20, α = 0.1: parent argmax of the π-averaged gradient and per π, and the entry-wise departure."""
    out = {}
    for fam in families:
        task = InContextTask(named_graph(fam, 19, seed=0), 10, 0.1)
        with x64():
            pis = np.asarray(task.sample_pi(key, num_pis, dtype=jnp.float64))
        t0 = time.perf_counter()
        d = departure_from_mi(task, pis)
        seconds = time.perf_counter() - t0
        child_rows = [i for i in range(1, task.n) if task.parents[i] >= 0]
        per_pi_ok = []
        for pi in pis:  # the same question for each draw of π separately
            R = rescale_gradient(exact_gradient_at_init_dp(task, pi), 10)
            per_pi_ok.extend(int(np.argmax(R[i, :i])) == task.parents[i] for i in child_rows)
        out[fam] = {k: v for k, v in d.items() if k not in ("R", "M")}
        out[fam].update(
            parents=list(task.parents),
            parent_is_every_row_argmax=bool(d["parent_argmax"] == 1.0),
            per_pi_parent_argmax_fraction=float(np.mean(per_pi_ok)),
            seconds_average=seconds,
        )
    return out


def plot(sweeps: list[dict], path: Path) -> None:

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: pyplot after the Agg backend is chosen

    Ss = sorted({s["S"] for s in sweeps}, reverse=True)
    fig, axes = plt.subplots(1, len(Ss), figsize=(6.2 * len(Ss), 4.6), squeeze=False)
    colors = dict(zip(FAMILIES, ("tab:blue", "tab:orange", "tab:green")))
    for ax, S in zip(axes[0], Ss):
        Tall = []
        for s in (s for s in sweeps if s["S"] == S):
            T = [r["T"] for r in s["rows"]]
            e = [r["rms"] for r in s["rows"]]
            Tall += T
            fit = s["fit"]
            lab = f"{s['family']}, α={s['alpha']:g}" + (f" (slope {fit['slope']:.2f})" if fit else "")
            ax.loglog(T, e, "o-" if s["alpha"] == 1.0 else "s--", color=colors[s["family"]], label=lab, ms=4)
        Tr = np.array(sorted(set(Tall)), dtype=float)
        ax.loglog(Tr, 0.5 / Tr, ":", color="grey", label="0.5/T (docs/theory.md §4)")
        ax.set_xlabel("T")
        ax.set_ylabel("RMS(row-centred rescaled gradient − row-centred M)")
        ax.set_title(f"S = {S}: exact finite-T gradient vs M (ε = 0)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """The sweep and the paper-size check; writes ``out/summary.json`` and ``out/error_vs_T.png`` and returns the
    summary (``sweeps``: per (S, α, family) the rows and fits; ``paper_size``: per family). ``smoke`` (tests
    only) shrinks it to one vocabulary, one prior and two small T."""
    cfg = settings(quick, smoke)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(seed)
    t_start = time.perf_counter()

    sweeps = []
    for S in cfg.get("Ss", (10, 3)):
        for alpha in cfg.get("alphas", ALPHAS):
            k = jax.random.fold_in(jax.random.fold_in(key, S), int(alpha * 1000))
            for fam in FAMILIES:
                seeds = cfg["tree_seeds"] if fam == "random-tree" else (0,)
                sw = departure_sweep(fam, S, alpha, cfg["Ts"][S], num_pis=cfg["num_pis"][S], key=k, seeds=seeds)
                sweeps.append(sw)
                fit = sw["fit"]
                print(
                    f"S={S:>2} α={alpha:<4g} {fam:<12} slope {fit['slope']:+.2f}  C {fit['C']:.3f}  "
                    + "  ".join(f"T={r['T']}:{r['rms']:.4f}" for r in sw["rows"]),
                    flush=True,
                )
                # the upper half of the T range: the asymptotic rate
                half = sw["rows"][len(sw["rows"]) // 2 :]
                sw["fit_upper_half"] = (
                    fit_power_law([r["T"] for r in half], [r["rms"] for r in half]) if len(half) >= 2 else None
                )

    paper = paper_size(cfg["paper_num_pis"], jax.random.fold_in(key, 2024), cfg.get("paper_families", FAMILIES))
    for fam, d in paper.items():
        print(
            f"paper size S=10 T=20 α=0.1 {fam:<12} parent every row's argmax: {d['parent_is_every_row_argmax']} "
            f"(per π: {d['per_pi_parent_argmax_fraction']:.3f}); rel RMS {d['rel_rms']:.3f}; parent margin "
            f"ratio {d['parent_margin_ratio']:.3f}; rel entry median {d['rel_entry_median']:.3f} "
            f"max {d['rel_entry_max']:.3f}",
            flush=True,
        )

    summary = {
        "description": "Exact finite-T gradient at initialisation (ε = 0, DP) rescaled by (i+1)·T·S on graph rows, "
        "row-centred, vs row-centred M = E_π <P_ji, Q>_μ over the same fixed matrices from "
        "Dirichlet(α). rms: root-mean-square over entries 1 ≤ i, j ≤ i; rel_rms: rms / RMS of "
        "row-centred M; argmax_agree / parent_argmax: fractions of non-root rows (argmax over j < i); "
        "rel_entry: |R − M − c_i| / M over j < i of non-root rows with c_i the mean row offset; "
        "parent_margin_ratio: median over non-root rows of (parent − best other j < i) in R over the "
        "same in M. fit: rms ≈ C·T^slope (least squares in log-log over all T; fit_upper_half over "
        "the larger half). Random trees: named_graph('random-tree', T-1, seed) for each seed, "
        "metrics averaged over seeds.",
        "quick": quick,
        "settings": {k: (v if k != "Ts" else {str(s): t for s, t in v.items()}) for k, v in cfg.items()},
        "sweeps": sweeps,
        "paper_size": paper,
        "seconds": time.perf_counter() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    plot(sweeps, out / "error_vs_T.png")
    print(f"wrote {out / 'summary.json'} and {out / 'error_vs_T.png'} in {summary['seconds']:.0f} s")
    return summary
