"""Sample complexity (docs/theory.md §7.10) of recovering a tree: the gradient at initialisation, a trained model
and Chow–Liu, each given the same N sequences.

Setting (the paper's task, docs/theory.md §1): a random tree on 19 graph positions plus the query (T = 20), S = 10, a
**fresh** transition matrix π ~ Dirichlet(0.1) per sequence, soft targets π[query]. Trials come in groups of
``draws`` on one random tree (``trees`` trees; a new tree needs a new compiled sampler); each trial draws N_max
sequences and the sequences for N are the first N of them (nested, so the curves are paired across N).
A method *recovers the tree* when, for every position with a parent, its estimate of that position's parent
(the argmax over earlier positions j < i) is the true parent; roots are not scored (none of the three methods is
asked whether a position is a root).

(a) gradient: the per-sequence linearized estimator of the first-layer gradient at initialisation (A1 = 0,
    A2 = β0·I, β0 → 0; ``causal_grad.gradients.linearized.linearized_terms``, ε = 1e-3) averaged over the N
    sequences: G[i, j] ∝ Σ_b g_b(i)·1[s_{b,j} = q_b] up to a positive row factor and a row constant, so the
    estimate is argmax_{j<i} of that sum — what ``causal_grad.gradients.monte_carlo_linearized_at_init``
    averages, restricted to the given sequences and their actual queries.
(b) training: stage 1 of the layer-wise schedule of the reduced model (A2 = I held, plain GD on A1, lr 300 with a
    cosine decay, ε = 1e-3: ``causal_grad.training.run.DEFAULTS``) for 100 steps on minibatches of min(N, 4096)
    drawn with replacement from the fixed N sequences (full batch for N ≤ 4096; about 3 epochs at N = 2^17);
    estimate argmax_{j<i} A1[i, j].
(c) Chow–Liu (``causal_grad.structure.chow_liu``, its default threshold) on the graph positions of the same
    sequences (tokens only: it does not use the targets π[q], which (a) and (b) do).

(a) and (b) see a soft target π[q] per sequence (the paper's training data): a whole row of that sequence's π.
To compare on the information of the tokens alone, they are also run with a one-hot target drawn from π[q]
(one more token). As a control for Chow–Liu itself, it is also run on sequences that share one fixed π per trial
(a single tree-structured law, where it is consistent).

Chow–Liu is the classical estimator for one fixed tree-structured law. Here π is fresh per sequence, so the law
of the tokens is a mixture over π: every pair of positions is marginally dependent (two positions share π, and
small α makes μ_π concentrate on a few tokens), cross-tree pairs included; the parent–child pair is still
typically the most dependent (data processing holds for each π), but the mixture is not a tree model, so
Chow–Liu is not guaranteed consistent — and it is not: marginally over π a parent–child pair is nearly
independent (a fresh random map a → b per sequence), while two *siblings*, drawn from the same sparse row
π[s_p], are often equal. Measured at N = 65536 (one tree): plug-in MI ≈ 0.70 nats between siblings, ≈ 0.06
between a parent and its child, ≈ 0.07 between positions in different trees; Chow–Liu's tree joins siblings
and recovers no parent. The gradient and the trained model use the in-context signal instead (the target
against the tokens that follow the query's earlier occurrences), which is per-π.

The study of ``experiments/sample_complexity.py`` (a thin command-line wrapper around :func:`run`):

    python experiments/sample_complexity.py --quick   # 4 trees × 3 draws, N = 16 … 16384 (75 s idle)
    python experiments/sample_complexity.py           # 10 trees × 5 draws, N = 2^4 … 2^17 (about 45 min on
                                                      # 2 cores, most of it Chow–Liu's pair counts)
    causal-grad verify --claims SC                    # preset "verify": 3 trees × 4 draws, N = 32 … 2048, as
                                                      # the row SC of `causal-grad verify` (35-45 s)

Writes results/sample_complexity/{sample_complexity.png, summary.json}. Error bars: 95% Wilson intervals
(scipy's binomtest) of the recovery probability over trials, treating the trials as independent (they are given
their tree; the spread between trees is not modelled).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from scipy.stats import binomtest

from .. import plots
from ..gradients.linearized import linearized_terms
from ..graphs import Graph, random_tree
from ..models.reduced import reduced_loss
from ..progress import progress
from ..structure import chow_liu, empirical_pair_mi
from ..task import InContextTask
from .common import mode_of, write_summary

__all__ = ["NAME", "METHODS", "MODES", "settings", "pair_mi_by_relation", "wilson", "threshold_n", "run"]

NAME = "sample_complexity"
#: method name -> (estimator, data): "soft" = tokens with soft targets π[q]; "hard" = tokens with a one-hot target
#: drawn from π[q] (the information of one more token); "fixed" = a fixed π per trial (the control).
METHODS = {
    "gradient at init": ("gradient", "soft"),
    "gradient at init, one-hot target": ("gradient", "hard"),
    "trained (reduced, stage 1)": ("trained", "soft"),
    "trained, one-hot target": ("trained", "hard"),
    "Chow–Liu": ("chow_liu", "soft"),
    "Chow–Liu, fixed π (control)": ("chow_liu", "fixed"),
}
EPS = 1e-3
LEVELS = (0.5, 0.9)


#: The presets of :func:`settings`: "full" (the paper-size study), "quick" (``--quick``), "verify" (the row ``SC``
#: of ``causal-grad verify``: 3 trees × 4 draws, N = 32 … 2048, past N = 512 from which every method that
#: recovers the tree did so in every quick trial) and "smoke" (the tests' plumbing check, not a result).
MODES = ("full", "quick", "verify", "smoke")


def settings(mode: str) -> dict:
    """The study's sizes at preset ``mode`` (one of :data:`MODES`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    base = dict(S=10, n=19, alpha=0.1, steps=100, lr=300.0, beta0=1.0, max_batch=4096)
    if mode == "full":
        return base | dict(Ns=[1 << k for k in range(4, 18)], trees=10, draws=5)
    if mode == "quick":
        return base | dict(Ns=[16, 32, 64, 128, 256, 512, 1024, 4096, 16384], trees=4, draws=3)
    if mode == "verify":
        return base | dict(Ns=[32, 128, 512, 2048], trees=3, draws=4)
    return base | dict(S=5, n=7, Ns=[16, 128], trees=1, draws=2, steps=10)


