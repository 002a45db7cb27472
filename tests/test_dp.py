"""The polynomial-time exact gradient at initialisation (causal_grad.gradients.dp) against brute force.

The oracle below enumerates all ``S^(T-1)`` contexts × ``S`` queries and evaluates docs/theory.md §4's formula
``(1-ε)/((i+1)T) · E[w_i (1[s_j = q] − v_i(q))]`` literally. Both are exact float64 computations of the same
finite sum (the DP through a quadrature that is exact for the polynomial integrands), so they agree to rounding:
1e-10 relative to the largest entry is a loose bound on accumulated float64 error for these sizes.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from conftest import golden_names, load_golden

import causal_grad
from causal_grad.gradients.dp import exact_gradient_at_init_dp, quadrature


def _stationary_np(pi):
    S = pi.shape[0]
    A = np.vstack([pi.T - np.eye(S), np.ones(S)])
    rhs = np.zeros(S + 1)
    rhs[-1] = 1.0
    return np.linalg.lstsq(A, rhs, rcond=None)[0]


def brute_force(parents, pis, eps):
    """Test oracle: literal enumeration of docs/theory.md §4's first-order formula (float64 NumPy)."""
    pis = np.asarray(pis, dtype=np.float64).reshape(-1, *np.shape(pis)[-2:])
    S = pis.shape[-1]
    n = len(parents)
    T = n + 1
    ctx = np.array(list(itertools.product(range(S), repeat=n)), dtype=np.int64)  # (C, n)
    G = np.zeros((T, T))
    for pi in pis:
        mu = _stationary_np(pi)
        prob = np.ones(len(ctx))
        for l, p in enumerate(parents):
            prob *= mu[ctx[:, l]] if p < 0 else pi[ctx[:, p], ctx[:, l]]
        for q in range(S):
            s = np.concatenate([ctx, np.full((len(ctx), 1), q)], axis=1)  # (C, T)
            counts = np.stack([(s == b).sum(1) for b in range(S)], axis=1)  # (C, S)
            chat = counts / T
            yhat = (1 - eps) * chat + eps / S
            ratio = np.where(counts > 0, chat / np.where(yhat > 0, yhat, 1.0), 0.0)
            second = (pi[q][None, :] * ratio).sum(1)  # Σ_b π[q,b] ĉ(b)/ŷ(b)
            yi = np.take_along_axis(yhat, s, axis=1)  # ŷ(s_i), (C, T)
            w = pi[q][s] / yi - second[:, None]  # w_i
            hit = (s == q).astype(np.float64)
            for i in range(T):
                v = hit[:, : i + 1].mean(1)
                for j in range(i + 1):
                    G[i, j] += (prob * w[:, i] * (hit[:, j] - v)).sum() / S * (1 - eps) / ((i + 1) * T)
    return G / len(pis)


def _random_case(seed, S, n, alpha=1.0):
    rng = np.random.default_rng(seed)
    parents = [-1] + [int(rng.integers(-1, i)) for i in range(1, n)]  # may have several roots
    pis = rng.dirichlet(np.full(S, alpha), size=(2, S))
    return parents, pis


CASES = [
    ((-1, 0, 1, 2), 3),  # chain
    ((-1, 0, -1, 2, -1), 3),  # icl pairs: three trees
    ((-1, 0, 0, -1, 3, 1), 2),  # two trees, a branching node
    ((-1, -1, -1, -1), 2),  # all roots
    ((-1, 0, 0, 0, 0), 2),  # star
]


@pytest.mark.parametrize("eps", [0.0, 1e-3, 0.1])
@pytest.mark.parametrize("parents,S", CASES)
def test_dp_matches_brute_force_named(parents, S, eps):
    rng = np.random.default_rng(len(parents) * 10 + S)
    pis = rng.dirichlet(np.full(S, 0.5), size=(2, S))
    task = causal_grad.InContextTask(list(parents), S, 1.0)
    ref = brute_force(parents, pis, eps)
    got = exact_gradient_at_init_dp(task, pis, eps=eps)
    assert got.dtype == np.float64 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("seed", range(6))
