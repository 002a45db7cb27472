"""Monte Carlo gradients with standard errors: unbiased for the exact values, honest standard errors.

Every comparison is |mean − exact| < 4·SE per entry (with ~40 entries per test the chance of a false alarm
under correct code is ~0.3%; the keys are fixed, so the outcome is deterministic).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import causal_grad as cg
from causal_grad import x64
from causal_grad.gradients import (
    exact_population_gradient,
    linearized_gradient_at_init,
    monte_carlo_gradient,
    monte_carlo_linearized_at_init,
)
from causal_grad.gradients import monte_carlo as mcm
from causal_grad.gradients.linearized import linearized_terms, row_centre_lower

TASK = cg.InContextTask(cg.Graph((-1, 0, 1, 0, 3)), 3, 1.0)


def _pis(S, k, seed):
    pis = np.random.default_rng(seed).dirichlet(np.ones(S), size=(k, S))
    return pis / pis.sum(-1, keepdims=True)


def _z(mean, se, exact):
    mean, se, exact = (np.asarray(x) for x in (mean, se, exact))
    return np.abs(mean - exact) / np.where(se > 0, se, 1.0)


def test_monte_carlo_gradient_is_unbiased_for_the_exact_gradient():
    pis = _pis(3, 3, 0)
    rng = np.random.default_rng(1)
    A1, A2 = rng.normal(size=(6, 6)), rng.normal(size=(3, 3))
    ex = exact_population_gradient(TASK, pis, A1, A2, eps=0.01)
    mc = monte_carlo_gradient(TASK, jax.random.key(2), A1, A2, eps=0.01, num=30_000, batch=2_500, pis=pis)
    assert mc.num == 30_000
    assert _z(mc.loss, mc.se_loss, ex.loss) < 4
    assert np.all(_z(mc.dA1, mc.se_dA1, ex.dA1) < 4)
    assert np.all(_z(mc.dA2, mc.se_dA2, ex.dA2) < 4)
    assert np.all(np.asarray(mc.se_dA1)[np.tril_indices(6)][1:] > 0)  # non-degenerate (A1[0,0] has no gradient)


def test_linearized_estimator_is_unbiased_for_the_exact_linearized_gradient():
    pis = _pis(3, 2, 3)
    G = linearized_gradient_at_init(TASK, pis, eps=0.01)
    est = monte_carlo_linearized_at_init(TASK, jax.random.key(4), eps=0.01, num=40_000, batch=4_000, pis=pis)
    assert np.all(_z(est.G, est.se, G) < 4)


def test_linearized_standard_errors_equal_the_per_sequence_definition():
    """The matmul form of the sums of squares equals the textbook per-sequence computation (to round-off)."""
    key, batch, pis = jax.random.key(5), 16, _pis(3, 2, 3)
    est = monte_carlo_linearized_at_init(TASK, key, eps=0.01, num=2 * batch, batch=batch, pis=pis)
    T, S = TASK.seq_len, TASK.vocab_size
    per = []
    with x64():
        for b in range(2):
            tokens, pi = mcm._draw(TASK, jax.random.fold_in(key, b), batch, jnp.asarray(pis))
            seq = np.array([[np.r_[t[:-1], q] for q in range(S)] for t in np.asarray(tokens)])  # (B, S, T)
            g, E = linearized_terms(jnp.asarray(seq.reshape(-1, T)), (pi / S).reshape(-1, S), 0.01)
            K = jnp.einsum("bqi,bqj->bij", g.reshape(batch, S, T), E.reshape(batch, S, T))  # per sequence
            per.append(np.asarray(jax.vmap(row_centre_lower, in_axes=(0, None))(K, 0.01)))
    per = np.concatenate(per)
    np.testing.assert_allclose(np.asarray(est.G), per.mean(0), rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(np.asarray(est.se), per.std(0, ddof=1) / np.sqrt(len(per)), rtol=1e-8, atol=1e-16)


def test_prior_path_is_reproducible_and_keys_matter():
    kw = dict(eps=0.01, num=32, batch=16)  # π from the task's prior (a fresh one per sequence)
    a = monte_carlo_linearized_at_init(TASK, jax.random.key(6), **kw)
    b = monte_carlo_linearized_at_init(TASK, jax.random.key(6), **kw)
    c = monte_carlo_linearized_at_init(TASK, jax.random.key(7), **kw)
    assert np.array_equal(np.asarray(a.G), np.asarray(b.G))
    assert not np.array_equal(np.asarray(a.G), np.asarray(c.G))
    assert np.all(np.isfinite(np.asarray(a.se)))


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(key=0), TypeError, "key must be a jax.random key"),
        (dict(num=1), ValueError, "num must be >= 2"),
        (dict(batch=0), ValueError, "batch must be >= 1"),
        (dict(eps=1.5), ValueError, "eps"),
        (dict(pis=np.eye(2)), ValueError, "pis must be 3x3"),
        (dict(A1=np.zeros((6, 5))), ValueError, "A1 must have shape (6, 6)"),
    ],
)
def test_bad_inputs(kwargs, exc, words):
    args = dict(key=jax.random.key(0), A1=np.zeros((6, 6)), A2=np.eye(3), eps=1e-3, num=64) | kwargs
    with pytest.raises(exc) as e:
        monte_carlo_gradient(TASK, args.pop("key"), args.pop("A1"), args.pop("A2"), **args)
    assert words in str(e.value)
    if "A1" not in kwargs:
        args = dict(key=jax.random.key(0), eps=1e-3, num=64) | {k: v for k, v in kwargs.items() if k != "A1"}
        with pytest.raises(exc):
            monte_carlo_linearized_at_init(TASK, args.pop("key"), **args)