# ---------------------------------------------------------------------- the three estimators
def _gradient_parents(tokens, targets, n: int) -> np.ndarray:
    """argmax_{j<i} of Σ_b g_b(i) 1[s_{b,j} = q_b] for i = 1 … n-1 (index 0: -1)."""
    K = np.asarray(_gradient_sums(tokens, targets), dtype=np.float64)
    return np.array([-1] + [int(np.argmax(K[i, :i])) for i in range(1, n)])


@jax.jit
def _gradient_sums(tokens, targets):
    """``K[i, j] = Σ_b g_b(i) 1[s_{b,j} = q_b]`` over the given sequences (their actual queries)."""
    g, E = linearized_terms(tokens, targets, EPS)
    return g.T @ E


@partial(jax.jit, static_argnames=("steps", "batch", "lr", "beta0"))
def _stage1_fixed(tokens, targets, key, *, steps: int, batch: int, lr: float, beta0: float):
    """Stage 1 of the layer-wise schedule on a fixed dataset: GD on A1 with A2 = β0·I; minibatches of ``batch``
    drawn with replacement from the rows of ``tokens`` (all rows when ``batch`` equals their count)."""
    N, T = tokens.shape
    S = targets.shape[-1]
    A2 = beta0 * jnp.eye(S, dtype=jnp.float32)
    opt = optax.sgd(optax.cosine_decay_schedule(lr, steps))
    A1 = jnp.zeros((T, T), jnp.float32)

    def body(t, carry):
        A1, state = carry
        if batch == N:
            tok, y = tokens, targets
        else:
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch,), 0, N)
            tok, y = tokens[idx], targets[idx]
        g = jax.grad(reduced_loss)(A1, A2, tok, y, EPS)
        upd, state = opt.update(g, state, A1)
        return optax.apply_updates(A1, upd), state

    A1, _ = jax.lax.fori_loop(0, steps, body, (A1, opt.init(A1)))
    return A1


