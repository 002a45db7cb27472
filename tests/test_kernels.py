"""The kernels (causal_grad.kernels) against their plain twins, and the gamma / Dirichlet samplers' laws.

Bit for bit where fast path and twin use the same random bits (Threefry, the token draws, the uniform query);
in distribution where they do not (gamma, Dirichlet: moments within 5 standard errors and Kolmogorov–Smirnov
tests at fixed keys, so each p-value is a fixed number; the threshold 1e-3 would reject a wrong sampler at these
sample sizes with near certainty while a correct one passes with probability ≥ 0.999 per check); to float64
relative accuracy for GTH (subtraction-free: a few ulps per entry, whatever the entry's size).
"""

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from causal_grad import kernels as K
from causal_grad import x64
from causal_grad.kernels import dirichlet, gamma, log_gamma_variates
from causal_grad.kernels import gamma_sampler as G

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
    k = rng.integers(0, 2**32, 2, dtype=np.uint32)
    x = rng.integers(0, 2**32, (2, 1000), dtype=np.uint32)
    ref = np.asarray(jax.extend.random.threefry_2x32(jnp.asarray(k), jnp.asarray(x.reshape(-1))))
    a, b = K.threefry2x32(jnp.uint32(k[0]), jnp.uint32(k[1]), jnp.asarray(x[0]), jnp.asarray(x[1]))
    np.testing.assert_array_equal(np.concatenate([np.asarray(a), np.asarray(b)]), ref)


def test_uniform_grids_are_open_and_symmetric():
    w = jnp.array([0, 1, 2**9 - 1, 2**31, 2**32 - 1], jnp.uint32)
    u = np.asarray(K.unit_f32(w), np.float64)
    assert u.min() > 0 and u.max() < 1
    np.testing.assert_array_equal(u, (np.array([0, 0, 0, 2**22, 2**23 - 1]) + 0.5) * 2.0**-23)
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
    monkeypatch.setattr(G, "_spares_for", lambda g, alpha, target: 1)
    kw = K.key_words(jax.random.key(9))
    lg = jax.jit(lambda k0, k1: G._log_gamma_groups((k0, k1), 1.0, 40, 300, jnp.float32))(*kw)
    _gamma_checks(lg, 1.0)


def test_compaction_matches_reference():
    """Slot j keeps its candidate if accepted, else takes the next accepted spare in order; a group is ok iff
    it holds at least g accepted candidates."""
    rng = np.random.default_rng(0)
    g, m, G1, G2 = 37, 11, 2, 300
    v = rng.standard_normal((G1, g + m, G2)).astype(np.float32)
    v[rng.random(v.shape) < 0.15] = np.nan
    out, ok = jax.jit(lambda v: G._compact(v, g))(v)
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


def test_threefry_twin_bit_for_bit():
    rng = np.random.default_rng(5)
    k0, k1 = (jnp.uint32(v) for v in rng.integers(0, 2**32, 2, dtype=np.uint32))
    x0, x1 = (jnp.asarray(rng.integers(0, 2**32, (7, 9), dtype=np.uint32)) for _ in range(2))
    for fast, ref in zip(K.threefry2x32(k0, k1, x0, x1), K.threefry2x32_reference(k0, k1, x0, x1)):
        np.testing.assert_array_equal(np.asarray(fast), np.asarray(ref))


def test_counter_words_are_the_blocks_of_the_flat_index():
    kw = K.key_words(jax.random.key(4))
    a, b = jax.jit(lambda k0, k1: K.counter_words((k0, k1), 3, (5, 6)))(*kw)
    ra, rb = K.threefry2x32_reference(kw[0], kw[1], jnp.arange(30, dtype=jnp.uint32), jnp.full(30, 3, jnp.uint32))
    np.testing.assert_array_equal(np.asarray(a).ravel(), np.asarray(ra))
    np.testing.assert_array_equal(np.asarray(b).ravel(), np.asarray(rb))


