"""Data processing (C3) and the self entry (C4): property tests, equality cases, prior Monte Carlo."""

import json

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import causal_grad as cg
from causal_grad.mi import dpi_report, self_entry_over_prior, self_entry_report
from causal_grad.strategies import (
    dirichlet_transition_matrices,
    floored_transition_matrices,
    forests,
    transition_matrices,
)

TOL = 1e-12


def matrices():
    """Dirichlet(0.1) (near-periodic draws), Dirichlet(1), floored, and arbitrary π with zeros (reducible)."""
    return st.integers(2, 4).flatmap(
        lambda S: st.one_of(
            dirichlet_transition_matrices(S, 0.1),
            dirichlet_transition_matrices(S, 1.0),
            floored_transition_matrices(S, 0.1),
            transition_matrices(S),
        )
    )


@settings(max_examples=200)
@given(forests(max_n=8, min_n=3), matrices())
def test_data_processing_and_sigma1_bound(g, pi):
    """For every j < i, j ≠ p(i): I(s_j; s_i) ≤ I(s_{p(i)}; s_i) in KL and χ², ⟨P_ji,Q⟩_μ ≤ ⟨Q,Q⟩_μ, and
    ⟨P_ji,Q⟩_μ − 1 ≤ √(I_χ²(s_j;s_i) I_χ²(Q)) ≤ σ1^{L-1} I_χ²(Q)."""
    r = dpi_report(g, pi)
    c = r.checked
    assert c.sum() == sum(1 for i, p in enumerate(g.parents) if p >= 0 for j in range(i) if j != p)
    for m in r.MEASURES:
        a = getattr(r, m)[c]
        assert np.isfinite(a).all() and (a.size == 0 or a.min() >= -TOL), (m, a.min())
    assert r.ok
    # the report's margin identity: slack_inner = predicted_margin + bound_slack
    np.testing.assert_allclose(r.slack_inner[c], (r.predicted_margin + r.bound_slack)[c], atol=1e-13)


def test_kl_slack_against_direct_pairwise_laws():
    """The report's KL slacks equal I(Q) − I(P_ji) computed from pairwise_joint directly."""
    import jax.numpy as jnp

    g = cg.random_tree(jax.random.key(2), 9)
    pis = np.random.default_rng(3).dirichlet(np.full(3, 0.3), size=(3, 3))
    r = dpi_report(g, pis)
    with cg.x64():
        for k, pi in enumerate(pis):
            P = np.asarray(cg.pairwise_joint(g, jnp.asarray(pi)))
            I = np.asarray(cg.mutual_information(jnp.asarray(P)))
            for i, p in enumerate(g.parents):
                for j in range(i):
                    if p >= 0 and j != p:
                        assert abs(r.slack_kl[k, i, j] - (I[i, p] - I[i, j])) <= 1e-13


def test_equality_cases_periodic_and_rank_one():
    periodic = np.array([[0.0, 1.0], [1.0, 0.0]])
    r = dpi_report(cg.chain(5), periodic)
    assert r.ok and r.sigma1[0] == pytest.approx(1.0)
    eq = set(r.equalities)
    assert (0, 3, 0) in eq  # the great-grandparent ties the parent: M and both informations
    assert abs(r.slack_inner[0, 3, 0]) <= TOL and r.slack_inner[0, 3, 1] == pytest.approx(2.0)
    rank_one = np.tile([0.3, 0.7], (2, 1))
    r1 = dpi_report(cg.chain(5), rank_one)
    assert len(r1.equalities) == r1.num_checks == 6 and r1.chi2_q[0] == pytest.approx(0.0, abs=1e-15)
    assert r1.self_entry.ties.all()  # tr π = 1 = 1 + I_χ²(Q)


def test_report_output_and_dict():
    pis = np.stack([np.array([[0.75, 0.25], [0.25, 0.75]]), np.array([[0.1, 0.9], [0.8, 0.2]])])
    r = dpi_report(cg.random_tree(jax.random.key(0), 8), pis)
    s = str(r)
    assert "data processing (C3)" in s and "all inequalities hold: yes" in s and "wins on 1/2 (#0)" in s
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] and d["self_entry"]["winners"] == [0] and d["vocab_size"] == 2
    with pytest.raises(ValueError, match="forest"):
        dpi_report(cg.two_parent(4), pis)
    with pytest.raises(ValueError, match="row must sum"):
        dpi_report(cg.chain(3), np.ones((2, 2)))


