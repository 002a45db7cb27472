"""Start-up paid once per process and shape (issue 15): the schedule's length is a run-time argument of the
compiled chunk, bit for bit optax's schedule; a second ``train`` call that differs only in ``steps``, seed or
logging reuses the compiled program and the held-out set."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from causal_grad.graphs import random_tree
from causal_grad.training import default_config, make_optimizer, train
from causal_grad.training import run as run_mod
from causal_grad.training.schedules import cosine_decay, make_optimizer_fn, schedule_length

LENGTHS = [1, 2, 3, 7, 10, 37, 99, 100, 128, 200, 333, 1000, 2000, 4096, 5000, 12345]


@pytest.mark.parametrize("lr", [1.0, 300.0, 1e-2, 0.05])
def test_cosine_decay_equals_optax_bitwise(lr):
    """Inside jit with a traced length, the schedule equals optax's with the constant length, every count."""
    traced = jax.jit(lambda c, L: jax.vmap(cosine_decay(lr, L))(c))
    for T in LENGTHS:
        counts = jnp.arange(T + 3, dtype=jnp.int32)
        want = jax.jit(jax.vmap(optax.cosine_decay_schedule(lr, T)))(counts)
        np.testing.assert_array_equal(traced(counts, schedule_length(T)), want, err_msg=f"T={T}")
    # a scalar count (as in the optimiser state) compiles to another program: check that one too
    for T in (9, 20, 61, 200):
        fixed = jax.jit(optax.cosine_decay_schedule(lr, T))
        run_time = jax.jit(lambda c, L: cosine_decay(lr, L)(c))
        got = [run_time(jnp.int32(c), schedule_length(T)) for c in range(T + 2)]
        np.testing.assert_array_equal(got, [fixed(jnp.int32(c)) for c in range(T + 2)], err_msg=f"T={T}")


@pytest.mark.parametrize("name,wd,warmup", [("sgd", 0.0, 0), ("adamw", 0.0, 0), ("adamw", 2e-4, 0), ("adamw", 2e-4, 5)])
def test_optimizer_fn_updates_equal_make_optimizer(name, wd, warmup):
    """Ten updates under jit (the state an argument, so that its count is a run-time value as in training): the
    run-time-length optimiser gives make_optimizer's parameters bit for bit."""
    p0 = {"a": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4), "b": jnp.ones((4,), jnp.float32)}

    def run(opt, p, s):
        for i in range(10):
            g = jax.tree.map(lambda x, k=i + 1: jnp.sin(x * k), p)
            u, s = opt.update(g, s, p)
            p = optax.apply_updates(p, u)
        return p

    for steps in (9, 20, 61):
        fixed = make_optimizer(name, 0.05, steps, weight_decay=wd, warmup=warmup)
        s0 = fixed.init(p0)
        want = jax.jit(lambda p, s, opt=fixed: run(opt, p, s))(p0, s0)
        got = jax.jit(lambda p, s, L: run(make_optimizer_fn(name, 0.05, weight_decay=wd, warmup=warmup)(L), p, s))(
            p0, s0, schedule_length(steps, warmup)
        )
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_array_equal(a, b)


def test_schedule_length_refuses():
    with pytest.raises(ValueError, match="steps"):
        schedule_length(0)
    with pytest.raises(ValueError, match="warmup"):
        schedule_length(5, 5)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer_fn("lbfgs", 1.0)


def _cfg(**kw):
    g = random_tree(jax.random.key(3), 5)
    return default_config(
        "disentangled", g, **{"vocab": 3, "alpha": 0.5, "batch": 32, "eval_size": 64, "eval_every": 10, **kw}
    )


def test_second_call_reuses_the_compiled_program():
    """A config that differs in steps (so in the stage boundaries), seed or logging: no new context, no new
    runner, the held-out set shared; each run equals a run in a fresh cache bit for bit."""
    run_mod._CONTEXTS.clear()
    run_mod._HELD_OUT.clear()
    first = train(_cfg(steps=30), progress=False)
    (ctx,) = run_mod._CONTEXTS.values()
    runners = dict(ctx._runners)
    others = [_cfg(steps=44), _cfg(steps=30, seed=5), _cfg(steps=21, log_every=7, eval_every=7)]
    results = [train(c, progress=False) for c in others]
    assert len(run_mod._CONTEXTS) == 1 and len(run_mod._HELD_OUT) == 1
    assert ctx._runners == runners, "a run of another length compiled a new chunk"
    # the same numbers as a cold start (fresh caches) for every one of them
    for c, r in zip(others, results):
        run_mod._CONTEXTS.clear()
        cold = train(c, progress=False)
        for a, b in zip(jax.tree.leaves(r.params), jax.tree.leaves(cold.params)):
            np.testing.assert_array_equal(a, b)
        assert r.evals[-1].loss == cold.evals[-1].loss
    assert first.history.steps_done == 30


def test_second_call_starts_fast():
    """Time to the first training chunk (the step-0 evaluation's ``time_s``: the context, the initial state and
    the first evaluation): the second call, with another steps and seed, starts within 2 s."""
    run_mod._CONTEXTS.clear()
    run_mod._HELD_OUT.clear()
    train(_cfg(steps=20), progress=False)
    res = train(_cfg(steps=10, seed=1), progress=False)
    assert res.evals[0].step == 0
    assert res.evals[0].time_s < 2.0
