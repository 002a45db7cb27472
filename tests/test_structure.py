import jax
import numpy as np
import pytest

from causal_grad import InContextTask, random_tree
from causal_grad.structure import chow_liu, empirical_pair_mi, parent_recovery


def test_chow_liu_recovers_tree_with_many_samples_and_not_with_few():
    g = random_tree(jax.random.key(4), 8)
    task = InContextTask(g, 4, 1.0)
    pi = np.asarray(task.sample_pi(jax.random.key(0), 1))
    many = np.asarray(task.sample_given_pi(jax.random.key(1), np.repeat(pi, 20000, 0)))[:, :-1]
    rec = parent_recovery(chow_liu(many, 4), g.parents)
    assert rec["all"] and rec["shd"] == 0
    few = many[:5]
    assert not parent_recovery(chow_liu(few, 4), g.parents)["all"]


def test_empirical_mi_independent_positions_small():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, size=(20000, 4))
    mi = empirical_pair_mi(t, 3)
    assert np.allclose(mi, mi.T) and np.all(np.diag(mi) == 0)
    # plug-in bias of independent pairs is about (S-1)^2/(2N) = 1e-4
    assert mi.max() < 10 * 4 / (2 * 20000)


def test_parent_recovery_counts():
    r = parent_recovery((-1, 0, 0, 2), (-1, 0, 1, 2))
    assert r["fraction"] == pytest.approx(2 / 3) and not r["all"] and r["shd"] == 2


def test_bad_tokens():
    with pytest.raises(ValueError, match="tokens must lie in"):
        chow_liu(np.array([[0, 3]]), 3)
    with pytest.raises(TypeError, match="integer"):
        chow_liu(np.zeros((2, 2)), 3)
