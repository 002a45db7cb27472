"""The in-context n-gram task (causal_grad.ngram): estimators against direct counts, exact Bayes against Monte
Carlo, sampled statistics against the exact law (docs/theory.md §1, §2; issue 18).

Tolerances. Counts are exact integers; the estimators divide in float32, so they agree with a float64 direct
count to a few float32 ulps (rtol 1e-6). Monte Carlo comparisons use z-scores at a fixed seed: with at most 32
comparisons per setting, ``P(max |z| > 4.5) ≈ 32 · 6.8e-6 ≈ 2e-4`` under the normal approximation (each group
holds hundreds of sequences). Chi-squared goodness of fit: p-value above 1e-3 at a fixed seed.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from causal_grad import baselines
from causal_grad._x64 import x64
from causal_grad.ngram import NGramTask, ngram_graph

Z_MAX = 4.5
P_MIN = 1e-3


def _direct_counts(tokens: np.ndarray, k: int, S: int, t: int) -> np.ndarray:
    """n_t(b) by a plain loop: transitions m ≤ t whose context equals the context ending at t."""
    ctx = tuple(tokens[t - k + 1 : t + 1])
    n = np.zeros(S)
    for m in range(k, t + 1):
        if tuple(tokens[m - k : m]) == ctx:
            n[tokens[m]] += 1
    return n


def test_in_context_estimator_equals_direct_count():
    S, k, T, alpha = 3, 2, 12, 0.3
    task = NGramTask(S, k, T, alpha)
    tokens = np.random.default_rng(0).integers(0, S, size=(60, T)).astype(np.int32)
    P = np.asarray(task.predictive_all_positions(tokens, "in_context"), np.float64)
    seen = unseen = 0
    for b in range(len(tokens)):
        for t in range(T):
            if t < k - 1:
                want = np.full(S, 1.0 / S)
            else:
                n = _direct_counts(tokens[b], k, S, t)
                seen += n.sum() > 0
                unseen += n.sum() == 0
                want = (n + alpha) / (n.sum() + S * alpha)
            np.testing.assert_allclose(P[b, t], want, rtol=1e-6, atol=0)
    assert seen > 50 and unseen > 50  # both cases exercised
    np.testing.assert_array_equal(np.asarray(task.in_context(tokens)), np.asarray(P[:, -1], np.float32))
    # the same estimator through the multi-parent code path on the n-gram DAG
    other = baselines.tuple_estimator(tokens, ngram_graph(T, k).parent_sets, S, alpha)
    np.testing.assert_allclose(np.asarray(task.in_context(tokens)), np.asarray(other), rtol=1e-6)
    # unigram: smoothed counts of the prefix
    U = np.asarray(task.predictive_all_positions(tokens, "unigram"), np.float64)
    for t in (0, 5, T - 1):
        c = np.stack([(tokens[:, : t + 1] == s).sum(1) for s in range(S)], 1)
        np.testing.assert_allclose(U[:, t], (c + alpha) / (t + 1 + S * alpha), rtol=1e-6)


def _all_sequences(S: int, T: int) -> np.ndarray:
    return np.array(list(itertools.product(range(S), repeat=T)), dtype=np.int32)


SETTINGS = [
    ("dirichlet", "uniform", 2, 2, 5, 0.5),
    ("unigram", "stationary", 2, 1, 4, 1.0),
    ("unigram", "uniform", 2, 2, 5, 0.7),
    ("doubly_stochastic", "uniform", 2, 1, 5, 1.0),
]


@pytest.mark.parametrize("prior,initial,S,k,T,alpha", SETTINGS)
def test_exact_bayes_and_law_against_sampling(prior, initial, S, k, T, alpha):
    task = NGramTask(S, k, T, alpha, prior, initial)
    seqs = _all_sequences(S, T)
    logp = task.sequence_log_prob(seqs)
    assert abs(np.exp(logp).sum() - 1.0) < 1e-12  # a law on [S]^T
    N = 1 << 16
    with x64():
        tokens, y = task.sample(jax.random.key(1), N, jnp.float64)
        tokens, y = np.asarray(tokens), np.asarray(y)
    code = tokens @ (S ** np.arange(T - 1, -1, -1))
    # (1) sampled sequences follow the exact marginal law: chi-squared goodness of fit over all S^T sequences
    counts = np.bincount(code, minlength=S**T)
    expected = N * np.exp(logp)
    p = stats.chisquare(counts, expected).pvalue
    assert p > P_MIN, f"chi-squared p-value {p:.2e}"
    # (2) the exact posterior predictive is the conditional mean of the target given the sequence
    exact = np.asarray(task.exact_bayes(seqs), np.float64)
    z = []
    for c in range(S**T):
        grp = y[code == c, 0]
        if grp.size > 100:
            z.append((grp.mean() - exact[c, 0]) / (grp.std(ddof=1) / np.sqrt(grp.size)))
    assert len(z) >= S**T // 2 and np.max(np.abs(z)) < Z_MAX, np.max(np.abs(z))


def test_exact_bayes_is_in_context_for_dirichlet_uniform_and_refused_otherwise():
    task = NGramTask(3, 2, 9, 0.4)
    tokens = np.random.default_rng(2).integers(0, 3, size=(20, 9)).astype(np.int32)
    np.testing.assert_array_equal(np.asarray(task.exact_bayes(tokens)), np.asarray(task.in_context(tokens)))
    with pytest.raises(ValueError, match="initial='stationary'"):
        NGramTask(3, 2, 9, 0.4, initial="stationary").exact_bayes(tokens)


def test_importance_sampling_agrees_with_closed_form():
    """bayes_monte_carlo (any prior) against the closed form where there is one (bias O(1/num), far below se)."""
    for prior, S, k, T in (("dirichlet", 2, 2, 8), ("doubly_stochastic", 2, 1, 8)):
        task = NGramTask(S, k, T, 1.0, prior)
        tokens = np.random.default_rng(3).integers(0, S, size=(6, T)).astype(np.int32)
        mc = task.bayes_monte_carlo(jax.random.key(4), tokens, num=1 << 15)
        exact = np.asarray(task.exact_bayes(tokens), np.float64)
        assert np.all(mc["ess"] > 500)
        z = (mc["mean"][:, 0] - exact[:, 0]) / mc["se"][:, 0]
        assert np.max(np.abs(z)) < Z_MAX, z


def test_stationary_initial_law_and_transitions_match_the_exact_law():
    """Fixed tensor, initial='stationary': (s_0, …, s_k) has law ν(c) π[c, b] (chi-squared), and ν is stationary
    for the lifted chain."""
    S, k, T = 2, 2, 6
    task = NGramTask(S, k, T, 1.0, initial="stationary")
    with x64():
        pi = np.asarray(task.sample_tables(jax.random.key(5), 1, jnp.float64))
        nu = np.asarray(task.initial_law(pi))[0]
    C = S**k
    lifted = np.zeros((C, C))
    for c in range(C):
        for b in range(S):
            lifted[c, (c % (C // S)) * S + b] += pi[0, c, b]
    np.testing.assert_allclose(nu @ lifted, nu, atol=1e-12)
    N = 1 << 16
    with x64():
        tokens = np.asarray(task.sample_given_tables(jax.random.key(6), np.repeat(pi, N, 0)))
    code = tokens[:, : k + 1] @ (S ** np.arange(k, -1, -1))
    law = (nu[:, None] * pi[0]).ravel()
    p = stats.chisquare(np.bincount(code, minlength=C * S), N * law).pvalue
    assert p > P_MIN, p
    # positions later in the sequence keep the stationary law of the context (the chain started stationary)
    code_late = tokens[:, T - k :] @ (S ** np.arange(k - 1, -1, -1))
    p = stats.chisquare(np.bincount(code_late, minlength=C), N * nu).pvalue
    assert p > P_MIN, p


def test_next_token_targets_end_with_the_query_target():
    task = NGramTask(3, 2, 7, 0.5, initial="stationary")
    tokens, y, tables = task.sample_with_tables(jax.random.key(7), 64)
    Y = task.next_token_targets(tokens, tables)
    assert Y.shape == (64, 7, 3)
    np.testing.assert_array_equal(np.asarray(Y[:, -1]), np.asarray(y))
    np.testing.assert_allclose(np.asarray(Y.sum(-1)), 1.0, atol=1e-6)
    # position 0 (t < k-1): the conditional law of s_1 given s_0 under the stationary initial law
    nu = np.asarray(task.initial_law(tables)).reshape(64, 3, 3)
    want = nu[np.arange(64), np.asarray(tokens[:, 0])]
    np.testing.assert_allclose(np.asarray(Y[:, 0]), want / want.sum(-1, keepdims=True), rtol=1e-5)
    t2, Y2 = task.sample_next_token(jax.random.key(7), 64)
    np.testing.assert_array_equal(np.asarray(t2), np.asarray(tokens))
    np.testing.assert_array_equal(np.asarray(Y2), np.asarray(Y))


def test_doubly_stochastic_draws():
    task = NGramTask(3, 1, 4, 1.0, "doubly_stochastic")
    with x64():
        tab = np.asarray(task.sample_tables(jax.random.key(8), 4096, jnp.float64))
    assert tab.min() >= 0
    np.testing.assert_allclose(tab.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(tab.sum(-2), 1.0, atol=1e-12)
    # uniform on the polytope: by symmetry every entry has mean 1/S (4096 draws: se about 0.2/64)
    assert np.max(np.abs(tab.mean(0) - 1 / 3)) < 4.5 * tab.std(0).max() / 64


def test_input_checks():
    with pytest.raises(ValueError, match="k == 1"):
        NGramTask(3, 2, 5, prior="doubly_stochastic")
    with pytest.raises(ValueError, match="seq_len"):
        NGramTask(3, 2, 2)
    with pytest.raises(ValueError, match="prior"):
        NGramTask(3, 1, 5, prior="zipf")
    with pytest.raises(ValueError, match="tables"):
        NGramTask(3, 2, 5).sample_given_tables(jax.random.key(0), np.ones((2, 3, 3)) / 3)


def test_stationary_initial_law_breaks_the_count_estimator():
    """Dirichlet prior, initial='stationary': importance sampling matches the conditional means of sampled
    targets (|z| < 4.5), and differs from the in-context estimator (the first token informs about π)."""
    S, k, T = 2, 1, 4
    task = NGramTask(S, k, T, 0.5, initial="stationary")
    seqs = _all_sequences(S, T)
    mc = task.bayes_monte_carlo(jax.random.key(9), seqs, num=1 << 15)
    N = 1 << 16
    with x64():
        tokens, y = task.sample(jax.random.key(10), N, jnp.float64)
        tokens, y = np.asarray(tokens), np.asarray(y)
    code = tokens @ (S ** np.arange(T - 1, -1, -1))
    z = []
    for c in range(S**T):
        grp = y[code == c, 0]
        se = np.hypot(grp.std(ddof=1) / np.sqrt(grp.size), mc["se"][c, 0])
        z.append((grp.mean() - mc["mean"][c, 0]) / se)
    assert np.max(np.abs(z)) < Z_MAX, np.max(np.abs(z))
    gap = np.abs(mc["mean"][:, 0] - np.asarray(task.in_context(seqs))[:, 0]) / mc["se"][:, 0]
    assert gap.max() > 10, gap.max()
