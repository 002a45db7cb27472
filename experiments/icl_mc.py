"""ICL-MC (Edelman et al. 2024, "The Evolution of Statistical Induction Heads"): does training move from the uniform
predictor to the in-context unigram estimator and then to the in-context bigram estimator? And the same measurement
on this paper's figure-2 task (docs/theory.md §1.5, §5, §6).

Part 1, Edelman et al.'s setting (read from their paper and public code): vocabulary S = 2, sequences of 100 tokens
plus one (T = 101), a fresh bigram transition matrix per sequence with Dirichlet(1) rows, the first token from its
stationary law (NGramTask(2, 1, 101, alpha=1, initial="stationary")), the next-token loss at every position, a
two-layer transformer with one head per layer and width 16, AdamW (lr 5e-4, betas (0.9, 0.95), weight decay 0.1),
batch 64, 2000 steps. What differs here: causal_grad's standard transformer keeps its MLP after each attention layer
(mlp_ratio 4; theirs is attention-only), has no dropout (theirs 0.1) and no layer norm, and uses learned position
embeddings. At every evaluation the KL from each strategy to the model's predictive is averaged over all positions
of 512 held-out sequences (causal_grad.training.strategies): uniform, in-context unigram, in-context bigram (the
estimator). Exact Bayes has no closed form with the stationary start, so it is not drawn.

Part 2, this paper's figure-2 task at a small size: chain of 19 positions plus the query, S = 10, Dirichlet(0.1),
disentangled transformer, query-only loss (the quick layer-wise preset of fig2_chain); the run's evaluator records
the KL at the query (causal_grad.training.run).

Reported per seed: the transition steps (first evaluation from which a rung of uniform → unigram → bigram is the
nearest of the three for two consecutive evaluations), the step of smallest KL to each strategy, and whether the
progression appears in order; over seeds, the median and range of each transition step.

    python experiments/icl_mc.py --quick   # 3 seeds × 2000 steps of ICL-MC (a few minutes), 2 fig-2 seeds
    python experiments/icl_mc.py           # 5 seeds × 2000 steps, 3 fig-2 seeds

Writes results/icl_mc/{icl_mc.png, fig2_strategies.png, summary.json}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _expkit  # noqa: E402

NAME = "icl_mc"

#: Edelman et al.'s ICL-MC setting (their code's defaults).
ICL_MC = dict(
    vocab=2,
    k=1,
    seq_len=101,
    alpha=1.0,
    initial="stationary",
    d_model=16,
    layers=2,
    heads=1,
    lr=5e-4,
    b1=0.9,
    b2=0.95,
    weight_decay=0.1,
    batch=64,
    steps=2000,
)


def sizes(mode: str) -> dict:
    """Seeds, steps, evaluation interval and held-out size of each mode (``smoke``: tests only)."""
    if mode == "smoke":
        return dict(seeds=2, steps=40, eval_every=10, eval_size=64, seq_len=21, fig2_seeds=1)
    if mode == "quick":
        return dict(
            seeds=3, steps=ICL_MC["steps"], eval_every=25, eval_size=512, seq_len=ICL_MC["seq_len"], fig2_seeds=2
        )
    return dict(seeds=5, steps=ICL_MC["steps"], eval_every=20, eval_size=512, seq_len=ICL_MC["seq_len"], fig2_seeds=3)


def train_icl_mc(seed: int, steps: int, eval_every: int, eval_size: int, seq_len: int) -> dict:
    """One ICL-MC run with the next-token loss; returns the strategy curves (``StrategyCurves.to_dict()``) and
    the held-out loss per position at the end."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from causal_grad.models.registry import build_model, model_config
    from causal_grad.ngram import NGramTask
    from causal_grad.training.strategies import StrategyCurves, ngram_strategies, strategy_kl

    s = ICL_MC
    task = NGramTask(s["vocab"], s["k"], seq_len, alpha=s["alpha"], initial=s["initial"])
    spec = build_model(
        model_config("standard", d_model=s["d_model"], layers=s["layers"], heads=s["heads"]), s["vocab"], seq_len
    )
    opt = optax.adamw(s["lr"], b1=s["b1"], b2=s["b2"], weight_decay=s["weight_decay"])
    key = jax.random.key(seed)
    params = spec.init(jax.random.fold_in(key, 0))
    state = opt.init(params)
    held_tok, held_Y = task.sample_next_token(jax.random.key(10_000 + seed), eval_size)
    refs = ngram_strategies(task, held_tok)

    def step(carry, t):
        p, st = carry
        tok, Y = task.sample_next_token(jax.random.fold_in(jax.random.fold_in(key, 1), t), s["batch"])
        loss, g = jax.value_and_grad(spec.next_token_loss)(p, tok, Y)
        upd, st = opt.update(g, st, p)
        return (optax.apply_updates(p, upd), st), loss

    @jax.jit
    def chunk(p, st, t0):
        (p, st), losses = jax.lax.scan(step, (p, st), t0 + jnp.arange(eval_every))
        return p, st, losses

    @jax.jit
    def evaluate(p):
        L = spec.logits_all(p, held_tok)
        per_pos = -jnp.sum(held_Y * jax.nn.log_softmax(L, -1), -1).mean(0)
        return strategy_kl(L, refs), per_pos

    steps_done, kls = [], []
    for t0 in range(0, steps + 1, eval_every):
        kl, per_pos = jax.device_get(evaluate(params))
        steps_done.append(t0)
        kls.append({k: float(v) for k, v in kl.items()})
        if t0 < steps:
            params, state, _ = chunk(params, state, t0)
    curves = StrategyCurves(tuple(steps_done), {k: np.array([e[k] for e in kls]) for k in kls[0]})
    return {
        **curves.to_dict(),
        "loss_per_position": np.asarray(per_pos).tolist(),
        "final_loss": float(np.mean(per_pos)),
    }


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Both parts; returns ``{"icl_mc": {"seeds": [...], "runs": [...], "summary": transition_summary},
    "fig2": {...}, "mode", "settings", "figure", "fig2_figure", "seconds"}``. ``smoke`` (tests only) trains a
    few steps on short sequences."""
    from causal_grad import plots
    from causal_grad.graphs import chain
    from causal_grad.training.strategies import StrategyCurves, strategy_curves_of, transition_summary

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mode = _expkit.mode_of(quick, smoke)
    sz = sizes(mode)
    seeds = [seed + i for i in range(sz["seeds"])]
    runs = []
    for s in seeds:
        r = train_icl_mc(s, sz["steps"], sz["eval_every"], sz["eval_size"], sz["seq_len"])
        runs.append(r)
        print(
            f"{NAME} ICL-MC seed {s}: transitions {r['transitions']}, nearest at {r['nearest_step']}, "
            f"progression {'yes' if r['progression'] else 'no'}; final next-token loss {r['final_loss']:.4f}",
            flush=True,
        )
    icl_summary = transition_summary([StrategyCurves(tuple(r["steps"]), r["kl"]) for r in runs])
    fig = plots.output_path(out / f"{NAME}.png")
    plots.strategy_curves(
        runs,
        path=fig,
        title=f"ICL-MC (S=2, T={sz['seq_len']}, standard 2×1 head, d=16): KL over all positions, {len(seeds)} seeds",
    )
    # part 2: the figure-2 task, query-only loss, disentangled model (the run's evaluator records the KL)
    fig2_runs = []
    for i in range(sz["fig2_seeds"]):
        cfg = _expkit.forest_config(chain(19), mode, seed + i)
        res = _expkit.train_run(cfg, out, f"{mode}-fig2-seed{seed + i}", quick=mode != "full")
        c = strategy_curves_of(res.history).to_dict()
        fig2_runs.append(c)
        print(
            f"{NAME} fig-2 seed {seed + i}: transitions {c['transitions']}, nearest at {c['nearest_step']}, "
            f"progression {'yes' if c['progression'] else 'no'}",
            flush=True,
        )
    fig2_summary = transition_summary([StrategyCurves(tuple(r["steps"]), r["kl"]) for r in fig2_runs])
    fig2 = plots.output_path(out / "fig2_strategies.png")
    plots.strategy_curves(
        fig2_runs, path=fig2, title="Fig. 2 task (chain, S=10, query-only loss, disentangled): KL at the query"
    )
    summary = {
        "experiment": NAME,
        "mode": mode,
        "settings": {**ICL_MC, **sz},
        "icl_mc": {"seeds": seeds, "runs": runs, "summary": icl_summary},
        "fig2": {
            "seeds": [seed + i for i in range(sz["fig2_seeds"])],
            "runs": fig2_runs,
            "summary": fig2_summary,
            "config": cfg.to_json() | {"graph": None},
        },
        "figure": fig.name,
        "fig2_figure": fig2.name,
        "seconds": time.perf_counter() - t0,
    }
    _expkit.write_summary(out, summary)
    return summary


def main(argv=None) -> dict:
    return _expkit.cli(run, __doc__, NAME, argv)


if __name__ == "__main__":
    main()
