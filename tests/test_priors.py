"""The gamma / Dirichlet samplers and the priors over π (causal_grad.priors).

Distribution tests use fixed keys, so each p-value below is a fixed number; the thresholds (1e-3) and the
moment bounds (5 standard errors) would reject a wrong sampler at these sample sizes with near certainty while a
correct one passes them with probability ≥ 0.999 per check.
"""

import jax
import jax.extend.random as jer
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from causal_grad import x64
from causal_grad import priors as P
from causal_grad.priors import Dirichlet, Floored, PermutationLike, Prior, Sticky, dirichlet, gamma, log_gamma_variates

ALPHAS = (0.1, 0.5, 1.0, 3.7, 50.0)


def _gamma_checks(lg, alpha):
    """KS test of ``exp(lg)`` against Gamma(alpha) (on the CDF scale, so log-space values are fine) and the
    first two moments within 5 standard errors."""
    lg = np.asarray(lg, np.float64).ravel()
    assert np.all(np.isfinite(lg))
    # KS against the exact CDF P(alpha, x) = regularised lower incomplete gamma
    cdf = special.gammainc(alpha, np.exp(lg))
    p = stats.kstest(cdf, "uniform").pvalue
    assert p > 1e-3, (alpha, p)
    g = np.exp(lg)
    n = g.size
    assert abs(g.mean() - alpha) < 5 * np.sqrt(alpha / n)
    m2 = alpha * (alpha + 1)  # E[G^2]
    assert abs(np.mean(g * g) - m2) < 5 * np.std(g * g) / np.sqrt(n)


def test_threefry_matches_jax_block_function():
    rng = np.random.default_rng(0)
    k = rng.integers(0, 2 ** 32, 2, dtype=np.uint32)
    x = rng.integers(0, 2 ** 32, (2, 1000), dtype=np.uint32)
    ref = np.asarray(jer.threefry_2x32(jnp.asarray(k), jnp.asarray(x.reshape(-1))))
    a, b = P._threefry2x32(jnp.uint32(k[0]), jnp.uint32(k[1]), jnp.asarray(x[0]), jnp.asarray(x[1]))
    np.testing.assert_array_equal(np.concatenate([np.asarray(a), np.asarray(b)]), ref)


def test_uniform_grids_are_open_and_symmetric():
    w = jnp.array([0, 1, 2 ** 9 - 1, 2 ** 31, 2 ** 32 - 1], jnp.uint32)
    u = np.asarray(P._unit_f32(w), np.float64)
    assert u.min() > 0 and u.max() < 1
    np.testing.assert_array_equal(u, (np.array([0, 0, 0, 2 ** 22, 2 ** 23 - 1]) + 0.5) * 2.0 ** -23)
    np.testing.assert_array_equal(u[[0, -1]] + u[[-1, 0]], 1.0)  # symmetric grid: 2u - 1 is exact


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gamma_distribution_float32(alpha):
    _gamma_checks(log_gamma_variates(jax.random.key(11), alpha, (40, 500)), alpha)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gamma_distribution_float64(alpha):
    with x64():
        lg = log_gamma_variates(jax.random.key(12), alpha, (20000,), jnp.float64)
        assert lg.dtype == jnp.float64
        _gamma_checks(lg, alpha)


def test_gamma_tiny_alpha_stays_finite_in_log_space():
    lg = np.asarray(log_gamma_variates(jax.random.key(3), 0.1, (20000,)))
    assert np.all(np.isfinite(lg))
    assert lg.min() < np.log(np.finfo(np.float32).tiny)  # values below the float32 range survive in log space
    assert float(jnp.min(gamma(jax.random.key(3), 0.1, (20000,)))) >= 0.0


def test_array_alpha_path():
    alpha = np.array([0.3, 4.0])
    lg = np.asarray(log_gamma_variates(jax.random.key(5), alpha, (10000, 2)))
    for j, a in enumerate(alpha):
        _gamma_checks(lg[:, j], a)


def test_rejection_fallback_is_exact(monkeypatch):
    """With one spare per group almost every group fails its first pass and is redrawn (several passes of the
    while loop); the variates must still be exactly Gamma."""
    monkeypatch.setattr(P, "_spares_for", lambda g, alpha, target: 1)
    kw = P._key_words(jax.random.key(9))
    lg = jax.jit(lambda k0, k1: P._log_gamma_groups((k0, k1), 1.0, 40, 300, jnp.float32))(*kw)
    _gamma_checks(lg, 1.0)


def test_compaction_matches_reference():
    """Slot j keeps its candidate if accepted, else takes the next accepted spare in order; a group is ok iff
    it holds at least g accepted candidates."""
    rng = np.random.default_rng(0)
    g, m, G1, G2 = 37, 11, 2, 300
    v = rng.standard_normal((G1, g + m, G2)).astype(np.float32)
    v[rng.random(v.shape) < 0.15] = np.nan
    out, ok = jax.jit(lambda v: P._compact(v, g))(v)
    out, ok = np.asarray(out), np.asarray(ok)
    assert 0 < ok.mean() < 1
    for i in range(G1):
        for c in range(G2):
            col = v[i, :, c]
            assert ok[i, c] == (np.sum(~np.isnan(col)) >= g)
            if ok[i, c]:
                spares = iter(col[g:][~np.isnan(col[g:])])
                expect = [x if not np.isnan(x) else next(spares) for x in col[:g]]
                np.testing.assert_array_equal(out[i, :, c], np.array(expect, np.float32))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dirichlet_marginals_and_covariance(dtype):
    """Coordinates of Dirichlet(α·1_S) are Beta(α, (S-1)α); distinct coordinates have covariance
    −α²/((Sα)²(Sα+1))."""
    S, alpha, n = 10, 0.1, 20000
    with x64():
        d = np.asarray(dirichlet(jax.random.key(4), alpha, (n,), S, dtype), np.float64)
        assert d.shape == (n, S)
    np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-5 if dtype == jnp.float32 else 1e-12)
    for c in (0, 7):
        assert stats.kstest(d[:, c], stats.beta(alpha, (S - 1) * alpha).cdf).pvalue > 1e-3
    prod = d[:, 0] * d[:, 1]
    a0 = S * alpha
    expect = alpha * alpha / (a0 * (a0 + 1))  # E[x0 x1]
    assert abs(prod.mean() - expect) < 5 * prod.std() / np.sqrt(n)


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


def test_key_types_and_determinism():
    a = np.asarray(dirichlet(jax.random.key(1), 0.3, (64,), 4))
    b = np.asarray(dirichlet(jax.random.key(1), 0.3, (64,), 4))
    c = np.asarray(dirichlet(jax.random.key(2), 0.3, (64,), 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for key in (jax.random.PRNGKey(1), jax.random.key(1, impl="rbg"), jax.random.key(1, impl="unsafe_rbg")):
        d = np.asarray(dirichlet(key, 0.3, (64,), 4))
        np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-5)


def test_bad_dtype():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        log_gamma_variates(jax.random.key(0), 1.0, (3,), jnp.int32)