def test_dp_matches_brute_force_random_forests(seed):
    S = 2 + seed % 2
    n = 6 if S == 2 else 5
    parents, pis = _random_case(seed, S, n, alpha=[0.3, 1.0][seed % 2])
    eps = [0.0, 1e-3, 0.1][seed % 3]
    ref = brute_force(parents, pis, eps)
    got = exact_gradient_at_init_dp(causal_grad.InContextTask(parents, S, 1.0), pis, eps=eps)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_dp_rare_tokens():
    """Entries far below 1e-10 (as Dirichlet(0.1) draws have; token 2 has μ ≈ 1e-30): still exact, no NaN."""
    parents = (-1, 0, 1, -1, 3)
    pis = np.array(
        [
            [[0.7, 0.3 - 1e-30, 1e-30], [0.4, 0.6 - 1e-200, 1e-200], [0.5, 0.5, 0.0]],
            [[1e-12, 1 - 2e-12, 1e-12], [0.999, 1e-3, 0.0], [0.2, 0.3, 0.5]],
        ]
    )
    for eps in (0.0, 1e-6):
        ref = brute_force(parents, pis, eps)
        got = exact_gradient_at_init_dp(causal_grad.InContextTask(list(parents), 3, 0.1), pis, eps=eps)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("name", golden_names())
def test_dp_matches_golden(name):
    g = load_golden(name)
    ref = np.asarray(g["neg_grad_A1_at_init_per_beta0"], dtype=np.float64)
    task = causal_grad.InContextTask(g["parents"], g["vocab_size"], 1.0)
    got = exact_gradient_at_init_dp(task, np.asarray(g["pis"]), eps=g["eps"])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_rows_sum_to_zero_and_upper_triangle_zero():
    parents, pis = _random_case(11, 3, 9)
    G = exact_gradient_at_init_dp(causal_grad.InContextTask(parents, 3, 1.0), pis, eps=1e-3)
    assert G.shape == (10, 10)
    scale = np.abs(G).max()
    np.testing.assert_allclose(G.sum(1), 0.0, atol=1e-13 * scale * 10)
    assert np.all(G[np.triu_indices(10, 1)] == 0.0)


def test_single_matrix_equals_stack_of_one_and_average_is_linear():
    parents, pis = _random_case(5, 3, 6)
    task = causal_grad.InContextTask(parents, 3, 1.0)
    g0 = exact_gradient_at_init_dp(task, pis[0], eps=0.01)
    g1 = exact_gradient_at_init_dp(task, pis[1:2], eps=0.01)
    g01 = exact_gradient_at_init_dp(task, pis, eps=0.01)
    np.testing.assert_allclose(g01, (g0 + g1) / 2, rtol=0, atol=1e-13 * np.abs(g01).max())


def test_quadrature_exact_for_degree_2k_minus_1():
    for K, c in ((1, 0.0), (4, 0.0), (7, 0.37), (50, 5.0)):
        z, w = quadrature(K, c)
        assert np.all(w > 0) and np.all((z > 0) & (z < 1))
        d = np.arange(2 * K)
        got = np.array([np.sum(w * z**k) for k in d])
        np.testing.assert_allclose(got, 1.0 / (c + d + 1), rtol=1e-12)


# ---------------------------------------------------------------------- bad input raises before compute
def test_bad_input():
    task = causal_grad.InContextTask([-1, 0, 1], 3, 1.0)
    pi = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="eps"):
        exact_gradient_at_init_dp(task, pi, eps=1.0)
    with pytest.raises(ValueError, match="eps"):
        exact_gradient_at_init_dp(task, pi, eps=-0.1)
    with pytest.raises(TypeError, match="eps"):
        exact_gradient_at_init_dp(task, pi, eps="0.1")
    bad = pi.copy()
    bad[0, 0] += 0.2
    with pytest.raises(ValueError, match="pi_or_pis"):
        exact_gradient_at_init_dp(task, bad)
    with pytest.raises(ValueError, match="pi_or_pis"):
        exact_gradient_at_init_dp(task, -pi)
    with pytest.raises(ValueError, match="pi_or_pis"):
        exact_gradient_at_init_dp(task, np.full((2, 2), 0.5))  # wrong vocabulary size
    with pytest.raises(ValueError, match="forest"):
        exact_gradient_at_init_dp(causal_grad.MultiParentTask(causal_grad.two_parent(5), 3, 1.0), pi)
    with pytest.raises(ValueError, match="forest"):
        exact_gradient_at_init_dp(causal_grad.Graph([(), (0,), (0, 1)]), pi)
    with pytest.raises(TypeError, match="task"):
        exact_gradient_at_init_dp("chain", pi)