def _trained_parents(tokens, targets, n: int, key, st: dict) -> np.ndarray:
    N = tokens.shape[0]
    A1 = np.asarray(
        _stage1_fixed(
            tokens, targets, key, steps=st["steps"], batch=min(N, st["max_batch"]), lr=st["lr"], beta0=st["beta0"]
        )
    )
    return np.array([-1] + [int(np.argmax(A1[i, :i])) for i in range(1, n)])


def _chow_liu_parents(tokens, S: int, n: int) -> np.ndarray:
    return np.asarray(chow_liu(np.asarray(tokens)[:, :n], S), dtype=int)


def _score(est, parents) -> tuple[bool, float]:
    kids = [i for i, p in enumerate(parents) if p >= 0]
    hits = [int(est[i]) == parents[i] for i in kids]
    return (all(hits), float(np.mean(hits))) if kids else (True, 1.0)


def pair_mi_by_relation(tokens: ArrayLike, parents: Sequence[int], S: int) -> dict:
    """Mean plug-in MI (nats) of the graph positions' token pairs, grouped by their relation in the tree:
    parent–child, siblings, other pairs in the same tree, pairs in different trees."""
    g = Graph(parents)
    n = g.n
    mi = empirical_pair_mi(np.asarray(tokens)[:, :n], S)
    roots = g.root_of
    groups = {"parent-child": [], "siblings": [], "same tree, other": [], "different trees": []}
    for i in range(n):
        for j in range(i):
            if parents[i] == j:
                key = "parent-child"
            elif parents[i] >= 0 and parents[i] == parents[j]:
                key = "siblings"
            elif roots[i] == roots[j]:
                key = "same tree, other"
            else:
                key = "different trees"
            groups[key].append(mi[i, j])
    return {k: (float(np.mean(v)) if v else None) for k, v in groups.items()} | {
        "pairs": {k: len(v) for k, v in groups.items()}
    }