# ---------------------------------------------------------------------- gamma / Dirichlet vs jax.random
@pytest.mark.parametrize("alpha", (0.1, 1.0, 3.7))
def test_log_gamma_matches_its_twin_in_distribution(alpha):
    """Fast sampler and jax.random.loggamma: two-sample KS on log G, and the means of log G (digamma(α)) within
    5 standard errors of each other."""
    n = 20000
    fast = np.asarray(log_gamma_variates(jax.random.key(21), alpha, (n,)), np.float64)
    ref = np.asarray(K.log_gamma_reference(jax.random.key(22), alpha, (n,)), np.float64)
    assert stats.ks_2samp(fast, ref).pvalue > 1e-3
    se = np.sqrt(fast.var() / n + ref.var() / n)
    assert abs(fast.mean() - ref.mean()) < 5 * se
    assert abs(fast.mean() - special.digamma(alpha)) < 5 * fast.std() / np.sqrt(n)
    assert abs(ref.mean() - special.digamma(alpha)) < 5 * ref.std() / np.sqrt(n)


def test_dirichlet_matches_its_twin_in_distribution():
    S, alpha, n = 6, 0.3, 20000
    fast = np.asarray(dirichlet(jax.random.key(23), alpha, (n,), S), np.float64)
    ref = np.asarray(K.dirichlet_reference(jax.random.key(24), alpha, (n,), S), np.float64)
    for c in (0, S - 1):
        assert stats.ks_2samp(fast[:, c], ref[:, c]).pvalue > 1e-3
    for x, y in ((fast[:, 0], ref[:, 0]), (fast[:, 0] * fast[:, 1], ref[:, 0] * ref[:, 1])):
        assert abs(x.mean() - y.mean()) < 5 * np.sqrt(x.var() / n + y.var() / n)


def test_dirichlet_batch_last_is_the_matrices_kernel():
    key = jax.random.key(6)
    a = K.dirichlet_matrices_batch_last(key, 0.4, 50, 5, jnp.float32)
    b = jax.jit(lambda k: K.dirichlet_batch_last(K.key_words(k), 0.4, 5, 5, 50, jnp.float32))(key)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------- GTH vs the NumPy loops
@pytest.mark.parametrize("S, alpha", [(2, 1.0), (5, 0.1), (10, 0.01), (40, 0.3)])
def test_gth_matches_its_twin(S, alpha):
    """Both fast forms against the textbook loops, entry by entry to relative accuracy (entries far below
    1e-10 included)."""
    with x64():
        pis = np.asarray(dirichlet(jax.random.key(S), alpha, (6, S), S, jnp.float64))
        ref = np.stack([K.gth_reference(p) for p in pis])
        # each fast form compiled whole, as the samplers call it (not op by op)
        loop = np.asarray(jax.jit(jax.vmap(K.gth_loop))(jnp.asarray(pis)))
        np.testing.assert_allclose(loop, ref, rtol=1e-10, atol=0)
        bl = np.asarray(jax.jit(K.stationary_batch_last)(jnp.asarray(pis.transpose(1, 2, 0)))).T
        np.testing.assert_allclose(bl, ref, rtol=1e-10, atol=0)
        if S <= K.UNROLL_MAX_S:
            np.testing.assert_allclose(
                np.asarray(jax.jit(K.gth_batch_last)(jnp.asarray(pis.transpose(1, 2, 0)))).T, ref, rtol=1e-10, atol=0
            )


def test_gth_twin_reducible_chain():
    P = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    ref = K.gth_reference(P)
    np.testing.assert_allclose(ref @ P, ref, atol=1e-15)
    with x64():
        np.testing.assert_allclose(np.asarray(K.gth_loop(jnp.asarray(P))), ref, atol=1e-15)
        np.testing.assert_allclose(np.asarray(K.gth_batch_last(jnp.asarray(P)[:, :, None]))[:, 0], ref, atol=1e-15)


