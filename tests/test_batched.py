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