# ---------------------------------------------------------------------- statistics
def wilson(k: int, m: int) -> tuple[float, float]:
    """95% Wilson interval of a binomial proportion ``k/m`` (scipy)."""
    ci = binomtest(int(k), int(m)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def threshold_n(Ns: Sequence[int], probs: Sequence[float], level: float) -> int | None:
    """The smallest N of the grid from which on the recovery probability stays at or above ``level``
    (``None`` if it never does)."""
    out = None
    for N, p in zip(reversed(Ns), reversed(probs)):
        if p >= level:
            out = N
        else:
            break
    return out


# ---------------------------------------------------------------------- the study
def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False, mode: str | None = None) -> dict:
    """Run the study at the preset ``mode`` of :func:`settings` (default: "smoke" if ``smoke``, else "quick" or
    "full" by ``quick``). Returns ``{"Ns", "trials", "methods": {method: {"recovery", "lo", "hi", "successes",
    "parent_fraction", "N_50", "N_90"}}, "settings", "mode", "seconds", "figure"}``: ``recovery[k]`` the fraction
    of trials in which the method recovered every parent with ``Ns[k]`` sequences, ``[lo, hi]`` its 95% Wilson
    interval, ``parent_fraction[k]`` the mean fraction of parents recovered, ``N_50``/``N_90`` the thresholds
    of :func:`threshold_n`."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = mode_of(quick, smoke) if mode is None else mode
    st = settings(mode)
    S, n, Ns, draws = st["S"], st["n"], st["Ns"], st["draws"]
    trials = st["trees"] * draws
    key = jax.random.key(seed)
    ok = {m: np.zeros((len(Ns), trials), bool) for m in METHODS}
    frac = {m: np.zeros((len(Ns), trials)) for m in METHODS}
    times = {m: 0.0 for m in METHODS}
    trees = []
    for t in progress(range(trials), desc=NAME, unit="trial"):  # a bar on a terminal (causal_grad.progress)
        if t % draws == 0:  # a new tree (and its compiled sampler) every `draws` trials
            tree = random_tree(jax.random.fold_in(key, 3 * t), n)
            trees.append(list(tree.parents))
            task = InContextTask(tree, S, st["alpha"])
        k_data, k_hard, k_fixed = jax.random.split(jax.random.fold_in(key, 3 * t + 1), 3)
        tokens, soft = task.sample(k_data, Ns[-1])
        hard = jax.nn.one_hot(jax.random.categorical(k_hard, jnp.log(soft)), S, dtype=soft.dtype)
        pi = task.sample_pi(jax.random.fold_in(k_fixed, 0), 1)
        fixed = np.asarray(task.sample_given_pi(jax.random.fold_in(k_fixed, 1), jnp.broadcast_to(pi, (Ns[-1], S, S))))
        data = {"soft": (tokens, soft), "hard": (tokens, hard)}
        tokens_np = np.asarray(tokens)
        train_key = jax.random.fold_in(key, 3 * t + 2)
        if t == 0:
            mi_diag = {
                "N": Ns[-1],
                "fresh π per sequence": pair_mi_by_relation(tokens_np, tree.parents, S),
                "fixed π (control)": pair_mi_by_relation(fixed, tree.parents, S),
            }
        for k, N in enumerate(Ns):
            for m, (how, which) in METHODS.items():
                s = time.perf_counter()
                if how == "gradient":
                    tok, y = data[which]
                    est = _gradient_parents(tok[:N], y[:N], n)
                elif how == "trained":
                    tok, y = data[which]
                    est = _trained_parents(tok[:N], y[:N], n, train_key, st)
                else:
                    est = _chow_liu_parents((fixed if which == "fixed" else tokens_np)[:N], S, n)
                times[m] += time.perf_counter() - s
                ok[m][k, t], frac[m][k, t] = _score(est, tree.parents)
        if mode == "full" or t == trials - 1:
            print(
                f"{NAME}: trial {t + 1}/{trials} "
                + "; ".join(f"{m}: {[round(float(v), 2) for v in ok[m][:, : t + 1].mean(1)]}" for m in METHODS),
                flush=True,
            )
    methods = {}
    for m in METHODS:
        succ = ok[m].sum(1)
        rec = succ / trials
        ci = [wilson(c, trials) for c in succ]
        methods[m] = {
            "recovery": rec.tolist(),
            "lo": [c[0] for c in ci],
            "hi": [c[1] for c in ci],
            "successes": succ.tolist(),
            "parent_fraction": frac[m].mean(1).tolist(),
            **{f"N_{int(level * 100)}": threshold_n(Ns, rec, level) for level in LEVELS},
            "seconds": times[m],
        }

    def thr(m):
        return ", ".join(f"N{int(lv * 100)} = {methods[m][f'N_{int(lv * 100)}']}" for lv in LEVELS)

    specs = [
        dict(
            kind="errorbars",
            x=Ns,
            series={m: (methods[m]["recovery"], methods[m]["lo"], methods[m]["hi"]) for m in METHODS},
            dodge=0.05,
            logx=True,
            ylim=(-0.03, 1.03),
            xlabel="N (sequences)",
            ylabel="P(every parent recovered)",
            title=f"tree recovery vs N ({trials} trials, 95% Wilson intervals)",
        ),
        dict(
            kind="curves",
            x=Ns,
            series={m: methods[m]["parent_fraction"] for m in METHODS},
            logx=True,
            ylim=(0, 1.03),
            xlabel="N (sequences)",
            ylabel="mean fraction of parents recovered",
            title="fraction of parents recovered",
        ),
    ]
    fig = plots.output_path(out / f"{NAME}.png")
    plots.panels(
        specs,
        ncol=2,
        panel_size=(5.6, 4.2),
        suptitle=f"Sample complexity — random trees, S={S}, T={n + 1}, fresh π ~ Dirichlet("
        f"{st['alpha']:g}) per sequence [{mode}]",
        path=fig,
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "Ns": Ns,
        "trials": trials,
        "trees_count": st["trees"],
        "draws_per_tree": draws,
        "methods": methods,
        "settings": st,
        "trees": trees,
        "pair_mi_trial0": mi_diag,
        "figure": fig.name,
        "seconds": time.perf_counter() - t0,
        "definition": "recovered = every position with a parent has argmax_{j<i} estimate equal to its "
        "parent; same N sequences (nested prefixes of one draw per trial) for all methods",
    }
    write_summary(out, summary)
    print(f"{NAME}: mean plug-in MI by relation (trial 0, N = {Ns[-1]}): {mi_diag}", flush=True)
    for m in METHODS:
        print(f"{NAME}: {m:<34} recovery {[round(v, 2) for v in methods[m]['recovery']]}  {thr(m)}", flush=True)
    return summary
