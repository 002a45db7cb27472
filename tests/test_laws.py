"""Exact pairwise laws (docs/theory.md §4): golden values, brute-force enumeration, structure, and the sampler."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import causal_grad as cg
from causal_grad.laws import pair_geometry, pairwise_joint, parent_child_joint, time_reversal
from causal_grad.strategies import forests, transition_matrices


def _pj(graph, pi):
    with cg.x64():
        return np.asarray(pairwise_joint(graph, jnp.asarray(pi, jnp.float64)))


def _mu(pi):
    with cg.x64():
        return np.asarray(cg.stationary(jnp.asarray(pi, jnp.float64)))


def test_golden_pairwise_joint_and_stationary(golden):
    g = cg.Graph(golden["parents"])
    pi0 = np.array(golden["pis"][0])
    np.testing.assert_allclose(_mu(pi0), golden["stationary_pi0"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(_pj(g, pi0), np.array(golden["pairwise_joint_pi0"]), rtol=0, atol=1e-10)


def brute_force_pairs(parents, pi, mu):
    """Pr(s_j = a, s_i = b) by enumerating every sequence of the forest's joint law."""
    n, S = len(parents), pi.shape[0]
    P = np.zeros((n, n, S, S))
    for seq in itertools.product(range(S), repeat=n):
        p = 1.0
        for i, par in enumerate(parents):
            p *= mu[seq[i]] if par < 0 else pi[seq[par], seq[i]]
        if p == 0.0:
            continue
        for i in range(n):
            for j in range(n):
                P[i, j, seq[j], seq[i]] += p
    return P


@settings(max_examples=200)
@given(forests(max_n=5), st.integers(2, 3).flatmap(transition_matrices))
def test_pairwise_joint_matches_enumeration(g, pi):
    """Exact law for any forest and any π (zeros allowed: reducible π use the GTH law μ for the roots)."""
    mu = _mu(pi)
    np.testing.assert_allclose(_pj(g, pi), brute_force_pairs(g.parents, pi, mu), rtol=0, atol=1e-12)


def test_structure_diagonal_parent_cross_tree():
    g = cg.Graph((-1, 0, 0, -1, 3, 1))
    pi = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    P, mu = _pj(g, pi), _mu(pi)
    with cg.x64():
        Q = np.asarray(parent_child_joint(jnp.asarray(pi)))
    for i in range(g.n):
        np.testing.assert_allclose(P[i, i], np.diag(mu), atol=1e-15)
        if g.parents[i] >= 0:
            np.testing.assert_allclose(P[i, g.parents[i]], Q, atol=1e-15)
    np.testing.assert_allclose(P[4, 1], np.outer(mu, mu), atol=1e-15)  # different trees
    np.testing.assert_allclose(P[1, 4], P[4, 1].T, atol=1e-15)  # P_ij = P_jiᵀ
    np.testing.assert_allclose(P[5, 2], (pi.T * mu) @ pi @ pi, atol=1e-15)  # siblings' subtree: πᵀ D π²
    np.testing.assert_allclose(P.sum(axis=(-2, -1)), 1.0, atol=1e-14)


def test_geometry_and_time_reversal():
    g = cg.Graph((-1, 0, 1, 0, -1))
    geo = pair_geometry(g)
    assert geo.d_i[2, 3] == 2 and geo.d_j[2, 3] == 1 and geo.path_length[2, 3] == 3
    assert not geo.same_tree[4, 0] and geo.path_length[4, 0] == -1
    pi = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])  # state 2 absorbing: μ = e_2
    with cg.x64():
        R = np.asarray(time_reversal(jnp.asarray(pi)))
    np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-15)
    assert np.isfinite(R).all()


def test_vmap_over_pi_and_errors():
    g = cg.chain(4)
    pis = np.random.default_rng(0).dirichlet(np.ones(3), size=(5, 3))
    with cg.x64():
        Pv = np.asarray(jax.vmap(lambda p: pairwise_joint(g, p))(jnp.asarray(pis)))
    for k in range(5):
        np.testing.assert_allclose(Pv[k], _pj(g, pis[k]), atol=1e-15)
    with pytest.raises(ValueError, match="forest"):
        pairwise_joint(cg.two_parent(4), pis[0])
    with pytest.raises(TypeError, match="graph"):
        pairwise_joint((-1, 0), pis[0])
    with pytest.raises(ValueError, match="pi must be one"):
        pairwise_joint(g, pis)


@pytest.mark.parametrize("graph", [cg.chain(8), cg.random_tree(jax.random.key(5), 8)], ids=["chain", "tree"])
def test_sampler_pair_frequencies_match_pairwise_joint(graph):
    """Issue 2 "Done when": empirical (s_j, s_i) frequencies of InContextTask.sample_given_pi under one fixed π
    pass a chi-squared goodness-of-fit test against pairwise_joint (Bonferroni over the pairs tested)."""
    S, B = 3, 40_000
    pi = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.25, 0.5, 0.25]], dtype=np.float32)
    task = cg.InContextTask(graph, S, 1.0)
    tokens = np.asarray(task.sample_given_pi(jax.random.key(11), jnp.broadcast_to(pi, (B, S, S))))
    P = _pj(graph, pi.astype(np.float64))
    pairs = [(i, j) for i in range(graph.n) for j in range(i)]
    pvals = []
    for i, j in pairs:
        obs = np.zeros((S, S))
        np.add.at(obs, (tokens[:, j], tokens[:, i]), 1)
        exp = P[i, j] * B
        pvals.append(stats.chisquare(obs.ravel(), exp.ravel() * obs.sum() / exp.sum()).pvalue)
    # the query is uniform and independent of the rest
    qcounts = np.bincount(tokens[:, -1], minlength=S)
    pvals.append(stats.chisquare(qcounts).pvalue)
    assert min(pvals) > 1e-3 / len(pvals), f"worst pair p-value {min(pvals):.2e}"
