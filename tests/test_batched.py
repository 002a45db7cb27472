"""causal_grad.batched: R runs in one vmapped program equal each run done alone by the training loop (float32)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_grad.batched import BatchedRunner, stack_runs, unstack_runs
from causal_grad.graphs import random_forest
from causal_grad.models.disentangled import disentangled_loss
from causal_grad.task import InContextTask
from causal_grad.training.loop import ChunkRunner, task_sampler
from causal_grad.training.schedules import make_optimizer
from causal_grad.training.sharding import data_mesh

S, T, B, STEPS = 3, 8, 64, 6
LABELS = {"A": ["A1", "A2"], "W": "W"}
GROUPS = ("A1", "A2", "W")


def _params(key):
    d0 = S + T
    k = jax.random.split(key, 3)
    return {
        "A": [0.3 * jax.random.normal(k[0], (1, d0, d0)), 0.3 * jax.random.normal(k[1], (1, 2 * d0, 2 * d0))],
        "W": 0.3 * jax.random.normal(k[2], (4 * d0, S)),
    }


def _alone(sample, params, seed_key, opt):
    runner = ChunkRunner(
        disentangled_loss, sample, opt, params, LABELS, GROUPS, B, mesh=data_mesh(jax.devices()[:1]), max_chunk=STEPS
    )
    state, losses = runner(runner.init_state(params), seed_key, STEPS)
    return state, losses


@pytest.mark.parametrize("distinct_tasks", [True, False])
def test_each_run_equals_running_it_alone(distinct_tasks):
    opt = make_optimizer("adamw", 0.05, STEPS)
    R = 3
    if distinct_tasks:  # figure 9: one forest per run
        samplers = [task_sampler(InContextTask(random_forest(jax.random.key(g), T - 1, 0.5), S, 0.1)) for g in range(R)]
    else:  # seeds of one run
        samplers = [task_sampler(InContextTask(random_forest(jax.random.key(7), T - 1, 0.5), S, 0.1))] * R
    params = [_params(jax.random.key(10 + r)) for r in range(R)]
    seeds = [jax.random.key(100 + r) for r in range(R)]
    runner = BatchedRunner(disentangled_loss, samplers, opt, params[0], LABELS, GROUPS, B, max_chunk=STEPS)
    state = runner.init_state(params)
    state, losses = runner(state, jnp.stack(seeds), STEPS)
    assert losses.shape == (R, STEPS)
    per_run = unstack_runs(state)
    for r in range(R):
        alone, alone_losses = _alone(samplers[r], params[r], seeds[r], opt)
        np.testing.assert_allclose(losses[r], alone_losses, rtol=2e-5, atol=1e-6)
        for a, b in zip(jax.tree.leaves(per_run[r].params), jax.tree.leaves(alone.params)):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
        assert int(per_run[r].step) == STEPS
    # the runs did differ
    assert float(jnp.max(jnp.abs(losses[0] - losses[1]))) > 1e-4


def test_stack_unstack_and_bad_input():
    trees = [{"a": jnp.ones(2) * r, "b": [jnp.zeros(3)]} for r in range(3)]
    st = stack_runs(trees)
    assert st["a"].shape == (3, 2)
    back = unstack_runs(st)
    np.testing.assert_array_equal(back[2]["a"], trees[2]["a"])
    with pytest.raises(TypeError, match="trees"):
        stack_runs([])
    with pytest.raises(ValueError, match="same pytree structure"):
        stack_runs([{"a": 1.0}, {"b": 1.0}])
    opt = make_optimizer("sgd", 1.0, 2)
    p = _params(jax.random.key(0))
    with pytest.raises(TypeError, match="samplers"):
        BatchedRunner(disentangled_loss, [], opt, p, LABELS, GROUPS, B)
    sample = task_sampler(InContextTask(random_forest(jax.random.key(0), T - 1, 0.5), S, 0.1))
    r = BatchedRunner(disentangled_loss, [sample, sample], opt, p, LABELS, GROUPS, B, max_chunk=2)
    with pytest.raises(ValueError, match="params_per_run"):
        r.init_state([p])
    state = r.init_state([p, p])
    with pytest.raises(ValueError, match="n must be <= 2"):
        r(state, jnp.stack([jax.random.key(0)] * 2), 3)
    with pytest.raises(ValueError, match="seed_keys"):
        r(state, jnp.stack([jax.random.key(0)] * 3), 1)


# ---------------------------------------------------------------------- whole runs (figure 9)
def _forest_configs(preset_name, R=2, **kw):
    from causal_grad.training import preset

    fields = dict(vocab=3, alpha=0.5, steps=12, batch=32, eval_size=64, eval_every=6, log_every=6, seed=3)
    fields.update(kw)
    graphs = [random_forest(jax.random.key(20 + g), T - 1, 0.5) for g in range(R)]
    return [preset(preset_name, g, **fields) for g in graphs]


@pytest.mark.parametrize(
    "preset_name,kw",
    [
        ("disentangled", {}),  # layer-wise: two stages, a fresh optimiser at the boundary
        ("fig2", {"decay": "constant"}),  # the public figure-9 notebook's optimiser: plain SGD at a constant lr 1
    ],
)
def test_train_batched_equals_train_alone(preset_name, kw, tmp_path):
    """Each run of train_batched is train()'s run of its config alone: parameters and held-out losses to float32
    rounding (the batched products may sum in another order: the same tolerance as the step-level test above),
    the baselines and the graph bit for bit (the same held-out set), the same history steps."""
    from causal_grad.batched import train_batched
    from causal_grad.training import load_run, train

    cfgs = _forest_configs(preset_name, **kw)
    outs = [tmp_path / f"run{r}" for r in range(len(cfgs))]
    got = train_batched(cfgs, outs, max_chunk=5)
    for r, cfg in enumerate(cfgs):
        alone = train(cfg, progress=False, max_chunk=5)
        g = got[r]
        assert g.config == cfg
        assert g.baselines == alone.baselines
        assert [e.step for e in g.evals] == [e.step for e in alone.evals]
        assert [s for s, _ in g.history.train] == [s for s, _ in alone.history.train]
        np.testing.assert_allclose([e.loss for e in g.evals], [e.loss for e in alone.evals], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(
            [v for _, v in g.history.train], [v for _, v in alone.history.train], rtol=2e-5, atol=1e-6
        )
        for a, b in zip(jax.tree.leaves(g.params), jax.tree.leaves(alone.params)):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
        assert set(g.final.to_dict()) == set(alone.final.to_dict())
        back = load_run(outs[r])
        assert back.config == cfg
        for a, b in zip(jax.tree.leaves(back.params), jax.tree.leaves(g.params)):
            np.testing.assert_array_equal(a, b)
    assert got[0].final.loss != got[1].final.loss  # two forests: the runs did differ


def test_train_batched_refuses_bad_input(tmp_path):
    from causal_grad.batched import train_batched

    cfgs = _forest_configs("fig2")
    with pytest.raises(TypeError, match="configs"):
        train_batched([])
    with pytest.raises(TypeError, match=r"configs\[1\]"):
        train_batched([cfgs[0], "x"])
    with pytest.raises(ValueError, match=r"configs\[1\] differs .* in lr"):
        train_batched([cfgs[0], cfgs[1].replace(lr=0.5)])
    longer = cfgs[1].replace(graph=random_forest(jax.random.key(5), T, 0.5))
    with pytest.raises(ValueError, match=r"configs\[1\]'s graph .* T = 8"):
        train_batched([cfgs[0], longer])
    with pytest.raises(ValueError, match="outs"):
        train_batched(cfgs, [tmp_path / "a"])
    with pytest.raises(ValueError, match="outs"):
        train_batched(cfgs, [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ValueError, match="max_chunk"):
        train_batched(cfgs, max_chunk=0)
