"""Training with the next-token loss at every position through causal_grad.train (issue 18 item 2):
``TaskConfig.objective = "next_token"`` on an n-gram graph."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import causal_grad
from causal_grad.baselines import cross_entropy
from causal_grad.graphs import Graph, chain
from causal_grad.models import catformer
from causal_grad.models.registry import model_config
from causal_grad.ngram import NGRAM_INITIAL, NGramTask, ngram_graph
from causal_grad.training import OptimConfig, RunConfig, TaskConfig, TrainConfig
from causal_grad.training.loop import step_key
from causal_grad.training.strategies import ngram_strategies, strategy_kl

S, T, STEPS, BATCH = 3, 6, 4, 8


def _cfg(k=1, **run):
    return TrainConfig(
        TaskConfig(ngram_graph(T, k), vocab=S, alpha=1.0, objective="next_token"),
        model_config("disentangled", heads=(1, 1), init="normal", init_scale=0.3),
        optim=OptimConfig(schedule="joint", optimizer="adamw", lr=0.05, weight_decay=1e-3, decay="constant"),
        run=RunConfig(steps=STEPS, batch=BATCH, eval_every=STEPS, eval_size=64, log_every=1, **run),
    )


@pytest.mark.parametrize("k", [1, 2])
def test_next_token_run_is_the_hand_written_loop(k):
    """Each step's training loss and the final weights equal jax.value_and_grad(next_token_loss) + optax.adamw on
    the same batches (NGramTask.sample_next_token at the run's step keys); the held-out loss is the next-token loss
    and its baselines the per-position estimators' mean losses."""
    cfg = _cfg(k)
    assert cfg.seq_len == T and cfg.task.ngram_order == k
    res = causal_grad.train(cfg, progress=False)
    task = NGramTask(S, k, T, alpha=1.0)
    spec = cfg.build_model()
    seed_key = jax.random.key(cfg.run.seed)
    p = spec.init(jax.random.fold_in(seed_key, 1))
    opt = optax.adamw(0.05, weight_decay=1e-3)
    st = opt.init(p)

    @jax.jit
    def step(p, st, t):
        tok, Y = task.sample_next_token(step_key(seed_key, t), BATCH)
        loss, g = jax.value_and_grad(spec.next_token_loss)(p, tok, Y)
        upd, st = opt.update(g, st, p)
        return optax.apply_updates(p, upd), st, loss

    losses = []
    for t in range(STEPS):
        p, st, loss = step(p, st, jnp.int32(t))
        losses.append(float(loss))
    steps, got = zip(*res.history.train)
    assert steps == tuple(range(1, STEPS + 1))
    np.testing.assert_allclose(got, losses, rtol=2e-6)
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # held-out: the next-token loss on sample_next_token(eval_seed) and the per-position baselines
    tok, Y = task.sample_next_token(jax.random.key(cfg.run.eval_seed), cfg.run.eval_size)
    np.testing.assert_allclose(res.final.loss, float(spec.next_token_loss(p, tok, Y)), rtol=1e-5)
    ic = float(jnp.mean(cross_entropy(Y, task.predictive_all_positions(tok, "in_context"))))
    uni = float(jnp.mean(cross_entropy(Y, task.predictive_all_positions(tok, "unigram"))))
    np.testing.assert_allclose(res.baselines.in_context, ic, rtol=1e-6)
    np.testing.assert_allclose(res.baselines.others["unigram"], uni, rtol=1e-6)
    np.testing.assert_allclose(res.final.loss - res.baselines.in_context, res.final.excess_over_in_context, rtol=1e-6)
    assert res.final.heads is not None  # the DAG read-out (which head attends to which parents)
    assert set(res.final.strategy_kl) >= {"uniform", "unigram", "in_context"}
    # the config round-trips through config.json with its objective
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def test_query_config_json_unchanged_and_old_files_read_as_query():
    cfg = TrainConfig(TaskConfig(chain(5), vocab=S, alpha=0.5))
    assert cfg.task.objective == "query" and "objective" not in cfg.to_json()["task"]
    assert cfg.seq_len == chain(5).seq_len
    old = cfg.to_json()  # a config.json written before the field existed
    assert TrainConfig.from_json(old).task.objective == "query"
    nt = _cfg()
    assert nt.to_json()["task"]["objective"] == "next_token"
    assert dataclasses.replace(nt.task, objective="query").seq_len == ngram_graph(T, 1).seq_len


def test_next_token_refusals(monkeypatch):
    for bad in ("nexttoken", None, 3):
        with pytest.raises(ValueError, match="objective must be one of query, next_token"):
            TaskConfig(chain(5), vocab=S, objective=bad)
    # not an n-gram graph: a tree, and an n-gram graph with a missing edge
    for g in (Graph([-1, 0, 0, 1]), Graph(((), (), (0, 1), (1,), (2, 3)))):
        with pytest.raises(ValueError, match="objective 'next_token'.*graph must be an n-gram graph"):
            TaskConfig(g, vocab=S, objective="next_token")
    # a model without logits_all: refused when the TrainConfig is built, before any compute
    monkeypatch.delattr(catformer, "logits_all")
    with pytest.raises(ValueError, match="objective 'next_token'.*'catformer' defines no logits_all"):
        TrainConfig(
            TaskConfig(ngram_graph(T, 1), vocab=S, objective="next_token"),
            model_config("catformer"),
            optim=OptimConfig(schedule="joint", optimizer="adamw", lr=0.01),
        )
    # the batched program trains the query loss only
    from causal_grad.batched import train_batched

    with pytest.raises(ValueError, match="objective 'next_token'"):
        train_batched([_cfg(), _cfg(seed=1)])


def test_next_token_run_folder_reads_back(tmp_path):
    """config.json keeps the objective; load_run reads the run back with it."""
    from causal_grad.training import load_run

    cfg = _cfg(2)
    res = causal_grad.train(cfg, tmp_path / "run", progress=False)
    back = load_run(tmp_path / "run")
    assert back.config == cfg and back.config.task.objective == "next_token"
    np.testing.assert_allclose(back.final.loss, res.final.loss)
    for a, b in zip(jax.tree.leaves(back.params), jax.tree.leaves(res.params)):
        np.testing.assert_array_equal(a, b)


def test_next_token_resume_is_the_straight_run(tmp_path):
    """Interrupting and resuming a next-token run ends at the straight run's weights and losses."""
    cfg = _cfg(1, checkpoint_every=2).replace(eval_every=2)
    straight = causal_grad.train(cfg, progress=False)
    causal_grad.train(cfg.replace(steps=2), tmp_path / "run", progress=False)
    resumed = causal_grad.train(cfg, tmp_path / "run", resume=True, progress=False)
    np.testing.assert_allclose([x for _, x in resumed.history.train], [x for _, x in straight.history.train])
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_array_equal(a, b)


def test_initial_law_in_the_task_config():
    """TaskConfig.initial: "uniform" by default and then left out of config.json (files written before the field
    existed read back as uniform); "stationary" is written and round-trips; refused at the door when not one of
    NGRAM_INITIAL, with the query objective, or past the n-gram task's lifted-chain size."""
    g = ngram_graph(T, 1)
    assert NGRAM_INITIAL == ("uniform", "stationary")
    uni = TaskConfig(g, vocab=S, alpha=1.0, objective="next_token")
    assert uni.initial == "uniform" and "initial" not in uni.to_json()
    st = dataclasses.replace(uni, initial="stationary")
    assert st.to_json()["initial"] == "stationary"
    cfg = _cfg().replace(initial="stationary")
    assert cfg.task == st and TrainConfig.from_json(cfg.to_json()) == cfg
    old = _cfg().to_json()
    assert "initial" not in old["task"] and TrainConfig.from_json(old).task.initial == "uniform"
    for bad in ("stationnary", "", None, 1):
        with pytest.raises(ValueError, match="initial must be one of uniform, stationary"):
            TaskConfig(g, vocab=S, objective="next_token", initial=bad)
    with pytest.raises(ValueError, match="initial 'stationary' applies to objective 'next_token' only"):
        TaskConfig(chain(5), vocab=S, initial="stationary")
    with pytest.raises(ValueError, match=r"initial 'stationary' applies to objective 'next_token' only"):
        _cfg().replace(objective="query", initial="stationary")
    # the stationary start needs S^k <= 1024 states of the lifted chain (NGramTask's rule), checked here
    with pytest.raises(ValueError, match=r"initial 'stationary' needs vocab_size\*\*k <= 1024"):
        TaskConfig(ngram_graph(T, 2), vocab=33, objective="next_token", initial="stationary")
    TaskConfig(ngram_graph(T, 2), vocab=33, objective="next_token")  # the uniform start has no such limit


def test_stationary_start_trains_that_task_and_claims_no_exact_bayes():
    """initial="stationary": the run samples NGramTask(..., initial="stationary") (its held-out set and baselines are
    that task's), and records no KL to exact Bayes (no closed form with the stationary start); the uniform start
    records it, equal to the in-context estimator's (the estimator is exact Bayes there)."""
    cfg = _cfg().replace(initial="stationary")
    res = causal_grad.train(cfg, progress=False)
    task = NGramTask(S, 1, T, alpha=1.0, initial="stationary")
    tok, Y = task.sample_next_token(jax.random.key(cfg.run.eval_seed), cfg.run.eval_size)
    ic = float(jnp.mean(cross_entropy(Y, task.predictive_all_positions(tok, "in_context"))))
    np.testing.assert_allclose(res.baselines.in_context, ic, rtol=1e-6)
    uniform_start = NGramTask(S, 1, T, alpha=1.0).sample_next_token(jax.random.key(cfg.run.eval_seed), 64)[0]
    assert not np.array_equal(np.asarray(tok), np.asarray(uniform_start))  # another law of the first token
    for e in res.evals:
        assert set(e.strategy_kl) == {"uniform", "unigram", "in_context"}
    ref = causal_grad.train(_cfg(), progress=False)
    for e in ref.evals:
        assert set(e.strategy_kl) == {"uniform", "unigram", "in_context", "exact_bayes"}
        assert e.strategy_kl["exact_bayes"] == pytest.approx(e.strategy_kl["in_context"], rel=1e-6)


ICL_T, ICL_STEPS, ICL_BATCH = 12, 6, 8


def _icl_mc_cfg(**run):
    """Edelman et al.'s ICL-MC configuration (experiments/icl_mc.py) at a small size: S = 2, Dirichlet(1) bigrams,
    stationary start, next-token loss; attention-only standard transformer, width 16, two layers of one head; AdamW
    at a constant 5e-4, betas (0.9, 0.95), weight decay 0.1."""
    return TrainConfig(
        TaskConfig(ngram_graph(ICL_T, 1), vocab=2, alpha=1.0, objective="next_token", initial="stationary"),
        model_config("standard", d_model=16, layers=2, heads=1, mlp=False),
        optim=OptimConfig(
            schedule="joint", optimizer="adamw", lr=5e-4, b1=0.9, b2=0.95, weight_decay=0.1, decay="constant"
        ),
        run=RunConfig(steps=ICL_STEPS, batch=ICL_BATCH, eval_every=ICL_STEPS // 2, eval_size=64, log_every=1, **run),
    )


def test_icl_mc_run_is_the_hand_written_loop():
    """The ICL-MC config through causal_grad.train equals jax.value_and_grad(next_token_loss) + optax.adamw(5e-4,
    b1=0.9, b2=0.95, weight_decay=0.1) on the same batches (NGramTask(2, 1, T, alpha=1, initial="stationary") at the
    run's step keys): each step's loss and the parameters' change. The betas matter at this size: the default
    betas' loop moves the parameters measurably elsewhere. The recorded strategy KLs are the mean over every
    position of the held-out sequences (no exact Bayes with the stationary start)."""
    cfg = _icl_mc_cfg()
    assert cfg.seq_len == ICL_T and cfg.model.mlp is False
    res = causal_grad.train(cfg, progress=False)
    task = NGramTask(2, 1, ICL_T, alpha=1.0, initial="stationary")
    spec = cfg.build_model()
    seed_key = jax.random.key(cfg.run.seed)
    p0 = spec.init(jax.random.fold_in(seed_key, 1))
    assert not any("mlp" in k for k in p0["params"])

    def hand_loop(opt):
        @jax.jit
        def step(p, st, t):
            tok, Y = task.sample_next_token(step_key(seed_key, t), ICL_BATCH)
            loss, g = jax.value_and_grad(spec.next_token_loss)(p, tok, Y)
            upd, st = opt.update(g, st, p)
            return optax.apply_updates(p, upd), st, loss

        p, st, losses = p0, opt.init(p0), []
        for t in range(ICL_STEPS):
            p, st, loss = step(p, st, jnp.int32(t))
            losses.append(float(loss))
        return p, losses

    p, losses = hand_loop(optax.adamw(5e-4, b1=0.9, b2=0.95, weight_decay=0.1))
    steps, got = zip(*res.history.train)
    assert steps == tuple(range(1, ICL_STEPS + 1))
    np.testing.assert_allclose(got, losses, rtol=2e-6)
    # compare the change from the initialisation (about lr·steps = 3e-3 per entry) rather than the O(1) parameters
    # themselves, so that the comparison resolves the betas: float32 rounding of the O(1) parameters over the steps
    # is a few 1e-7 (measured: the run and the loop agree exactly), the betas' effect on the change about 5e-5
    delta = lambda q: [np.asarray(a, np.float64) - np.asarray(b, np.float64)  # noqa: E731
                       for a, b in zip(jax.tree.leaves(q), jax.tree.leaves(p0))]  # fmt: skip
    ours, want = delta(res.params), delta(p)
    for a, b in zip(ours, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    default_betas, _ = hand_loop(optax.adamw(5e-4, weight_decay=0.1))
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, delta(default_betas)))
    assert gap > 2e-5, gap
    # the strategy KLs of the last evaluation: over every position of the first 1024 held-out sequences
    tok, _ = task.sample_next_token(jax.random.key(cfg.run.eval_seed), cfg.run.eval_size)
    refs = ngram_strategies(task, tok)
    assert set(refs) == {"uniform", "unigram", "in_context"}  # exact Bayes has no closed form here
    want_kl = strategy_kl(spec.logits_all(res.params, tok), refs)
    assert set(res.final.strategy_kl) == set(want_kl)
    for k, v in want_kl.items():
        np.testing.assert_allclose(res.final.strategy_kl[k], float(v), rtol=1e-5)
