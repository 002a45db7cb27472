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
from causal_grad.training.schedules import ADAM_BETAS, cosine_decay, make_optimizer_fn, schedule_length

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


@pytest.mark.parametrize("name,wd,warmup", [("sgd", 0.0, 0), ("adamw", 0.0, 0), ("adamw", 2e-4, 3)])
def test_constant_decay(name, wd, warmup):
    """decay="constant": plain GD is optax.sgd(lr), each update exactly -lr·g (lr = 1: the gradient itself, as the
    public figure-9 notebook); the run-time-length optimiser ignores the length and equals the fixed one bit for
    bit; AdamW's learning rate after the warm-up is lr at every count. The default stays the cosine."""
    p0 = {"a": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4)}
    g = {"a": jnp.sin(3.0 * p0["a"])}
    lr = 1.0 if name == "sgd" else 0.05
    fixed = make_optimizer(name, lr, 20, weight_decay=wd, warmup=warmup, decay="constant")
    ref = optax.sgd(lr) if name == "sgd" else optax.adamw(lr, weight_decay=wd)
    cos = make_optimizer(name, lr, 20, weight_decay=wd, warmup=warmup)
    s, s_ref, s_cos = fixed.init(p0), ref.init(p0), cos.init(p0)
    p = p0
    for count in range(25):  # past the nominal 20 steps: a constant rate never decays
        u, s = jax.jit(fixed.update)(g, s, p)
        u_cos, s_cos = jax.jit(cos.update)(g, s_cos, p)
        if name == "sgd":
            np.testing.assert_array_equal(u["a"], -g["a"])
        if not warmup:  # no warm-up: optax's own optimiser at the constant rate
            u_ref, s_ref = jax.jit(ref.update)(g, s_ref, p)
            np.testing.assert_array_equal(u["a"], u_ref["a"])
        if count >= 20:  # the cosine has reached 0; the constant rate still moves the parameters
            assert not np.any(np.asarray(u_cos["a"])) and np.all(np.asarray(u["a"]) != 0)
        p = optax.apply_updates(p, u)
    for L in (schedule_length(20, warmup), schedule_length(5, 0)):
        fn = make_optimizer_fn(name, lr, weight_decay=wd, warmup=warmup, decay="constant")
        s1, s2 = fixed.init(p0), fn(L).init(p0)
        assert jax.tree.structure(s1) == jax.tree.structure(s2)
        a, b = p0, p0
        for _ in range(7):
            u1, s1 = fixed.update(g, s1, a)
            u2, s2 = fn(L).update(g, s2, b)
            a, b = optax.apply_updates(a, u1), optax.apply_updates(b, u2)
        np.testing.assert_array_equal(a["a"], b["a"])
    # the default is the cosine: unchanged numbers
    cos = make_optimizer(name, 0.05, 20, weight_decay=wd, warmup=warmup)
    cos2 = make_optimizer(name, 0.05, 20, weight_decay=wd, warmup=warmup, decay="cosine")
    u1, _ = cos.update(g, cos.init(p0), p0)
    u2, _ = cos2.update(g, cos2.init(p0), p0)
    np.testing.assert_array_equal(u1["a"], u2["a"])


def test_decay_in_the_config_and_refused_at_the_door():
    from causal_grad.training import OptimConfig, TrainConfig
    from causal_grad.training.schedules import DECAYS

    assert DECAYS == ("cosine", "constant") and OptimConfig().decay == "cosine"
    cfg = _cfg(schedule="joint", optimizer="sgd", lr=1.0, decay="constant")
    assert {s.decay for s in cfg.stages(("A1", "A2", "W"))} == {"constant"}
    assert (
        cfg.stages(("A1", "A2", "W"))[0].program
        != _cfg(schedule="joint", optimizer="sgd", lr=1.0).stages(("A1", "A2", "W"))[0].program
    )  # another compiled program
    old = cfg.to_json()
    del old["optim"]["decay"]  # a config.json written before the field existed reads back as the cosine
    assert TrainConfig.from_json(old).optim.decay == "cosine"
    for bad in ("linear", None, 3):
        with pytest.raises(ValueError, match="decay must be one of cosine, constant"):
            OptimConfig(decay=bad)
    with pytest.raises(ValueError, match="decay"):
        make_optimizer("sgd", 1.0, 5, decay="step")
    with pytest.raises(ValueError, match="decay"):
        make_optimizer_fn("sgd", 1.0, decay="step")


