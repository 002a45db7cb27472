"""ICL-MC (Edelman et al. 2024, "The Evolution of Statistical Induction Heads"): does training move from the uniform
predictor to the in-context unigram estimator and then to the in-context bigram estimator? And the same measurement
on this paper's figure-2 task (docs/theory.md §1.5, §5, §6).

Part 1, Edelman et al.'s setting (read from their paper and public code): vocabulary S = 2, sequences of 100 tokens
plus one (T = 101), a fresh bigram transition matrix per sequence with Dirichlet(1) rows, the first token from its
stationary law, the next-token loss at every position, a two-layer attention-only transformer with one head per
layer and width 16, AdamW (lr 5e-4 constant, betas (0.9, 0.95), weight decay 0.1), batch 64, 2000 steps. It trains
through causal_grad.train with the TrainConfig of :func:`config`: task NGramTask(2, 1, 101, alpha=1,
initial="stationary") (TaskConfig(ngram_graph(101, 1), vocab=2, alpha=1, objective="next_token",
initial="stationary")), model standard.Config(d_model=16, layers=2, heads=1, mlp=False), optimiser
OptimConfig("joint", "adamw", lr=5e-4, b1=0.9, b2=0.95, weight_decay=0.1, decay="constant"); each seed's run is kept
under runs/<mode>-icl_mc-seed<s>. At every evaluation the run's evaluator records the KL from each strategy to the
model's predictive averaged over all positions of the held-out sequences (512, key 10000 + seed;
causal_grad.training.strategies): uniform, in-context unigram, in-context bigram (the estimator). Exact Bayes has no
closed form with the stationary start, so it is not recorded. The held-out loss per position is read from the
trained parameters on the same sequences.

What still differs from their model (causal_grad's standard transformer with mlp=False, against their public
attention-only model): no dropout (theirs 0.1 on the embeddings, the attention weights and the residual branch); no
layer norm (theirs normalises each attention layer's input and the readout's); learned absolute position embeddings
added to the token embeddings (theirs has none: a learned relative-position term in each layer's attention scores);
flax's default initialisation (theirs N(0, 0.02²), the output projections N(0, 0.01²)); a readout bias (theirs has
none); weight decay on every parameter (theirs on the linear layers' weights only). The data differ in form, not in
law: the targets are the next token's law π[s_t] (soft labels, the same expected gradient as their sampled next
token), and the model reads all 101 tokens and is scored at each of them (theirs reads the first 100 and predicts
the next 100).

Part 2, this paper's figure-2 task at a small size: chain of 19 positions plus the query, S = 10, Dirichlet(0.1),
disentangled transformer, query-only loss (the quick layer-wise preset of fig2_chain); the run's evaluator records
the KL at the query (causal_grad.training.run).

Reported per seed: the transition steps (first evaluation from which a rung of uniform → unigram → bigram is the
nearest of the three for two consecutive evaluations), the step of smallest KL to each strategy, and whether the
progression appears in order; over seeds, the median and range of each transition step.

    python experiments/icl_mc.py --quick   # 3 seeds × 2000 steps of ICL-MC (a few minutes), 2 fig-2 seeds
    python experiments/icl_mc.py           # 5 seeds × 2000 steps, 3 fig-2 seeds

Writes results/icl_mc/{icl_mc.png, fig2_strategies.png, summary.json} and each training run under
results/icl_mc/runs/.
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
    mlp=False,
    lr=5e-4,
    decay="constant",
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


def config(mode: str, seed: int):
    """The :class:`~causal_grad.training.TrainConfig` of one ICL-MC run (:data:`ICL_MC` at the sizes of ``mode``):
    the next-token loss on the bigram task with the stationary start, the attention-only standard transformer,
    AdamW at a constant learning rate; held-out set of key ``10000 + seed``."""
    from causal_grad.models.registry import model_config
    from causal_grad.ngram import ngram_graph
    from causal_grad.training import OptimConfig, RunConfig, TaskConfig, TrainConfig

    s, sz = ICL_MC, sizes(mode)
    return TrainConfig(
        TaskConfig(
            ngram_graph(sz["seq_len"], s["k"]),
            vocab=s["vocab"],
            alpha=s["alpha"],
            objective="next_token",
            initial=s["initial"],
        ),
        model_config("standard", d_model=s["d_model"], layers=s["layers"], heads=s["heads"], mlp=s["mlp"]),
        OptimConfig(
            "joint",
            "adamw",
            lr=s["lr"],
            b1=s["b1"],
            b2=s["b2"],
            weight_decay=s["weight_decay"],
            decay=s["decay"],
        ),
        RunConfig(
            steps=sz["steps"],
            batch=s["batch"],
            seed=seed,
            eval_every=sz["eval_every"],
            eval_size=sz["eval_size"],
            eval_seed=10_000 + seed,
            log_every=sz["eval_every"],
        ),
    )


def icl_mc_run(cfg, out: Path, label: str, *, quick: bool) -> dict:
    """Train ``cfg`` (:func:`config`) through causal_grad.train, kept under ``out/runs/<label>``; returns the strategy
    curves read from the run's history (``StrategyCurves.to_dict()``), the held-out loss per position of the trained
    parameters (the mean over the held-out sequences, ``(T,)``) and its mean ``final_loss`` (the run's final
    held-out loss)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from causal_grad.ngram import NGramTask
    from causal_grad.training.strategies import strategy_curves_of

    res = _expkit.train_run(cfg, out, label, quick=quick)
    t = cfg.task
    task = NGramTask(t.vocab, t.ngram_order, t.seq_len, alpha=t.alpha, initial=t.initial)
    tok, Y = task.sample_next_token(jax.random.key(cfg.run.eval_seed), cfg.run.eval_size)  # the run's held-out set
    logits = cfg.build_model().logits_all(res.params, tok)
    per_pos = np.asarray(-jnp.sum(Y * jax.nn.log_softmax(logits, -1), -1).mean(0))
    return {
        **strategy_curves_of(res.history).to_dict(),
        "loss_per_position": per_pos.tolist(),
        "final_loss": float(res.final.loss),
    }


def run(quick: bool, out: Path, seed: int = 0, *, smoke: bool = False) -> dict:
    """Both parts; returns ``{"icl_mc": {"seeds": [...], "runs": [...], "summary": transition_summary, "config":
    the first seed's config.json}, "fig2": {...}, "mode", "settings", "figure", "fig2_figure", "seconds"}``.
    ``smoke`` (tests only) trains a few steps on short sequences."""
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
        r = icl_mc_run(config(mode, s), out, f"{mode}-icl_mc-seed{s}", quick=mode != "full")
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
        title=f"ICL-MC (S=2, T={sz['seq_len']}, attention-only 2×1 head, d=16): KL over all positions, "
        f"{len(seeds)} seeds",
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
        "icl_mc": {
            "seeds": seeds,
            "runs": runs,
            "summary": icl_summary,
            "config": config(mode, seed).to_json(),
        },
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
