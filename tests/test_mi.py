"""The mutual-information approximation M and M_ε (docs/theory.md §4; the theorem part of C2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import causal_grad as cg
from causal_grad.laws import pairwise_joint
from causal_grad.mi import mi_approximation, mi_matrix
from causal_grad.strategies import (
    dirichlet_transition_matrices,
    floored_transition_matrices,
    forests,
    reversible_transition_matrices,
    transition_matrices,
)


def _task(graph, S):
    return cg.InContextTask(graph, S, 0.1)


def _mu(pi):
    with cg.x64():
        return np.asarray(cg.stationary(jnp.asarray(pi, jnp.float64)))


def _sigma1_and_chi2(pi):
    """σ1 of B = D^{1/2}πD^{-1/2} − √μ√μᵀ and I_χ²(Q) = ‖B‖_F², by NumPy (independent of causal_grad.mi)."""
    mu = _mu(pi)
    r = np.sqrt(mu)
    B = (r[:, None] * pi) / r[None, :] - np.outer(r, r)
    return np.linalg.svd(B, compute_uv=False)[0], float((B**2).sum())


def test_golden_M(golden):
    r = mi_approximation(_task(cg.Graph(golden["parents"]), golden["vocab_size"]), golden["pis"])
    np.testing.assert_allclose(r.M, np.array(golden["M"]), rtol=0, atol=1e-10)
    assert np.all(np.triu(r.M, 1) == 0) and r.per_pi.shape == (len(golden["pis"]),) + r.M.shape


def test_M_eps_matches_definition_from_pairwise_joint(golden):
    """M_ε[i,j] = (1-ε) Σ P_ji(a,b) π[a,b] / ŷ∞(b), ŷ∞ = (1-ε)μ + ε/S, from the explicit pairwise laws."""
    g, S, eps = cg.Graph(golden["parents"]), golden["vocab_size"], golden["eps"]
    pis = np.array(golden["pis"])
    r = mi_approximation(_task(g, S), pis, eps=eps)
    ref = []
    with cg.x64():
        for pi in pis:
            P = np.asarray(pairwise_joint(g, jnp.asarray(pi)))
            yhat = (1 - eps) * _mu(pi) + eps / S
            ref.append(np.tril((1 - eps) * np.einsum("ijab,ab,b->ij", P, pi, 1 / yhat)))
    np.testing.assert_allclose(r.M, np.mean(ref, axis=0), rtol=0, atol=1e-12)


def test_M_eps_tends_to_M():
    """|M_ε − M| ≤ Σ_b ε / (S (1-ε) μ(b)) (each trace term is a probability): linear convergence as ε → 0."""
    g = cg.random_tree(jax.random.key(3), 10)
    pis = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 3))
    task = _task(g, 3)
    M = mi_approximation(task, pis)
    bound = max(np.sum(1 / (3 * _mu(p))) for p in pis)
    errs = []
    for eps in (1e-2, 1e-4, 1e-6, 1e-9):
        err = np.abs(mi_approximation(task, pis, eps=eps).per_pi - M.per_pi).max()
        assert err <= eps / (1 - eps) * bound + 1e-13
        errs.append(err)
    assert errs[-1] < 1e-8 and errs[0] > 10 * errs[1]


@settings(max_examples=200)
@given(forests(max_n=8, min_n=2), st.integers(2, 4).flatmap(transition_matrices))
def test_root_rows_are_one_and_diagonal_is_trace(g, pi):
    per = mi_approximation(_task(g, pi.shape[0]), pi).per_pi[0]
    mu = _mu(pi)
    tr = np.sum(np.diag(pi)[mu > 0])
    np.testing.assert_allclose(np.diag(per), tr, rtol=0, atol=1e-13)  # ⟨P_ii, Q⟩_μ = tr π
    for i in g.roots:
        np.testing.assert_allclose(per[i, :i], 1.0, rtol=0, atol=1e-13)
    assert np.all(per >= -1e-13) and np.all(per <= pi.shape[0] + 1e-12)  # bounded by S


def _parent_margin(g, per):
    out = {}
    for i, p in enumerate(g.parents):
        others = [j for j in range(i) if j != p]
        if p >= 0 and others:
            jmax = others[int(np.argmax(per[i, others]))]
            out[i] = (per[i, p] - per[i, jmax], jmax)
    return out


@settings(max_examples=200)
@given(forests(max_n=8, min_n=3), st.integers(2, 4).flatmap(lambda S: floored_transition_matrices(S, 0.1)))
def test_parent_is_argmax_with_predicted_margin_floored(g, pi):
    """Floored π: every entry ≥ γ/S so σ1 < 1; the parent beats every other j < i by ≥ (1 − σ1^{L-1}) I_χ²(Q)
    (L ≥ 2 the path length; across trees the margin is exactly I_χ²(Q))."""
    per = mi_approximation(_task(g, pi.shape[0]), pi).per_pi[0]
    s1, chi = _sigma1_and_chi2(pi)
    assert s1 < 1
    geo = cg.pair_geometry(g)
    for i, (margin, _j) in _parent_margin(g, per).items():
        for jj in range(i):
            if jj == g.parents[i]:
                continue
            L = geo.path_length[i, jj]
            pred = chi if L < 0 else (1 - s1 ** (L - 1)) * chi
            assert per[i, g.parents[i]] - per[i, jj] >= pred - 1e-12, (i, jj, L)
        assert margin >= (1 - s1) * chi - 1e-12


@settings(max_examples=200)
@given(forests(max_n=8, min_n=3), st.integers(2, 4).flatmap(lambda S: dirichlet_transition_matrices(S, 0.1)))
def test_parent_is_argmax_dirichlet_small_alpha(g, pi):
    """Dirichlet(0.1) draws can be nearly periodic (relative margins ~1e-8, docs/theory.md §4): check margins ≥ 0 up to
    round-off, not an exact argmax."""
    per = mi_approximation(_task(g, pi.shape[0]), pi).per_pi[0]
    for i, (margin, j) in _parent_margin(g, per).items():
        assert margin >= -1e-12, (i, j, margin)


@settings(max_examples=100)
@given(st.integers(2, 4).flatmap(reversible_transition_matrices))
def test_reversible_eigenvalue_formula(pi):
    """Reversible π, ancestor at distance d: ⟨P_ji, Q⟩_μ = 1 + Σ_{k≥2} λ_k^{d+1} (d = 0 is the diagonal tr π)."""
    n = 6
    per = mi_approximation(_task(cg.chain(n), pi.shape[0]), pi).per_pi[0]
    mu = _mu(pi)
    r = np.sqrt(mu)
    lam = np.sort(np.linalg.eigvalsh((r[:, None] * pi) / r[None, :]))[:-1]  # drop λ_1 = 1
    for d in range(n):
        np.testing.assert_allclose(per[n - 1, n - 1 - d], 1 + np.sum(lam ** (d + 1)), rtol=0, atol=1e-12)


def test_periodic_pi_ties_great_grandparent():
    """Documented equality case: π = [[0,1],[1,0]] on a chain: the great-grandparent ties the parent (both 2),
    the grandparent gets 0."""
    per = mi_approximation(_task(cg.chain(5), 2), np.array([[0.0, 1.0], [1.0, 0.0]])).per_pi[0]
    assert per[3, 2] == pytest.approx(2.0, abs=1e-15) and per[3, 0] == pytest.approx(2.0, abs=1e-15)
    assert per[3, 1] == pytest.approx(0.0, abs=1e-15) and per[3, 3] == 0.0


def test_rank_one_pi_gives_flat_rows():
    pi = np.tile([0.2, 0.5, 0.3], (3, 1))
    per = mi_approximation(_task(cg.chain(5), 3), pi).per_pi[0]
    np.testing.assert_allclose(per[np.tril_indices(5, -1)], 1.0, atol=1e-14)


def test_se_vmap_and_validation():
    g = cg.random_tree(jax.random.key(0), 7)
    task = _task(g, 3)
    pis = np.random.default_rng(1).dirichlet(np.full(3, 0.5), size=(6, 3))
    r = mi_approximation(task, pis)
    np.testing.assert_allclose(r.se, np.tril(r.per_pi.std(0, ddof=1) / np.sqrt(6)), atol=1e-15)
    assert np.isnan(mi_approximation(task, pis[0]).se).all()
    with cg.x64():
        v = np.asarray(jax.vmap(lambda p: mi_matrix(g, p))(jnp.asarray(pis)))
        v_eps = np.asarray(jax.vmap(lambda p: mi_matrix(g, p, eps=0.01))(jnp.asarray(pis)))
    np.testing.assert_allclose(v, r.per_pi, atol=1e-14)
    np.testing.assert_allclose(v_eps, mi_approximation(task, pis, eps=0.01).per_pi, atol=1e-14)
    assert r.parent_margins().shape == (6, 7)
    with pytest.raises(ValueError, match="pis must be 3x3"):
        mi_approximation(task, np.eye(2))
    with pytest.raises(ValueError, match="row must sum"):
        mi_approximation(task, np.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="eps"):
        mi_approximation(task, pis, eps=1.0)
    with pytest.raises(TypeError, match="task"):
        mi_approximation(g, pis)


def test_large_instance_is_finite_and_bounded():
    """n = 255, S = 32, Dirichlet(0.1): tiny μ entries, yet every entry of every M_π lies in [0, S]."""
    task = _task(cg.chain(255), 32)
    pis = np.random.default_rng(2).dirichlet(np.full(32, 0.1), size=(2, 32))
    per = mi_approximation(task, pis).per_pi
    assert np.isfinite(per).all() and per.min() >= -1e-12 and per.max() <= 32


def test_cli_mi(capsys):
    import json

    from causal_grad.cli import main

    assert main(["mi", "--graph", "random-tree", "--n", "8", "--vocab", "3", "--alpha", "1", "--draws", "2"]) == 0
    out = capsys.readouterr().out
    assert "[" in out and "data processing (C3)" in out and "all inequalities hold: yes" in out
    assert main(["mi", "--graph=-1,0,1,0,2", "--vocab", "3", "--draws", "2", "--eps", "0.01", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["M"]) == 5 and d["dpi"]["ok"] and d["eps"] == 0.01
    assert main(["mi", "--draws", "0"]) == 2