@pytest.mark.parametrize("decay,warmup", [("cosine", 0), ("cosine", 3), ("constant", 0), ("constant", 3)])
def test_adamw_betas_are_optax_s(decay, warmup):
    """b1, b2 reach optax.adamw: with (0.9, 0.95) ten updates equal optax.adamw(lr or its schedule, b1=0.9,
    b2=0.95, weight_decay) bit for bit, the run-time-length optimiser equals the fixed one, and they differ from
    the default betas' updates; the defaults (0.9, 0.999) are optax's own, so the default numbers are unchanged."""
    assert ADAM_BETAS == (0.9, 0.999)
    p0 = {"a": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4)}
    lr, steps, wd = 0.05, 20, 0.1
    if decay == "constant":
        sched = (
            lr
            if not warmup
            else optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
        )
    else:
        sched = (
            optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, end_value=0.0)
            if warmup
            else optax.cosine_decay_schedule(lr, steps)
        )

    def run(opt):
        p, s = p0, opt.init(p0)
        for i in range(10):
            g = jax.tree.map(lambda x, k=i + 1: jnp.sin(x * k), p)
            u, s = jax.jit(opt.update)(g, s, p)
            p = optax.apply_updates(p, u)
        return np.asarray(p["a"])

    kw = dict(weight_decay=wd, warmup=warmup, decay=decay)
    ours = run(make_optimizer("adamw", lr, steps, b1=0.9, b2=0.95, **kw))
    np.testing.assert_array_equal(ours, run(optax.adamw(sched, b1=0.9, b2=0.95, weight_decay=wd)))
    fn = make_optimizer_fn("adamw", lr, b1=0.9, b2=0.95, **kw)(schedule_length(steps, warmup))
    np.testing.assert_array_equal(run(fn), ours)
    default = run(make_optimizer("adamw", lr, steps, **kw))
    np.testing.assert_array_equal(default, run(optax.adamw(sched, weight_decay=wd)))
    assert not np.array_equal(default, ours)


def test_betas_in_the_config_and_refused_at_the_door():
    """OptimConfig.b1, b2: optax's defaults, passed to every stage (another compiled program when they differ);
    a config.json written before the fields existed reads back with the defaults; refused outside [0, 1) and
    with plain GD when not the defaults."""
    from causal_grad.training import OptimConfig, TrainConfig

    o = OptimConfig()
    assert (o.b1, o.b2) == (0.9, 0.999)
    cfg = _cfg(schedule="joint", optimizer="adamw", lr=0.01, b1=0.9, b2=0.95)
    assert {(s.b1, s.b2) for s in cfg.stages(("A1", "A2", "W"))} == {(0.9, 0.95)}
    assert cfg.to_json()["optim"]["b2"] == 0.95 and TrainConfig.from_json(cfg.to_json()) == cfg
    default = _cfg(schedule="joint", optimizer="adamw", lr=0.01)
    assert cfg.stages(("A1", "A2", "W"))[0].program != default.stages(("A1", "A2", "W"))[0].program
    old = default.to_json()
    del old["optim"]["b1"], old["optim"]["b2"]  # a config.json written before the fields existed
    assert TrainConfig.from_json(old) == default
    for name in ("b1", "b2"):
        for bad in (1.0, -0.1, 1.5, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=rf"{name} must lie in \[0, 1\)"):
                OptimConfig(optimizer="adamw", **{name: bad})
            with pytest.raises(ValueError, match=rf"{name} must lie in \[0, 1\)"):
                make_optimizer("adamw", 0.1, 5, **{name: bad})
        for bad in ("0.9", None, [0.9]):
            with pytest.raises(TypeError, match=rf"{name} must be a real number"):
                OptimConfig(optimizer="adamw", **{name: bad})
    OptimConfig(optimizer="adamw", b1=0.0, b2=0.0)  # 0 is allowed (no momentum; RMS of the last gradient)
    with pytest.raises(ValueError, match="b1, b2 apply to adamw only"):
        OptimConfig(optimizer="sgd", b2=0.95)
    with pytest.raises(ValueError, match="b1, b2 apply to adamw only"):
        make_optimizer_fn("sgd", 1.0, b1=0.5)


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
