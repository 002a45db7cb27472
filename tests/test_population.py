import jax
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import x64
from causal_grad.gradients import exact_population_gradient
from causal_grad.population import population_gd
from causal_grad.priors import Floored


@pytest.fixture(scope="module")
def small():
    task = cg.InContextTask((-1, 0, 1, 0, 3), 3, 1.0)
    with x64():
        pis = np.asarray(Floored(1.0, 0.3).sample(jax.random.key(0), (3,), 3, "float64"))
    return task, pis


def test_first_step_is_minus_lr_times_exact_gradient(small):
    task, pis = small
    tr = population_gd(task, pis, steps=1, lr=7.0, beta0=0.5, eps=1e-3)
    T, S = task.seq_len, task.vocab_size
    g = exact_population_gradient(task, pis, np.zeros((T, T)), 0.5 * np.eye(S), eps=1e-3)
    np.testing.assert_allclose(tr.A1[1], -7.0 * np.asarray(g.dA1), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(tr.A2[1], 0.5 * np.eye(S))
    assert tr.loss[0] == pytest.approx(float(g.loss), rel=1e-14)


def test_small_step_lowers_loss_monotonically_both_schedules(small):
    task, pis = small
    for sched, kw in (
        ("layerwise", dict(steps=25, stage2_steps=15, lr=5.0, lr2=2.0)),
        ("joint", dict(steps=30, lr=2.0, beta0=0.0)),
    ):
        tr = population_gd(task, pis, schedule=sched, eps=1e-3, **kw)
        d = np.diff(tr.loss)
        assert np.all(d < 0), (sched, d.max())
    assert set(tr.stage) == {1}


def test_layerwise_stage_two_freezes_A1(small):
    task, pis = small
    tr = population_gd(task, pis, steps=5, stage2_steps=5, lr=5.0)
    assert np.array_equal(tr.A1[tr.stage == 2][0], tr.A1[-1])
    assert not np.array_equal(tr.A2[-1], tr.A2[0])


def test_bad_input(small):
    task, pis = small
    with pytest.raises(ValueError, match="schedule"):
        population_gd(task, pis, schedule="adam")
    with pytest.raises(ValueError, match="lr must be > 0"):
        population_gd(task, pis, lr=0.0)
    with pytest.raises(ValueError, match="stage2_steps"):
        population_gd(task, pis, schedule="joint", stage2_steps=3)
    with pytest.raises(ValueError, match="pis"):
        population_gd(task, pis[:, :2, :2])
