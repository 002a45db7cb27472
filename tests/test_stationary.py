import jax
import jax.numpy as jnp
import numpy as np

from causal_grad import x64
from causal_grad.stationary import stationary, stationary_residual


def test_gth_matches_known_two_state_law():
    with x64():
        a, b = 1e-13, 0.3
        pi = jnp.array([[1 - a, a], [b, 1 - b]])
        mu = np.asarray(stationary(pi))
        # exact: mu = (b, a)/(a+b); the small entry keeps full relative accuracy
        np.testing.assert_allclose(mu, np.array([b, a]) / (a + b), rtol=1e-12)


def test_gth_residual_small_alpha_and_periodic():
    from causal_grad.priors import Dirichlet

    with x64():
        pis = Dirichlet(1e-3).sample(jax.random.key(0), (500,), 6, jnp.float64)
        mu = stationary(pis)
        assert float(jnp.max(stationary_residual(pis, mu))) < 1e-10
        assert float(jnp.min(mu)) >= 0.0
        per = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        np.testing.assert_allclose(np.asarray(stationary(per)), np.ones(3) / 3, atol=1e-15)


def test_reducible_matrix_gives_finite_law():
    with x64():
        mu = stationary(jnp.eye(4))
        assert bool(jnp.all(jnp.isfinite(mu))) and abs(float(mu.sum()) - 1) < 1e-12