# ---------------------------------------------------------------------------------------------- C4
def test_self_entry_two_state_example():
    """docs/theory.md §4: π = [[.75,.25],[.25,.75]] has tr π = 1.5 > 1.25 = 1 + I_χ²(Q); for S = 2 the diagonal wins iff
    λ = 1 − π01 − π10 ∈ (0, 1), since tr π = 1 + λ and I_χ²(Q) = λ²."""
    r = self_entry_report(np.array([[0.75, 0.25], [0.25, 0.75]]))
    assert r.trace[0] == pytest.approx(1.5, abs=1e-15) and r.parent_entry[0] == pytest.approx(1.25, abs=1e-15)
    assert r.wins.tolist() == [True]
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(2, 500))
    pis = np.stack([np.stack([1 - a, a], -1), np.stack([b, 1 - b], -1)], axis=1)
    lam = 1 - a - b
    r2 = self_entry_report(pis)
    np.testing.assert_allclose(r2.trace, 1 + lam, atol=1e-14)
    np.testing.assert_allclose(r2.parent_entry, 1 + lam**2, atol=1e-14)
    assert np.array_equal(r2.wins, (lam > 0) & (lam < 1))


def _within(x, se, target, slack=0.0):
    return abs(x - target) <= 4 * se + slack


def test_self_entry_prior_S2_win_probability_is_one_half():
    """S = 2, i.i.d. rows: π01 + π10 is symmetric about 1, so Pr(λ > 0) = ½ exactly, for every α; E tr π = 1."""
    r = self_entry_over_prior(cg.Dirichlet(0.1), 2, jax.random.key(0), 20_000)
    r1 = self_entry_report(np.random.default_rng(1).dirichlet(np.ones(2), size=(20_000, 2)))
    for x in (r, r1):
        assert _within(x.win_prob, x.win_prob_se, 0.5) and _within(x.mean_trace, x.mean_trace_se, 1.0)


def test_self_entry_prior_S3():
    """S = 3, α = 0.1: an earlier hand calculation gave E[1 + I_χ²(Q)] = 1.809 and a win probability at the low end of
    0.26–0.37.

    Two independent samplers must agree (the package's Dirichlet prior, and Beta stick-breaking in NumPy).
    Measured at high precision (2·10⁶ draws each, two samplers): 1.8124 ± 0.0003, i.e. the quoted 1.809 is off in
    its third decimal. That is a discrepancy of the hand calculation (reported in docs/theory.md, C4), so the quote is
    not
    asserted; the two independent samplers must agree with each other within 4 standard errors.
    """
    r = self_entry_over_prior(cg.Dirichlet(0.1), 3, jax.random.key(7), 20_000)
    rng = np.random.default_rng(7)
    N = 200_000
    x1 = rng.beta(0.1, 0.2, size=(N, 3))
    x2 = (1 - x1) * rng.beta(0.1, 0.1, size=(N, 3))
    pis = np.stack([x1, x2, np.maximum(1 - x1 - x2, 0)], -1)
    r2 = self_entry_report(pis / pis.sum(-1, keepdims=True))
    se = np.hypot(r.mean_parent_entry_se, r2.mean_parent_entry_se)
    assert abs(r.mean_parent_entry - r2.mean_parent_entry) <= 4 * se
    assert abs(r.win_prob - r2.win_prob) <= 4 * np.hypot(r.win_prob_se, r2.win_prob_se)
    assert _within(r2.win_prob, r2.win_prob_se, 0.26, slack=0.005)  # quoted to two decimals
    assert _within(r2.mean_trace, r2.mean_trace_se, 1.0)


def test_self_entry_prior_rises_with_alpha_and_S10():
    """S = 3: the win probability rises with α inside 0.26–0.37 (α = 3 gives about 0.35); S = 10: 0–0.13 and
    E[1 + I_χ²(Q)] = 4.00 at α = 0.1 (diagonal loses on average: E tr π = 1)."""
    rng = np.random.default_rng(11)
    r3 = self_entry_report(rng.dirichlet(np.full(3, 3.0), size=(100_000, 3)))
    r01 = self_entry_report(rng.dirichlet(np.full(3, 0.1), size=(100_000, 3)))
    assert r3.win_prob - r01.win_prob > 4 * np.hypot(r3.win_prob_se, r01.win_prob_se)
    assert r3.win_prob <= 0.37 + 4 * r3.win_prob_se
    r10 = self_entry_report(rng.dirichlet(np.full(10, 0.1), size=(40_000, 10)))
    assert _within(r10.mean_parent_entry, r10.mean_parent_entry_se, 4.00, slack=0.005)
    assert r10.win_prob <= 0.13 and r10.mean_margin < -4 * r10.mean_margin_se


def test_sticky_prior_wins_on_average_from_lambda_0_3():
    """docs/theory.md §4: Sticky(λ) at S = 3 makes the diagonal win on average once λ ≳ 0.3."""
    rng = np.random.default_rng(5)
    lo = self_entry_report(0.2 * np.eye(3) + 0.8 * rng.dirichlet(np.full(3, 0.1), size=(20_000, 3)))
    hi = self_entry_over_prior(cg.Sticky(0.1, 0.4), 3, jax.random.key(2), 20_000)
    assert lo.mean_margin < -4 * lo.mean_margin_se and hi.mean_margin > 4 * hi.mean_margin_se