def test_graph_input_takes_vocab_from_pis():
    parents, pis = _random_case(2, 2, 4)
    a = exact_gradient_at_init_dp(causal_grad.from_parents(parents), pis, eps=0.0)
    b = exact_gradient_at_init_dp(causal_grad.InContextTask(parents, 2, 1.0), pis, eps=0.0)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- against the project's enumeration
@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_dp_matches_linearized_enumeration(eps):
    """The gradient engineer's enumeration (causal_grad.linearized_gradient_at_init) computes the same sum."""
    from causal_grad.gradients import linearized_gradient_at_init

    parents, pis = _random_case(21, 3, 5, alpha=0.5)
    task = causal_grad.InContextTask(parents, 3, 0.5)
    ref = np.asarray(linearized_gradient_at_init(task, pis, eps=eps))
    got = exact_gradient_at_init_dp(task, pis, eps=eps)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


# ---------------------------------------------------------------------- departure from M (C1)
def test_departure_from_mi_definitions():
    from causal_grad.gradients.dp import departure_from_mi

    task = causal_grad.InContextTask(causal_grad.chain(7), 3, 1.0)
    with causal_grad.x64():
        pis = task.sample_pi(jax.random.key(0), 4, dtype=jax.numpy.float64)
    d = departure_from_mi(task, pis)
    M_ref = causal_grad.mi_approximation(task, pis, eps=None).M
    np.testing.assert_allclose(d["M"], M_ref, rtol=1e-12)
    # R is the rescaled exact gradient on graph rows
    G = exact_gradient_at_init_dp(task, pis, eps=0.0)
    T = 8
    np.testing.assert_allclose(d["R"], G[:7, :7] * np.arange(1, 8)[:, None] * T * 3, rtol=1e-12)
    # against itself (M = R shifted by row constants) the departure vanishes
    shifted = d["R"] + np.tril(np.arange(7.0)[:, None] * np.ones((7, 7)))
    d0 = departure_from_mi(task, pis, M=np.tril(shifted))
    assert d0["rms"] < 1e-12 and d0["argmax_agree"] == 1.0
    assert 0 < d["rms"] and 0 <= d["argmax_agree"] <= 1 and 0 <= d["parent_argmax"] <= 1
    with pytest.raises(ValueError, match="M"):
        departure_from_mi(task, pis, M=np.zeros((3, 3)))


@pytest.mark.slow
def test_dp_within_monte_carlo_error_at_paper_size():
    """S = 10, T = 20 (10^19 contexts, beyond enumeration): the DP lies within the Monte Carlo standard errors of
    the project's unbiased estimator (causal_grad.monte_carlo_linearized_at_init, 200,000 sequences). Over the 209
    free entries a 5-σ bound fails with probability below 1e-4 (Bonferroni) if the DP is right."""
    from causal_grad.gradients import monte_carlo_linearized_at_init

    task = causal_grad.InContextTask(causal_grad.random_tree(jax.random.key(1), 19), 10, 0.1)
    with causal_grad.x64():
        pis = task.sample_pi(jax.random.key(0), 2, dtype=jax.numpy.float64)
    mc = monte_carlo_linearized_at_init(task, jax.random.key(5), eps=0.0, num=200_000, pis=pis)
    G = exact_gradient_at_init_dp(task, pis, eps=0.0)
    mask = np.tril(np.ones((20, 20), dtype=bool))
    mask[0, 0] = False  # row 0 is identically zero
    z = (G - np.asarray(mc.G))[mask] / np.asarray(mc.se)[mask]
    assert np.abs(z).max() < 5.0
