"""The priors over π (causal_grad.priors); their gamma / Dirichlet kernels are tested in tests/test_kernels.py.

Distribution tests use fixed keys, so each p-value below is a fixed number; the thresholds (1e-3) and the
moment bounds (5 standard errors) would reject a wrong sampler at these sample sizes with near certainty while a
correct one passes them with probability ≥ 0.999 per check.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from causal_grad.priors import Dirichlet, Floored, PermutationLike, Prior, Sticky


def test_dirichlet_prior_batch_last_rows():
    """The task's batch-last π: every row is Dirichlet(α), rows independent of each other."""
    S, B, alpha = 6, 8000, 0.5
    pi = np.asarray(Dirichlet(alpha).sample_batch_last(jax.random.key(2), B, S), np.float64)  # (S, S, B)
    assert pi.shape == (S, S, B)
    np.testing.assert_allclose(pi.sum(1), 1.0, atol=1e-5)
    for a in (0, S - 1):
        assert stats.kstest(pi[a, 2], stats.beta(alpha, (S - 1) * alpha).cdf).pvalue > 1e-3
    r = np.corrcoef(pi[0, 0], pi[1, 0])[0, 1]  # different rows: independent
    assert abs(r) < 5 / np.sqrt(B)


def test_priors_rows_sum_to_one_and_floors_hold():
    S, k = 5, 400
    key = jax.random.key(0)
    fl = np.asarray(Floored(0.1, gamma=0.2).sample(key, (k,), S))
    assert fl.shape == (k, S, S)
    np.testing.assert_allclose(fl.sum(-1), 1.0, atol=1e-5)
    assert fl.min() >= 0.2 / S - 1e-7
    st = np.asarray(Sticky(0.1, lam=0.4).sample(key, (k,), S))
    np.testing.assert_allclose(st.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.diagonal(st, axis1=1, axis2=2) >= 0.4 - 1e-7)
    pl = np.asarray(PermutationLike(1.0, delta=0.1).sample(key, (k,), S))
    np.testing.assert_allclose(pl.sum(-1), 1.0, atol=1e-5)
    assert np.all(pl.max(-1) >= 0.9 - 1e-7)
    for m in pl[:20]:  # the heavy entries form a permutation
        assert sorted(np.argmax(m, -1)) == list(range(S))
    for prior in (Floored(0.1), Sticky(0.1), PermutationLike(), Dirichlet(0.3)):
        bl = np.asarray(prior.sample_batch_last(key, 50, S))
        assert bl.shape == (S, S, 50)
        np.testing.assert_allclose(bl.sum(1), 1.0, atol=1e-5)


def test_base_prior_batch_last_transposes_sample():
    class Fixed(Prior):
        def sample(self, key, shape, S, dtype=jnp.float32):
            return jnp.broadcast_to(jnp.arange(S * S, dtype=dtype).reshape(S, S), tuple(shape) + (S, S))

    bl = np.asarray(Fixed().sample_batch_last(jax.random.key(0), 3, 2))
    np.testing.assert_array_equal(bl[:, :, 1], np.arange(4).reshape(2, 2))