# ---------------------------------------------------------------------- the batch-last sampler vs loops
def test_uniform_token_is_exact_integer_arithmetic():
    w = np.random.default_rng(0).integers(0, 2**32, 10000, dtype=np.uint64)
    w = np.concatenate([w, [0, 2**32 - 1, 2**31]]).astype(np.uint32)
    for S in (2, 3, 10, 1000, 65535):
        got = np.asarray(K.uniform_token(jnp.asarray(w), S))
        np.testing.assert_array_equal(got, K.uniform_token_reference(w, S))
        np.testing.assert_array_equal(got, (w.astype(object) * S) >> 32)


def test_row_selection_and_inverse_cdf_draw():
    rng = np.random.default_rng(1)
    for R in (3, 10, 25):  # select chain and gather paths
        table = rng.random((R, 4, 50)).astype(np.float32)
        idx = rng.integers(0, R, 50).astype(np.int32)
        for i in (idx, idx.astype(np.float32)):  # the unrolled sampler passes tokens as small floats
            np.testing.assert_array_equal(
                np.asarray(K.row_at(jnp.asarray(table), jnp.asarray(i))), table[idx, :, np.arange(50)].T
            )
    p = rng.dirichlet(np.ones(5), size=50).T.astype(np.float32)  # (S, B)
    cdf = np.asarray(K.cdf_batch_last(jnp.asarray(p[None])))[0]
    np.testing.assert_allclose(cdf, np.cumsum(p, 0)[:-1], rtol=1e-6)
    u = rng.random(50).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(K.draw_from_cdf(jnp.asarray(cdf), jnp.asarray(u))), (u[None] >= cdf).sum(0)
    )


@pytest.mark.parametrize(
    "parents, S, dtype",
    [
        ((-1, 0, 1, 1, 0, -1, 5), 5, jnp.float32),  # a forest, unrolled
        ((-1,) + tuple(range(69)), 3, jnp.float32),  # 70 positions: the lax.scan path
        ((-1, 0, 0, 2), 20, jnp.float32),  # S > 16: the gather path of row_at
        ((-1, 0, -1, 2), 4, jnp.float64),
    ],
)
def test_forest_tokens_match_their_twin_bit_for_bit(parents, S, dtype):
    """The fast token draws and the per-sequence loops on the same matrices and the same random bits."""
    B = 300
    with x64():
        pi = K.dirichlet_matrices_batch_last(jax.random.key(8), 0.5, B, S, dtype)
        key = jax.random.key(9)
        tok, q = jax.jit(lambda k, p: K.forest_tokens_batch_last(k, p, parents))(key, pi)
        mu = jax.jit(K.stationary_batch_last)(pi)
        u, wq = jax.jit(lambda k: K.random_lanes(k, len(parents), B, dtype))(key)
        ref = K.forest_tokens_reference(pi, mu, u, wq, parents)
    np.testing.assert_array_equal(np.asarray(tok), ref)
    np.testing.assert_array_equal(np.asarray(q), ref[-1])


# ---------------------------------------------------------------------- compiler options
def test_jit_with_options_gives_the_plain_jit_values():
    """The options change how XLA compiles, not what it computes: the sampler's kernels bit for bit."""

    def f(key):
        return K.dirichlet_batch_last(K.key_words(key), 0.1, 10, 10, 512, jnp.float32)

    fast = K.jit_with_options(f, K.cpu_vector_options())
    key = jax.random.key(3)
    np.testing.assert_array_equal(np.asarray(fast(key)), np.asarray(jax.jit(f)(key)))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: fast(k))(key)), np.asarray(jax.jit(f)(key)))


def test_materialize_is_the_identity():
    x = jnp.array([0.0, -0.0, 1.5, jnp.inf, -jnp.inf, jnp.nan], jnp.float32)
    np.testing.assert_array_equal(np.asarray(jax.jit(K.materialize)(x)), np.asarray(x))
    i = jnp.array([np.iinfo(np.int32).min, -1, 0, 7, np.iinfo(np.int32).max], jnp.int32)
    np.testing.assert_array_equal(np.asarray(jax.jit(K.materialize)(i)), np.asarray(i))
    b = jnp.array([True, False])
    assert K.materialize(b) is b
